/* The standby monitor: one crisp-conmon started ahead of need, so a CreateContainer hands it
 * its container instead of paying for the monitor's exec and fork inside the call.  A thread
 * of the container service makes a new one whenever the last was taken; each leaves on its
 * own when crisp closes its socket or dies, so a kill leaks nothing. */
#include "config.h"

#include "container-private.h"
#include "crisp-base.h"

#include <poll.h>
#include <sys/syscall.h>

#define STANDBY_TIMEOUT_MS 10000
#define RETRY_FIRST_S 1
#define RETRY_MAX_S 60
#define EXIT_WAIT_MS 500
#define REFILL_DELAY_MS 200 /* at the most: see crisp_container_standby_nudge */

/* Under svc->lock: waits until the monotonic time `deadline` or until the service stops. */
static void
pause_until_locked (CrispContainerService *svc, gint64 deadline)
{
  while (!svc->standby_stop && g_get_monotonic_time () < deadline)
    g_cond_wait_until (&svc->standby_cond, &svc->lock, deadline);
}

static gpointer
standby_main (gpointer data)
{
  CrispContainerService *svc = data;
  guint retry_s = 0;
  g_mutex_lock (&svc->lock);
  for (;;)
    {
      while (!svc->standby_stop && svc->standby.fd >= 0)
        g_cond_wait (&svc->standby_cond, &svc->lock);
      /* Not at once: a create is most often followed by its start, which should not share
       * the machine with the next monitor's exec and fork.  The start's end (a nudge clears
       * standby_taken_at) or REFILL_DELAY_MS, whichever comes first. */
      while (!svc->standby_stop && svc->standby_taken_at != 0
             && g_get_monotonic_time () < svc->standby_taken_at + REFILL_DELAY_MS * 1000)
        g_cond_wait_until (&svc->standby_cond, &svc->lock,
                           svc->standby_taken_at + REFILL_DELAY_MS * 1000);
      if (svc->standby_stop)
        break;
      g_mutex_unlock (&svc->lock);
      CrispMonitorStandby s = CRISP_MONITOR_STANDBY_INIT;
      int r = crisp_monitor_standby_new (svc->config->conmon, STANDBY_TIMEOUT_MS, &s);
      guint64 start_time = r == 0 ? crisp_proc_start_time (s.pid) : 0;
      g_mutex_lock (&svc->lock);
      if (r < 0)
        {
          /* Creates start their own monitors meanwhile, and say so if that fails too. */
          if (retry_s == 0)
            g_warning ("starting a standby monitor (%s): %s; creates start their own",
                       svc->config->conmon ? svc->config->conmon : LIBEXECDIR "/crisp-conmon",
                       g_strerror (-r));
          retry_s = retry_s ? MIN (retry_s * 2, RETRY_MAX_S) : RETRY_FIRST_S;
          pause_until_locked (svc, g_get_monotonic_time () + (gint64) retry_s * G_USEC_PER_SEC);
          continue;
        }
      g_debug ("standby monitor %d ready", s.pid);
      retry_s = 0;
      svc->standby = s;
      svc->standby_start_time = start_time;
    }
  g_mutex_unlock (&svc->lock);
  return NULL;
}

void
crisp_container_standby_start (CrispContainerService *svc)
{
  svc->standby = (CrispMonitorStandby) CRISP_MONITOR_STANDBY_INIT;
  g_cond_init (&svc->standby_cond);
  svc->standby_thread = g_thread_new ("crisp-standby", standby_main, svc);
}

gboolean
crisp_container_standby_take (CrispContainerService *svc, CrispMonitorStandby *out,
                              guint64 *out_start_time)
{
  g_mutex_lock (&svc->lock);
  gboolean taken = svc->standby.fd >= 0;
  if (taken)
    {
      *out = svc->standby;
      *out_start_time = svc->standby_start_time;
      svc->standby = (CrispMonitorStandby) CRISP_MONITOR_STANDBY_INIT;
      svc->standby_taken_at = g_get_monotonic_time ();
      g_cond_broadcast (&svc->standby_cond);
    }
  g_mutex_unlock (&svc->lock);
  return taken;
}

/* Closing the socket sends the standby away; waiting for its exit means a stopped crisp
 * leaves no process of its own behind. */
static void
release_and_wait (CrispMonitorStandby *s)
{
  _cleanup_close_ int pidfd = (int) syscall (SYS_pidfd_open, s->pid, 0);
  crisp_monitor_standby_release (s);
  struct pollfd p = { .fd = pidfd, .events = POLLIN };
  while (pidfd >= 0 && poll (&p, 1, EXIT_WAIT_MS) < 0 && errno == EINTR)
    ;
}

void
crisp_container_standby_nudge (CrispContainerService *svc)
{
  g_mutex_lock (&svc->lock);
  if (svc->standby_taken_at != 0)
    {
      svc->standby_taken_at = 0;
      g_cond_broadcast (&svc->standby_cond);
    }
  g_mutex_unlock (&svc->lock);
}

void
crisp_container_standby_stop (CrispContainerService *svc)
{
  if (svc->standby_thread == NULL)
    return;
  g_mutex_lock (&svc->lock);
  svc->standby_stop = TRUE;
  g_cond_broadcast (&svc->standby_cond);
  g_mutex_unlock (&svc->lock);
  g_thread_join (g_steal_pointer (&svc->standby_thread));
  if (svc->standby.fd >= 0)
    release_and_wait (&svc->standby);
  g_cond_clear (&svc->standby_cond);
}
