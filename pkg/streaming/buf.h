/* A growable byte buffer of plain libc, for the codecs crisp and crisp-conmon share: the
 * monitor links libc and zlib only, so nothing in pkg/streaming's codecs may use GLib. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct
{
  uint8_t *data;
  size_t len; /* bytes in use */
  size_t cap; /* bytes allocated */
} CrispBuf;

#define CRISP_BUF_INIT { NULL, 0, 0 }

/* Appends `n` bytes (data may be NULL only when n is 0). 0, or -ENOMEM (the buffer is
 * unchanged). */
int crisp_buf_append (CrispBuf *b, const void *data, size_t n);
/* Room for `n` more bytes at data + len, without changing len; 0 or -ENOMEM. */
int crisp_buf_reserve (CrispBuf *b, size_t n);
/* Drops the first `n` bytes (all of them if n >= len). */
void crisp_buf_consume (CrispBuf *b, size_t n);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void crisp_buf_clear (CrispBuf *b);

/* Sends all `len` bytes on a blocking socket (no SIGPIPE, EINTR retried); 0 or -errno. */
int crisp_send_all (int fd, const void *data, size_t len);
