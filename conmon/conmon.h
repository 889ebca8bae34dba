/* crisp-conmon's shared state: the options, the one context struct every module works on,
 * and the event sources of its single epoll loop. */
#pragma once

#include "crisp-base.h"
#include "cri-log.h"
#include "monitor-protocol.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MONITOR_ATTACH_MAX 16
#define MONITOR_CTL_MAX 16
#define MONITOR_IO_CHUNK (32 * 1024)

typedef struct Monitor Monitor;
typedef struct MonitorSource MonitorSource;
typedef void (*MonitorHandler) (Monitor *m, MonitorSource *src, uint32_t events);

/* One registered descriptor; epoll hands back a pointer to it. */
struct MonitorSource
{
  int fd;
  MonitorHandler handler;
  uint32_t events;
  int index; /* slot of a client, or stream number */
};

typedef struct
{
  const char *id;
  const char *bundle;
  const char *state_dir;
  const char *runtime;
  const char *runtime_root;
  const char *log_path;
  /* Set: the container is restored from the CRIU images there (`runtime restore`), with
   * CRIU's work files in restore_work, instead of created. */
  const char *restore_images;
  const char *restore_work;
  size_t log_max_line;
  int sync_fd;
  /* A sealed in-memory copy of the runtime (the descriptor GO carries), run in place of its
   * path; -1: none. */
  int runtime_fd;
  bool terminal;
  bool stdin_open;
  bool stdin_once;
  bool no_delete;
} MonitorOptions;

typedef struct
{
  MonitorSource src;
  bool attached;
} AttachClient;

/* A control connection and the exec it may be running. */
typedef struct
{
  MonitorSource src;
  MonitorSource out[2]; /* exec stdout, stderr pipes */
  pid_t exec_pid;       /* the `runtime exec` process, 0 when none */
  int exec_status;
  bool exec_reaped;
  bool timed_out;
  bool truncated;
  bool direct; /* exec_pid leads the process group of a direct exec (exec-direct.c) */
  uint32_t output_max;
  uint32_t sent[2];
  uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
  int seq;              /* exec number, names the pid file */
  char *pending;        /* one EXEC_OUTPUT packet the socket could not take yet */
  size_t pending_len;
} CtlClient;

typedef enum
{
  PHASE_WAIT_CREATE,
  PHASE_RUNNING,
  PHASE_DRAINING,
  PHASE_DELETING,
  PHASE_DONE,
} MonitorPhase;

struct Monitor
{
  MonitorOptions opt;
  MonitorPhase phase;
  int epfd;
  int state_dirfd; /* O_PATH */
  int exit_code;   /* the monitor's own */

  MonitorSource signal_src;
  MonitorSource console_src; /* listening --console-socket during create */
  pid_t create_pid;
  pid_t container_pid;
  pid_t delete_pid;
  int container_status; /* waitpid status */
  struct timespec exited_at;
  /* Children reaped before their pid was known (the container's init can die before the pid
   * file is read); looked up once it is. */
  struct
  {
    pid_t pid;
    int status;
  } early_reaped[8];
  unsigned early_next;
  uint64_t drain_deadline_ns;

  /* stdio: out[0] stdout (or the pty master), out[1] stderr */
  MonitorSource out[2];
  MonitorSource in; /* the container's stdin (pipe or a dup of the master) */
  /* What was just read: a container chunk behind its tag byte, an attach or control packet,
   * or an exec output packet.  Nothing stays in it between handlers. */
  char io_buf[CRISP_MONITOR_MSG_MAX];
  int child_fds[3]; /* the runtime's ends, closed once it has started */
  char in_pending[MONITOR_IO_CHUNK];
  size_t in_pending_len;
  bool in_close_when_drained;
  CrispCriLog log;
  uint64_t partial_deadline_ns;

  MonitorSource attach_src;
  AttachClient attach[MONITOR_ATTACH_MAX];
  bool attach_detached_once;

  MonitorSource ctl_src;
  CtlClient ctl[MONITOR_CTL_MAX];
  int exec_seq;

  /* Streaming sessions, each served by a child process (session.c). */
  pid_t sessions[CRISP_MONITOR_SESSIONS_MAX];
  int session_seq;

  MonitorSource oom_src;
  int oom_cgroup_fd; /* the memory cgroup dir, to read the kill counter */
  bool oom_v2;
  bool oom_killed;
  /* v1 signals the OOM before the killer has counted its kill: re-read until this time. */
  uint64_t oom_recheck_ns;
  uint64_t oom_recheck_until_ns;
};

/* main.c */
void monitor_log (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
uint64_t monitor_now_ns (void);
int monitor_watch (Monitor *m, MonitorSource *src, int fd, MonitorHandler h, uint32_t events);
int monitor_rewatch (Monitor *m, MonitorSource *src, uint32_t events);
void monitor_unwatch_close (Monitor *m, MonitorSource *src);
int monitor_bind_unix (Monitor *m, const char *name, int type, int backlog);
/* Receives one packet into buf and the one descriptor it may carry (close-on-exec; *out_fd
 * -1 when none came); returns the packet's length or -errno. */
ssize_t monitor_recv_with_fd (int sock, void *buf, size_t size, int *out_fd);

/* lifecycle.c */
int lifecycle_daemonize (Monitor *m);
/* One packet to crisp on the sync socket (text NULL: none); -EPIPE once it is closed. */
int lifecycle_sync_send (Monitor *m, uint32_t type, int32_t arg0, int32_t arg1, const char *text,
                         size_t len);
int lifecycle_start (Monitor *m);
void lifecycle_on_signal (Monitor *m, MonitorSource *src, uint32_t events);
void lifecycle_tick (Monitor *m, uint64_t now);
int lifecycle_spawn_runtime (Monitor *m, const char *const *argv, const int fds[3], pid_t *out_pid);

/* stdio.c */
int stdio_setup (Monitor *m);
int stdio_take_console (Monitor *m, int master);
void stdio_runtime_started (Monitor *m);
void stdio_write_stdin (Monitor *m, const char *buf, size_t len);
void stdio_close_stdin (Monitor *m);
int stdio_resize (Monitor *m, unsigned rows, unsigned cols);
void stdio_flush_partial (Monitor *m);
bool stdio_drained (Monitor *m);
void stdio_drain_now (Monitor *m);

/* attach.c */
int attach_setup (Monitor *m);
void attach_broadcast (Monitor *m, char *tagged, size_t len);
void attach_pause_input (Monitor *m, bool paused);
void attach_close_all (Monitor *m);

/* ctl.c */
int ctl_setup (Monitor *m);
bool ctl_on_child_exit (Monitor *m, pid_t pid, int status);
void ctl_tick (Monitor *m, uint64_t now);
uint64_t ctl_next_deadline (Monitor *m);
const char **ctl_exec_argv (Monitor *m, const char *pidpath, const char *args, uint32_t argc,
                            const char *env, uint32_t envc);
bool ctl_strings_ok (const char *buf, size_t len, size_t n);

/* exec-direct.c */
bool exec_direct_available (Monitor *m);
int exec_direct_spawn (Monitor *m, const char *args, uint32_t argc, const char *env, uint32_t envc,
                       const int fds[3], pid_t *out_pid);

/* session.c */
int session_open (Monitor *m, const char *payload, size_t len, int fd, pid_t *out_pid,
                  const char **why);
bool session_on_child_exit (Monitor *m, pid_t pid);

/* oom.c */
int oom_setup (Monitor *m);
void oom_check (Monitor *m);
void oom_tick (Monitor *m, uint64_t now);
