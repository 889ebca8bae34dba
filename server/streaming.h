/* crisp's streaming server: the HTTP/1.1 front end at [streaming] address:port that turns
 * a token URL from Exec into a SPDY/3.1 remotecommand session. */
#pragma once

#include <gio/gio.h>

#include "pkg/streaming/tokens.h"

G_BEGIN_DECLS

typedef struct _CrispStreaming CrispStreaming;

/* What an Exec or Attach call asked for, kept under its token until the client connects. */
typedef struct
{
  char *container_id;
  char *runtime_path;
  char *runtime_root;
  char **cmd;
  gboolean tty, in, out, err;
  char *attach_dir; /* set for Attach: the monitor's state directory; cmd is NULL */
} CrispExecRequest;

void crisp_exec_request_free (CrispExecRequest *req);

/* What a PortForward call asked for. */
typedef struct
{
  char *pod_id;
  char *net_ns; /* the pod's pinned network namespace; NULL: the host's */
} CrispPortForwardRequest;

void crisp_port_forward_request_free (CrispPortForwardRequest *req);

/* Binds the listener (port 0: a free one) and starts serving in worker threads. */
CrispStreaming *crisp_streaming_new (const char *address, int port, GError **error);
void crisp_streaming_free (CrispStreaming *self);

CrispStreamTokens *crisp_streaming_tokens (CrispStreaming *self);
/* http://address:port/<kind>/<token>, with the port actually bound. */
char *crisp_streaming_url (CrispStreaming *self, const char *kind, const char *token);

/* Sends all of buf on a blocking socket (no SIGPIPE); 0 or -errno. */
int crisp_streaming_send_all (int fd, const void *buf, gsize len);

/* streaming-exec.c: serves one upgraded exec connection to its end. `leftover` are bytes
 * read past the request head. */
void crisp_streaming_serve_exec (int fd, const char *protocol, CrispExecRequest *req,
                                 const guint8 *leftover, gsize leftover_len);

/* streaming-portforward.c: serves one upgraded portforward.k8s.io connection. */
void crisp_streaming_serve_port_forward (int fd, CrispPortForwardRequest *req,
                                         const guint8 *leftover, gsize leftover_len);

G_END_DECLS
