/* CRI messages about containers: ContainerStatus, ListContainers items, ExecSync, log reopen.
 * Everything here is built with malloc so callers free it with protobuf_c_message_free_unpacked. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "monitor-client.h"

#include <string.h>

/* The kubelet's gRPC client takes messages of at most 16 MiB, so ExecSync's whole reply must
 * fit: stdout and stderr share this budget; the rest covers two field headers of 5 bytes, an
 * exit code of up to 11 and the 5-byte gRPC frame header, with room to spare. */
#define EXEC_SYNC_REPLY_MAX (16u * 1024 * 1024)
#define EXEC_SYNC_OUTPUT_MAX (EXEC_SYNC_REPLY_MAX - 1024)

void *
crisp_proto_copy_map (size_t n, void *const *src, const ProtobufCMessageDescriptor *desc,
                      size_t *out_n)
{
  void **dst = n ? malloc (n * sizeof (void *)) : NULL;
  for (size_t i = 0; i < n; i++)
    {
      const CrispProtoStringEntry *s = src[i];
      CrispProtoStringEntry *e = malloc (desc->sizeof_message);
      protobuf_c_message_init (desc, e);
      e->key = strdup (s->key ? s->key : "");
      e->value = strdup (s->value ? s->value : "");
      dst[i] = e;
    }
  *out_n = n;
  return dst;
}

Runtime__V1__ContainerState
crisp_container_cri_state (CrispContainerState state)
{
  switch (state)
    {
    case CRISP_CONTAINER_CREATED:
      return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
    case CRISP_CONTAINER_RUNNING:
      return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    case CRISP_CONTAINER_EXITED:
      return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
    default:
      return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
    }
}

Runtime__V1__Container *
crisp_container_build_item (CrispContainerService *svc, CrispContainer *c)
{
  Runtime__V1__Container *item = malloc (sizeof *item);
  runtime__v1__container__init (item);
  const Runtime__V1__ContainerConfig *cfg = c->config;
  item->id = strdup (c->id);
  item->pod_sandbox_id = strdup (c->pod_id);
  item->metadata = crisp_proto_dup (&cfg->metadata->base);
  item->image = crisp_proto_dup (&cfg->image->base);
  item->image_ref = strdup (c->image_ref ? c->image_ref : "");
  item->image_id = strdup (c->image_id);
  item->state = crisp_container_cri_state (c->state);
  item->created_at = c->created_at;
  item->labels
      = crisp_proto_copy_map (cfg->n_labels, (void *const *) cfg->labels,
                              &runtime__v1__container__labels_entry__descriptor, &item->n_labels);
  item->annotations = crisp_proto_copy_map (cfg->n_annotations, (void *const *) cfg->annotations,
                                            &runtime__v1__container__annotations_entry__descriptor,
                                            &item->n_annotations);
  return item;
}

static char *
verbose_info (CrispContainer *c)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sandboxID");
  json_builder_add_string_value (b, c->pod_id);
  json_builder_set_member_name (b, "pid");
  json_builder_add_int_value (b, c->state == CRISP_CONTAINER_EXITED ? 0 : c->pid);
  json_builder_set_member_name (b, "monitorPid");
  json_builder_add_int_value (b, c->monitor_pid);
  json_builder_set_member_name (b, "runtime");
  json_builder_add_string_value (b, c->runtime);
  json_builder_set_member_name (b, "runtimePath");
  json_builder_add_string_value (b, c->runtime_path);
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, crisp_container_state_to_string (c->state));
  json_builder_set_member_name (b, "oomKilled");
  json_builder_add_boolean_value (b, c->oom_killed);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static Runtime__V1__ContainerResources *
status_resources (CrispContainer *c)
{
  const Runtime__V1__LinuxContainerConfig *linux = c->config->linux;
  if (linux == NULL || linux->resources == NULL)
    return NULL;
  Runtime__V1__ContainerResources *r = malloc (sizeof *r);
  runtime__v1__container_resources__init (r);
  r->linux = crisp_proto_dup (&linux->resources->base);
  return r;
}

/* The identity the spec gave the container's first process; NULL when the record predates
 * crisp keeping it. */
static Runtime__V1__ContainerUser *
status_user (CrispContainer *c)
{
  if (!c->has_user)
    return NULL;
  Runtime__V1__LinuxContainerUser *l = malloc (sizeof *l);
  runtime__v1__linux_container_user__init (l);
  l->uid = c->uid;
  l->gid = c->gid;
  l->n_supplemental_groups = c->gids->len;
  l->supplemental_groups = malloc ((c->gids->len ? c->gids->len : 1) * sizeof (int64_t));
  for (guint i = 0; i < c->gids->len; i++)
    l->supplemental_groups[i] = g_array_index (c->gids, guint32, i);
  Runtime__V1__ContainerUser *u = malloc (sizeof *u);
  runtime__v1__container_user__init (u);
  u->linux = l;
  return u;
}

/* The signal StopContainer sends first, as crisp chose it at create. */
static Runtime__V1__Signal
status_stop_signal (CrispContainer *c)
{
  int sig = 0;
  if (c->stop_signal == NULL || crisp_signal_parse (c->stop_signal, &sig) < 0)
    return RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT;
  return crisp_oci_signal_to_cri (sig);
}

Runtime__V1__ContainerStatusResponse *
crisp_container_build_status (CrispContainerService *svc, CrispContainer *c, gboolean verbose)
{
  const Runtime__V1__ContainerConfig *cfg = c->config;
  Runtime__V1__ContainerStatus *st = malloc (sizeof *st);
  runtime__v1__container_status__init (st);
  st->id = strdup (c->id);
  st->metadata = crisp_proto_dup (&cfg->metadata->base);
  st->state = crisp_container_cri_state (c->state);
  st->created_at = c->created_at;
  st->started_at = c->started_at;
  st->finished_at = c->state == CRISP_CONTAINER_EXITED ? c->finished_at : 0;
  st->exit_code = c->state == CRISP_CONTAINER_EXITED ? c->exit_code : 0;
  st->image = crisp_proto_dup (&cfg->image->base);
  st->image_ref = strdup (c->image_ref ? c->image_ref : "");
  st->image_id = strdup (c->image_id);
  st->reason = strdup (c->state == CRISP_CONTAINER_EXITED && c->reason ? c->reason : "");
  st->message = strdup (c->message ? c->message : "");
  st->labels = crisp_proto_copy_map (cfg->n_labels, (void *const *) cfg->labels,
                                     &runtime__v1__container_status__labels_entry__descriptor,
                                     &st->n_labels);
  st->annotations = crisp_proto_copy_map (
      cfg->n_annotations, (void *const *) cfg->annotations,
      &runtime__v1__container_status__annotations_entry__descriptor, &st->n_annotations);
  st->n_mounts = cfg->n_mounts;
  st->mounts = cfg->n_mounts ? malloc (cfg->n_mounts * sizeof (void *)) : NULL;
  for (size_t i = 0; i < cfg->n_mounts; i++)
    st->mounts[i] = crisp_proto_dup (&cfg->mounts[i]->base);
  st->log_path = strdup (c->log_path ? c->log_path : "");
  st->resources = status_resources (c);
  st->user = status_user (c);
  st->stop_signal = status_stop_signal (c);

  Runtime__V1__ContainerStatusResponse *resp = malloc (sizeof *resp);
  runtime__v1__container_status_response__init (resp);
  resp->status = st;
  if (verbose)
    {
      resp->n_info = 1;
      resp->info = malloc (sizeof (void *));
      CrispProtoStringEntry *e = malloc (sizeof (Runtime__V1__ContainerStatusResponse__InfoEntry));
      runtime__v1__container_status_response__info_entry__init ((void *) e);
      e->key = strdup ("info");
      e->value = verbose_info (c);
      resp->info[0] = (void *) e;
    }
  return resp;
}

gboolean
crisp_container_service_status_in_memory (CrispContainerService *svc, const char *id)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, NULL);
  return c == NULL || crisp_container_exit_known (svc, c);
}

gboolean
crisp_container_service_list_in_memory (CrispContainerService *svc)
{
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  for (guint i = 0; i < all->len; i++)
    if (!crisp_container_exit_known (svc, all->pdata[i]))
      return FALSE;
  return TRUE;
}

Runtime__V1__ContainerStatusResponse *
crisp_container_service_status (CrispContainerService *svc, const char *id, gboolean verbose,
                                GError **error)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, error);
  if (c == NULL)
    return NULL;
  crisp_container_update (svc, c);
  g_mutex_lock (&svc->lock);
  Runtime__V1__ContainerStatusResponse *resp = crisp_container_build_status (svc, c, verbose);
  g_mutex_unlock (&svc->lock);
  return resp;
}

Runtime__V1__ContainerStatus **
crisp_container_service_pod_statuses (CrispContainerService *svc, const char *pod_id,
                                      size_t *out_n)
{
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, pod_id);
  Runtime__V1__ContainerStatus **out = g_new0 (Runtime__V1__ContainerStatus *, all->len + 1);
  size_t n = 0;
  for (guint i = 0; i < all->len; i++)
    {
      CrispContainer *c = all->pdata[i];
      crisp_container_update (svc, c);
      g_mutex_lock (&svc->lock);
      gboolean gone = c->state == CRISP_CONTAINER_CREATING || c->state == CRISP_CONTAINER_REMOVING;
      Runtime__V1__ContainerStatusResponse *resp
          = gone ? NULL : crisp_container_build_status (svc, c, FALSE);
      g_mutex_unlock (&svc->lock);
      if (resp == NULL)
        continue;
      out[n++] = g_steal_pointer (&resp->status);
      protobuf_c_message_free_unpacked (&resp->base, NULL);
    }
  *out_n = n;
  return out;
}

static gboolean
labels_match (const Runtime__V1__ContainerConfig *cfg, const Runtime__V1__ContainerFilter *f)
{
  for (size_t i = 0; i < f->n_label_selector; i++)
    {
      gboolean found = FALSE;
      for (size_t j = 0; !found && j < cfg->n_labels; j++)
        found = g_strcmp0 (cfg->labels[j]->key, f->label_selector[i]->key) == 0
                && g_strcmp0 (cfg->labels[j]->value, f->label_selector[i]->value) == 0;
      if (!found)
        return FALSE;
    }
  return TRUE;
}

static gboolean
filter_matches (CrispContainer *c, const Runtime__V1__ContainerFilter *f)
{
  if (c->state == CRISP_CONTAINER_CREATING || c->state == CRISP_CONTAINER_REMOVING)
    return FALSE;
  if (f == NULL)
    return TRUE;
  if (f->id && *f->id && !g_str_has_prefix (c->id, f->id))
    return FALSE;
  if (f->pod_sandbox_id && *f->pod_sandbox_id && !g_str_has_prefix (c->pod_id, f->pod_sandbox_id))
    return FALSE;
  if (f->state && crisp_container_cri_state (c->state) != f->state->state)
    return FALSE;
  return labels_match (c->config, f);
}

Runtime__V1__ListContainersResponse *
crisp_container_service_list (CrispContainerService *svc, const Runtime__V1__ContainerFilter *f)
{
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  Runtime__V1__ListContainersResponse *resp = malloc (sizeof *resp);
  runtime__v1__list_containers_response__init (resp);
  resp->containers = malloc ((all->len ? all->len : 1) * sizeof (void *));
  for (guint i = 0; i < all->len; i++)
    {
      CrispContainer *c = all->pdata[i];
      crisp_container_update (svc, c);
      g_mutex_lock (&svc->lock);
      if (filter_matches (c, f))
        resp->containers[resp->n_containers++] = crisp_container_build_item (svc, c);
      g_mutex_unlock (&svc->lock);
    }
  return resp;
}

void
crisp_container_service_count (CrispContainerService *svc, CrispContainerCounts *out)
{
  *out = (CrispContainerCounts){ 0 };
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  for (guint i = 0; i < all->len; i++)
    {
      CrispContainer *c = all->pdata[i];
      crisp_container_update (svc, c);
      g_mutex_lock (&svc->lock);
      CrispContainerState state = c->state;
      gboolean oom = c->oom_killed;
      int monitor_pid = c->monitor_pid;
      guint64 monitor_start = c->monitor_start_time;
      g_mutex_unlock (&svc->lock);
      if (state == CRISP_CONTAINER_CREATED)
        out->created++;
      else if (state == CRISP_CONTAINER_EXITED)
        {
          out->exited++;
          out->oom_killed += oom ? 1 : 0;
        }
      else if (state == CRISP_CONTAINER_RUNNING)
        {
          out->running++;
          out->monitors_alive += crisp_process_matches (monitor_pid, monitor_start) ? 1 : 0;
        }
    }
}

void
crisp_monitor_health_free (CrispMonitorHealth *h)
{
  g_free (h->container_id);
  g_free (h);
}

/* NULL for a container that has no monitor to report. */
static CrispMonitorHealth *
monitor_health (CrispContainerService *svc, CrispContainer *c)
{
  g_mutex_lock (&svc->lock);
  gboolean expected = c->state == CRISP_CONTAINER_CREATED || c->state == CRISP_CONTAINER_RUNNING;
  int pid = c->monitor_pid;
  guint64 start = c->monitor_start_time;
  g_mutex_unlock (&svc->lock);
  uint64_t rss = 0;
  gboolean alive = pid > 0 && crisp_proc_rss (pid, start, &rss) == 0;
  if (!expected && !alive)
    return NULL;
  CrispMonitorHealth *h = g_new0 (CrispMonitorHealth, 1);
  h->container_id = g_strdup (c->id);
  h->pid = pid;
  h->alive = alive;
  h->rss_bytes = alive ? rss : 0;
  return h;
}

static int
cmp_health (gconstpointer a, gconstpointer b)
{
  const CrispMonitorHealth *x = *(CrispMonitorHealth *const *) a;
  const CrispMonitorHealth *y = *(CrispMonitorHealth *const *) b;
  return strcmp (x->container_id, y->container_id);
}

GPtrArray *
crisp_container_service_monitors (CrispContainerService *svc)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_monitor_health_free);
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  for (guint i = 0; i < all->len; i++)
    {
      CrispContainer *c = all->pdata[i];
      crisp_container_update (svc, c);
      CrispMonitorHealth *h = monitor_health (svc, c);
      if (h != NULL)
        g_ptr_array_add (out, h);
    }
  g_ptr_array_sort (out, cmp_health);
  return out;
}

/* A running container's monitor control socket, or FAILED_PRECONDITION. */
static int
connect_running (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  crisp_container_update (svc, c);
  if (crisp_container_get_state (svc, c) != CRISP_CONTAINER_RUNNING)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "container '%s' is not running",
                        c->id),
           -1;
  g_autofree char *state = crisp_container_run_path (svc, c->id, "monitor");
  int fd = -1;
  int r = crisp_monitor_connect (state, &fd);
  if (r < 0)
    return crisp_throw_errno (error, r, "connecting to the monitor of container '%s'", c->id), -1;
  return fd;
}

Runtime__V1__ExecSyncResponse *
crisp_container_service_exec_sync (CrispContainerService *svc,
                                   const Runtime__V1__ExecSyncRequest *req, gboolean *out_truncated,
                                   GError **error)
{
  if (req->n_cmd == 0 || req->cmd[0] == NULL || *req->cmd[0] == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "cmd is empty"), NULL;
  if (req->timeout < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "timeout %" G_GINT64_FORMAT " is negative", req->timeout),
           NULL;
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, req->container_id, error);
  if (c == NULL)
    return NULL;
  _cleanup_close_ int fd = connect_running (svc, c, error);
  if (fd < 0)
    return NULL;
  g_autofree const char **argv = g_new0 (const char *, req->n_cmd + 1);
  for (size_t i = 0; i < req->n_cmd; i++)
    argv[i] = req->cmd[i];
  CrispMonitorExecResult res = { 0 };
  guint32 timeout_ms = (guint32) MIN (req->timeout, G_MAXUINT32 / 1000) * 1000;
  g_autofree char *exec_spec
      = crisp_container_run_path (svc, c->id, "monitor/" CRISP_MONITOR_FILE_EXEC_SPEC);
  g_debug ("exec in container '%s': %s", c->id,
           access (exec_spec, F_OK) == 0 ? "direct, from its monitor" : "through the runtime");
  int r = crisp_monitor_exec (fd, argv, NULL, timeout_ms, EXEC_SYNC_OUTPUT_MAX, &res);
  if (r == -ETIMEDOUT)
    return crisp_throw_errno (error, r, "exec in container '%s': its monitor did not answer", c->id),
           NULL;
  if (r < 0)
    return crisp_throw_errno (error, r, "exec in container '%s'", c->id), NULL;
  /* The container may have exited while the runtime was setting the exec up: then the
   * runtime's own complaint is not the command's result. */
  crisp_container_update (svc, c);
  if (crisp_container_get_state (svc, c) != CRISP_CONTAINER_RUNNING)
    {
      crisp_monitor_exec_result_clear (&res);
      return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                          "container '%s' exited during the exec", c->id),
             NULL;
    }
  if (res.timed_out)
    {
      crisp_monitor_exec_result_clear (&res);
      return crisp_throw (error, CRISP_ERROR_DEADLINE_EXCEEDED,
                          "command '%s' timed out after %" G_GINT64_FORMAT " s", req->cmd[0],
                          req->timeout),
             NULL;
    }
  crisp_monitor_exec_result_fit (&res, EXEC_SYNC_OUTPUT_MAX);
  *out_truncated = res.truncated;
  Runtime__V1__ExecSyncResponse *resp = malloc (sizeof *resp);
  runtime__v1__exec_sync_response__init (resp);
  resp->stdout.data = (uint8_t *) TAKE_PTR (res.out);
  resp->stdout.len = res.out_len;
  resp->stderr.data = (uint8_t *) TAKE_PTR (res.err);
  resp->stderr.len = res.err_len;
  resp->exit_code = res.exit_code;
  crisp_monitor_exec_result_clear (&res);
  return resp;
}

/* The container `id` if it is running; NOT_FOUND or FAILED_PRECONDITION otherwise. */
static CrispContainer *
lookup_running (CrispContainerService *svc, const char *id, GError **error)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, error);
  if (c == NULL)
    return NULL;
  crisp_container_update (svc, c);
  if (crisp_container_get_state (svc, c) != CRISP_CONTAINER_RUNNING)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "container '%s' is not running",
                        c->id),
           NULL;
  return g_steal_pointer (&c);
}

gboolean
crisp_container_service_stream_info (CrispContainerService *svc, const char *id,
                                     CrispContainerStreamInfo *out, GError **error)
{
  g_autoptr (CrispContainer) c = lookup_running (svc, id, error);
  if (c == NULL)
    return FALSE;
  out->id = g_strdup (c->id);
  out->monitor_dir = crisp_container_run_path (svc, c->id, "monitor");
  out->monitor_version = c->monitor_version;
  out->tty = c->config->tty;
  out->stdin_open = c->config->stdin;
  return TRUE;
}

void
crisp_container_stream_info_clear (CrispContainerStreamInfo *info)
{
  g_clear_pointer (&info->id, g_free);
  g_clear_pointer (&info->monitor_dir, g_free);
}

gboolean
crisp_container_service_reopen_log (CrispContainerService *svc, const char *id, GError **error)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, error);
  if (c == NULL)
    return FALSE;
  _cleanup_close_ int fd = connect_running (svc, c, error);
  if (fd < 0)
    return FALSE;
  int r = crisp_monitor_reopen_log (fd);
  if (r < 0)
    return crisp_throw_errno (error, r, "reopening the log of container '%s'", c->id);
  return TRUE;
}
