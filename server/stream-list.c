/* The List* RPCs and their Stream* twins share one handler each: the request's filter is
 * field 1 of both, and the Stream* reply is the List* response cut into chunks.  Every pair
 * in runtime.v1 has that shape (one repeated message field, number 1), which is checked. */
#include "config.h"

#include "grpc.h"

/* Far below the 4 MiB a gRPC client takes by default, and small enough that a big node's
 * list reaches the client in pieces it can work on. */
#define CHUNK_BYTES (512 * 1024)
#define CHUNK_ITEMS 500

static const ProtobufCFieldDescriptor *
items_field (const ProtobufCMessageDescriptor *desc)
{
  g_assert (desc->n_fields == 1 && desc->fields[0].label == PROTOBUF_C_LABEL_REPEATED
            && desc->fields[0].type == PROTOBUF_C_TYPE_MESSAGE);
  return &desc->fields[0];
}

#define MEMBER(msg, off, T) (*(T *) ((char *) (msg) + (off)))

void
crisp_call_stream_list (CrispCall *call, const ProtobufCMessage *list)
{
  const ProtobufCMessageDescriptor *out_desc = crisp_call_method (call)->output;
  const ProtobufCFieldDescriptor *in = items_field (list->descriptor);
  const ProtobufCFieldDescriptor *out = items_field (out_desc);
  g_assert (in->descriptor == out->descriptor);
  size_t n = MEMBER (list, in->quantifier_offset, size_t);
  ProtobufCMessage **items = MEMBER (list, in->offset, ProtobufCMessage **);
  g_autofree ProtobufCMessage *chunk = g_malloc0 (out_desc->sizeof_message);
  protobuf_c_message_init (out_desc, chunk);
  for (size_t start = 0; start < n;)
    {
      size_t end = start, bytes = 0;
      while (end < n && (end == start || (end - start < CHUNK_ITEMS && bytes < CHUNK_BYTES)))
        bytes += protobuf_c_message_get_packed_size (items[end++]) + 8;
      MEMBER (chunk, out->quantifier_offset, size_t) = end - start;
      MEMBER (chunk, out->offset, ProtobufCMessage **) = items + start;
      if (!crisp_call_stream_send (call, chunk, 0))
        break; /* the client is gone; the status below is for the record */
      start = end;
    }
  crisp_call_stream_end (call);
}

const void *
crisp_call_list_filter (CrispCall *call)
{
  const ProtobufCMessage *req = crisp_call_request (call);
  const ProtobufCFieldDescriptor *f = req->descriptor->n_fields > 0 ? &req->descriptor->fields[0] : NULL;
  if (f == NULL)
    return NULL;
  g_assert (f->id == 1 && f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED);
  return MEMBER (req, f->offset, const ProtobufCMessage *);
}

void
crisp_call_reply_list (CrispCall *call, ProtobufCMessage *list)
{
  if (crisp_call_method (call)->server_streaming)
    crisp_call_stream_list (call, list);
  else
    crisp_call_finish (call, list);
  protobuf_c_message_free_unpacked (list, NULL);
}
