/* Building the effective configuration: defaults, then files, then overrides, then the
 * cross-key checks.  Library code: failures travel as GError, warnings go back to the caller. */
#include "config.h"

#include "config-private.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

/* A config file is a few kilobytes; anything near this is a mistake, not a config. */
#define CONFIG_MAX_SIZE (1024 * 1024)

/* sun_path of struct sockaddr_un holds 108 bytes with the terminating NUL. */
#define SOCKET_PATH_MAX 107

static const char *const builtin_runtimes[] = { "runc", "crun", NULL };

/* Frees the schema fields of a CrispRuntimeHandler (handler) or of a CrispConfig. */
static void
clear_fields (void *base, gboolean handler)
{
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    if ((crisp_config_schema[i].group == NULL) == handler)
      crisp_config_value_clear (&crisp_config_schema[i], base);
}

CrispRuntimeHandler *
crisp_runtime_handler_new (const char *name)
{
  CrispRuntimeHandler *handler = g_new0 (CrispRuntimeHandler, 1);
  handler->name = g_strdup (name);
  handler->path = g_strdup (name);
  return handler;
}

void
crisp_runtime_handler_free (CrispRuntimeHandler *handler)
{
  if (handler == NULL)
    return;
  clear_fields (handler, TRUE);
  g_free (handler->name);
  g_free (handler);
}

gboolean
crisp_config_runtime_name_is_valid (const char *name)
{
  size_t len = strlen (name);
  if (len == 0 || len > 63 || !(g_ascii_islower (name[0]) || g_ascii_isdigit (name[0])))
    return FALSE;
  for (size_t i = 1; i < len; i++)
    if (!g_ascii_islower (name[i]) && !g_ascii_isdigit (name[i]) && name[i] != '.'
        && name[i] != '-')
      return FALSE;
  return TRUE;
}

static int
compare_handlers (gconstpointer a, gconstpointer b)
{
  const CrispRuntimeHandler *const *ha = a, *const *hb = b;
  return strcmp ((*ha)->name, (*hb)->name);
}

static CrispRuntimeHandler *
find_runtime (const CrispConfig *self, const char *name)
{
  for (guint i = 0; i < self->runtimes->len; i++)
    {
      CrispRuntimeHandler *handler = self->runtimes->pdata[i];
      if (strcmp (handler->name, name) == 0)
        return handler;
    }
  return NULL;
}

/* The handler a [runtime.<name>] group configures, created on first mention. */
static CrispRuntimeHandler *
ensure_runtime (CrispConfig *self, const char *name)
{
  CrispRuntimeHandler *handler = find_runtime (self, name);
  if (handler == NULL)
    {
      handler = crisp_runtime_handler_new (name);
      g_ptr_array_add (self->runtimes, handler);
      g_ptr_array_sort (self->runtimes, compare_handlers);
    }
  return handler;
}

static void
apply_defaults (CrispConfig *self)
{
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    {
      const CrispConfigKey *row = &crisp_config_schema[i];
      g_autoptr (GError) error = NULL;
      if (row->group == NULL || row->default_value == NULL)
        continue;
      if (!crisp_config_value_parse (row, self, row->default_value, NULL, row->key, &error))
        g_error ("crisp: built-in default is invalid: %s", error->message);
    }
}

CrispConfig *
crisp_config_new (void)
{
  CrispConfig *self = g_new0 (CrispConfig, 1);
  self->runtimes = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_runtime_handler_free);
  self->sources = g_ptr_array_new_with_free_func (g_free);
  apply_defaults (self);
  for (size_t i = 0; builtin_runtimes[i] != NULL; i++)
    ensure_runtime (self, builtin_runtimes[i]);
  return self;
}

void
crisp_config_free (CrispConfig *self)
{
  if (self == NULL)
    return;
  clear_fields (self, FALSE);
  g_ptr_array_unref (self->runtimes);
  g_ptr_array_unref (self->sources);
  g_free (self);
}

/* Where a group's keys go: the config itself, a runtime handler, or nowhere (unknown group:
 * *out_base is NULL).  Fails only for a runtime group with an invalid handler name. */
static gboolean
resolve_group (CrispConfig *self, const char *group, const char *source, void **out_base,
               const char **out_schema_group, GError **error)
{
  *out_base = NULL;
  *out_schema_group = NULL;
  if (g_str_has_prefix (group, CRISP_RUNTIME_GROUP_PREFIX))
    {
      const char *name = group + strlen (CRISP_RUNTIME_GROUP_PREFIX);
      if (!crisp_config_runtime_name_is_valid (name))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "%s: [%s]: invalid runtime handler name '%s' (expected lowercase "
                            "letters, digits, '.' and '-', starting with a letter or digit, "
                            "at most 63 characters)",
                            source, group, name);
      *out_base = ensure_runtime (self, name);
    }
  else if (g_strv_contains (crisp_config_schema_groups (), group))
    {
      *out_base = self;
      *out_schema_group = group;
    }
  return TRUE;
}

static gboolean
load_key (GKeyFile *kf, const char *path, const char *group, const char *key,
          const CrispConfigKey *row, void *base, GError **error)
{
  g_autofree char *where = g_strdup_printf ("%s: [%s] %s", path, group, key);
  g_autoptr (GError) local = NULL;
  g_auto (GStrv) items = NULL;
  g_autofree char *value = NULL;

  if (row->type == CRISP_CONFIG_STRV || row->type == CRISP_CONFIG_PATHV)
    items = g_key_file_get_string_list (kf, group, key, NULL, &local);
  else
    value = g_key_file_get_string (kf, group, key, &local);
  if (local != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: %s", where, local->message);
  return crisp_config_value_parse (row, base, value, (const char *const *) items, where, error);
}

static gboolean
load_group (CrispConfig *self, GKeyFile *kf, const char *path, const char *group,
            GPtrArray *warnings, GError **error)
{
  void *base;
  const char *schema_group;
  if (!resolve_group (self, group, path, &base, &schema_group, error))
    return FALSE;
  if (base == NULL)
    {
      if (warnings != NULL)
        g_ptr_array_add (warnings,
                         g_strdup_printf ("%s: [%s]: unknown group, ignoring", path, group));
      return TRUE;
    }
  g_auto (GStrv) keys = g_key_file_get_keys (kf, group, NULL, NULL);
  for (size_t i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      const CrispConfigKey *row = crisp_config_schema_lookup (schema_group, keys[i]);
      if (row == NULL && warnings != NULL)
        g_ptr_array_add (
            warnings, g_strdup_printf ("%s: [%s] %s: unknown key, ignoring", path, group, keys[i]));
      if (row != NULL && !load_key (kf, path, group, keys[i], row, base, error))
        return FALSE;
    }
  return TRUE;
}

/* Reads one file over self; a file that does not exist is skipped. */
static gboolean
load_file (CrispConfig *self, const char *path, GPtrArray *warnings, GError **error)
{
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  int r = crisp_read_all_at (AT_FDCWD, path, CONFIG_MAX_SIZE, &data, &len);
  if (r == -ENOENT)
    return TRUE;
  if (r == -EFBIG)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: larger than %d bytes", path,
                        CONFIG_MAX_SIZE);
  if (r < 0)
    return crisp_throw_errno (error, r, "reading %s", path);

  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  if (!g_key_file_load_from_data (kf, data, len, G_KEY_FILE_NONE, &local))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: %s", path, local->message);
  g_debug ("reading configuration from %s", path);
  g_ptr_array_add (self->sources, g_strdup (path));

  g_auto (GStrv) groups = g_key_file_get_groups (kf, NULL);
  for (size_t i = 0; groups[i] != NULL; i++)
    if (!load_group (self, kf, path, groups[i], warnings, error))
      return FALSE;
  return TRUE;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The drop-in names in dir, sorted bytewise so the order does not depend on the locale. */
static GPtrArray *
list_dropins (const char *dir, GError **error)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &local);
  if (d == NULL && g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    return g_steal_pointer (&names);
  if (d == NULL)
    {
      crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s", local->message);
      return NULL;
    }
  const char *name;
  /* Names starting with '.' are editors' and package managers' temporary files. */
  while ((name = g_dir_read_name (d)) != NULL)
    if (name[0] != '.' && g_str_has_suffix (name, ".conf"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  return g_steal_pointer (&names);
}

gboolean
crisp_config_load_files (CrispConfig *self, const char *main_file, const char *dropin_dir,
                         GPtrArray *warnings, GError **error)
{
  if (main_file != NULL && !load_file (self, main_file, warnings, error))
    return FALSE;
  if (dropin_dir == NULL)
    return TRUE;
  g_autoptr (GPtrArray) names = list_dropins (dropin_dir, error);
  if (names == NULL)
    return FALSE;
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dropin_dir, names->pdata[i], NULL);
      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
        {
          if (warnings != NULL)
            g_ptr_array_add (warnings, g_strdup_printf ("%s: not a regular file, ignoring", path));
          continue;
        }
      if (!load_file (self, path, warnings, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
crisp_config_set (CrispConfig *self, const char *group, const char *key, const char *value,
                  const char *origin, GError **error)
{
  g_autofree char *where
      = origin != NULL ? g_strdup (origin) : g_strdup_printf ("[%s] %s", group, key);
  void *base;
  const char *schema_group;
  if (!resolve_group (self, group, where, &base, &schema_group, error))
    return FALSE;
  const CrispConfigKey *row = base != NULL ? crisp_config_schema_lookup (schema_group, key) : NULL;
  if (row == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s%sunknown key [%s] %s",
                        origin != NULL ? origin : "", origin != NULL ? ": " : "", group, key);
  return crisp_config_value_parse (row, base, value, NULL, where, error);
}

char *
crisp_config_runtime_root (const CrispConfig *self, const CrispRuntimeHandler *handler)
{
  if (handler->root != NULL)
    return g_strdup (handler->root);
  return g_build_filename (self->run_root, "runtime", handler->name, NULL);
}

/* Equal, or one inside the other. */
static gboolean
paths_overlap (const char *a, const char *b)
{
  g_autofree char *ca = g_canonicalize_filename (a, "/");
  g_autofree char *cb = g_canonicalize_filename (b, "/");
  size_t la = strlen (ca), lb = strlen (cb);
  if (la > lb)
    return paths_overlap (b, a);
  return strncmp (ca, cb, la) == 0 && (la == lb || cb[la] == '/' || la == 1);
}

static char *
runtime_names (const CrispConfig *self)
{
  g_autoptr (GString) s = g_string_new (NULL);
  for (guint i = 0; i < self->runtimes->len; i++)
    {
      const CrispRuntimeHandler *handler = self->runtimes->pdata[i];
      g_string_append_printf (s, "%s%s", i > 0 ? ", " : "", handler->name);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gboolean
validate_runtimes (CrispConfig *self, GError **error)
{
  if (crisp_config_get_runtime (self, NULL) == NULL)
    {
      g_autofree char *names = runtime_names (self);
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "[runtime] default-runtime: no runtime handler named '%s' "
                          "(configured: %s)",
                          self->default_runtime, names);
    }
  for (guint i = 0; i < self->runtimes->len; i++)
    {
      CrispRuntimeHandler *handler = self->runtimes->pdata[i];
      if (handler->root == NULL)
        handler->root = crisp_config_runtime_root (self, handler);
      for (guint j = 0; j < i; j++)
        {
          const CrispRuntimeHandler *other = self->runtimes->pdata[j];
          if (paths_overlap (handler->root, other->root))
            return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                                "[runtime.%s] root: '%s' overlaps the root of [runtime.%s] '%s'",
                                handler->name, handler->root, other->name, other->root);
        }
    }
  return TRUE;
}

gboolean
crisp_config_validate (CrispConfig *self, GError **error)
{
  if (paths_overlap (self->root, self->run_root))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "[crisp] run-root: '%s' overlaps root '%s' (persistent and runtime "
                        "state must be kept apart)",
                        self->run_root, self->root);
  if (strlen (self->listen) > SOCKET_PATH_MAX)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "[crisp] listen: '%s' is longer than a unix socket path can be (%d bytes)",
                        self->listen, SOCKET_PATH_MAX);
  return validate_runtimes (self, error);
}

const CrispRuntimeHandler *
crisp_config_get_runtime (const CrispConfig *self, const char *name)
{
  if (name == NULL || *name == '\0')
    name = self->default_runtime;
  return find_runtime (self, name);
}
