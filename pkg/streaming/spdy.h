/* A sans-I/O SPDY/3.1 codec: bytes in, frames out through a callback; frames in, bytes
 * appended to a buffer. It owns the two zlib streams a SPDY session keeps for its header
 * blocks (one per direction, shared by every frame). No sockets, no threads, no logging;
 * libc and zlib only (crisp-conmon links it); every buffer is bounded so garbage input ends
 * in an error, never in unbounded growth. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define CRISP_SPDY_VERSION 3
/* Larger frames are refused: clients write at most a few tens of KiB per DATA frame. */
#define CRISP_SPDY_MAX_FRAME (1024 * 1024)
/* A decompressed header block, and the pairs in it. */
#define CRISP_SPDY_MAX_HEADER_BLOCK (64 * 1024)
#define CRISP_SPDY_MAX_HEADERS 128

typedef enum
{
  CRISP_SPDY_DATA = 0, /* not a control frame type: the codec's name for DATA frames */
  CRISP_SPDY_SYN_STREAM = 1,
  CRISP_SPDY_SYN_REPLY = 2,
  CRISP_SPDY_RST_STREAM = 3,
  CRISP_SPDY_SETTINGS = 4,
  CRISP_SPDY_PING = 6,
  CRISP_SPDY_GOAWAY = 7,
  CRISP_SPDY_HEADERS = 8,
  CRISP_SPDY_WINDOW_UPDATE = 9,
} CrispSpdyType;

#define CRISP_SPDY_FLAG_FIN 0x01
#define CRISP_SPDY_FLAG_UNIDIRECTIONAL 0x02

/* RST_STREAM status codes used here. */
#define CRISP_SPDY_RST_PROTOCOL_ERROR 1
#define CRISP_SPDY_RST_REFUSED_STREAM 3
#define CRISP_SPDY_RST_CANCEL 5

/* One decoded frame; valid only during the callback. */
typedef struct
{
  uint16_t type; /* CrispSpdyType; unknown control types are skipped, never reported */
  uint8_t flags;
  uint32_t stream_id;     /* 0 for SETTINGS, PING, GOAWAY (see `value`) */
  uint32_t associated_id; /* SYN_STREAM */
  uint32_t value;         /* RST status, PING id, GOAWAY status, WINDOW_UPDATE delta */
  /* SYN_STREAM, SYN_REPLY, HEADERS: name, value, name, value, NULL (malloc'd by the codec,
   * freed after the callback) */
  char **headers;
  const uint8_t *data; /* DATA payload */
  size_t len;
} CrispSpdyFrame;

/* Returns 0 to go on, or a negative errno that stops crisp_spdy_feed (). */
typedef int (*CrispSpdyFrameFunc) (const CrispSpdyFrame *frame, void *user_data);

typedef struct _CrispSpdy CrispSpdy;

/* NULL on ENOMEM or a zlib failure. */
CrispSpdy *crisp_spdy_new (void);
void crisp_spdy_free (CrispSpdy *self);

/* Buffers `len` bytes and reports every complete frame. Returns 0, -EPROTO (malformed
 * frame or header block, wrong version), -EMSGSIZE (a frame over the bounds), -ENOMEM, or
 * the callback's error. After an error the session is unusable. */
int crisp_spdy_feed (CrispSpdy *self, const uint8_t *buf, size_t len, CrispSpdyFrameFunc fn,
                     void *user_data);

/* The value of header `name` (lower case, as SPDY/3 requires), or NULL. */
const char *crisp_spdy_header (const CrispSpdyFrame *frame, const char *name);

/* Encoders: append one frame to `out`; 0, -ENOMEM, -EMSGSIZE (data over CRISP_SPDY_MAX_FRAME),
 * -EIO (zlib). On error `out` is unchanged. */
int crisp_spdy_put_data (CrispBuf *out, uint32_t stream_id, uint8_t flags, const void *data,
                         size_t len);
/* SYN_STREAM (associated id 0, priority 0), SYN_REPLY or HEADERS with a compressed block of
 * `headers` (name, value, ..., NULL). */
int crisp_spdy_put_headers (CrispSpdy *self, CrispBuf *out, CrispSpdyType type, uint8_t flags,
                            uint32_t stream_id, const char *const *headers);
int crisp_spdy_put_rst_stream (CrispBuf *out, uint32_t stream_id, uint32_t status);
int crisp_spdy_put_ping (CrispBuf *out, uint32_t id);
int crisp_spdy_put_goaway (CrispBuf *out, uint32_t last_stream_id, uint32_t status);
