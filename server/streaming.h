/* crisp's streaming server: the HTTP/1.1 front end at [streaming] address:port that turns
 * a token URL from Exec, Attach or PortForward into a streaming session. */
#pragma once

#include <gio/gio.h>

#include "pkg/streaming/buf.h"
#include "pkg/streaming/tokens.h"
#include "pkg/streaming/upgrade.h"

G_BEGIN_DECLS

typedef struct _CrispStreaming CrispStreaming;

/* What an Exec or Attach call asked for, kept under its token until the client connects; the
 * container's monitor then serves the session. */
typedef struct
{
  char *container_id;
  char *monitor_dir; /* the monitor's state directory */
  gboolean attach;   /* Attach; otherwise Exec of cmd */
  char **cmd;
  gboolean tty, in, out, err;
  gboolean container_tty, container_stdin; /* as the container was created */
} CrispExecRequest;

void crisp_exec_request_free (CrispExecRequest *req);

/* What a PortForward call asked for. */
typedef struct
{
  char *pod_id;
  char *net_ns; /* the pod's pinned network namespace; NULL: the host's */
  guint16 ports[CRISP_PORT_FORWARD_MAX_PORTS]; /* the request's ports (WebSocket forwards them) */
  gsize n_ports;
} CrispPortForwardRequest;

void crisp_port_forward_request_free (CrispPortForwardRequest *req);

/* Binds the listener (port 0: a free one) and starts serving in worker threads. */
CrispStreaming *crisp_streaming_new (const char *address, int port, GError **error);
void crisp_streaming_free (CrispStreaming *self);

CrispStreamTokens *crisp_streaming_tokens (CrispStreaming *self);
/* http://address:port/<kind>/<token>, with the port actually bound. */
char *crisp_streaming_url (CrispStreaming *self, const char *kind, const char *token);

/* Connections being served by crisp itself: request heads being read, port-forward
 * sessions (exec and attach sessions are served by the monitors). */
guint crisp_streaming_active (CrispStreaming *self);

/* Reads until the blank line ending a request head (at most CRISP_UPGRADE_HEAD_MAX bytes,
 * within 10 s); returns its length (the bytes after it stay in buf), or -errno (-EMSGSIZE:
 * too large, and then 431 is already answered). */
gssize crisp_streaming_read_head (int fd, GByteArray *buf);

/* Answers an HTTP error with a text body and Connection: close. */
void crisp_streaming_send_status (int fd, const char *status, const char *body);

/* streaming-handoff.c: hands an exec or attach connection whose upgrade was accepted to the
 * container's monitor, with `response` (the 101 answer, which the monitor sends) and
 * `leftover` (bytes read past the request head); answers an HTTP error itself when the
 * monitor cannot take it.  `u` gives the framing and the negotiated version. */
void crisp_streaming_hand_off (int fd, const CrispUpgrade *u, CrispExecRequest *req,
                               const guint8 *response, gsize response_len,
                               const guint8 *leftover, gsize leftover_len);

/* streaming-portforward.c: serves one upgraded port-forward connection (SPDY/3.1, or
 * WebSocket forwarding `u`'s ports): sends `response` (the 101) once the pod's network
 * namespace is open, then connects inside it. */
void crisp_streaming_serve_port_forward (int fd, CrispPortForwardRequest *req,
                                         const CrispUpgrade *u, const char *response,
                                         const guint8 *leftover, gsize leftover_len);

G_END_DECLS
