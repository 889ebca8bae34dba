/* Deep copies of protobuf-c messages; see proto-copy.h. */
#include "config.h"

#include "proto-copy.h"

#include <stdint.h>
#include <stdlib.h>

void *
crisp_proto_dup (const ProtobufCMessage *m)
{
  if (m == NULL)
    return NULL;
  size_t len = protobuf_c_message_get_packed_size (m);
  uint8_t *buf = malloc (len ? len : 1);
  if (buf == NULL)
    return NULL;
  protobuf_c_message_pack (m, buf);
  void *copy = protobuf_c_message_unpack (m->descriptor, NULL, len, buf);
  free (buf);
  return copy;
}
