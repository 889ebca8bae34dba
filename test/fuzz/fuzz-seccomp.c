/* libFuzzer target for the Localhost seccomp profile parser (untrusted JSON). */
#include "config.h"

#include "crisp-seccomp.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = crisp_seccomp_profile_parse ((const char *) data, size, &error);
  /* A parse either yields a profile or says why not, never both, never neither. */
  g_assert ((node == NULL) != (error == NULL));
  return 0;
}
