/* Deep copies of protobuf-c messages, for records and replies that must own what they hold. */
#pragma once

#include <protobuf-c/protobuf-c.h>

/* A copy of m through the wire format (the simplest correct deep copy for protobuf-c),
 * allocated as protobuf_c_message_unpack does: free it with protobuf_c_message_free_unpacked.
 * NULL for NULL, or when memory runs out. */
void *crisp_proto_dup (const ProtobufCMessage *m);
