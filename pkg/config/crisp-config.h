/* crisp's configuration: compiled-in defaults, then /etc/crisp/crisp.conf, then the drop-ins in
 * /etc/crisp/crisp.conf.d/ (lexical order), then command-line overrides.  The keys themselves are
 * described by the schema table in config-schema.c.
 *
 * Named crisp-config.h rather than config.h so that `#include "config.h"` keeps meaning
 * autoconf's header in every file, including the ones in this directory. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRISP_CONFIG_FILE SYSCONFDIR "/crisp/crisp.conf"
#define CRISP_CONFIG_DIR SYSCONFDIR "/crisp/crisp.conf.d"

/* One [runtime.<name>] group: an OCI runtime a Kubernetes RuntimeClass can name. */
typedef struct
{
  char *name;
  char *path;           /* absolute, or a bare command name looked up on PATH at use time */
  char *root;           /* runtime state dir; NULL until crisp_config_validate () derives it */
  char *monitor_cgroup; /* NULL: unset */
} CrispRuntimeHandler;

typedef struct CrispConfig
{
  char *listen, *root, *run_root, *log_level;
  int shutdown_grace;
  char *default_runtime, *cgroup_driver, *conmon;
  gboolean restrict_oom_score_adj;
  gboolean exec_direct;
  GPtrArray *runtimes; /* CrispRuntimeHandler*, sorted by name */
  char *cni_config_dir;
  char **cni_plugin_dirs;
  char *streaming_address;
  int streaming_port;
  gboolean metrics_enable;
  char *metrics_address;
  int metrics_port;
  char *registries_dir;
  int max_concurrent_downloads;
  GPtrArray *sources; /* the files that were read, in order (strings) */
} CrispConfig;

/* The compiled-in defaults, with the built-in handlers runc and crun. */
CrispConfig *crisp_config_new (void);
void crisp_config_free (CrispConfig *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispConfig, crisp_config_free)

/* Reads main_file (absent is fine) then dropin_dir/\*.conf in lexical order (absent dir is
 * fine; names starting with '.' are skipped).  Unknown keys and groups are appended to warnings
 * (may be NULL) as messages naming file, group and key, ending ", ignoring".  An invalid value
 * fails with CRISP_ERROR_INVALID_ARGUMENT naming file, group, key and value. */
gboolean crisp_config_load_files (CrispConfig *self, const char *main_file, const char *dropin_dir,
                                  GPtrArray *warnings, GError **error);

/* One override, e.g. ("crisp", "log-level", "debug", "--log-level"); origin names it in errors.
 * value is taken literally (no GKeyFile escapes); a list value is ';'-separated, so a
 * repeatable option joins its arguments with ';'.  group may be "runtime.<name>". */
gboolean crisp_config_set (CrispConfig *self, const char *group, const char *key, const char *value,
                           const char *origin, GError **error);

/* Cross-key checks after all sources (default-runtime exists, run-root and root apart, handler
 * roots distinct); also derives each handler's root from run-root when none was given. */
gboolean crisp_config_validate (CrispConfig *self, GError **error);

/* The effective configuration as a config file, each key preceded by its help text; loading it
 * back gives the same configuration. */
char *crisp_config_to_data (const CrispConfig *self);

/* The keys whose values differ, as "[group] key" in schema order, then "[runtime.<name>]" for
 * each handler only one of them has (strings; the files read are not compared). */
GPtrArray *crisp_config_diff (const CrispConfig *a, const CrispConfig *b);

/* A man page template with its references filled in from the schema: @KEYS@ becomes every group
 * and key as roff, @<group>.<key>@ that key's default, @CONFIG_FILE@, @CONFIG_DIR@ and @VERSION@
 * what they say.  A reference the schema does not know fails (CRISP_ERROR_INVALID_ARGUMENT), so
 * a page cannot go on naming a key that was renamed. */
char *crisp_config_man_expand (const char *template, GError **error);

/* The handler called name; NULL or "" means the default runtime.  NULL when there is none. */
const CrispRuntimeHandler *crisp_config_get_runtime (const CrispConfig *self, const char *name);

G_END_DECLS
