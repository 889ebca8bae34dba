/* A blocking unary CRI client on gRPC core: a channel to a unix socket, and per call one batch
 * (send metadata, message and close; receive metadata, message and status) on a pluck queue. */
#include "config.h"

#include "cri-client.h"
#include "grpc.h"

#include "crisp-base.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

struct _CrispCriClient
{
  char *socket_path;
  grpc_channel *channel;
  grpc_completion_queue *cq;
};

/* Everything one call allocates, released in one place whatever step failed. */
typedef struct
{
  grpc_call *call;
  grpc_byte_buffer *send_buf;
  grpc_byte_buffer *recv_buf;
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status;
  grpc_slice details;
} UnaryCall;

static void
unary_call_clear (UnaryCall *u)
{
  if (u->call != NULL)
    grpc_call_unref (u->call);
  if (u->send_buf != NULL)
    grpc_byte_buffer_destroy (u->send_buf);
  if (u->recv_buf != NULL)
    grpc_byte_buffer_destroy (u->recv_buf);
  grpc_metadata_array_destroy (&u->initial_md);
  grpc_metadata_array_destroy (&u->trailing_md);
  grpc_slice_unref (u->details);
}

static const char *
connect_hint (int err)
{
  switch (err)
    {
    case ENOENT:
      return " (is crisp running?)";
    case ECONNREFUSED:
      return " (nothing listens on it: crisp is not running, or it stopped)";
    case EACCES:
    case EPERM:
      return " (permission denied: run as root or as a member of the socket's group)";
    default:
      return "";
    }
}

/* gRPC's own connect errors say little; a plain connect names the errno. */
static gboolean
probe_socket (const char *path, GError **error)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof sa.sun_path)
    return crisp_throw (error, CRISP_ERROR_UNAVAILABLE, "cannot connect to '%s': path too long",
                        path);
  strcpy (sa.sun_path, path);
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int err = errno;
      return crisp_throw (error, CRISP_ERROR_UNAVAILABLE, "cannot connect to '%s': %s%s", path,
                          g_strerror (err), connect_hint (err));
    }
  return TRUE;
}

CrispCriClient *
crisp_cri_client_new (const char *socket_path, GError **error)
{
  if (!probe_socket (socket_path, error))
    return NULL;
  CrispCriClient *self = g_new0 (CrispCriClient, 1);
  self->socket_path = g_strdup (socket_path);
  grpc_init ();
  g_autofree char *target = g_strconcat ("unix:", socket_path, NULL);
  grpc_channel_credentials *creds = grpc_insecure_credentials_create ();
  self->channel = grpc_channel_create (target, creds, NULL);
  grpc_channel_credentials_release (creds);
  self->cq = grpc_completion_queue_create_for_pluck (NULL);
  return self;
}

void
crisp_cri_client_free (CrispCriClient *self)
{
  if (self == NULL)
    return;
  grpc_completion_queue_shutdown (self->cq);
  grpc_completion_queue_pluck (self->cq, NULL, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
  grpc_completion_queue_destroy (self->cq);
  grpc_channel_destroy (self->channel);
  grpc_shutdown ();
  g_free (self->socket_path);
  g_free (self);
}

static ProtobufCMessage *
unpack_message (grpc_byte_buffer *buf, const ProtobufCMessageDescriptor *desc)
{
  grpc_byte_buffer_reader reader;
  if (buf == NULL || !grpc_byte_buffer_reader_init (&reader, buf))
    return NULL;
  grpc_slice all = grpc_byte_buffer_reader_readall (&reader);
  grpc_byte_buffer_reader_destroy (&reader);
  ProtobufCMessage *msg
      = protobuf_c_message_unpack (desc, NULL, GRPC_SLICE_LENGTH (all), GRPC_SLICE_START_PTR (all));
  grpc_slice_unref (all);
  return msg;
}

static gboolean
run_batch (CrispCriClient *self, UnaryCall *u, GError **error)
{
  grpc_op ops[6] = { 0 };
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = u->send_buf;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &u->recv_buf;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
  ops[5].data.recv_status_on_client.status = &u->status;
  ops[5].data.recv_status_on_client.status_details = &u->details;
  grpc_call_error r = grpc_call_start_batch (u->call, ops, G_N_ELEMENTS (ops), u, NULL);
  if (r != GRPC_CALL_OK)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "starting the call failed (%d)", (int) r);
  /* The call's deadline bounds the wait; the event comes for it even on failure. */
  grpc_event ev
      = grpc_completion_queue_pluck (self->cq, u, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
  if (ev.type != GRPC_OP_COMPLETE || !ev.success)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "the call did not complete");
  return TRUE;
}

gboolean
crisp_cri_client_call (CrispCriClient *self, const char *name, const ProtobufCMessage *request,
                       const ProtobufCMessageDescriptor *resp_desc, int timeout_seconds,
                       ProtobufCMessage **out_response, GError **error)
{
  g_autofree char *path = g_strconcat ("/runtime.v1.", name, NULL);
  gpr_timespec deadline = gpr_time_add (gpr_now (GPR_CLOCK_MONOTONIC),
                                        gpr_time_from_seconds (timeout_seconds, GPR_TIMESPAN));
  UnaryCall u = { .details = grpc_empty_slice () };
  grpc_metadata_array_init (&u.initial_md);
  grpc_metadata_array_init (&u.trailing_md);
  grpc_slice method = grpc_slice_from_copied_string (path);
  u.call = grpc_channel_create_call (self->channel, NULL, GRPC_PROPAGATE_DEFAULTS, self->cq, method,
                                     NULL, deadline, NULL);
  grpc_slice_unref (method);
  u.send_buf = crisp_grpc_pack_message (request);
  gboolean ok = run_batch (self, &u, error);
  if (ok && u.status != GRPC_STATUS_OK)
    {
      g_autofree char *details = grpc_slice_to_c_string (u.details);
      ok = crisp_throw (error, (CrispErrorCode) u.status, "%s", details);
    }
  ProtobufCMessage *resp = ok ? unpack_message (u.recv_buf, resp_desc) : NULL;
  if (ok && resp == NULL)
    ok = crisp_throw (error, CRISP_ERROR_INTERNAL, "the response is not a valid %s",
                      resp_desc->name);
  unary_call_clear (&u);
  if (!ok)
    return crisp_prefix_error (error, "%s: ", strchr (name, '/') ? strchr (name, '/') + 1 : name);
  *out_response = resp;
  return TRUE;
}
