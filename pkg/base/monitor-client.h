/* crisp's side of the monitor protocol (monitor-protocol.h): starting crisp-conmon with its
 * handshake, and requests on a running monitor's control socket.  libc only; every function
 * returns 0 or -errno, never logs, and blocks (crisp calls these from worker threads). */
#pragma once

#include "monitor-protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct
{
  const char *conmon_path; /* NULL: LIBEXECDIR/crisp-conmon */
  const char *id;
  const char *bundle;
  const char *state_dir; /* exists, 0700 */
  const char *runtime;
  const char *runtime_root; /* NULL: the runtime's default */
  const char *log_path;     /* NULL: output is not logged */
  /* Set: `runtime restore` from the CRIU images in restore_images (work files in
   * restore_work) in place of `runtime create`; the container then runs at CREATED. */
  const char *restore_images;
  const char *restore_work;
  size_t log_max_line; /* 0: the monitor's default */
  bool terminal;
  bool stdin_open;
  bool stdin_once;
  bool no_delete;
  int timeout_ms; /* for each step of the handshake; 0: 60 s */
  /* > 2: a sealed in-memory copy of the runtime (crisp_runtime_copies_get), sent with GO; the
   * monitor keeps it and runs it in place of the runtime's path.  The caller still closes
   * it.  0: none. */
  int runtime_fd;
} CrispMonitorConfig;

typedef struct
{
  pid_t monitor_pid;
  pid_t container_pid;
  int protocol_version; /* the monitor's; keep it with the container's record */
  int runtime_status;   /* on -EIO: the runtime's exit status */
  char error[2048];     /* on -EIO: the runtime's message, NUL-terminated */
} CrispMonitorStarted;

/* Called once the monitor has detached and reported its pid, before it creates the container:
 * the moment to move it into a cgroup of its own.  A negative return aborts the start. */
typedef int (*CrispMonitorBeforeGo) (pid_t monitor_pid, void *user_data);

/* Starts a monitor for cfg->id and waits until `runtime create` is done.  0: created,
 * out->container_pid set; -EIO: the runtime failed, out->error says why; else -errno (the
 * monitor, if it got as far as starting, exits on its own). */
int crisp_monitor_spawn (const CrispMonitorConfig *cfg, CrispMonitorBeforeGo before_go,
                         void *user_data, CrispMonitorStarted *out);

/* A monitor started ahead of need and detached, waiting on its sync socket to be given a
 * container: a create then skips the monitor's exec and fork.  It exits when the socket is
 * closed (crisp_monitor_standby_release, or crisp's end). */
typedef struct
{
  pid_t pid; /* 0: none */
  int fd;    /* the sync socket; -1: none */
} CrispMonitorStandby;

#define CRISP_MONITOR_STANDBY_INIT                                                                 \
  {                                                                                                \
    0, -1                                                                                          \
  }

/* Starts one (timeout_ms: for its STANDBY; 0: 60 s). */
int crisp_monitor_standby_new (const char *conmon_path, int timeout_ms, CrispMonitorStandby *out);
void crisp_monitor_standby_release (CrispMonitorStandby *standby);
/* crisp_monitor_spawn with a standby monitor, which it takes (standby->fd becomes -1) even on
 * failure.  before_go gets standby->pid before the monitor's HELLO.  -ESRCH: the standby was
 * gone before it could take the container (before any before_go); -EIO: it refused the
 * options or the runtime failed, out->error says why. */
int crisp_monitor_assign (CrispMonitorStandby *standby, const CrispMonitorConfig *cfg,
                          CrispMonitorBeforeGo before_go, void *user_data,
                          CrispMonitorStarted *out);

/* Connects to the control socket in state_dir (any length: the path goes through /proc). */
int crisp_monitor_connect (const char *state_dir, int *out_fd);
/* The same for another of the monitor's sockets (CRISP_MONITOR_SOCKET_ATTACH). */
int crisp_monitor_connect_socket (const char *state_dir, const char *name, int *out_fd);

int crisp_monitor_version (int fd, int *out_version);
int crisp_monitor_resize (int fd, unsigned rows, unsigned cols);
int crisp_monitor_reopen_log (int fd);

typedef struct
{
  int exit_code; /* 128+n for signal n */
  bool timed_out;
  bool truncated;
  char *out; /* malloc'd, NUL-terminated, at most output_max bytes */
  size_t out_len;
  char *err;
  size_t err_len;
} CrispMonitorExecResult;

/* Runs argv in the container through the monitor (envp: NULL or "K=V" strings), waits for
 * the end.  timeout_ms 0: none; output_max 0: 16 MiB per stream. */
int crisp_monitor_exec (int fd, const char *const *argv, const char *const *envp,
                        uint32_t timeout_ms, uint32_t output_max, CrispMonitorExecResult *out);
void crisp_monitor_exec_result_clear (CrispMonitorExecResult *result);
/* Trims the output to max bytes for both streams together, setting truncated when it cuts: a
 * stream under half keeps all of it and the other gets the rest, otherwise each keeps half. */
void crisp_monitor_exec_result_fit (CrispMonitorExecResult *result, size_t max);

/* Protocol version 2: hands a client's connection (client_fd, which the caller still closes)
 * to the monitor for a streaming exec or attach session; argv is the command of an exec
 * (req->argc is filled in), response and leftover are req->response_len and
 * req->leftover_len bytes.  0 and the pid of the monitor's child serving it; -E2BIG when it
 * does not fit one packet; or the monitor's refusal (-ESRCH: the container is not running,
 * -EBUSY: too many sessions, -EOPNOTSUPP: a version 1 monitor) with its message in `why`. */
int crisp_monitor_session (int fd, int client_fd, const CrispMonitorSessionRequest *req,
                           const char *const *argv, const void *response, const void *leftover,
                           pid_t *out_pid, char *why, size_t why_size);
