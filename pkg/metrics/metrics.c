/* The metrics registry and its writer of the Prometheus text exposition format 0.0.4. */
#include "config.h"

#include "metrics.h"

#include <math.h>
#include <string.h>

typedef enum
{
  METRIC_COUNTER,
  METRIC_GAUGE,
  METRIC_HISTOGRAM,
} MetricType;

typedef struct
{
  double value;    /* counter, gauge */
  guint64 *counts; /* histogram: per bucket, not cumulative; the last is +Inf */
  double sum;
  guint64 count;
} Series;

struct _CrispMetric
{
  CrispMetrics *registry;
  MetricType type;
  char *name, *help;
  char **label_names;
  double *bounds;
  gsize n_bounds;
  GHashTable *series; /* 'a="x",b="y"' (written labels) -> Series, under registry->lock */
};

struct _CrispMetrics
{
  GMutex lock;        /* guards every family's series */
  GMutex scrape_lock; /* one render at a time: collectors clear and set gauges */
  GPtrArray *families;
  GArray *collectors; /* Collector */
};

typedef struct
{
  CrispMetricsCollector fn;
  gpointer data;
} Collector;

static void
series_free (gpointer p)
{
  Series *s = p;
  g_free (s->counts);
  g_free (s);
}

static void
metric_free (gpointer p)
{
  CrispMetric *m = p;
  g_free (m->name);
  g_free (m->help);
  g_strfreev (m->label_names);
  g_free (m->bounds);
  g_hash_table_unref (m->series);
  g_free (m);
}

CrispMetrics *
crisp_metrics_new (void)
{
  CrispMetrics *self = g_new0 (CrispMetrics, 1);
  g_mutex_init (&self->lock);
  g_mutex_init (&self->scrape_lock);
  self->families = g_ptr_array_new_with_free_func (metric_free);
  self->collectors = g_array_new (FALSE, FALSE, sizeof (Collector));
  return self;
}

void
crisp_metrics_free (CrispMetrics *self)
{
  if (self == NULL)
    return;
  g_ptr_array_unref (self->families);
  g_array_unref (self->collectors);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->scrape_lock);
  g_free (self);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]*; label names take no ':' and may not start with "__". */
static gboolean
name_is_valid (const char *name, gboolean label)
{
  if (name == NULL || *name == '\0' || g_ascii_isdigit (*name)
      || (label && g_str_has_prefix (name, "__")))
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && (label || *p != ':'))
      return FALSE;
  return TRUE;
}

/* Backslash and newline are escaped in help text; label values also escape '"'. */
static void
append_escaped (GString *out, const char *text, gboolean quote)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  for (const char *p = valid; *p; p++)
    if (*p == '\\')
      g_string_append (out, "\\\\");
    else if (*p == '\n')
      g_string_append (out, "\\n");
    else if (*p == '"' && quote)
      g_string_append (out, "\\\"");
    else
      g_string_append_c (out, *p);
}

static void
append_double (GString *out, double v)
{
  if (isnan (v))
    return (void) g_string_append (out, "NaN");
  if (isinf (v))
    return (void) g_string_append (out, v > 0 ? "+Inf" : "-Inf");
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  /* the shortest of the two that reads back exactly: 0.005, not 0.0050000000000000001 */
  g_ascii_formatd (buf, sizeof buf, "%.15g", v);
  if (g_ascii_strtod (buf, NULL) != v)
    g_ascii_formatd (buf, sizeof buf, "%.17g", v);
  g_string_append (out, buf);
}

static CrispMetric *
add_family (CrispMetrics *self, MetricType type, const char *name, const char *help,
            const char *const *label_names)
{
  g_return_val_if_fail (name_is_valid (name, FALSE), NULL);
  for (gsize i = 0; label_names != NULL && label_names[i] != NULL; i++)
    g_return_val_if_fail (name_is_valid (label_names[i], TRUE)
                              && (type != METRIC_HISTOGRAM || strcmp (label_names[i], "le") != 0),
                          NULL);
  CrispMetric *m = g_new0 (CrispMetric, 1);
  m->registry = self;
  m->type = type;
  m->name = g_strdup (name);
  m->help = g_strdup (help);
  m->label_names = label_names ? g_strdupv ((char **) label_names) : g_new0 (char *, 1);
  m->series = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, series_free);
  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->families, m);
  g_mutex_unlock (&self->lock);
  return m;
}

/* A counter or gauge; one without labels has its series from the start. */
static CrispMetric *
add_scalar (CrispMetrics *self, MetricType type, const char *name, const char *help,
            const char *const *label_names)
{
  CrispMetric *m = add_family (self, type, name, help, label_names);
  if (m != NULL && m->label_names[0] == NULL)
    crisp_metric_add (m, NULL, 0);
  return m;
}

CrispMetric *
crisp_metrics_add_counter (CrispMetrics *self, const char *name, const char *help,
                           const char *const *label_names)
{
  return add_scalar (self, METRIC_COUNTER, name, help, label_names);
}

CrispMetric *
crisp_metrics_add_gauge (CrispMetrics *self, const char *name, const char *help,
                         const char *const *label_names)
{
  return add_scalar (self, METRIC_GAUGE, name, help, label_names);
}

CrispMetric *
crisp_metrics_add_histogram (CrispMetrics *self, const char *name, const char *help,
                             const char *const *label_names, const double *bounds, gsize n_bounds)
{
  for (gsize i = 1; i < n_bounds; i++)
    g_return_val_if_fail (bounds[i - 1] < bounds[i], NULL);
  CrispMetric *m = add_family (self, METRIC_HISTOGRAM, name, help, label_names);
  if (m == NULL)
    return NULL;
  m->bounds = g_memdup2 (bounds, n_bounds * sizeof (double));
  m->n_bounds = n_bounds;
  if (m->label_names[0] == NULL)
    {
      g_mutex_lock (&self->lock);
      Series *s = g_new0 (Series, 1);
      s->counts = g_new0 (guint64, n_bounds + 1);
      g_hash_table_insert (m->series, g_strdup (""), s);
      g_mutex_unlock (&self->lock);
    }
  return m;
}

/* The series `values` names, created at zero when new; called under the lock. */
static Series *
series_get (CrispMetric *m, const char *const *values)
{
  g_autoptr (GString) key = g_string_new (NULL);
  for (gsize i = 0; m->label_names[i] != NULL; i++)
    {
      g_string_append_printf (key, "%s%s=\"", i ? "," : "", m->label_names[i]);
      append_escaped (key, values && values[i] ? values[i] : "", TRUE);
      g_string_append_c (key, '"');
    }
  Series *s = g_hash_table_lookup (m->series, key->str);
  if (s != NULL)
    return s;
  s = g_new0 (Series, 1);
  if (m->type == METRIC_HISTOGRAM)
    s->counts = g_new0 (guint64, m->n_bounds + 1);
  g_hash_table_insert (m->series, g_string_free (g_steal_pointer (&key), FALSE), s);
  return s;
}

void
crisp_metric_add (CrispMetric *m, const char *const *values, double delta)
{
  g_return_if_fail (m != NULL && m->type != METRIC_HISTOGRAM);
  g_mutex_lock (&m->registry->lock);
  series_get (m, values)->value += delta;
  g_mutex_unlock (&m->registry->lock);
}

void
crisp_metric_set (CrispMetric *m, const char *const *values, double value)
{
  g_return_if_fail (m != NULL && m->type != METRIC_HISTOGRAM);
  g_mutex_lock (&m->registry->lock);
  series_get (m, values)->value = value;
  g_mutex_unlock (&m->registry->lock);
}

void
crisp_metric_observe (CrispMetric *m, const char *const *values, double value)
{
  g_return_if_fail (m != NULL && m->type == METRIC_HISTOGRAM);
  gsize b = 0;
  while (b < m->n_bounds && value > m->bounds[b])
    b++;
  g_mutex_lock (&m->registry->lock);
  Series *s = series_get (m, values);
  s->counts[b]++;
  s->sum += value;
  s->count++;
  g_mutex_unlock (&m->registry->lock);
}

void
crisp_metric_clear (CrispMetric *m)
{
  g_return_if_fail (m != NULL);
  if (m->label_names[0] == NULL)
    return;
  g_mutex_lock (&m->registry->lock);
  g_hash_table_remove_all (m->series);
  g_mutex_unlock (&m->registry->lock);
}

void
crisp_metrics_add_collector (CrispMetrics *self, CrispMetricsCollector fn, gpointer data)
{
  Collector c = { fn, data };
  g_mutex_lock (&self->scrape_lock);
  g_array_append_val (self->collectors, c);
  g_mutex_unlock (&self->scrape_lock);
}

/* name{labels[,extra]} value */
static void
write_sample (GString *out, const char *name, const char *suffix, const char *labels,
              const char *extra, double value)
{
  g_string_append_printf (out, "%s%s", name, suffix);
  if (*labels || extra)
    g_string_append_printf (out, "{%s%s%s}", labels, *labels && extra ? "," : "",
                            extra ? extra : "");
  g_string_append_c (out, ' ');
  append_double (out, value);
  g_string_append_c (out, '\n');
}

static void
write_histogram (GString *out, const CrispMetric *m, const char *labels, const Series *s)
{
  guint64 cumulative = 0;
  for (gsize b = 0; b <= m->n_bounds; b++)
    {
      g_autoptr (GString) le = g_string_new ("le=\"");
      append_double (le, b < m->n_bounds ? m->bounds[b] : INFINITY);
      g_string_append_c (le, '"');
      cumulative += s->counts[b];
      write_sample (out, m->name, "_bucket", labels, le->str, (double) cumulative);
    }
  write_sample (out, m->name, "_sum", labels, NULL, s->sum);
  write_sample (out, m->name, "_count", labels, NULL, (double) s->count);
}

static gint
compare_keys (gconstpointer a, gconstpointer b, gpointer unused)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
write_family (GString *out, const CrispMetric *m)
{
  static const char *const types[] = { "counter", "gauge", "histogram" };
  g_string_append_printf (out, "# HELP %s ", m->name);
  append_escaped (out, m->help, FALSE);
  g_string_append_printf (out, "\n# TYPE %s %s\n", m->name, types[m->type]);
  guint n = 0;
  g_autofree const char **keys = (const char **) g_hash_table_get_keys_as_array (m->series, &n);
  g_qsort_with_data (keys, n, sizeof (char *), compare_keys, NULL);
  for (guint i = 0; i < n; i++)
    {
      const Series *s = g_hash_table_lookup (m->series, keys[i]);
      if (m->type == METRIC_HISTOGRAM)
        write_histogram (out, m, keys[i], s);
      else
        write_sample (out, m->name, "", keys[i], NULL, s->value);
    }
}

char *
crisp_metrics_render (CrispMetrics *self)
{
  g_mutex_lock (&self->scrape_lock);
  for (guint i = 0; i < self->collectors->len; i++)
    {
      Collector *c = &g_array_index (self->collectors, Collector, i);
      c->fn (c->data);
    }
  GString *out = g_string_new (NULL);
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->families->len; i++)
    write_family (out, self->families->pdata[i]);
  g_mutex_unlock (&self->lock);
  g_mutex_unlock (&self->scrape_lock);
  return g_string_free (out, FALSE);
}
