/* systemd's watchdog: a main-loop timer that pings only when the last probe it queued on the
 * worker pool has run, so a blocked main loop or a wedged pool both stop the pings. */
#include "config.h"

#include "watchdog.h"

#include "grpc.h"
#include "notify.h"

#include <unistd.h>

/* Shared with the worker that runs the probe; it may outlive the watchdog. */
typedef struct
{
  gint answered;
} Probe;

struct _CrispWatchdog
{
  CrispGrpc *grpc;
  Probe *probe; /* an atomic rc box */
  guint64 period_ms;
  guint source;
  guint skipped; /* pings skipped in a row */
};

/* The interval systemd asked of us, in microseconds, or 0 for none. */
static guint64
watchdog_usec (void)
{
  const char *usec = g_getenv ("WATCHDOG_USEC");
  const char *pid = g_getenv ("WATCHDOG_PID");
  guint64 v = 0, p = 0;
  if (usec == NULL || !g_ascii_string_to_unsigned (usec, 10, 1, G_MAXUINT64, &v, NULL))
    {
      if (usec != NULL)
        g_warning ("watchdog: WATCHDOG_USEC '%s' is not a number of microseconds, ignoring", usec);
      return 0;
    }
  if (pid != NULL && *pid != '\0'
      && (!g_ascii_string_to_unsigned (pid, 10, 1, G_MAXINT, &p, NULL) || p != (guint64) getpid ()))
    return 0;
  return v;
}

static void
probe_run (gpointer data)
{
  Probe *probe = data;
  g_atomic_int_set (&probe->answered, 1);
}

static void
probe_release (gpointer data)
{
  g_atomic_rc_box_release (data);
}

static gboolean
on_tick (gpointer data)
{
  CrispWatchdog *self = data;
  if (!g_atomic_int_get (&self->probe->answered))
    {
      self->skipped++;
      g_warning ("watchdog: the worker pool has not answered for %" G_GUINT64_FORMAT
                 " ms; not telling systemd we are alive",
                 self->skipped * self->period_ms);
      return G_SOURCE_CONTINUE;
    }
  if (self->skipped > 0)
    g_message ("watchdog: the worker pool answers again");
  self->skipped = 0;
  int r = crisp_notify ("WATCHDOG=1");
  if (r < 0)
    g_warning ("watchdog: notifying systemd: %s", g_strerror (-r));
  /* Only one probe is ever out, so its answer cannot be mistaken for an older one's. */
  g_atomic_int_set (&self->probe->answered, 0);
  crisp_grpc_run_job (self->grpc, probe_run, g_atomic_rc_box_acquire (self->probe), probe_release);
  return G_SOURCE_CONTINUE;
}

CrispWatchdog *
crisp_watchdog_start (CrispGrpc *grpc)
{
  guint64 usec = watchdog_usec ();
  if (usec == 0)
    return NULL;
  CrispWatchdog *self = g_new0 (CrispWatchdog, 1);
  self->grpc = grpc;
  self->probe = g_atomic_rc_box_new0 (Probe);
  self->probe->answered = 1;
  /* Half the interval, as systemd advises, and never a busy loop. */
  self->period_ms = MAX (usec / 2000, 1);
  self->source = g_timeout_add ((guint) MIN (self->period_ms, G_MAXUINT), on_tick, self);
  g_message ("watchdog: on, systemd expects a sign of life every %" G_GUINT64_FORMAT
             " ms; pinging every %" G_GUINT64_FORMAT " ms",
             usec / 1000, self->period_ms);
  return self;
}

void
crisp_watchdog_free (CrispWatchdog *self)
{
  if (self == NULL)
    return;
  g_source_remove (self->source);
  g_atomic_rc_box_release (self->probe);
  g_free (self);
}
