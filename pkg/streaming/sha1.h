/* SHA-1 (FIPS 180-4), for the one place that needs it: the WebSocket handshake's
 * Sec-WebSocket-Accept. Not for anything that needs collision resistance. libc only. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CRISP_SHA1_LEN 20

typedef struct
{
  uint32_t h[5];
  uint64_t total; /* bytes hashed */
  uint8_t block[64];
  size_t used; /* bytes in block */
} CrispSha1;

void crisp_sha1_init (CrispSha1 *c);
void crisp_sha1_update (CrispSha1 *c, const void *data, size_t len);
void crisp_sha1_final (CrispSha1 *c, uint8_t out[CRISP_SHA1_LEN]);
