/* crisp: the CRI server's entry point. */
#include "config.h"

#include <stdio.h>

int
main (int argc, char **argv)
{
  printf ("crisp %s\n", PACKAGE_VERSION);
  return 0;
}
