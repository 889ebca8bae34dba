/* A sans-I/O WebSocket (RFC 6455) codec for the server side of a connection, and the
 * Kubernetes channel framings carried over it (channel.k8s.io, base64.channel.k8s.io and
 * their v4/v5 versions).  Bytes in, messages out through a callback; messages in, bytes
 * appended to a CrispBuf.  libc only (crisp-conmon links it).  Every buffer is bounded:
 * garbage ends in an error, never in unbounded growth. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* A message (after reassembly of its fragments) larger than this is refused: Kubernetes
 * clients send at most 32 KiB per message. */
#define CRISP_WS_MAX_MESSAGE (1024 * 1024)
/* The GUID of RFC 6455 section 1.3, appended to Sec-WebSocket-Key before hashing. */
#define CRISP_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef enum
{
  CRISP_WS_CONTINUATION = 0x0,
  CRISP_WS_TEXT = 0x1,
  CRISP_WS_BINARY = 0x2,
  CRISP_WS_CLOSE = 0x8,
  CRISP_WS_PING = 0x9,
  CRISP_WS_PONG = 0xA,
} CrispWsOpcode;

/* Close codes used here. */
#define CRISP_WS_CLOSE_NORMAL 1000
#define CRISP_WS_CLOSE_PROTOCOL_ERROR 1002
#define CRISP_WS_CLOSE_TOO_BIG 1009

/* One decoded message: TEXT or BINARY (whole, fragments joined), or a control frame CLOSE,
 * PING or PONG.  `data` is valid only during the callback. */
typedef struct
{
  uint8_t opcode;      /* CrispWsOpcode, never CONTINUATION */
  const uint8_t *data; /* unmasked payload (for CLOSE: after the code) */
  size_t len;
  uint16_t close_code; /* CLOSE: the code, or 1005 when the frame carried none */
} CrispWsMessage;

/* Returns 0 to go on, or a negative errno that stops crisp_ws_feed (). */
typedef int (*CrispWsMessageFunc) (const CrispWsMessage *msg, void *user_data);

typedef struct CrispWs CrispWs;

CrispWs *crisp_ws_new (void); /* NULL on ENOMEM */
void crisp_ws_free (CrispWs *self);

/* Buffers client bytes and reports every complete message.  Client frames must be masked;
 * control frames must be final and at most 125 bytes; a continuation must follow a started
 * message; TEXT must be UTF-8 only in the sense that it is passed on as is (not checked).
 * Returns 0, -EPROTO (a malformed frame, unmasked, reserved bits or opcodes, a CLOSE whose
 * payload is one byte or whose code no endpoint may send), -EMSGSIZE (over
 * CRISP_WS_MAX_MESSAGE, refused from the frame's length field before its payload is
 * buffered), -ENOMEM, or the callback's error.  After an error the codec is unusable (every
 * later call returns -EPROTO).  Nothing is reported after a CLOSE, and later bytes are
 * ignored. */
int crisp_ws_feed (CrispWs *self, const uint8_t *buf, size_t len, CrispWsMessageFunc fn,
                   void *user_data);

/* Encoders (server to client: unmasked, one final frame each).  0 or -ENOMEM; -EMSGSIZE for a
 * control frame over 125 bytes; -EINVAL for CONTINUATION.  On error `out` is unchanged. */
int crisp_ws_put (CrispBuf *out, CrispWsOpcode opcode, const void *data, size_t len);
/* One frame of any kind, final or not, masked with `mask` (4 bytes) unless it is NULL: what a
 * client sends, for tests and clients.  0, -ENOMEM, -EINVAL (an opcode RFC 6455 does not
 * define), -EMSGSIZE (a control frame over 125 bytes). */
int crisp_ws_put_frame (CrispBuf *out, uint8_t opcode, bool fin, const uint8_t *mask,
                        const void *data, size_t len);
/* A CLOSE frame with `code` and an optional reason (cut to fit 125 bytes). */
int crisp_ws_put_close (CrispBuf *out, uint16_t code, const char *reason);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64 (SHA-1 (key + GUID)), written into
 * `out` (29 bytes with the NUL).  -EINVAL when the key is not 16 bytes of base64. */
int crisp_ws_accept_key (const char *key, char out[29]);

/* The Kubernetes channel framings.  Binary (channel.k8s.io and vN.channel.k8s.io): each
 * BINARY message is one channel byte and data.  base64 (base64.channel.k8s.io and
 * vN.base64.channel.k8s.io): each TEXT message is the channel as one ASCII digit ('0' + n)
 * and the data in standard base64.  Channel numbers are 0-254 (binary) or 0-9 (base64);
 * v5.channel.k8s.io adds channel 255, CLOSE, whose data is the one channel byte the peer
 * closes. */
#define CRISP_WS_CHANNEL_CLOSE 255

/* Appends one channel message.  0, -ENOMEM, or -EINVAL (channel not representable). */
int crisp_ws_put_channel (CrispBuf *out, bool base64, uint8_t channel, const void *data,
                          size_t len);
/* Decodes a message of the channel framing: *channel and the data (for base64 decoded into
 * `scratch`, which the caller clears; otherwise pointing into msg).  -EPROTO for an empty
 * message, the wrong opcode for the framing, a bad digit or bad base64. */
int crisp_ws_channel_decode (bool base64, const CrispWsMessage *msg, CrispBuf *scratch,
                             uint8_t *channel, const uint8_t **data, size_t *len);
