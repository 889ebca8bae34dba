/* Streaming RPC handlers: Exec, Attach and PortForward validate the request, store it under
 * a single-use token and answer the URL of crisp's streaming server, which serves the
 * session. */
#include "config.h"

#include "pkg/container/container.h"
#include "pkg/sandbox/sandbox.h"
#include "metrics.h"
#include "server.h"
#include "streaming.h"

static CrispStreaming *streaming; /* one per daemon, set by crisp_streaming_handlers_init */

/* Stores `req` under a new token and returns its URL, or fails the call (NULL). */
static char *
issue_url (CrispCall *call, const char *kind, gpointer req, GDestroyNotify destroy)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *token
      = crisp_stream_tokens_put (crisp_streaming_tokens (streaming), kind, req, destroy, &error);
  if (token == NULL)
    return crisp_call_fail (call, error), NULL;
  return crisp_streaming_url (streaming, kind, token);
}

/* The container's side of a session: running, and with a monitor that can serve it. */
static CrispExecRequest *
session_request_new (CrispServer *self, const char *container_id, gboolean attach, GError **error)
{
  CrispContainerStreamInfo info = { 0 };
  if (!crisp_container_service_stream_info (self->containers, container_id, &info, error))
    return NULL;
  if (info.monitor_version < 2)
    {
      crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                   "container '%s' was started by an older crisp whose monitor (protocol "
                   "version %d) cannot serve %s sessions; ExecSync still works, a recreated "
                   "container gets a current monitor",
                   info.id, info.monitor_version, attach ? "attach" : "exec");
      crisp_container_stream_info_clear (&info);
      return NULL;
    }
  CrispExecRequest *r = g_new0 (CrispExecRequest, 1);
  r->container_id = g_steal_pointer (&info.id);
  r->monitor_dir = g_steal_pointer (&info.monitor_dir);
  r->attach = attach;
  r->container_tty = info.tty;
  r->container_stdin = info.stdin_open;
  return r;
}

static CrispExecRequest *
exec_request_new (CrispServer *self, const Runtime__V1__ExecRequest *req, GError **error)
{
  if (req->n_cmd == 0 || req->cmd[0] == NULL || *req->cmd[0] == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "cmd is empty"), NULL;
  if (!req->stdin && !req->stdout && !req->stderr)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "one of stdin, stdout and stderr must be set"),
           NULL;
  if (req->tty && req->stderr)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "tty and stderr cannot both be set (a tty merges stderr into stdout)"),
           NULL;
  CrispExecRequest *r = session_request_new (self, req->container_id, FALSE, error);
  if (r == NULL)
    return NULL;
  r->cmd = g_new0 (char *, req->n_cmd + 1);
  for (size_t i = 0; i < req->n_cmd; i++)
    r->cmd[i] = g_strdup (req->cmd[i]);
  r->tty = req->tty;
  r->in = req->stdin;
  r->out = req->stdout;
  r->err = req->stderr;
  return r;
}

static void
exec_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__ExecRequest *req = CRISP_CALL_REQUEST (call, Runtime__V1__ExecRequest);
  CrispExecRequest *r = exec_request_new (self, req, &error);
  if (r == NULL)
    return crisp_call_fail (call, error);
  g_autofree char *url = issue_url (call, "exec", r, (GDestroyNotify) crisp_exec_request_free);
  if (url == NULL)
    return;
  Runtime__V1__ExecResponse resp = RUNTIME__V1__EXEC_RESPONSE__INIT;
  resp.url = url;
  crisp_call_finish (call, &resp.base);
}

static void
attach_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__AttachRequest *req = CRISP_CALL_REQUEST (call, Runtime__V1__AttachRequest);
  CrispExecRequest *r = session_request_new (self, req->container_id, TRUE, &error);
  if (r == NULL)
    return crisp_call_fail (call, error);
  /* The container's own settings decide: a tty merges stderr, and stdin exists only if the
   * container was created with it. */
  r->tty = r->container_tty;
  r->in = req->stdin && r->container_stdin;
  r->out = req->stdout;
  r->err = req->stderr && !r->tty;
  if (!r->in && !r->out && !r->err)
    {
      crisp_exec_request_free (r);
      crisp_throw (&error, CRISP_ERROR_INVALID_ARGUMENT,
                   "one of stdin, stdout and stderr must be set (stdin only if the container "
                   "has one)");
      return crisp_call_fail (call, error);
    }
  g_autofree char *url = issue_url (call, "attach", r, (GDestroyNotify) crisp_exec_request_free);
  if (url == NULL)
    return;
  Runtime__V1__AttachResponse resp = RUNTIME__V1__ATTACH_RESPONSE__INIT;
  resp.url = url;
  crisp_call_finish (call, &resp.base);
}

static CrispPortForwardRequest *
port_forward_request_new (CrispServer *self, const char *pod_id, GError **error)
{
  g_autoptr (CrispPod) pod = crisp_pod_service_lookup (self->pods, pod_id, error);
  if (pod == NULL)
    return NULL;
  if (crisp_pod_service_get_state (self->pods, pod) != CRISP_POD_READY)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "pod '%s' is not ready", pod->id),
           NULL;
  CrispPortForwardRequest *r = g_new0 (CrispPortForwardRequest, 1);
  r->pod_id = g_strdup (pod->id);
  g_mutex_lock (&pod->op_lock); /* the namespace paths change under it */
  r->net_ns = g_strdup (pod->net_ns);
  g_mutex_unlock (&pod->op_lock);
  return r;
}

static void
port_forward_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__PortForwardRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__PortForwardRequest);
  if (req->n_port > CRISP_PORT_FORWARD_MAX_PORTS)
    {
      crisp_throw (&error, CRISP_ERROR_INVALID_ARGUMENT,
                   "PortForward names %zu ports; at most %d are forwarded at once", req->n_port,
                   CRISP_PORT_FORWARD_MAX_PORTS);
      return crisp_call_fail (call, error);
    }
  for (size_t i = 0; i < req->n_port; i++)
    if (req->port[i] <= 0 || req->port[i] > 65535)
      {
        crisp_throw (&error, CRISP_ERROR_INVALID_ARGUMENT, "port %d is out of range", req->port[i]);
        return crisp_call_fail (call, error);
      }
  CrispPortForwardRequest *r = port_forward_request_new (self, req->pod_sandbox_id, &error);
  if (r == NULL)
    return crisp_call_fail (call, error);
  for (size_t i = 0; i < req->n_port; i++)
    r->ports[r->n_ports++] = (guint16) req->port[i];
  g_autofree char *url
      = issue_url (call, "portforward", r, (GDestroyNotify) crisp_port_forward_request_free);
  if (url == NULL)
    return;
  Runtime__V1__PortForwardResponse resp = RUNTIME__V1__PORT_FORWARD_RESPONSE__INIT;
  resp.url = url;
  crisp_call_finish (call, &resp.base);
}

static void
free_streaming (gpointer data)
{
  crisp_streaming_free (data);
  streaming = NULL;
}

gboolean
crisp_streaming_handlers_init (CrispServer *self, GError **error)
{
  if (self->containers == NULL)
    return TRUE;
  streaming
      = crisp_streaming_new (self->config->streaming_address, self->config->streaming_port, error);
  if (streaming == NULL)
    return FALSE;
  crisp_server_add_cleanup (self, free_streaming, streaming);
  crisp_metrics_watch_streaming (self, streaming);
  crisp_server_register_in_thread (self, "Exec", exec_thread);
  crisp_server_register_in_thread (self, "Attach", attach_thread);
  if (self->pods != NULL)
    crisp_server_register_in_thread (self, "PortForward", port_forward_thread);
  return TRUE;
}
