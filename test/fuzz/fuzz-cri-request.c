/* Fuzz target: CRI request decoding. The first byte picks a method of RuntimeService or
 * ImageService; the rest is decoded as that method's request, and what decodes is packed
 * scanned for NUL bytes in strings, packed again and freed, the way crisp's transport treats
 * every incoming call. */
#include "config.h"

#include "proto/proto-strings.h"
#include "proto/runtime.pb-c.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const ProtobufCServiceDescriptor *services[]
      = { &runtime__v1__runtime_service__descriptor, &runtime__v1__image_service__descriptor };
  unsigned total = services[0]->n_methods + services[1]->n_methods;
  unsigned pick = data[0] % total;
  const ProtobufCServiceDescriptor *svc = services[0];
  if (pick >= svc->n_methods)
    {
      pick -= svc->n_methods;
      svc = services[1];
    }
  ProtobufCMessage *msg
      = protobuf_c_message_unpack (svc->methods[pick].input, NULL, size - 1, data + 1);
  if (msg == NULL)
    return 0;
  char path[256];
  crisp_proto_find_nul (svc->methods[pick].input, data + 1, size - 1, path, sizeof path);
  size_t len = protobuf_c_message_get_packed_size (msg);
  uint8_t *out = malloc (len ? len : 1);
  if (out != NULL && protobuf_c_message_pack (msg, out) != len)
    abort ();
  free (out);
  protobuf_c_message_free_unpacked (msg, NULL);
  return 0;
}
