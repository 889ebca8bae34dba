/* Fuzz target: the registry documents crisp parses from the network or disk. The first
 * byte picks the parser (manifest/index, image config, WWW-Authenticate, token answer,
 * image reference, image record); the rest is its input. */
#include "config.h"

#include "pkg/image/auth.h"
#include "pkg/image/image-store.h"
#include "pkg/image/manifest.h"
#include "pkg/image/reference.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
parse_manifest (const char *text, size_t len)
{
  g_autoptr (CrispManifest) m = crisp_manifest_parse (text, len, NULL, NULL);
  if (m != NULL && m->kind == CRISP_MANIFEST_INDEX)
    crisp_manifest_select_platform (m, "linux", "amd64", NULL, NULL);
}

static void
parse_config (const char *text, size_t len)
{
  g_autoptr (CrispImageConfig) c = crisp_image_config_parse (text, len, NULL);
  if (c == NULL)
    return;
  gint64 uid;
  g_autofree char *name = NULL;
  crisp_image_user_split (c->user, &uid, &name);
}

static void
parse_reference (const char *text)
{
  g_autoptr (CrispImageRef) ref = crisp_image_ref_parse (text, NULL);
  if (ref == NULL)
    return;
  g_autofree char *s = crisp_image_ref_to_string (ref);
  g_autoptr (CrispImageRef) again = crisp_image_ref_parse (s, NULL);
  g_assert (again != NULL); /* a normalised reference parses back */
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  g_autofree char *text = g_strndup ((const char *) data + 1, size - 1);
  size_t len = strlen (text);
  switch (data[0] % 6)
    {
    case 0:
      parse_manifest (text, len);
      break;
    case 1:
      parse_config (text, len);
      break;
    case 2:
      crisp_challenge_free (crisp_challenge_parse (text, NULL));
      break;
    case 3:
      g_free (crisp_token_response_parse (text, len, NULL));
      break;
    case 4:
      parse_reference (text);
      break;
    default:
      crisp_image_free (crisp_image_from_json (text, len, NULL));
      break;
    }
  return 0;
}
