/* The gRPC transport: one thread drains the completion queue.  It accepts calls, and decodes
 * and dispatches a request through the method table itself when its handler is a worker's or
 * a quick one; every other event goes to the GLib main loop, which does the same there. */
#pragma once

#include "server.h"

G_BEGIN_DECLS

typedef struct
{
  const char *name;    /* "Version" */
  const char *service; /* "runtime.v1.RuntimeService" */
  char *path;          /* "/runtime.v1.RuntimeService/Version" */
  const ProtobufCMessageDescriptor *input;
  const ProtobufCMessageDescriptor *output;
  gboolean server_streaming;
  CrispHandler handler;
  CrispCallThreadFunc thread_handler; /* or this, run in a worker thread */
  gboolean quick;                     /* handler runs on the queue thread, not the main loop */
} CrispMethod;

const CrispMethod *crisp_call_method (CrispCall *call);

/* Builds the method table from the generated service descriptors (methods.c). */
GHashTable *crisp_methods_new (void);
const CrispMethod *crisp_methods_lookup_path (GHashTable *methods, const char *path);

CrispGrpc *crisp_grpc_new (CrispServer *server, const char *socket_path, GError **error);
gboolean crisp_grpc_start (CrispGrpc *self, GError **error);
/* Stops accepting calls; in-flight ones get grace_seconds, then are cancelled. `done` runs
 * on the main loop once no call is left. */
void crisp_grpc_shutdown (CrispGrpc *self, guint grace_seconds, GSourceFunc done, gpointer data);
void crisp_grpc_free (CrispGrpc *self);

typedef void (*CrispGrpcJob) (gpointer data);
/* Runs job (data) on the worker pool of the calls' thread handlers, queued behind them:
 * a job that does not come back means calls would not either. */
void crisp_grpc_run_job (CrispGrpc *self, CrispGrpcJob job, gpointer data, GDestroyNotify destroy);

/* A message in one slice, as gRPC sends it; the caller owns the buffer. Shared with the
 * CRI client that `crisp check` uses. */
struct grpc_byte_buffer;
struct grpc_byte_buffer *crisp_grpc_pack_message (const ProtobufCMessage *message);

G_END_DECLS
