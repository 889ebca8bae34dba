/* One Kubernetes remotecommand session (exec or attach) on an upgraded connection, over
 * SPDY/3.1 streams or WebSocket channels, every version from channel.k8s.io to
 * v5.channel.k8s.io.  libc and zlib only: crisp-conmon runs it in a child process of its own
 * for each session, so a session outlives crisp and a client can never stall the monitor.
 * Every buffer is bounded; a slow client holds back only its own command (exec) or misses
 * output (attach, like any attach client of the monitor). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct
{
  int fd;                  /* the client's connection; the session owns and closes it */
  uint32_t framing;        /* CRISP_MONITOR_FRAMING_SPDY or _WEBSOCKET */
  uint32_t version;        /* remotecommand version 1 (channel.k8s.io) to 5 */
  uint32_t flags;          /* CRISP_MONITOR_SESSION_STDIN | STDOUT | STDERR | TTY | BASE64 */
  const uint8_t *response; /* sent first: the HTTP answer to the upgrade */
  size_t response_len;
  const uint8_t *leftover; /* the client's first protocol bytes, read with its head */
  size_t leftover_len;
  /* Exec: the OCI runtime's `exec` command line (without --tty: the session adds it), run as
   * the session's child; the runtime writes the exec'd process's pid to pid_file. */
  char *const *argv;
  const char *pid_file;
  /* Attach: a connection to the monitor's attach socket (monitor-protocol.h); -1 for exec. */
  int attach_fd;
} CrispRcSession;

/* Serves the session to its end: sends the response, waits for the client's streams, runs
 * the command (or bridges the attach socket), reports the exit on the error channel, closes
 * the connection.  Returns the command's exit code, or -errno when it could not run. */
int crisp_rc_serve (const CrispRcSession *session);

/* The error-channel message for an exit code (or a failure text) in `version`: a metav1.Status
 * in JSON from version 4 on, a plain text before (and nothing for success).  Writes at most
 * size bytes with the NUL; returns the length (0: nothing to send). */
size_t crisp_rc_status_message (uint32_t version, int code, const char *failure, char *buf,
                                size_t size);

/* Parses one terminal size object {"Width":W,"Height":H} (any key order, other keys
 * ignored).  true with both in 1..65535. */
bool crisp_rc_parse_size (const char *obj, size_t len, uint16_t *width, uint16_t *height);
