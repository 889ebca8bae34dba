/* Replays a fuzz target's corpus under `make check`, as TAP: every file in FUZZ_CORPUS (or in
 * the directories and files given as arguments) is fed to LLVMFuzzerTestOneInput once. A crash
 * or a sanitizer report fails the run. */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
replay_file (const char *path, int n)
{
  FILE *f = fopen (path, "rbe");
  if (f == NULL)
    {
      printf ("not ok %d - %s: cannot open\n", n, path);
      return 1;
    }
  static uint8_t buf[1 << 20];
  size_t len = fread (buf, 1, sizeof buf, f);
  fclose (f);
  LLVMFuzzerTestOneInput (buf, len);
  printf ("ok %d - %s\n", n, path);
  return 0;
}

static int
collect (const char *path, char ***files, size_t *n)
{
  struct stat st;
  if (stat (path, &st) < 0)
    return -1;
  if (!S_ISDIR (st.st_mode))
    {
      *files = realloc (*files, (*n + 1) * sizeof (char *));
      (*files)[(*n)++] = strdup (path);
      return 0;
    }
  struct dirent **names;
  int k = scandir (path, &names, NULL, alphasort);
  for (int i = 0; i < k; i++)
    {
      if (names[i]->d_name[0] != '.')
        {
          char sub[4096];
          snprintf (sub, sizeof sub, "%s/%s", path, names[i]->d_name);
          collect (sub, files, n);
        }
      free (names[i]);
    }
  free (names);
  return 0;
}

int
main (int argc, char **argv)
{
  char **files = NULL;
  size_t n = 0;
  if (argc > 1)
    for (int i = 1; i < argc; i++)
      collect (argv[i], &files, &n);
  else if (collect (FUZZ_CORPUS, &files, &n) < 0)
    {
      printf ("1..0 # SKIP no corpus at %s\n", FUZZ_CORPUS);
      return 0;
    }
  printf ("1..%zu\n", n);
  int failed = 0;
  for (size_t i = 0; i < n; i++)
    {
      failed |= replay_file (files[i], (int) i + 1);
      free (files[i]);
    }
  free (files);
  return failed;
}
