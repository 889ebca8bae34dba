/* The CRI log writer of crisp-conmon: turns a container's stdout and stderr bytes into
 * `<RFC3339Nano> <stdout|stderr> <P|F> <bytes>\n` records.  Separate from the event loop so it
 * can be tested on its own; it only ever writes to its file descriptor. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define CRISP_CRI_LOG_MAX_LINE_DEFAULT (16 * 1024)
#define CRISP_CRI_LOG_TIME_LEN 30 /* "2026-11-28T00:26:59.123456789Z" */

enum
{
  CRISP_CRI_LOG_STDOUT = 0,
  CRISP_CRI_LOG_STDERR = 1,
};

typedef struct
{
  int fd;           /* O_APPEND; -1 when there is no log */
  size_t max_line;  /* longer lines are split into P records of this many bytes */
  char *pending[2]; /* a partial line per stream, max_line bytes each */
  size_t pending_len[2];
} CrispCriLog;

/* Takes fd (may be -1) and allocates the two line buffers once. */
int crisp_cri_log_init (CrispCriLog *log, int fd, size_t max_line);
void crisp_cri_log_destroy (CrispCriLog *log);

/* Opens path for appending (O_CLOEXEC, 0640), replacing the current fd: log reopen. */
int crisp_cri_log_reopen (CrispCriLog *log, const char *path);

/* Logs len bytes of stream read at now: complete lines become F records, a line longer than
 * max_line is cut into P records, and the tail without its newline is kept until more comes
 * or crisp_cri_log_flush. */
int crisp_cri_log_write (CrispCriLog *log, int stream, const char *buf, size_t len,
                         const struct timespec *now);

/* Writes a stream's pending partial line as a P record (at end of stream, or when it has
 * waited long enough). */
int crisp_cri_log_flush (CrispCriLog *log, int stream, const struct timespec *now);

static inline bool
crisp_cri_log_has_pending (const CrispCriLog *log)
{
  return log->pending_len[0] > 0 || log->pending_len[1] > 0;
}

/* Formats t as RFC 3339 in UTC with nine fractional digits; buf gets a terminating NUL. */
void crisp_cri_log_format_time (char buf[CRISP_CRI_LOG_TIME_LEN + 1], const struct timespec *t);
