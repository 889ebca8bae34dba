/* Linked into the libFuzzer build of every target. Under G_DEBUG=fatal-warnings GLib stops on a
 * warning or critical with SIGTRAP, which libFuzzer does not catch: the run would die without
 * saying so or saving the input. Turning the trap into an abort makes it a crash like any other. */
#include "config.h"

#include <signal.h>
#include <stdlib.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);

static void
on_trap (int sig)
{
  abort ();
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  signal (SIGTRAP, on_trap);
  return 0;
}
