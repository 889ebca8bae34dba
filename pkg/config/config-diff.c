/* Which keys differ between two configurations, compared through the schema, for a reload to
 * name what it cannot apply. */
#include "config.h"

#include "config-private.h"

/* Rows of `group` (NULL: a handler's rows) whose values in a and b differ, named `label`. */
static void
diff_rows (GPtrArray *out, const char *group, const char *label, const void *a, const void *b)
{
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    {
      const CrispConfigKey *row = &crisp_config_schema[i];
      if (g_strcmp0 (row->group, group) != 0)
        continue;
      g_autofree char *va = crisp_config_value_format (row, a);
      g_autofree char *vb = crisp_config_value_format (row, b);
      if (g_strcmp0 (va, vb) != 0)
        g_ptr_array_add (out, g_strdup_printf ("[%s] %s", label, row->key));
    }
}

/* Handlers of `from` that `to` lacks, as "[runtime.<name>]". */
static void
diff_missing_handlers (GPtrArray *out, const CrispConfig *from, const CrispConfig *to)
{
  for (guint i = 0; i < from->runtimes->len; i++)
    {
      const CrispRuntimeHandler *h = from->runtimes->pdata[i];
      if (crisp_config_get_runtime (to, h->name) == NULL)
        g_ptr_array_add (out, g_strdup_printf ("[" CRISP_RUNTIME_GROUP_PREFIX "%s]", h->name));
    }
}

GPtrArray *
crisp_config_diff (const CrispConfig *a, const CrispConfig *b)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  for (const char *const *group = crisp_config_schema_groups (); *group != NULL; group++)
    diff_rows (out, *group, *group, a, b);
  for (guint i = 0; i < a->runtimes->len; i++)
    {
      const CrispRuntimeHandler *ha = a->runtimes->pdata[i];
      const CrispRuntimeHandler *hb = crisp_config_get_runtime (b, ha->name);
      if (hb == NULL)
        continue;
      g_autofree char *label = g_strconcat (CRISP_RUNTIME_GROUP_PREFIX, ha->name, NULL);
      diff_rows (out, NULL, label, ha, hb);
    }
  diff_missing_handlers (out, a, b);
  diff_missing_handlers (out, b, a);
  return g_steal_pointer (&out);
}
