/* The process-wide log writer: level filtering, then journald or a plain stderr line. */
#include "config.h"

#include "crisp-log.h"

#include <stdio.h>
#include <unistd.h>

/* Messages more severe than or equal to this pass (GLib's levels grow as severity drops). */
static gint log_threshold = G_LOG_LEVEL_INFO;
static gboolean log_to_journal;

gboolean
crisp_log_parse_level (const char *level, GLogLevelFlags *out_threshold)
{
  static const struct
  {
    const char *name;
    GLogLevelFlags flag;
  } levels[] = {
    { "error", G_LOG_LEVEL_CRITICAL },
    { "warning", G_LOG_LEVEL_WARNING },
    { "info", G_LOG_LEVEL_INFO },
    { "debug", G_LOG_LEVEL_DEBUG },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (levels); i++)
    if (g_strcmp0 (level, levels[i].name) == 0)
      {
        *out_threshold = levels[i].flag;
        return TRUE;
      }
  return FALSE;
}

static const char *
level_name (GLogLevelFlags level)
{
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return "error";
  if (level & G_LOG_LEVEL_WARNING)
    return "warning";
  if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    return "info";
  return "debug";
}

static GLogWriterOutput
crisp_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  GLogLevelFlags lvl = level & G_LOG_LEVEL_MASK;
  /* Fatal levels always pass; otherwise compare against the threshold bit. */
  if (!(level & G_LOG_FLAG_FATAL) && lvl > (GLogLevelFlags) g_atomic_int_get (&log_threshold))
    return G_LOG_WRITER_HANDLED;
  if (log_to_journal)
    return g_log_writer_journald (level, fields, n_fields, data);
  const char *message = NULL, *domain = NULL;
  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
      else if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
    }
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *ts = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
  fprintf (stderr, "%s %s %s%s%s\n", ts, level_name (lvl), domain ? domain : "", domain ? ": " : "",
           message ? message : "");
  fflush (stderr);
  return G_LOG_WRITER_HANDLED;
}

void
crisp_log_set_level (const char *level)
{
  GLogLevelFlags t;
  if (crisp_log_parse_level (level, &t))
    g_atomic_int_set (&log_threshold, (gint) t);
}

void
crisp_log_setup (const char *level)
{
  log_to_journal = g_log_writer_is_journald (fileno (stderr));
  crisp_log_set_level (level);
  g_log_set_writer_func (crisp_log_writer, NULL, NULL);
}
