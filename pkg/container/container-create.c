/* CreateContainer, and the start-up pass that rebuilds the tables from the records. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "monitor-client.h"
#include "monitor-protocol.h"
#include "pkg/image/image-service.h"
#include "pkg/sandbox/sandbox.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#define RECORD "container.json"
/* How long a stopping crisp waits for the removals still in progress (the next start ends
 * what is left). */
#define REAPER_DRAIN_MS 10000

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
  if (cfg->metadata == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "config.metadata.name is missing (no metadata)");
  if (!crisp_pod_config_check_name ("config.metadata.name", cfg->metadata->name, error))
    return FALSE;
  if (cfg->image == NULL || cfg->image->image == NULL || *cfg->image->image == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "config.image.image is empty");
  const char *log = cfg->log_path;
  if (log != NULL && *log != '\0'
      && (strlen (log) >= PATH_MAX || !crisp_path_is_clean (log, FALSE)))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "config.log_path '%.256s' must be a relative path without '.', '..' or "
                        "empty components",
                        log);
  return crisp_pod_config_check_map ("config.labels", (void *const *) cfg->labels, cfg->n_labels,
                                     CRISP_LABELS_MAX, error)
         && crisp_pod_config_check_map ("config.annotations", (void *const *) cfg->annotations,
                                        cfg->n_annotations, CRISP_ANNOTATIONS_MAX, error);
}

/* The log file under the pod's log directory.  Its directories are made as kubelet does, but
 * one component at a time without following a symbolic link, so the log cannot land outside
 * the directory the pod named; conmon opens the file itself with O_NOFOLLOW. */
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
  if (strlen (path) >= PATH_MAX)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "log_directory plus config.log_path is longer than %d bytes", PATH_MAX - 1);
  _cleanup_close_ int dirfd = -1;
  int r = crisp_open_dir_nofollow (-1, dir, TRUE, 0755, &dirfd);
  if (r < 0)
    return crisp_pod_config_throw_path (error, r, "pod log_directory", dir);
  g_autofree char *parent = g_path_get_dirname (cfg->log_path);
  _cleanup_close_ int parentfd = -1;
  if (g_str_equal (parent, "."))
    parentfd = take_fd (&dirfd);
  else if ((r = crisp_open_dir_nofollow (dirfd, parent, TRUE, 0755, &parentfd)) < 0)
    return crisp_pod_config_throw_path (error, r, "config.log_path", cfg->log_path);
  g_autofree char *base = g_path_get_basename (cfg->log_path);
  struct stat st;
  if (fstatat (parentfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG (st.st_mode))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "config.log_path '%s' exists and is not a regular file", cfg->log_path);
  *out_path = g_steal_pointer (&path);
  return TRUE;
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
  gboolean saved;     /* the record on disk names the monitor already */
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
  if (mc->c->monitor_pid != monitor_pid)
    {
      mc->c->monitor_pid = monitor_pid;
      mc->c->monitor_start_time = crisp_proc_start_time (monitor_pid);
      mc->saved = FALSE;
    }
  g_mutex_unlock (&mc->svc->lock);
  /* After a reboot the monitor is gone anyway: the record without it serves as well.  A
   * standby monitor's pid went into the record with the create's intent. */
  if (!mc->saved && !crisp_container_save_unsynced (mc->svc, mc->c, &mc->error))
    return -EIO;
  if (mc->cgroup == NULL)
    return 0;
  return crisp_cgroups_move_pid (mc->svc->cgroups, mc->cgroup, monitor_pid, &mc->error) ? 0 : -EIO;
}

gboolean
crisp_container_spawn_monitor (CrispContainerService *svc, CrispContainer *c,
                               CrispMonitorStandby *standby, GError **error)
{
  const Runtime__V1__ContainerConfig *cfg = c->config;
  g_autofree char *bundle = crisp_container_run_path (svc, c->id, NULL);
  g_autofree char *state = crisp_container_run_path (svc, c->id, "monitor");
  g_autofree char *restore_dir = c->restore_images ? g_path_get_dirname (c->restore_images) : NULL;
  g_autofree char *restore_work = restore_dir ? g_build_filename (restore_dir, "work", NULL) : NULL;
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
    .restore_images = c->restore_images,
    .restore_work = restore_work,
  };
  /* Without a copy the monitor runs the runtime's path, and runc copies itself as before.  A
   * restore (CRIU does its work, which cannot be tried on the machines crisp is tested on)
   * keeps the path too. */
  _cleanup_close_ int copy = -1;
  if (crisp_container_runtime_is_runc (c) && c->restore_images == NULL)
    {
      copy = crisp_runtime_copies_get (svc->runtime_copies, c->runtime_path);
      if (copy < 0 && copy != -ENOEXEC)
        g_warning ("container '%s': no sealed copy of '%s' (%s): the monitor runs it from its "
                   "path",
                   c->id, c->runtime_path, g_strerror (-copy));
      mc.runtime_fd = copy;
    }
  const CrispRuntimeHandler *rt = crisp_config_get_runtime (svc->config, c->runtime);
  const char *cg = rt && rt->monitor_cgroup && *rt->monitor_cgroup ? rt->monitor_cgroup : NULL;
  gboolean from_standby = standby != NULL && standby->fd >= 0;
  MonitorCgroup place = { svc, c, cg ? cg + strspn (cg, "/") : NULL, from_standby, NULL };
  CrispMonitorStarted started = { 0 };
  int r = from_standby ? crisp_monitor_assign (standby, &mc, place_monitor, &place, &started)
                       : crisp_monitor_spawn (&mc, place_monitor, &place, &started);
  if (from_standby && r == -ESRCH)
    {
      /* The standby died before it took the container (killed by someone): start one. */
      g_message ("container '%s': the standby monitor %d was gone: starting a monitor", c->id,
                 standby->pid);
      r = crisp_monitor_spawn (&mc, place_monitor, &place, &started);
    }
  if (place.error != NULL)
    {
      g_propagate_prefixed_error (error, place.error, "placing the monitor of '%s': ", c->id);
      return FALSE;
    }
  if (r == -EIO)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "%s container '%s': %s",
                        c->restore_images ? "restoring" : "creating", c->id, started.error);
  if (r < 0)
    return crisp_throw_errno (error, r, "starting the monitor of container '%s'", c->id);
  c->pid = started.container_pid;
  c->pid_start_time = crisp_proc_start_time (c->pid);
  c->monitor_pid = started.monitor_pid;
  c->monitor_start_time = crisp_proc_start_time (c->monitor_pid);
  c->monitor_version = started.protocol_version;
  return TRUE;
}

/* The host ids of the pod's user namespace root, or -1 when the mappings leave out id 0. */
static gint64
host_root_id (Runtime__V1__IDMapping *const *m, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (m[i]->container_id == 0 && m[i]->length > 0)
      return m[i]->host_id;
  return -1;
}

/* In a pod with a user namespace the runtime sets the container up as the namespace's root,
 * a host id with no rights over crisp's directories: the way to the root filesystem must be
 * searchable (never listable) by it (runc opens bind sources from outside, so the staged
 * mounts stay in a 0700 directory), and the container's own "/" (the
 * upper layer's root, empty and crisp's own) must be that root's.  Image files stay as they
 * are on disk: the id-mapped layers show them. */
static gboolean
prepare_for_userns (CrispContainerService *svc, CrispContainer *c, CrispPod *pod, GError **error)
{
  const Runtime__V1__UserNamespace *u = crisp_pod_userns (pod);
  g_autofree char *dir = crisp_container_run_path (svc, c->id, NULL);
  g_autofree char *upper = crisp_container_root_path (svc, c->id, "upper");
  const char *const dirs[] = { svc->config->run_root, svc->run_dir, dir };
  for (gsize i = 0; i < G_N_ELEMENTS (dirs); i++)
    if (chmod (dirs[i], 0711) < 0)
      return crisp_throw_errno (error, errno, "making '%s' searchable", dirs[i]);
  gint64 uid = host_root_id (u->uids, u->n_uids), gid = host_root_id (u->gids, u->n_gids);
  if (lchown (upper, uid < 0 ? (uid_t) -1 : (uid_t) uid, gid < 0 ? (gid_t) -1 : (gid_t) gid) < 0)
    return crisp_throw_errno (error, errno, "giving '%s' to the pod's root", upper);
  return TRUE;
}

static gboolean
make_rootfs (CrispContainerService *svc, CrispContainer *c, CrispPod *pod, int userns_fd,
             GError **error)
{
  if (userns_fd >= 0 && !prepare_for_userns (svc, c, pod, error))
    return FALSE;
  g_autofree char *rootfs = crisp_container_run_path (svc, c->id, "rootfs");
  return crisp_container_mount_rootfs (svc, c, rootfs, userns_fd, error);
}

/* Steps after the record exists; any failure is undone by the caller's destroy. A restore's
 * monitor comes with its start (the runtime's restore runs the process at once). */
static gboolean
create_steps (CrispContainerService *svc, CrispContainer *c, CrispPod *pod, const CrispImage *img,
              const Runtime__V1__CreateContainerRequest *req, const CrispRestore *restore,
              CrispMonitorStandby *standby, GError **error)
{
  g_autofree char *rootfs = crisp_container_run_path (svc, c->id, "rootfs");
  g_autofree char *bundle = crisp_container_run_path (svc, c->id, NULL);
  g_autoptr (GPtrArray) sources = NULL;
  _cleanup_close_ int userns_fd = crisp_pod_open_userns (pod);
  if (userns_fd < -1)
    return crisp_throw_errno (error, -userns_fd, "opening the user namespace of pod '%s'", pod->id);
  /* A standby monitor's pid goes into the intent: a kill from here on finds it and stops it. */
  guint64 standby_start = 0;
  if (restore == NULL && crisp_container_standby_take (svc, standby, &standby_start))
    {
      g_mutex_lock (&svc->lock);
      c->monitor_pid = standby->pid;
      c->monitor_start_time = standby_start;
      g_mutex_unlock (&svc->lock);
    }
  /* The intent is not forced to disk: a kill finds it in the page cache, and after a power
   * loss only the object directory can be left (the monitor, mounts and runtime state were
   * in /run), which start-up removes whether the record was lost, left empty or kept. */
  return make_dirs (svc, c, error) && crisp_container_save_unsynced (svc, c, error)
         && make_rootfs (svc, c, pod, userns_fd, error)
         && (restore == NULL || crisp_container_restore_prepare (svc, c, restore, rootfs, error))
         && crisp_container_stage_mounts (svc, c, userns_fd, &sources, error)
         && crisp_container_write_spec (svc, c, pod, img, req, rootfs, bundle,
                                        (const char *const *) sources->pdata,
                                        restore ? restore->spec : NULL, error)
         && (restore != NULL || crisp_container_spawn_monitor (svc, c, standby, error));
}

char *
crisp_container_runtime_path (const char *name)
{
  return g_path_is_absolute (name) ? g_strdup (name) : g_find_program_in_path (name);
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
  g_autofree char *runtime_path = crisp_container_runtime_path (rt->path);
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
  if (!crisp_container_resolve_mounts (svc, c, pod, error))
    return NULL;
  c->runtime = g_strdup (rt->name);
  c->runtime_path = g_steal_pointer (&runtime_path);
  c->runtime_root = g_strdup (rt->root);
  c->state = CRISP_CONTAINER_CREATING;
  c->created_at = g_get_real_time () * 1000;
  /* In the first record already: destroying a create a kill interrupted inside the runtime
   * removes this cgroup when the runtime cannot (it never recorded the container). */
  if (!crisp_cgroups_container_path (svc->cgroup_driver, pod->cgroup_parent, c->id, NULL,
                                     &c->cgroup_path, error))
    return NULL;
  if (!prepare_log_path (pod, req->config, &c->log_path, error))
    return NULL;
  return g_steal_pointer (&c);
}

/* Returns the id of a finished create of the same name, waiting for one in flight. A
 * container still CREATING or REMOVING once its op_lock is free is what an interrupted call
 * left and start-up could not finish: its removal is finished here, freeing the name. */
static char *
existing_for_name (CrispContainerService *svc, const char *key, GError **error)
{
  g_mutex_lock (&svc->lock);
  const char *id = g_hash_table_lookup (svc->names, key);
  CrispContainer *c = id ? g_hash_table_lookup (svc->by_id, id) : NULL;
  if (c)
    crisp_container_ref (c);
  g_mutex_unlock (&svc->lock);
  if (c == NULL)
    return NULL;
  g_autoptr (CrispContainer) held = c;
  g_mutex_lock (&c->op_lock); /* a create in flight holds it */
  g_mutex_lock (&svc->lock);
  gboolean known = g_hash_table_lookup (svc->by_id, c->id) == c;
  gboolean leftover
      = known && (c->state == CRISP_CONTAINER_CREATING || c->state == CRISP_CONTAINER_REMOVING);
  g_mutex_unlock (&svc->lock);
  char *result = known && !leftover ? g_strdup (c->id) : NULL;
  if (leftover)
    {
      g_message ("container '%s': finishing the removal an interrupted call left", c->id);
      if (crisp_container_destroy (svc, c, c->state == CRISP_CONTAINER_CREATING, error))
        crisp_container_forget (svc, c);
      else
        crisp_prefix_error (error,
                            "container name '%s' is held by '%s', which could not be "
                            "removed: ",
                            c->name, c->id);
    }
  g_mutex_unlock (&c->op_lock);
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
  g_autoptr (GError) local = NULL;
  char *existing = existing_for_name (svc, key, &local);
  if (existing != NULL || local != NULL)
    return g_propagate_error (error, g_steal_pointer (&local)), existing;
  /* A checkpoint to restore is checked before anything is made (container-checkpoint.c); its
   * root filesystem is the image it was made from. */
  g_autoptr (CrispRestore) restore = NULL;
  if (!crisp_container_check_checkpoint_image (svc, req->config->image->image, &restore, error))
    return NULL;
  g_autoptr (CrispImage) img
      = restore ? g_steal_pointer (&restore->image)
                : crisp_image_service_find (svc->images, req->config->image->image, error);
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
  if (restore != NULL)
    {
      /* Status and a later checkpoint name the image, not the archive. */
      free (c->config->image->image);
      c->config->image->image = strdup (
          img->repo_tags && img->repo_tags->len ? img->repo_tags->pdata[0] : c->image_ref);
    }
  while (!claim_name (svc, c, key))
    {
      /* Another call claimed it meanwhile: its result, or a free name again. */
      existing = existing_for_name (svc, key, &local);
      if (existing != NULL || local != NULL)
        return g_propagate_error (error, g_steal_pointer (&local)), existing;
    }
  CrispMonitorStandby standby = CRISP_MONITOR_STANDBY_INIT;
  gboolean ok = create_steps (svc, c, pod, img, req, restore, &standby, error);
  /* Not used (a step before the monitor's failed): it leaves once its socket closes. */
  crisp_monitor_standby_release (&standby);
  if (ok)
    {
      g_mutex_lock (&svc->lock);
      c->state = CRISP_CONTAINER_CREATED;
      g_mutex_unlock (&svc->lock);
      /* Not forced to disk either: only a power loss could lose it, and that ends the
       * container too; the next start then finds the "creating" record, or none, or an
       * empty one, and removes what is left, which the kubelet, recreating its pods after
       * a reboot, does not miss. */
      ok = crisp_container_save_unsynced (svc, c, error);
    }
  if (!ok)
    {
      g_autoptr (GError) cleanup = NULL;
      if (!crisp_container_destroy (svc, c, TRUE, &cleanup))
        g_warning ("container '%s': cleaning up a failed create: %s", c->id, cleanup->message);
      crisp_container_forget (svc, c);
    }
  g_mutex_unlock (&c->op_lock);
  if (!ok)
    return NULL;
  crisp_container_emit (svc, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
  crisp_container_watch_exit (svc, c);
  return g_strdup (c->id);
}

/* A kubelet gives up on a call after 2 minutes (its runtime request timeout), then retries. */
#define START_RETRY_WINDOW_S 120

/* A start was interrupted between its intent and its result: the runtime says whether it
 * happened. Unknown (the runtime has no state) is left to the monitor and exit checks. */
static void
recover_start (CrispContainerService *svc, CrispContainer *c)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *status = crisp_container_runtime_status (c, &error);
  if (status == NULL)
    g_debug ("container '%s': %s", c->id, error->message);
  /* A restore's monitor, alive, owns the outcome: a second one must not restore again. */
  gboolean happened = status ? !g_str_equal (status, "created") || crisp_container_init_released (c)
                             : crisp_container_read_exit (svc, c)
                                   || (c->restore_images && crisp_container_monitor_alive (c));
  g_message ("container '%s': an interrupted start %s", c->id,
             happened ? "had happened" : "had not happened");
  if (happened)
    {
      c->started_at = c->start_requested_at;
      if (c->state == CRISP_CONTAINER_CREATED)
        c->state = CRISP_CONTAINER_RUNNING;
    }
  c->start_requested_at = 0;
  g_clear_error (&error); /* the runtime's failure, already logged: the save reports its own */
  if (!crisp_container_save (svc, c, &error))
    g_warning ("container '%s': %s", c->id, error->message);
}

/* Start-up: a record either describes a live container, one that exited, or a half-done
 * create, start or removal, which is finished now. */
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
  if (c->start_requested_at != 0)
    recover_start (svc, c);
  /* A restore not started yet has no monitor: its start spawns one. */
  if (c->state == CRISP_CONTAINER_EXITED
      || (c->state == CRISP_CONTAINER_CREATED && c->restore_images != NULL))
    return;
  /* Started so recently that the StartContainer may not have been answered before the kill:
   * its retry succeeds once (see start_locked). */
  if (c->state == CRISP_CONTAINER_RUNNING
      && g_get_real_time () * 1000 - c->started_at
             < START_RETRY_WINDOW_S * G_GINT64_CONSTANT (1000000000))
    c->start_recovered = TRUE;
  if (crisp_container_read_exit (svc, c))
    {
      g_ptr_array_add (svc->recovered_exits, g_strdup (c->id));
      if (!crisp_container_save (svc, c, &error))
        g_warning ("container '%s': saving its exit: %s", c->id, error->message);
    }
  else if (!crisp_container_monitor_alive (c))
    {
      g_ptr_array_add (svc->recovered_exits, g_strdup (c->id));
      c->state = CRISP_CONTAINER_EXITED;
      c->exit_code = 255;
      c->finished_at = g_get_real_time () * 1000;
      c->reason = g_strdup ("Unknown");
      c->message = g_strdup ("the container was gone when crisp started (host rebooted?)");
      if (!crisp_container_save (svc, c, &error))
        g_warning ("container '%s': %s", c->id, error->message);
    }
}

typedef struct
{
  CrispContainerService *svc;
  GPtrArray *lost; /* ids whose record was missing or unreadable */
} LoadContext;

static gboolean
load_record (const char *id, JsonNode *record, gpointer data, GError **error)
{
  LoadContext *ctx = data;
  if (!crisp_id_is_valid_len (id, 64))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "'%s' is not a container id", id);
  /* Released once the store has moved the object away (see release_lost). */
  if (record == NULL)
    {
      g_ptr_array_add (ctx->lost, g_strdup (id));
      return FALSE;
    }
  CrispContainer *c = crisp_container_from_json (id, record, error);
  if (c == NULL)
    return FALSE;
  crisp_container_remember (ctx->svc, c);
  crisp_container_unref (c);
  return TRUE;
}

/* The pid in the monitor's info file of container `id`, if its argv says it is that
 * container's monitor; its argv then also names the runtime and the runtime's root. */
static int
find_monitor (CrispContainerService *svc, const char *id, char **out_runtime, char **out_root)
{
  g_autofree char *info = crisp_container_run_path (svc, id, "monitor/" CRISP_MONITOR_FILE_INFO);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (info, &text, NULL, NULL))
    return 0;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  int pid = 0;
  for (char **l = lines; *l; l++)
    if (g_str_has_prefix (*l, "pid="))
      pid = (int) g_ascii_strtoll (*l + 4, NULL, 10);
  g_autofree char *proc = g_strdup_printf ("/proc/%d/cmdline", pid);
  g_autofree char *cmdline = NULL;
  gsize len = 0;
  if (pid <= 0 || !g_file_get_contents (proc, &cmdline, &len, NULL) || len == 0)
    return 0;
  gboolean ours = FALSE;
  for (const char *a = cmdline, *next; a < cmdline + len; a = next)
    {
      next = a + strlen (a) + 1;
      const char *value = next < cmdline + len ? next : NULL;
      if (value != NULL && strcmp (a, "--id") == 0)
        ours = strcmp (value, id) == 0;
      else if (value != NULL && strcmp (a, "--runtime") == 0 && *out_runtime == NULL)
        *out_runtime = g_strdup (value);
      else if (value != NULL && strcmp (a, "--runtime-root") == 0 && *out_root == NULL)
        *out_root = g_strdup (value);
    }
  return ours ? pid : 0;
}

/* A container whose record is lost cannot be managed again: what its id still leads to (a
 * monitor found through its run directory, the runtime's state, the rootfs mount, the run
 * directory) is released with the same destroy a removal uses.  Without a monitor to name
 * the runtime, the default handler's is asked to delete a container of that id. */
CrispContainer *
crisp_container_new_lost (CrispContainerService *svc, const char *id)
{
  CrispContainer *c = crisp_container_new ();
  c->id = g_strdup (id);
  c->monitor_pid = find_monitor (svc, id, &c->runtime_path, &c->runtime_root);
  c->monitor_start_time = c->monitor_pid > 0 ? crisp_proc_start_time (c->monitor_pid) : 0;
  const CrispRuntimeHandler *rt = crisp_config_get_runtime (svc->config, NULL);
  if (c->monitor_pid <= 0 && rt != NULL)
    {
      g_clear_pointer (&c->runtime_path, g_free);
      g_clear_pointer (&c->runtime_root, g_free);
      c->runtime_path = crisp_container_runtime_path (rt->path);
      c->runtime_root = g_strdup (rt->root);
    }
  return c;
}

static void
release_lost (CrispContainerService *svc, const char *id)
{
  g_autoptr (CrispContainer) c = crisp_container_new_lost (svc, id);
  g_autoptr (GError) error = NULL;
  if (!crisp_container_destroy (svc, c, TRUE, &error))
    g_warning ("container '%s': releasing what its lost record named: %s", id, error->message);
  else
    g_message ("container '%s': its record was lost; released %s its runtime state, mounts "
               "and run directory",
               id, c->monitor_pid > 0 ? "its monitor," : "(no monitor found)");
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
  g_cond_init (&svc->announced);
  svc->inotify_fd = -1;
  svc->exit_watches = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  svc->runtime_copies = crisp_runtime_copies_new ();
  svc->recovered_exits = g_ptr_array_new_with_free_func (g_free);
  crisp_container_reaper_init (svc);
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
  g_autoptr (GPtrArray) lost = g_ptr_array_new_with_free_func (g_free);
  LoadContext ctx = { svc, lost };
  if (!crisp_store_load_all (svc->store, RECORD, load_record, &ctx, problems, error))
    return NULL;
  for (guint i = 0; i < problems->len; i++)
    g_warning ("containers: %s", (char *) problems->pdata[i]);
  for (guint i = 0; i < lost->len; i++)
    release_lost (svc, lost->pdata[i]);
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  for (guint i = 0; i < all->len; i++)
    recover_one (svc, all->pdata[i]);
  crisp_container_reaper_start (svc);
  crisp_container_standby_start (svc);
  return g_steal_pointer (&svc);
}

void
crisp_container_service_free (CrispContainerService *svc)
{
  if (svc == NULL)
    return;
  crisp_container_standby_stop (svc);
  crisp_container_reaper_stop (svc, REAPER_DRAIN_MS);
  crisp_container_events_free (svc);
  if (svc->by_id)
    g_hash_table_unref (svc->by_id);
  if (svc->names)
    g_hash_table_unref (svc->names);
  if (svc->store)
    crisp_store_free (svc->store);
  if (svc->cgroups)
    crisp_cgroups_free (svc->cgroups);
  g_free (svc->run_dir);
  g_free (svc->criu_problem);
  crisp_runtime_copies_free (svc->runtime_copies);
  g_cond_clear (&svc->announced);
  g_mutex_clear (&svc->lock);
  g_free (svc);
}
