/* The configuration schema: one row per key, and the per-type value code the loader, the
 * command-line overrides and the printer share.  A module adds a key by adding a field to
 * CrispConfig and a row to config-schema.c. */
#pragma once

#include "crisp-config.h"

#include <stddef.h>

G_BEGIN_DECLS

typedef enum
{
  CRISP_CONFIG_STRING,  /* char *; any text */
  CRISP_CONFIG_PATH,    /* char *; an absolute path */
  CRISP_CONFIG_COMMAND, /* char *; an absolute path, or a bare name looked up on PATH */
  CRISP_CONFIG_BOOL,    /* gboolean */
  CRISP_CONFIG_INT,     /* int, from min to max */
  CRISP_CONFIG_ENUM,    /* char *; one of choices */
  CRISP_CONFIG_STRV,    /* char **; ';'-separated in the file */
  CRISP_CONFIG_PATHV,   /* char **; each element an absolute path */
} CrispConfigType;

typedef struct
{
  const char *group; /* NULL: a key of every [runtime.<name>] group */
  const char *key;
  CrispConfigType type;
  size_t offset;              /* into CrispConfig, or CrispRuntimeHandler when group is NULL */
  const char *default_value;  /* parsed like a command-line value; NULL: none (or computed) */
  const char *help;           /* one line, printed as a comment by crisp_config_to_data () */
  gboolean optional;          /* strings: "" unsets it (NULL) */
  int min, max;               /* CRISP_CONFIG_INT */
  const char *const *choices; /* CRISP_CONFIG_ENUM, NULL-terminated */
  /* Extra check on a parsed string: NULL when fine, else what was expected ("an IP address"). */
  const char *(*check) (const char *value);
} CrispConfigKey;

#define CRISP_RUNTIME_GROUP_PREFIX "runtime."

extern const CrispConfigKey crisp_config_schema[];
extern const size_t crisp_config_schema_len;

/* The group names of the schema, in order of first appearance (static, NULL-terminated). */
const char *const *crisp_config_schema_groups (void);
const CrispConfigKey *crisp_config_schema_lookup (const char *group, const char *key);

/* Values: `where` is "FILE: [group] key" (or the option's origin) and starts error messages.
 * A list value comes either as items (from a GKeyFile) or as one ';'-separated string. */
gboolean crisp_config_value_parse (const CrispConfigKey *row, void *base, const char *value,
                                   const char *const *items, const char *where, GError **error);
void crisp_config_value_clear (const CrispConfigKey *row, void *base);
/* The value in GKeyFile syntax (escaped), or NULL when unset. */
char *crisp_config_value_format (const CrispConfigKey *row, const void *base);

/* Runtime handlers. */
gboolean crisp_config_runtime_name_is_valid (const char *name);
CrispRuntimeHandler *crisp_runtime_handler_new (const char *name);
void crisp_runtime_handler_free (CrispRuntimeHandler *handler);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispRuntimeHandler, crisp_runtime_handler_free)
/* The root a handler uses: its own, or <run-root>/runtime/<name>. */
char *crisp_config_runtime_root (const CrispConfig *self, const CrispRuntimeHandler *handler);

G_END_DECLS
