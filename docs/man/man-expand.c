/* man-expand TEMPLATE OUTPUT: a build-time tool that writes a man page from its template, the
 * configuration schema filling in the keys and defaults (crisp_config_man_expand ()). */
#include "config.h"

#include "crisp-config.h"

#include <stdio.h>

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *template = NULL;
  if (argc != 3)
    {
      fprintf (stderr, "usage: man-expand TEMPLATE OUTPUT\n");
      return 2;
    }
  if (!g_file_get_contents (argv[1], &template, NULL, &error))
    {
      fprintf (stderr, "man-expand: %s\n", error->message);
      return 1;
    }
  g_autofree char *page = crisp_config_man_expand (template, &error);
  if (page == NULL || !g_file_set_contents (argv[2], page, -1, &error))
    {
      fprintf (stderr, "man-expand: %s: %s\n", argv[1], error->message);
      return 1;
    }
  return 0;
}
