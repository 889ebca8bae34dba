/* Fuzz target: arbitrary bytes as a network namespace's /proc/net/dev (whoever runs a
 * privileged pod names its interfaces), and as the cgroup v2 cpu.max text.  An accepted
 * net/dev gives at most CRISP_NET_DEV_MAX_INTERFACES entries, none of them "lo", each with a
 * name of 1 to 15 bytes of UTF-8 without spaces; a refusal is DATA_LOSS. */
#include "config.h"

#include "crisp-cgroups.h"
#include "crisp-error.h"
#include "pkg/sandbox/net-stats.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_net_dev (const char *text, size_t len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) a = crisp_net_dev_parse (text, len, &error);
  if (a == NULL)
    {
      if (!g_error_matches (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS))
        abort ();
      return;
    }
  if (error != NULL || a->len > CRISP_NET_DEV_MAX_INTERFACES)
    abort ();
  for (guint i = 0; i < a->len; i++)
    {
      const char *name = g_array_index (a, CrispNetDevStats, i).name;
      size_t n = strlen (name);
      if (n == 0 || n > CRISP_NET_DEV_NAME_MAX || g_str_equal (name, "lo")
          || !g_utf8_validate (name, -1, NULL) || strpbrk (name, " \t\n/:") != NULL)
        abort ();
    }
}

static void
check_cpu_max (const char *text, size_t len)
{
  g_autofree char *s = g_strndup (text, len);
  gint64 quota;
  guint64 period;
  if (crisp_cgroups_parse_cpu_max (s, &quota, &period) && quota < -1)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  check_net_dev ((const char *) data, size);
  check_cpu_max ((const char *) data, size < 64 ? size : 64);
  return 0;
}
