/* Container events for GetContainerEvents: each change is announced by the code that made it,
 * and an exit the moment the monitor renames its exit file into place (an inotify watch on
 * each live container's monitor directory: no polling). */
#include "config.h"

#include "container-private.h"

#include "monitor-protocol.h"

#include <glib-unix.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>

void
crisp_container_emit (CrispContainerService *svc, CrispContainer *c,
                      Runtime__V1__ContainerEventType type)
{
  if (svc->event_func != NULL)
    svc->event_func (c->id, c->pod_id, type, svc->event_data);
}

gboolean
crisp_container_exit_announce_now (CrispContainer *c)
{
  c->exit_unannounced = c->starting;
  return !c->starting;
}

void
crisp_container_wait_exit_announced (CrispContainerService *svc, CrispContainer *c)
{
  g_mutex_lock (&svc->lock);
  while (c->exit_announcing)
    g_cond_wait (&svc->announced, &svc->lock);
  g_mutex_unlock (&svc->lock);
}

void
crisp_container_set_starting (CrispContainerService *svc, CrispContainer *c, gboolean starting)
{
  g_mutex_lock (&svc->lock);
  c->starting = starting;
  gboolean held_back = !starting && c->exit_unannounced;
  c->exit_unannounced = FALSE;
  g_mutex_unlock (&svc->lock);
  if (held_back)
    crisp_container_emit (svc, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
}

static void
exit_seen (CrispContainerService *svc, const char *id)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, NULL);
  if (c != NULL)
    crisp_container_refresh (svc, c); /* announces the stop when it is one */
}

/* Events were lost: every live container's exit file is read again. */
static void
refresh_all (CrispContainerService *svc)
{
  g_warning ("inotify: events were lost; reading every container's exit file again");
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  for (guint i = 0; i < all->len; i++)
    crisp_container_refresh (svc, all->pdata[i]);
}

static void
handle_inotify_event (CrispContainerService *svc, const struct inotify_event *ev)
{
  if (ev->mask & IN_Q_OVERFLOW)
    {
      refresh_all (svc);
      return;
    }
  g_autofree char *id = NULL;
  g_mutex_lock (&svc->lock);
  if (ev->mask & IN_IGNORED) /* the directory is gone: the container was removed */
    g_hash_table_remove (svc->exit_watches, GINT_TO_POINTER (ev->wd));
  else if (ev->len > 0 && strcmp (ev->name, CRISP_MONITOR_FILE_EXIT) == 0)
    id = g_strdup (g_hash_table_lookup (svc->exit_watches, GINT_TO_POINTER (ev->wd)));
  g_mutex_unlock (&svc->lock);
  if (id != NULL)
    exit_seen (svc, id);
}

static gboolean
on_inotify (int fd, GIOCondition condition, gpointer data)
{
  CrispContainerService *svc = data;
  char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  g_mutex_lock (&svc->lock);
  svc->inotify_handling = TRUE; /* before the read: see crisp_container_exit_known () */
  g_mutex_unlock (&svc->lock);
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n <= 0)
        break; /* EAGAIN: all read */
      for (char *p = buf; p < buf + n;)
        {
          const struct inotify_event *ev = (const struct inotify_event *) p;
          handle_inotify_event (svc, ev);
          p += sizeof *ev + ev->len;
        }
    }
  g_mutex_lock (&svc->lock);
  svc->inotify_handling = FALSE;
  g_mutex_unlock (&svc->lock);
  return G_SOURCE_CONTINUE;
}

void
crisp_container_watch_exit (CrispContainerService *svc, CrispContainer *c)
{
  if (svc->inotify_fd < 0)
    return;
  g_autofree char *dir = crisp_container_run_path (svc, c->id, "monitor");
  int wd = inotify_add_watch (svc->inotify_fd, dir, IN_MOVED_TO | IN_ONLYDIR);
  if (wd < 0)
    {
      g_warning ("container '%s': cannot watch '%s' for its exit: %s; its stop is seen at the "
                 "next status call",
                 c->id, dir, g_strerror (errno));
      return;
    }
  g_mutex_lock (&svc->lock);
  g_hash_table_replace (svc->exit_watches, GINT_TO_POINTER (wd), g_strdup (c->id));
  g_mutex_unlock (&svc->lock);
  crisp_container_refresh (svc, c); /* it may have exited before the watch */
  /* From here on an exit is an event: memory is kept true without reading the file. */
  g_mutex_lock (&svc->lock);
  c->exit_watched = TRUE;
  g_mutex_unlock (&svc->lock);
}

/* Watched, and no event waiting in the inotify queue or being handled.  Checked in this
 * order: an event read from the queue after the first check is still being handled at the
 * second (inotify_handling is set before the read), so a status never misses an exit file
 * that was in place when it began. */
gboolean
crisp_container_exit_known (CrispContainerService *svc, CrispContainer *c)
{
  int pending = 0;
  if (svc->inotify_fd < 0 || ioctl (svc->inotify_fd, FIONREAD, &pending) < 0 || pending > 0)
    return FALSE;
  g_mutex_lock (&svc->lock);
  gboolean known = c->exit_watched && !svc->inotify_handling;
  g_mutex_unlock (&svc->lock);
  return known;
}

void
crisp_container_update (CrispContainerService *svc, CrispContainer *c)
{
  if (!crisp_container_exit_known (svc, c))
    crisp_container_refresh (svc, c);
}

void
crisp_container_service_watch (CrispContainerService *svc, CrispContainerEventFunc func,
                               gpointer data)
{
  g_return_if_fail (svc->event_func == NULL);
  svc->event_func = func;
  svc->event_data = data;
  svc->inotify_fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (svc->inotify_fd < 0)
    g_warning ("inotify: %s; container exits are seen at the next status call",
               g_strerror (errno));
  else
    svc->inotify_source = g_unix_fd_add (svc->inotify_fd, G_IO_IN, on_inotify, svc);
  for (guint i = 0; i < svc->recovered_exits->len; i++)
    {
      g_autoptr (CrispContainer) c = crisp_container_lookup (svc, svc->recovered_exits->pdata[i], NULL);
      if (c != NULL)
        crisp_container_emit (svc, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    }
  g_ptr_array_set_size (svc->recovered_exits, 0);
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  for (guint i = 0; i < all->len; i++)
    {
      CrispContainer *c = all->pdata[i];
      CrispContainerState state = crisp_container_get_state (svc, c);
      if (state == CRISP_CONTAINER_CREATED || state == CRISP_CONTAINER_RUNNING)
        crisp_container_watch_exit (svc, c);
    }
}

void
crisp_container_events_free (CrispContainerService *svc)
{
  if (svc->inotify_source)
    g_source_remove (svc->inotify_source);
  if (svc->inotify_fd >= 0)
    close (svc->inotify_fd);
  g_clear_pointer (&svc->exit_watches, g_hash_table_unref);
  g_clear_pointer (&svc->recovered_exits, g_ptr_array_unref);
}
