/* Printing the effective configuration as a config file (`crisp config`): every key with its
 * help text as a comment, unset optional keys commented out. */
#include "config.h"

#include "config-private.h"

static void
print_key (GString *out, const CrispConfigKey *row, const char *value)
{
  g_string_append_printf (out, "# %s\n", row->help);
  if (value != NULL)
    g_string_append_printf (out, "%s = %s\n", row->key, value);
  else
    g_string_append_printf (out, "#%s =\n", row->key);
}

static void
print_group (GString *out, const CrispConfig *self, const char *group)
{
  g_string_append_printf (out, "\n[%s]\n", group);
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    {
      const CrispConfigKey *row = &crisp_config_schema[i];
      if (g_strcmp0 (row->group, group) != 0)
        continue;
      g_autofree char *value = crisp_config_value_format (row, self);
      print_key (out, row, value);
    }
}

static void
print_runtime (GString *out, const CrispConfig *self, const CrispRuntimeHandler *handler)
{
  g_string_append_printf (out, "\n[" CRISP_RUNTIME_GROUP_PREFIX "%s]\n", handler->name);
  /* Before crisp_config_validate () the root is not filled in yet: print what it will be. */
  CrispRuntimeHandler effective = *handler;
  g_autofree char *root = crisp_config_runtime_root (self, handler);
  effective.root = root;
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    {
      const CrispConfigKey *row = &crisp_config_schema[i];
      if (row->group != NULL)
        continue;
      g_autofree char *value = crisp_config_value_format (row, &effective);
      print_key (out, row, value);
    }
}

static void
print_sources (GString *out, const CrispConfig *self)
{
  g_string_append (out, "# crisp: the effective configuration.\n");
  if (self->sources->len == 0)
    g_string_append (out, "# No configuration file was read: these are the built-in defaults.\n");
  for (guint i = 0; i < self->sources->len; i++)
    {
      /* A file name could hold a newline, which would end the comment. */
      g_autofree char *escaped = g_strescape (self->sources->pdata[i], NULL);
      g_string_append_printf (out, "# Read from %s\n", escaped);
    }
}

char *
crisp_config_to_data (const CrispConfig *self)
{
  g_autoptr (GString) out = g_string_new (NULL);
  print_sources (out, self);
  for (const char *const *group = crisp_config_schema_groups (); *group != NULL; group++)
    {
      print_group (out, self, *group);
      /* The handlers belong with [runtime]. */
      if (g_str_equal (*group, "runtime"))
        for (guint i = 0; i < self->runtimes->len; i++)
          print_runtime (out, self, self->runtimes->pdata[i]);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}
