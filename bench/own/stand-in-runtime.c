/* A stand-in OCI runtime for bench/own: just enough of runc's command line for crisp's
 * create, start, stop and remove, doing almost nothing, so that what a CRI call costs beyond
 * it is crisp's own.  Not a runtime: no namespaces, no root filesystem, no cgroup.
 *
 *   create --bundle B --pid-file P ID   forks a process that waits, named as runc's init is
 *                                       (crisp skips `start` for an init that is not), and
 *                                       writes its pid
 *   start ID                            lets it go (SIGUSR2: it takes another name) and marks
 *                                       it started
 *   state ID                            {"status": created | running | stopped, "pid": N}
 *   kill ID [SIGNAL]                    sends the signal (TERM by default)
 *   delete [--force] ID                 forgets it (--force: kills it first)
 *
 * State is a file per container under --root.  Each call appends "COMMAND MS" (its own
 * lifetime, CLOCK_MONOTONIC) to ROOT/times, so the bench can say how much of a step was the
 * stand-in's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct timespec started;
static const char *root = "/run/crisp-stand-in";
static const char *command = "?";
static const char *log_path; /* --log: where crisp looks for a runtime's error, as runc writes it */

static double
elapsed_ms (void)
{
  struct timespec now;
  clock_gettime (CLOCK_MONOTONIC, &now);
  return (double) (now.tv_sec - started.tv_sec) * 1e3 + (double) (now.tv_nsec - started.tv_nsec) / 1e6;
}

static int
finish (int code)
{
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/times", root);
  int fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0)
    {
      dprintf (fd, "%s %.3f\n", command, elapsed_ms ());
      close (fd);
    }
  return code;
}

static int
fail (const char *what, const char *id)
{
  fprintf (stderr, "stand-in: %s: %s\n", what, id ? id : "");
  int fd = log_path ? open (log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
  if (fd >= 0)
    {
      dprintf (fd, "{\"level\":\"error\",\"msg\":\"stand-in: %s: %s\"}\n", what, id ? id : "");
      close (fd);
    }
  return finish (1);
}

/* mkdir -p of an absolute path. */
static int
make_dirs (const char *path)
{
  char buf[PATH_MAX];
  if (snprintf (buf, sizeof buf, "%s", path) >= (int) sizeof buf)
    return -1;
  for (char *p = buf + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        if (mkdir (buf, 0700) < 0 && errno != EEXIST)
          return -1;
        *p = '/';
      }
  return mkdir (buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Writes text to path through a temporary file and a rename. */
static int
write_file (const char *path, const char *text)
{
  char tmp[PATH_MAX];
  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen (tmp, "we");
  if (f == NULL)
    return -1;
  fputs (text, f);
  if (fclose (f) != 0)
    return -1;
  return rename (tmp, path);
}

/* pid and whether it was started, from ROOT/ID; 0 when unknown. */
static pid_t
read_state (const char *id, int *out_started)
{
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/%s", root, id);
  FILE *f = fopen (path, "re");
  int pid = 0, was_started = 0;
  if (f != NULL)
    {
      if (fscanf (f, "%d %d", &pid, &was_started) != 2)
        pid = 0;
      fclose (f);
    }
  if (out_started)
    *out_started = was_started;
  return pid;
}

static int
save_state (const char *id, pid_t pid, int was_started)
{
  char path[PATH_MAX], text[64];
  snprintf (path, sizeof path, "%s/%s", root, id);
  snprintf (text, sizeof text, "%d %d\n", (int) pid, was_started);
  return write_file (path, text);
}

static int
signal_number (const char *name)
{
  static const struct
  {
    const char *name;
    int sig;
  } names[] = { { "KILL", SIGKILL }, { "TERM", SIGTERM }, { "INT", SIGINT },
                { "HUP", SIGHUP },   { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 } };
  if (name == NULL)
    return SIGTERM;
  if (strncmp (name, "SIG", 3) == 0)
    name += 3;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp (names[i].name, name) == 0)
      return names[i].sig;
  int n = atoi (name);
  return n > 0 ? n : SIGTERM;
}

int
main (int argc, char **argv)
{
  clock_gettime (CLOCK_MONOTONIC, &started);
  const char *pid_file = NULL, *id = NULL, *arg = NULL;
  int force = 0;
  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (strcmp (a, "--root") == 0 && i + 1 < argc)
        root = argv[++i];
      else if (strcmp (a, "--pid-file") == 0 && i + 1 < argc)
        pid_file = argv[++i];
      else if (strcmp (a, "--log") == 0 && i + 1 < argc)
        log_path = argv[++i];
      else if ((strcmp (a, "--log-format") == 0
                || strcmp (a, "--bundle") == 0 || strcmp (a, "-b") == 0)
               && i + 1 < argc)
        i++;
      else if (strcmp (a, "--force") == 0 || strcmp (a, "-f") == 0)
        force = 1;
      else if (strcmp (a, "--console-socket") == 0)
        return fail ("a terminal is not supported", NULL);
      else if (a[0] == '-')
        continue;
      else if (strcmp (command, "?") == 0)
        command = a;
      else if (id == NULL)
        id = a;
      else if (arg == NULL)
        arg = a;
    }
  if (make_dirs (root) < 0)
    return fail ("cannot make the root", root);
  if (strcmp (command, "--version") == 0 || strcmp (command, "features") == 0)
    return printf ("stand-in\n"), finish (0);
  if (id == NULL || strchr (id, '/') != NULL)
    return fail ("no container id", id);
  int was_started = 0;
  pid_t pid = read_state (id, &was_started);
  if (strcmp (command, "create") == 0)
    {
      if (pid_file == NULL)
        return fail ("create needs --pid-file", id);
      pid_t child = fork ();
      if (child < 0)
        return fail ("fork", id);
      if (child == 0)
        {
          /* The container: its own session, stdin from /dev/null, the runtime's stdout and
           * stderr (the monitor's pipes); "started" once SIGUSR2 comes, and waiting until a
           * signal ends it. */
          sigset_t go;
          sigemptyset (&go);
          sigaddset (&go, SIGUSR2);
          sigprocmask (SIG_BLOCK, &go, NULL);
          prctl (PR_SET_NAME, "runc:[2:INIT]");
          setsid ();
          int null = open ("/dev/null", O_RDONLY);
          if (null >= 0)
            dup2 (null, 0);
          int sig;
          sigwait (&go, &sig);
          prctl (PR_SET_NAME, "stand-in-ctr");
          for (;;)
            pause ();
        }
      char text[32];
      snprintf (text, sizeof text, "%d", (int) child);
      if (write_file (pid_file, text) < 0 || save_state (id, child, 0) < 0)
        {
          kill (child, SIGKILL);
          return fail ("cannot write the pid", id);
        }
      return finish (0);
    }
  if (pid == 0)
    return fail ("container does not exist", id);
  int alive = kill (pid, 0) == 0;
  if (strcmp (command, "start") == 0)
    {
      if (!alive || was_started)
        return fail ("container is not created", id);
      return finish (kill (pid, SIGUSR2) < 0 || save_state (id, pid, 1) < 0 ? 1 : 0);
    }
  if (strcmp (command, "state") == 0)
    {
      printf ("{\"ociVersion\":\"1.0.2\",\"id\":\"%s\",\"pid\":%d,\"status\":\"%s\","
              "\"bundle\":\"/\"}\n",
              id, (int) pid, !alive ? "stopped" : was_started ? "running" : "created");
      return finish (0);
    }
  if (strcmp (command, "kill") == 0)
    return finish (alive && kill (pid, signal_number (arg)) < 0 ? 1 : 0);
  if (strcmp (command, "delete") == 0)
    {
      if (alive && !force)
        return fail ("container is still running", id);
      if (alive)
        kill (pid, SIGKILL);
      char path[PATH_MAX];
      snprintf (path, sizeof path, "%s/%s", root, id);
      unlink (path);
      return finish (0);
    }
  return fail ("unknown command", command);
}
