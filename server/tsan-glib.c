/* ThreadSanitizer builds only: GLib's GMutex and GCond are futexes TSan cannot see, so every
 * lock taken in crisp would look like no lock at all. These definitions take the place of
 * GLib's for calls from crisp's own code (GMutexLocker's inline functions included), call
 * GLib's, and tell TSan what was acquired and released. */
#include "config.h"

#include "crisp-tsan.h"

#include <dlfcn.h>
#include <glib.h>

static void *
real (const char *name)
{
  void *fn = dlsym (RTLD_NEXT, name);
  if (fn == NULL)
    g_error ("tsan-glib: no '%s' in GLib", name);
  return fn;
}

void
g_mutex_lock (GMutex *m)
{
  static void (*fn) (GMutex *);
  if (fn == NULL)
    fn = real ("g_mutex_lock");
  fn (m);
  CRISP_TSAN_ACQUIRE (m);
}

gboolean
g_mutex_trylock (GMutex *m)
{
  static gboolean (*fn) (GMutex *);
  if (fn == NULL)
    fn = real ("g_mutex_trylock");
  gboolean locked = fn (m);
  if (locked)
    CRISP_TSAN_ACQUIRE (m);
  return locked;
}

void
g_mutex_unlock (GMutex *m)
{
  static void (*fn) (GMutex *);
  if (fn == NULL)
    fn = real ("g_mutex_unlock");
  CRISP_TSAN_RELEASE (m);
  fn (m);
}

gboolean
g_cond_wait_until (GCond *c, GMutex *m, gint64 end_time)
{
  static gboolean (*fn) (GCond *, GMutex *, gint64);
  if (fn == NULL)
    fn = real ("g_cond_wait_until");
  CRISP_TSAN_RELEASE (m);
  gboolean signalled = fn (c, m, end_time);
  CRISP_TSAN_ACQUIRE (m);
  return signalled;
}

void
g_cond_wait (GCond *c, GMutex *m)
{
  static void (*fn) (GCond *, GMutex *);
  if (fn == NULL)
    fn = real ("g_cond_wait");
  CRISP_TSAN_RELEASE (m);
  fn (c, m);
  CRISP_TSAN_ACQUIRE (m);
}
