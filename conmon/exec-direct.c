/* The direct exec path: the monitor enters the container itself, as `runc exec` would, and runs
 * the command with the process spec crisp wrote at create time (STATE/exec-spec and the
 * precompiled seccomp filter), without starting a runtime process per probe. */
#include "config.h"

#include "conmon.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define EXEC_GROUPS_MAX 256
#define EXEC_RLIMITS_MAX 32

enum
{
  CAPS_BOUNDING,
  CAPS_EFFECTIVE,
  CAPS_PERMITTED,
  CAPS_INHERITABLE,
  CAPS_AMBIENT,
  CAPS_N
};

/* STATE/exec-spec, parsed in place (the strings point into the file's buffer). */
typedef struct
{
  uid_t uid;
  gid_t gid;
  gid_t groups[EXEC_GROUPS_MAX];
  size_t ngroups;
  const char *cwd;
  const char *keyring; /* NULL: keep the monitor's (noNewKeyring) */
  bool no_new_privs;
  bool seccomp;
  bool has_oom_score_adj;
  int oom_score_adj;
  uint64_t caps[CAPS_N];
  struct
  {
    int resource;
    struct rlimit lim;
  } rlimits[EXEC_RLIMITS_MAX];
  size_t nrlimits;
  const char **env; /* malloc'd array, NULL-terminated, room for the request's and HOME */
  size_t nenv;
  char *filter; /* the seccomp program when seccomp is set */
  unsigned short filter_len;
} ExecSpec;

/* The child writes why it failed where the runtime would: on the exec's stderr. */
static _Noreturn void
fail (const char *what, int err)
{
  dprintf (STDERR_FILENO, "crisp-conmon: exec failed: %s: %s\n", what, strerror (err));
  _exit (255);
}

static bool
parse_u64 (const char *s, int base, uint64_t *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, base);
  if (errno || end == s || (*end != '\0' && *end != ' ' && *end != ','))
    return false;
  *out = v;
  return true;
}

static bool
parse_id (const char *s, uint32_t *out)
{
  uint64_t v;
  if (!parse_u64 (s, 10, &v) || v >= UINT32_MAX)
    return false;
  *out = (uint32_t) v;
  return true;
}

static bool
parse_groups (ExecSpec *spec, char *s)
{
  for (char *tok = strtok (s, ","); tok; tok = strtok (NULL, ","))
    if (spec->ngroups >= EXEC_GROUPS_MAX || !parse_id (tok, &spec->groups[spec->ngroups++]))
      return false;
  return true;
}

/* "RESOURCE SOFT HARD" */
static bool
parse_rlimit (ExecSpec *spec, const char *s)
{
  uint64_t res, soft, hard;
  if (spec->nrlimits >= EXEC_RLIMITS_MAX || !parse_u64 (s, 10, &res) || res >= RLIM_NLIMITS)
    return false;
  const char *p = strchr (s, ' ');
  if (p == NULL || !parse_u64 (p + 1, 10, &soft) || (p = strchr (p + 1, ' ')) == NULL
      || !parse_u64 (p + 1, 10, &hard))
    return false;
  spec->rlimits[spec->nrlimits].resource = (int) res;
  spec->rlimits[spec->nrlimits].lim = (struct rlimit){ soft, hard };
  spec->nrlimits++;
  return true;
}

static const char *const cap_keys[CAPS_N]
    = { "caps_bounding", "caps_effective", "caps_permitted", "caps_inheritable", "caps_ambient" };

static bool
parse_line (ExecSpec *spec, char *key, char *val)
{
  int64_t v;
  for (int i = 0; i < CAPS_N; i++)
    if (strcmp (key, cap_keys[i]) == 0)
      return parse_u64 (val, 16, &spec->caps[i]);
  if (strcmp (key, "env") == 0)
    return (spec->env[spec->nenv++] = val), true;
  if (strcmp (key, "uid") == 0)
    return parse_id (val, &spec->uid);
  if (strcmp (key, "gid") == 0)
    return parse_id (val, &spec->gid);
  if (strcmp (key, "groups") == 0)
    return parse_groups (spec, val);
  if (strcmp (key, "cwd") == 0)
    return (spec->cwd = val), val[0] == '/';
  if (strcmp (key, "keyring") == 0)
    return (spec->keyring = val), true;
  if (strcmp (key, "no_new_privs") == 0)
    return (spec->no_new_privs = strcmp (val, "1") == 0), true;
  if (strcmp (key, "seccomp") == 0)
    return (spec->seccomp = strcmp (val, "1") == 0), true;
  if (strcmp (key, "rlimit") == 0)
    return parse_rlimit (spec, val);
  if (strcmp (key, "oom_score_adj") == 0)
    {
      char *end;
      v = strtoll (val, &end, 10);
      spec->has_oom_score_adj = true;
      spec->oom_score_adj = (int) v;
      return *end == '\0' && v >= -1000 && v <= 1000;
    }
  return true; /* unknown keys are a newer crisp's */
}

/* Parses buf (modified in place); extra: room to leave in env for the request's variables. */
static int
spec_parse (ExecSpec *spec, char *buf, size_t len, size_t extra)
{
  size_t lines = 1;
  for (size_t i = 0; i < len; i++)
    lines += buf[i] == '\n';
  spec->env = calloc (lines + extra + 2, sizeof *spec->env);
  if (spec->env == NULL)
    return -ENOMEM;
  spec->cwd = "/";
  char *save = NULL;
  bool versioned = false;
  for (char *line = strtok_r (buf, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *eq = strchr (line, '=');
      if (eq == NULL)
        return -EINVAL;
      *eq = '\0';
      versioned |= strcmp (line, "version") == 0;
      if (!parse_line (spec, line, eq + 1))
        return -EINVAL;
    }
  return versioned ? 0 : -EINVAL;
}

/* KEY=VALUE with runc's semantics: a later value replaces an earlier one in its place. */
static void
env_set (ExecSpec *spec, const char *kv)
{
  size_t klen = strcspn (kv, "=");
  for (size_t i = 0; i < spec->nenv; i++)
    if (strncmp (spec->env[i], kv, klen + 1) == 0)
      {
        spec->env[i] = kv;
        return;
      }
  spec->env[spec->nenv++] = kv;
}

static const char *
env_get (const ExecSpec *spec, const char *key)
{
  size_t klen = strlen (key);
  for (size_t i = 0; i < spec->nenv; i++)
    if (strncmp (spec->env[i], key, klen) == 0 && spec->env[i][klen] == '=')
      return spec->env[i] + klen + 1;
  return NULL;
}

/* The spec's variables deduplicated the way runc's Setenv does, then the request's. */
static void
env_build (ExecSpec *spec, const char *env, uint32_t envc)
{
  size_t n = spec->nenv;
  spec->nenv = 0;
  for (size_t i = 0; i < n; i++)
    env_set (spec, spec->env[i]);
  for (uint32_t i = 0; i < envc; i++, env += strlen (env) + 1)
    env_set (spec, env);
  spec->env[spec->nenv] = NULL;
}

/* Without HOME the runtime sets the user's home from the container's /etc/passwd, or "/". */
static void
env_home (ExecSpec *spec)
{
  if (env_get (spec, "HOME") != NULL)
    return;
  static char home[PATH_MAX + 6];
  snprintf (home, sizeof home, "HOME=/");
  _cleanup_free_ char *pw = NULL;
  if (crisp_read_all_at (AT_FDCWD, "/etc/passwd", 1024 * 1024, &pw, NULL) == 0)
    for (char *save = NULL, *l = strtok_r (pw, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
      {
        char *f[7] = { 0 };
        int n = 0;
        for (char *p = l; n < 7; p = strchr (p, ':') + 1)
          {
            f[n++] = p;
            if (strchr (p, ':') == NULL)
              break;
          }
        uint32_t uid;
        if (n < 6 || !parse_id (f[2], &uid) || uid != spec->uid)
          continue;
        size_t hl = strcspn (f[5], ":");
        if (hl > 0 && hl < PATH_MAX)
          snprintf (home, sizeof home, "HOME=%.*s", (int) hl, f[5]);
        break;
      }
  spec->env[spec->nenv++] = home;
  spec->env[spec->nenv] = NULL;
}

/* Moves the calling process into every cgroup listed in buf (the init's /proc/PID/cgroup). */
static int
join_cgroups (char *buf)
{
  char path[PATH_MAX];
  const char *v2 = access ("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
                       ? "/sys/fs/cgroup"
                       : "/sys/fs/cgroup/unified";
  char self[32];
  int selflen = snprintf (self, sizeof self, "%d", getpid ());
  for (char *save = NULL, *l = strtok_r (buf, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      char *ctrl = strchr (l, ':');
      char *cg = ctrl ? strchr (ctrl + 1, ':') : NULL;
      if (cg == NULL)
        continue;
      *cg++ = '\0';
      ctrl++;
      if (strncmp (ctrl, "name=", 5) == 0)
        ctrl += 5;
      int n = *ctrl ? snprintf (path, sizeof path, "/sys/fs/cgroup/%s%s/cgroup.procs", ctrl, cg)
                    : snprintf (path, sizeof path, "%s%s/cgroup.procs", v2, cg);
      if (n >= (int) sizeof path || strstr (cg, "/..") != NULL)
        return -ENAMETOOLONG;
      _cleanup_close_ int fd = open (path, O_WRONLY | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT)
        continue; /* a hierarchy not mounted here */
      if (fd < 0 || write (fd, self, (size_t) selflen) < 0)
        return -errno;
    }
  return 0;
}

/* The pid number still names the process pidfd refers to (so what was just read about it under
 * /proc was about the container's init, not a process that got its number since). */
static bool
pidfd_names (int pidfd, pid_t pid)
{
  char path[64];
  _cleanup_free_ char *info = NULL;
  snprintf (path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  if (crisp_read_all_at (AT_FDCWD, path, 4096, &info, NULL) < 0)
    return false;
  const char *p = strstr (info, "\nPid:");
  return p != NULL && strtol (p + 5, NULL, 10) == pid;
}

static const struct
{
  const char *name;
  int type;
} namespaces[] = {
  { "user", CLONE_NEWUSER }, { "ipc", CLONE_NEWIPC },       { "uts", CLONE_NEWUTS },
  { "net", CLONE_NEWNET },   { "cgroup", CLONE_NEWCGROUP }, { "pid", CLONE_NEWPID },
  { "mnt", CLONE_NEWNS },
};
#define N_NAMESPACES (sizeof namespaces / sizeof namespaces[0])

/* The init's namespaces that differ from ours, as CLONE_NEW* flags. */
static int
namespaces_to_join (pid_t pid)
{
  char path[64];
  int flags = 0;
  for (size_t i = 0; i < N_NAMESPACES; i++)
    {
      struct stat theirs, ours;
      snprintf (path, sizeof path, "/proc/%d/ns/%s", pid, namespaces[i].name);
      if (stat (path, &theirs) < 0)
        fail ("the container's namespaces", errno);
      snprintf (path, sizeof path, "/proc/self/ns/%s", namespaces[i].name);
      if (stat (path, &ours) < 0 || ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev)
        flags |= namespaces[i].type;
    }
  return flags;
}

/* Enters them through the pidfd (a reaped init makes this fail), the user namespace first (its
 * capabilities allow the rest) and the mount namespace last. */
static void
join_namespaces (int pidfd, int flags)
{
  for (size_t i = 0; i < N_NAMESPACES; i++)
    if ((flags & namespaces[i].type) && setns (pidfd, namespaces[i].type) < 0)
      fail (namespaces[i].name, errno);
}

static int
cap_last (void)
{
  _cleanup_free_ char *buf = NULL;
  if (crisp_read_all_at (AT_FDCWD, "/proc/sys/kernel/cap_last_cap", 16, &buf, NULL) < 0)
    return CAP_LAST_CAP;
  int last = atoi (buf);
  return last > 0 && last < 64 ? last : CAP_LAST_CAP;
}

/* What the monitor does before the exec's pid namespace applies: signals, the process group
 * the timeout kills, oom_score_adj and rlimits (as the runtime sets them from outside), the
 * cgroups and the namespaces.  The process is not dumpable until the command's execve, so the
 * container cannot reach into it while it holds the monitor's privileges. */
static void
enter_container (Monitor *m, const ExecSpec *spec, int pidfd)
{
  sigset_t none;
  sigemptyset (&none);
  for (int s = 1; s < NSIG; s++)
    signal (s, SIG_DFL);
  sigprocmask (SIG_SETMASK, &none, NULL);
  setpgid (0, 0);
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (spec->has_oom_score_adj)
    {
      _cleanup_close_ int fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
      if (fd < 0 || dprintf (fd, "%d", spec->oom_score_adj) < 0)
        fail ("oom_score_adj", errno);
    }
  for (size_t i = 0; i < spec->nrlimits; i++)
    if (setrlimit (spec->rlimits[i].resource, &spec->rlimits[i].lim) < 0)
      fail ("setrlimit", errno);
  char path[64];
  _cleanup_free_ char *cgroups = NULL;
  snprintf (path, sizeof path, "/proc/%d/cgroup", m->container_pid);
  int r = crisp_read_all_at (AT_FDCWD, path, 64 * 1024, &cgroups, NULL);
  if (r < 0)
    fail ("reading the container's cgroups", -r);
  int ns = namespaces_to_join (m->container_pid);
  if (!pidfd_names (pidfd, m->container_pid))
    fail ("the container's init", ESRCH);
  if ((r = join_cgroups (cgroups)) < 0)
    fail ("joining the container's cgroups", -r);
  join_namespaces (pidfd, ns);
}

/* Read before the monitor's descriptors are closed. */
static void
read_seccomp (Monitor *m, ExecSpec *spec)
{
  size_t len = 0;
  int r = crisp_read_all_at (m->state_dirfd, CRISP_MONITOR_FILE_EXEC_SECCOMP,
                             CRISP_MONITOR_EXEC_SECCOMP_MAX, &spec->filter, &len);
  if (r < 0 || len == 0 || len % sizeof (struct sock_filter) != 0)
    fail ("reading the seccomp filter", r < 0 ? -r : EINVAL);
  spec->filter_len = (unsigned short) (len / sizeof (struct sock_filter));
}

static void
apply_seccomp (const ExecSpec *spec)
{
  struct sock_fprog prog
      = { .len = spec->filter_len, .filter = (struct sock_filter *) spec->filter };
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
    fail ("loading the seccomp filter", errno);
}

static void
apply_caps (const ExecSpec *spec, uint64_t mask)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  for (int i = 0; i < 2; i++)
    {
      data[i].effective = (uint32_t) ((spec->caps[CAPS_EFFECTIVE] & mask) >> (32 * i));
      data[i].permitted = (uint32_t) ((spec->caps[CAPS_PERMITTED] & mask) >> (32 * i));
      data[i].inheritable = (uint32_t) ((spec->caps[CAPS_INHERITABLE] & mask) >> (32 * i));
    }
  if (syscall (SYS_capset, &hdr, data) < 0)
    fail ("capset", errno);
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    fail ("clearing ambient capabilities", errno);
  for (int cap = 0; cap < 64; cap++)
    if ((spec->caps[CAPS_AMBIENT] & mask & (1ull << cap))
        && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      fail ("raising an ambient capability", errno);
}

/* A user namespace may deny setgroups; runc then leaves the groups as they are. */
static bool
setgroups_allowed (void)
{
  _cleanup_free_ char *buf = NULL;
  if (crisp_read_all_at (AT_FDCWD, "/proc/self/setgroups", 64, &buf, NULL) < 0)
    return true;
  return strncmp (buf, "deny", 4) != 0;
}

/* runc's order: bounding set, keep capabilities across the user change, groups, gid, uid, the
 * working directory (tried first as root, again as the user if that was refused), then the
 * capability sets. */
static void
apply_user (const ExecSpec *spec, int last)
{
  uint64_t mask = last >= 63 ? ~0ull : (1ull << (last + 1)) - 1;
  bool cwd_done = chdir (spec->cwd) == 0;
  if (!cwd_done && errno != EACCES && errno != EPERM)
    fail (spec->cwd, errno);
  for (int cap = 0; cap <= last; cap++)
    if (!(spec->caps[CAPS_BOUNDING] & (1ull << cap)) && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
      fail ("dropping the bounding set", errno);
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    fail ("PR_SET_KEEPCAPS", errno);
  if (setgroups_allowed () && setgroups (spec->ngroups, spec->groups) < 0)
    fail ("setgroups", errno);
  if (setresgid (spec->gid, spec->gid, spec->gid) < 0)
    fail ("setresgid", errno);
  if (setresuid (spec->uid, spec->uid, spec->uid) < 0)
    fail ("setresuid", errno);
  if (!cwd_done && chdir (spec->cwd) < 0)
    fail (spec->cwd, errno);
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    fail ("PR_SET_KEEPCAPS", errno);
  apply_caps (spec, mask);
}

/* The command resolved as the runtime does: as given with a '/', else on the exec's PATH. */
static const char *
look_path (const ExecSpec *spec, const char *name, char *buf, size_t size)
{
  if (strchr (name, '/') != NULL)
    return name;
  const char *path = env_get (spec, "PATH");
  for (const char *dir = path; dir && *dir;
       dir += strcspn (dir, ":") + (dir[strcspn (dir, ":")] != 0))
    {
      size_t dl = strcspn (dir, ":");
      struct stat st;
      if (dir[0] != '/' || snprintf (buf, size, "%.*s/%s", (int) dl, dir, name) >= (int) size)
        continue;
      if (stat (buf, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 0111))
        return buf;
    }
  dprintf (STDERR_FILENO, "crisp-conmon: exec failed: \"%s\": executable file not found in $PATH\n",
           name);
  _exit (255);
}

/* In the container's pid namespace: the rest of runc's setns init, in its order; the seccomp
 * filter goes last with no_new_privs, or before the capabilities are dropped without it. */
static _Noreturn void
run_command (ExecSpec *spec, char *const *argv, int last)
{
  if (spec->keyring && syscall (SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, spec->keyring) < 0
      && errno != ENOSYS)
    fail ("joining the session keyring", errno);
  if (spec->no_new_privs && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    fail ("no_new_privs", errno);
  if (spec->seccomp && !spec->no_new_privs)
    apply_seccomp (spec);
  apply_user (spec, last);
  /* Set after the credentials changed (that clears it): a timeout's kill of the process
   * group still reaches the command through its parent if it left the group. */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    fail ("PR_SET_PDEATHSIG", errno);
  env_home (spec);
  char pathbuf[PATH_MAX];
  const char *file = look_path (spec, argv[0], pathbuf, sizeof pathbuf);
  if (spec->seccomp && spec->no_new_privs)
    apply_seccomp (spec);
  close_range (3, ~0u, CLOSE_RANGE_CLOEXEC);
  execve (file, argv, (char *const *) spec->env);
  fail (argv[0], errno);
}

/* The exec's status as the middle process's own: a signal n becomes 128+n, as the monitor
 * reports either way. */
static _Noreturn void
wait_and_forward (pid_t pid)
{
  int st;
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      _exit (255);
  _exit (WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
}

bool
exec_direct_available (Monitor *m)
{
#if defined(__SANITIZE_THREAD__)
  /* ThreadSanitizer keeps a thread of its own in the forked child, and the kernel refuses a
   * multi-threaded process its setns into a mount namespace (EINVAL): runc's exec there. */
  (void) m;
  return false;
#else
  return faccessat (m->state_dirfd, CRISP_MONITOR_FILE_EXEC_SPEC, F_OK, 0) == 0;
#endif
}

/* The child's own stdio, the pidfd as descriptor 3, and nothing else of the monitor's (the
 * container's stdin above all, so a stdin_once close is not held up by an exec). */
static void
keep_only (const int fds[3], int pidfd)
{
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0 && dup2 (fds[i], i) < 0)
      _exit (255);
  if (dup2 (pidfd, 3) < 0)
    _exit (255);
  close_range (4, ~0u, 0);
}

/* Forks the process that enters the container and forks the command inside its pid namespace;
 * *out_pid leads a process group the timeout kills whole.  The pidfd is taken while the init is
 * surely not reaped (the monitor reaps it, and it is running), so the namespaces entered are
 * its own even if it exits meanwhile. */
int
exec_direct_spawn (Monitor *m, const char *args, uint32_t argc, const char *env, uint32_t envc,
                   const int fds[3], pid_t *out_pid)
{
  int pidfd = (int) syscall (SYS_pidfd_open, m->container_pid, 0);
  if (pidfd < 0)
    return -errno;
  pid_t pid = fork ();
  if (pid != 0)
    {
      int err = errno;
      close (pidfd);
      if (pid < 0)
        return -err;
      setpgid (pid, pid); /* also in the child: whichever runs first */
      *out_pid = pid;
      return 0;
    }
  if (fds[2] >= 0)
    dup2 (fds[2], STDERR_FILENO); /* where fail () reports */
  char *buf = NULL;
  size_t len = 0;
  ExecSpec spec = { 0 };
  int r = crisp_read_all_at (m->state_dirfd, CRISP_MONITOR_FILE_EXEC_SPEC,
                             CRISP_MONITOR_EXEC_SPEC_MAX, &buf, &len);
  if (r == 0)
    r = spec_parse (&spec, buf, len, envc);
  if (r < 0)
    fail ("reading " CRISP_MONITOR_FILE_EXEC_SPEC, -r);
  env_build (&spec, env, envc);
  char **argv = calloc ((size_t) argc + 1, sizeof *argv);
  if (argv == NULL)
    _exit (255);
  for (uint32_t i = 0; i < argc; i++, args += strlen (args) + 1)
    argv[i] = (char *) args;
  if (spec.seccomp)
    read_seccomp (m, &spec);
  int last = cap_last ();
  keep_only (fds, pidfd);
  enter_container (m, &spec, 3);
  pid_t child = fork ();
  if (child < 0)
    fail ("fork", errno);
  if (child == 0)
    run_command (&spec, argv, last);
  wait_and_forward (child);
}
