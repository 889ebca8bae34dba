/* crisp's Prometheus metrics: the families, the hooks that update them, the collectors that
 * compute pod, container and streaming gauges at scrape time, and the HTTP endpoint (GET
 * /metrics only; one bounded request head per connection, in a small thread pool). */
#include "config.h"

#include "metrics.h"
#include "streaming.h"

#include "pkg/container/container.h"
#include "pkg/image/image-service.h"
#include "pkg/metrics/metrics.h"
#include "pkg/sandbox/sandbox.h"

#include <errno.h>
#include <string.h>

#define MAX_SCRAPES 4 /* connections served at once; more wait in the backlog */

struct _CrispServerMetrics
{
  CrispServer *server;
  CrispMetrics *registry;
  CrispMetric *rpcs, *rpc_seconds;
  CrispMetric *pulls, *pull_seconds, *pull_bytes;
  CrispMetric *pods, *containers, *oom_killed, *monitors_alive, *monitors_rss;
  CrispMetric *streaming_active, *recovery_seconds;
  CrispStreaming *streaming; /* set at start-up, before the endpoint serves */
  GSocketService *service;
  gint active; /* connections being served (atomic) */
  /* Scrapes read the services, which shutdown frees: each render holds it for reading; the
   * endpoint's stop takes it for writing and sets `stopped`, so no render starts after. */
  GRWLock stop_lock;
  gboolean stopped;
};

static const double rpc_bounds[]
    = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
static const double pull_bounds[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600 };

static double
seconds_since (gint64 started_us)
{
  return (double) (g_get_monotonic_time () - started_us) / G_USEC_PER_SEC;
}

void
crisp_metrics_rpc_ended (CrispServer *self, const char *method, int code, gint64 started_us)
{
  CrispServerMetrics *m = self->metrics;
  if (m == NULL)
    return;
  crisp_metric_add (m->rpcs, (const char *[]){ method, crisp_error_code_name (code) }, 1);
  crisp_metric_observe (m->rpc_seconds, (const char *[]){ method }, seconds_since (started_us));
}

void
crisp_metrics_pull_ended (CrispServer *self, gboolean ok, gint64 started_us)
{
  CrispServerMetrics *m = self->metrics;
  if (m == NULL)
    return;
  crisp_metric_add (m->pulls, (const char *[]){ ok ? "success" : "failure" }, 1);
  crisp_metric_observe (m->pull_seconds, NULL, seconds_since (started_us));
}

void
crisp_metrics_serving (CrispServer *self, gint64 process_started_us)
{
  if (self->metrics != NULL)
    crisp_metric_set (self->metrics->recovery_seconds, NULL, seconds_since (process_started_us));
}

void
crisp_metrics_watch_streaming (CrispServer *self, CrispStreaming *streaming)
{
  if (self->metrics != NULL)
    self->metrics->streaming = streaming;
}

/* Pods and containers from the services' memory, as List reports them. */
static void
collect_workloads (gpointer data)
{
  CrispServerMetrics *m = data;
  CrispServer *server = m->server;
  guint ready = 0, notready = 0;
  if (server->pods != NULL)
    {
      Runtime__V1__ListPodSandboxResponse *pods = crisp_pod_service_list (server->pods, NULL);
      for (size_t i = 0; i < pods->n_items; i++)
        if (pods->items[i]->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
          ready++;
        else
          notready++;
      protobuf_c_message_free_unpacked (&pods->base, NULL);
    }
  crisp_metric_set (m->pods, (const char *[]){ "ready" }, ready);
  crisp_metric_set (m->pods, (const char *[]){ "notready" }, notready);
  CrispContainerCounts c = { 0 };
  if (server->containers != NULL)
    crisp_container_service_count (server->containers, &c);
  crisp_metric_set (m->containers, (const char *[]){ "created" }, c.created);
  crisp_metric_set (m->containers, (const char *[]){ "running" }, c.running);
  crisp_metric_set (m->containers, (const char *[]){ "exited" }, c.exited);
  crisp_metric_set (m->oom_killed, NULL, c.oom_killed);
  crisp_metric_set (m->monitors_alive, NULL, c.monitors_alive);
  guint64 rss = 0;
  g_autoptr (GPtrArray) monitors
      = server->containers ? crisp_container_service_monitors (server->containers) : NULL;
  for (guint i = 0; monitors && i < monitors->len; i++)
    rss += ((CrispMonitorHealth *) monitors->pdata[i])->rss_bytes;
  crisp_metric_set (m->monitors_rss, NULL, (double) rss);
  if (server->images != NULL)
    crisp_metric_set (m->pull_bytes, NULL,
                      (double) crisp_image_service_pulled_bytes (server->images));
}

static void
collect_streaming (gpointer data)
{
  CrispServerMetrics *m = data;
  crisp_metric_set (m->streaming_active, NULL,
                    m->streaming != NULL ? crisp_streaming_active (m->streaming) : 0);
}

static void
add_families (CrispServerMetrics *m)
{
  CrispMetrics *r = m->registry;
  const char *method_code[] = { "method", "code", NULL };
  const char *method[] = { "method", NULL };
  const char *result[] = { "result", NULL };
  const char *state[] = { "state", NULL };
  m->rpcs
      = crisp_metrics_add_counter (r, "crisp_grpc_requests_total",
                                   "CRI calls ended, by method and gRPC status code.", method_code);
  m->rpc_seconds
      = crisp_metrics_add_histogram (r, "crisp_grpc_request_duration_seconds",
                                     "Time from a CRI call's arrival to its reply, by method.",
                                     method, rpc_bounds, G_N_ELEMENTS (rpc_bounds));
  m->pulls = crisp_metrics_add_counter (
      r, "crisp_image_pulls_total", "Image pulls ended, by result (success or failure).", result);
  m->pull_bytes = crisp_metrics_add_counter (r, "crisp_image_pull_bytes_total",
                                             "Bytes of image layers downloaded by pulls.", NULL);
  m->pull_seconds = crisp_metrics_add_histogram (r, "crisp_image_pull_duration_seconds",
                                                 "Time each image pull took, failed ones too.",
                                                 NULL, pull_bounds, G_N_ELEMENTS (pull_bounds));
  m->pods = crisp_metrics_add_gauge (r, "crisp_pods", "Pod sandboxes by state.", state);
  m->containers = crisp_metrics_add_gauge (r, "crisp_containers", "Containers by state.", state);
  m->oom_killed = crisp_metrics_add_gauge (r, "crisp_containers_oom_killed",
                                           "Exited containers that the OOM killer ended.", NULL);
  m->monitors_alive = crisp_metrics_add_gauge (
      r, "crisp_monitors_alive", "Running containers whose monitor process is alive.", NULL);
  m->monitors_rss = crisp_metrics_add_gauge (
      r, "crisp_monitors_resident_bytes",
      "Resident memory of all container monitors together (RSS of each, summed).", NULL);
  m->streaming_active = crisp_metrics_add_gauge (
      r, "crisp_streaming_connections_active",
      "Streaming connections crisp serves itself (request heads, port-forwards).", NULL);
  m->recovery_seconds = crisp_metrics_add_gauge (
      r, "crisp_startup_recovery_seconds",
      "Time from crisp's start to serving CRI, recovery of the state included.", NULL);
  crisp_metrics_add_collector (r, collect_workloads, m);
  crisp_metrics_add_collector (r, collect_streaming, m);
}

/* Runs before the services are freed (its cleanup was added after theirs). */
static void
stop_endpoint (gpointer data)
{
  CrispServerMetrics *m = data;
  g_socket_service_stop (m->service);
  g_socket_listener_close (G_SOCKET_LISTENER (m->service));
  g_rw_lock_writer_lock (&m->stop_lock);
  m->stopped = TRUE;
  g_rw_lock_writer_unlock (&m->stop_lock);
}

static void
free_metrics (gpointer data)
{
  CrispServerMetrics *m = data;
  m->server->metrics = NULL;
  /* A connection still open uses the registry: the process exits right after this. */
  if (g_atomic_int_get (&m->active) > 0)
    return;
  g_clear_object (&m->service);
  crisp_metrics_free (m->registry);
  g_rw_lock_clear (&m->stop_lock);
  g_free (m);
}

gboolean
crisp_metrics_handlers_init (CrispServer *self, GError **error)
{
  if (!self->config->metrics_enable)
    return TRUE;
  CrispServerMetrics *m = g_new0 (CrispServerMetrics, 1);
  m->server = self;
  m->registry = crisp_metrics_new ();
  g_rw_lock_init (&m->stop_lock);
  add_families (m);
  self->metrics = m;
  crisp_server_add_cleanup (self, free_metrics, m);
  return TRUE;
}

/* "GET /metrics HTTP/1.x" (a query string is ignored); anything else is not ours. */
static gboolean
is_get_metrics (const char *head, gsize len)
{
  const char *eol = memchr (head, '\n', len);
  g_autofree char *line = g_strndup (head, eol ? (gsize) (eol - head) : len);
  g_strchomp (line);
  g_auto (GStrv) parts = g_strsplit (line, " ", -1);
  if (g_strv_length (parts) != 3 || strcmp (parts[0], "GET") != 0
      || !g_str_has_prefix (parts[2], "HTTP/1."))
    return FALSE;
  return strcmp (parts[1], "/metrics") == 0 || g_str_has_prefix (parts[1], "/metrics?");
}

static void
serve_connection (CrispServerMetrics *m, int fd)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  gssize head_len = crisp_streaming_read_head (fd, buf);
  if (head_len < 0)
    return;
  if (!is_get_metrics ((const char *) buf->data, head_len))
    return crisp_streaming_send_status (fd, "404 Not Found", "only GET /metrics is served\n");
  g_rw_lock_reader_lock (&m->stop_lock);
  g_autofree char *body = m->stopped ? NULL : crisp_metrics_render (m->registry);
  g_rw_lock_reader_unlock (&m->stop_lock);
  if (body == NULL)
    return crisp_streaming_send_status (fd, "503 Service Unavailable", "crisp is stopping\n");
  g_autofree char *head = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                                           "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                           CRISP_METRICS_CONTENT_TYPE, strlen (body));
  if (crisp_send_all (fd, head, strlen (head)) == 0)
    crisp_send_all (fd, body, strlen (body));
}

static gboolean
on_run (GThreadedSocketService *service, GSocketConnection *conn, GObject *source, gpointer data)
{
  CrispServerMetrics *m = data;
  GSocket *sock = g_socket_connection_get_socket (conn);
  g_socket_set_blocking (sock, TRUE);
  g_atomic_int_inc (&m->active);
  serve_connection (m, g_socket_get_fd (sock));
  g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
  g_atomic_int_dec_and_test (&m->active);
  return TRUE;
}

gboolean
crisp_metrics_serve (CrispServer *self, GError **error)
{
  CrispServerMetrics *m = self->metrics;
  if (m == NULL)
    return TRUE;
  const char *address = self->config->metrics_address;
  int port = self->config->metrics_port;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);
  if (inet == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "metrics address '%s' is not an IP address", address);
  g_autoptr (GSocketAddress) want = g_inet_socket_address_new (inet, port);
  g_autoptr (GSocketAddress) got = NULL;
  m->service = g_threaded_socket_service_new (MAX_SCRAPES);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (m->service), want, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &got, error))
    return crisp_prefix_error (error, "metrics endpoint on %s:%d: ", address, port);
  g_signal_connect (m->service, "run", G_CALLBACK (on_run), m);
  g_socket_service_start (m->service);
  crisp_server_add_cleanup (self, stop_endpoint, m);
  gboolean v6 = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6;
  g_message ("metrics on http://%s%s%s:%u/metrics", v6 ? "[" : "", address, v6 ? "]" : "",
             g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (got)));
  return TRUE;
}
