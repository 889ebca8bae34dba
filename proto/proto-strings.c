/* Walks the wire format of an encoded message alongside its descriptor, looking into every
 * string and nested message; see proto-strings.h. */
#include "config.h"

#include "proto-strings.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 32

static bool
read_varint (const uint8_t **p, const uint8_t *end, uint64_t *out)
{
  uint64_t v = 0;
  for (unsigned shift = 0; *p < end && shift < 64; shift += 7)
    {
      uint8_t b = *(*p)++;
      v |= (uint64_t) (b & 0x7f) << shift;
      if (!(b & 0x80))
        {
          *out = v;
          return true;
        }
    }
  return false;
}

/* Skips a field's value; false when the bytes are not what protobuf-c would have accepted. */
static bool
skip_value (unsigned wire_type, const uint8_t **p, const uint8_t *end, uint64_t *out_len)
{
  uint64_t v = 0;
  size_t room = (size_t) (end - *p);
  switch (wire_type)
    {
    case 0:
      return read_varint (p, end, &v);
    case 1:
      return room >= 8 && (*p += 8, true);
    case 5:
      return room >= 4 && (*p += 4, true);
    case 2:
      if (!read_varint (p, end, &v) || v > (uint64_t) (end - *p))
        return false;
      *out_len = v;
      return true;
    default:
      return false;
    }
}

/* Prepends "name." to what a nested call wrote into path. */
static void
prefix_path (char *path, size_t size, const char *name)
{
  char rest[256];
  snprintf (rest, sizeof rest, "%s", path);
  snprintf (path, size, "%s%s%s", name, *rest ? "." : "", rest);
}

static bool
scan (const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end, int depth,
      char *path, size_t size)
{
  while (p < end)
    {
      uint64_t key, len = 0;
      if (!read_varint (&p, end, &key) || !skip_value ((unsigned) (key & 7), &p, end, &len))
        return false;
      if ((key & 7) != 2)
        continue;
      const uint8_t *value = p;
      p += len;
      const ProtobufCFieldDescriptor *f
          = key >> 3 <= UINT32_MAX
                ? protobuf_c_message_descriptor_get_field (desc, (unsigned) (key >> 3))
                : NULL;
      if (f == NULL)
        continue;
      if (f->type == PROTOBUF_C_TYPE_STRING && memchr (value, 0, (size_t) len) != NULL)
        {
          snprintf (path, size, "%s", f->name);
          return true;
        }
      if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth < MAX_DEPTH
          && scan (f->descriptor, value, value + len, depth + 1, path, size))
        {
          prefix_path (path, size, f->name);
          return true;
        }
    }
  return false;
}

bool
crisp_proto_find_nul (const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      char *path, size_t size)
{
  if (size > 0)
    path[0] = '\0';
  return scan (desc, data, data + len, 0, path, size);
}
