/* A sealed in-memory copy of runc, made once and handed to every monitor.
 *
 * Each `runc init` (the process that becomes a container's init, in `runc create`, `runc exec`
 * and `runc restore`) first makes sure it does not run from a file the container could write
 * (CVE-2019-5736): runc 1.1 bind-mounts its own binary read-only on a temporary file in the
 * host's mount table (a mount, a remount and an unmount that every watcher of mountinfo sees),
 * or copies all of it into a memfd, and then executes itself again from there.  runc skips
 * all of that when it already runs from a memfd sealed against writing, shrinking and growing
 * (and against further seals): it counts that as its own copy.  So crisp makes one such copy
 * per runtime binary and the monitors run runc from it.  It costs the binary's size once (in
 * crisp's memory cgroup, outside any container's), where runc's own copy costs it per init.
 *
 * A copy is made again when the file at the runtime's path is another one (device, inode,
 * size, modification or change time differ), as after a package upgrade; monitors keep the
 * copy they were given, so one container is created and deleted by the same runc. */
#include "config.h"

#include "container-private.h"
#include "crisp-base.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

/* runc's test of its own copy wants exactly these seals. */
#define COPY_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
/* A runtime binary is a few MiB; anything far larger is not one to keep in memory. */
#define COPY_MAX_SIZE (256 << 20)

typedef struct
{
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
  int fd;
} Copy;

struct _CrispRuntimeCopies
{
  GMutex lock;
  GHashTable *by_path; /* path -> Copy */
};

static void
copy_free (gpointer data)
{
  Copy *c = data;
  close (c->fd);
  g_free (c);
}

CrispRuntimeCopies *
crisp_runtime_copies_new (void)
{
  CrispRuntimeCopies *rc = g_new0 (CrispRuntimeCopies, 1);
  g_mutex_init (&rc->lock);
  rc->by_path = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, copy_free);
  return rc;
}

void
crisp_runtime_copies_free (CrispRuntimeCopies *rc)
{
  if (rc == NULL)
    return;
  g_hash_table_destroy (rc->by_path);
  g_mutex_clear (&rc->lock);
  g_free (rc);
}

static gboolean
same_file (const struct stat *st, const Copy *c)
{
  return st->st_dev == c->dev && st->st_ino == c->ino && st->st_size == c->size
         && st->st_mtim.tv_sec == c->mtime.tv_sec && st->st_mtim.tv_nsec == c->mtime.tv_nsec
         && st->st_ctim.tv_sec == c->ctime.tv_sec && st->st_ctim.tv_nsec == c->ctime.tv_nsec;
}

/* Copies all of src (size bytes) into dst. */
static int
copy_all (int dst, int src, off_t size)
{
  off_t off = 0;
  while (off < size)
    {
      ssize_t n = sendfile (dst, src, &off, (size_t) (size - off));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      if (n == 0)
        return -EIO; /* the file got shorter: it is being replaced */
    }
  return 0;
}

/* A sealed copy of the executable at path, with its identity; -errno, -ENOEXEC when it is not
 * an ELF file (a script run from a descriptor closed at exec cannot find itself). */
static int
make_copy (const char *path, Copy *out)
{
  _cleanup_close_ int src = open (path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat (src, &st) < 0)
    return -errno;
  if (!S_ISREG (st.st_mode))
    return -EINVAL;
  if (st.st_size > COPY_MAX_SIZE)
    return -EFBIG;
  char magic[4];
  if (pread (src, magic, sizeof magic, 0) != (ssize_t) sizeof magic
      || memcmp (magic, "\177ELF", sizeof magic) != 0)
    return -ENOEXEC;
  g_autofree char *name = g_path_get_basename (path);
  _cleanup_close_ int copy = memfd_create (name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (copy < 0)
    return -errno;
  int r = copy_all (copy, src, st.st_size);
  if (r < 0)
    return r;
  /* Changed while it was read: the next create tries again. */
  *out = (Copy){ st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim, -1 };
  struct stat after;
  if (fstat (src, &after) < 0)
    return -errno;
  if (!same_file (&after, out))
    return -EAGAIN;
  if (fcntl (copy, F_ADD_SEALS, COPY_SEALS) < 0)
    return -errno;
  /* At 3 or above: a daemon started with 0-2 closed must not hand it out as stdio. */
  if (copy < 3)
    {
      int high = fcntl (copy, F_DUPFD_CLOEXEC, 3);
      if (high < 0)
        return -errno;
      close (copy);
      copy = high;
    }
  out->fd = take_fd (&copy);
  return 0;
}

int
crisp_runtime_copies_get (CrispRuntimeCopies *rc, const char *path)
{
  struct stat st;
  if (stat (path, &st) < 0)
    return -errno;
  /* Held while a copy is made (a few milliseconds, once per binary): creates that need it
   * wait for it rather than each making their own. */
  g_mutex_lock (&rc->lock);
  Copy *c = g_hash_table_lookup (rc->by_path, path);
  int r = 0;
  if (c == NULL || !same_file (&st, c))
    {
      Copy fresh;
      r = make_copy (path, &fresh);
      if (r == 0)
        g_hash_table_replace (rc->by_path, g_strdup (path), c = g_memdup2 (&fresh, sizeof fresh));
    }
  if (r == 0 && (r = fcntl (c->fd, F_DUPFD_CLOEXEC, 3)) < 0)
    r = -errno;
  g_mutex_unlock (&rc->lock);
  return r;
}
