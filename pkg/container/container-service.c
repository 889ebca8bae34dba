/* The container service: tables, records, recovery at start-up, and the lifecycle calls. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "monitor-client.h"
#include "monitor-protocol.h"
#include "pkg/image/image-service.h"
#include "pkg/sandbox/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>

#define RECORD "container.json"
#define MAX_NAME 253
/* How long destroying a container waits for what is left in its cgroup to die. */
#define CGROUP_REMOVE_WAIT_MS 2000
/* How long RemoveContainer waits for the monitor's own `runtime delete` before doing it. */
#define MONITOR_EXIT_WAIT_MS 10000
/* How long a stop waits for the exit file once the process is gone. */
#define EXIT_FILE_WAIT_MS 10000
/* How often that wait checks that the monitor, which writes the file, is still there. */
#define MONITOR_GONE_CHECK_MS 50

char *
crisp_container_run_path (CrispContainerService *svc, const char *id, const char *sub)
{
  return g_build_filename (svc->run_dir, id, sub, NULL);
}

char *
crisp_container_root_path (CrispContainerService *svc, const char *id, const char *sub)
{
  g_autofree char *dir = crisp_store_object_path (svc->store, id);
  return g_build_filename (dir, sub, NULL);
}

static gboolean
save (CrispContainerService *svc, CrispContainer *c, gboolean durable, GError **error)
{
  g_mutex_lock (&svc->lock);
  /* A save after the record went to the trash would bring the container back to life. */
  gboolean removed = c->state == CRISP_CONTAINER_REMOVING;
  g_autoptr (JsonNode) node = removed ? NULL : crisp_container_to_json (c);
  g_mutex_unlock (&svc->lock);
  return removed || crisp_store_save_sync (svc->store, c->id, RECORD, node, durable, error);
}

gboolean
crisp_container_save (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  return save (svc, c, TRUE, error);
}

gboolean
crisp_container_save_unsynced (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  return save (svc, c, FALSE, error);
}

void
crisp_container_refresh (CrispContainerService *svc, CrispContainer *c)
{
  g_mutex_lock (&svc->lock);
  gboolean live = c->state == CRISP_CONTAINER_CREATED || c->state == CRISP_CONTAINER_RUNNING;
  gboolean changed = live && crisp_container_read_exit (svc, c);
  gboolean announce = changed && crisp_container_exit_announce_now (c);
  c->exit_announcing |= changed;
  /* A stop waiting for the exit may answer now: until the save below is done, the monitor's
   * exit file is what a restart would read it from. */
  if (changed)
    g_cond_broadcast (&svc->announced);
  g_mutex_unlock (&svc->lock);
  if (!changed)
    return;
  g_autoptr (GError) error = NULL;
  if (!crisp_container_save (svc, c, &error))
    g_debug ("container '%s': saving its exit: %s", c->id, error->message);
  if (announce)
    crisp_container_emit (svc, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
  g_mutex_lock (&svc->lock);
  c->exit_announcing = FALSE;
  g_cond_broadcast (&svc->announced);
  g_mutex_unlock (&svc->lock);
}

CrispContainerState
crisp_container_get_state (CrispContainerService *svc, CrispContainer *c)
{
  g_mutex_lock (&svc->lock);
  CrispContainerState state = c->state;
  g_mutex_unlock (&svc->lock);
  return state;
}

/* A new reference to the container `id` names (full id or unique prefix), or NOT_FOUND. */
CrispContainer *
crisp_container_lookup (CrispContainerService *svc, const char *id, GError **error)
{
  if (id == NULL || *id == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "container id is empty"), NULL;
  g_mutex_lock (&svc->lock);
  CrispContainer *found = g_hash_table_lookup (svc->by_id, id);
  guint matches = found ? 1 : 0;
  if (found == NULL && strlen (id) < 64)
    {
      GHashTableIter it;
      gpointer value;
      g_hash_table_iter_init (&it, svc->by_id);
      while (g_hash_table_iter_next (&it, NULL, &value))
        if (g_str_has_prefix (((CrispContainer *) value)->id, id) && ++matches)
          found = value;
    }
  if (found != NULL && matches == 1)
    crisp_container_ref (found);
  g_mutex_unlock (&svc->lock);
  if (matches > 1)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "container id '%s' is ambiguous", id),
           NULL;
  if (found == NULL)
    return crisp_throw (error, CRISP_ERROR_NOT_FOUND, "container '%s' not found", id), NULL;
  return found;
}

/* Containers of one pod, or all (pod_id NULL): new references. */
GPtrArray *
crisp_container_snapshot (CrispContainerService *svc, const char *pod_id)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_container_unref);
  g_mutex_lock (&svc->lock);
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, svc->by_id);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      CrispContainer *c = value;
      if (pod_id == NULL || g_str_equal (c->pod_id, pod_id))
        g_ptr_array_add (out, crisp_container_ref (c));
    }
  g_mutex_unlock (&svc->lock);
  return out;
}

gboolean
crisp_container_service_image_in_use (CrispContainerService *svc, const char *image_id)
{
  gboolean used = FALSE;
  g_mutex_lock (&svc->lock);
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, svc->by_id);
  while (!used && g_hash_table_iter_next (&it, NULL, &value))
    used = crisp_container_uses_image (value, image_id);
  g_mutex_unlock (&svc->lock);
  return used;
}

/* Unmounts the root filesystem if it is mounted; a missing mount is fine. */
static gboolean
unmount_rootfs (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  g_autofree char *rootfs = crisp_container_run_path (svc, c->id, "rootfs");
  if (umount2 (rootfs, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    return crisp_throw_errno (error, errno, "unmounting '%s'", rootfs);
  return TRUE;
}

gboolean
crisp_container_monitor_alive (CrispContainer *c)
{
  return crisp_process_matches (c->monitor_pid, c->monitor_start_time);
}

/* Waits up to timeout_ms for a process's pidfd to turn readable (it exited: zombie or reaped),
 * or for cancellable. */
static gboolean
wait_pidfd (int pidfd, gint64 timeout_ms, GCancellable *cancellable)
{
  GPollFD fds[2] = { { .fd = pidfd, .events = G_IO_IN } };
  int n = g_cancellable_make_pollfd (cancellable, &fds[1]) ? 2 : 1;
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  gboolean exited = FALSE;
  while (!exited && !g_cancellable_is_cancelled (cancellable))
    {
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      int r = g_poll (fds, n, (int) MAX (left, 0));
      exited = r > 0 && fds[0].revents != 0;
      if (r == 0 || (r < 0 && errno != EINTR))
        break;
    }
  if (n == 2)
    g_cancellable_release_fd (cancellable);
  return exited;
}

/* Waits for the monitor to finish (it deletes the runtime's state before it exits): its
 * pidfd says when, so the wait ends the moment it exits, zombie or not. */
static gboolean
wait_monitor_exit (CrispContainer *c, int timeout_ms, GCancellable *cancellable)
{
  if (!crisp_container_monitor_alive (c))
    return TRUE;
  _cleanup_close_ int pidfd = crisp_process_pidfd (c->monitor_pid, c->monitor_start_time);
  if (pidfd < 0)
    return !crisp_container_monitor_alive (c);
  return wait_pidfd (pidfd, timeout_ms, cancellable);
}

gboolean
crisp_container_wait_monitor (CrispContainer *c, int timeout_ms)
{
  return wait_monitor_exit (c, timeout_ms, NULL);
}

gboolean
crisp_container_release (CrispContainerService *svc, CrispContainer *c, gboolean half_made,
                         GCancellable *cancellable, GError **error)
{
  /* A half-made container's monitor never exits on its own (once its create completes it
   * keeps the container), so it is not waited for. */
  if (crisp_container_monitor_alive (c)
      && (half_made || !wait_monitor_exit (c, MONITOR_EXIT_WAIT_MS, cancellable)))
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      /* Its process group holds what it started (a 'runtime create' still in progress after
       * a crash): kill them with it, or the create could finish with nobody to own it. */
      pid_t group = getpgid (c->monitor_pid);
      g_debug ("container '%s': monitor %d still there, killing it", c->id, c->monitor_pid);
      if (group > 1 && group != getpgrp ())
        kill (-group, SIGKILL);
      else
        kill (c->monitor_pid, SIGKILL);
      wait_monitor_exit (c, MONITOR_EXIT_WAIT_MS, cancellable);
    }
  /* The monitor deletes the runtime's state before it exits; only what it left (it was
   * killed, or never got that far) costs a runtime call here. */
  g_autofree char *state = c->runtime_root ? g_build_filename (c->runtime_root, c->id, NULL) : NULL;
  g_autoptr (GError) local = NULL;
  if (c->runtime_path != NULL && (state == NULL || g_file_test (state, G_FILE_TEST_EXISTS))
      && !crisp_container_runtime_delete (c, &local))
    g_debug ("container '%s': %s", c->id, local->message);
  /* The runtime's delete removes the cgroup, but only of a container it knows: a create a
   * kill interrupted before the runtime wrote its state leaves the cgroup to us. */
  if (svc->cgroups != NULL && c->cgroup_path != NULL
      && !crisp_cgroups_remove (svc->cgroups, c->cgroup_path, CGROUP_REMOVE_WAIT_MS, error))
    return FALSE;
  if (!crisp_container_unstage_mounts (svc, c->id, error) || !unmount_rootfs (svc, c, error))
    return FALSE;
  _cleanup_close_ int dfd = open (svc->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = dfd < 0 ? -errno : crisp_store_rm_rf_at (dfd, c->id);
  if (r < 0 && r != -ENOENT)
    return crisp_throw_errno (error, r, "removing the run directory of container '%s'", c->id);
  return TRUE;
}

gboolean
crisp_container_destroy (CrispContainerService *svc, CrispContainer *c, gboolean half_made,
                         GError **error)
{
  return crisp_container_release (svc, c, half_made, NULL, error)
         && crisp_store_remove (svc->store, c->id, error);
}

static gboolean
still_known (CrispContainerService *svc, CrispContainer *c)
{
  g_mutex_lock (&svc->lock);
  gboolean known = g_hash_table_lookup (svc->by_id, c->id) == c;
  g_mutex_unlock (&svc->lock);
  return known;
}

void
crisp_container_forget (CrispContainerService *svc, CrispContainer *c)
{
  g_mutex_lock (&svc->lock);
  g_autofree char *key = crisp_container_name_key (c->pod_id, c->name, c->attempt);
  const char *owner = g_hash_table_lookup (svc->names, key);
  if (g_strcmp0 (owner, c->id) == 0)
    g_hash_table_remove (svc->names, key);
  g_hash_table_remove (svc->by_id, c->id);
  g_mutex_unlock (&svc->lock);
}

void
crisp_container_remember (CrispContainerService *svc, CrispContainer *c)
{
  g_hash_table_insert (svc->by_id, c->id, crisp_container_ref (c));
  g_hash_table_insert (svc->names, crisp_container_name_key (c->pod_id, c->name, c->attempt),
                       g_strdup (c->id));
}

/* Sends sig to the container's init through a pidfd, so a recycled pid is never hit. */
static int
signal_init (CrispContainer *c, int sig, int *out_pidfd)
{
  int fd = crisp_process_pidfd (c->pid, c->pid_start_time);
  if (fd < 0)
    return fd;
  if (syscall (SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
    {
      int r = -errno;
      close (fd);
      return r;
    }
  *out_pidfd = fd;
  return 0;
}

/* Waits until the container's exit is known or its monitor is gone, at most EXIT_FILE_WAIT_MS.
 * A watched container's exit file is read by the inotify handler the moment the monitor
 * renames it into place, which wakes this wait; a monitor that dies without writing it is
 * seen within MONITOR_GONE_CHECK_MS.  An unwatched one's file is read every 5 ms. */
static void
wait_exit_file (CrispContainerService *svc, CrispContainer *c)
{
  gint64 deadline = g_get_monotonic_time () + EXIT_FILE_WAIT_MS * 1000;
  for (;;)
    {
      crisp_container_refresh (svc, c);
      if (crisp_container_get_state (svc, c) == CRISP_CONTAINER_EXITED)
        return;
      if (!crisp_container_monitor_alive (c))
        {
          /* It may have written the file and exited since the read above. */
          crisp_container_refresh (svc, c);
          return;
        }
      gint64 now = g_get_monotonic_time ();
      if (now >= deadline)
        return;
      g_mutex_lock (&svc->lock);
      gboolean watched = c->exit_watched && svc->inotify_fd >= 0;
      gint64 until = MIN (deadline, now + (watched ? MONITOR_GONE_CHECK_MS : 5) * 1000);
      while (c->state != CRISP_CONTAINER_EXITED
             && g_cond_wait_until (&svc->announced, &svc->lock, until))
        ;
      g_mutex_unlock (&svc->lock);
    }
}

/* The record holds the number crisp_oci_stop_signal chose at create; a record that holds
 * none, or one not readable as a signal, gets the default. */
static int
record_stop_signal (const CrispContainer *c)
{
  int sig = SIGTERM;
  if (c->stop_signal != NULL && crisp_signal_parse (c->stop_signal, &sig) < 0)
    g_debug ("container '%s': stop signal '%s' is not a signal, using SIGTERM", c->id,
             c->stop_signal);
  return sig;
}

/* Under c->op_lock. */
static gboolean
stop_locked (CrispContainerService *svc, CrispContainer *c, gint64 timeout)
{
  crisp_container_refresh (svc, c);
  CrispContainerState state = crisp_container_get_state (svc, c);
  if (state != CRISP_CONTAINER_RUNNING && state != CRISP_CONTAINER_CREATED)
    return TRUE;
  int sig = state == CRISP_CONTAINER_RUNNING && timeout > 0 ? record_stop_signal (c) : SIGKILL;
  _cleanup_close_ int pidfd = -1;
  int r = signal_init (c, sig, &pidfd);
  if (r == 0 && sig != SIGKILL && !wait_pidfd (pidfd, timeout * 1000, NULL))
    {
      g_debug ("container '%s': still running after %" G_GINT64_FORMAT " s, killing", c->id,
               timeout);
      syscall (SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    }
  if (r == 0)
    wait_pidfd (pidfd, EXIT_FILE_WAIT_MS, NULL);
  wait_exit_file (svc, c);
  if (crisp_container_get_state (svc, c) != CRISP_CONTAINER_EXITED
      && !crisp_container_monitor_alive (c))
    {
      /* The monitor died without writing the exit file: record what we know. */
      g_mutex_lock (&svc->lock);
      c->state = CRISP_CONTAINER_EXITED;
      c->exit_code = 255;
      c->finished_at = g_get_real_time () * 1000;
      g_free (c->reason);
      c->reason = g_strdup ("Unknown");
      g_free (c->message);
      c->message = g_strdup ("the container's monitor exited without recording an exit status");
      g_mutex_unlock (&svc->lock);
      crisp_container_save (svc, c, NULL);
      crisp_container_emit (svc, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    }
  return TRUE;
}

gboolean
crisp_container_service_stop (CrispContainerService *svc, const char *id, gint64 timeout,
                              GCancellable *cancellable, GError **error)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, error);
  if (c == NULL)
    return FALSE;
  g_mutex_lock (&c->op_lock);
  gboolean ok = stop_locked (svc, c, MAX (timeout, 0));
  g_mutex_unlock (&c->op_lock);
  CrispContainerState state = crisp_container_get_state (svc, c);
  if (ok && state != CRISP_CONTAINER_EXITED && state != CRISP_CONTAINER_REMOVING)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "container '%s' did not stop", c->id);
  return ok;
}

/* What must hold when RemoveContainer returns is done here: the container is stopped, its
 * record is in the trash (never loaded again), no list or status shows it and its name is
 * free.  The rest (the monitor's end, unmount, the writable layer) is the reaper's. */
static gboolean
remove_locked (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  CrispContainerState state = crisp_container_get_state (svc, c);
  if (state == CRISP_CONTAINER_RUNNING || state == CRISP_CONTAINER_CREATED)
    stop_locked (svc, c, 0);
  /* An exit another thread read is saved and announced first: STOPPED before DELETED. */
  crisp_container_wait_exit_announced (svc, c);
  if (!crisp_container_remove_later (svc, c, error))
    return crisp_prefix_error (error, "removing container '%s': ", c->id);
  crisp_container_emit (svc, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
  return TRUE;
}

gboolean
crisp_container_service_remove (CrispContainerService *svc, const char *id,
                                GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, &local);
  if (c == NULL)
    {
      if (g_error_matches (local, CRISP_ERROR, CRISP_ERROR_NOT_FOUND))
        return TRUE; /* idempotent */
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_mutex_lock (&c->op_lock);
  gboolean ok = TRUE;
  if (still_known (svc, c)) /* not removed meanwhile */
    ok = remove_locked (svc, c, error);
  g_mutex_unlock (&c->op_lock);
  return ok;
}

/* What a start changes in a container. */
typedef struct
{
  CrispContainerState state;
  gint64 started_at, start_requested_at;
} StartFacts;

/* A container whose exit was read meanwhile stays EXITED. Under svc->lock. */
static void
apply_start (CrispContainer *c, const StartFacts *f)
{
  if (c->state == CRISP_CONTAINER_CREATED)
    c->state = f->state;
  c->started_at = f->started_at;
  c->start_requested_at = f->start_requested_at;
}

/* Saves the record as it is once `f` applies, and only then applies it to memory: no RPC
 * reports a state that a kill could take back. Under c->op_lock. */
static gboolean
commit_start (CrispContainerService *svc, CrispContainer *c, const StartFacts *f, GError **error)
{
  g_mutex_lock (&svc->lock);
  g_autoptr (JsonNode) node = crisp_container_to_json (c);
  gboolean exited = c->state != CRISP_CONTAINER_CREATED;
  g_mutex_unlock (&svc->lock);
  JsonObject *o = json_node_get_object (node);
  if (!exited)
    json_object_set_string_member (o, "state", crisp_container_state_to_string (f->state));
  json_object_set_int_member (o, "started_at", f->started_at);
  json_object_set_int_member (o, "start_requested_at", f->start_requested_at);
  /* Neither the intent nor the result is forced to disk: both matter only to a crisp
   * restarted while the container lives, which finds them in the page cache.  A power loss
   * ends the container, and start-up then records it as gone whichever record it finds. */
  if (!crisp_store_save_sync (svc->store, c->id, RECORD, node, FALSE, error))
    return FALSE;
  g_mutex_lock (&svc->lock);
  apply_start (c, f);
  g_mutex_unlock (&svc->lock);
  return TRUE;
}

/* Under c->op_lock: intent on disk, 'runtime start', result on disk, then memory. */
static gboolean
start_locked (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  crisp_container_refresh (svc, c);
  /* The retry of a start that happened while crisp was killed before it could answer; any
   * other start of a started container is the caller's mistake, as in containerd. */
  CrispContainerState state = crisp_container_get_state (svc, c);
  if (state == CRISP_CONTAINER_RUNNING && c->start_recovered)
    {
      c->start_recovered = FALSE;
      return TRUE;
    }
  if (state != CRISP_CONTAINER_CREATED)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "container '%s' is %s, not created",
                        c->id, crisp_container_state_to_string (state));
  /* Taken before the call: a short-lived process can exit before 'runtime start' returns,
   * and its start must not come after its finish. */
  gint64 now = g_get_real_time () * 1000;
  const StartFacts intent = { CRISP_CONTAINER_CREATED, 0, now };
  const StartFacts failed = { CRISP_CONTAINER_CREATED, 0, 0 };
  const StartFacts started = { CRISP_CONTAINER_RUNNING, now, 0 };
  if (!commit_start (svc, c, &intent, error))
    return crisp_prefix_error (error, "starting container '%s': ", c->id);
  /* Released already by a start that a kill interrupted: 'runtime start' would wait for an
   * init that is long gone. A restore's monitor runs the runtime's restore, which starts. */
  if (c->restore_images != NULL
          ? !crisp_container_spawn_monitor (svc, c, NULL, error)
          : !crisp_container_init_released (c) && !crisp_container_runtime_start (c, error))
    {
      g_autoptr (GError) local = NULL;
      if (!commit_start (svc, c, &failed, &local))
        g_warning ("container '%s': clearing a failed start: %s", c->id, local->message);
      return FALSE;
    }
  if (!commit_start (svc, c, &started, error))
    {
      /* It runs, and the intent on disk makes the next start-up find that out. */
      g_mutex_lock (&svc->lock);
      apply_start (c, &started);
      g_mutex_unlock (&svc->lock);
      crisp_container_emit (svc, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
      return crisp_prefix_error (error,
                                 "container '%s' started, but its record was not saved: ", c->id);
    }
  if (c->restore_images != NULL)
    crisp_container_restore_finished (c);
  crisp_container_emit (svc, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
  crisp_container_refresh (svc, c); /* it may have exited already */
  return TRUE;
}

gboolean
crisp_container_service_start (CrispContainerService *svc, const char *id, GError **error)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, error);
  if (c == NULL)
    return FALSE;
  g_mutex_lock (&c->op_lock);
  crisp_container_set_starting (svc, c, TRUE);
  gboolean ok = start_locked (svc, c, error);
  crisp_container_set_starting (svc, c, FALSE);
  g_mutex_unlock (&c->op_lock);
  return ok;
}

void
crisp_container_service_start_answered (CrispContainerService *svc)
{
  crisp_container_standby_nudge (svc);
}

static gboolean
for_each_in_pod (CrispContainerService *svc, const char *pod_id, gboolean remove, GError **error)
{
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, pod_id);
  for (guint i = 0; i < all->len; i++)
    {
      CrispContainer *c = all->pdata[i];
      g_mutex_lock (&c->op_lock);
      gboolean ok = remove ? !still_known (svc, c) || remove_locked (svc, c, error)
                           : stop_locked (svc, c, 0);
      g_mutex_unlock (&c->op_lock);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

void
crisp_container_service_settle_pod (gpointer data, const char *pod_id)
{
  CrispContainerService *svc = data;
  /* A stopped pod keeps nothing running: each monitor's own cleanup is over... */
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, pod_id);
  for (guint i = 0; i < all->len; i++)
    {
      CrispContainer *c = all->pdata[i];
      g_mutex_lock (&c->op_lock);
      if (!wait_monitor_exit (c, MONITOR_EXIT_WAIT_MS, NULL))
        g_warning ("container '%s': monitor %d still running after its container stopped", c->id,
                   c->monitor_pid);
      g_mutex_unlock (&c->op_lock);
    }
  /* ...and so is that of one of its containers removed just before. */
  crisp_container_reaper_wait_monitors (svc, pod_id, MONITOR_EXIT_WAIT_MS);
}

gboolean
crisp_container_service_stop_pod (gpointer svc, const char *pod_id, GCancellable *cancellable,
                                  GError **error)
{
  return for_each_in_pod (svc, pod_id, FALSE, error);
}

gboolean
crisp_container_service_remove_pod (gpointer svc, const char *pod_id, GCancellable *cancellable,
                                    GError **error)
{
  return for_each_in_pod (svc, pod_id, TRUE, error);
}
