/* Unit tests for the built man pages (docs/man/): crisp.conf(5) has every group and key that
 * `crisp config` prints, crisp(8) every command and option that `crisp --help` lists, and groff
 * renders both without a warning. */
#include "config.h"

#include <glib.h>
#include <string.h>

static char *
builddir_path (const char *name)
{
  const char *builddir = g_getenv ("CRISP_BUILDDIR");
  g_assert_nonnull (builddir);
  return g_build_filename (builddir, name, NULL);
}

static char *
read_page (const char *name)
{
  g_autofree char *path = builddir_path (name);
  g_autoptr (GError) error = NULL;
  char *text = NULL;
  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

/* argv's standard output; the command must succeed and, when quiet, print nothing else. */
static char *
run (const char *const *argv, gboolean quiet)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  char *out = NULL;
  int status = 0;
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, &error));
  if (quiet)
    g_assert_cmpstr (err, ==, "");
  return out;
}

static char *
run_crisp (const char *arg)
{
  g_autofree char *crisp = builddir_path ("crisp");
  /* No file of the host's may add or hide anything. */
  const char *argv[]
      = { crisp, "--config", "/nonexistent/crisp.conf", "--config-dir", "/nonexistent/crisp.conf.d",
          arg,   NULL };
  return run (argv, TRUE);
}

/* text as the pages write literals: each hyphen as "\-". */
static char *
roff_literal (const char *text)
{
  g_auto (GStrv) parts = g_strsplit (text, "-", -1);
  return g_strjoinv ("\\-", parts);
}

/* The body of section ".SH name" or ".SS name", up to the next heading of either kind. */
static char *
section (const char *page, const char *heading)
{
  g_autofree char *needle = g_strdup_printf ("\n%s\n", heading);
  const char *start = strstr (page, needle);
  if (start == NULL)
    g_error ("no '%s' in the page", heading);
  start += strlen (needle);
  const char *end = start;
  while ((end = strstr (end, "\n.S")) != NULL && end[3] != 'H' && end[3] != 'S')
    end++;
  return end != NULL ? g_strndup (start, (gsize) (end - start + 1)) : g_strdup (start);
}

static void
assert_key_in (const char *page, const char *group, const char *key)
{
  /* The [runtime.<name>] groups `crisp config` prints are the built-in handlers. */
  g_autofree char *heading = g_str_has_prefix (group, "runtime.")
                                 ? g_strdup (".SS [runtime.\\fINAME\\fR]")
                                 : g_strdup_printf (".SS [%s]", group);
  g_autofree char *body = section (page, heading);
  g_autofree char *escaped = roff_literal (key);
  g_autofree char *tag = g_strdup_printf (".TP\n\\fB%s\\fR = ", escaped);
  if (strstr (body, tag) == NULL)
    g_error ("crisp.conf.5 has no entry for [%s] %s", group, key);
}

static void
test_conf_lists_every_key (void)
{
  g_autofree char *page = read_page ("docs/man/crisp.conf.5");
  g_autofree char *printed = run_crisp ("config");
  g_auto (GStrv) lines = g_strsplit (printed, "\n", -1);
  g_autofree char *group = NULL;
  guint keys = 0;
  for (size_t i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      const char *eq = strstr (line, " =");
      /* Section headers, and keys whether set ("key = v") or unset ("#key ="). */
      if (line[0] == '[')
        {
          g_free (group);
          group = g_strndup (line + 1, strcspn (line + 1, "]"));
        }
      else if (eq != NULL && strncmp (line, "# ", 2) != 0 && group != NULL)
        {
          const char *key_start = line[0] == '#' ? line + 1 : line;
          g_autofree char *key = g_strndup (key_start, (gsize) (eq - key_start));
          assert_key_in (page, group, key);
          keys++;
        }
    }
  /* Guards against a change of `crisp config`'s format that would leave nothing to check. */
  g_assert_cmpuint (keys, >, 10);
}

/* The long options `crisp --help` lists ("  -c, --config=FILE   ..."). */
static GPtrArray *
help_options (const char *help)
{
  g_autoptr (GPtrArray) options = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GRegex) re = g_regex_new ("^  (?:-\\w, )?--([a-z-]+)", G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  for (g_regex_match (re, help, 0, &match); g_match_info_matches (match);
       g_match_info_next (match, NULL))
    g_ptr_array_add (options, g_match_info_fetch (match, 1));
  return g_steal_pointer (&options);
}

/* The commands of --help's summary: the lines after "Commands:" up to a blank one. */
static GPtrArray *
help_commands (const char *help)
{
  g_autoptr (GPtrArray) commands = g_ptr_array_new_with_free_func (g_free);
  const char *start = strstr (help, "Commands:\n");
  g_assert_nonnull (start);
  g_auto (GStrv) lines = g_strsplit (start + strlen ("Commands:\n"), "\n", -1);
  for (size_t i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      g_auto (GStrv) words = g_strsplit_set (g_strstrip (lines[i]), " ", 2);
      g_ptr_array_add (commands, g_strdup (words[0]));
    }
  return g_steal_pointer (&commands);
}

/* The long option of each entry of crisp.8's OPTIONS, unescaped. */
static GPtrArray *
page_options (const char *page)
{
  g_autofree char *body = section (page, ".SH OPTIONS");
  g_autoptr (GPtrArray) options = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GRegex) re
      = g_regex_new ("^\\.TP\\n.*?\\\\-\\\\-((?:[a-z]|\\\\-)+)", G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  for (g_regex_match (re, body, 0, &match); g_match_info_matches (match);
       g_match_info_next (match, NULL))
    {
      g_autofree char *escaped = g_match_info_fetch (match, 1);
      g_auto (GStrv) parts = g_strsplit (escaped, "\\-", -1);
      g_ptr_array_add (options, g_strjoinv ("-", parts));
    }
  return g_steal_pointer (&options);
}

static void
assert_all_in (GPtrArray *these, GPtrArray *those, const char *what)
{
  for (guint i = 0; i < these->len; i++)
    if (!g_ptr_array_find_with_equal_func (those, these->pdata[i], g_str_equal, NULL))
      g_error ("--%s: %s", (char *) these->pdata[i], what);
}

static void
test_crisp8_lists_every_option (void)
{
  g_autofree char *page = read_page ("docs/man/crisp.8");
  g_autofree char *crisp = builddir_path ("crisp");
  const char *argv[] = { crisp, "--help", NULL };
  g_autofree char *help = run (argv, TRUE);

  g_autoptr (GPtrArray) options = help_options (help);
  g_autoptr (GPtrArray) described = page_options (page);
  g_assert_cmpuint (options->len, >, 10);
  assert_all_in (options, described, "listed by crisp --help but not described in crisp.8");
  assert_all_in (described, options, "described in crisp.8 but not listed by crisp --help");

  g_autofree char *commands_section = section (page, ".SH COMMANDS");
  g_autoptr (GPtrArray) commands = help_commands (help);
  for (guint i = 0; i < commands->len; i++)
    {
      const char *command = commands->pdata[i];
      g_autofree char *tag = g_str_equal (command, "(none)")
                                 ? g_strdup (".TP\n(none)\n")
                                 : g_strdup_printf (".TP\n.B %s\n", command);
      if (strstr (commands_section, tag) == NULL)
        g_error ("crisp.8 does not describe the command '%s'", command);
    }
}

/* groff with every warning on: a page that formats cleanly has no output on stderr. */
static void
test_pages_render_cleanly (void)
{
  g_autofree char *groff = g_find_program_in_path ("groff");
  if (groff == NULL)
    {
      g_test_skip ("groff is not installed (Debian package groff-base)");
      return;
    }
  const char *const pages[] = { "docs/man/crisp.8", "docs/man/crisp.conf.5" };
  for (gsize i = 0; i < G_N_ELEMENTS (pages); i++)
    {
      g_autofree char *path = builddir_path (pages[i]);
      const char *argv[] = { groff, "-man", "-Tutf8", "-ww", "-z", path, NULL };
      g_free (run (argv, TRUE));
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/man/conf-lists-every-key", test_conf_lists_every_key);
  g_test_add_func ("/man/crisp8-lists-every-option", test_crisp8_lists_every_option);
  g_test_add_func ("/man/pages-render-cleanly", test_pages_render_cleanly);
  return g_test_run ();
}
