/* The configuration schema as roff, for the man pages: the templates in docs/man/ name the
 * schema's keys and defaults, and this file fills them in, so the pages cannot drift from it. */
#include "config.h"

#include "config-private.h"
#include "crisp-error.h"

#include <string.h>

/* text as roff input.  A literal (a key, a path, a value someone may copy) gets "\-" for each
 * hyphen so that it renders as the ASCII hyphen-minus it is; prose keeps the hyphens inside its
 * words and escapes those that start one ("--root"). */
static void
append_roff (GString *out, const char *text, gboolean literal)
{
  for (const char *p = text; *p != '\0'; p++)
    {
      /* A '.' or '\'' where a line starts would be read as a request. */
      if ((*p == '.' || *p == '\'') && (p == text || p[-1] == '\n'))
        g_string_append (out, "\\&");
      if (*p == '\\')
        g_string_append (out, "\\e");
      else if (*p == '-' && (literal || p == text || !g_ascii_isalnum (p[-1])))
        g_string_append (out, "\\-");
      else
        g_string_append_c (out, *p);
    }
}

/* What a key's value looks like, for the tag line of its entry. */
static void
append_placeholder (GString *out, const CrispConfigKey *row)
{
  static const char *const fixed[] = {
    [CRISP_CONFIG_STRING] = "\\fItext\\fR",
    [CRISP_CONFIG_PATH] = "\\fIpath\\fR",
    [CRISP_CONFIG_COMMAND] = "\\fIpath\\fR|\\fIcommand\\fR",
    [CRISP_CONFIG_BOOL] = "\\fBtrue\\fR|\\fBfalse\\fR",
    [CRISP_CONFIG_STRV] = "\\fIitem\\fR[\\fB;\\fR\\fIitem\\fR...]",
    [CRISP_CONFIG_PATHV] = "\\fIpath\\fR[\\fB;\\fR\\fIpath\\fR...]",
  };
  if (row->type == CRISP_CONFIG_INT)
    g_string_append_printf (out, "\\fIinteger\\fR (%d to %d)", row->min, row->max);
  else if (row->type == CRISP_CONFIG_ENUM)
    for (const char *const *c = row->choices; *c != NULL; c++)
      {
        g_string_append (out, c == row->choices ? "\\fB" : "|\\fB");
        append_roff (out, *c, TRUE);
        g_string_append (out, "\\fR");
      }
  else
    g_string_append (out, fixed[row->type]);
}

/* One .TP entry; defaults is the configuration the default is read from, NULL for the keys of
 * a [runtime.NAME] group, whose defaults depend on the name (their help text says how). */
static void
append_key (GString *out, const CrispConfigKey *row, const CrispConfig *defaults)
{
  g_string_append (out, ".TP\n\\fB");
  append_roff (out, row->key, TRUE);
  g_string_append (out, "\\fR = ");
  append_placeholder (out, row);
  g_string_append_c (out, '\n');
  append_roff (out, row->help, FALSE);
  g_string_append_c (out, '\n');
  if (row->optional)
    g_string_append (out, "An empty value unsets it.\n");
  g_autofree char *value = defaults != NULL ? crisp_config_value_format (row, defaults) : NULL;
  if (value != NULL)
    {
      g_string_append (out, "Default: \\fB");
      append_roff (out, value, TRUE);
      g_string_append (out, "\\fR.\n");
    }
  else if (row->optional && defaults != NULL)
    g_string_append (out, "Unset by default.\n");
}

static void
append_group (GString *out, const char *group, const CrispConfig *defaults)
{
  g_string_append (out, ".SS [");
  append_roff (out, group, TRUE);
  g_string_append (out, "]\n");
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    if (g_strcmp0 (crisp_config_schema[i].group, group) == 0)
      append_key (out, &crisp_config_schema[i], defaults);
}

static void
append_handler_group (GString *out, const CrispConfig *defaults)
{
  g_string_append (out, ".SS [" CRISP_RUNTIME_GROUP_PREFIX "\\fINAME\\fR]\n"
                        "One group for each runtime handler.\n"
                        "Built in:");
  for (guint i = 0; i < defaults->runtimes->len; i++)
    {
      const CrispRuntimeHandler *handler = defaults->runtimes->pdata[i];
      g_string_append (out, i == 0 ? " \\fB" : ", \\fB");
      append_roff (out, handler->name, TRUE);
      g_string_append (out, "\\fR");
    }
  g_string_append (out, ".\n");
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    if (crisp_config_schema[i].group == NULL)
      append_key (out, &crisp_config_schema[i], NULL);
}

/* Every group in the order `crisp config` prints them, the handler groups after [runtime].
 * Ends without a newline: the template's line supplies it. */
static void
append_schema (GString *out, const CrispConfig *defaults)
{
  for (const char *const *group = crisp_config_schema_groups (); *group != NULL; group++)
    {
      append_group (out, *group, defaults);
      if (g_str_equal (*group, "runtime"))
        append_handler_group (out, defaults);
    }
  if (out->len > 0 && out->str[out->len - 1] == '\n')
    g_string_truncate (out, out->len - 1);
}

/* The value of @name@: a fixed name, or "<group>.<key>" for a key's default. */
static gboolean
append_reference (GString *out, const char *name, const CrispConfig *defaults, GError **error)
{
  if (g_str_equal (name, "KEYS"))
    {
      append_schema (out, defaults);
      return TRUE;
    }
  const struct
  {
    const char *name, *value;
  } fixed[] = {
    { "CONFIG_FILE", CRISP_CONFIG_FILE },
    { "CONFIG_DIR", CRISP_CONFIG_DIR },
    { "VERSION", PACKAGE_VERSION },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
    if (g_str_equal (name, fixed[i].name))
      {
        append_roff (out, fixed[i].value, TRUE);
        return TRUE;
      }

  const char *dot = strchr (name, '.');
  g_autofree char *group = dot != NULL ? g_strndup (name, (gsize) (dot - name)) : NULL;
  const CrispConfigKey *row = dot != NULL ? crisp_config_schema_lookup (group, dot + 1) : NULL;
  if (row == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "'@%s@' names no configuration key",
                        name);
  g_autofree char *value = crisp_config_value_format (row, defaults);
  if (value == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "configuration key '%s' has no default", name);
  append_roff (out, value, TRUE);
  return TRUE;
}

/* The length of the name in "@name@" at p (which points past the first '@'); 0 if none. */
static size_t
reference_length (const char *p)
{
  size_t n = strspn (p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
  return n > 0 && p[n] == '@' ? n : 0;
}

char *
crisp_config_man_expand (const char *template, GError **error)
{
  g_autoptr (CrispConfig) defaults = crisp_config_new ();
  g_autoptr (GString) out = g_string_new (NULL);
  for (const char *p = template; *p != '\0'; p++)
    {
      size_t n = *p == '@' ? reference_length (p + 1) : 0;
      if (n == 0)
        {
          g_string_append_c (out, *p);
          continue;
        }
      g_autofree char *name = g_strndup (p + 1, n);
      if (!append_reference (out, name, defaults, error))
        return NULL;
      p += n + 1;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}
