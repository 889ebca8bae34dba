/* crisp's Prometheus metrics ([metrics], off by default): the hooks the transport and the
 * handlers call, and the HTTP endpoint.  Every hook does nothing while metrics are off. */
#pragma once

#include "server.h"

G_BEGIN_DECLS

typedef struct _CrispServerMetrics CrispServerMetrics;
struct _CrispStreaming;

/* Creates the registry when [metrics] enable is set; before the other areas, which add
 * their collectors. */
gboolean crisp_metrics_handlers_init (CrispServer *self, GError **error);
/* Binds [metrics] address:port (0: a free one) and serves GET /metrics; logs the URL with
 * the port actually bound. */
gboolean crisp_metrics_serve (CrispServer *self, GError **error);

/* A call ended with `code` (a gRPC status code); `started_us` is its monotonic start. */
void crisp_metrics_rpc_ended (CrispServer *self, const char *method, int code, gint64 started_us);
void crisp_metrics_pull_ended (CrispServer *self, gboolean ok, gint64 started_us);
/* crisp serves CRI: the time since `process_started_us` (monotonic) is the recovery time. */
void crisp_metrics_serving (CrispServer *self, gint64 process_started_us);
void crisp_metrics_watch_streaming (CrispServer *self, struct _CrispStreaming *streaming);

G_END_DECLS
