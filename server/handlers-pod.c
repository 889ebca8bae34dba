/* The pod sandbox RPCs: RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus,
 * ListPodSandbox, UpdatePodSandboxResources.  Thin: decode, one call into pkg/sandbox, encode. */
#include "config.h"

#include "server.h"

#include "pkg/sandbox/sandbox.h"

#include <unistd.h>

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
}

static void
stop_pod_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__StopPodSandboxRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__StopPodSandboxRequest);
  Runtime__V1__StopPodSandboxResponse resp = RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
  if (crisp_pod_service_stop (self->pods, req->pod_sandbox_id, crisp_call_cancellable (call),
                              &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
}

static void
remove_pod_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__RemovePodSandboxRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__RemovePodSandboxRequest);
  Runtime__V1__RemovePodSandboxResponse resp = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;
  if (crisp_pod_service_remove (self->pods, req->pod_sandbox_id, crisp_call_cancellable (call),
                                &error))
    crisp_call_finish (call, &resp.base);
  else
    crisp_call_fail (call, error);
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
  crisp_call_finish (call, &resp->base);
  protobuf_c_message_free_unpacked (&resp->base, NULL);
}

static void
handle_list_pod_sandbox (CrispServer *self, CrispCall *call)
{
  const Runtime__V1__ListPodSandboxRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__ListPodSandboxRequest);
  Runtime__V1__ListPodSandboxResponse *resp = crisp_pod_service_list (self->pods, req->filter);
  crisp_call_finish (call, &resp->base);
  protobuf_c_message_free_unpacked (&resp->base, NULL);
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
  crisp_server_register (self, "PodSandboxStatus", handle_pod_sandbox_status);
  crisp_server_register (self, "ListPodSandbox", handle_list_pod_sandbox);
  crisp_server_register_in_thread (self, "UpdatePodSandboxResources", update_pod_resources_thread);
  return TRUE;
}
