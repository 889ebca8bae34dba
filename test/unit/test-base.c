/* Unit tests for pkg/base: atomic writes, bounded reads, id validation, signal names. */
#include "config.h"

#include "crisp-base.h"
#include "monitor-client.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

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
  /* Unsynced, the same replacement as seen from a running system, leaving no temporary. */
  g_assert_cmpint (crisp_write_file_replace_at (dfd, "rec", "third", 5, 0640), ==, 0);
  g_assert_cmpint (crisp_read_all_at (dfd, "rec", 1024, &buf, &len), ==, 0);
  g_assert_cmpstr (buf, ==, "third");
  free (buf);
  g_assert_cmpint (fstatat (dfd, "rec", &st, 0), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0640);
  g_assert_cmpint (crisp_write_file_replace_at (dfd, "../rec", "x", 1, 0600), ==, -EINVAL);
  unlinkat (dfd, "rec", 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
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

static void
test_path_is_clean (void)
{
  g_assert_true (crisp_path_is_clean ("/var/log/pods/ns_name_uid", true));
  g_assert_true (crisp_path_is_clean ("c/0.log", false));
  g_assert_true (crisp_path_is_clean ("..log/.x", false));
  g_assert_false (crisp_path_is_clean ("var/log", true));
  g_assert_false (crisp_path_is_clean ("/c/0.log", false));
  g_assert_false (crisp_path_is_clean ("/", true));
  g_assert_false (crisp_path_is_clean ("/var//log", true));
  g_assert_false (crisp_path_is_clean ("/var/log/", true));
  g_assert_false (crisp_path_is_clean ("/var/./log", true));
  g_assert_false (crisp_path_is_clean ("/../../etc", true));
  g_assert_false (crisp_path_is_clean ("c/..", false));
  g_assert_false (crisp_path_is_clean ("", false));
  g_assert_false (crisp_path_is_clean (NULL, true));
}

static void
test_open_dir_nofollow (void)
{
  g_autofree char *dir = make_tmpdir ();
  g_autofree char *outside = g_build_filename (dir, "outside", NULL);
  g_autofree char *link = g_build_filename (dir, "link", NULL);
  g_assert_cmpint (mkdir (outside, 0700), ==, 0);
  g_assert_cmpint (symlink (outside, link), ==, 0);

  int fd = -1;
  g_autofree char *deep = g_build_filename (dir, "a", "b", NULL);
  g_assert_cmpint (crisp_open_dir_nofollow (-1, deep, false, 0755, &fd), ==, -ENOENT);
  g_assert_cmpint (crisp_open_dir_nofollow (-1, deep, true, 0755, &fd), ==, 0);
  g_assert_true (g_file_test (deep, G_FILE_TEST_IS_DIR));
  int sub = -1;
  g_assert_cmpint (crisp_open_dir_nofollow (fd, "c/d", true, 0755, &sub), ==, 0);
  g_autofree char *cd = g_build_filename (deep, "c", "d", NULL);
  g_assert_true (g_file_test (cd, G_FILE_TEST_IS_DIR));
  close (sub);
  g_assert_cmpint (crisp_open_dir_nofollow (fd, "../x", true, 0755, &sub), ==, -EINVAL);
  close (fd);

  /* Through the link, whether as the last component or in the middle: nothing is made. */
  g_autofree char *via = g_build_filename (link, "logs", NULL);
  g_assert_cmpint (crisp_open_dir_nofollow (-1, link, true, 0755, &fd), ==, -ELOOP);
  g_assert_cmpint (crisp_open_dir_nofollow (-1, via, true, 0755, &fd), ==, -ELOOP);
  g_autofree char *made = g_build_filename (outside, "logs", NULL);
  g_assert_false (g_file_test (made, G_FILE_TEST_EXISTS));
  g_autofree char *file = g_build_filename (dir, "file", NULL);
  g_assert_true (g_file_set_contents (file, "", 0, NULL));
  g_autofree char *under_file = g_build_filename (file, "x", NULL);
  g_assert_cmpint (crisp_open_dir_nofollow (-1, under_file, true, 0755, &fd), ==, -ENOTDIR);

  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
}

static CrispMonitorExecResult
exec_result (size_t out, size_t err)
{
  CrispMonitorExecResult r = { 0 };
  r.out = g_malloc0 (out + 1);
  r.out_len = out;
  r.err = g_malloc0 (err + 1);
  r.err_len = err;
  memset (r.out, 'o', out);
  memset (r.err, 'e', err);
  return r;
}

static void
test_exec_result_fit (void)
{
  const struct
  {
    size_t out, err, max, want_out, want_err;
    bool truncated;
  } cases[] = {
    { 10, 10, 20, 10, 10, false }, /* exactly the budget */
    { 30, 0, 20, 20, 0, true },    /* one stream alone takes all of it */
    { 3, 30, 20, 3, 17, true },    /* a small stream is kept whole */
    { 30, 4, 20, 16, 4, true },    { 30, 30, 21, 10, 11, true }, /* both over half: shared */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      CrispMonitorExecResult r = exec_result (cases[i].out, cases[i].err);
      crisp_monitor_exec_result_fit (&r, cases[i].max);
      g_assert_cmpuint (r.out_len, ==, cases[i].want_out);
      g_assert_cmpuint (r.err_len, ==, cases[i].want_err);
      g_assert_cmpuint (strlen (r.out), ==, cases[i].want_out);
      g_assert_cmpuint (strlen (r.err), ==, cases[i].want_err);
      g_assert_true (r.truncated == cases[i].truncated);
      g_free (r.out);
      g_free (r.err);
    }
}

/* Every number has one canonical name that reads back as itself; aliases, case, the optional
 * prefix and the real-time offsets read as Docker and containerd read them. */
static void
test_signal_names (void)
{
  for (int sig = 1; sig <= CRISP_SIGNAL_MAX; sig++)
    {
      char name[CRISP_SIGNAL_NAME_MAX];
      g_assert_cmpint (crisp_signal_format (sig, name), ==, 0);
      int back = 0;
      g_assert_cmpint (crisp_signal_parse (name, &back), ==, 0);
      g_assert_cmpint (back, ==, sig);
      if (g_str_has_prefix (name, "SIG"))
        {
          g_autofree char *lower = g_ascii_strdown (name + 3, -1);
          back = 0;
          g_assert_cmpint (crisp_signal_parse (lower, &back), ==, 0);
          g_assert_cmpint (back, ==, sig);
        }
      char number[8];
      g_snprintf (number, sizeof number, "%d", sig);
      g_assert_cmpint (crisp_signal_parse (number, &back), ==, 0);
      g_assert_cmpint (back, ==, sig);
    }
  char name[CRISP_SIGNAL_NAME_MAX];
  g_assert_cmpint (crisp_signal_format (SIGTERM, name), ==, 0);
  g_assert_cmpstr (name, ==, "SIGTERM");
  g_assert_cmpint (crisp_signal_format (49, name), ==, 0);
  g_assert_cmpstr (name, ==, "SIGRTMIN+15");
  g_assert_cmpint (crisp_signal_format (50, name), ==, 0);
  g_assert_cmpstr (name, ==, "SIGRTMAX-14");
  g_assert_cmpint (crisp_signal_format (0, name), ==, -EINVAL);
  g_assert_cmpint (crisp_signal_format (65, name), ==, -EINVAL);

  static const struct
  {
    const char *s;
    int sig;
  } good[] = {
    { "SIGTERM", SIGTERM },
    { "TERM", SIGTERM },
    { "sigterm", SIGTERM },
    { "SigKill", SIGKILL },
    { "SIGIOT", SIGABRT },
    { "CLD", SIGCHLD },
    { "SIGPOLL", SIGIO },
    { "SIGSYS", SIGSYS },
    { "SIGHUP", SIGHUP },
    { "SIGRTMIN", 34 },
    { "SIGRTMIN+0", 34 },
    { "rtmin+1", 35 },
    { "SIGRTMIN+30", 64 },
    { "SIGRTMAX", 64 },
    { "SIGRTMAX-1", 63 },
    { "RTMAX-30", 34 },
    { "SIGRTMAX-14", 50 },
    { "64", 64 },
    { "1", 1 },
    { "09", 9 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      int sig = 0;
      g_assert_cmpint (crisp_signal_parse (good[i].s, &sig), ==, 0);
      g_assert_cmpint (sig, ==, good[i].sig);
    }

  static const char *const bad[] = {
    "",           "0",           "65",          "SIGFOO",      " 9",
    "9 ",         "-9",          "+9",          "9abc",        "SIG",
    "SIGSIGTERM", "SIGRTMIN+99", "SIGRTMIN+31", "SIGRTMAX-31", "SIGRTMIN-1",
    "SIGRTMAX+1", "SIGRTMIN+",   "SIGRTMIN+ 1", "SIGRTMIN+-1", "SIGRTMIN1",
    "RTMAX--1",   "SIGTERM ",    "00000000009", "SIG_TERM",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      int sig = 12345;
      g_assert_cmpint (crisp_signal_parse (bad[i], &sig), ==, -EINVAL);
      g_assert_cmpint (sig, ==, 12345); /* untouched on failure */
    }
  g_assert_cmpint (crisp_signal_parse (NULL, &(int){ 0 }), ==, -EINVAL);
}

/* RSS of a live process as /proc says; a zombie, a reaped child and a wrong start time give
 * -ESRCH, never another process's numbers. */
static void
test_proc_rss (void)
{
  unsigned long long start = crisp_proc_start_time (getpid ());
  uint64_t rss = 0;
  g_assert_cmpint (crisp_proc_rss (getpid (), start, &rss), ==, 0);
  g_assert_cmpuint (rss, >, 0);
  g_assert_cmpuint (rss % 1024, ==, 0);
  g_assert_cmpint (crisp_proc_rss (getpid (), 0, &rss), ==, 0);
  g_assert_cmpint (crisp_proc_rss (getpid (), start + 1, &rss), ==, -ESRCH);
  g_assert_cmpint (crisp_proc_rss (0, 0, &rss), ==, -ESRCH);

  pid_t child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    _exit (0);
  /* A zombie until reaped: its start time reads 0 once it exited. */
  while (crisp_proc_start_time (child) != 0)
    g_usleep (1000);
  rss = 42;
  g_assert_cmpint (crisp_proc_rss (child, 0, &rss), ==, -ESRCH);
  g_assert_cmpuint (rss, ==, 42);
  g_assert_cmpint (waitpid (child, NULL, 0), ==, child);
  g_assert_cmpint (crisp_proc_rss (child, 0, &rss), ==, -ESRCH);
}

typedef struct
{
  char *dir;
  gint stop;
} RenameStorm;

static gpointer
rename_storm (gpointer data)
{
  RenameStorm *st = data;
  g_autofree char *a = g_build_filename (st->dir, "a", NULL);
  g_autofree char *b = g_build_filename (st->dir, "b", NULL);
  for (guint i = 0; !g_atomic_int_get (&st->stop); i++)
    g_rename (i & 1 ? b : a, i & 1 ? a : b);
  return NULL;
}

/* A lookup that climbs ".." inside a root while something else on the machine renames: the
 * kernel answers EAGAIN now and then (a few percent of lookups here), crisp_openat2 retries. */
static void
test_openat2_survives_renames (void)
{
  g_autofree char *dir = g_dir_make_tmp ("crisp-test-openat2-XXXXXX", NULL);
  g_assert_nonnull (dir);
  g_autofree char *etc = g_build_filename (dir, "root", "etc", NULL);
  g_autofree char *passwd = g_build_filename (etc, "passwd", NULL);
  g_autofree char *a = g_build_filename (dir, "a", NULL);
  g_assert_cmpint (g_mkdir_with_parents (etc, 0755), ==, 0);
  g_assert_true (g_file_set_contents (passwd, "", 0, NULL));
  g_assert_true (g_file_set_contents (a, "", 0, NULL));
  g_autofree char *root = g_build_filename (dir, "root", NULL);
  int rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (rootfd, >=, 0);
  RenameStorm st = { dir, 0 };
  GThread *t = g_thread_new ("renames", rename_storm, &st);
  guint failed = 0;
  int last = 0;
  for (int i = 0; i < 50000; i++)
    {
      int fd = crisp_openat2 (rootfd, "/../../etc/../etc/passwd", O_RDONLY | O_CLOEXEC, 0,
                              RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
      if (fd < 0)
        failed++, last = fd;
      else
        close (fd);
    }
  g_atomic_int_set (&st.stop, 1);
  g_thread_join (t);
  close (rootfd);
  /* And what is refused stays refused: a missing file, and an escape that is only a loop. */
  rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (crisp_openat2 (rootfd, "/../nothing", O_RDONLY | O_CLOEXEC, 0, RESOLVE_IN_ROOT),
                   ==, -ENOENT);
  close (rootfd);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
  if (failed)
    g_error ("%u of 50000 lookups failed, the last with %s", failed, g_strerror (-last));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/base/atomic-write", test_atomic_write_replaces_and_reads_back);
  g_test_add_func ("/base/read-all-bounded", test_read_all_is_bounded);
  g_test_add_func ("/base/id-validation", test_id_validation);
  g_test_add_func ("/base/mkdir-p-strlcpy", test_mkdir_p_and_strlcpy);
  g_test_add_func ("/base/path-is-clean", test_path_is_clean);
  g_test_add_func ("/base/open-dir-nofollow", test_open_dir_nofollow);
  g_test_add_func ("/base/exec-result-fit", test_exec_result_fit);
  g_test_add_func ("/base/signal-names", test_signal_names);
  g_test_add_func ("/base/proc-rss", test_proc_rss);
  g_test_add_func ("/base/openat2-survives-renames", test_openat2_survives_renames);
  return g_test_run ();
}
