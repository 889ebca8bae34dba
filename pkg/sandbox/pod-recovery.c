/* Start-up: the service object, loading pod records, and repairing what a crash left —
 * half-created pods are removed, half-stopped or half-removed ones finished, ready pods
 * whose namespaces vanished (reboot) marked not ready, and pins or run directories that no
 * record owns are cleaned away. */
#include "config.h"

#include "sandbox-private.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* Paths come from the configuration, never from the record: a record naming anything else
 * is refused, so a damaged file cannot make us unmount or delete elsewhere. */
static gboolean
check_path (const char *have, const char *dir, const char *id, const char *suffix, GError **error)
{
  if (have == NULL)
    return TRUE;
  g_autofree char *name = g_strconcat (id, suffix, NULL);
  g_autofree char *want = g_build_filename (dir, name, NULL);
  if (g_strcmp0 (have, want) != 0)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: path '%s' is not '%s'", have,
                        want);
  return TRUE;
}

static gboolean
check_paths (CrispPodService *svc, CrispPod *pod, GError **error)
{
  g_autofree char *shm_dir = g_build_filename (svc->pods_run_dir, pod->id, NULL);
  return check_path (pod->run_dir, svc->pods_run_dir, pod->id, "", error)
         && check_path (pod->net_ns, svc->ns_dir, pod->id, "-net", error)
         && check_path (pod->ipc_ns, svc->ns_dir, pod->id, "-ipc", error)
         && check_path (pod->uts_ns, svc->ns_dir, pod->id, "-uts", error)
         && check_path (pod->pid_ns, svc->ns_dir, pod->id, "-pid", error)
         && check_path (pod->user_ns, svc->ns_dir, pod->id, "-user", error)
         && check_path (pod->shm_path, shm_dir, "shm", "", error);
}

/* A pod record that cannot be trusted is quarantined, but its network attachment may still
 * be intact: release the IP and host ports it holds, if it names this pod's own pin. */
static void
release_orphan_network (CrispPodService *svc, const char *id)
{
  g_autoptr (JsonNode) att = crisp_pod_load_attachment (svc, id, NULL);
  if (att == NULL || !crisp_network_attachment_validate (att, NULL))
    return;
  g_autofree char *name = g_strconcat (id, "-net", NULL);
  g_autofree char *want = g_build_filename (svc->ns_dir, name, NULL);
  JsonObject *a = json_node_get_object (att);
  if (g_strcmp0 (json_object_get_string_member (a, "netns"), want) != 0
      || g_strcmp0 (json_object_get_string_member (a, "containerId"), id) != 0)
    return;
  g_autoptr (GError) error = NULL;
  if (crisp_network_del (svc->network, att, NULL, &error))
    crisp_pod_delete_attachment (svc, id, NULL);
  else
    g_warning ("pod %s: releasing the network of a corrupt record: %s", id, error->message);
}

static gboolean
load_pod (const char *id, JsonNode *record, gpointer data, GError **error)
{
  CrispPodService *svc = data;
  g_autoptr (CrispPod) pod = record ? crisp_pod_from_json (id, record, error) : NULL;
  if (pod == NULL || !check_paths (svc, pod, error))
    {
      release_orphan_network (svc, id);
      return FALSE;
    }
  g_autofree char *key = crisp_pod_config_name_key (pod->config);
  g_hash_table_insert (svc->names, g_steal_pointer (&key), g_strdup (id));
  g_hash_table_insert (svc->pods, g_strdup (id), g_steal_pointer (&pod));
  return TRUE;
}

static gboolean
still_alive (CrispPod *pod)
{
  const char *pins[] = { pod->net_ns, pod->ipc_ns, pod->uts_ns, pod->pid_ns, pod->user_ns };
  for (gsize i = 0; i < G_N_ELEMENTS (pins); i++)
    if (pins[i] != NULL && !crisp_ns_is_pinned (pins[i]))
      return FALSE;
  if (pod->pause_pid > 0 && crisp_proc_start_time (pod->pause_pid) != pod->pause_start_time)
    return FALSE;
  return pod->pid_ns == NULL || pod->pause_pid > 0;
}

static void
repair_pod (CrispPodService *svc, CrispPod *pod)
{
  g_autoptr (GError) error = NULL;
  const char *what = NULL;
  gboolean ok = TRUE;
  switch (pod->state)
    {
    case CRISP_POD_CREATING:
    case CRISP_POD_REMOVING:
      what = pod->state == CRISP_POD_CREATING ? "removing a half-created pod"
                                              : "finishing its removal";
      ok = crisp_pod_service_repair_remove (svc, pod, &error);
      break;
    case CRISP_POD_STOPPING:
      what = "finishing its stop";
      ok = crisp_pod_service_repair_stop (svc, pod, &error);
      break;
    case CRISP_POD_READY:
      if (still_alive (pod))
        return;
      what = "its namespaces are gone, stopping it";
      ok = crisp_pod_service_repair_stop (svc, pod, &error);
      break;
    case CRISP_POD_NOTREADY:
      return;
    }
  g_message ("pod %s: %s%s%s", pod->id, what, ok ? "" : " failed: ", ok ? "" : error->message);
}

static gboolean
pin_is_owned (CrispPodService *svc, const char *name)
{
  const char *dash = strchr (name, '-');
  if (dash == NULL)
    return FALSE;
  g_autofree char *id = g_strndup (name, dash - name);
  CrispPod *pod = g_hash_table_lookup (svc->pods, id);
  if (pod == NULL)
    return FALSE;
  g_autofree char *path = g_build_filename (svc->ns_dir, name, NULL);
  const char *pins[] = { pod->net_ns, pod->ipc_ns, pod->uts_ns, pod->pid_ns, pod->user_ns };
  for (gsize i = 0; i < G_N_ELEMENTS (pins); i++)
    if (g_strcmp0 (pins[i], path) == 0)
      return TRUE;
  return FALSE;
}

static void
sweep_pins (CrispPodService *svc)
{
  g_autoptr (GDir) d = g_dir_open (svc->ns_dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      if (pin_is_owned (svc, name))
        continue;
      g_autofree char *path = g_build_filename (svc->ns_dir, name, NULL);
      int r = crisp_ns_unpin (path);
      g_message ("removed namespace pin '%s' that no pod owns%s%s", path, r < 0 ? ": " : "",
                 r < 0 ? g_strerror (-r) : "");
    }
}

static void
sweep_run_dirs (CrispPodService *svc)
{
  g_autoptr (GDir) d = g_dir_open (svc->pods_run_dir, 0, NULL);
  _cleanup_close_ int dfd = open (svc->pods_run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const char *name;
  while (d && dfd >= 0 && (name = g_dir_read_name (d)) != NULL)
    {
      if (g_hash_table_contains (svc->pods, name))
        continue;
      g_autofree char *dir = g_build_filename (svc->pods_run_dir, name, NULL);
      g_autofree char *shm = g_build_filename (dir, "shm", NULL);
      crisp_pod_shm_unmount (shm);
      int r = crisp_store_rm_rf_at (dfd, name);
      g_message ("removed run directory '%s' that no pod owns%s%s", dir, r < 0 ? ": " : "",
                 r < 0 ? g_strerror (-r) : "");
    }
}

static void
recover (CrispPodService *svc)
{
  g_autoptr (GPtrArray) pods = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_pod_unref);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, svc->pods);
  while (g_hash_table_iter_next (&it, NULL, &v))
    g_ptr_array_add (pods, crisp_pod_ref (v));
  for (guint i = 0; i < pods->len; i++)
    repair_pod (svc, pods->pdata[i]);
  sweep_pins (svc);
  sweep_run_dirs (svc);
}

static gboolean
make_dirs (CrispPodService *svc, GError **error)
{
  int r = crisp_mkdir_p (svc->pods_run_dir, 0700);
  if (r < 0)
    return crisp_throw_errno (error, r, "creating '%s'", svc->pods_run_dir);
  r = crisp_ns_dir_prepare (svc->ns_dir);
  if (r < 0)
    return crisp_throw_errno (error, r, "preparing the namespace directory '%s'", svc->ns_dir);
  return TRUE;
}

CrispPodService *
crisp_pod_service_new (const CrispPodOptions *o, GError **error)
{
  g_autoptr (CrispPodService) svc = g_new0 (CrispPodService, 1);
  g_mutex_init (&svc->lock);
  svc->pods
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) crisp_pod_unref);
  svc->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  svc->run_root = g_strdup (o->run_root);
  svc->pods_run_dir = g_build_filename (o->run_root, "pods", NULL);
  svc->ns_dir = g_build_filename (o->run_root, "ns", NULL);
  svc->cgroup_driver = g_strdup (o->cgroup_driver ? o->cgroup_driver : "cgroupfs");
  svc->pause_path = g_strdup (o->pause_path);
  svc->shm_size = o->shm_size ? o->shm_size : 64 * 1024 * 1024;
  svc->network = crisp_network_new (o->cni_config_dir, o->cni_plugin_dirs);
  g_autofree char *store_dir = g_build_filename (o->root, "pods", NULL);
  svc->store = crisp_store_open (store_dir, error);
  if (svc->store == NULL || !make_dirs (svc, error))
    return NULL;
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  if (!crisp_store_load_all (svc->store, "pod.json", load_pod, svc, problems, error))
    return NULL;
  for (guint i = 0; i < problems->len; i++)
    g_warning ("pod records: %s", (char *) problems->pdata[i]);
  recover (svc);
  return g_steal_pointer (&svc);
}

void
crisp_pod_service_free (CrispPodService *svc)
{
  if (svc == NULL)
    return;
  if (svc->ns_dir != NULL)
    crisp_ns_dir_release (svc->ns_dir);
  g_clear_pointer (&svc->pods, g_hash_table_unref);
  g_clear_pointer (&svc->names, g_hash_table_unref);
  crisp_store_free (svc->store);
  crisp_network_free (svc->network);
  g_free (svc->run_root);
  g_free (svc->pods_run_dir);
  g_free (svc->ns_dir);
  g_free (svc->cgroup_driver);
  g_free (svc->pause_path);
  g_mutex_clear (&svc->lock);
  g_free (svc);
}

void
crisp_pod_service_set_container_hooks (CrispPodService *svc, const CrispPodContainerHooks *hooks)
{
  svc->hooks = *hooks;
}

CrispNetwork *
crisp_pod_service_get_network (CrispPodService *svc)
{
  return svc->network;
}
