/* The CRI metrics RPCs, ListMetricDescriptors and ListPodSandboxMetrics (and its Stream twin) (what a kubelet with
 * PodAndContainerStatsFromCRI serves on /metrics/cadvisor); pkg/container/pod-metrics.c
 * computes them.  Not to be confused with handlers-metrics.c, crisp's own Prometheus
 * endpoint. */
#include "config.h"

#include "grpc.h"
#include "server.h"

#include "pkg/container/pod-metrics.h"

/* The kubelet's limit on a reply, less room for framing. */
#define REPLY_MAX_BYTES (16 * 1024 * 1024 - 64 * 1024)

static void
handle_list_metric_descriptors (CrispServer *self, CrispCall *call)
{
  Runtime__V1__ListMetricDescriptorsResponse *resp = crisp_pod_metrics_descriptors ();
  crisp_call_finish (call, &resp->base);
  protobuf_c_message_free_unpacked (&resp->base, NULL);
}

/* ListPodSandboxMetrics and StreamPodSandboxMetrics. */
static void
list_pod_metrics_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GPtrArray) pods = crisp_pod_metrics_collect (self->containers, NULL);
  Runtime__V1__ListPodSandboxMetricsResponse resp
      = RUNTIME__V1__LIST_POD_SANDBOX_METRICS_RESPONSE__INIT;
  resp.n_pod_metrics = pods->len;
  resp.pod_metrics = (Runtime__V1__PodSandboxMetrics **) pods->pdata;
  if (crisp_call_method (call)->server_streaming)
    return crisp_call_stream_list (call, &resp.base);
  size_t size = protobuf_c_message_get_packed_size (&resp.base);
  if (size > REPLY_MAX_BYTES)
    {
      g_autofree char *msg = g_strdup_printf (
          "the metrics of %u pods take %zu bytes, more than a reply may carry (%d): use "
          "StreamPodSandboxMetrics",
          pods->len, size, REPLY_MAX_BYTES);
      crisp_call_fail_literal (call, CRISP_ERROR_RESOURCE_EXHAUSTED, msg);
      return;
    }
  crisp_call_finish (call, &resp.base);
}

gboolean
crisp_pod_metrics_handlers_init (CrispServer *self, GError **error)
{
  crisp_server_register (self, "ListMetricDescriptors", handle_list_metric_descriptors);
  crisp_server_register_in_thread (self, "ListPodSandboxMetrics", list_pod_metrics_thread);
  crisp_server_register_in_thread (self, "StreamPodSandboxMetrics", list_pod_metrics_thread);
  return TRUE;
}
