/* `crisp check`: the report, and the checks of what the configuration names (runtimes, the
 * monitor, CNI, the socket's directory); the node's filesystems and kernel are in
 * check-node.c. */
#include "config.h"

#include "check.h"

#include "crisp-base.h"
#include "pkg/network/network.h"

#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

/* How long a runtime may take to answer --version. */
#define VERSION_TIMEOUT_S 10

extern char **environ;

typedef struct
{
  char *name;
  CrispCheckStatus status;
  char *message;
  char *fix;
} CrispCheckResult;

static void
result_free (CrispCheckResult *r)
{
  g_free (r->name);
  g_free (r->message);
  g_free (r->fix);
  g_free (r);
}

static const char *const status_names[] = { "ok", "warning", "problem" };

void
crisp_check_report (CrispCheck *check, const char *name, CrispCheckStatus status, const char *fix,
                    const char *fmt, ...)
{
  CrispCheckResult *r = g_new0 (CrispCheckResult, 1);
  va_list ap;
  va_start (ap, fmt);
  r->message = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  r->name = g_strdup (name);
  r->status = status;
  r->fix = g_strdup (fix);
  g_ptr_array_add (check->results, r);
}

static void
check_config (CrispCheck *check, const CrispConfig *cfg, const GError *config_error,
              GPtrArray *warnings)
{
  if (cfg == NULL)
    crisp_check_report (check, "config", CRISP_CHECK_PROBLEM,
                        "correct what the message names in the file it names; the checks "
                        "that need the configuration are left out until it loads",
                        "%s", config_error->message);
  else if (cfg->sources->len == 0)
    crisp_check_report (check, "config", CRISP_CHECK_OK, NULL,
                        "no configuration file: the built-in defaults");
  else
    {
      g_autoptr (GString) files = g_string_new (NULL);
      for (guint i = 0; i < cfg->sources->len; i++)
        g_string_append_printf (files, "%s'%s'", i ? ", " : "", (char *) cfg->sources->pdata[i]);
      crisp_check_report (check, "config", CRISP_CHECK_OK, NULL, "loaded %s", files->str);
    }
  for (guint i = 0; warnings != NULL && i < warnings->len; i++)
    crisp_check_report (check, "config", CRISP_CHECK_WARNING,
                        "remove the key or correct its spelling (`crisp config` lists every key)",
                        "%s", (char *) warnings->pdata[i]);
}

static void
check_privileges (CrispCheck *check)
{
  if (geteuid () == 0)
    crisp_check_report (check, "privileges", CRISP_CHECK_OK, NULL, "running as root");
  else
    crisp_check_report (check, "privileges", CRISP_CHECK_PROBLEM,
                        "run crisp (and crisp check) as root",
                        "running as uid %u: crisp mounts filesystems, makes namespaces and "
                        "cgroups, and needs root",
                        (unsigned) geteuid ());
}

/* The first line of what `path --version` printed, or NULL with the reason it failed. */
static char *
runtime_version (const char *path, char **out_why)
{
  _cleanup_close_ int timer = timerfd_create (CLOCK_MONOTONIC, TFD_CLOEXEC);
  struct itimerspec its = { .it_value = { .tv_sec = VERSION_TIMEOUT_S } };
  if (timer < 0 || timerfd_settime (timer, 0, &its, NULL) < 0)
    return *out_why = g_strdup_printf ("timerfd: %s", g_strerror (errno)), NULL;
  char *argv[] = { (char *) path, (char *) "--version", NULL };
  CrispSpawnResult res = { 0 };
  int r = crisp_spawn_communicate (path, argv, environ, NULL, 0, 64 * 1024, timer, &res);
  g_auto (GStrv) lines = g_strsplit (res.out ? res.out : "", "\n", 2);
  g_auto (GStrv) err_lines = g_strsplit (res.err ? res.err : "", "\n", 2);
  int status = res.status;
  crisp_spawn_result_clear (&res);
  if (r == -ECANCELED)
    *out_why = g_strdup_printf ("gave no answer within %d s", VERSION_TIMEOUT_S);
  else if (r < 0)
    *out_why = g_strdup (g_strerror (-r));
  else if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    *out_why = g_strdup_printf ("failed (wait status %d)%s%s", status, err_lines[0] ? ": " : "",
                                err_lines[0] ? err_lines[0] : "");
  else
    return g_strdup (lines[0] && *lines[0] ? lines[0] : "(no output)");
  return NULL;
}

/* A built-in handler left as it is and not the default: a node without it is fine until a
 * RuntimeClass names it. */
static gboolean
is_spare_builtin (const CrispConfig *cfg, const CrispRuntimeHandler *rt)
{
  g_autoptr (CrispConfig) defaults = crisp_config_new ();
  const CrispRuntimeHandler *d = crisp_config_get_runtime (defaults, rt->name);
  return d != NULL && g_strcmp0 (d->path, rt->path) == 0
         && g_strcmp0 (cfg->default_runtime, rt->name) != 0;
}

static void
check_runtime (CrispCheck *check, const CrispConfig *cfg, const CrispRuntimeHandler *rt)
{
  g_autofree char *name = g_strconcat ("runtime.", rt->name, NULL);
  g_autofree char *fix = g_strdup_printf (
      "install %s, or set path in [runtime.%s] to the OCI runtime binary", rt->path, rt->name);
  CrispCheckStatus bad = is_spare_builtin (cfg, rt) ? CRISP_CHECK_WARNING : CRISP_CHECK_PROBLEM;
  const char *use
      = bad == CRISP_CHECK_WARNING ? " (only pods whose RuntimeClass names it need it)" : "";
  g_autofree char *path
      = g_path_is_absolute (rt->path) ? g_strdup (rt->path) : g_find_program_in_path (rt->path);
  if (path == NULL || !g_file_test (path, G_FILE_TEST_EXISTS))
    return crisp_check_report (check, name, bad, fix, "'%s' is not %s%s", rt->path,
                               path ? "there" : "found on PATH", use);
  if (g_file_test (path, G_FILE_TEST_IS_DIR) || access (path, X_OK) < 0)
    return crisp_check_report (check, name, bad, fix, "'%s' is not an executable file%s", path,
                               use);
  g_autofree char *why = NULL;
  g_autofree char *version = runtime_version (path, &why);
  if (version == NULL)
    return crisp_check_report (check, name, bad, fix, "'%s --version' %s%s", path, why, use);
  crisp_check_report (check, name, CRISP_CHECK_OK, NULL, "%s: %s%s", path, version,
                      g_strcmp0 (cfg->default_runtime, rt->name) == 0 ? " (the default)" : "");
}

static void
check_monitor (CrispCheck *check, const CrispConfig *cfg)
{
  if (g_file_test (cfg->conmon, G_FILE_TEST_IS_REGULAR) && access (cfg->conmon, X_OK) == 0)
    return crisp_check_report (check, "monitor", CRISP_CHECK_OK, NULL, "%s", cfg->conmon);
  crisp_check_report (check, "monitor", CRISP_CHECK_PROBLEM,
                      "install crisp (`make install` puts the monitor there), or set conmon in "
                      "[runtime] to crisp-conmon's path",
                      "the container monitor '%s' is not an executable file", cfg->conmon);
}

static void
check_cni_plugins (CrispCheck *check, const CrispConfig *cfg, const CrispNetworkFile *used)
{
  g_autoptr (CrispNetwork) net
      = crisp_network_new (cfg->cni_config_dir, (const char *const *) cfg->cni_plugin_dirs);
  g_autofree char *dirs = g_strjoinv ("', '", cfg->cni_plugin_dirs);
  JsonArray *plugins = json_object_get_array_member (json_node_get_object (used->list), "plugins");
  g_autoptr (GString) found = g_string_new (NULL);
  guint missing = 0;
  for (guint i = 0; i < json_array_get_length (plugins); i++)
    {
      const char *type
          = json_object_get_string_member (json_array_get_object_element (plugins, i), "type");
      g_autofree char *path = crisp_network_find_plugin (net, type);
      g_string_append_printf (found, "%s%s", found->len ? ", " : "", path ? path : type);
      if (path != NULL)
        continue;
      missing++;
      g_autofree char *fix = g_strdup_printf (
          "install the CNI plugin '%s' (Debian: containernetworking-plugins) into '%s', or add "
          "its directory to cni-plugin-dirs in [network]",
          type, cfg->cni_plugin_dirs[0]);
      crisp_check_report (check, "cni.plugins", CRISP_CHECK_PROBLEM, fix,
                          "plugin type '%s' named in '%s' is not an executable in '%s'", type,
                          used->path, dirs);
    }
  if (missing == 0)
    crisp_check_report (check, "cni.plugins", CRISP_CHECK_OK, NULL, "%s", found->str);
}

/* The daemon uses the first valid file; every refused one is reported, and no valid file at
 * all is a problem (an empty directory only means pods wait for the network). */
static void
check_cni (CrispCheck *check, const CrispConfig *cfg)
{
  const char *dir = cfg->cni_config_dir;
  g_autoptr (GPtrArray) files = crisp_network_list_files (dir);
  const CrispNetworkFile *used = NULL;
  for (guint i = 0; i < files->len && used == NULL; i++)
    if (((CrispNetworkFile *) files->pdata[i])->list != NULL)
      used = files->pdata[i];
  const char *fix = "correct the file or remove it: a list needs \"cniVersion\", \"name\" and "
                    "\"plugins\", each plugin a \"type\"";
  for (guint i = 0; i < files->len; i++)
    {
      const CrispNetworkFile *f = files->pdata[i];
      if (f->error != NULL)
        crisp_check_report (check, "cni.config", used ? CRISP_CHECK_WARNING : CRISP_CHECK_PROBLEM,
                            fix, "'%s' is not a valid network configuration, %s: %s", f->path,
                            used ? "ignoring" : "and no other file is", f->error->message);
    }
  if (files->len == 0)
    return crisp_check_report (
        check, "cni.config", CRISP_CHECK_WARNING,
        "copy contrib/cni/10-crisp.conflist (or your network's configuration) into the directory",
        "no network configuration in '%s': only host-network pods can run until one is there", dir);
  if (used == NULL)
    return;
  JsonObject *list = json_node_get_object (used->list);
  crisp_check_report (check, "cni.config", CRISP_CHECK_OK, NULL, "'%s': network '%s'", used->path,
                      json_object_get_string_member (list, "name"));
  check_cni_plugins (check, cfg, used);
}

/* Whether a crisp holds the socket's lock now; only looks, never creates the file. */
static gboolean
socket_is_served (const char *listen)
{
  g_autofree char *lock_path = g_strconcat (listen, ".lock", NULL);
  _cleanup_close_ int fd = open (lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return FALSE;
  if (flock (fd, LOCK_SH | LOCK_NB) < 0)
    return errno == EWOULDBLOCK;
  flock (fd, LOCK_UN);
  return FALSE;
}

static void
check_socket (CrispCheck *check, const CrispConfig *cfg)
{
  g_autofree char *dir = g_path_get_dirname (cfg->listen);
  struct stat st;
  if (stat (dir, &st) < 0 || !S_ISDIR (st.st_mode))
    return crisp_check_state_dir (check, "socket", dir, "listen in [crisp]");
  if (st.st_uid != 0)
    crisp_check_report (check, "socket", CRISP_CHECK_WARNING,
                        "chown root the directory, or set listen in [crisp] to a root-only one",
                        "the socket's directory '%s' belongs to uid %u, who can replace the "
                        "socket",
                        dir, (unsigned) st.st_uid);
  if ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))
    crisp_check_report (check, "socket", CRISP_CHECK_WARNING,
                        "chmod 0700 the directory, or set listen in [crisp] to a root-only one",
                        "the socket's directory '%s' is writable by others (mode %04o)", dir,
                        st.st_mode & 07777);
  if (access (dir, W_OK | X_OK) < 0)
    return crisp_check_state_dir (check, "socket", dir, "listen in [crisp]");
  crisp_check_report (check, "socket", CRISP_CHECK_OK, NULL, "'%s'%s", cfg->listen,
                      socket_is_served (cfg->listen) ? ": a crisp is serving it now" : "");
}

static void
run_checks (CrispCheck *check, const CrispConfig *cfg)
{
  check_privileges (check);
  if (cfg != NULL)
    {
      for (guint i = 0; i < cfg->runtimes->len; i++)
        check_runtime (check, cfg, cfg->runtimes->pdata[i]);
      check_monitor (check, cfg);
      check_cni (check, cfg);
      crisp_check_state_dir (check, "storage.root", cfg->root, "root in [crisp]");
      crisp_check_state_dir (check, "storage.run-root", cfg->run_root, "run-root in [crisp]");
      crisp_check_overlay (check, cfg->root);
      check_socket (check, cfg);
    }
  crisp_check_kernel (check, cfg);
}

static void
count (CrispCheck *check, guint *out_warnings, guint *out_problems)
{
  *out_warnings = *out_problems = 0;
  for (guint i = 0; i < check->results->len; i++)
    {
      CrispCheckResult *r = check->results->pdata[i];
      *out_warnings += r->status == CRISP_CHECK_WARNING;
      *out_problems += r->status == CRISP_CHECK_PROBLEM;
    }
}

static void
print_json (CrispCheck *check, guint warnings, guint problems)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "problems");
  json_builder_add_int_value (b, problems);
  json_builder_set_member_name (b, "warnings");
  json_builder_add_int_value (b, warnings);
  json_builder_set_member_name (b, "checks");
  json_builder_begin_array (b);
  for (guint i = 0; i < check->results->len; i++)
    {
      CrispCheckResult *r = check->results->pdata[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, r->name);
      json_builder_set_member_name (b, "status");
      json_builder_add_string_value (b, status_names[r->status]);
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, r->message);
      json_builder_set_member_name (b, "fix");
      r->fix ? json_builder_add_string_value (b, r->fix) : json_builder_add_null_value (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = json_to_string (root, TRUE);
  printf ("%s\n", text);
}

static void
print_text (CrispCheck *check, guint warnings, guint problems)
{
  for (guint i = 0; i < check->results->len; i++)
    {
      CrispCheckResult *r = check->results->pdata[i];
      printf ("%-8s %-24s %s\n", status_names[r->status], r->name, r->message);
      if (r->fix != NULL)
        printf ("%-8s %-24s fix: %s\n", "", "", r->fix);
    }
  printf ("%u problem%s, %u warning%s\n", problems, problems == 1 ? "" : "s", warnings,
          warnings == 1 ? "" : "s");
}

int
crisp_check_main (const CrispConfig *cfg, const GError *config_error, GPtrArray *config_warnings,
                  gboolean json)
{
  CrispCheck check = { g_ptr_array_new_with_free_func ((GDestroyNotify) result_free) };
  check_config (&check, cfg, config_error, config_warnings);
  run_checks (&check, cfg);
  guint warnings, problems;
  count (&check, &warnings, &problems);
  if (json)
    print_json (&check, warnings, problems);
  else
    print_text (&check, warnings, problems);
  g_ptr_array_unref (check.results);
  return problems > 0 ? 1 : 0;
}
