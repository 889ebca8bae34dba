/* Unit tests for pkg/metrics: the text exposition format (escaping, label sets, histogram
 * buckets, sum and count, collectors) and concurrent updates. */
#include "config.h"

#include "pkg/metrics/metrics.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static void
assert_contains (const char *text, const char *line)
{
  if (strstr (text, line) == NULL)
    g_error ("expected '%s' in:\n%s", line, text);
}

static void
test_counter_without_labels_starts_at_zero (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  crisp_metrics_add_counter (m, "crisp_things_total", "Things.", NULL);
  g_autofree char *text = crisp_metrics_render (m);
  g_assert_cmpstr (text, ==,
                   "# HELP crisp_things_total Things.\n"
                   "# TYPE crisp_things_total counter\n"
                   "crisp_things_total 0\n");
}

static void
test_label_sets_are_separate_and_sorted (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  const char *labels[] = { "method", "code", NULL };
  CrispMetric *c = crisp_metrics_add_counter (m, "crisp_calls_total", "Calls.", labels);
  crisp_metric_add (c, (const char *[]){ "Version", "OK" }, 1);
  crisp_metric_add (c, (const char *[]){ "Status", "OK" }, 1);
  crisp_metric_add (c, (const char *[]){ "Version", "OK" }, 2);
  crisp_metric_add (c, (const char *[]){ "Version", "NOT_FOUND" }, 1);
  g_autofree char *text = crisp_metrics_render (m);
  g_assert_cmpstr (text, ==,
                   "# HELP crisp_calls_total Calls.\n"
                   "# TYPE crisp_calls_total counter\n"
                   "crisp_calls_total{method=\"Status\",code=\"OK\"} 1\n"
                   "crisp_calls_total{method=\"Version\",code=\"NOT_FOUND\"} 1\n"
                   "crisp_calls_total{method=\"Version\",code=\"OK\"} 3\n");
}

static void
test_label_values_and_help_are_escaped (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  const char *labels[] = { "v", NULL };
  CrispMetric *g = crisp_metrics_add_gauge (m, "g", "a \\ back\nslash \"quoted\"", labels);
  crisp_metric_set (g, (const char *[]){ "a\"b\\c\nd" }, 1.5);
  crisp_metric_set (g, (const char *[]){ "bad\xff" }, 2);
  g_autofree char *text = crisp_metrics_render (m);
  /* help escapes backslash and newline only; label values also the double quote */
  assert_contains (text, "# HELP g a \\\\ back\\nslash \"quoted\"\n");
  assert_contains (text, "g{v=\"a\\\"b\\\\c\\nd\"} 1.5\n");
  /* invalid UTF-8 is replaced, never written raw */
  assert_contains (text, "g{v=\"bad\xef\xbf\xbd\"} 2\n");
}

static void
test_histogram_buckets_sum_count (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  const double bounds[] = { 0.005, 0.1, 1 };
  const char *labels[] = { "method", NULL };
  CrispMetric *h = crisp_metrics_add_histogram (m, "d_seconds", "Durations.", labels, bounds, 3);
  const char *v[] = { "Version" };
  crisp_metric_observe (h, v, 0.001);
  crisp_metric_observe (h, v, 0.1); /* on a bound: counted in it (le) */
  crisp_metric_observe (h, v, 0.5);
  crisp_metric_observe (h, v, 7);
  g_autofree char *text = crisp_metrics_render (m);
  g_assert_cmpstr (text, ==,
                   "# HELP d_seconds Durations.\n"
                   "# TYPE d_seconds histogram\n"
                   "d_seconds_bucket{method=\"Version\",le=\"0.005\"} 1\n"
                   "d_seconds_bucket{method=\"Version\",le=\"0.1\"} 2\n"
                   "d_seconds_bucket{method=\"Version\",le=\"1\"} 3\n"
                   "d_seconds_bucket{method=\"Version\",le=\"+Inf\"} 4\n"
                   "d_seconds_sum{method=\"Version\"} 7.601\n"
                   "d_seconds_count{method=\"Version\"} 4\n");
}

static void
test_histogram_without_labels (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  const double bounds[] = { 1 };
  crisp_metrics_add_histogram (m, "h", "H.", NULL, bounds, 1);
  g_autofree char *text = crisp_metrics_render (m);
  assert_contains (text, "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

static void
test_values_are_written_exactly (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  const char *labels[] = { "k", NULL };
  CrispMetric *g = crisp_metrics_add_gauge (m, "g", "G.", labels);
  crisp_metric_set (g, (const char *[]){ "big" }, 123456789012345.0);
  crisp_metric_set (g, (const char *[]){ "third" }, 1.0 / 3);
  crisp_metric_set (g, (const char *[]){ "inf" }, -INFINITY);
  crisp_metric_set (g, (const char *[]){ "nan" }, NAN);
  g_autofree char *text = crisp_metrics_render (m);
  assert_contains (text, "g{k=\"big\"} 123456789012345\n");
  assert_contains (text, "g{k=\"third\"} 0.33333333333333331\n");
  assert_contains (text, "g{k=\"inf\"} -Inf\n");
  assert_contains (text, "g{k=\"nan\"} NaN\n");
}

static void
set_from_collector (gpointer data)
{
  CrispMetric *g = data;
  crisp_metric_clear (g);
  crisp_metric_set (g, (const char *[]){ "running" }, 2);
}

static void
test_collector_sets_gauges_at_scrape (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  const char *labels[] = { "state", NULL };
  CrispMetric *g = crisp_metrics_add_gauge (m, "crisp_containers", "Containers.", labels);
  crisp_metric_set (g, (const char *[]){ "exited" }, 1);
  crisp_metrics_add_collector (m, set_from_collector, g);
  g_autofree char *text = crisp_metrics_render (m);
  assert_contains (text, "crisp_containers{state=\"running\"} 2\n");
  g_assert_null (strstr (text, "exited"));
}

static void
test_invalid_names_are_refused (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  const char *bad_label[] = { "a-b", NULL };
  const char *reserved[] = { "__x", NULL };
  const char *le[] = { "le", NULL };
  const double bounds[] = { 1 };
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*name_is_valid*");
  g_assert_null (crisp_metrics_add_counter (m, "1abc", "x", NULL));
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*name_is_valid*");
  g_assert_null (crisp_metrics_add_counter (m, "ok", "x", bad_label));
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*name_is_valid*");
  g_assert_null (crisp_metrics_add_gauge (m, "ok", "x", reserved));
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*le*");
  g_assert_null (crisp_metrics_add_histogram (m, "ok", "x", le, bounds, 1));
  g_test_assert_expected_messages ();
  g_assert_nonnull (crisp_metrics_add_counter (m, "crisp:ok_total", "x", NULL));
}

static gpointer
add_many (gpointer data)
{
  CrispMetric *c = data;
  for (int i = 0; i < 10000; i++)
    crisp_metric_add (c, (const char *[]){ i % 2 ? "a" : "b" }, 1);
  return NULL;
}

static void
test_concurrent_updates_are_all_counted (void)
{
  g_autoptr (CrispMetrics) m = crisp_metrics_new ();
  const char *labels[] = { "k", NULL };
  CrispMetric *c = crisp_metrics_add_counter (m, "n_total", "N.", labels);
  GThread *t[4];
  for (int i = 0; i < 4; i++)
    t[i] = g_thread_new ("add", add_many, c);
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *text = crisp_metrics_render (m); /* scrapes while they add */
      g_thread_join (t[i]);
    }
  g_autofree char *text = crisp_metrics_render (m);
  assert_contains (text, "n_total{k=\"a\"} 20000\nn_total{k=\"b\"} 20000\n");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/counter-without-labels", test_counter_without_labels_starts_at_zero);
  g_test_add_func ("/metrics/label-sets", test_label_sets_are_separate_and_sorted);
  g_test_add_func ("/metrics/escaping", test_label_values_and_help_are_escaped);
  g_test_add_func ("/metrics/histogram", test_histogram_buckets_sum_count);
  g_test_add_func ("/metrics/histogram-without-labels", test_histogram_without_labels);
  g_test_add_func ("/metrics/values", test_values_are_written_exactly);
  g_test_add_func ("/metrics/collector", test_collector_sets_gauges_at_scrape);
  g_test_add_func ("/metrics/invalid-names", test_invalid_names_are_refused);
  g_test_add_func ("/metrics/concurrent", test_concurrent_updates_are_all_counted);
  return g_test_run ();
}
