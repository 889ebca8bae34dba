/* A check of encoded CRI messages that protobuf-c does not make: C sees a string only up to
 * its first NUL, so "a\0b" would silently become "a". */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* true when a string field anywhere in the encoded message (nested messages and map entries
 * included) holds a NUL byte; its dotted field path, e.g. "config.metadata.name", is then
 * written to path (truncated to size).  data must be a message that protobuf-c unpacked. */
bool crisp_proto_find_nul (const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                           char *path, size_t size);
