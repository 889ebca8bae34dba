/* File and descriptor helpers of the libc layer. */
#include "config.h"

#include "crisp-base.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

int
crisp_write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -errno;
        }
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

int
crisp_read_all_at (int dirfd, const char *name, size_t max, char **out_buf, size_t *out_len)
{
  _cleanup_close_ int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -errno;
  size_t cap = 4096, len = 0;
  _cleanup_free_ char *buf = malloc (cap);
  if (buf == NULL)
    return -ENOMEM;
  for (;;)
    {
      if (len + 1 >= cap)
        {
          if (cap > max)
            return -EFBIG;
          char *nb = realloc (buf, cap * 2);
          if (nb == NULL)
            return -ENOMEM;
          buf = nb;
          cap *= 2;
        }
      ssize_t n = read (fd, buf + len, cap - len - 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      if (n == 0)
        break;
      len += (size_t) n;
      if (len > max)
        return -EFBIG;
    }
  buf[len] = '\0';
  *out_buf = TAKE_PTR (buf);
  if (out_len)
    *out_len = len;
  return 0;
}

static int
write_replace (int dirfd, const char *name, const void *buf, size_t len, mode_t mode, bool durable)
{
  /* Named by thread: two threads saving the same record must never share a temporary file,
   * or each could rename the other's half-written bytes into place. */
  char tmp[NAME_MAX + 1];
  if (strchr (name, '/') != NULL
      || snprintf (tmp, sizeof tmp, ".%s.tmp%ld", name, (long) gettid ()) >= (int) sizeof tmp)
    return -EINVAL;
  _cleanup_close_ int fd
      = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return -errno;
  int r = crisp_write_all (fd, buf, len);
  if (r == 0 && durable && fsync (fd) < 0)
    r = -errno;
  if (r == 0 && renameat (dirfd, tmp, dirfd, name) < 0)
    r = -errno;
  if (r < 0)
    {
      unlinkat (dirfd, tmp, 0);
      return r;
    }
  if (durable)
    fsync (dirfd);
  return 0;
}

int
crisp_write_file_atomic_at (int dirfd, const char *name, const void *buf, size_t len, mode_t mode)
{
  return write_replace (dirfd, name, buf, len, mode, true);
}

int
crisp_write_file_replace_at (int dirfd, const char *name, const void *buf, size_t len, mode_t mode)
{
  return write_replace (dirfd, name, buf, len, mode, false);
}

int
crisp_mkdir_p (const char *path, mode_t mode)
{
  char buf[PATH_MAX];
  int r = crisp_strlcpy (buf, path, sizeof buf);
  if (r < 0)
    return r;
  for (char *p = buf + 1; *p; p++)
    {
      if (*p != '/')
        continue;
      *p = '\0';
      if (mkdir (buf, mode) < 0 && errno != EEXIST)
        return -errno;
      *p = '/';
    }
  if (mkdir (buf, mode) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

bool
crisp_path_is_clean (const char *path, bool absolute)
{
  if (path == NULL || *path == '\0' || (path[0] == '/') != absolute)
    return false;
  const char *p = absolute ? path + 1 : path;
  for (;;)
    {
      size_t n = strcspn (p, "/");
      if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
        return false;
      if (p[n] == '\0')
        return true;
      p += n + 1;
    }
}

/* One step of the walk: the directory name in dirfd, made first when create. */
static int
open_component (int dirfd, const char *name, bool create, mode_t mode)
{
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = openat (dirfd, name, flags);
  if (fd < 0 && errno == ENOENT && create)
    {
      if (mkdirat (dirfd, name, mode) < 0 && errno != EEXIST)
        return -errno;
      fd = openat (dirfd, name, flags);
    }
  if (fd >= 0)
    return fd;
  /* O_NOFOLLOW|O_DIRECTORY on a symlink reports ELOOP or ENOTDIR: tell them apart. */
  int err = errno;
  struct stat st;
  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (st.st_mode))
    return -ELOOP;
  return -err;
}

int
crisp_open_dir_nofollow (int dirfd, const char *path, bool create, mode_t mode, int *out_fd)
{
  char buf[PATH_MAX];
  if (!crisp_path_is_clean (path, path != NULL && path[0] == '/'))
    return -EINVAL;
  int r = crisp_strlcpy (buf, path, sizeof buf);
  if (r < 0)
    return r;
  _cleanup_close_ int fd = buf[0] == '/' ? open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                         : fcntl (dirfd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    return -errno;
  char *save = NULL;
  for (char *name = strtok_r (buf, "/", &save); name; name = strtok_r (NULL, "/", &save))
    {
      int next = open_component (fd, name, create, mode);
      if (next < 0)
        return next;
      close (fd);
      fd = next;
    }
  *out_fd = take_fd (&fd);
  return 0;
}

int
crisp_fd_set_cloexec (int fd, bool on)
{
  int flags = fcntl (fd, F_GETFD);
  if (flags < 0)
    return -errno;
  flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  return fcntl (fd, F_SETFD, flags) < 0 ? -errno : 0;
}

int
crisp_fd_set_nonblock (int fd, bool on)
{
  int flags = fcntl (fd, F_GETFL);
  if (flags < 0)
    return -errno;
  flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  return fcntl (fd, F_SETFL, flags) < 0 ? -errno : 0;
}

int
crisp_strlcpy (char *dst, const char *src, size_t n)
{
  size_t len = strlen (src);
  if (len >= n)
    return -ENAMETOOLONG;
  memcpy (dst, src, len + 1);
  return 0;
}

bool
crisp_id_is_valid_len (const char *s, size_t len)
{
  if (s == NULL || *s == '\0')
    return false;
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')) || n >= 64)
      return false;
  return len == 0 || n == len;
}

/* Each retry is a fresh lookup; a thousand of them fail only under a rename storm that never
 * pauses, and then the caller reports EAGAIN. */
#define OPENAT2_TRIES 1000

int
crisp_openat2 (int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
  struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
  for (int i = 0; i < OPENAT2_TRIES; i++)
    {
      int fd = (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
      if (fd >= 0)
        return fd;
      if (errno != EAGAIN && errno != EINTR)
        return -errno;
    }
  return -EAGAIN;
}
