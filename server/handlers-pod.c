/* The pod sandbox RPCs: RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus,
 * ListPodSandbox (and StreamPodSandboxes), UpdatePodSandboxResources.  Thin: decode, one call into
 * pkg/sandbox, encode. */
#include "config.h"

#include "events.h"
#include "server.h"

#include "pkg/container/container.h"
#include "pkg/sandbox/sandbox.h"

#include <unistd.h>

/* The full id of the pod `id` names, if it is in one of the states given as a mask of
 * 1 << CrispPodState, for the event a successful call announces. */
static char *
pod_for_event (CrispServer *self, const char *id, guint states)
{
  g_autoptr (CrispPod) pod = crisp_pod_service_lookup (self->pods, id, NULL);
  if (pod == NULL || !(states & (1u << crisp_pod_service_get_state (self->pods, pod))))
    return NULL;
  return g_strdup (pod->id);
}

static void
announce (CrispServer *self, const char *pod_id, Runtime__V1__ContainerEventType type)
{
  if (pod_id != NULL)
    crisp_events_emit (self->events, pod_id, pod_id, type);
}

static void
run_pod_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__RunPodSandboxRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__RunPodSandboxRequest);
  g_autofree char *id
      = crisp_pod_service_run (self->pods, req, crisp_call_cancellable (call), &error);
  if (id == NULL)
    {
      crisp_call_fail (call, error);
      return;
    }
  Runtime__V1__RunPodSandboxResponse resp = RUNTIME__V1__RUN_POD_SANDBOX_RESPONSE__INIT;
  resp.pod_sandbox_id = id;
  crisp_call_finish (call, &resp.base);
  announce (self, id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
  announce (self, id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
}

static void
stop_pod_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__StopPodSandboxRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__StopPodSandboxRequest);
  Runtime__V1__StopPodSandboxResponse resp = RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
  g_autofree char *was_ready = pod_for_event (self, req->pod_sandbox_id, 1u << CRISP_POD_READY);
  if (!crisp_pod_service_stop (self->pods, req->pod_sandbox_id, crisp_call_cancellable (call),
                               &error))
    return crisp_call_fail (call, error);
  crisp_call_finish (call, &resp.base);
  announce (self, was_ready, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
}

static void
remove_pod_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__RemovePodSandboxRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__RemovePodSandboxRequest);
  Runtime__V1__RemovePodSandboxResponse resp = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;
  g_autofree char *existed = pod_for_event (self, req->pod_sandbox_id, ~0u);
  if (!crisp_pod_service_remove (self->pods, req->pod_sandbox_id, crisp_call_cancellable (call),
                                 &error))
    return crisp_call_fail (call, error);
  crisp_call_finish (call, &resp.base);
  announce (self, existed, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
}

/* In a thread: it waits for a Run, Stop or Remove of the same pod, and writes the record. */
static void
update_pod_resources_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__UpdatePodSandboxResourcesRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__UpdatePodSandboxResourcesRequest);
  Runtime__V1__UpdatePodSandboxResourcesResponse resp
      = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_RESPONSE__INIT;
  if (crisp_pod_service_update_resources (self->pods, req->pod_sandbox_id, req->overhead,
                                          req->resources, &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
}

static void
handle_pod_sandbox_status (CrispServer *self, CrispCall *call)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__PodSandboxStatusRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__PodSandboxStatusRequest);
  Runtime__V1__PodSandboxStatusResponse *resp
      = crisp_pod_service_status (self->pods, req->pod_sandbox_id, req->verbose, &error);
  if (resp == NULL)
    {
      crisp_call_fail (call, error);
      return;
    }
  /* What the kubelet's Evented PLEG reads instead of a ContainerStatus per container. */
  g_assert (resp->n_containers_statuses == 0);
  g_free (resp->containers_statuses);
  resp->containers_statuses = crisp_container_service_pod_statuses (
      self->containers, resp->status->id, &resp->n_containers_statuses);
  crisp_call_finish (call, &resp->base);
  protobuf_c_message_free_unpacked (&resp->base, NULL);
}

/* ListPodSandbox and StreamPodSandboxes. */
static void
handle_list_pod_sandbox (CrispServer *self, CrispCall *call)
{
  crisp_call_reply_list (call, (ProtobufCMessage *) crisp_pod_service_list (
                                   self->pods, crisp_call_list_filter (call)));
}

/* crisp-pause beside the crisp binary (a build tree), else the installed one. */
static char *
find_pause (void)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = exe ? g_path_get_dirname (exe) : NULL;
  g_autofree char *sibling = dir ? g_build_filename (dir, "crisp-pause", NULL) : NULL;
  if (sibling != NULL && g_file_test (sibling, G_FILE_TEST_IS_EXECUTABLE))
    return g_steal_pointer (&sibling);
  return g_build_filename (LIBEXECDIR, "crisp-pause", NULL);
}

static void
free_pods (gpointer data)
{
  crisp_pod_service_free (data);
}

gboolean
crisp_pod_handlers_init (CrispServer *self, GError **error)
{
  const CrispConfig *cfg = self->config;
  g_autofree char *pause = find_pause ();
  CrispPodOptions opts = {
    .root = cfg->root,
    .run_root = cfg->run_root,
    .cni_config_dir = cfg->cni_config_dir,
    .cni_plugin_dirs = (const char *const *) cfg->cni_plugin_dirs,
    .cgroup_driver = cfg->cgroup_driver,
    .pause_path = pause,
  };
  self->pods = crisp_pod_service_new (&opts, error);
  if (self->pods == NULL)
    return FALSE;
  crisp_server_add_cleanup (self, free_pods, self->pods);
  crisp_server_register_in_thread (self, "RunPodSandbox", run_pod_thread);
  crisp_server_register_in_thread (self, "StopPodSandbox", stop_pod_thread);
  crisp_server_register_in_thread (self, "RemovePodSandbox", remove_pod_thread);
  crisp_server_register_quick (self, "PodSandboxStatus", handle_pod_sandbox_status);
  crisp_server_register_quick (self, "ListPodSandbox", handle_list_pod_sandbox);
  crisp_server_register (self, "StreamPodSandboxes", handle_list_pod_sandbox);
  crisp_server_register_in_thread (self, "UpdatePodSandboxResources", update_pod_resources_thread);
  return TRUE;
}
