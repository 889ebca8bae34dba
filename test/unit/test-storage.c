/* Unit tests for pkg/storage: layer import into ostree + metadata trees, overlay root
 * filesystems (whiteouts, mtimes, hard links), hostile layers, prune. Needs root for
 * chown/mknod/trusted xattrs/mount; skipped otherwise. */
#include "config.h"

#include "crisp-base.h"
#include "crisp-error.h"
#include "storage.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zstd.h>

#define MTIME 1609459200

typedef struct
{
  char *dir;
  char *outside; /* a directory beside the store that hostile layers aim at */
  CrispStorage *store;
} Fixture;

typedef struct
{
  const char *path;
  mode_t type; /* AE_IFREG ... ; 0 = hard link */
  const char *content_or_target;
  const char *xattr_name, *xattr_value;
} Entry;

static gboolean
need_root (void)
{
  if (geteuid () == 0)
    return TRUE;
  g_test_skip ("needs root (chown, mknod, trusted xattrs, mounts)");
  return FALSE;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("crisp-test-storage-XXXXXX", NULL);
  f->outside = g_build_filename (f->dir, "outside", NULL);
  g_mkdir (f->outside, 0755);
  if (geteuid () != 0)
    return;
  g_autofree char *root = g_build_filename (f->dir, "storage", NULL);
  g_autoptr (GError) error = NULL;
  f->store = crisp_storage_open (root, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  crisp_storage_free (f->store);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->dir);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->outside);
  g_free (f->dir);
}

static GBytes *
make_tar (const Entry *entries, size_t n)
{
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  size_t cap = 1 << 20, used = 0;
  char *buf = g_malloc (cap);
  g_assert_cmpint (archive_write_open_memory (a, buf, cap, &used), ==, ARCHIVE_OK);
  for (size_t i = 0; i < n; i++)
    {
      struct archive_entry *e = archive_entry_new ();
      archive_entry_set_pathname (e, entries[i].path);
      archive_entry_set_mtime (e, MTIME + (time_t) i, 0);
      const char *c = entries[i].content_or_target;
      if (entries[i].type == 0)
        archive_entry_set_hardlink (e, c);
      else
        archive_entry_set_filetype (e, entries[i].type);
      archive_entry_set_perm (e, entries[i].type == AE_IFDIR ? 0755 : 0644);
      archive_entry_set_uid (e, 1000 + (int) i);
      if (entries[i].type == AE_IFREG)
        archive_entry_set_size (e, strlen (c));
      if (entries[i].type == AE_IFLNK)
        archive_entry_set_symlink (e, c);
      if (entries[i].type == AE_IFCHR)
        archive_entry_set_rdev (e, makedev (1, 3));
      if (entries[i].xattr_name)
        archive_entry_xattr_add_entry (e, entries[i].xattr_name, entries[i].xattr_value,
                                       strlen (entries[i].xattr_value));
      g_assert_cmpint (archive_write_header (a, e), ==, ARCHIVE_OK);
      if (entries[i].type == AE_IFREG)
        archive_write_data (a, c, strlen (c));
      archive_entry_free (e);
    }
  archive_write_close (a);
  archive_write_free (a);
  return g_bytes_new_take (buf, used);
}

static char *
digest_of (GBytes *b)
{
  g_autofree char *hex = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, b);
  return g_strconcat ("sha256:", hex, NULL);
}

static GBytes *
gzip_bytes (GBytes *in)
{
  g_autoptr (GZlibCompressor) z = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, -1);
  g_autoptr (GInputStream) src = g_memory_input_stream_new_from_bytes (in);
  g_autoptr (GInputStream) conv = g_converter_input_stream_new (src, G_CONVERTER (z));
  g_autoptr (GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_assert_cmpint (
      g_output_stream_splice (out, conv, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, NULL), >, 0);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static GBytes *
zstd_bytes (GBytes *in)
{
  gsize len;
  const void *data = g_bytes_get_data (in, &len);
  size_t cap = ZSTD_compressBound (len);
  void *out = g_malloc (cap);
  size_t n = ZSTD_compress (out, cap, data, len, 3);
  g_assert_false (ZSTD_isError (n));
  return g_bytes_new_take (out, n);
}

static gboolean
import_bytes (Fixture *f, GBytes *blob, const char *diff_id, GError **error)
{
  _cleanup_close_ int fd = crisp_storage_open_tmpfile (f->store, error);
  g_assert_cmpint (fd, >=, 0);
  gsize len;
  const void *data = g_bytes_get_data (blob, &len);
  g_assert_cmpint (crisp_write_all (fd, data, len), ==, 0);
  lseek (fd, 0, SEEK_SET);
  return crisp_storage_import_layer (f->store, fd, diff_id, NULL, error);
}

/* Imports the entries as a layer (compressed with `comp`: NULL, "gzip", "zstd"). */
static char *
import_entries (Fixture *f, const Entry *entries, size_t n, const char *comp, GError **error)
{
  g_autoptr (GBytes) tar = make_tar (entries, n);
  char *diff_id = digest_of (tar);
  g_autoptr (GBytes) blob = comp == NULL                 ? g_bytes_ref (tar)
                            : g_str_equal (comp, "gzip") ? gzip_bytes (tar)
                                                         : zstd_bytes (tar);
  if (!import_bytes (f, blob, diff_id, error))
    g_clear_pointer (&diff_id, g_free);
  return diff_id;
}

static char *
mount_view (Fixture *f, const char *const *diff_ids)
{
  char *target = g_build_filename (f->dir, "rootfs", NULL);
  g_autofree char *upper = g_build_filename (f->dir, "upper", NULL);
  g_autofree char *work = g_build_filename (f->dir, "work", NULL);
  g_mkdir (target, 0755);
  g_mkdir (upper, 0755);
  g_mkdir (work, 0755);
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_storage_mount_layers (f->store, diff_ids, upper, work, target, &error));
  g_assert_no_error (error);
  return target;
}

static char *
read_in (const char *root, const char *path)
{
  g_autofree char *p = g_build_filename (root, path, NULL);
  char *contents = NULL;
  if (!g_file_get_contents (p, &contents, NULL, NULL))
    return NULL;
  return contents;
}

static void
test_import_and_mount (Fixture *f, gconstpointer data)
{
  if (!need_root ())
    return;
  const Entry base[] = {
    { "./", AE_IFDIR, NULL },
    { "bin/", AE_IFDIR, NULL },
    { "bin/tool", AE_IFREG, "#!/bin/sh\necho hi\n", "user.note", "v" },
    { "bin/same", AE_IFREG, "#!/bin/sh\necho hi\n" },
    { "bin/link", 0, "bin/tool" },
    { "bin/sym", AE_IFLNK, "tool" },
    { "data/", AE_IFDIR, NULL },
    { "data/gone", AE_IFREG, "old" },
    { "opaque/", AE_IFDIR, NULL },
    { "opaque/old", AE_IFREG, "old" },
    { "dev/null", AE_IFCHR, NULL },
    { "evil", AE_IFREG, "x", "trusted.overlay.redirect", "/etc/shadow" },
  };
  const Entry top[] = {
    { "data/.wh.gone", AE_IFREG, "" },
    { "opaque/.wh..wh..opq", AE_IFREG, "" },
    { "opaque/new", AE_IFREG, "new" },
  };
  g_autoptr (GError) error = NULL;
  g_autofree char *l1 = import_entries (f, base, G_N_ELEMENTS (base), "gzip", &error);
  g_assert_no_error (error);
  g_autofree char *l2 = import_entries (f, top, G_N_ELEMENTS (top), "zstd", &error);
  g_assert_no_error (error);
  g_assert_true (crisp_storage_has_layer (f->store, l1));
  const char *layers[] = { l1, l2, NULL };
  g_autofree char *root = mount_view (f, layers);
  g_autofree char *tool = read_in (root, "bin/tool");
  g_assert_cmpstr (tool, ==, "#!/bin/sh\necho hi\n");
  struct stat st, st2, st3;
  g_autofree char *tp = g_build_filename (root, "bin/tool", NULL);
  g_autofree char *sp = g_build_filename (root, "bin/same", NULL);
  g_autofree char *lp = g_build_filename (root, "bin/link", NULL);
  g_assert_cmpint (stat (tp, &st), ==, 0);
  g_assert_cmpint (stat (sp, &st2), ==, 0);
  g_assert_cmpint (stat (lp, &st3), ==, 0);
  g_assert_cmpint (st.st_mtime, ==, MTIME + 2); /* mtimes kept */
  g_assert_cmpint (st.st_uid, ==, 1002);
  g_assert_cmpint (st.st_ino, !=, st2.st_ino); /* same content, distinct files */
  g_assert_cmpint (st.st_ino, ==, st3.st_ino); /* the layer's hard link */
  char v[8] = "";
  g_assert_cmpint (getxattr (tp, "user.note", v, sizeof v), ==, 1);
  g_autofree char *dp = g_build_filename (root, "bin", NULL);
  g_assert_cmpint (stat (dp, &st), ==, 0);
  g_assert_cmpint (st.st_mtime, ==, MTIME + 1);
  g_autofree char *gone = g_build_filename (root, "data/gone", NULL);
  g_assert_false (g_file_test (gone, G_FILE_TEST_EXISTS)); /* whiteout */
  g_autofree char *oldp = g_build_filename (root, "opaque/old", NULL);
  g_assert_false (g_file_test (oldp, G_FILE_TEST_EXISTS)); /* opaque */
  g_autofree char *newc = read_in (root, "opaque/new");
  g_assert_cmpstr (newc, ==, "new");
  g_autofree char *devp = g_build_filename (root, "dev/null", NULL);
  g_assert_cmpint (lstat (devp, &st), ==, 0);
  g_assert_true (S_ISCHR (st.st_mode));
  g_autofree char *evil = read_in (root, "evil"); /* image's redirect xattr stripped */
  g_assert_cmpstr (evil, ==, "x");
  /* a write copies up and leaves the stored object alone */
  g_assert_true (g_file_set_contents (sp, "changed", -1, NULL));
  g_autofree char *again = read_in (root, "bin/tool");
  g_assert_cmpstr (again, ==, "#!/bin/sh\necho hi\n");
  g_assert_true (crisp_storage_unmount (root, &error));
}

static void
test_diff_id_mismatch (Fixture *f, gconstpointer data)
{
  if (!need_root ())
    return;
  const Entry e[] = { { "a", AE_IFREG, "a" } };
  g_autoptr (GBytes) tar = make_tar (e, 1);
  const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
  g_autoptr (GError) error = NULL;
  g_assert_false (import_bytes (f, tar, wrong, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
  g_assert_nonnull (strstr (error->message, wrong));
  g_assert_false (crisp_storage_has_layer (f->store, wrong));
}

static void
expect_rejected (Fixture *f, const Entry *e, size_t n, const char *what)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *d = import_entries (f, e, n, NULL, &error);
  if (d != NULL)
    g_error ("%s: accepted", what);
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_autoptr (GDir) dir = g_dir_open (f->outside, 0, NULL);
  g_assert_null (g_dir_read_name (dir)); /* nothing written outside */
}

static void
test_hostile_layers (Fixture *f, gconstpointer data)
{
  if (!need_root ())
    return;
  g_autofree char *abs_out = g_build_filename (f->outside, "pwned", NULL);
  const Entry dotdot[] = { { "../../../outside/pwned", AE_IFREG, "x" } };
  expect_rejected (f, dotdot, 1, "..");
  const Entry through_link[] = { { "esc", AE_IFLNK, f->outside }, { "esc/pwned", AE_IFREG, "x" } };
  expect_rejected (f, through_link, 2, "write through a symlink");
  const Entry link_dir[] = { { "esc", AE_IFLNK, f->outside }, { "esc/sub/", AE_IFDIR, NULL } };
  expect_rejected (f, link_dir, 2, "mkdir through a symlink");
  const Entry hard_out[] = { { "pw", 0, "/etc/passwd" } };
  expect_rejected (f, hard_out, 1, "hard link outside");
  const Entry hard_up[] = { { "pw", 0, "../etc/passwd" } };
  expect_rejected (f, hard_up, 1, "hard link ..");
  /* absolute paths are made relative: confined, accepted */
  const Entry absolute[] = { { abs_out, AE_IFREG, "x" } };
  g_autoptr (GError) error = NULL;
  g_autofree char *d = import_entries (f, absolute, 1, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (g_file_test (abs_out, G_FILE_TEST_EXISTS));
  const char *layers[] = { d, NULL };
  g_autofree char *root = mount_view (f, layers);
  g_autofree char *inside = read_in (root, abs_out);
  g_assert_cmpstr (inside, ==, "x");
  g_assert_true (crisp_storage_unmount (root, &error));
}

static void
test_truncated_and_garbage (Fixture *f, gconstpointer data)
{
  if (!need_root ())
    return;
  const Entry e[] = { { "big", AE_IFREG, "0123456789abcdef" } };
  g_autoptr (GBytes) tar = make_tar (e, 1);
  g_autoptr (GBytes) cut = g_bytes_new_from_bytes (tar, 0, 520); /* header + a few bytes */
  g_autofree char *dcut = digest_of (cut);
  g_autoptr (GError) error = NULL;
  g_assert_false (import_bytes (f, cut, dcut, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_autoptr (GBytes) junk = g_bytes_new_static ("this is not a tar archive at all", 32);
  g_autofree char *dj = digest_of (junk);
  g_assert_false (import_bytes (f, junk, dj, &error));
  g_assert_nonnull (error);
}

/* Runs a prune under the repo lock; returns how many layers went. */
static guint
prune (Fixture *f, GHashTable *keep, gboolean every_object)
{
  g_autoptr (GError) error = NULL;
  guint removed = 0;
  crisp_storage_lock (f->store);
  gboolean ok = crisp_storage_prune_locked (f->store, keep, every_object, &removed, &error);
  crisp_storage_unlock (f->store);
  g_assert_no_error (error);
  g_assert_true (ok);
  return removed;
}

static void
test_prune (Fixture *f, gconstpointer data)
{
  if (!need_root ())
    return;
  const Entry a[] = { { "a", AE_IFREG, "unique content of a" } };
  const Entry b[] = { { "b", AE_IFREG, "unique content of b" } };
  g_autoptr (GError) error = NULL;
  g_autofree char *la = import_entries (f, a, 1, NULL, &error);
  g_autofree char *lb = import_entries (f, b, 1, NULL, &error);
  g_assert_no_error (error);
  guint64 before_bytes, before_inodes, after_bytes, after_inodes;
  g_assert_true (crisp_storage_usage (f->store, &before_bytes, &before_inodes, &error));
  g_autoptr (GHashTable) keep = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_add (keep, la);
  g_assert_cmpuint (prune (f, keep, TRUE), ==, 1);
  g_assert_true (crisp_storage_has_layer (f->store, la));
  g_assert_false (crisp_storage_has_layer (f->store, lb));
  g_assert_true (crisp_storage_usage (f->store, &after_bytes, &after_inodes, &error));
  g_assert_cmpuint (after_inodes, <, before_inodes);
}

/* Without every_object, only the removed layer's own objects go: a full prune afterwards
 * finds nothing more, and an object the kept layer shares with it stays. */
static void
test_prune_removed_objects (Fixture *f, gconstpointer data)
{
  if (!need_root ())
    return;
  const Entry a[] = { { "a", AE_IFREG, "only in a" }, { "s", AE_IFREG, "in both a and b" } };
  const Entry b[] = { { "b", AE_IFREG, "only in b" }, { "s", AE_IFREG, "in both a and b" } };
  g_autoptr (GError) error = NULL;
  g_autofree char *la = import_entries (f, a, G_N_ELEMENTS (a), NULL, &error);
  g_autofree char *lb = import_entries (f, b, G_N_ELEMENTS (b), NULL, &error);
  g_assert_no_error (error);
  guint64 before_bytes, before_inodes, mid_bytes, mid_inodes, after_bytes, after_inodes;
  g_assert_true (crisp_storage_usage (f->store, &before_bytes, &before_inodes, &error));
  g_autoptr (GHashTable) keep = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_add (keep, la);
  g_assert_cmpuint (prune (f, keep, FALSE), ==, 1);
  g_assert_true (crisp_storage_has_layer (f->store, la));
  g_assert_false (crisp_storage_has_layer (f->store, lb));
  crisp_storage_settle (f->store);
  g_assert_true (crisp_storage_usage (f->store, &mid_bytes, &mid_inodes, &error));
  g_assert_cmpuint (mid_inodes, <, before_inodes);
  g_assert_cmpuint (prune (f, keep, TRUE), ==, 0);
  crisp_storage_settle (f->store);
  g_assert_true (crisp_storage_usage (f->store, &after_bytes, &after_inodes, &error));
  g_assert_cmpuint (after_inodes, ==, mid_inodes);
  /* the kept layer is whole: its root filesystem still shows the shared file */
  g_autofree char *target = g_build_filename (f->dir, "mnt", NULL);
  g_assert_cmpint (g_mkdir (target, 0755), ==, 0);
  const char *layers[] = { la, NULL };
  g_assert_true (crisp_storage_mount_layers (f->store, layers, NULL, NULL, target, &error));
  g_assert_no_error (error);
  g_autofree char *shared = g_build_filename (target, "s", NULL);
  g_autofree char *content = NULL;
  gboolean read = g_file_get_contents (shared, &content, NULL, &error);
  g_assert_true (crisp_storage_unmount (target, NULL));
  g_assert_no_error (error);
  g_assert_true (read);
  g_assert_cmpstr (content, ==, "in both a and b");
}

static void
test_probe_overlay (Fixture *f, gconstpointer data)
{
  if (!need_root ())
    return;
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_storage_probe_overlay (f->outside, &error));
  g_assert_no_error (error);
  /* Nothing is left: neither the directory nor a mount. */
  g_autoptr (GDir) d = g_dir_open (f->outside, 0, NULL);
  g_assert_null (g_dir_read_name (d));
  g_autofree char *mounts = NULL;
  g_assert_true (g_file_get_contents ("/proc/self/mountinfo", &mounts, NULL, NULL));
  g_assert_null (strstr (mounts, f->outside));
  g_autofree char *missing = g_build_filename (f->outside, "missing", NULL);
  g_assert_false (crisp_storage_probe_overlay (missing, &error));
  g_assert_nonnull (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn)                                                                              \
  g_test_add ("/storage/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("import-and-mount", test_import_and_mount);
  ADD ("diff-id-mismatch", test_diff_id_mismatch);
  ADD ("hostile-layers", test_hostile_layers);
  ADD ("truncated-and-garbage", test_truncated_and_garbage);
  ADD ("prune", test_prune);
  ADD ("prune-removed-objects", test_prune_removed_objects);
  ADD ("probe-overlay", test_probe_overlay);
  return g_test_run ();
}
