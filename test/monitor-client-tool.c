/* A command-line face for pkg/base/monitor-client, driven by test/integration/test_conmon.py:
 *   monitor-client-tool spawn CONMON ID BUNDLE STATE RUNTIME ROOT LOG [--fail-before-go]
 *   monitor-client-tool exec STATE TIMEOUT_MS OUTPUT_MAX ARG... [-- ENV...]
 *   monitor-client-tool version|reopen STATE
 *   monitor-client-tool resize STATE ROWS COLS
 * It prints "key=value" results; exec then writes the raw stdout and stderr bytes. */
#include "config.h"

#include "crisp-base.h"
#include "monitor-client.h"

#include <stdio.h>
#include <string.h>

static int
before_go (pid_t pid, void *data)
{
  printf ("hello=%d\n", (int) pid);
  return data ? -ECANCELED : 0;
}

static int
cmd_spawn (int argc, char **argv)
{
  if (argc < 9)
    return 2;
  CrispMonitorConfig cfg = { .conmon_path = argv[2],
                             .id = argv[3],
                             .bundle = argv[4],
                             .state_dir = argv[5],
                             .runtime = argv[6],
                             .runtime_root = argv[7],
                             .log_path = argv[8] };
  bool fail = argc > 9 && strcmp (argv[9], "--fail-before-go") == 0;
  CrispMonitorStarted st;
  int r = crisp_monitor_spawn (&cfg, before_go, fail ? &cfg : NULL, &st);
  printf ("rc=%d\n", r);
  if (r == 0)
    printf ("monitor=%d\ncontainer=%d\nversion=%d\n", (int) st.monitor_pid, (int) st.container_pid,
            st.protocol_version);
  else if (r == -EIO)
    printf ("runtime_status=%d\nerror=%s\n", st.runtime_status, st.error);
  return 0;
}

static int
cmd_exec (int argc, char **argv, int fd)
{
  if (argc < 6)
    return 2;
  const char **env = NULL;
  for (int i = 5; i < argc; i++)
    if (strcmp (argv[i], "--") == 0)
      {
        argv[i] = NULL;
        env = (const char **) argv + i + 1;
        break;
      }
  CrispMonitorExecResult res;
  int r = crisp_monitor_exec (fd, (const char *const *) argv + 5, (const char *const *) env,
                              (uint32_t) strtoul (argv[3], NULL, 10),
                              (uint32_t) strtoul (argv[4], NULL, 10), &res);
  printf ("rc=%d\n", r);
  if (r < 0)
    return 0;
  printf ("exit=%d\ntimed_out=%d\ntruncated=%d\nout=%zu\nerr=%zu\n", res.exit_code, res.timed_out,
          res.truncated, res.out_len, res.err_len);
  fflush (stdout);
  crisp_write_all (1, res.out ? res.out : "", res.out_len);
  crisp_write_all (1, res.err ? res.err : "", res.err_len);
  crisp_monitor_exec_result_clear (&res);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc < 3)
    return 2;
  if (strcmp (argv[1], "spawn") == 0)
    return cmd_spawn (argc, argv);
  _cleanup_close_ int fd = -1;
  int r = crisp_monitor_connect (argv[2], &fd);
  if (r < 0)
    {
      printf ("rc=%d\n", r);
      return 0;
    }
  if (strcmp (argv[1], "exec") == 0)
    return cmd_exec (argc, argv, fd);
  int v = 0;
  if (strcmp (argv[1], "version") == 0)
    r = crisp_monitor_version (fd, &v);
  else if (strcmp (argv[1], "reopen") == 0)
    r = crisp_monitor_reopen_log (fd);
  else if (strcmp (argv[1], "resize") == 0 && argc == 5)
    r = crisp_monitor_resize (fd, (unsigned) atoi (argv[3]), (unsigned) atoi (argv[4]));
  else
    return 2;
  printf ("rc=%d\nversion=%d\n", r, v);
  return 0;
}
