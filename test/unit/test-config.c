/* Unit tests for pkg/config: defaults, file layering, warnings, errors, overrides, runtime
 * handlers, cross-key checks, and printing the configuration back as a file. */
#include "config.h"

#include "config-private.h"
#include "crisp-config.h"
#include "crisp-error.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

typedef struct
{
  char *dir;     /* the temporary directory */
  char *main;    /* <dir>/crisp.conf */
  char *dropins; /* <dir>/crisp.conf.d */
} Fixture;

static void
rm_rf (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
      const char *name;
      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          rm_rf (child);
        }
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("crisp-test-config-XXXXXX", &error);
  g_assert_no_error (error);
  f->main = g_build_filename (f->dir, "crisp.conf", NULL);
  f->dropins = g_build_filename (f->dir, "crisp.conf.d", NULL);
  g_assert_cmpint (g_mkdir (f->dropins, 0700), ==, 0);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->main);
  g_free (f->dropins);
}

/* Writes contents to name under dir (or to dir itself when name is NULL); returns the path. */
static char *
write_file (const char *dir, const char *name, const char *contents)
{
  g_autoptr (GError) error = NULL;
  char *path = name != NULL ? g_build_filename (dir, name, NULL) : g_strdup (dir);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

static void
write_dropin (Fixture *f, const char *name, const char *contents)
{
  g_free (write_file (f->dropins, name, contents));
}

static CrispConfig *
load_ok (Fixture *f, GPtrArray *warnings)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispConfig) config = crisp_config_new ();
  gboolean ok = crisp_config_load_files (config, f->main, f->dropins, warnings, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  return g_steal_pointer (&config);
}

/* Loads and expects an invalid-argument error; returns its message. */
static char *
load_fails (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispConfig) config = crisp_config_new ();
  g_assert_false (crisp_config_load_files (config, f->main, f->dropins, NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  return g_strdup (error->message);
}

static void
test_defaults (void)
{
  g_autoptr (CrispConfig) config = crisp_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (config->listen, ==, "/run/crisp/crisp.sock");
  g_assert_cmpstr (config->root, ==, "/var/lib/crisp");
  g_assert_cmpstr (config->run_root, ==, "/run/crisp");
  g_assert_cmpstr (config->log_level, ==, "info");
  g_assert_cmpint (config->shutdown_grace, ==, 10);
  g_assert_cmpstr (config->default_runtime, ==, "runc");
  g_assert_cmpstr (config->cgroup_driver, ==, "cgroupfs");
  g_assert_cmpstr (config->conmon, ==, LIBEXECDIR "/crisp-conmon");
  g_assert_false (config->restrict_oom_score_adj);
  g_assert_cmpstr (config->cni_config_dir, ==, "/etc/cni/net.d");
  g_assert_cmpuint (g_strv_length (config->cni_plugin_dirs), ==, 2);
  g_assert_cmpstr (config->cni_plugin_dirs[0], ==, "/opt/cni/bin");
  g_assert_cmpstr (config->cni_plugin_dirs[1], ==, "/usr/lib/cni");
  g_assert_cmpstr (config->streaming_address, ==, "127.0.0.1");
  g_assert_cmpint (config->streaming_port, ==, 0);
  g_assert_false (config->metrics_enable);
  g_assert_cmpstr (config->metrics_address, ==, "127.0.0.1");
  g_assert_cmpint (config->metrics_port, ==, 9090);
  g_assert_cmpstr (config->registries_dir, ==, "/etc/crisp/registries.d");
  g_assert_cmpint (config->max_concurrent_downloads, ==, 3);
  g_assert_cmpuint (config->sources->len, ==, 0);

  g_assert_cmpuint (config->runtimes->len, ==, 2);
  const CrispRuntimeHandler *crun = config->runtimes->pdata[0];
  g_assert_cmpstr (crun->name, ==, "crun");
  g_assert_cmpstr (crun->path, ==, "crun");
  g_assert_null (crun->monitor_cgroup);

  g_assert_true (crisp_config_validate (config, &error));
  g_assert_no_error (error);
  const CrispRuntimeHandler *runc = crisp_config_get_runtime (config, NULL);
  g_assert_nonnull (runc);
  g_assert_cmpstr (runc->name, ==, "runc");
  g_assert_cmpstr (runc->path, ==, "runc");
  g_assert_cmpstr (runc->root, ==, "/run/crisp/runtime/runc");
  g_assert_true (crisp_config_get_runtime (config, "") == runc);
  g_assert_true (crisp_config_get_runtime (config, "crun") == crun);
  g_assert_null (crisp_config_get_runtime (config, "kata"));
}

static void
test_absent_files_are_fine (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispConfig) config = crisp_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *nodir = g_build_filename (f->dir, "no-such-dir", NULL);
  g_assert_true (crisp_config_load_files (config, f->main, nodir, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (config->sources->len, ==, 0);
  g_assert_cmpstr (config->log_level, ==, "info");
}

static void
test_dropins_in_lexical_order (Fixture *f, gconstpointer data)
{
  g_free (write_file (f->main, NULL,
                      "[crisp]\nlog-level = warning\nshutdown-grace = 5\n"
                      "[streaming]\nport = 1\n"));
  write_dropin (f, "20-b.conf", "[crisp]\nlog-level = error\n[streaming]\nport = 20\n");
  write_dropin (f, "10-a.conf", "[crisp]\nlog-level = debug\n[streaming]\nport = 10\n");
  /* Bytewise, "9" sorts after "2": this one comes last. */
  write_dropin (f, "9-c.conf", "[streaming]\nport = 9\n");
  g_autoptr (CrispConfig) config = load_ok (f, NULL);

  g_assert_cmpstr (config->log_level, ==, "error");
  g_assert_cmpint (config->shutdown_grace, ==, 5);
  g_assert_cmpint (config->streaming_port, ==, 9);
  g_assert_cmpuint (config->sources->len, ==, 4);
  g_assert_cmpstr (config->sources->pdata[0], ==, f->main);
  g_assert_true (g_str_has_suffix (config->sources->pdata[1], "/crisp.conf.d/10-a.conf"));
  g_assert_true (g_str_has_suffix (config->sources->pdata[2], "/crisp.conf.d/20-b.conf"));
  g_assert_true (g_str_has_suffix (config->sources->pdata[3], "/crisp.conf.d/9-c.conf"));
}

static void
test_only_conf_files_are_read (Fixture *f, gconstpointer data)
{
  /* Each of these would fail the load if it were read. */
  const char *bad = "[crisp]\nlog-level = loud\n";
  write_dropin (f, "50.conf.bak", bad);
  write_dropin (f, "50.conf~", bad);
  write_dropin (f, "README", bad);
  write_dropin (f, ".50.conf", bad);
  write_dropin (f, "50.conf", "[crisp]\nlog-level = debug\n");
  g_autofree char *subdir = g_build_filename (f->dropins, "60.conf", NULL);
  g_assert_cmpint (g_mkdir (subdir, 0700), ==, 0);
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (CrispConfig) config = load_ok (f, warnings);

  g_assert_cmpstr (config->log_level, ==, "debug");
  g_assert_cmpuint (config->sources->len, ==, 1);
  g_assert_cmpuint (warnings->len, ==, 1);
  g_autofree char *expected = g_strdup_printf ("%s: not a regular file, ignoring", subdir);
  g_assert_cmpstr (warnings->pdata[0], ==, expected);
}

static void
test_unknown_key_and_group_warn (Fixture *f, gconstpointer data)
{
  g_free (write_file (f->main, NULL,
                      "[crisp]\nlog-level = debug\nlog-colour = true\n"
                      "[plugins]\nfoo = bar\nbaz = 1\n"
                      "[runtime.kata]\nengine = qemu\n"));
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (CrispConfig) config = load_ok (f, warnings);

  g_assert_cmpstr (config->log_level, ==, "debug");
  g_assert_cmpuint (warnings->len, ==, 3);
  g_autofree char *w0 = g_strdup_printf ("%s: [crisp] log-colour: unknown key, ignoring", f->main);
  g_autofree char *w1 = g_strdup_printf ("%s: [plugins]: unknown group, ignoring", f->main);
  g_autofree char *w2
      = g_strdup_printf ("%s: [runtime.kata] engine: unknown key, ignoring", f->main);
  g_assert_cmpstr (warnings->pdata[0], ==, w0);
  g_assert_cmpstr (warnings->pdata[1], ==, w1);
  g_assert_cmpstr (warnings->pdata[2], ==, w2);
}

static void
test_invalid_values_fail (Fixture *f, gconstpointer data)
{
  static const struct
  {
    const char *file, *expected;
  } cases[] = {
    { "[crisp]\nlog-level = loud\n",
      "[crisp] log-level: invalid value 'loud' (expected error, warning, info or debug)" },
    { "[runtime]\ncgroup-driver = cgroupv2\n",
      "[runtime] cgroup-driver: invalid value 'cgroupv2' (expected cgroupfs or systemd)" },
    { "[crisp]\nshutdown-grace = 3601\n",
      "[crisp] shutdown-grace: invalid value '3601' (expected an integer from 0 to 3600)" },
    { "[crisp]\nshutdown-grace = ten\n",
      "[crisp] shutdown-grace: invalid value 'ten' (expected an integer from 0 to 3600)" },
    { "[streaming]\nport = -1\n",
      "[streaming] port: invalid value '-1' (expected an integer from 0 to 65535)" },
    { "[image]\nmax-concurrent-downloads = 0\n",
      "[image] max-concurrent-downloads: invalid value '0' (expected an integer from 1 to 64)" },
    { "[runtime]\nrestrict-oom-score-adj = maybe\n",
      "[runtime] restrict-oom-score-adj: invalid value 'maybe' (expected true or false)" },
    { "[crisp]\nroot = var/lib/crisp\n",
      "[crisp] root: invalid value 'var/lib/crisp' (expected an absolute path)" },
    { "[network]\ncni-plugin-dirs = /opt/cni/bin;cni\n",
      "[network] cni-plugin-dirs: invalid value 'cni' (expected a list of absolute paths)" },
    { "[streaming]\naddress = localhost\n",
      "[streaming] address: invalid value 'localhost' (expected an IP address)" },
    { "[runtime.runc]\npath = bin/runc\n",
      "[runtime.runc] path: invalid value 'bin/runc' (expected an absolute path or a command "
      "name)" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      /* In a drop-in, so the message must name the drop-in, not the main file. */
      write_dropin (f, "10-bad.conf", cases[i].file);
      g_autofree char *message = load_fails (f);
      g_autofree char *path = g_build_filename (f->dropins, "10-bad.conf", NULL);
      g_autofree char *expected = g_strdup_printf ("%s: %s", path, cases[i].expected);
      g_assert_cmpstr (message, ==, expected);
    }
}

static void
test_malformed_file_fails (Fixture *f, gconstpointer data)
{
  g_free (write_file (f->main, NULL, "[crisp]\nthis line has no equals sign\n"));
  g_autofree char *message = load_fails (f);
  g_assert_true (g_str_has_prefix (message, f->main));
}

static void
test_unusable_sources_fail (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispConfig) config = crisp_config_new ();
  /* A drop-in "directory" that is a file is a mistake worth stopping for. */
  g_free (write_file (f->main, NULL, "[crisp]\n"));
  g_assert_false (crisp_config_load_files (config, NULL, f->main, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* So is a config file of a megabyte and more. */
  g_autofree char *big = g_strnfill (2 * 1024 * 1024, '#');
  g_free (write_file (f->main, NULL, big));
  g_assert_false (crisp_config_load_files (config, f->main, NULL, NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_str_has_prefix (error->message, f->main));
}

static void
test_override_beats_files (Fixture *f, gconstpointer data)
{
  write_dropin (f, "10.conf", "[crisp]\nlog-level = error\n[network]\ncni-plugin-dirs = /x\n");
  g_autoptr (CrispConfig) config = load_ok (f, NULL);
  g_autoptr (GError) error = NULL;

  g_assert_true (crisp_config_set (config, "crisp", "log-level", "debug", "--log-level", &error));
  g_assert_true (
      crisp_config_set (config, "network", "cni-plugin-dirs", "/a;/b", "--cni-plugin-dir", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (config->log_level, ==, "debug");
  g_assert_cmpuint (g_strv_length (config->cni_plugin_dirs), ==, 2);
  g_assert_cmpstr (config->cni_plugin_dirs[1], ==, "/b");

  g_assert_false (crisp_config_set (config, "crisp", "log-level", "loud", "--log-level", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==,
                   "--log-level: invalid value 'loud' (expected error, warning, info or debug)");
  g_clear_error (&error);
  g_assert_false (crisp_config_set (config, "crisp", "colour", "x", NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, "unknown key [crisp] colour");
  g_clear_error (&error);
  g_assert_false (crisp_config_set (config, "crisp", "colour", "x", "-o crisp.colour", &error));
  g_assert_cmpstr (error->message, ==, "-o crisp.colour: unknown key [crisp] colour");
  g_clear_error (&error);
  g_assert_false (crisp_config_set (config, "nope", "listen", "/x", "--x", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (config->log_level, ==, "debug");
}

static void
test_runtime_handlers (Fixture *f, gconstpointer data)
{
  g_free (write_file (f->main, NULL,
                      "[runtime]\ndefault-runtime = kata\n"
                      "[runtime.kata]\npath = /usr/bin/kata-runtime\nmonitor-cgroup = kata.slice\n"
                      "[runtime.runc]\npath = /usr/local/sbin/runc\n"));
  write_dropin (f, "10.conf",
                "[runtime.runc]\nroot = /run/runc-crisp\n[runtime.kata]\nmonitor-cgroup =\n"
                "[runtime.gvisor-1.0]\n");
  g_autoptr (CrispConfig) config = load_ok (f, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_config_validate (config, &error));
  g_assert_no_error (error);

  g_assert_cmpuint (config->runtimes->len, ==, 4);
  const char *sorted[] = { "crun", "gvisor-1.0", "kata", "runc" };
  for (guint i = 0; i < 4; i++)
    g_assert_cmpstr (((CrispRuntimeHandler *) config->runtimes->pdata[i])->name, ==, sorted[i]);

  const CrispRuntimeHandler *kata = crisp_config_get_runtime (config, NULL);
  g_assert_cmpstr (kata->name, ==, "kata");
  g_assert_cmpstr (kata->path, ==, "/usr/bin/kata-runtime");
  g_assert_null (kata->monitor_cgroup); /* cleared by the drop-in */
  g_assert_cmpstr (kata->root, ==, "/run/crisp/runtime/kata");
  const CrispRuntimeHandler *runc = crisp_config_get_runtime (config, "runc");
  g_assert_cmpstr (runc->path, ==, "/usr/local/sbin/runc"); /* main file, kept by the drop-in */
  g_assert_cmpstr (runc->root, ==, "/run/runc-crisp");
  const CrispRuntimeHandler *gvisor = crisp_config_get_runtime (config, "gvisor-1.0");
  g_assert_cmpstr (gvisor->path, ==, "gvisor-1.0");

  g_assert_true (crisp_config_set (config, "runtime.youki", "path", "/bin/youki", "-o", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (crisp_config_get_runtime (config, "youki")->path, ==, "/bin/youki");
}

static void
test_runtime_name_rejected (Fixture *f, gconstpointer data)
{
  static const char *const bad[]
      = { "Kata",
          "-kata",
          ".kata",
          "ka_ta",
          "",
          "k/ata",
          "a123456789012345678901234567890123456789012345678901234567890123" };
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *contents = g_strdup_printf ("[runtime.%s]\npath = /bin/true\n", bad[i]);
      g_free (write_file (f->main, NULL, contents));
      g_autofree char *message = load_fails (f);
      g_autofree char *expected = g_strdup_printf (
          "%s: [runtime.%s]: invalid runtime handler name '%s'", f->main, bad[i], bad[i]);
      g_assert_true (g_str_has_prefix (message, expected));
    }
  /* 63 characters is the longest allowed. */
  g_assert_true (crisp_config_runtime_name_is_valid (bad[6] + 1));
  g_assert_true (crisp_config_runtime_name_is_valid ("0.x-y"));
}

static void
assert_validate_fails (CrispConfig *config, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (crisp_config_validate (config, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, expected);
}

static void
test_validate_cross_checks (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispConfig) config = crisp_config_new ();
  g_assert_true (crisp_config_set (config, "runtime", "default-runtime", "kata", NULL, &error));
  assert_validate_fails (config, "[runtime] default-runtime: no runtime handler named 'kata' "
                                 "(configured: crun, runc)");

  g_autoptr (CrispConfig) same = crisp_config_new ();
  g_assert_true (crisp_config_set (same, "crisp", "run-root", "/var/lib/crisp/", NULL, &error));
  assert_validate_fails (same, "[crisp] run-root: '/var/lib/crisp/' overlaps root "
                               "'/var/lib/crisp' (persistent and runtime state must be kept "
                               "apart)");
  g_autoptr (CrispConfig) nested = crisp_config_new ();
  g_assert_true (
      crisp_config_set (nested, "crisp", "run-root", "/var/lib/crisp/run", NULL, &error));
  g_assert_false (crisp_config_validate (nested, NULL));
  /* A shared prefix is not nesting. */
  g_assert_true (
      crisp_config_set (nested, "crisp", "run-root", "/var/lib/crisp-run", NULL, &error));
  g_assert_true (crisp_config_validate (nested, &error));
  g_assert_no_error (error);

  g_autoptr (CrispConfig) shared = crisp_config_new ();
  g_assert_true (
      crisp_config_set (shared, "runtime.crun", "root", "/run/crisp/runtime/runc", NULL, &error));
  assert_validate_fails (shared, "[runtime.runc] root: '/run/crisp/runtime/runc' overlaps the root "
                                 "of [runtime.crun] '/run/crisp/runtime/runc'");

  g_autoptr (CrispConfig) longsock = crisp_config_new ();
  g_autofree char *path = g_strdup_printf ("/%0120d", 0);
  g_assert_true (crisp_config_set (longsock, "crisp", "listen", path, NULL, &error));
  g_assert_false (crisp_config_validate (longsock, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
}

static void
assert_same_config (const CrispConfig *a, const CrispConfig *b)
{
  g_assert_cmpstr (a->listen, ==, b->listen);
  g_assert_cmpstr (a->root, ==, b->root);
  g_assert_cmpstr (a->run_root, ==, b->run_root);
  g_assert_cmpstr (a->log_level, ==, b->log_level);
  g_assert_cmpint (a->shutdown_grace, ==, b->shutdown_grace);
  g_assert_cmpstr (a->default_runtime, ==, b->default_runtime);
  g_assert_cmpstr (a->cgroup_driver, ==, b->cgroup_driver);
  g_assert_cmpstr (a->conmon, ==, b->conmon);
  g_assert_cmpint (a->restrict_oom_score_adj, ==, b->restrict_oom_score_adj);
  g_assert_cmpstr (a->cni_config_dir, ==, b->cni_config_dir);
  g_assert_true (g_strv_equal ((const char *const *) a->cni_plugin_dirs,
                               (const char *const *) b->cni_plugin_dirs));
  g_assert_cmpstr (a->streaming_address, ==, b->streaming_address);
  g_assert_cmpint (a->streaming_port, ==, b->streaming_port);
  g_assert_cmpint (a->metrics_enable, ==, b->metrics_enable);
  g_assert_cmpstr (a->metrics_address, ==, b->metrics_address);
  g_assert_cmpint (a->metrics_port, ==, b->metrics_port);
  g_assert_cmpstr (a->registries_dir, ==, b->registries_dir);
  g_assert_cmpint (a->max_concurrent_downloads, ==, b->max_concurrent_downloads);
  g_assert_cmpuint (a->runtimes->len, ==, b->runtimes->len);
  for (guint i = 0; i < a->runtimes->len; i++)
    {
      const CrispRuntimeHandler *ha = a->runtimes->pdata[i], *hb = b->runtimes->pdata[i];
      g_assert_cmpstr (ha->name, ==, hb->name);
      g_assert_cmpstr (ha->path, ==, hb->path);
      g_assert_cmpstr (ha->root, ==, hb->root);
      g_assert_cmpstr (ha->monitor_cgroup, ==, hb->monitor_cgroup);
    }
}

/* Prints config, loads the text into a fresh config and checks both agree. */
static void
assert_round_trip (Fixture *f, CrispConfig *config)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *data = crisp_config_to_data (config);
  g_autofree char *printed = write_file (f->dir, "printed.conf", data);
  g_autoptr (CrispConfig) reloaded = crisp_config_new ();
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_assert_true (crisp_config_load_files (reloaded, printed, NULL, warnings, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (warnings->len, ==, 0);
  g_assert_true (crisp_config_validate (config, &error));
  g_assert_true (crisp_config_validate (reloaded, &error));
  g_assert_no_error (error);
  assert_same_config (config, reloaded);
  /* Printing again gives the same text but for the header naming the sources. */
  g_autofree char *again = crisp_config_to_data (reloaded);
  g_assert_cmpstr (strstr (data, "\n["), ==, strstr (again, "\n["));
}

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispConfig) defaults = crisp_config_new ();
  assert_round_trip (f, defaults);

  g_free (write_file (f->main, NULL,
                      "[crisp]\nlisten = /tmp/a dir/crisp.sock\nlog-level = debug\n"
                      "shutdown-grace = 0\n"
                      "[runtime]\nrestrict-oom-score-adj = true\ncgroup-driver = systemd\n"
                      "[runtime.kata]\npath = /opt/kata/bin/kata runtime\n"
                      "monitor-cgroup = system.slice/crisp-monitors.slice\n"
                      "[network]\ncni-plugin-dirs = /usr/lib/cni;/opt/cni\\;bin\\;x\n"
                      "[streaming]\naddress = ::1\nport = 65535\n"
                      "[metrics]\nenable = true\naddress = ::\nport = 0\n"));
  g_autoptr (CrispConfig) config = load_ok (f, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_cmpstr (config->cni_plugin_dirs[1], ==, "/opt/cni;bin;x"); /* escaped ';' */
  g_assert_true (
      crisp_config_set (config, "runtime.kata", "monitor-cgroup", " lead\ttab", NULL, &error));
  g_assert_true (crisp_config_set (config, "crisp", "root", "/srv/crisp\\state\n", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (
      crisp_config_set (config, "image", "registries-dir", "/ends in space ", NULL, &error));
  g_assert_no_error (error);
  assert_round_trip (f, config);
}

/* contrib/crisp.conf: each setting commented out as "#key = value" beside its default.  With
 * those lines uncommented, it must load cleanly and give the defaults. */
static void
test_example_file_matches_defaults (Fixture *f, gconstpointer data)
{
  g_autofree char *example = NULL;
  g_autoptr (GError) error = NULL;
  g_file_get_contents (TEST_SRCDIR "/../contrib/crisp.conf", &example, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (GString) uncommented = g_string_new (NULL);
  g_auto (GStrv) lines = g_strsplit (example, "\n", -1);
  for (size_t i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      if (line[0] == '#' && line[1] != '\0' && line[1] != ' ' && line[1] != '#')
        line++;
      g_string_append_printf (uncommented, "%s\n", line);
    }
  g_free (write_file (f->main, NULL, uncommented->str));
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (CrispConfig) config = load_ok (f, warnings);
  g_assert_cmpuint (warnings->len, ==, 0);

  g_autoptr (CrispConfig) defaults = crisp_config_new ();
  /* The example names the Debian-style path; the default follows --libexecdir. */
  g_assert_cmpstr (config->conmon, ==, "/usr/libexec/crisp-conmon");
  g_free (config->conmon);
  config->conmon = g_strdup (defaults->conmon);
  g_assert_true (crisp_config_validate (config, &error));
  g_assert_true (crisp_config_validate (defaults, &error));
  assert_same_config (config, defaults);

  /* Every key of the schema is documented in it. */
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    {
      g_autofree char *needle = g_strdup_printf ("\n#%s =", crisp_config_schema[i].key);
      g_assert_nonnull (strstr (example, needle));
    }
}

/* Every group and key of the schema gets an entry; the handler keys go under [runtime.NAME]. */
static void
test_man_keys (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *roff = crisp_config_man_expand ("@KEYS@\n", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (roff, "\n") && !g_str_has_suffix (roff, "\n\n"));
  /* Read with its hyphens as the help texts write them. */
  g_auto (GStrv) parts = g_strsplit (roff, "\\-", -1);
  g_autofree char *page = g_strjoinv ("-", parts);
  const char *handlers = strstr (page, ".SS [runtime.\\fINAME\\fR]\n");
  g_assert_nonnull (handlers);
  for (const char *const *group = crisp_config_schema_groups (); *group != NULL; group++)
    {
      g_autofree char *heading = g_strdup_printf (".SS [%s]\n", *group);
      g_assert_nonnull (strstr (page, heading));
    }
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    {
      const CrispConfigKey *row = &crisp_config_schema[i];
      g_autofree char *tag = g_strdup_printf (".TP\n\\fB%s\\fR = ", row->key);
      const char *entry = strstr (row->group == NULL ? handlers : page, tag);
      g_assert_nonnull (entry);
      g_assert_nonnull (strstr (entry, row->help));
    }
}

static void
test_man_references (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = crisp_config_man_expand (
      ".B @crisp.listen@.lock\nmail a@b, 100@ @@ @image.max-concurrent-downloads@ \\n\n", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, ".B /run/crisp/crisp.sock.lock\nmail a@b, 100@ @@ 3 \\n\n");

  g_autofree char *leading = crisp_config_man_expand ("@CONFIG_FILE@ @VERSION@", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (leading, CRISP_CONFIG_FILE " "));
}

static void
test_man_unknown_reference (void)
{
  const char *const bad[] = { "@crisp.nope@", "@listen@", "@runtime.path@", "@NOPE@" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_null (crisp_config_man_expand (bad[i], &error));
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_to_data_comments_and_sources (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispConfig) defaults = crisp_config_new ();
  g_autofree char *text = crisp_config_to_data (defaults);
  g_assert_nonnull (strstr (text, "built-in defaults"));
  g_assert_nonnull (strstr (text, "\n[crisp]\n# Path of the unix socket"));
  g_assert_nonnull (strstr (text, "\nlisten = /run/crisp/crisp.sock\n"));
  g_assert_nonnull (strstr (text, "\ncni-plugin-dirs = /opt/cni/bin;/usr/lib/cni\n"));
  g_assert_nonnull (strstr (text, "\n[runtime.runc]\n"));
  g_assert_nonnull (strstr (text, "\nroot = /run/crisp/runtime/runc\n"));
  g_assert_nonnull (strstr (text, "\n#monitor-cgroup =\n"));
  /* The handlers sit right after [runtime], before [network]. */
  g_assert_true (strstr (text, "[runtime.crun]") < strstr (text, "[network]"));
  g_assert_true (strstr (text, "[runtime]") < strstr (text, "[runtime.crun]"));

  g_free (write_file (f->main, NULL, "[crisp]\nlog-level = debug\n"));
  g_autoptr (CrispConfig) config = load_ok (f, NULL);
  g_autofree char *text2 = crisp_config_to_data (config);
  g_autofree char *line = g_strdup_printf ("# Read from %s\n", f->main);
  g_assert_nonnull (strstr (text2, line));
  g_assert_nonnull (strstr (text2, "\nlog-level = debug\n"));
}

static void
test_diff_names_changed_keys (void)
{
  g_autoptr (CrispConfig) a = crisp_config_new ();
  g_autoptr (CrispConfig) b = crisp_config_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) same = crisp_config_diff (a, b);
  g_assert_cmpuint (same->len, ==, 0);

  g_assert_true (crisp_config_set (b, "streaming", "port", "1234", NULL, &error)
                 && crisp_config_set (b, "crisp", "log-level", "debug", NULL, &error)
                 && crisp_config_set (b, "runtime.runc", "root", "/run/r", NULL, &error)
                 && crisp_config_set (b, "runtime.kata", "path", "/bin/kata", NULL, &error));
  g_assert_no_error (error);
  g_autoptr (GPtrArray) changed = crisp_config_diff (a, b);
  g_ptr_array_add (changed, NULL);
  const char *expected[]
      = { "[crisp] log-level", "[streaming] port", "[runtime.runc] root", "[runtime.kata]", NULL };
  g_assert_cmpstrv ((char **) changed->pdata, expected);
}

#define ADD(name, fn)                                                                              \
  g_test_add ("/config/" name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/defaults", test_defaults);
  ADD ("absent-files", test_absent_files_are_fine);
  ADD ("dropins-lexical-order", test_dropins_in_lexical_order);
  ADD ("only-conf-files", test_only_conf_files_are_read);
  ADD ("unknown-key-and-group", test_unknown_key_and_group_warn);
  ADD ("invalid-values", test_invalid_values_fail);
  ADD ("malformed-file", test_malformed_file_fails);
  ADD ("unusable-sources", test_unusable_sources_fail);
  ADD ("override-beats-files", test_override_beats_files);
  ADD ("runtime-handlers", test_runtime_handlers);
  ADD ("runtime-name-rejected", test_runtime_name_rejected);
  g_test_add_func ("/config/validate", test_validate_cross_checks);
  ADD ("round-trip", test_round_trip);
  ADD ("example-file", test_example_file_matches_defaults);
  ADD ("to-data", test_to_data_comments_and_sources);
  g_test_add_func ("/config/diff", test_diff_names_changed_keys);
  g_test_add_func ("/config/man/keys", test_man_keys);
  g_test_add_func ("/config/man/references", test_man_references);
  g_test_add_func ("/config/man/unknown-reference", test_man_unknown_reference);
  return g_test_run ();
}
