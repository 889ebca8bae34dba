/* The daemon's context: configuration, method table, and the domain services each
 * handlers-<area>.c file plugs in at start-up. */
#pragma once

#include <glib.h>
#include <gio/gio.h>
#include <protobuf-c/protobuf-c.h>

#include "crisp-error.h"
#include "pkg/config/crisp-config.h"
#include "proto/runtime.pb-c.h"

G_BEGIN_DECLS

typedef struct _CrispServer CrispServer;
typedef struct _CrispCall CrispCall;
typedef struct _CrispGrpc CrispGrpc;

/* A handler owns `call` and must end it exactly once, with crisp_call_finish () or
 * crisp_call_fail (), from any thread, now or later. It runs on the main loop: anything
 * slow (runtime calls, pulls, CNI) goes to crisp_call_run_in_thread (). */
typedef void (*CrispHandler) (CrispServer *server, CrispCall *call);

struct _CrispServer
{
  CrispConfig *config;
  char *config_file; /* what was loaded, for SIGHUP reloads */
  char *config_dir;
  gint64 started_us; /* monotonic, when the process started: Status reports the uptime */
  GMainLoop *loop;
  CrispGrpc *grpc;
  GHashTable *methods; /* short name ("PullImage") -> CrispMethod */
  GMutex lock;         /* guards the small mutable fields below */
  char *pod_cidr;
  /* Domain services, created by their area's init function; NULL until that area exists. */
  struct _CrispImageService *images;
  struct _CrispPodService *pods;
  struct _CrispContainerService *containers;
  struct _CrispServerMetrics *metrics;      /* NULL: [metrics] enable = false */
  struct _CrispEvents *events;              /* GetContainerEvents (events.c) */
  struct _CrispRecentErrors *recent_errors; /* the last failed calls, for verbose Status */
  GPtrArray *cleanups;                      /* run in reverse order at shutdown */
};

/* Binds `handler` to the method called `name` in RuntimeService or ImageService; a name
 * the protocol does not have is a programming error and aborts at start-up. */
void crisp_server_register (CrispServer *self, const char *name, CrispHandler handler);

gboolean crisp_server_has_handler (CrispServer *self, const char *name);

/* Runs `fn (data)` at shutdown, after the transport has stopped. */
void crisp_server_add_cleanup (CrispServer *self, GDestroyNotify fn, gpointer data);

/* Areas: each registers its handlers and creates its service (see handlers-*.c). */
gboolean crisp_runtime_handlers_init (CrispServer *self, GError **error);
gboolean crisp_image_handlers_init (CrispServer *self, GError **error);
gboolean crisp_pod_handlers_init (CrispServer *self, GError **error);
gboolean crisp_container_handlers_init (CrispServer *self, GError **error);
gboolean crisp_streaming_handlers_init (CrispServer *self, GError **error);
gboolean crisp_events_handlers_init (CrispServer *self, GError **error);
gboolean crisp_pod_metrics_handlers_init (CrispServer *self, GError **error);

/* Calls. */
const char *crisp_call_method_name (CrispCall *call); /* "PullImage" */
/* The decoded request; its type is the method's input message. Owned by the call. */
const ProtobufCMessage *crisp_call_request (CrispCall *call);
/* Cancelled when the client cancels, the deadline passes, or crisp shuts down. */
GCancellable *crisp_call_cancellable (CrispCall *call);
/* Adds one key/value pair (a lowercase key) to the trailing metadata the call ends with; at
 * most once per call, before it ends. */
void crisp_call_set_trailer (CrispCall *call, const char *key, const char *value);
/* Sends `response` (its type is the method's output message) and ends the call. */
void crisp_call_finish (CrispCall *call, const ProtobufCMessage *response);
/* Sends the error as a gRPC status (code from crisp_error_to_code) and ends the call;
 * logs it once with the method name. */
void crisp_call_fail (CrispCall *call, const GError *error);
void crisp_call_fail_literal (CrispCall *call, CrispErrorCode code, const char *message);

/* Server-streaming calls (their output is a stream): messages are sent in order, from any
 * thread; the call then ends with crisp_call_stream_end () or crisp_call_fail (), whose status
 * follows the last message.  stream_send is FALSE when the client is gone, the call has
 * ended, or max_waiting messages (0: no bound) already wait for a slow client; the message
 * is dropped then. */
gboolean crisp_call_stream_send (CrispCall *call, const ProtobufCMessage *message,
                                 guint max_waiting);
void crisp_call_stream_end (CrispCall *call);
/* Runs once on the main loop when the client's side of the call ends (it went away, was
 * cancelled, or the call finished).  FALSE, and nothing is registered, if it ended already. */
typedef void (*CrispCallCloseFunc) (CrispCall *call, gpointer data);
gboolean crisp_call_set_close_func (CrispCall *call, CrispCallCloseFunc func, gpointer data);
/* Sends the items of a List* response as its Stream* twin's messages (the call's output
 * type), in chunks of bounded size, then ends the call. */
void crisp_call_stream_list (CrispCall *call, const ProtobufCMessage *list_response);
/* For a handler shared by a List* RPC and its Stream* twin: the request's filter (field 1 of
 * both requests, may be NULL), and the reply, finished or streamed as the method wants
 * (list_response is malloc'd protobuf-c, freed here). */
const void *crisp_call_list_filter (CrispCall *call);
void crisp_call_reply_list (CrispCall *call, ProtobufCMessage *list_response);

/* Runs `fn` in a worker thread; it must end the call itself. */
typedef void (*CrispCallThreadFunc) (CrispServer *server, CrispCall *call, gpointer data);
void crisp_call_run_in_thread (CrispCall *call, CrispCallThreadFunc fn, gpointer data,
                               GDestroyNotify destroy);
/* Binds `name` to fn run in a worker thread (for a handler that would only hand off to one). */
void crisp_server_register_in_thread (CrispServer *self, const char *name, CrispCallThreadFunc fn);
/* Binds `name` to a handler run on the gRPC queue thread, where its request arrives: for a
 * quick answer from memory (a status, a list) whose handler takes only the services' own
 * locks, never blocks on a process or the network, and hands anything slower to a worker. */
void crisp_server_register_quick (CrispServer *self, const char *name, CrispHandler handler);

/* Convenience for thread functions that compute a response or fail. */
#define CRISP_CALL_REQUEST(call, Type) ((const Type *) crisp_call_request (call))

G_END_DECLS
