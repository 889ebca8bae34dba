/* crisp: command line, configuration, start-up, signals and shutdown of the CRI server. */
#include "config.h"

#include "check.h"
#include "crisp-base.h"
#include "crisp-log.h"
#include "events.h"
#include "grpc.h"
#include "metrics.h"
#include "notify.h"
#include "status.h"
#include "pkg/sandbox/sandbox.h"
#include "pkg/store/state-version.h"
#include "recent-errors.h"
#include "server.h"
#include "watchdog.h"

#include <fcntl.h>
#include <glib-unix.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

/* Command-line options: the only globals in crisp. */
static char *opt_config;
static char *opt_config_dir;
static char *opt_listen;
static char *opt_root;
static char *opt_run_root;
static char *opt_log_level;
static char *opt_cgroup_driver;
static char *opt_default_runtime;
static char *opt_cni_config_dir;
static char **opt_cni_plugin_dirs;
static char *opt_streaming_address;
static char *opt_streaming_port;
static gboolean opt_version;
static gboolean opt_json;

static GOptionEntry option_entries[] = {
  { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config,
    "Main configuration file (default " CRISP_CONFIG_FILE ")", "FILE" },
  { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_config_dir,
    "Drop-in directory read after it, *.conf in lexical order (default " CRISP_CONFIG_DIR ")",
    "DIR" },
  { "listen", 0, 0, G_OPTION_ARG_FILENAME, &opt_listen, "Path of the CRI unix socket", "PATH" },
  { "root", 0, 0, G_OPTION_ARG_FILENAME, &opt_root, "Persistent state directory", "DIR" },
  { "run-root", 0, 0, G_OPTION_ARG_FILENAME, &opt_run_root, "Runtime state directory (tmpfs)",
    "DIR" },
  { "log-level", 0, 0, G_OPTION_ARG_STRING, &opt_log_level,
    "Log level: error, warning, info or debug", "LEVEL" },
  { "cgroup-driver", 0, 0, G_OPTION_ARG_STRING, &opt_cgroup_driver,
    "Cgroup driver: cgroupfs or systemd", "DRIVER" },
  { "default-runtime", 0, 0, G_OPTION_ARG_STRING, &opt_default_runtime,
    "Runtime handler used when a pod names none", "NAME" },
  { "cni-config-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_cni_config_dir,
    "Directory of CNI network configuration files", "DIR" },
  { "cni-plugin-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_cni_plugin_dirs,
    "Directory searched for CNI plugins (repeatable; replaces the configured list)", "DIR" },
  { "streaming-address", 0, 0, G_OPTION_ARG_STRING, &opt_streaming_address,
    "Address the streaming server listens on", "ADDR" },
  { "streaming-port", 0, 0, G_OPTION_ARG_STRING, &opt_streaming_port,
    "Port of the streaming server (0: random)", "PORT" },
  { "version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "check, status: print the report as JSON", NULL },
  { NULL },
};

static gboolean
apply_overrides (CrispConfig *cfg, GError **error)
{
  const struct
  {
    const char *group, *key, *value, *flag;
  } o[] = {
    { "crisp", "listen", opt_listen, "--listen" },
    { "crisp", "root", opt_root, "--root" },
    { "crisp", "run-root", opt_run_root, "--run-root" },
    { "crisp", "log-level", opt_log_level, "--log-level" },
    { "runtime", "cgroup-driver", opt_cgroup_driver, "--cgroup-driver" },
    { "runtime", "default-runtime", opt_default_runtime, "--default-runtime" },
    { "network", "cni-config-dir", opt_cni_config_dir, "--cni-config-dir" },
    { "streaming", "address", opt_streaming_address, "--streaming-address" },
    { "streaming", "port", opt_streaming_port, "--streaming-port" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (o); i++)
    if (o[i].value != NULL
        && !crisp_config_set (cfg, o[i].group, o[i].key, o[i].value, o[i].flag, error))
      return FALSE;
  if (opt_cni_plugin_dirs != NULL)
    {
      g_autofree char *joined = g_strjoinv (";", opt_cni_plugin_dirs);
      if (!crisp_config_set (cfg, "network", "cni-plugin-dirs", joined, "--cni-plugin-dir", error))
        return FALSE;
    }
  return TRUE;
}

/* Files, then flags, then the cross-key checks; warnings are handed back for logging. */
static CrispConfig *
load_config (GPtrArray *warnings, GError **error)
{
  g_autoptr (CrispConfig) cfg = crisp_config_new ();
  if (!crisp_config_load_files (cfg, opt_config ? opt_config : CRISP_CONFIG_FILE,
                                opt_config_dir ? opt_config_dir : CRISP_CONFIG_DIR, warnings, error)
      || !apply_overrides (cfg, error) || !crisp_config_validate (cfg, error))
    return NULL;
  return g_steal_pointer (&cfg);
}

/* The socket's directory is ours and 0700; a lock beside the socket keeps a second crisp
 * from letting gRPC unlink a live socket. Returns the held lock fd. */
/* How long start-up waits for a predecessor's lock. */
#define LOCK_WAIT_MS 3000

static int
take_socket_lock (const char *socket_path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (socket_path);
  int r = crisp_mkdir_p (dir, 0700);
  if (r < 0)
    return crisp_throw_errno (error, r, "creating socket directory '%s'", dir), -1;
  struct stat st;
  if (stat (dir, &st) == 0 && (st.st_mode & 0022) && !(st.st_mode & S_ISVTX))
    g_warning ("socket directory '%s' is writable by others; use a root-only directory", dir);
  g_autofree char *lock_path = g_strconcat (socket_path, ".lock", NULL);
  _cleanup_close_ int fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "opening lock file '%s'", lock_path), -1;
  /* A crisp killed in the middle of a call can leave a forked helper that still holds the
   * lock (and its copy of the socket) for a moment: give it time to finish before deciding
   * that another crisp serves. */
  int r2;
  for (int waited = 0;
       (r2 = flock (fd, LOCK_EX | LOCK_NB)) < 0 && errno == EWOULDBLOCK && waited < LOCK_WAIT_MS;
       waited += 20)
    {
      if (waited == 0)
        g_message ("'%s' is locked; waiting up to %d ms for it", lock_path, LOCK_WAIT_MS);
      g_usleep (20 * 1000);
    }
  if (r2 < 0)
    {
      if (errno == EWOULDBLOCK)
        crisp_throw (error, CRISP_ERROR_ALREADY_EXISTS,
                     "another crisp is already serving '%s' (lock '%s' is held)", socket_path,
                     lock_path);
      else
        crisp_throw_errno (error, errno, "locking '%s'", lock_path);
      return -1;
    }
  return take_fd (&fd);
}

static gboolean
ensure_state_dirs (CrispConfig *cfg, GError **error)
{
  const char *dirs[] = { cfg->root, cfg->run_root };
  for (gsize i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      int r = crisp_mkdir_p (dirs[i], 0700);
      if (r < 0)
        return crisp_throw_errno (error, r, "creating state directory '%s'", dirs[i]);
      /* Before anything reads a record: a state written by a newer crisp is refused, never
       * quarantined or rewritten by a crisp that would misread it. */
      guint found = 0;
      if (!crisp_state_version_check (dirs[i], CRISP_STATE_VERSION, NULL, &found, error))
        return FALSE;
      if (found != CRISP_STATE_VERSION)
        g_message ("state '%s': migrated from format version %u to %u", dirs[i], found,
                   CRISP_STATE_VERSION);
    }
  return TRUE;
}

static gboolean
on_shutdown_done (gpointer data)
{
  CrispServer *self = data;
  g_main_loop_quit (self->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
on_terminate (gpointer data)
{
  CrispServer *self = data;
  g_message ("stopping: no new calls; in-flight calls have %d s", self->config->shutdown_grace);
  crisp_notify ("STOPPING=1");
  crisp_events_close (self->events);
  crisp_grpc_shutdown (self->grpc, (guint) self->config->shutdown_grace, on_shutdown_done, self);
  /* If a call never ends even once cancelled, leave anyway: containers are not ours to wait on. */
  g_timeout_add_seconds ((guint) self->config->shutdown_grace + 5, on_shutdown_done, self);
  return G_SOURCE_CONTINUE;
}

/* Takes value: the running configuration's copy of a key that changed live. */
static void
set_live (CrispServer *self, char **field, const char *value)
{
  g_mutex_lock (&self->lock);
  g_free (*field);
  *field = g_strdup (value);
  g_mutex_unlock (&self->lock);
}

/* The CNI directory is read again whether or not its option changed: a file in it may have.
 * Pods made before keep the network list their attachment stores, for DEL too. */
static void
reload_network (CrispServer *self, const CrispConfig *fresh)
{
  CrispNetwork *net = self->pods != NULL ? crisp_pod_service_get_network (self->pods) : NULL;
  if (net == NULL)
    return;
  g_autofree char *changes = crisp_network_reload (net, fresh->cni_config_dir);
  if (changes != NULL)
    g_message ("reload: %s", changes);
  g_autofree char *message = NULL;
  if (!crisp_network_status (net, NULL, &message))
    g_warning ("reload: the network is not ready: %s", message);
  set_live (self, &self->config->cni_config_dir, fresh->cni_config_dir);
}

/* SIGHUP: re-read the files; the log level and the CNI configuration apply at once, anything
 * else needs a restart. */
static gboolean
on_reload (gpointer data)
{
  CrispServer *self = data;
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispConfig) fresh = load_config (warnings, &error);
  for (guint i = 0; i < warnings->len; i++)
    g_warning ("%s", (char *) warnings->pdata[i]);
  if (fresh == NULL)
    {
      g_warning ("reload: %s; keeping the running configuration", error->message);
      return G_SOURCE_CONTINUE;
    }
  if (g_strcmp0 (fresh->log_level, self->config->log_level) != 0)
    {
      g_message ("reload: log level '%s'", fresh->log_level);
      crisp_log_set_level (fresh->log_level);
      set_live (self, &self->config->log_level, fresh->log_level);
    }
  reload_network (self, fresh);
  /* What applies live is the same by now, so only what needs a restart is left to name. */
  g_autoptr (GPtrArray) changed = crisp_config_diff (self->config, fresh);
  for (guint i = 0; i < changed->len; i++)
    g_warning ("reload: %s changed; takes effect at the next start", (char *) changed->pdata[i]);
  return G_SOURCE_CONTINUE;
}

static void
server_run_cleanups (CrispServer *self)
{
  for (guint i = self->cleanups->len; i > 0; i--)
    {
      gpointer *pair = self->cleanups->pdata[i - 1];
      ((GDestroyNotify) pair[0]) (pair[1]);
    }
  g_ptr_array_set_size (self->cleanups, 0);
}

/* Frees what serve () set up, whether start-up finished or failed half-way. */
static void
server_free (CrispServer *self)
{
  server_run_cleanups (self);
  g_main_loop_unref (self->loop);
  g_hash_table_unref (self->methods);
  g_ptr_array_unref (self->cleanups);
  g_free (self->pod_cidr);
  crisp_recent_errors_free (self->recent_errors);
  g_mutex_clear (&self->lock);
}

static gboolean
init_areas (CrispServer *self, GError **error)
{
  /* Metrics first, for the others to report to; then the domain areas; the runtime area
   * fills in defaults for what they left open. */
  return crisp_metrics_handlers_init (self, error) && crisp_image_handlers_init (self, error)
         && crisp_pod_handlers_init (self, error) && crisp_container_handlers_init (self, error)
         && crisp_events_handlers_init (self, error)
         && crisp_pod_metrics_handlers_init (self, error)
         && crisp_streaming_handlers_init (self, error)
         && crisp_runtime_handlers_init (self, error);
}

/* started_us: the process's start (monotonic), for the recovery time metric and the uptime. */
static int
serve (CrispConfig *cfg, GPtrArray *warnings, gint64 started_us)
{
  g_autoptr (GError) error = NULL;
  CrispServer server = { 0 };
  CrispServer *self = &server;
  crisp_log_setup (cfg->log_level);
  for (guint i = 0; i < warnings->len; i++)
    g_warning ("%s", (char *) warnings->pdata[i]);
  signal (SIGPIPE, SIG_IGN);
  self->config = cfg;
  self->started_us = started_us;
  g_mutex_init (&self->lock);
  self->methods = crisp_methods_new ();
  self->cleanups = g_ptr_array_new_with_free_func (g_free);
  self->recent_errors = crisp_recent_errors_new (CRISP_RECENT_ERRORS_MAX);
  self->loop = g_main_loop_new (NULL, FALSE);
  _cleanup_close_ int lock_fd = -1;
  if (!ensure_state_dirs (cfg, &error) || (lock_fd = take_socket_lock (cfg->listen, &error)) < 0
      || !init_areas (self, &error) || !crisp_metrics_serve (self, &error)
      || (self->grpc = crisp_grpc_new (self, cfg->listen, &error)) == NULL
      || !crisp_grpc_start (self->grpc, &error))
    {
      g_printerr ("crisp: %s\n", error->message);
      server_free (self);
      return 1;
    }
  if (chmod (cfg->listen, 0660) < 0)
    g_warning ("chmod '%s': %s", cfg->listen, g_strerror (errno));
  g_unix_signal_add (SIGTERM, on_terminate, self);
  g_unix_signal_add (SIGINT, on_terminate, self);
  g_unix_signal_add (SIGHUP, on_reload, self);
  crisp_metrics_serving (self, started_us);
  g_message ("crisp %s serving CRI %s on unix://%s", PACKAGE_VERSION, "v1", cfg->listen);
  crisp_notify ("READY=1");
  CrispWatchdog *watchdog = crisp_watchdog_start (self->grpc);
  g_main_loop_run (self->loop);
  crisp_watchdog_free (watchdog);
  crisp_grpc_free (self->grpc);
  server_free (self);
  g_message ("stopped");
  return 0;
}

int
main (int argc, char **argv)
{
  gint64 started_us = g_get_monotonic_time ();
  /* glibc gives each thread that meets contention an arena of its own (up to 8 per core),
   * and keeps the pages an arena touched: with the gRPC workers that came and went, that was
   * half of the daemon's growth in one 15-round bench/all run (+596 kB against +276 kB with
   * two).  crisp's threads wait on I/O, not on malloc's lock. */
  mallopt (M_ARENA_MAX, 2);
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) ctx = g_option_context_new ("[COMMAND] - the crisp CRI runtime");
  g_option_context_set_summary (ctx, "Commands:\n"
                                     "  (none)    serve the CRI on the configured socket\n"
                                     "  config    print the effective configuration and exit\n"
                                     "  check     check this node without a daemon; exit 1 on "
                                     "a problem\n"
                                     "  status    ask the running daemon how it is; exit 1 "
                                     "when not ready, 2 when unreachable\n"
                                     "  version   print the version and exit");
  g_option_context_add_main_entries (ctx, option_entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("crisp: %s (see --help)\n", error->message);
      return 2;
    }
  const char *command = argc > 1 ? argv[1] : NULL;
  if (opt_version || g_strcmp0 (command, "version") == 0)
    {
      printf ("crisp version %s\nCRI API version %s\n", PACKAGE_VERSION, "v1");
      return 0;
    }
  if (argc > 2
      || (command != NULL && !g_str_equal (command, "config") && !g_str_equal (command, "check")
          && !g_str_equal (command, "status")))
    {
      if (argc > 2)
        g_printerr ("crisp: unexpected argument '%s' after the command (see --help)\n", argv[2]);
      else
        g_printerr ("crisp: unknown command '%s' (see --help)\n", command);
      return 2;
    }
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (CrispConfig) cfg = load_config (warnings, &error);
  if (g_strcmp0 (command, "check") == 0)
    return crisp_check_main (cfg, error, warnings, opt_json);
  if (cfg == NULL)
    {
      g_printerr ("crisp: %s\n", error->message);
      return g_strcmp0 (command, "status") == 0 ? 2 : 1;
    }
  if (g_strcmp0 (command, "status") == 0)
    return crisp_status_main (cfg->listen, opt_json);
  if (command != NULL)
    {
      for (guint i = 0; i < warnings->len; i++)
        g_printerr ("crisp: warning: %s\n", (char *) warnings->pdata[i]);
      g_autofree char *data = crisp_config_to_data (cfg);
      fputs (data, stdout);
      return 0;
    }
  return serve (cfg, warnings, started_us);
}
