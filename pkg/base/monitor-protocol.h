/* The wire protocol between crisp and crisp-conmon, the per-container monitor: how crisp starts
 * it, the start handshake, the files it writes, and the control and attach sockets.
 * docs/monitor-protocol.md is the prose version.  Everything here is versioned so that a newer
 * crisp can talk to a monitor started by an older one: fields are only ever appended to a
 * message, message types are never reused, and a monitor answers an unknown type with
 * CRISP_MONITOR_MSG_REPLY carrying -EOPNOTSUPP. */
#pragma once

#include <stdint.h>

/* Version 1: the first.  Version 2: SESSION (streaming exec and attach sessions owned by the
 * monitor).  Sent in every message and written in every file. */
#define CRISP_MONITOR_PROTOCOL_VERSION 2

/* Invocation (crisp-conmon --help lists them):
 *   crisp-conmon --id ID --bundle DIR --state-dir DIR --runtime PATH [--runtime-root DIR]
 *                --log-path FILE [--log-max-line N] [--terminal] [--stdin] [--stdin-once]
 *                [--no-delete] --sync-fd N
 * The sync fd is one end of a SOCK_SEQPACKET socketpair, the only descriptor the monitor keeps
 * besides 0-2 (every other inherited descriptor is closed).  The state dir must exist and be
 * 0700; the monitor creates its files in it.
 *
 * Handshake on the sync socket (each message one packet: CrispMonitorMsg + payload):
 *   monitor -> crisp  HELLO    arg0 = monitor pid (once it has left crisp), arg1 = protocol version
 *   crisp -> monitor  GO       (crisp may first move the monitor into a cgroup of its own)
 *   monitor -> crisp  CREATED  arg0 = container pid        (`runtime create` succeeded)
 *                  or FAILED   arg0 = runtime exit status or -errno, payload = the runtime's
 *                              error message (not NUL-terminated)
 * then the monitor closes the sync socket.  If crisp closes it before GO, the monitor exits
 * without creating anything.  `runtime start` is crisp's job (StartContainer is then only that).
 */

/* Files in the state dir, all written atomically (temporary file + rename), "key=value\n" lines
 * starting with "version=N".  Readers ignore keys they do not know. */
#define CRISP_MONITOR_FILE_EXIT                                                                    \
  "exit"                                  /* version, status (128+n for signal n), signal,         \
                                             oom_killed, exited_at_ns (CLOCK_REALTIME) */
#define CRISP_MONITOR_FILE_OOM "oom"      /* version; present once an OOM kill was seen */
#define CRISP_MONITOR_FILE_INFO "monitor" /* version, pid, container_pid */
#define CRISP_MONITOR_FILE_PID "pidfile"  /* the runtime's --pid-file */
#define CRISP_MONITOR_FILE_RUNTIME_LOG "runtime.log" /* the runtime's --log (json) */
/* Written by crisp at create time when the direct exec path can run this container's execs
 * (docs/monitor-protocol.md); absent: every exec goes through `runtime exec`. */
#define CRISP_MONITOR_FILE_EXEC_SPEC "exec-spec"
#define CRISP_MONITOR_FILE_EXEC_SECCOMP "exec-seccomp.bpf" /* struct sock_filter[], raw */
#define CRISP_MONITOR_EXEC_SPEC_MAX (1024 * 1024)
#define CRISP_MONITOR_EXEC_SECCOMP_MAX (4096 * 8) /* BPF_MAXINSNS instructions */
#define CRISP_MONITOR_SOCKET_CTL "ctl"               /* control channel, SOCK_SEQPACKET */
#define CRISP_MONITOR_SOCKET_ATTACH "attach"         /* attach socket, SOCK_SEQPACKET */
#define CRISP_MONITOR_SOCKET_CONSOLE "console.sock"  /* --console-socket, during create only */

/* Every packet on the sync and control sockets starts with this header (host byte order: both
 * ends run on the same machine).  A receiver accepts any version >= 1 and ignores bytes past
 * the fields it knows. */
typedef struct
{
  uint32_t version; /* CRISP_MONITOR_PROTOCOL_VERSION of the sender */
  uint32_t type;    /* CrispMonitorMsgType */
  int32_t arg0;
  int32_t arg1;
} CrispMonitorMsg;

typedef enum
{
  /* sync socket */
  CRISP_MONITOR_MSG_HELLO = 1,
  CRISP_MONITOR_MSG_GO = 2,
  CRISP_MONITOR_MSG_CREATED = 3,
  CRISP_MONITOR_MSG_FAILED = 4,
  /* A standby monitor (--standby): STANDBY arg0 = its pid once it has detached; ASSIGN,
   * payload = its command line's options as NUL-terminated strings, then makes it the monitor
   * of one container, and the handshake goes on from HELLO. */
  CRISP_MONITOR_MSG_STANDBY = 5,
  CRISP_MONITOR_MSG_ASSIGN = 6,

  /* control socket, requests (crisp -> monitor); one request at a time per connection */
  CRISP_MONITOR_MSG_VERSION = 16,    /* reply: REPLY arg0 = 0, arg1 = monitor's version */
  CRISP_MONITOR_MSG_RESIZE = 17,     /* arg0 = rows, arg1 = cols; reply: REPLY */
  CRISP_MONITOR_MSG_REOPEN_LOG = 18, /* reply: REPLY */
  CRISP_MONITOR_MSG_EXEC = 19,       /* payload: CrispMonitorExecRequest + strings;
                                        replies: EXEC_OUTPUT*, then EXEC_EXIT (or REPLY < 0) */
  /* Version 2.  SCM_RIGHTS: the client's connection; payload: CrispMonitorSessionRequest +
   * strings + bytes.  The monitor serves the session from then on, in a child process of its
   * own; reply: REPLY arg0 = 0 and arg1 = that child's pid, or arg0 = -errno and a message. */
  CRISP_MONITOR_MSG_SESSION = 20,
  /* 21-31 reserved for more streaming requests. */
  CRISP_MONITOR_MSG_SESSION_LAST_RESERVED = 31,

  /* control socket, replies (monitor -> crisp) */
  CRISP_MONITOR_MSG_REPLY = 48,       /* arg0 = 0 or -errno, payload = optional message */
  CRISP_MONITOR_MSG_EXEC_OUTPUT = 49, /* arg0 = CRISP_MONITOR_STREAM_*, payload = bytes */
  CRISP_MONITOR_MSG_EXEC_EXIT = 50,   /* arg0 = exit status (128+n), arg1 = EXEC_FLAG_* */
} CrispMonitorMsgType;

/* The EXEC payload: this struct, then argc NUL-terminated strings (the command), then envc
 * NUL-terminated "KEY=VALUE" strings.  The packet is at most CRISP_MONITOR_MSG_MAX bytes. */
typedef struct
{
  uint32_t timeout_ms; /* 0: none; on expiry the process is killed and TIMED_OUT reported */
  uint32_t output_max; /* per stream; more output is read and dropped, TRUNCATED reported */
  uint32_t argc;
  uint32_t envc;
  uint32_t flags; /* none defined yet; must be 0 */
} CrispMonitorExecRequest;

/* The SESSION payload: this struct, then argc NUL-terminated strings (exec: the command), then
 * response_len bytes (the HTTP answer crisp composed, which the monitor sends first), then
 * leftover_len bytes (what the client sent after its request head, to be parsed as the
 * protocol's first bytes).  The whole packet is at most CRISP_MONITOR_MSG_MAX bytes. */
typedef struct
{
  uint32_t kind;         /* CRISP_MONITOR_SESSION_EXEC or _ATTACH */
  uint32_t framing;      /* CRISP_MONITOR_FRAMING_SPDY or _WEBSOCKET */
  uint32_t version;      /* remotecommand protocol version: 1 (channel.k8s.io) to 5 */
  uint32_t flags;        /* CRISP_MONITOR_SESSION_* below */
  uint32_t argc;         /* exec: the command; attach: 0 */
  uint32_t response_len; /* at most CRISP_MONITOR_SESSION_RESPONSE_MAX */
  uint32_t leftover_len;
} CrispMonitorSessionRequest;

#define CRISP_MONITOR_SESSION_EXEC 1u
#define CRISP_MONITOR_SESSION_ATTACH 2u
#define CRISP_MONITOR_FRAMING_SPDY 1u
#define CRISP_MONITOR_FRAMING_WEBSOCKET 2u
#define CRISP_MONITOR_SESSION_STDIN 1u
#define CRISP_MONITOR_SESSION_STDOUT 2u
#define CRISP_MONITOR_SESSION_STDERR 4u
#define CRISP_MONITOR_SESSION_TTY 8u
#define CRISP_MONITOR_SESSION_BASE64 16u /* WebSocket: the base64 channel framing */
#define CRISP_MONITOR_SESSION_RESPONSE_MAX 4096
/* Sessions one monitor serves at once; more get -EBUSY. */
#define CRISP_MONITOR_SESSIONS_MAX 32

#define CRISP_MONITOR_EXEC_FLAG_TIMED_OUT 1u
#define CRISP_MONITOR_EXEC_FLAG_TRUNCATED 2u

#define CRISP_MONITOR_EXEC_OUTPUT_MAX_DEFAULT (16u * 1024 * 1024)
#define CRISP_MONITOR_MSG_MAX (64 * 1024)      /* largest request packet the monitor reads */
#define CRISP_MONITOR_OUTPUT_CHUNK (32 * 1024) /* largest EXEC_OUTPUT payload */

/* Attach socket: each packet is one tag byte followed by data.
 * monitor -> client: STDOUT / STDERR + bytes (a terminal's output is STDOUT).  A client too
 *   slow to take a packet misses it: the container is never blocked by a reader.
 * client -> monitor: STDIN + bytes, RESIZE + two uint16 (rows, cols), CLOSE_STDIN.
 * With --stdin-once the container's stdin is closed when the first attached client leaves. */
enum
{
  CRISP_MONITOR_STREAM_STDIN = 0,
  CRISP_MONITOR_STREAM_STDOUT = 1,
  CRISP_MONITOR_STREAM_STDERR = 2,
  CRISP_MONITOR_ATTACH_RESIZE = 3,
  CRISP_MONITOR_ATTACH_CLOSE_STDIN = 4,
};
