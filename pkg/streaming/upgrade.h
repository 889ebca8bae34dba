/* The request head of a streaming connection, sans I/O: where the head ends, what it asks for
 * (exec, attach or port-forward, under which token), which framing (SPDY/3.1 or WebSocket) and
 * which protocol version crisp answers with, the ports a WebSocket port-forward names in its
 * URL, and the `101 Switching Protocols` answer, or the HTTP error to give instead.  libc only;
 * the head is hostile input and every field is bounded (test/fuzz/fuzz-upgrade.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A longer head is refused (431). */
#define CRISP_UPGRADE_HEAD_MAX 8192
/* Protocols counted per kind of offer; later offers are ignored. */
#define CRISP_UPGRADE_MAX_OFFERS 32
/* Ports one WebSocket port-forward may carry (two channels each, channel numbers < 255). */
#define CRISP_PORT_FORWARD_MAX_PORTS 64
/* Ports of a base64 WebSocket port-forward: its channels are one ASCII digit, 0-9. */
#define CRISP_PORT_FORWARD_MAX_PORTS_BASE64 5

typedef enum
{
  CRISP_STREAM_EXEC = 1,
  CRISP_STREAM_ATTACH,
  CRISP_STREAM_PORT_FORWARD,
} CrispStreamKind;

typedef struct
{
  /* 101 when the request may be upgraded (the token is not checked here), else the HTTP
   * error to answer: status_line ("400 Bad Request") and a one-line message. */
  int status;
  const char *status_line;
  const char *message;

  CrispStreamKind kind;
  const char *kind_name; /* "exec", "attach", "portforward": the token store's kind */
  const char *token;     /* the path's last element */
  bool websocket;        /* otherwise SPDY/3.1 */
  /* The protocol crisp answers: "" when the client offered none (the unversioned protocol),
   * NULL when it offered only ones crisp does not speak (answer 403 once the token is known
   * good).  Then its remotecommand version (1 for channel.k8s.io and for none; port-forward
   * 0) and whether WebSocket channels are base64 text. */
  const char *protocol;
  uint32_t version;
  bool base64;
  char accept[29]; /* Sec-WebSocket-Accept */

  uint16_t ports[CRISP_PORT_FORWARD_MAX_PORTS]; /* ?port= of the URL, in order */
  size_t n_ports;

  /* private: the head, cut into NUL-terminated pieces the pointers above point into */
  char text[CRISP_UPGRADE_HEAD_MAX + 1];
  const char *spdy_offers[CRISP_UPGRADE_MAX_OFFERS]; /* X-Stream-Protocol-Version */
  const char *ws_offers[CRISP_UPGRADE_MAX_OFFERS];   /* Sec-WebSocket-Protocol */
  size_t n_spdy_offers, n_ws_offers;
} CrispUpgrade;

/* The length of the head in buf (through its blank line), 0 when more bytes are needed, or
 * -EMSGSIZE when CRISP_UPGRADE_HEAD_MAX bytes hold no complete head. */
ssize_t crisp_upgrade_head_end (const uint8_t *buf, size_t len);

/* Parses a complete head (as found by crisp_upgrade_head_end) into *u and decides. */
void crisp_upgrade_parse (const char *head, size_t len, CrispUpgrade *u);

/* The ports of a port-forward over WebSocket once the token is known: those of the CRI
 * request when it named any, else the URL's.  Fails (returns false, *u's status and message
 * set to the 400 to answer) when there are none or too many for the framing. */
bool crisp_upgrade_set_ports (CrispUpgrade *u, const uint16_t *request_ports, size_t n);

/* The `101 Switching Protocols` answer for an accepted upgrade, NUL-terminated in buf; its
 * length, or 0 when it does not fit. */
size_t crisp_upgrade_response (const CrispUpgrade *u, char *buf, size_t size);
