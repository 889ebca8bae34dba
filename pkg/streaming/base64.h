/* Standard base64 (RFC 4648 section 4, with padding), libc only: the WebSocket handshake and
 * the base64.channel.k8s.io framing. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Characters the encoding of `len` bytes takes (no NUL). */
#define CRISP_BASE64_LEN(len) (((len) + 2) / 3 * 4)

/* Writes CRISP_BASE64_LEN (len) characters to dst (no NUL). */
void crisp_base64_encode_to (char *dst, const uint8_t *src, size_t len);
/* Appends the encoding to out; 0 or -ENOMEM. */
int crisp_base64_encode (CrispBuf *out, const uint8_t *src, size_t len);
/* Appends the decoding of `len` characters to out: 0, -EINVAL (a length not a multiple of 4,
 * a character outside the alphabet, misplaced padding), -ENOMEM. Bits past the last whole
 * byte are ignored, as Go's decoder does. On error out is unchanged. */
int crisp_base64_decode (CrispBuf *out, const char *src, size_t len);
