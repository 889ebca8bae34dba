/* Loading of registry settings and turning a registry name into endpoints to try. */
#include "config.h"

#include "registries.h"
#include "crisp-error.h"

#include <string.h>

struct _CrispRegistries
{
  GHashTable *by_host; /* host -> CrispRegistryConfig */
};

static void
registry_config_free (CrispRegistryConfig *c)
{
  g_free (c->host);
  g_strfreev (c->mirrors);
  g_free (c->username);
  g_free (c->password);
  g_free (c);
}

void
crisp_registries_free (CrispRegistries *regs)
{
  if (regs == NULL)
    return;
  g_hash_table_unref (regs->by_host);
  g_free (regs);
}

void
crisp_endpoint_free (CrispEndpoint *ep)
{
  g_free (ep->base_url);
  g_free (ep->host);
  g_free (ep);
}

/* `[registry "HOST"]` -> HOST, anything else NULL (other groups are ignored). */
static char *
group_host (const char *group)
{
  if (!g_str_has_prefix (group, "registry \"") || !g_str_has_suffix (group, "\""))
    return NULL;
  size_t len = strlen (group);
  if (len <= strlen ("registry \"\""))
    return NULL;
  return g_strndup (group + strlen ("registry \""), len - strlen ("registry \"\""));
}

static CrispRegistryConfig *
ensure_host (CrispRegistries *regs, const char *host)
{
  CrispRegistryConfig *c = g_hash_table_lookup (regs->by_host, host);
  if (c == NULL)
    {
      c = g_new0 (CrispRegistryConfig, 1);
      c->host = g_strdup (host);
      g_hash_table_insert (regs->by_host, c->host, c);
    }
  return c;
}

static gboolean
load_group (CrispRegistries *regs, GKeyFile *kf, const char *group, const char *file,
            GError **error)
{
  g_autofree char *host = group_host (group);
  if (host == NULL)
    return TRUE;
  CrispRegistryConfig *c = ensure_host (regs, host);
  g_autoptr (GError) local = NULL;
  if (g_key_file_has_key (kf, group, "mirrors", NULL))
    {
      g_strfreev (c->mirrors);
      c->mirrors = g_key_file_get_string_list (kf, group, "mirrors", NULL, &local);
    }
  if (local == NULL && g_key_file_has_key (kf, group, "mirrors-only", NULL))
    c->mirrors_only = g_key_file_get_boolean (kf, group, "mirrors-only", &local);
  if (local == NULL && g_key_file_has_key (kf, group, "insecure", NULL))
    c->insecure = g_key_file_get_boolean (kf, group, "insecure", &local);
  if (local == NULL && g_key_file_has_key (kf, group, "username", NULL))
    g_free (c->username), c->username = g_key_file_get_string (kf, group, "username", &local);
  if (local == NULL && g_key_file_has_key (kf, group, "password", NULL))
    g_free (c->password), c->password = g_key_file_get_string (kf, group, "password", &local);
  if (local != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: [%s]: %s", file, group,
                        local->message);
  return TRUE;
}

static gboolean
load_file (CrispRegistries *regs, const char *path, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "registries config %s: %s", path,
                        local->message);
  g_auto (GStrv) groups = g_key_file_get_groups (kf, NULL);
  for (char **g = groups; *g; g++)
    if (!load_group (regs, kf, *g, path, error))
      return FALSE;
  return TRUE;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

CrispRegistries *
crisp_registries_load (const char *dir, GError **error)
{
  g_autoptr (CrispRegistries) regs = g_new0 (CrispRegistries, 1);
  regs->by_host = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) registry_config_free);
  g_autoptr (GDir) d = dir ? g_dir_open (dir, 0, NULL) : NULL;
  if (d == NULL)
    return g_steal_pointer (&regs);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".conf") && name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      if (!load_file (regs, path, error))
        return NULL;
    }
  return g_steal_pointer (&regs);
}

const CrispRegistryConfig *
crisp_registries_lookup (CrispRegistries *regs, const char *host)
{
  return g_hash_table_lookup (regs->by_host, host);
}

static CrispEndpoint *
endpoint_new (CrispRegistries *regs, const char *spec, gboolean is_mirror)
{
  CrispEndpoint *ep = g_new0 (CrispEndpoint, 1);
  const char *scheme = NULL;
  if (g_str_has_prefix (spec, "http://"))
    scheme = "http", spec += strlen ("http://");
  else if (g_str_has_prefix (spec, "https://"))
    scheme = "https", spec += strlen ("https://");
  ep->host = g_strndup (spec, strcspn (spec, "/"));
  const CrispRegistryConfig *c = crisp_registries_lookup (regs, ep->host);
  if (scheme == NULL)
    scheme = (c && c->insecure) ? "http" : "https";
  /* docker.io is a name; its API lives elsewhere */
  const char *api = g_str_equal (ep->host, "docker.io") ? "registry-1.docker.io" : ep->host;
  ep->base_url = g_strdup_printf ("%s://%s", scheme, api);
  ep->is_mirror = is_mirror;
  if (c != NULL)
    ep->username = c->username, ep->password = c->password;
  return ep;
}

GPtrArray *
crisp_registries_endpoints (CrispRegistries *regs, const char *domain)
{
  GPtrArray *eps = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_endpoint_free);
  const CrispRegistryConfig *c = crisp_registries_lookup (regs, domain);
  for (char **m = c ? c->mirrors : NULL; m && *m; m++)
    if (**m != '\0')
      g_ptr_array_add (eps, endpoint_new (regs, *m, TRUE));
  if (c == NULL || !c->mirrors_only)
    g_ptr_array_add (eps, endpoint_new (regs, domain, FALSE));
  return eps;
}
