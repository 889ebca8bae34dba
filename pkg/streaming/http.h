/* The streaming server's HTTP/1.1 request heads, sans-I/O and libc only: finding the end of a
 * head, parsing the few headers an upgrade needs, negotiating a protocol from the client's
 * list, and writing the answers.  The surface is three paths, no bodies, then an upgrade (SPDY
 * or WebSocket) or an error, so this is not a general HTTP parser: anything else is refused. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define CRISP_HTTP_HEAD_MAX 8192     /* a longer head gets 431 */
#define CRISP_HTTP_LIST_MAX 32       /* values kept per list header (protocol offers) */
#define CRISP_HTTP_QUERY_PORTS_MAX 128 /* `port` query parameters kept */

typedef enum
{
  CRISP_HTTP_UPGRADE_NONE = 0,
  CRISP_HTTP_UPGRADE_SPDY,      /* Upgrade: SPDY/3.1 */
  CRISP_HTTP_UPGRADE_WEBSOCKET, /* Upgrade: websocket (case-insensitive) */
} CrispHttpUpgrade;

typedef struct
{
  char *method; /* "GET", "POST", ... as sent */
  char *path;   /* the target before any '?', percent-decoding not applied */
  char *query;  /* after '?', or NULL */
  CrispHttpUpgrade upgrade;
  bool connection_upgrade; /* Connection: lists "upgrade" */
  char *ws_key;            /* Sec-WebSocket-Key, or NULL */
  char *ws_version;        /* Sec-WebSocket-Version, or NULL */
  /* Offered protocols in the client's order, NULL-terminated (never NULL itself after a
   * successful parse): X-Stream-Protocol-Version values (SPDY) and Sec-WebSocket-Protocol
   * values (WebSocket); comma-separated lists and repeated headers both count. */
  char **stream_protocols;
  char **ws_protocols;
  /* `port` query parameters (port-forward over WebSocket), in order, each 1-65535. */
  uint16_t ports[CRISP_HTTP_QUERY_PORTS_MAX];
  size_t n_ports;
} CrispHttpHead;

/* Length of the head (through the blank line) when buf holds all of it: 0 when more bytes
 * are needed, -EMSGSIZE when CRISP_HTTP_HEAD_MAX bytes hold no end. */
long crisp_http_head_length (const uint8_t *buf, size_t len);

/* Parses a whole head (as measured above).  0, -EPROTO (malformed request line or header line,
 * NUL bytes, an obsolete line folding, a bad port parameter), -ENOMEM.  On error `out` is
 * cleared. */
int crisp_http_parse_head (const uint8_t *buf, size_t len, CrispHttpHead *out);
void crisp_http_head_clear (CrispHttpHead *h);

/* The first of `offered` (client order) that is in `supported`; NULL when none is. */
const char *crisp_http_negotiate (char *const *offered, const char *const *supported);

/* Appends "HTTP/1.1 <status>" with a text/plain body and Connection: close. */
int crisp_http_put_error (CrispBuf *out, const char *status, const char *body);
/* Appends the 101 answer to a SPDY upgrade, with X-Stream-Protocol-Version unless protocol
 * is NULL or "". */
int crisp_http_put_spdy_upgrade (CrispBuf *out, const char *protocol);
/* Appends the 101 answer to a WebSocket upgrade: Sec-WebSocket-Accept computed from `key`,
 * Sec-WebSocket-Protocol unless protocol is NULL or "".  -EINVAL for a bad key. */
int crisp_http_put_ws_upgrade (CrispBuf *out, const char *key, const char *protocol);
