/* gRPC transport over the C core API: accept generic calls, decode them with the method
 * table's descriptors, hand them to handlers on the main loop, send replies from any thread. */
#include "config.h"

#include "grpc.h"
#include "metrics.h"
#include "recent-errors.h"
#include "proto/proto-strings.h"

#include "crisp-tsan.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#define CRISP_MAX_RECEIVE_BYTES (16 * 1024 * 1024)
#define CRISP_MAX_WORKERS 64

typedef enum
{
  TAG_NEW_CALL,
  TAG_RECV,
  TAG_CLOSE,
  TAG_SEND,
  TAG_STREAM, /* one message of a server-streaming call sent */
  TAG_SHUTDOWN,
} TagKind;

typedef struct
{
  TagKind kind;
  CrispCall *call;
} Tag;

struct _CrispCall
{
  CrispServer *server;
  CrispGrpc *grpc;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array request_md;
  Tag tag_new, tag_recv, tag_close, tag_send, tag_stream;
  grpc_byte_buffer *recv_buf;
  grpc_byte_buffer *send_buf;
  grpc_slice status_details;
  gboolean have_status_details;
  grpc_metadata trailer;
  gboolean have_trailer;
  int cancelled;
  const CrispMethod *method;
  ProtobufCMessage *request;
  GCancellable *cancellable;
  gint64 started; /* monotonic, when the call was accepted */
  gint refs;
  gint ended;
  /* Server streaming: messages go out one batch at a time, in order; the status waits for
   * the last one.  Under stream_lock. */
  GMutex stream_lock;
  GQueue stream_queue;               /* grpc_byte_buffer *, waiting */
  grpc_byte_buffer *stream_inflight; /* the message gRPC is sending */
  gboolean initial_md_sent;
  gboolean stream_broken; /* a send failed: the client is gone */
  gboolean status_waiting;
  grpc_status_code waiting_code;
  char *waiting_message;
  gboolean closed; /* the client's side ended (TAG_CLOSE) */
  CrispCallCloseFunc close_func;
  gpointer close_data;
};

struct _CrispGrpc
{
  CrispServer *server;
  grpc_server *srv;
  grpc_completion_queue *cq;
  GThread *thread;
  GMainContext *context;
  GThreadPool *workers;
  char *address;
  gboolean shutting_down;
  gboolean stopped; /* every call has ended: the server may be destroyed */
  Tag shutdown_tag;
  guint grace_source;
  guint idle_source;  /* while shutting down: watches for the last call's end */
  gboolean idle_seen; /* the last tick found no call */
  gint live_calls;    /* CrispCalls not yet freed, pending accepts included */
  GSourceFunc shutdown_done;
  gpointer shutdown_data;
};

typedef struct
{
  void *tag;
  int success;
} Event;

static void call_accept_next (CrispGrpc *self);

static void
call_unref (CrispCall *c)
{
  if (!g_atomic_int_dec_and_test (&c->refs))
    return;
  g_atomic_int_add (&c->grpc->live_calls, -1);
  if (c->call)
    grpc_call_unref (c->call);
  grpc_call_details_destroy (&c->details);
  grpc_metadata_array_destroy (&c->request_md);
  if (c->recv_buf)
    grpc_byte_buffer_destroy (c->recv_buf);
  if (c->send_buf)
    grpc_byte_buffer_destroy (c->send_buf);
  if (c->have_status_details)
    grpc_slice_unref (c->status_details);
  if (c->have_trailer)
    {
      grpc_slice_unref (c->trailer.key);
      grpc_slice_unref (c->trailer.value);
    }
  if (c->request)
    protobuf_c_message_free_unpacked (c->request, NULL);
  g_clear_object (&c->cancellable);
  g_queue_clear_full (&c->stream_queue, (GDestroyNotify) grpc_byte_buffer_destroy);
  g_free (c->waiting_message);
  g_mutex_clear (&c->stream_lock);
  g_free (c);
}

static CrispCall *
call_new (CrispGrpc *self)
{
  CrispCall *c = g_new0 (CrispCall, 1);
  c->server = self->server;
  c->grpc = self;
  c->tag_new = (Tag){ TAG_NEW_CALL, c };
  c->tag_recv = (Tag){ TAG_RECV, c };
  c->tag_close = (Tag){ TAG_CLOSE, c };
  c->tag_send = (Tag){ TAG_SEND, c };
  c->tag_stream = (Tag){ TAG_STREAM, c };
  g_mutex_init (&c->stream_lock);
  g_queue_init (&c->stream_queue);
  c->cancellable = g_cancellable_new ();
  c->refs = 1;
  g_atomic_int_inc (&self->live_calls);
  grpc_call_details_init (&c->details);
  grpc_metadata_array_init (&c->request_md);
  return c;
}

const char *
crisp_call_method_name (CrispCall *call)
{
  return call->method ? call->method->name : "(unknown)";
}

const CrispMethod *
crisp_call_method (CrispCall *call)
{
  return call->method;
}

const ProtobufCMessage *
crisp_call_request (CrispCall *call)
{
  return call->request;
}

GCancellable *
crisp_call_cancellable (CrispCall *call)
{
  return call->cancellable;
}

/* Claims the right to end the call; a second ending is a bug in a handler. */
static gboolean
call_claim_end (CrispCall *c)
{
  if (g_atomic_int_compare_and_exchange (&c->ended, 0, 1))
    return TRUE;
  g_critical ("RPC %s: ended twice", crisp_call_method_name (c));
  return FALSE;
}

/* ThreadSanitizer builds: every call's end is released here, and acquired when gRPC reports
 * the server's shutdown (which it does only after every call has ended). */
static int calls_ended G_GNUC_UNUSED;

static void
call_send (CrispCall *c, grpc_status_code code, const char *message)
{
  grpc_op ops[3] = { 0 };
  size_t n = 0;
  if (!c->initial_md_sent)
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (c->send_buf)
    {
      ops[n].op = GRPC_OP_SEND_MESSAGE;
      ops[n].data.send_message.send_message = c->send_buf;
      n++;
    }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  if (message)
    {
      c->status_details = grpc_slice_from_copied_string (message);
      c->have_status_details = TRUE;
      ops[n].data.send_status_from_server.status_details = &c->status_details;
    }
  if (c->have_trailer)
    {
      ops[n].data.send_status_from_server.trailing_metadata_count = 1;
      ops[n].data.send_status_from_server.trailing_metadata = &c->trailer;
    }
  n++;
  crisp_metrics_rpc_ended (c->server, crisp_call_method_name (c), (int) code, c->started);
  /* The release is the last thing this thread does to c before gRPC owns the batch: even the
   * read of c->call must come before it, or TSan sees it race with call_unref's free. */
  grpc_call *call = c->call;
  CRISP_TSAN_RELEASE (&c->tag_send);
  CRISP_TSAN_RELEASE (&calls_ended);
  grpc_call_error r = grpc_call_start_batch (call, ops, n, &c->tag_send, NULL);
  if (r != GRPC_CALL_OK)
    {
      g_warning ("RPC %s: sending the reply failed (grpc error %d)", crisp_call_method_name (c),
                 (int) r);
      call_unref (c);
    }
}

grpc_byte_buffer *
crisp_grpc_pack_message (const ProtobufCMessage *message)
{
  size_t len = protobuf_c_message_get_packed_size (message);
  grpc_slice slice = grpc_slice_malloc (len);
  protobuf_c_message_pack (message, GRPC_SLICE_START_PTR (slice));
  grpc_byte_buffer *buf = grpc_raw_byte_buffer_create (&slice, 1);
  grpc_slice_unref (slice);
  return buf;
}

/* Sends the status now, or after the message a streaming call is still sending. */
static void
call_end (CrispCall *c, grpc_status_code code, const char *message)
{
  g_mutex_lock (&c->stream_lock);
  gboolean later = c->stream_inflight != NULL;
  if (later)
    {
      c->status_waiting = TRUE;
      c->waiting_code = code;
      c->waiting_message = g_strdup (message);
    }
  g_mutex_unlock (&c->stream_lock);
  if (!later)
    call_send (c, code, message);
}

void
crisp_call_set_trailer (CrispCall *call, const char *key, const char *value)
{
  g_return_if_fail (!call->have_trailer && !g_atomic_int_get (&call->ended));
  call->trailer.key = grpc_slice_from_copied_string (key);
  call->trailer.value = grpc_slice_from_copied_string (value);
  call->have_trailer = TRUE;
}

void
crisp_call_finish (CrispCall *call, const ProtobufCMessage *response)
{
  if (!call_claim_end (call))
    return;
  g_assert (response->descriptor == call->method->output && !call->method->server_streaming);
  call->send_buf = crisp_grpc_pack_message (response);
  g_debug ("RPC %s: ok", crisp_call_method_name (call));
  call_end (call, GRPC_STATUS_OK, NULL);
}

void
crisp_call_fail_literal (CrispCall *call, CrispErrorCode code, const char *message)
{
  if (!call_claim_end (call))
    return;
  if (code == CRISP_ERROR_INTERNAL || code == CRISP_ERROR_UNKNOWN || code == CRISP_ERROR_DATA_LOSS)
    g_warning ("RPC %s failed: %s", crisp_call_method_name (call), message);
  else
    g_info ("RPC %s failed (code %d): %s", crisp_call_method_name (call), (int) code, message);
  crisp_recent_errors_add (call->server->recent_errors, crisp_call_method_name (call), (int) code,
                           message);
  call_end (call, (grpc_status_code) code, message);
}

void
crisp_call_stream_end (CrispCall *call)
{
  if (!call_claim_end (call))
    return;
  g_debug ("RPC %s: stream ended", crisp_call_method_name (call));
  call_end (call, GRPC_STATUS_OK, NULL);
}

/* Under stream_lock: hands `buf` to gRPC. */
static void
stream_start_send (CrispCall *c, grpc_byte_buffer *buf)
{
  grpc_op ops[2] = { 0 };
  size_t n = 0;
  if (!c->initial_md_sent)
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = buf;
  c->initial_md_sent = TRUE;
  c->stream_inflight = buf;
  g_atomic_int_inc (&c->refs);
  grpc_call *call = c->call; /* read before the release, as in call_send */
  CRISP_TSAN_RELEASE (&c->tag_stream);
  if (grpc_call_start_batch (call, ops, n, &c->tag_stream, NULL) == GRPC_CALL_OK)
    return;
  c->stream_inflight = NULL;
  c->stream_broken = TRUE;
  grpc_byte_buffer_destroy (buf);
  g_atomic_int_add (&c->refs, -1); /* cannot be the last: the handler holds one */
}

gboolean
crisp_call_stream_send (CrispCall *call, const ProtobufCMessage *message, guint max_waiting)
{
  g_assert (call->method->server_streaming && message->descriptor == call->method->output);
  grpc_byte_buffer *buf = crisp_grpc_pack_message (message);
  g_mutex_lock (&call->stream_lock);
  gboolean ok = !call->stream_broken && !g_atomic_int_get (&call->ended)
                && (max_waiting == 0 || call->stream_queue.length < max_waiting);
  if (ok && call->stream_inflight == NULL)
    stream_start_send (call, buf);
  else if (ok)
    g_queue_push_tail (&call->stream_queue, buf);
  else
    grpc_byte_buffer_destroy (buf);
  ok = ok && !call->stream_broken;
  g_mutex_unlock (&call->stream_lock);
  return ok;
}

/* On the main loop: one message went out (or the client is gone); the next one, or the status
 * that waited for it. */
static void
on_stream_sent (CrispCall *c, gboolean success)
{
  g_mutex_lock (&c->stream_lock);
  grpc_byte_buffer_destroy (c->stream_inflight);
  c->stream_inflight = NULL;
  if (!success)
    {
      c->stream_broken = TRUE;
      g_queue_clear_full (&c->stream_queue, (GDestroyNotify) grpc_byte_buffer_destroy);
    }
  while (c->stream_inflight == NULL && !c->stream_broken && c->stream_queue.length > 0)
    stream_start_send (c, g_queue_pop_head (&c->stream_queue));
  gboolean send_status = c->stream_inflight == NULL && c->status_waiting;
  c->status_waiting = c->status_waiting && !send_status;
  g_autofree char *message = send_status ? g_steal_pointer (&c->waiting_message) : NULL;
  g_mutex_unlock (&c->stream_lock);
  if (send_status)
    call_send (c, c->waiting_code, message);
  call_unref (c);
}

gboolean
crisp_call_set_close_func (CrispCall *call, CrispCallCloseFunc func, gpointer data)
{
  g_mutex_lock (&call->stream_lock);
  gboolean open = !call->closed;
  if (open)
    call->close_func = func, call->close_data = data;
  g_mutex_unlock (&call->stream_lock);
  return open;
}

/* On the main loop: the client's side of the call ended. */
static void
on_close (CrispCall *c)
{
  if (c->cancelled)
    g_cancellable_cancel (c->cancellable);
  g_mutex_lock (&c->stream_lock);
  c->closed = TRUE;
  CrispCallCloseFunc func = c->close_func;
  c->close_func = NULL;
  g_mutex_unlock (&c->stream_lock);
  if (func)
    func (c, c->close_data);
}

void
crisp_call_fail (CrispCall *call, const GError *error)
{
  crisp_call_fail_literal (call, crisp_error_to_code (error),
                           error ? error->message : "unknown error");
}

/* A call's thread handler, or (call NULL) a job of the server's own, such as a probe. */
typedef struct
{
  CrispCall *call;
  CrispCallThreadFunc fn;
  CrispGrpcJob job;
  gpointer data;
  GDestroyNotify destroy;
} Work;

static void
worker_run (gpointer item, gpointer user_data)
{
  Work *w = item;
  CRISP_TSAN_ACQUIRE (w);
  if (w->call != NULL)
    w->fn (w->call->server, w->call, w->data);
  else
    w->job (w->data);
  if (w->destroy)
    w->destroy (w->data);
  g_free (w);
}

static void
workers_push (CrispGrpc *self, const Work *work)
{
  Work *w = g_memdup2 (work, sizeof *work);
  CRISP_TSAN_RELEASE (w);
  /* The pool's queue node and new threads are GLib's, passed on under GLib's own lock. */
  CRISP_TSAN_IGNORE_BEGIN ();
  g_thread_pool_push (self->workers, w, NULL);
  CRISP_TSAN_IGNORE_END ();
}

void
crisp_call_run_in_thread (CrispCall *call, CrispCallThreadFunc fn, gpointer data,
                          GDestroyNotify destroy)
{
  workers_push (call->grpc, &(Work){ .call = call, .fn = fn, .data = data, .destroy = destroy });
}

void
crisp_grpc_run_job (CrispGrpc *self, CrispGrpcJob job, gpointer data, GDestroyNotify destroy)
{
  workers_push (self, &(Work){ .job = job, .data = data, .destroy = destroy });
}

/* The request, or NULL; nul_field is set when it decoded but a string in it holds a NUL. */
static ProtobufCMessage *
decode_request (CrispCall *c, char *nul_field, size_t size)
{
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init (&reader, c->recv_buf))
    return NULL;
  grpc_slice all = grpc_byte_buffer_reader_readall (&reader);
  grpc_byte_buffer_reader_destroy (&reader);
  ProtobufCMessage *msg = protobuf_c_message_unpack (
      c->method->input, NULL, GRPC_SLICE_LENGTH (all), GRPC_SLICE_START_PTR (all));
  if (msg != NULL
      && crisp_proto_find_nul (c->method->input, GRPC_SLICE_START_PTR (all),
                               GRPC_SLICE_LENGTH (all), nul_field, size))
    {
      protobuf_c_message_free_unpacked (msg, NULL);
      msg = NULL;
    }
  grpc_slice_unref (all);
  return msg;
}

/* The call's method, looked up once (NULL: not one of crisp's). */
static const CrispMethod *
call_method (CrispCall *c)
{
  if (c->method == NULL)
    {
      g_autofree char *path = grpc_slice_to_c_string (c->details.method);
      c->method = crisp_methods_lookup_path (c->server->methods, path);
    }
  return c->method;
}

static void
on_recv (CrispCall *c, gboolean success)
{
  if (call_method (c) == NULL)
    {
      g_autofree char *path = grpc_slice_to_c_string (c->details.method);
      g_autofree char *msg = g_strdup_printf ("unknown method '%s'", path);
      crisp_call_fail_literal (c, CRISP_ERROR_UNIMPLEMENTED, msg);
      return;
    }
  if (!success || c->recv_buf == NULL)
    {
      crisp_call_fail_literal (c, CRISP_ERROR_INVALID_ARGUMENT, "no request message received");
      return;
    }
  char nul_field[256] = "";
  c->request = decode_request (c, nul_field, sizeof nul_field);
  if (c->request == NULL)
    {
      g_autofree char *msg = *nul_field
                                 ? g_strdup_printf ("request to %s: field '%s' contains a NUL byte",
                                                    c->method->name, nul_field)
                                 : g_strdup_printf ("request to %s does not decode as %s",
                                                    c->method->name, c->method->input->name);
      crisp_call_fail_literal (c, CRISP_ERROR_INVALID_ARGUMENT, msg);
      return;
    }
  if (c->method->handler == NULL && c->method->thread_handler == NULL)
    {
      g_autofree char *msg = g_strdup_printf ("%s is not implemented by crisp", c->method->name);
      crisp_call_fail_literal (c, CRISP_ERROR_UNIMPLEMENTED, msg);
      return;
    }
  g_debug ("RPC %s", c->method->name);
  if (c->method->thread_handler != NULL)
    crisp_call_run_in_thread (c, c->method->thread_handler, NULL, NULL);
  else
    c->method->handler (c->server, c);
}

static gboolean
start_ops (CrispCall *c, grpc_op *op, Tag *tag)
{
  g_atomic_int_inc (&c->refs);
  grpc_call *call = c->call; /* read before the release, as in call_send */
  CRISP_TSAN_RELEASE (tag);
  if (grpc_call_start_batch (call, op, 1, tag, NULL) == GRPC_CALL_OK)
    return TRUE;
  call_unref (c);
  return FALSE;
}

static void
on_new_call (CrispGrpc *self, CrispCall *c, gboolean success)
{
  if (!success)
    {
      call_unref (c); /* shutting down: the pending request is returned unfulfilled */
      return;
    }
  c->started = g_get_monotonic_time ();
  /* Read on the queue thread while the main loop may be setting it: a request made just after
   * the shutdown began comes back unfulfilled, as above. */
  if (!g_atomic_int_get (&self->shutting_down))
    call_accept_next (self);
  /* Close-on-server first: it is how deadlines and client cancellations are seen. */
  grpc_op close = { .op = GRPC_OP_RECV_CLOSE_ON_SERVER };
  close.data.recv_close_on_server.cancelled = &c->cancelled;
  grpc_op recv = { .op = GRPC_OP_RECV_MESSAGE };
  recv.data.recv_message.recv_message = &c->recv_buf;
  gboolean ok = start_ops (c, &close, &c->tag_close) && start_ops (c, &recv, &c->tag_recv);
  if (!ok)
    g_warning ("accepting a call failed");
  call_unref (c); /* the accept's own reference; the ops hold theirs */
}

static gboolean
dispatch_event (gpointer data)
{
  Event *ev = data;
  CRISP_TSAN_ACQUIRE (ev);
  CRISP_TSAN_ACQUIRE (ev->tag);
  Tag *tag = ev->tag;
  CrispCall *c = tag->call;
  switch (tag->kind)
    {
    case TAG_NEW_CALL: /* handled on the queue thread */
      break;
    case TAG_RECV:
      /* The recv op's reference passes to the handler, which ends the call (send op). */
      on_recv (c, ev->success);
      break;
    case TAG_CLOSE:
      on_close (c);
      call_unref (c);
      break;
    case TAG_STREAM:
      on_stream_sent (c, ev->success);
      break;
    case TAG_SEND:
      call_unref (c);
      break;
    case TAG_SHUTDOWN:
      {
        CrispGrpc *self = (CrispGrpc *) ((char *) tag - G_STRUCT_OFFSET (CrispGrpc, shutdown_tag));
        /* gRPC reports the shutdown once every call has sent its status: what the handlers
         * did before that comes before the teardown of the services they used. */
        CRISP_TSAN_ACQUIRE (&calls_ended);
        g_clear_handle_id (&self->grace_source, g_source_remove);
        g_clear_handle_id (&self->idle_source, g_source_remove);
        self->stopped = TRUE;
        if (self->shutdown_done)
          self->shutdown_done (self->shutdown_data);
      }
      break;
    }
  return G_SOURCE_REMOVE;
}

static gpointer
queue_thread (gpointer data)
{
  CrispGrpc *self = data;
  for (;;)
    {
      grpc_event ev
          = grpc_completion_queue_next (self->cq, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
      if (ev.type == GRPC_QUEUE_SHUTDOWN)
        break;
      if (ev.type != GRPC_OP_COMPLETE)
        continue;
      Tag *tag = ev.tag;
      /* The shutdown tag is the main loop's; every other one was released to gRPC with its
       * op, so it may be read here. */
      if (tag != &self->shutdown_tag)
        {
          CRISP_TSAN_ACQUIRE (tag);
          if (tag->kind == TAG_NEW_CALL)
            {
              /* Accepting touches only the call and gRPC: done here, it saves every call a
               * trip to the main loop and back before its request can be read. */
              on_new_call (tag->call->grpc, tag->call, ev.success);
              continue;
            }
          /* A request for a worker's handler goes straight to a worker, and a quick one is
           * answered here: decoding and failing a request touch only the call, the read-only
           * method table and gRPC. */
          const CrispMethod *m = tag->kind == TAG_RECV ? call_method (tag->call) : NULL;
          if (m != NULL && (m->thread_handler != NULL || m->quick))
            {
              on_recv (tag->call, ev.success);
              continue;
            }
        }
      Event *e = g_new (Event, 1);
      e->tag = ev.tag;
      e->success = ev.success;
      CRISP_TSAN_RELEASE (e->tag); /* what gRPC wrote for this tag, it wrote before */
      CRISP_TSAN_RELEASE (e);
      /* The GSource GLib makes here is freed by the main loop, under the context's lock. */
      CRISP_TSAN_IGNORE_BEGIN ();
      g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, dispatch_event, e, g_free);
      CRISP_TSAN_IGNORE_END ();
    }
  return NULL;
}

static void
call_accept_next (CrispGrpc *self)
{
  CrispCall *c = call_new (self);
  CRISP_TSAN_RELEASE (&c->tag_new);
  grpc_call_error r = grpc_server_request_call (self->srv, &c->call, &c->details, &c->request_md,
                                                self->cq, self->cq, &c->tag_new);
  if (r != GRPC_CALL_OK)
    {
      g_warning ("cannot accept more calls (grpc error %d)", (int) r);
      call_unref (c);
    }
}

CrispGrpc *
crisp_grpc_new (CrispServer *server, const char *socket_path, GError **error)
{
  CrispGrpc *self = g_new0 (CrispGrpc, 1);
  self->server = server;
  self->context = g_main_context_ref (g_main_context_default ());
  self->address = g_strdup_printf ("unix:%s", socket_path);
  self->workers = g_thread_pool_new (worker_run, NULL, CRISP_MAX_WORKERS, FALSE, NULL);
  self->shutdown_tag = (Tag){ TAG_SHUTDOWN, NULL };
  grpc_init ();
  grpc_arg args[] = {
    { .type = GRPC_ARG_INTEGER,
      .key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
      .value.integer = CRISP_MAX_RECEIVE_BYTES },
  };
  grpc_channel_args chargs = { .num_args = G_N_ELEMENTS (args), .args = args };
  self->srv = grpc_server_create (&chargs, NULL);
  self->cq = grpc_completion_queue_create_for_next (NULL);
  grpc_server_register_completion_queue (self->srv, self->cq, NULL);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create ();
  int port = grpc_server_add_http2_port (self->srv, self->address, creds);
  grpc_server_credentials_release (creds);
  if (port == 0)
    {
      crisp_throw (error, CRISP_ERROR_UNAVAILABLE, "cannot listen on '%s'", self->address);
      crisp_grpc_free (self);
      return NULL;
    }
  return self;
}

gboolean
crisp_grpc_start (CrispGrpc *self, GError **error)
{
  grpc_server_start (self->srv);
  self->thread = g_thread_new ("grpc-cq", queue_thread, self);
  /* A few requests outstanding so bursts of calls are accepted without a round trip. */
  for (int i = 0; i < 4; i++)
    call_accept_next (self);
  return TRUE;
}

static gboolean
grace_expired (gpointer data)
{
  CrispGrpc *self = data;
  self->grace_source = 0;
  g_message ("shutdown grace period over: cancelling the calls still in flight");
  grpc_server_cancel_all_calls (self->srv);
  return G_SOURCE_REMOVE;
}

/* Every call has ended, yet gRPC's shutdown also waits for each client to close its
 * connection in answer to the GOAWAY, which a client that is not reading never does: crisp
 * would wait out the whole grace period.  Two ticks in a row without a call (50 to 100 ms
 * after the last one ended, time for its status to reach the socket) and the connections
 * left are closed. */
static gboolean
close_idle_connections (gpointer data)
{
  CrispGrpc *self = data;
  gboolean idle = g_atomic_int_get (&self->live_calls) == 0;
  if (!idle || !self->idle_seen)
    {
      self->idle_seen = idle;
      return G_SOURCE_CONTINUE;
    }
  self->idle_source = 0;
  g_message ("every call has ended: closing the connections clients left open");
  grpc_server_cancel_all_calls (self->srv);
  return G_SOURCE_REMOVE;
}

void
crisp_grpc_shutdown (CrispGrpc *self, guint grace_seconds, GSourceFunc done, gpointer data)
{
  if (self->shutting_down)
    return;
  g_atomic_int_set (&self->shutting_down, TRUE);
  self->shutdown_done = done;
  self->shutdown_data = data;
  grpc_server_shutdown_and_notify (self->srv, self->cq, &self->shutdown_tag);
  self->grace_source = g_timeout_add_seconds (grace_seconds, grace_expired, self);
  self->idle_source = g_timeout_add (50, close_idle_connections, self);
}

void
crisp_grpc_free (CrispGrpc *self)
{
  if (self == NULL)
    return;
  if (self->shutting_down && !self->stopped)
    {
      /* A call outlived the grace period and its cancellation: gRPC cannot be torn down
       * under it, and the process is about to exit anyway. */
      g_message ("exiting with calls still in flight");
      return;
    }
  g_clear_handle_id (&self->grace_source, g_source_remove);
  g_clear_handle_id (&self->idle_source, g_source_remove);
  if (self->srv)
    {
      if (!self->shutting_down)
        {
          grpc_server_shutdown_and_notify (self->srv, self->cq, &self->shutdown_tag);
          grpc_server_cancel_all_calls (self->srv);
        }
      grpc_completion_queue_shutdown (self->cq);
    }
  if (self->thread)
    g_thread_join (self->thread);
  if (self->srv)
    {
      grpc_server_destroy (self->srv);
      grpc_completion_queue_destroy (self->cq);
    }
  if (self->workers)
    {
      /* GLib queues a wake-up for each idle worker: its own memory, under its own lock. */
      CRISP_TSAN_IGNORE_BEGIN ();
      g_thread_pool_free (self->workers, TRUE, FALSE);
      CRISP_TSAN_IGNORE_END ();
    }
  g_main_context_unref (self->context);
  g_free (self->address);
  g_free (self);
  grpc_shutdown ();
}
