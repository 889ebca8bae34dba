/* One configuration value: parsing it by its schema type, with errors that name where it came
 * from, and printing it back in GKeyFile syntax. */
#include "config.h"

#include "config-private.h"
#include "crisp-error.h"

#include <string.h>

#define FIELD_PTR(row, base) ((void *) ((char *) (base) + (row)->offset))

static gboolean
invalid_value (GError **error, const char *where, const char *value, const char *expected)
{
  return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: invalid value '%s' (expected %s)",
                      where, value, expected);
}

/* "error, warning, info or debug" */
static char *
choices_text (const char *const *choices)
{
  g_autoptr (GString) s = g_string_new (NULL);
  for (size_t i = 0; choices[i] != NULL; i++)
    {
      if (i > 0)
        g_string_append (s, choices[i + 1] == NULL ? " or " : ", ");
      g_string_append (s, choices[i]);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gboolean
is_command (const char *value)
{
  return g_path_is_absolute (value) || (*value != '\0' && strchr (value, '/') == NULL);
}

/* What a string of this row must look like: NULL when value is fine. */
static char *
string_expected (const CrispConfigKey *row, const char *value)
{
  const char *expected = NULL;
  if (row->type == CRISP_CONFIG_PATH && !g_path_is_absolute (value))
    expected = "an absolute path";
  else if (row->type == CRISP_CONFIG_COMMAND && !is_command (value))
    expected = "an absolute path or a command name";
  else if (row->type == CRISP_CONFIG_ENUM && !g_strv_contains (row->choices, value))
    return choices_text (row->choices);
  else if (row->check != NULL)
    expected = row->check (value);
  return g_strdup (expected);
}

static gboolean
parse_string (const CrispConfigKey *row, char **field, const char *value, const char *where,
              GError **error)
{
  /* An optional key set to "" is unset again, so a drop-in can clear what another set. */
  if (*value == '\0' && row->optional)
    {
      g_clear_pointer (field, g_free);
      return TRUE;
    }
  g_autofree char *expected = string_expected (row, value);
  if (expected != NULL)
    return invalid_value (error, where, value, expected);
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

static gboolean
parse_bool (gboolean *field, const char *value, const char *where, GError **error)
{
  /* The spellings GKeyFile itself accepts for a boolean. */
  if (strcmp (value, "true") == 0 || strcmp (value, "1") == 0)
    *field = TRUE;
  else if (strcmp (value, "false") == 0 || strcmp (value, "0") == 0)
    *field = FALSE;
  else
    return invalid_value (error, where, value, "true or false");
  return TRUE;
}

static gboolean
parse_int (const CrispConfigKey *row, int *field, const char *value, const char *where,
           GError **error)
{
  gint64 n;
  if (!g_ascii_string_to_signed (value, 10, row->min, row->max, &n, NULL))
    {
      g_autofree char *expected = g_strdup_printf ("an integer from %d to %d", row->min, row->max);
      return invalid_value (error, where, value, expected);
    }
  *field = (int) n;
  return TRUE;
}

/* Empty items are dropped: they come from a trailing or doubled ';'. */
static gboolean
parse_list (const CrispConfigKey *row, char ***field, const char *value, const char *const *items,
            const char *where, GError **error)
{
  g_auto (GStrv) split = NULL;
  if (items == NULL)
    items = (const char *const *) (split = g_strsplit (value, ";", -1));
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  for (size_t i = 0; items[i] != NULL; i++)
    {
      if (items[i][0] == '\0')
        continue;
      if (row->type == CRISP_CONFIG_PATHV && !g_path_is_absolute (items[i]))
        return invalid_value (error, where, items[i], "a list of absolute paths");
      g_strv_builder_add (builder, items[i]);
    }
  g_strfreev (*field);
  *field = g_strv_builder_end (builder);
  return TRUE;
}

gboolean
crisp_config_value_parse (const CrispConfigKey *row, void *base, const char *value,
                          const char *const *items, const char *where, GError **error)
{
  void *field = FIELD_PTR (row, base);
  switch (row->type)
    {
    case CRISP_CONFIG_STRV:
    case CRISP_CONFIG_PATHV:
      return parse_list (row, field, value, items, where, error);
    case CRISP_CONFIG_BOOL:
      return parse_bool (field, value, where, error);
    case CRISP_CONFIG_INT:
      return parse_int (row, field, value, where, error);
    case CRISP_CONFIG_STRING:
    case CRISP_CONFIG_PATH:
    case CRISP_CONFIG_COMMAND:
    case CRISP_CONFIG_ENUM:
      return parse_string (row, field, value, where, error);
    }
  g_assert_not_reached ();
}

void
crisp_config_value_clear (const CrispConfigKey *row, void *base)
{
  void *field = FIELD_PTR (row, base);
  if (row->type == CRISP_CONFIG_STRV || row->type == CRISP_CONFIG_PATHV)
    g_clear_pointer ((char ***) field, g_strfreev);
  else if (row->type != CRISP_CONFIG_BOOL && row->type != CRISP_CONFIG_INT)
    g_clear_pointer ((char **) field, g_free);
}

/* GKeyFile does the escaping, so whatever it prints it reads back the same. */
static char *
format_list (char *const *items)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_key_file_set_string_list (kf, "g", "k", (const char *const *) items,
                              g_strv_length ((char **) items));
  g_autofree char *raw = g_key_file_get_value (kf, "g", "k", NULL);
  size_t len = strlen (raw);
  /* GKeyFile ends every item with ';'; the last one reads better without. */
  if (len > 0 && raw[len - 1] == ';' && (len < 2 || raw[len - 2] != '\\'))
    raw[len - 1] = '\0';
  return g_steal_pointer (&raw);
}

char *
crisp_config_value_format (const CrispConfigKey *row, const void *base)
{
  const void *field = (const char *) base + row->offset;
  switch (row->type)
    {
    case CRISP_CONFIG_STRV:
    case CRISP_CONFIG_PATHV:
      return format_list (*(char *const *const *) field);
    case CRISP_CONFIG_BOOL:
      return g_strdup (*(const gboolean *) field ? "true" : "false");
    case CRISP_CONFIG_INT:
      return g_strdup_printf ("%d", *(const int *) field);
    case CRISP_CONFIG_STRING:
    case CRISP_CONFIG_PATH:
    case CRISP_CONFIG_COMMAND:
    case CRISP_CONFIG_ENUM:
      break;
    }
  const char *s = *(char *const *) field;
  if (s == NULL)
    return NULL;
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_key_file_set_string (kf, "g", "k", s);
  return g_key_file_get_value (kf, "g", "k", NULL);
}
