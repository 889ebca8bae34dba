/* CreateContainer, and the start-up pass that rebuilds the tables from the records. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "monitor-client.h"
#include "pkg/image/image-service.h"
#include "pkg/sandbox/sandbox.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define RECORD "container.json"
#define MAX_NAME 253
#define MAX_LOG_PATH 4096

static char *
random_id (GError **error)
{
  char id[65];
  int r = crisp_random_hex_id (id);
  if (r < 0)
    return crisp_throw_errno (error, r, "making a container id"), NULL;
  return g_strdup (id);
}

gboolean
crisp_container_validate_request (const Runtime__V1__CreateContainerRequest *req, GError **error)
{
  if (req->pod_sandbox_id == NULL || *req->pod_sandbox_id == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "pod_sandbox_id is empty");
  const Runtime__V1__ContainerConfig *cfg = req->config;
  if (cfg == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "config is missing");
  if (cfg->metadata == NULL || cfg->metadata->name == NULL || *cfg->metadata->name == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "config.metadata.name is empty");
  const char *name = cfg->metadata->name;
  if (strlen (name) > MAX_NAME || strchr (name, '/') != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "config.metadata.name '%.64s' is not a valid name", name);
  if (cfg->image == NULL || cfg->image->image == NULL || *cfg->image->image == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "config.image.image is empty");
  const char *log = cfg->log_path;
  if (log != NULL && *log != '\0')
    {
      g_auto (GStrv) parts = g_strsplit (log, "/", -1);
      gboolean bad = log[0] == '/' || strlen (log) > MAX_LOG_PATH;
      for (char **p = parts; !bad && *p; p++)
        bad = g_str_equal (*p, "..");
      if (bad)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "config.log_path '%.256s' must be relative without '..'", log);
    }
  return TRUE;
}

/* The log file under the pod's log directory; its directories are created as kubelet does. */
static gboolean
prepare_log_path (CrispPod *pod, const Runtime__V1__ContainerConfig *cfg, char **out_path,
                  GError **error)
{
  const char *dir = pod->config->log_directory;
  if (cfg->log_path == NULL || *cfg->log_path == '\0' || dir == NULL || *dir == '\0')
    {
      *out_path = NULL;
      return TRUE;
    }
  g_autofree char *path = g_build_filename (dir, cfg->log_path, NULL);
  g_autofree char *parent = g_path_get_dirname (path);
  int r = crisp_mkdir_p (parent, 0755);
  if (r < 0)
    return crisp_throw_errno (error, r, "creating log directory '%s'", parent);
  *out_path = g_steal_pointer (&path);
  return TRUE;
}

static char *
image_stop_signal (const CrispImage *img)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  if (img->config_json == NULL || !json_parser_load_from_data (p, img->config_json, -1, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root (p);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  JsonObject *config = json_object_get_object_member (json_node_get_object (root), "config");
  if (config == NULL || !json_object_has_member (config, "StopSignal"))
    return NULL;
  JsonNode *s = json_object_get_member (config, "StopSignal");
  return JSON_NODE_HOLDS_VALUE (s) && json_node_get_value_type (s) == G_TYPE_STRING
             ? g_strdup (json_node_get_string (s))
             : NULL;
}

static gboolean
make_dirs (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  const char *run_subs[] = { "", "rootfs", "monitor" };
  for (gsize i = 0; i < G_N_ELEMENTS (run_subs); i++)
    {
      g_autofree char *p = crisp_container_run_path (svc, c->id, run_subs[i]);
      if (mkdir (p, 0700) < 0 && errno != EEXIST)
        return crisp_throw_errno (error, errno, "creating '%s'", p);
    }
  /* The upper directory's own inode is the container's "/": it must be 0755 like a root
   * directory, or nobody but root could reach anything in the container. */
  const struct
  {
    const char *name;
    mode_t mode;
  } root_subs[] = { { "upper", 0755 }, { "work", 0700 } };
  for (gsize i = 0; i < G_N_ELEMENTS (root_subs); i++)
    {
      g_autofree char *p = crisp_container_root_path (svc, c->id, root_subs[i].name);
      int r = crisp_mkdir_p (p, 0700);
      if (r == 0 && chmod (p, root_subs[i].mode) < 0)
        r = -errno;
      if (r < 0)
        return crisp_throw_errno (error, r, "creating '%s'", p);
    }
  return TRUE;
}

typedef struct
{
  CrispContainerService *svc;
  CrispContainer *c;
  const char *cgroup; /* relative to each hierarchy's root */
  GError *error;
} MonitorCgroup;

/* Runs after the monitor detached and before it creates the container. The record learns the
 * monitor first, so a crisp killed during 'runtime create' finds it at the next start; then,
 * once in a cgroup of its own, the container's OOM and crisp's cgroup cannot take it down. */
static int
place_monitor (pid_t monitor_pid, void *data)
{
  MonitorCgroup *mc = data;
  g_mutex_lock (&mc->svc->lock);
  mc->c->monitor_pid = monitor_pid;
  mc->c->monitor_start_time = crisp_proc_start_time (monitor_pid);
  g_mutex_unlock (&mc->svc->lock);
  if (!crisp_container_save (mc->svc, mc->c, &mc->error))
    return -EIO;
  if (mc->cgroup == NULL)
    return 0;
  return crisp_cgroups_move_pid (mc->svc->cgroups, mc->cgroup, monitor_pid, &mc->error) ? 0 : -EIO;
}

static gboolean
spawn_monitor (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  const Runtime__V1__ContainerConfig *cfg = c->config;
  g_autofree char *bundle = crisp_container_run_path (svc, c->id, NULL);
  g_autofree char *state = crisp_container_run_path (svc, c->id, "monitor");
  CrispMonitorConfig mc = {
    .conmon_path = svc->config->conmon,
    .id = c->id,
    .bundle = bundle,
    .state_dir = state,
    .runtime = c->runtime_path,
    .runtime_root = c->runtime_root,
    .log_path = c->log_path,
    .terminal = cfg->tty,
    .stdin_open = cfg->stdin,
    .stdin_once = cfg->stdin_once,
  };
  const CrispRuntimeHandler *rt = crisp_config_get_runtime (svc->config, c->runtime);
  const char *cg = rt && rt->monitor_cgroup && *rt->monitor_cgroup ? rt->monitor_cgroup : NULL;
  MonitorCgroup place = { svc, c, cg ? cg + strspn (cg, "/") : NULL, NULL };
  CrispMonitorStarted started = { 0 };
  int r = crisp_monitor_spawn (&mc, place_monitor, &place, &started);
  if (place.error != NULL)
    {
      g_propagate_prefixed_error (error, place.error, "placing the monitor of '%s': ", c->id);
      return FALSE;
    }
  if (r == -EIO)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "creating container '%s': %s", c->id,
                        started.error);
  if (r < 0)
    return crisp_throw_errno (error, r, "starting the monitor of container '%s'", c->id);
  c->pid = started.container_pid;
  c->pid_start_time = crisp_proc_start_time (c->pid);
  c->monitor_pid = started.monitor_pid;
  c->monitor_start_time = crisp_proc_start_time (c->monitor_pid);
  c->monitor_version = started.protocol_version;
  return TRUE;
}

/* Steps after the record exists; any failure is undone by the caller's destroy. */
static gboolean
create_steps (CrispContainerService *svc, CrispContainer *c, CrispPod *pod, const CrispImage *img,
              const Runtime__V1__CreateContainerRequest *req, GError **error)
{
  g_autofree char *rootfs = crisp_container_run_path (svc, c->id, "rootfs");
  g_autofree char *upper = crisp_container_root_path (svc, c->id, "upper");
  g_autofree char *work = crisp_container_root_path (svc, c->id, "work");
  g_autofree char *bundle = crisp_container_run_path (svc, c->id, NULL);
  return make_dirs (svc, c, error) && crisp_container_save (svc, c, error)
         && crisp_image_service_mount_rootfs (svc->images, img->id, upper, work, rootfs, error)
         && crisp_container_write_spec (svc, c, pod, img, req, rootfs, bundle, error)
         && spawn_monitor (svc, c, error);
}

static CrispContainer *
container_from_request (CrispContainerService *svc, CrispPod *pod, const CrispImage *img,
                        const Runtime__V1__CreateContainerRequest *req, GError **error)
{
  const CrispRuntimeHandler *rt = crisp_config_get_runtime (svc->config, pod->runtime_handler);
  if (rt == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "pod '%s' names runtime handler '%s', which is not configured", pod->id,
                        pod->runtime_handler),
           NULL;
  /* The monitor execs the runtime by path: resolve a bare name here, once. */
  g_autofree char *runtime_path
      = g_path_is_absolute (rt->path) ? g_strdup (rt->path) : g_find_program_in_path (rt->path);
  if (runtime_path == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "runtime handler '%s': '%s' is not found on PATH", rt->name, rt->path),
           NULL;
  g_autoptr (CrispContainer) c = crisp_container_new ();
  c->id = random_id (error);
  if (c->id == NULL)
    return NULL;
  c->pod_id = g_strdup (pod->id);
  c->name = g_strdup (req->config->metadata->name);
  c->attempt = req->config->metadata->attempt;
  gsize len = protobuf_c_message_get_packed_size (&req->config->base);
  g_autofree guint8 *buf = g_malloc (len ? len : 1);
  protobuf_c_message_pack (&req->config->base, buf);
  c->config = runtime__v1__container_config__unpack (NULL, len, buf);
  c->image_id = g_strdup (img->id);
  c->image_ref = g_strdup (img->repo_digests->len ? img->repo_digests->pdata[0] : img->id);
  c->runtime = g_strdup (rt->name);
  c->runtime_path = g_steal_pointer (&runtime_path);
  c->runtime_root = g_strdup (rt->root);
  c->stop_signal = image_stop_signal (img);
  c->state = CRISP_CONTAINER_CREATING;
  c->created_at = g_get_real_time () * 1000;
  if (!prepare_log_path (pod, req->config, &c->log_path, error))
    return NULL;
  return g_steal_pointer (&c);
}

/* Returns the id of a finished create of the same name, waiting for one in flight. */
static char *
existing_for_name (CrispContainerService *svc, const char *key)
{
  g_mutex_lock (&svc->lock);
  const char *id = g_hash_table_lookup (svc->names, key);
  CrispContainer *c = id ? g_hash_table_lookup (svc->by_id, id) : NULL;
  if (c)
    crisp_container_ref (c);
  g_mutex_unlock (&svc->lock);
  if (c == NULL)
    return NULL;
  g_mutex_lock (&c->op_lock); /* a create in flight holds it */
  g_mutex_lock (&svc->lock);
  char *result = g_hash_table_lookup (svc->by_id, c->id) == c
                         && c->state != CRISP_CONTAINER_CREATING
                         && c->state != CRISP_CONTAINER_REMOVING
                     ? g_strdup (c->id)
                     : NULL;
  g_mutex_unlock (&svc->lock);
  g_mutex_unlock (&c->op_lock);
  crisp_container_unref (c);
  return result;
}

/* Claims the name for c, unless another container already holds it. */
static gboolean
claim_name (CrispContainerService *svc, CrispContainer *c, const char *key)
{
  g_mutex_lock (&svc->lock);
  gboolean free_name = !g_hash_table_contains (svc->names, key);
  if (free_name)
    {
      g_mutex_lock (&c->op_lock);
      crisp_container_remember (svc, c);
    }
  g_mutex_unlock (&svc->lock);
  return free_name;
}

char *
crisp_container_service_create (CrispContainerService *svc,
                                const Runtime__V1__CreateContainerRequest *req,
                                GCancellable *cancellable, GError **error)
{
  if (!crisp_container_validate_request (req, error))
    return NULL;
  g_autoptr (CrispPod) pod = crisp_pod_service_lookup (svc->pods, req->pod_sandbox_id, error);
  if (pod == NULL)
    return NULL;
  if (crisp_pod_service_get_state (svc->pods, pod) != CRISP_POD_READY)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "pod '%s' is not ready: containers cannot be created in it", pod->id),
           NULL;
  g_autofree char *key = crisp_container_name_key (pod->id, req->config->metadata->name,
                                                   req->config->metadata->attempt);
  char *existing = existing_for_name (svc, key);
  if (existing != NULL)
    return existing;
  g_autoptr (CrispImage) img
      = crisp_image_service_find (svc->images, req->config->image->image, error);
  if (img == NULL)
    {
      if (error && *error == NULL)
        crisp_throw (error, CRISP_ERROR_NOT_FOUND, "image '%s' not found: pull it first",
                     req->config->image->image);
      return NULL;
    }
  g_autoptr (CrispContainer) c = container_from_request (svc, pod, img, req, error);
  if (c == NULL)
    return NULL;
  if (!claim_name (svc, c, key))
    {
      existing = existing_for_name (svc, key);
      if (existing == NULL)
        crisp_throw (error, CRISP_ERROR_ALREADY_EXISTS,
                     "container name '%s' in pod '%s' is being removed, try again", c->name,
                     pod->id);
      return existing;
    }
  gboolean ok = create_steps (svc, c, pod, img, req, error);
  if (ok)
    {
      g_mutex_lock (&svc->lock);
      c->state = CRISP_CONTAINER_CREATED;
      g_mutex_unlock (&svc->lock);
      ok = crisp_container_save (svc, c, error);
    }
  if (!ok)
    {
      g_autoptr (GError) cleanup = NULL;
      if (!crisp_container_destroy (svc, c, TRUE, &cleanup))
        g_warning ("container '%s': cleaning up a failed create: %s", c->id, cleanup->message);
      crisp_container_forget (svc, c);
    }
  g_mutex_unlock (&c->op_lock);
  return ok ? g_strdup (c->id) : NULL;
}

/* Start-up: a record either describes a live container, one that exited, or a half-done
 * create or removal, which is finished now. */
static void
recover_one (CrispContainerService *svc, CrispContainer *c)
{
  g_autoptr (GError) error = NULL;
  if (c->state == CRISP_CONTAINER_CREATING || c->state == CRISP_CONTAINER_REMOVING)
    {
      g_message ("container '%s': finishing an interrupted %s", c->id,
                 c->state == CRISP_CONTAINER_CREATING ? "create" : "removal");
      if (!crisp_container_destroy (svc, c, c->state == CRISP_CONTAINER_CREATING, &error))
        g_warning ("container '%s': %s", c->id, error->message);
      else
        crisp_container_forget (svc, c);
      return;
    }
  if (c->state == CRISP_CONTAINER_EXITED)
    return;
  if (crisp_container_read_exit (svc, c))
    crisp_container_save (svc, c, NULL);
  else if (!crisp_container_monitor_alive (c))
    {
      c->state = CRISP_CONTAINER_EXITED;
      c->exit_code = 255;
      c->finished_at = g_get_real_time () * 1000;
      c->reason = g_strdup ("Unknown");
      c->message = g_strdup ("the container was gone when crisp started (host rebooted?)");
      crisp_container_save (svc, c, NULL);
    }
}

static gboolean
load_record (const char *id, JsonNode *record, gpointer data, GError **error)
{
  CrispContainerService *svc = data;
  if (!crisp_id_is_valid_len (id, 64))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "'%s' is not a container id", id);
  CrispContainer *c = crisp_container_from_json (id, record, error);
  if (c == NULL)
    return FALSE;
  crisp_container_remember (svc, c);
  crisp_container_unref (c);
  return TRUE;
}

CrispContainerService *
crisp_container_service_new (const CrispConfig *config, struct _CrispPodService *pods,
                             struct _CrispImageService *images, GError **error)
{
  g_autofree char *root = g_build_filename (config->root, "containers", NULL);
  g_autoptr (CrispContainerService) svc = g_new0 (CrispContainerService, 1);
  svc->config = config;
  svc->pods = pods;
  svc->images = images;
  g_mutex_init (&svc->lock);
  svc->by_id = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                      (GDestroyNotify) crisp_container_unref);
  svc->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  svc->run_dir = g_build_filename (config->run_root, "containers", NULL);
  svc->cgroup_driver = g_strcmp0 (config->cgroup_driver, "systemd") == 0
                           ? CRISP_CGROUP_DRIVER_SYSTEMD
                           : CRISP_CGROUP_DRIVER_CGROUPFS;
  svc->cgroups = crisp_cgroups_new (NULL, error);
  if (svc->cgroups == NULL)
    return NULL;
  crisp_oci_host_probe (svc->cgroups, &svc->host);
  int r = crisp_mkdir_p (svc->run_dir, 0700);
  if (r < 0)
    return crisp_throw_errno (error, r, "creating '%s'", svc->run_dir), NULL;
  svc->store = crisp_store_open (root, error);
  if (svc->store == NULL)
    return NULL;
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  if (!crisp_store_load_all (svc->store, RECORD, load_record, svc, problems, error))
    return NULL;
  for (guint i = 0; i < problems->len; i++)
    g_warning ("containers: %s", (char *) problems->pdata[i]);
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  for (guint i = 0; i < all->len; i++)
    recover_one (svc, all->pdata[i]);
  return g_steal_pointer (&svc);
}

void
crisp_container_service_free (CrispContainerService *svc)
{
  if (svc == NULL)
    return;
  if (svc->by_id)
    g_hash_table_unref (svc->by_id);
  if (svc->names)
    g_hash_table_unref (svc->names);
  if (svc->store)
    crisp_store_free (svc->store);
  if (svc->cgroups)
    crisp_cgroups_free (svc->cgroups);
  g_free (svc->run_dir);
  g_mutex_clear (&svc->lock);
  g_free (svc);
}
