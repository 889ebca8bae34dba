/* A small Prometheus metrics registry: counters, gauges and fixed-bucket histograms with
 * labels, written in the text exposition format 0.0.4.  Thread-safe: one lock guards every
 * series, so RPC handlers in worker threads may update while a scrape renders. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRISP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct _CrispMetrics CrispMetrics;
typedef struct _CrispMetric CrispMetric; /* one family: a name, its help, type and labels */

/* Called by crisp_metrics_render () before it writes, to set gauges computed at scrape
 * time; scrapes are serialised, so a collector never runs twice at once. */
typedef void (*CrispMetricsCollector) (gpointer data);

CrispMetrics *crisp_metrics_new (void);
void crisp_metrics_free (CrispMetrics *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispMetrics, crisp_metrics_free)

/* Families, written in the order they were added.  `label_names` is NULL-terminated (NULL:
 * no labels; a family without labels has its one series from the start, at 0).  A name or
 * label name that is not valid in the format is a programming error (NULL returned).  The
 * registry owns the family. */
CrispMetric *crisp_metrics_add_counter (CrispMetrics *self, const char *name, const char *help,
                                        const char *const *label_names);
CrispMetric *crisp_metrics_add_gauge (CrispMetrics *self, const char *name, const char *help,
                                      const char *const *label_names);
/* `bounds`: the upper bounds of the buckets, increasing; +Inf is implied. */
CrispMetric *crisp_metrics_add_histogram (CrispMetrics *self, const char *name, const char *help,
                                          const char *const *label_names, const double *bounds,
                                          gsize n_bounds);

/* `values` gives one value per label name, in their order (NULL for a family without labels);
 * any string is fine, it is escaped when written. */
void crisp_metric_add (CrispMetric *m, const char *const *values, double delta);
void crisp_metric_set (CrispMetric *m, const char *const *values, double value);
void crisp_metric_observe (CrispMetric *m, const char *const *values, double value);
/* Drops every series of a family with labels (a collector then sets the ones there are). */
void crisp_metric_clear (CrispMetric *m);

void crisp_metrics_add_collector (CrispMetrics *self, CrispMetricsCollector fn, gpointer data);

/* Runs the collectors, then writes every family; series sorted by their labels. */
char *crisp_metrics_render (CrispMetrics *self);

G_END_DECLS
