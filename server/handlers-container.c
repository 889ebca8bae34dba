/* The container RPCs: lifecycle, status and list, exec-sync, log reopen, resources, stats.
 * Thin: decode, one call into pkg/container, encode. Anything that touches the runtime or the
 * monitor runs in a worker thread. */
#include "config.h"

#include "server.h"

#include "pkg/container/container.h"
#include "pkg/image/image-service.h"
#include "pkg/sandbox/sandbox.h"

/* Ends a call with a malloc'd response, or with the error when there is none. */
/* Call as finish_owned (call, resp, error) only after resp was computed: C leaves the order
 * of argument evaluation open. */
static void
finish_owned (CrispCall *call, ProtobufCMessage *resp, GError *error)
{
  if (resp == NULL)
    {
      crisp_call_fail (call, error);
      return;
    }
  crisp_call_finish (call, resp);
  protobuf_c_message_free_unpacked (resp, NULL);
}

static void
create_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__CreateContainerRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__CreateContainerRequest);
  g_autofree char *id = crisp_container_service_create (self->containers, req,
                                                        crisp_call_cancellable (call), &error);
  if (id == NULL)
    {
      crisp_call_fail (call, error);
      return;
    }
  Runtime__V1__CreateContainerResponse resp = RUNTIME__V1__CREATE_CONTAINER_RESPONSE__INIT;
  resp.container_id = id;
  crisp_call_finish (call, &resp.base);
}

static void
start_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__StartContainerRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__StartContainerRequest);
  Runtime__V1__StartContainerResponse resp = RUNTIME__V1__START_CONTAINER_RESPONSE__INIT;
  if (crisp_container_service_start (self->containers, req->container_id, &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
  crisp_container_service_start_answered (self->containers);
}

static void
stop_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__StopContainerRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__StopContainerRequest);
  Runtime__V1__StopContainerResponse resp = RUNTIME__V1__STOP_CONTAINER_RESPONSE__INIT;
  if (crisp_container_service_stop (self->containers, req->container_id, req->timeout,
                                    crisp_call_cancellable (call), &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
}

static void
remove_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__RemoveContainerRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__RemoveContainerRequest);
  Runtime__V1__RemoveContainerResponse resp = RUNTIME__V1__REMOVE_CONTAINER_RESPONSE__INIT;
  if (crisp_container_service_remove (self->containers, req->container_id,
                                      crisp_call_cancellable (call), &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
}

static void
status_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__ContainerStatusRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__ContainerStatusRequest);
  ProtobufCMessage *resp = (ProtobufCMessage *) crisp_container_service_status (
      self->containers, req->container_id, req->verbose, &error);
  finish_owned (call, resp, error);
}

/* On the main loop when memory has the answer (no thread hand-over: the call's cost is then
 * the transport's), in a worker when the container's state must be read from its files. */
static void
handle_container_status (CrispServer *self, CrispCall *call)
{
  const Runtime__V1__ContainerStatusRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__ContainerStatusRequest);
  if (crisp_container_service_status_in_memory (self->containers, req->container_id))
    status_thread (self, call, NULL);
  else
    crisp_call_run_in_thread (call, status_thread, NULL, NULL);
}

/* ListContainers and StreamContainers. */
static void
list_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  crisp_call_reply_list (call, (ProtobufCMessage *) crisp_container_service_list (
                                   self->containers, crisp_call_list_filter (call)));
}

/* ListContainers as ContainerStatus: on the main loop when memory has every answer. */
static void
handle_list_containers (CrispServer *self, CrispCall *call)
{
  if (crisp_container_service_list_in_memory (self->containers))
    list_thread (self, call, NULL);
  else
    crisp_call_run_in_thread (call, list_thread, NULL, NULL);
}

static void
exec_sync_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__ExecSyncRequest *req = CRISP_CALL_REQUEST (call, Runtime__V1__ExecSyncRequest);
  gboolean truncated = FALSE;
  ProtobufCMessage *resp = (ProtobufCMessage *) crisp_container_service_exec_sync (
      self->containers, req, &truncated, &error);
  /* CRI has no field for it: a client that looks finds the flag in the trailing metadata. */
  if (truncated)
    {
      g_message ("ExecSync in container '%s': output cut to fit a 16 MiB reply", req->container_id);
      crisp_call_set_trailer (call, "crisp-output-truncated", "true");
    }
  finish_owned (call, resp, error);
}

static void
reopen_log_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__ReopenContainerLogRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__ReopenContainerLogRequest);
  Runtime__V1__ReopenContainerLogResponse resp = RUNTIME__V1__REOPEN_CONTAINER_LOG_RESPONSE__INIT;
  if (crisp_container_service_reopen_log (self->containers, req->container_id, &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
}

static void
update_resources_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__UpdateContainerResourcesRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__UpdateContainerResourcesRequest);
  Runtime__V1__UpdateContainerResourcesResponse resp
      = RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_RESPONSE__INIT;
  if (crisp_container_service_update_resources (self->containers, req, &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
}

static void
container_stats_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__ContainerStatsRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__ContainerStatsRequest);
  ProtobufCMessage *resp = (ProtobufCMessage *) crisp_container_service_stats (
      self->containers, req->container_id, &error);
  finish_owned (call, resp, error);
}

/* ListContainerStats and StreamContainerStats. */
static void
list_container_stats_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  crisp_call_reply_list (call, (ProtobufCMessage *) crisp_container_service_list_stats (
                                   self->containers, crisp_call_list_filter (call)));
}

static void
pod_stats_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__PodSandboxStatsRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__PodSandboxStatsRequest);
  ProtobufCMessage *resp = (ProtobufCMessage *) crisp_container_service_pod_stats (
      self->containers, req->pod_sandbox_id, &error);
  finish_owned (call, resp, error);
}

/* ListPodSandboxStats and StreamPodSandboxStats. */
static void
list_pod_stats_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  crisp_call_reply_list (call, (ProtobufCMessage *) crisp_container_service_list_pod_stats (
                                   self->containers, crisp_call_list_filter (call)));
}

static void
checkpoint_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__CheckpointContainerRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__CheckpointContainerRequest);
  Runtime__V1__CheckpointContainerResponse resp = RUNTIME__V1__CHECKPOINT_CONTAINER_RESPONSE__INIT;
  if (crisp_container_service_checkpoint (self->containers, req->container_id, req->location,
                                          req->timeout, &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
}

static gboolean
image_in_use (const char *image_id, gpointer data)
{
  return crisp_container_service_image_in_use (data, image_id);
}

static void
free_containers (gpointer data)
{
  crisp_container_service_free (data);
}

gboolean
crisp_container_handlers_init (CrispServer *self, GError **error)
{
  self->containers = crisp_container_service_new (self->config, self->pods, self->images, error);
  if (self->containers == NULL)
    return crisp_prefix_error (error, "loading containers: ");
  crisp_server_add_cleanup (self, free_containers, self->containers);
  CrispPodContainerHooks hooks = {
    .stop_pod = crisp_container_service_stop_pod,
    .settle_pod = crisp_container_service_settle_pod,
    .remove_pod = crisp_container_service_remove_pod,
    .data = self->containers,
  };
  crisp_pod_service_set_container_hooks (self->pods, &hooks);
  crisp_image_service_set_in_use_func (self->images, image_in_use, self->containers);
  crisp_server_register_in_thread (self, "CreateContainer", create_thread);
  crisp_server_register_in_thread (self, "StartContainer", start_thread);
  crisp_server_register_in_thread (self, "StopContainer", stop_thread);
  crisp_server_register_in_thread (self, "RemoveContainer", remove_thread);
  crisp_server_register_quick (self, "ContainerStatus", handle_container_status);
  crisp_server_register_quick (self, "ListContainers", handle_list_containers);
  crisp_server_register_in_thread (self, "StreamContainers", list_thread);
  crisp_server_register_in_thread (self, "ExecSync", exec_sync_thread);
  crisp_server_register_in_thread (self, "ReopenContainerLog", reopen_log_thread);
  crisp_server_register_in_thread (self, "UpdateContainerResources", update_resources_thread);
  crisp_server_register_in_thread (self, "ContainerStats", container_stats_thread);
  crisp_server_register_in_thread (self, "ListContainerStats", list_container_stats_thread);
  crisp_server_register_in_thread (self, "StreamContainerStats", list_container_stats_thread);
  crisp_server_register_in_thread (self, "PodSandboxStats", pod_stats_thread);
  crisp_server_register_in_thread (self, "ListPodSandboxStats", list_pod_stats_thread);
  crisp_server_register_in_thread (self, "StreamPodSandboxStats", list_pod_stats_thread);
  crisp_server_register_in_thread (self, "CheckpointContainer", checkpoint_thread);
  return TRUE;
}
