/* Unit tests for crisp-conmon's CRI log writer (conmon/cri-log.c): record framing, partial
 * lines, long-line splitting, timestamps. */
#include "config.h"

#include "crisp-base.h"
#include "cri-log.h"

#include <glib.h>
#include <string.h>
#include <sys/mman.h>

static const struct timespec T0 = { 1795826490, 35540585 };
#define TS "2026-11-28T00:41:30.035540585Z "

typedef struct
{
  CrispCriLog log;
  int fd;
} Fixture;

static void
fixture_setup (Fixture *f, size_t max_line)
{
  f->fd = memfd_create ("log", MFD_CLOEXEC);
  g_assert_cmpint (f->fd, >=, 0);
  g_assert_cmpint (crisp_cri_log_init (&f->log, dup (f->fd), max_line), ==, 0);
}

/* Everything written so far; the fixture is torn down. */
static char *
fixture_finish (Fixture *f)
{
  crisp_cri_log_destroy (&f->log);
  off_t len = lseek (f->fd, 0, SEEK_END);
  char *buf = g_malloc0 ((size_t) len + 1);
  g_assert_cmpint (pread (f->fd, buf, (size_t) len, 0), ==, len);
  close (f->fd);
  return buf;
}

static void
put (Fixture *f, int stream, const char *s)
{
  g_assert_cmpint (crisp_cri_log_write (&f->log, stream, s, strlen (s), &T0), ==, 0);
}

static void
test_whole_lines (void)
{
  Fixture f;
  fixture_setup (&f, 0);
  put (&f, CRISP_CRI_LOG_STDOUT, "a\n\nbc\n");
  put (&f, CRISP_CRI_LOG_STDERR, "err\n");
  g_autofree char *got = fixture_finish (&f);
  g_assert_cmpstr (got, ==,
                   TS "stdout F a\n" TS "stdout F \n" TS "stdout F bc\n" TS "stderr F err\n");
}

static void
test_partial_lines (void)
{
  Fixture f;
  fixture_setup (&f, 0);
  put (&f, CRISP_CRI_LOG_STDOUT, "hel");
  put (&f, CRISP_CRI_LOG_STDERR, "x");
  put (&f, CRISP_CRI_LOG_STDOUT, "lo\nwor");
  g_assert_true (crisp_cri_log_has_pending (&f.log));
  g_assert_cmpint (crisp_cri_log_flush (&f.log, CRISP_CRI_LOG_STDOUT, &T0), ==, 0);
  put (&f, CRISP_CRI_LOG_STDOUT, "ld\n");
  g_assert_cmpint (crisp_cri_log_flush (&f.log, CRISP_CRI_LOG_STDERR, &T0), ==, 0);
  g_assert_false (crisp_cri_log_has_pending (&f.log));
  g_autofree char *got = fixture_finish (&f);
  g_assert_cmpstr (got, ==,
                   TS "stdout F hello\n" TS "stdout P wor\n" TS "stdout F ld\n" TS "stderr P x\n");
}

static void
test_long_lines_split (void)
{
  Fixture f;
  fixture_setup (&f, 4);
  put (&f, CRISP_CRI_LOG_STDOUT, "abcdefghij\n"); /* 10 = 4 + 4 + 2 */
  put (&f, CRISP_CRI_LOG_STDOUT, "1234\n");       /* exactly the limit: one F */
  put (&f, CRISP_CRI_LOG_STDOUT, "12");           /* buffered, then overflows */
  put (&f, CRISP_CRI_LOG_STDOUT, "345678\n");
  put (&f, CRISP_CRI_LOG_STDOUT, "wxyz"); /* a full buffer waits for what follows */
  put (&f, CRISP_CRI_LOG_STDOUT, "\n");
  g_autofree char *got = fixture_finish (&f);
  g_assert_cmpstr (got, ==,
                   TS "stdout P abcd\n" TS "stdout P efgh\n" TS "stdout F ij\n" TS
                      "stdout F 1234\n" TS "stdout P 1234\n" TS "stdout F 5678\n" TS
                      "stdout F wxyz\n");
}

static void
test_many_records_in_one_write (void)
{
  Fixture f;
  fixture_setup (&f, 0);
  GString *in = g_string_new (NULL), *want = g_string_new (NULL);
  for (int i = 0; i < 100; i++) /* more records than one writev batch holds */
    {
      g_string_append_printf (in, "line %d\n", i);
      g_string_append_printf (want, TS "stdout F line %d\n", i);
    }
  put (&f, CRISP_CRI_LOG_STDOUT, in->str);
  g_autofree char *got = fixture_finish (&f);
  g_assert_cmpstr (got, ==, want->str);
  g_string_free (in, TRUE);
  g_string_free (want, TRUE);
}

static void
test_time_format (void)
{
  char buf[CRISP_CRI_LOG_TIME_LEN + 1];
  const struct
  {
    struct timespec t;
    const char *want;
  } cases[] = {
    { { 0, 0 }, "1970-01-01T00:00:00.000000000Z" },
    { { 951782400, 1 }, "2000-02-29T00:00:00.000000001Z" },
    { { 1709251199, 999999999 }, "2024-02-29T23:59:59.999999999Z" },
    { { 4102444800, 0 }, "2100-01-01T00:00:00.000000000Z" },
  };
  for (size_t i = 0; i < CRISP_N_ELEMENTS (cases); i++)
    {
      crisp_cri_log_format_time (buf, &cases[i].t);
      g_assert_cmpstr (buf, ==, cases[i].want);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/monitor-log/whole-lines", test_whole_lines);
  g_test_add_func ("/monitor-log/partial-lines", test_partial_lines);
  g_test_add_func ("/monitor-log/long-lines-split", test_long_lines_split);
  g_test_add_func ("/monitor-log/many-records", test_many_records_in_one_write);
  g_test_add_func ("/monitor-log/time-format", test_time_format);
  return g_test_run ();
}
