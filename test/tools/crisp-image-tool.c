/* Test helper: mounts an image's root filesystem from a (stopped) crisp's storage, so
 * integration tests can look at what a container would see before the container
 * service exists.  crisp-image-tool mount STORAGE_ROOT IMAGE TARGET | umount TARGET */
#include "config.h"

#include "pkg/image/image-service.h"

#include <stdio.h>

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  if (argc == 5 && g_str_equal (argv[1], "mount"))
    {
      g_autoptr (CrispImageService) svc = crisp_image_service_new (argv[2], NULL, 1, &error);
      if (svc != NULL
          && crisp_image_service_mount_rootfs (svc, argv[3], NULL, NULL, argv[4], &error))
        return 0;
    }
  else if (argc == 3 && g_str_equal (argv[1], "umount"))
    {
      if (crisp_image_service_unmount_rootfs (argv[2], &error))
        return 0;
    }
  else
    {
      fprintf (stderr, "usage: %s mount STORAGE IMAGE TARGET | umount TARGET\n", argv[0]);
      return 2;
    }
  fprintf (stderr, "%s\n", error->message);
  return 1;
}
