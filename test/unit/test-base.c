/* Unit tests for pkg/base: atomic writes, bounded reads, id validation. */
#include "config.h"

#include "crisp-base.h"

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

static char *
make_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("crisp-test-base-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static void
test_atomic_write_replaces_and_reads_back (void)
{
  g_autofree char *dir = make_tmpdir ();
  _cleanup_close_ int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (dfd, >=, 0);
  g_assert_cmpint (crisp_write_file_atomic_at (dfd, "rec", "one", 3, 0600), ==, 0);
  g_assert_cmpint (crisp_write_file_atomic_at (dfd, "rec", "second", 6, 0600), ==, 0);
  char *buf = NULL;
  size_t len = 0;
  g_assert_cmpint (crisp_read_all_at (dfd, "rec", 1024, &buf, &len), ==, 0);
  g_assert_cmpstr (buf, ==, "second");
  g_assert_cmpuint (len, ==, 6);
  free (buf);
  struct stat st;
  g_assert_cmpint (fstatat (dfd, "rec", &st, 0), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (crisp_write_file_atomic_at (dfd, "a/b", "x", 1, 0600), ==, -EINVAL);
  unlinkat (dfd, "rec", 0);
  g_rmdir (dir);
}

static void
test_read_all_is_bounded (void)
{
  g_autofree char *dir = make_tmpdir ();
  _cleanup_close_ int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char big[20000];
  memset (big, 'x', sizeof big);
  g_assert_cmpint (crisp_write_file_atomic_at (dfd, "big", big, sizeof big, 0600), ==, 0);
  char *buf = NULL;
  g_assert_cmpint (crisp_read_all_at (dfd, "big", 100, &buf, NULL), ==, -EFBIG);
  g_assert_null (buf);
  g_assert_cmpint (crisp_read_all_at (dfd, "missing", 100, &buf, NULL), ==, -ENOENT);
  unlinkat (dfd, "big", 0);
  g_rmdir (dir);
}

static void
test_id_validation (void)
{
  g_assert_true (crisp_id_is_valid_len ("0123abcdef", 0));
  g_assert_true (crisp_id_is_valid_len ("0123abcdef", 10));
  g_assert_false (crisp_id_is_valid_len ("0123abcdef", 64));
  g_assert_false (crisp_id_is_valid_len ("../etc", 0));
  g_assert_false (crisp_id_is_valid_len ("ABC", 0));
  g_assert_false (crisp_id_is_valid_len ("", 0));
  g_assert_false (crisp_id_is_valid_len (NULL, 0));
}

static void
test_mkdir_p_and_strlcpy (void)
{
  g_autofree char *dir = make_tmpdir ();
  g_autofree char *deep = g_build_filename (dir, "a", "b", "c", NULL);
  g_assert_cmpint (crisp_mkdir_p (deep, 0700), ==, 0);
  g_assert_true (g_file_test (deep, G_FILE_TEST_IS_DIR));
  g_assert_cmpint (crisp_mkdir_p (deep, 0700), ==, 0);
  char small[4];
  g_assert_cmpint (crisp_strlcpy (small, "abc", sizeof small), ==, 0);
  g_assert_cmpint (crisp_strlcpy (small, "abcd", sizeof small), ==, -ENAMETOOLONG);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/base/atomic-write", test_atomic_write_replaces_and_reads_back);
  g_test_add_func ("/base/read-all-bounded", test_read_all_is_bounded);
  g_test_add_func ("/base/id-validation", test_id_validation);
  g_test_add_func ("/base/mkdir-p-strlcpy", test_mkdir_p_and_strlcpy);
  return g_test_run ();
}
