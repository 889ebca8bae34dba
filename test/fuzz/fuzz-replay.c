/* Corpus replay for a libFuzzer target under `make check`: runs every file of
 * test/fuzz/corpus/<target> (or the files named on the command line) through
 * LLVMFuzzerTestOneInput and reports TAP.  Built without -fsanitize=fuzzer. */
#include "config.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
replay_file (const char *path, int n)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  if (!g_file_get_contents (path, &data, &len, &error))
    {
      printf ("not ok %d - %s: %s\n", n, path, error->message);
      return 1;
    }
  LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
  printf ("ok %d - %s\n", n, path);
  return 0;
}

int
main (int argc, char **argv)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *base = g_path_get_basename (argv[0]);
  const char *target = g_str_has_prefix (base, "fuzz-") ? base + 5 : base;
  g_autofree char *dir = g_build_filename (TEST_SRCDIR, "fuzz", "corpus", target, NULL);
  for (int i = 1; i < argc; i++)
    g_ptr_array_add (files, g_strdup (argv[i]));
  g_autoptr (GDir) d = argc > 1 ? NULL : g_dir_open (dir, 0, NULL);
  for (const char *name; d != NULL && (name = g_dir_read_name (d)) != NULL;)
    g_ptr_array_add (files, g_build_filename (dir, name, NULL));
  if (files->len == 0)
    {
      printf ("1..0 # SKIP no corpus in %s\n", dir);
      return 0;
    }
  printf ("1..%u\n", files->len);
  int failed = 0;
  for (guint i = 0; i < files->len; i++)
    failed += replay_file (files->pdata[i], (int) i + 1);
  return failed ? 1 : 0;
}
