/* Calls into the OCI runtime (start, delete) and reads what the monitor leaves behind. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "monitor-protocol.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* runc's fifo that holds a created container's init until the start. */
#define EXEC_FIFO "exec.fifo"
/* How runc's init names itself ("runc:[0:PARENT]" ... "runc:[2:INIT]") until its exec. */
#define RUNC_INIT_COMM "runc:["
/* How long a start waits for that init to take it (it is waiting already). */
#define FIFO_RELEASE_WAIT_MS 10000
/* The wait for the exec that ended the fifo to be done: at most 200 pauses of 100 us. */
#define EXEC_DONE_TRIES 200
#define EXEC_DONE_PAUSE_US 100

/* Bounds what a runtime call may print; runc prints a few lines at most. */
#define RUNTIME_OUTPUT_MAX (1024 * 1024)

/* Runs `<runtime> [--root R] <verb> [args] <id>`; its stderr becomes the error message and
 * its stdout goes to out_stdout when that is given. The child starts without a copy of
 * crisp's page tables (crisp_spawn_communicate) and dies with the calling thread, so a crisp
 * killed during 'start' leaves no 'runtime start' running on behind the next crisp's
 * recovery. */
static gboolean
run_runtime (CrispContainer *c, const char *verb, const char *flag, char **out_stdout,
             GError **error)
{
  g_autofree char *path = crisp_container_runtime_path (c->runtime_path);
  if (path == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "runtime '%s' is not found on PATH",
                        c->runtime_path);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, path);
  if (c->runtime_root)
    {
      g_ptr_array_add (argv, (char *) "--root");
      g_ptr_array_add (argv, c->runtime_root);
    }
  g_ptr_array_add (argv, (char *) verb);
  if (flag)
    g_ptr_array_add (argv, (char *) flag);
  g_ptr_array_add (argv, c->id);
  g_ptr_array_add (argv, NULL);
  CrispSpawnResult res = { 0 };
  int r = crisp_spawn_communicate (path, (char *const *) argv->pdata, environ, NULL, 0,
                                   RUNTIME_OUTPUT_MAX, -1, &res);
  if (r < 0)
    return crisp_throw_errno (error, -r, "running '%s %s'", c->runtime_path, verb);
  gboolean ok = WIFEXITED (res.status) && WEXITSTATUS (res.status) == 0;
  if (!ok)
    crisp_throw (error, CRISP_ERROR_INTERNAL, "'%s %s' failed for container '%s': %.1024s",
                 c->runtime_path, verb, c->id, res.err ? g_strstrip (res.err) : "");
  else if (out_stdout)
    *out_stdout = g_strdup (res.out ? res.out : "");
  crisp_spawn_result_clear (&res);
  return ok;
}

gboolean
crisp_container_runtime_is_runc (const CrispContainer *c)
{
  g_autofree char *name = c->runtime_path ? g_path_get_basename (c->runtime_path) : NULL;
  return name != NULL && g_str_equal (name, "runc");
}

/* The end of the exec fifo comes before the init's exec is done: runc's init closes its
 * descriptors (the fifo's among them) before it calls execve, and the kernel puts the new
 * program's arguments in place last, so for a moment /proc/PID/cmdline still reads "runc
 * init" and then nothing.  `runc start` answers at the same point, but its own exit hides
 * that moment; here the start waits it out, so that whoever looks at the container's
 * process right after sees it as itself: its name no longer runc's init's
 * ("runc:[2:INIT]", replaced early in the exec) and its arguments there.  That takes about a
 * millisecond here.  Bounded; an init that is gone (its pidfd readable) ends the wait. */
/* Whether the process behind comm_fd (its /proc/PID/comm) still has runc's init's name. */
static gboolean
named_runc_init (int comm_fd)
{
  char name[sizeof RUNC_INIT_COMM - 1];
  return pread (comm_fd, name, sizeof name, 0) == (ssize_t) sizeof name
         && memcmp (name, RUNC_INIT_COMM, sizeof name) == 0;
}

static void
wait_exec_done (CrispContainer *c, int pidfd)
{
  g_autofree char *comm_path = g_strdup_printf ("/proc/%d/comm", c->pid);
  g_autofree char *argv_path = g_strdup_printf ("/proc/%d/cmdline", c->pid);
  _cleanup_close_ int comm = open (comm_path, O_RDONLY | O_CLOEXEC);
  _cleanup_close_ int argv = open (argv_path, O_RDONLY | O_CLOEXEC);
  char b;
  for (int i = 0; comm >= 0 && argv >= 0 && i < EXEC_DONE_TRIES; i++)
    {
      /* Exec'd, or gone (a read error): either way nothing to wait for. */
      if (!named_runc_init (comm) && pread (argv, &b, 1, 0) != 0)
        return;
      struct pollfd p = { .fd = pidfd, .events = POLLIN };
      struct timespec pause = { 0, EXEC_DONE_PAUSE_US * 1000 };
      if (ppoll (&p, 1, &pause, NULL) > 0)
        return;
    }
}

/* `runc start` without its process.  runc create leaves the container's init blocked in an
 * open of <root>/<id>/exec.fifo for writing; `runc start` is the reader: it opens the fifo,
 * reads the byte the init writes, reads on to the end of the file (the init closes its end
 * right before it execs the container's process), and removes the fifo, which is how runc
 * tells "created" from "running" from then on; crisp then waits for that exec to be done.  Doing
 * the same here saves a runtime process per start.  Only for runc itself (a handler whose path is
 * named "runc"): another runtime, or a wrapper, gets its own 'start'.  Returns 1 when the init was
 * released, 0 when this container is not one to release this way (then 'runtime start' runs
 * and says what is wrong), -1 with error set when the release failed. */
static int
release_through_fifo (CrispContainer *c, GError **error)
{
  if (c->runtime_root == NULL || !crisp_container_runtime_is_runc (c))
    return 0;
  g_autofree char *dir = g_build_filename (c->runtime_root, c->id, NULL);
  _cleanup_close_ int dirfd = open (dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  _cleanup_close_ int fifo
      = dirfd < 0 ? -1 : openat (dirfd, EXEC_FIFO, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fifo < 0 || fstat (fifo, &st) < 0 || !S_ISFIFO (st.st_mode))
    return 0;
  /* An init that is gone would never write: 'runtime start' reports that. */
  _cleanup_close_ int init = crisp_process_pidfd (c->pid, c->pid_start_time);
  if (init < 0)
    return 0;
  gint64 deadline = g_get_monotonic_time () + FIFO_RELEASE_WAIT_MS * 1000;
  gsize got = 0;
  for (;;)
    {
      /* Until the init's open completes there is no writer, and no POLLHUP either. */
      struct pollfd fds[2] = { { .fd = fifo, .events = POLLIN }, { .fd = init, .events = POLLIN } };
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      int r = left > 0 ? poll (fds, 2, (int) left) : 0;
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return crisp_throw_errno (error, errno, "container '%s': waiting for its init", c->id), -1;
      if (r == 0)
        return crisp_throw (error, CRISP_ERROR_DEADLINE_EXCEEDED,
                            "container '%s': its init did not take the start within %d s", c->id,
                            FIFO_RELEASE_WAIT_MS / 1000),
               -1;
      if (fds[0].revents != 0)
        {
          char buf[64];
          ssize_t n = read (fifo, buf, sizeof buf);
          if (n > 0)
            got += (gsize) n;
          if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
            continue;
          break; /* the end of the file: the init exec'd the process, or failed */
        }
      /* The init exited with the fifo still open or unopened: nothing more will come. */
      fds[1].fd = -1;
      init = (close (init), -1);
      if (poll (fds, 1, 0) <= 0)
        break;
    }
  if (got == 0)
    return crisp_throw (error, CRISP_ERROR_INTERNAL,
                        "container '%s': its init ended before it was started", c->id),
           -1;
  if (unlinkat (dirfd, EXEC_FIFO, 0) < 0 && errno != ENOENT)
    return crisp_throw_errno (error, errno, "container '%s': removing '%s/%s'", c->id, dir,
                              EXEC_FIFO),
           -1;
  wait_exec_done (c, init);
  return 1;
}

gboolean
crisp_container_runtime_start (CrispContainer *c, GError **error)
{
  int r = release_through_fifo (c, error);
  return r != 0 ? r > 0 : run_runtime (c, "start", NULL, NULL, error);
}

gboolean
crisp_container_runtime_delete (CrispContainer *c, GError **error)
{
  return run_runtime (c, "delete", "--force", NULL, error);
}

/* Whether the container's init is alive and no longer the runtime's own init waiting for
 * 'start' (runc names that one "runc:[2:INIT]", crun keeps its name): then a 'start' released
 * it, whatever the runtime's state file says (a 'runc start' killed between opening and
 * removing its exec fifo leaves the state at "created" for good). */
gboolean
crisp_container_init_released (CrispContainer *c)
{
  if (!crisp_process_matches (c->pid, c->pid_start_time))
    return FALSE;
  g_autofree char *path = g_strdup_printf ("/proc/%d/comm", c->pid);
  g_autofree char *comm = NULL;
  if (!g_file_get_contents (path, &comm, NULL, NULL))
    return FALSE;
  g_strchomp (comm);
  return !g_str_has_prefix (comm, RUNC_INIT_COMM) && !g_str_equal (comm, "runc")
         && !g_str_equal (comm, "crun");
}

char *
crisp_container_runtime_status (CrispContainer *c, GError **error)
{
  g_autofree char *out = NULL;
  if (!run_runtime (c, "state", NULL, &out, error))
    return NULL;
  g_autoptr (JsonNode) root = json_from_string (out, NULL);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonNode *n = o ? json_object_get_member (o, "status") : NULL;
  const char *status
      = n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
            ? json_node_get_string (n)
            : NULL;
  if (status == NULL)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "'%s state' gave no status for container '%s'",
                        c->runtime_path, c->id),
           NULL;
  return g_strdup (status);
}

gboolean
crisp_process_matches (int pid, guint64 start_time)
{
  if (pid <= 0)
    return FALSE;
  guint64 now = crisp_proc_start_time (pid);
  return now != 0 && (start_time == 0 || now == start_time);
}

int
crisp_process_pidfd (int pid, guint64 start_time)
{
  if (!crisp_process_matches (pid, start_time))
    return -ESRCH;
  int fd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return -errno;
  /* Checked again now that the pidfd pins the process: the pid may have been reused. */
  if (!crisp_process_matches (pid, start_time))
    {
      close (fd);
      return -ESRCH;
    }
  return fd;
}

static const char *
exit_value (char **lines, const char *key)
{
  size_t klen = strlen (key);
  for (char **l = lines; *l; l++)
    if (strncmp (*l, key, klen) == 0 && (*l)[klen] == '=')
      return *l + klen + 1;
  return NULL;
}

gboolean
crisp_container_read_exit (CrispContainerService *svc, CrispContainer *c)
{
  /* One open: most calls find no exit file, and this is their whole cost. */
  g_autofree char *path = crisp_container_run_path (svc, c->id, "monitor/" CRISP_MONITOR_FILE_EXIT);
  char *buf = NULL;
  if (crisp_read_all_at (AT_FDCWD, path, 4096, &buf, NULL) < 0)
    return FALSE;
  g_auto (GStrv) lines = g_strsplit (buf, "\n", -1);
  free (buf);
  const char *status = exit_value (lines, "status");
  const char *at = exit_value (lines, "exited_at_ns");
  const char *oom = exit_value (lines, "oom_killed");
  if (status == NULL)
    return FALSE;
  c->exit_code = (int) g_ascii_strtoll (status, NULL, 10);
  c->finished_at = at ? g_ascii_strtoll (at, NULL, 10) : g_get_real_time () * 1000;
  c->oom_killed = oom != NULL && g_str_equal (oom, "1");
  c->state = CRISP_CONTAINER_EXITED;
  g_free (c->reason);
  c->reason = g_strdup (c->oom_killed ? "OOMKilled" : c->exit_code == 0 ? "Completed" : "Error");
  return TRUE;
}
