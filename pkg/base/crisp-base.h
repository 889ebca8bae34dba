/* libc-only helpers shared by crisp and crisp-conmon: cleanup attributes, fd and
 * string helpers, atomic file writes.  Functions return 0 or -errno and never log. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define CRISP_N_ELEMENTS(a) (sizeof (a) / sizeof ((a)[0]))

static inline void
crisp_freep (void *p)
{
  free (*(void **) p);
}

static inline void
crisp_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
}

#define _cleanup_free_ __attribute__ ((cleanup (crisp_freep)))
#define _cleanup_close_ __attribute__ ((cleanup (crisp_closep)))

/* Hands ownership of a pointer or descriptor out of a cleanup variable. */
#define TAKE_PTR(p)                                                                                \
  ({                                                                                               \
    __typeof__ (p) _tp = (p);                                                                      \
    (p) = NULL;                                                                                    \
    _tp;                                                                                           \
  })

static inline int
take_fd (int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

/* Writes all of buf, retrying on EINTR and short writes. */
int crisp_write_all (int fd, const void *buf, size_t len);

/* Reads until EOF or max bytes; *out_buf is NUL-terminated and malloc'd. */
int crisp_read_all_at (int dirfd, const char *name, size_t max, char **out_buf, size_t *out_len);

/* Writes name in dirfd atomically: temporary file, fsync, rename, fsync of the directory. */
int crisp_write_file_atomic_at (int dirfd, const char *name, const void *buf, size_t len,
                                mode_t mode);
/* The same without the fsyncs: a reader (a crisp started after a crash of crisp's) still sees
 * the old text or the new, whole, but a crash of the machine may leave either.  For the run
 * directory's files, which a reboot makes moot (the container is gone with it), and for a
 * record whose older text serves as well after one. */
int crisp_write_file_replace_at (int dirfd, const char *name, const void *buf, size_t len,
                                 mode_t mode);

/* openat2 (dirfd, path, {flags, mode, resolve}): the new descriptor or -errno. The kernel
 * refuses a lookup with RESOLVE_IN_ROOT or RESOLVE_BENEATH that crosses ".." while anything on
 * the machine renames or mounts (EAGAIN, "try again"); that is retried here, a bounded number
 * of times, so a busy node never turns into a missing file. */
int crisp_openat2 (int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/* Creates every missing component of path with mode (existing ones are left alone). */
int crisp_mkdir_p (const char *path, mode_t mode);

/* true when path is clean: no empty, "." or ".." component, so no "//" and no trailing "/"
 * (the root "/" alone is not clean either).  absolute: it must start with "/", otherwise it
 * must not. */
bool crisp_path_is_clean (const char *path, bool absolute);

/* Opens directory path one component at a time with O_NOFOLLOW, from "/" when path is absolute,
 * otherwise from dirfd; create makes missing components with mode.  A component that is a
 * symbolic link fails with -ELOOP, one that is not a directory with -ENOTDIR.  path must be
 * clean (see crisp_path_is_clean), or -EINVAL. */
int crisp_open_dir_nofollow (int dirfd, const char *path, bool create, mode_t mode, int *out_fd);

/* Sets or clears FD_CLOEXEC / O_NONBLOCK. */
int crisp_fd_set_cloexec (int fd, bool on);
int crisp_fd_set_nonblock (int fd, bool on);

/* Copies src into dst of size n, failing with -ENAMETOOLONG instead of truncating. */
int crisp_strlcpy (char *dst, const char *src, size_t n);

/* The start time of process pid in clock ticks since boot (field 22 of /proc/PID/stat), or 0
 * when it is gone or a zombie: with the pid, an identity that survives pid reuse. */
unsigned long long crisp_proc_start_time (pid_t pid);

/* The resident memory of process pid in bytes (Rss of /proc/PID/smaps_rollup, else VmRSS of
 * its status), read only while pid is the process that started at start_time (0: any);
 * -ESRCH when it is gone, a zombie or another process. */
int crisp_proc_rss (pid_t pid, unsigned long long start_time, uint64_t *out_bytes);

/* What a helper program left: its output (NUL-terminated, malloc'd, NULL when empty) and its
 * wait status. */
typedef struct
{
  char *out;
  size_t out_len;
  char *err;
  size_t err_len;
  int status;
} CrispSpawnResult;

void crisp_spawn_result_clear (CrispSpawnResult *r);

/* Runs fn (data) in a child that shares crisp's memory, the calling thread suspended until the
 * child has exec'd or exited (as vfork): no page tables are copied, which made each fork of
 * crisp cost milliseconds. fn may only make system calls and must end in execve or _exit;
 * it runs with every signal blocked and every handler of crisp's reset. The child's pid, or
 * -1 with errno set. Not for a child that must wait for its parent, nor one that unshares a
 * user namespace (the kernel refuses that to a process sharing its memory). */
pid_t crisp_vfork_call (int (*fn) (void *), void *data);
/* Runs path with argv and envp, writes input to its stdin, collects stdout and stderr (each
 * at most max_output bytes, or -EFBIG) and waits for it, all in the calling thread. When
 * cancel_fd (may be -1) becomes readable, the child is killed and -ECANCELED returned. */
int crisp_spawn_communicate (const char *path, char *const argv[], char *const envp[],
                             const char *input, size_t input_len, size_t max_output,
                             int cancel_fd, CrispSpawnResult *result);

/* 64 lowercase hex characters from the kernel's random source, NUL-terminated. */
int crisp_random_hex_id (char out[65]);

/* true when s is a non-empty string of lowercase hex digits of exactly len characters
 * (len 0: any length from 1 to 64) — the shape of crisp's object ids. */
bool crisp_id_is_valid_len (const char *s, size_t len);

/* The real-time signals as Docker and containerd number them: glibc's SIGRTMIN and SIGRTMAX,
 * fixed so that a name means the same signal whatever libc the container's program uses. */
#define CRISP_SIGNAL_RTMIN 34
#define CRISP_SIGNAL_MAX 64
/* Room for the longest name crisp_signal_format writes, "SIGRTMAX-14", and its NUL. */
#define CRISP_SIGNAL_NAME_MAX 16

/* Parses a signal the way OCI image configs and Docker spell one: a decimal number 1..64, or a
 * name in any case with or without "SIG" ("SIGTERM", "term", "SIGRTMIN+3", "RTMAX-2"); the
 * real-time range is 34 (RTMIN) to 64 (RTMAX).  -EINVAL for anything else, spaces included. */
int crisp_signal_parse (const char *s, int *out_signal);

/* The canonical name of signal sig ("SIGTERM", "SIGRTMIN+3", "SIGRTMAX-14"); the decimal
 * number for 32 and 33, which have none.  -EINVAL when sig is not 1..64. */
int crisp_signal_format (int sig, char out[CRISP_SIGNAL_NAME_MAX]);
