/* The pod service: RunPodSandbox / Stop / Remove / Status / List over the pod records, with
 * per-pod serialisation, retry-safe creation, and repair of half-finished calls at start-up. */
#include "config.h"

#include "sandbox-private.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static const char *const ns_kinds[] = { "net", "ipc", "uts", "pid", "user" };

static char **
pod_ns_field (CrispPod *pod, guint kind)
{
  char **fields[] = { &pod->net_ns, &pod->ipc_ns, &pod->uts_ns, &pod->pid_ns, &pod->user_ns };
  return fields[kind];
}

static char *
ns_pin_path (CrispPodService *svc, const char *id, guint kind)
{
  g_autofree char *name = g_strdup_printf ("%s-%s", id, ns_kinds[kind]);
  return g_build_filename (svc->ns_dir, name, NULL);
}

/* Synced (durable): a pod's first record, which names all a cleanup looks for, and its
 * removal's intent.  Its other states only replace the file: a crash of crisp finds them in
 * the page cache, and after a reboot, which ends the pod anyway, the recovery stops a pod in
 * any state or removes one still being created. */
static gboolean
save_pod (CrispPodService *svc, CrispPod *pod, gboolean durable, GError **error)
{
  g_autoptr (JsonNode) node = NULL;
  {
    g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
    node = crisp_pod_to_json (pod);
  }
  return crisp_store_save_sync (svc->store, pod->id, "pod.json", node, durable, error);
}

static void
set_state (CrispPodService *svc, CrispPod *pod, CrispPodState state)
{
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  pod->state = state;
}

static gboolean
set_state_saved (CrispPodService *svc, CrispPod *pod, CrispPodState state, GError **error)
{
  set_state (svc, pod, state);
  return save_pod (svc, pod, state == CRISP_POD_REMOVING, error);
}

/* ---- the network attachment ---- */

#define ATTACHMENT "network.json"
#define ATTACHMENT_RESULT "network-result.json"

JsonNode *
crisp_pod_load_attachment (CrispPodService *svc, const char *id, GError **error)
{
  g_autoptr (JsonNode) att = crisp_store_load (svc->store, id, ATTACHMENT, error);
  if (att == NULL || !JSON_NODE_HOLDS_OBJECT (att))
    return g_steal_pointer (&att);
  JsonObject *a = json_node_get_object (att);
  /* Without it (a crash during ADD, or a power loss after), DEL goes without prevResult. */
  JsonNode *have = json_object_get_member (a, "result");
  JsonNode *result = have != NULL && JSON_NODE_HOLDS_OBJECT (have)
                         ? NULL
                         : crisp_store_load (svc->store, id, ATTACHMENT_RESULT, NULL);
  if (result != NULL)
    json_object_set_member (a, "result", result);
  return g_steal_pointer (&att);
}

gboolean
crisp_pod_delete_attachment (CrispPodService *svc, const char *id, GError **error)
{
  return crisp_store_delete (svc->store, id, ATTACHMENT_RESULT, error)
         && crisp_store_delete (svc->store, id, ATTACHMENT, error);
}

/* ---- teardown ---- */

static gboolean
network_down (CrispPodService *svc, CrispPod *pod, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (JsonNode) att = crisp_pod_load_attachment (svc, pod->id, &local);
  if (att == NULL && g_error_matches (local, CRISP_ERROR, CRISP_ERROR_NOT_FOUND))
    return TRUE;
  if (att == NULL || !crisp_network_attachment_validate (att, &local))
    {
      /* Nothing usable to DEL with: keep the file for a human, do not block the pod. */
      g_warning ("pod %s: unusable network record, not running CNI DEL: %s", pod->id,
                 local->message);
      return TRUE;
    }
  if (!crisp_network_del (svc->network, att, cancellable, error))
    return crisp_prefix_error (error, "pod %s: tearing down the network: ", pod->id);
  {
    g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
    g_strfreev (pod->ips);
    pod->ips = g_new0 (char *, 1);
  }
  return crisp_pod_delete_attachment (svc, pod->id, error);
}

static gboolean
release_namespaces (CrispPodService *svc, CrispPod *pod, GError **error)
{
  int r = crisp_ns_stop_pause (pod->pause_pid, pod->pause_start_time);
  if (r < 0)
    return crisp_throw_errno (error, r, "pod %s: stopping the pause process", pod->id);
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  pod->pause_pid = 0;
  for (guint k = G_N_ELEMENTS (ns_kinds); k > 0; k--)
    {
      char **field = pod_ns_field (pod, k - 1);
      if (*field != NULL && (r = crisp_ns_unpin (*field)) < 0)
        return crisp_throw_errno (error, r, "pod %s: unpinning '%s'", pod->id, *field);
      g_clear_pointer (field, g_free);
    }
  if ((r = crisp_pod_shm_unmount (pod->shm_path)) < 0)
    return crisp_throw_errno (error, r, "pod %s: unmounting '%s'", pod->id, pod->shm_path);
  g_clear_pointer (&pod->shm_path, g_free);
  return TRUE;
}

/* Everything Stop undoes; each step is idempotent so a retry or a restart can finish it. */
static gboolean
pod_teardown (CrispPodService *svc, CrispPod *pod, GCancellable *cancellable, GError **error)
{
  if (svc->hooks.stop_pod != NULL
      && !svc->hooks.stop_pod (svc->hooks.data, pod->id, cancellable, error))
    return FALSE;
  if (!network_down (svc, pod, cancellable, error) || !release_namespaces (svc, pod, error))
    return FALSE;
  if (svc->hooks.settle_pod != NULL)
    svc->hooks.settle_pod (svc->hooks.data, pod->id);
  return TRUE;
}

static void
forget_pod (CrispPodService *svc, CrispPod *pod)
{
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  g_autofree char *key = crisp_pod_config_name_key (pod->config);
  if (g_strcmp0 (g_hash_table_lookup (svc->names, key), pod->id) == 0)
    g_hash_table_remove (svc->names, key);
  if (g_hash_table_lookup (svc->pods, pod->id) == pod)
    g_hash_table_remove (svc->pods, pod->id);
}

static gboolean
delete_pod_files (CrispPodService *svc, CrispPod *pod, GError **error)
{
  _cleanup_close_ int dfd = open (svc->pods_run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = dfd < 0 ? -errno : crisp_store_rm_rf_at (dfd, pod->id);
  if (r < 0)
    return crisp_throw_errno (error, r, "removing '%s'", pod->run_dir);
  return crisp_store_remove (svc->store, pod->id, error);
}

static gboolean
pod_remove_locked (CrispPodService *svc, CrispPod *pod, GCancellable *cancellable, GError **error)
{
  if (!set_state_saved (svc, pod, CRISP_POD_REMOVING, error))
    return FALSE;
  if (svc->hooks.remove_pod != NULL
      && !svc->hooks.remove_pod (svc->hooks.data, pod->id, cancellable, error))
    return FALSE;
  if (!pod_teardown (svc, pod, cancellable, error) || !delete_pod_files (svc, pod, error))
    return FALSE;
  forget_pod (svc, pod);
  return TRUE;
}

/* ---- creation ---- */

static gboolean
pod_network_up (CrispPodService *svc, CrispPod *pod, GCancellable *cancellable, GError **error)
{
  Runtime__V1__PodSandboxMetadata *m = pod->config->metadata;
  g_autoptr (JsonNode) ports = crisp_pod_config_port_mappings (pod->config);
  CrispNetworkPod np = { pod->id, pod->net_ns, "eth0", m->name, m->namespace_, m->uid, ports };
  g_autoptr (JsonNode) att = crisp_network_prepare (svc->network, &np, error);
  /* Saved before ADD: a crash during ADD leaves what DEL needs. */
  if (att == NULL || !crisp_store_save (svc->store, pod->id, ATTACHMENT, att, error))
    return FALSE;
  if (!crisp_network_add (svc->network, att, cancellable, error))
    {
      crisp_pod_delete_attachment (svc, pod->id, NULL);
      return FALSE;
    }
  /* ADD's result (DEL's prevResult) in a file of its own, not forced to disk: after a power
   * loss the attachment from before ADD serves, as after a crash during ADD. */
  JsonNode *result = json_object_get_member (json_node_get_object (att), "result");
  if (result != NULL && JSON_NODE_HOLDS_OBJECT (result)
      && !crisp_store_save_sync (svc->store, pod->id, ATTACHMENT_RESULT, result, FALSE, error))
    return FALSE;
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  g_strfreev (pod->ips);
  pod->ips = crisp_network_attachment_ips (att);
  return TRUE;
}

static gboolean
pod_apply_sysctls (CrispPod *pod, GError **error)
{
  Runtime__V1__LinuxPodSandboxConfig *lx = pod->config->linux;
  if (lx == NULL || lx->n_sysctls == 0)
    return TRUE;
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) values = g_ptr_array_new ();
  for (size_t i = 0; i < lx->n_sysctls; i++)
    {
      char *path = crisp_sysctl_path (lx->sysctls[i]->key, pod->net_ns != NULL, pod->ipc_ns != NULL,
                                      error);
      if (path == NULL)
        return FALSE;
      g_ptr_array_add (paths, path);
      g_ptr_array_add (values, lx->sysctls[i]->value);
    }
  g_ptr_array_add (paths, NULL);
  g_ptr_array_add (values, NULL);
  return crisp_ns_write_sysctls (pod->net_ns, pod->ipc_ns, (const char *const *) paths->pdata,
                                 (const char *const *) values->pdata, error);
}

static gboolean
pod_namespaces_up (CrispPodService *svc, CrispPod *pod, GError **error)
{
  g_autofree char *uid_map = NULL, *gid_map = NULL;
  if (pod->user_ns != NULL && crisp_pod_config_userns_maps (pod->config, &uid_map, &gid_map))
    {
      if (!crisp_ns_pin_userns (pod->user_ns, uid_map, gid_map, pod->net_ns, pod->ipc_ns,
                                pod->uts_ns, pod->hostname, error))
        return FALSE;
    }
  else if (!crisp_ns_pin (pod->net_ns, pod->ipc_ns, pod->uts_ns, pod->hostname, error))
    return FALSE;
  if (pod->shm_path != NULL && !crisp_pod_shm_mount (pod->shm_path, svc->shm_size, error))
    return FALSE;
  if (!pod_apply_sysctls (pod, error))
    return FALSE;
  if (pod->pid_ns == NULL)
    return TRUE;
  int pid = 0;
  guint64 start = 0;
  if (!crisp_ns_start_pause (svc->pause_path, pod->user_ns, pod->net_ns, pod->ipc_ns, pod->uts_ns,
                             pod->pid_ns, &pid, &start, error))
    {
      g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
      pod->pause_pid = pid;
      pod->pause_start_time = start;
      return FALSE;
    }
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  pod->pause_pid = pid;
  pod->pause_start_time = start;
  return TRUE;
}

/* Decides every path and name before anything is created, so the first record already says
 * what a cleanup has to look for. */
static void
pod_plan (CrispPodService *svc, CrispPod *pod)
{
  Runtime__V1__PodSandboxConfig *c = pod->config;
  gboolean host_net = crisp_pod_config_host_network (c);
  if (c->hostname && *c->hostname)
    pod->hostname = g_strdup (c->hostname);
  else if (host_net)
    pod->hostname = g_strdup (g_get_host_name ());
  else
    pod->hostname = g_strndup (c->metadata->name, 63);
  pod->cgroup_parent
      = c->linux && *c->linux->cgroup_parent ? g_strdup (c->linux->cgroup_parent) : NULL;
  pod->run_dir = g_build_filename (svc->pods_run_dir, pod->id, NULL);
  if (!host_net)
    {
      pod->net_ns = ns_pin_path (svc, pod->id, 0);
      pod->uts_ns = ns_pin_path (svc, pod->id, 2);
    }
  if (!crisp_pod_config_host_ipc (c))
    {
      pod->ipc_ns = ns_pin_path (svc, pod->id, 1);
      pod->shm_path = g_build_filename (pod->run_dir, "shm", NULL);
    }
  if (crisp_pod_config_shared_pid (c))
    pod->pid_ns = ns_pin_path (svc, pod->id, 3);
  if (crisp_pod_config_userns_maps (c, NULL, NULL))
    pod->user_ns = ns_pin_path (svc, pod->id, 4);
  pod->created_at = g_get_real_time () * 1000;
}

static gboolean
pod_create (CrispPodService *svc, CrispPod *pod, GCancellable *cancellable, GError **error)
{
  pod_plan (svc, pod);
  /* Not forced to disk: a kill finds it in the page cache, and a power loss takes the
   * namespaces and mounts (in /run) with it.  The one thing on disk that must outlive a
   * power loss, the network attachment, is forced there before the CNI ADD, and start-up
   * releases it whether this record was kept, lost or left empty. */
  if (!save_pod (svc, pod, FALSE, error))
    return FALSE;
  if (mkdir (pod->run_dir, 0700) < 0)
    return crisp_throw_errno (error, errno, "creating '%s'", pod->run_dir);
  /* Saved again right after: the record then names the pause process to kill if we crash. */
  gboolean up = crisp_pod_files_write (pod, error) && pod_namespaces_up (svc, pod, error);
  if (pod->pause_pid > 0)
    save_pod (svc, pod, FALSE, up ? error : NULL);
  if (!up)
    return FALSE;
  if (pod->net_ns != NULL
      && (!pod_network_up (svc, pod, cancellable, error)
          || !crisp_pod_files_write_hosts (pod, error)))
    return FALSE;
  return set_state_saved (svc, pod, CRISP_POD_READY, error);
}

/* A creation that failed: undo it all; if even that fails, keep the pod as NOTREADY so
 * kubelet's garbage collection removes it later, and free its name for a retry. */
static void
pod_abandon (CrispPodService *svc, CrispPod *pod)
{
  g_autoptr (GError) error = NULL;
  if (pod_teardown (svc, pod, NULL, &error) && delete_pod_files (svc, pod, &error))
    {
      forget_pod (svc, pod);
      return;
    }
  g_warning ("pod %s: cleaning up a failed RunPodSandbox: %s; kept as not ready", pod->id,
             error->message);
  set_state_saved (svc, pod, CRISP_POD_NOTREADY, NULL);
  g_autofree char *key = crisp_pod_config_name_key (pod->config);
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  g_hash_table_remove (svc->names, key);
}

static char *
new_pod_id (CrispPodService *svc)
{
  char id[65];
  do
    if (crisp_random_hex_id (id) < 0) /* getrandom cannot fail once booted; still, no abort */
      for (int i = 0; i < 64; i += 8)
        g_snprintf (id + i, 9, "%08x", g_random_int ());
  while (g_hash_table_contains (svc->pods, id));
  return g_strdup (id);
}

/* Returns the pod this name already has (waiting for its creation to end), or NULL after
 * registering a new pod under the name with its op_lock held. */
static CrispPod *
claim_name (CrispPodService *svc, const Runtime__V1__RunPodSandboxRequest *req, CrispPod **out_new)
{
  g_autofree char *key = crisp_pod_config_name_key (req->config);
  for (;;)
    {
      g_mutex_lock (&svc->lock);
      const char *id = g_hash_table_lookup (svc->names, key);
      if (id == NULL)
        break;
      g_autoptr (CrispPod) pod = crisp_pod_ref (g_hash_table_lookup (svc->pods, id));
      g_mutex_unlock (&svc->lock);
      g_mutex_lock (&pod->op_lock); /* the first call's creation ends */
      g_mutex_unlock (&pod->op_lock);
      g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
      if (g_hash_table_lookup (svc->pods, pod->id) == pod && pod->state != CRISP_POD_CREATING
          && pod->state != CRISP_POD_REMOVING)
        return g_steal_pointer (&pod);
      /* It failed or went away meanwhile: try again. */
    }
  g_autofree char *id = new_pod_id (svc);
  CrispPod *pod = crisp_pod_new (id, req->config, req->runtime_handler);
  g_mutex_lock (&pod->op_lock);
  g_hash_table_insert (svc->pods, g_strdup (id), crisp_pod_ref (pod));
  g_hash_table_insert (svc->names, g_steal_pointer (&key), g_strdup (id));
  g_mutex_unlock (&svc->lock);
  *out_new = pod;
  return NULL;
}

char *
crisp_pod_service_run (CrispPodService *svc, const Runtime__V1__RunPodSandboxRequest *req,
                       GCancellable *cancellable, GError **error)
{
  if (!crisp_pod_config_validate (req->config, svc->cgroup_driver, error))
    return NULL;
  g_autoptr (CrispPod) pod = NULL;
  g_autoptr (CrispPod) existing = claim_name (svc, req, &pod);
  if (existing != NULL)
    return g_strdup (existing->id);
  gboolean ok = pod_create (svc, pod, cancellable, error);
  if (!ok)
    pod_abandon (svc, pod);
  g_mutex_unlock (&pod->op_lock);
  return ok ? g_strdup (pod->id) : NULL;
}

/* ---- stop, remove, lookup ---- */

CrispPod *
crisp_pod_service_lookup (CrispPodService *svc, const char *id, GError **error)
{
  if (id == NULL || *id == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "pod_sandbox_id is empty"), NULL;
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  CrispPod *pod = g_hash_table_lookup (svc->pods, id);
  if (pod == NULL && crisp_id_is_valid_len (id, 0) && strlen (id) < 64)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, svc->pods);
      while (g_hash_table_iter_next (&it, &k, &v))
        if (g_str_has_prefix (k, id))
          {
            if (pod != NULL)
              return crisp_throw (error, CRISP_ERROR_NOT_FOUND,
                                  "pod sandbox id prefix '%s' is "
                                  "ambiguous",
                                  id),
                     NULL;
            pod = v;
          }
    }
  if (pod == NULL || pod->state == CRISP_POD_CREATING)
    return crisp_throw (error, CRISP_ERROR_NOT_FOUND, "pod sandbox '%s' not found", id), NULL;
  return crisp_pod_ref (pod);
}

CrispPodState
crisp_pod_service_get_state (CrispPodService *svc, CrispPod *pod)
{
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  return pod->state;
}

gboolean
crisp_pod_service_stop (CrispPodService *svc, const char *id, GCancellable *cancellable,
                        GError **error)
{
  g_autoptr (CrispPod) pod = crisp_pod_service_lookup (svc, id, error);
  if (pod == NULL)
    return FALSE;
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&pod->op_lock);
  CrispPodState state = crisp_pod_service_get_state (svc, pod);
  if (state == CRISP_POD_REMOVING)
    return TRUE;
  if (state == CRISP_POD_READY && !set_state_saved (svc, pod, CRISP_POD_STOPPING, error))
    return FALSE;
  if (!pod_teardown (svc, pod, cancellable, error))
    return FALSE;
  return set_state_saved (svc, pod, CRISP_POD_NOTREADY, error);
}

gboolean
crisp_pod_service_remove (CrispPodService *svc, const char *id, GCancellable *cancellable,
                          GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (CrispPod) pod = crisp_pod_service_lookup (svc, id, &local);
  if (pod == NULL && g_error_matches (local, CRISP_ERROR, CRISP_ERROR_NOT_FOUND))
    return TRUE;
  if (pod == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&pod->op_lock);
  {
    g_autoptr (GMutexLocker) sl = g_mutex_locker_new (&svc->lock);
    if (g_hash_table_lookup (svc->pods, pod->id) != pod)
      return TRUE; /* removed by a concurrent call */
  }
  return pod_remove_locked (svc, pod, cancellable, error);
}

/* ---- status, list ---- */

Runtime__V1__PodSandboxStatusResponse *
crisp_pod_service_status (CrispPodService *svc, const char *id, gboolean verbose, GError **error)
{
  g_autoptr (CrispPod) pod = crisp_pod_service_lookup (svc, id, error);
  if (pod == NULL)
    return NULL;
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  return crisp_pod_build_status (svc, pod, verbose);
}

static gboolean
labels_match (CrispPod *pod, const Runtime__V1__PodSandboxFilter *f)
{
  for (size_t i = 0; i < f->n_label_selector; i++)
    {
      gboolean found = FALSE;
      for (size_t j = 0; j < pod->config->n_labels && !found; j++)
        found = g_strcmp0 (pod->config->labels[j]->key, f->label_selector[i]->key) == 0
                && g_strcmp0 (pod->config->labels[j]->value, f->label_selector[i]->value) == 0;
      if (!found)
        return FALSE;
    }
  return TRUE;
}

static gboolean
filter_match (CrispPod *pod, const Runtime__V1__PodSandboxFilter *f)
{
  if (pod->state == CRISP_POD_CREATING)
    return FALSE;
  if (f == NULL)
    return TRUE;
  if (f->id && *f->id && !g_str_has_prefix (pod->id, f->id))
    return FALSE;
  if (f->state != NULL
      && (f->state->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
             != (pod->state == CRISP_POD_READY))
    return FALSE;
  return labels_match (pod, f);
}

Runtime__V1__ListPodSandboxResponse *
crisp_pod_service_list (CrispPodService *svc, const Runtime__V1__PodSandboxFilter *filter)
{
  Runtime__V1__ListPodSandboxResponse *resp = g_new (Runtime__V1__ListPodSandboxResponse, 1);
  *resp = (Runtime__V1__ListPodSandboxResponse) RUNTIME__V1__LIST_POD_SANDBOX_RESPONSE__INIT;
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  resp->items = g_new0 (Runtime__V1__PodSandbox *, g_hash_table_size (svc->pods) + 1);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, svc->pods);
  while (g_hash_table_iter_next (&it, NULL, &v))
    if (filter_match (v, filter))
      resp->items[resp->n_items++] = crisp_pod_build_item (svc, v);
  return resp;
}

/* ---- used by start-up repair (pod-recovery.c) ---- */

gboolean
crisp_pod_service_repair_stop (CrispPodService *svc, CrispPod *pod, GError **error)
{
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&pod->op_lock);
  if (!pod_teardown (svc, pod, NULL, error))
    return FALSE;
  return set_state_saved (svc, pod, CRISP_POD_NOTREADY, error);
}

gboolean
crisp_pod_service_repair_remove (CrispPodService *svc, CrispPod *pod, GError **error)
{
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&pod->op_lock);
  return pod_remove_locked (svc, pod, NULL, error);
}
