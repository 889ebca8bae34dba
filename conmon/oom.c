/* OOM detection: the container's memory cgroup is watched (cgroup v1: an eventfd registered on
 * memory.oom_control; cgroup v2: memory.events, which signals changes with POLLPRI), and its
 * oom_kill counter is read again at the container's exit, before the runtime deletes it. */
#include "config.h"

#include "conmon.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static bool
has_controller (const char *list, const char *name)
{
  size_t len = strlen (name);
  for (const char *p = list; p; p = strchr (p, ','))
    {
      p += *p == ',';
      if (strncmp (p, name, len) == 0 && (p[len] == '\0' || p[len] == ','))
        return true;
    }
  return false;
}

/* Finds the container's memory cgroup in /proc/PID/cgroup: the v1 "memory" hierarchy when it
 * is mounted (hybrid hosts), else the unified one on a pure v2 host. */
static int
open_memory_cgroup (Monitor *m, bool *out_v2)
{
  char path[PATH_MAX], name[64];
  _cleanup_free_ char *buf = NULL;
  snprintf (name, sizeof name, "/proc/%d/cgroup", (int) m->container_pid);
  int r = crisp_read_all_at (AT_FDCWD, name, 1 << 16, &buf, NULL);
  if (r < 0)
    return r;
  const char *v2 = NULL;
  char *save = NULL;
  for (char *line = strtok_r (buf, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *ctrl = strchr (line, ':'), *cg = ctrl ? strchr (ctrl + 1, ':') : NULL;
      if (cg == NULL)
        continue;
      *cg++ = '\0';
      if (ctrl[1] == '\0')
        v2 = cg;
      else if (has_controller (ctrl + 1, "memory"))
        {
          snprintf (path, sizeof path, "/sys/fs/cgroup/memory%s", cg);
          *out_v2 = false;
          int fd = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
          return fd < 0 ? -errno : fd;
        }
    }
  if (v2 == NULL || access ("/sys/fs/cgroup/cgroup.controllers", F_OK) < 0)
    return -ENOENT;
  snprintf (path, sizeof path, "/sys/fs/cgroup%s", v2);
  *out_v2 = true;
  int fd = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

/* The cgroup's "oom_kill N" counter (memory.oom_control in v1, memory.events in v2). */
static long
read_oom_kills (Monitor *m)
{
  _cleanup_free_ char *buf = NULL;
  const char *file = m->oom_v2 ? "memory.events" : "memory.oom_control";
  if (m->oom_cgroup_fd < 0 || crisp_read_all_at (m->oom_cgroup_fd, file, 4096, &buf, NULL) < 0)
    return -1;
  const char *p = strstr (buf, "oom_kill ");
  return p ? strtol (p + 9, NULL, 10) : -1;
}

static void
record_oom (Monitor *m)
{
  if (m->oom_killed)
    return;
  m->oom_killed = true;
  char buf[32];
  int n = snprintf (buf, sizeof buf, "version=%d\n", CRISP_MONITOR_PROTOCOL_VERSION);
  crisp_write_file_atomic_at (m->state_dirfd, CRISP_MONITOR_FILE_OOM, buf, (size_t) n, 0600);
}

static void
on_oom_event (Monitor *m, MonitorSource *src, uint32_t events)
{
  uint64_t v;
  if (!m->oom_v2)
    (void) !read (src->fd, &v, sizeof v);
  /* v1 also fires when the group is merely under OOM with the killer disabled: the counter
   * says whether something was killed (a kernel without it: trust the event). */
  long kills = read_oom_kills (m);
  if (kills != 0)
    record_oom (m);
  else if (!m->oom_killed)
    {
      /* The event can come before the kill is counted: look again for a second. */
      uint64_t now = monitor_now_ns ();
      m->oom_recheck_ns = now + 10 * 1000000ull;
      m->oom_recheck_until_ns = now + 1000 * 1000000ull;
    }
}

void
oom_tick (Monitor *m, uint64_t now)
{
  if (m->oom_recheck_ns == 0 || now < m->oom_recheck_ns)
    return;
  if (read_oom_kills (m) > 0)
    record_oom (m);
  if (m->oom_killed || now >= m->oom_recheck_until_ns)
    m->oom_recheck_ns = 0;
  else
    m->oom_recheck_ns = now + 20 * 1000000ull;
}

static int
watch_v1 (Monitor *m)
{
  _cleanup_close_ int efd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  _cleanup_close_ int ofd = openat (m->oom_cgroup_fd, "memory.oom_control", O_RDONLY | O_CLOEXEC);
  _cleanup_close_ int cfd = openat (m->oom_cgroup_fd, "cgroup.event_control", O_WRONLY | O_CLOEXEC);
  if (efd < 0 || ofd < 0 || cfd < 0)
    return -errno;
  char line[32];
  int n = snprintf (line, sizeof line, "%d %d", efd, ofd);
  if (write (cfd, line, (size_t) n) < 0)
    return -errno;
  int r = monitor_watch (m, &m->oom_src, efd, on_oom_event, EPOLLIN);
  if (r == 0)
    take_fd (&efd);
  return r;
}

static int
watch_v2 (Monitor *m)
{
  _cleanup_close_ int fd = openat (m->oom_cgroup_fd, "memory.events", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = monitor_watch (m, &m->oom_src, fd, on_oom_event, EPOLLPRI);
  if (r == 0)
    take_fd (&fd);
  return r;
}

int
oom_setup (Monitor *m)
{
  m->oom_src.fd = -1;
  int fd = open_memory_cgroup (m, &m->oom_v2);
  if (fd < 0)
    return fd; /* no memory controller: nothing to watch */
  m->oom_cgroup_fd = fd;
  int r = m->oom_v2 ? watch_v2 (m) : watch_v1 (m);
  if (r < 0)
    monitor_log ("container '%s': cannot watch for OOM: %s, ignoring", m->opt.id, strerror (-r));
  return r;
}

void
oom_check (Monitor *m)
{
  if (read_oom_kills (m) > 0)
    record_oom (m);
  monitor_unwatch_close (m, &m->oom_src);
}
