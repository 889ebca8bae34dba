/* The CNI configuration list: discovery in the configured directory (first valid file in
 * lexical order), validation, plugin lookup, and a cache rebuilt when the files change. */
#include "config.h"

#include "network-private.h"

#include "crisp-error.h"

#include <string.h>
#include <sys/stat.h>

CrispNetwork *
crisp_network_new (const char *conf_dir, const char *const *plugin_dirs)
{
  CrispNetwork *net = g_new0 (CrispNetwork, 1);
  net->conf_dir = g_strdup (conf_dir);
  net->plugin_dirs = g_strdupv ((char **) plugin_dirs);
  g_mutex_init (&net->lock);
  return net;
}

void
crisp_network_free (CrispNetwork *net)
{
  if (net == NULL)
    return;
  g_free (net->conf_dir);
  g_strfreev (net->plugin_dirs);
  g_free (net->fingerprint);
  g_free (net->conflist_text);
  g_free (net->conflist_file);
  g_free (net->error_message);
  g_mutex_clear (&net->lock);
  g_free (net);
}

int
crisp_network_version_cmp (const char *a, const char *b)
{
  for (int i = 0; i < 3; i++)
    {
      guint64 x = g_ascii_strtoull (a, (char **) &a, 10);
      guint64 y = g_ascii_strtoull (b, (char **) &b, 10);
      if (x != y)
        return x < y ? -1 : 1;
      a += *a == '.';
      b += *b == '.';
    }
  return 0;
}

static gboolean
is_config_name (const char *name)
{
  return name[0] != '.'
         && (g_str_has_suffix (name, ".conflist") || g_str_has_suffix (name, ".conf")
             || g_str_has_suffix (name, ".json"));
}

static const char *
member_string (JsonObject *obj, const char *name)
{
  JsonNode *n = json_object_get_member (obj, name);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
check_plugins (JsonArray *plugins, GError **error)
{
  guint n = json_array_get_length (plugins);
  if (n == 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "no plugins");
  for (guint i = 0; i < n; i++)
    {
      JsonNode *p = json_array_get_element (plugins, i);
      const char *type
          = JSON_NODE_HOLDS_OBJECT (p) ? member_string (json_node_get_object (p), "type") : NULL;
      if (type == NULL || *type == '\0' || strchr (type, '/') != NULL || type[0] == '.')
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "plugin %u has no valid \"type\"",
                            i);
    }
  return TRUE;
}

/* A single-plugin .conf becomes a list of one, as libcni does. */
static JsonNode *
wrap_single (JsonObject *obj, const char *version, const char *name)
{
  g_autoptr (JsonObject) list = json_object_new ();
  json_object_set_string_member (list, "cniVersion", version);
  json_object_set_string_member (list, "name", name);
  JsonArray *plugins = json_array_new ();
  json_array_add_element (plugins, json_node_init_object (json_node_alloc (), obj));
  json_object_set_array_member (list, "plugins", plugins);
  return json_node_init_object (json_node_alloc (), list);
}

JsonNode *
crisp_network_parse_conflist (const char *file_name, const char *text, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (JsonNode) root = json_from_string (text, &local);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: not a JSON object%s%s", file_name,
                        local ? ": " : "", local ? local->message : ""),
           NULL;
  JsonObject *obj = json_node_get_object (root);
  const char *version = member_string (obj, "cniVersion");
  const char *name = member_string (obj, "name");
  if (version == NULL || name == NULL || *name == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: missing \"cniVersion\" or \"name\"", file_name),
           NULL;
  if (!g_str_has_suffix (file_name, ".conflist"))
    {
      if (member_string (obj, "type") == NULL)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: no \"type\"", file_name),
               NULL;
      root = wrap_single (obj, version, name);
      obj = json_node_get_object (root);
    }
  JsonNode *plugins = json_object_get_member (obj, "plugins");
  if (plugins == NULL || !JSON_NODE_HOLDS_ARRAY (plugins))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: no \"plugins\" list", file_name),
           NULL;
  if (!check_plugins (json_node_get_array (plugins), error))
    return crisp_prefix_error (error, "%s: ", file_name), NULL;
  return g_steal_pointer (&root);
}

char *
crisp_network_find_plugin (CrispNetwork *net, const char *type)
{
  for (char **d = net->plugin_dirs; d && *d; d++)
    {
      g_autofree char *path = g_build_filename (*d, type, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE) && !g_file_test (path, G_FILE_TEST_IS_DIR))
        return g_steal_pointer (&path);
    }
  return NULL;
}

static int
cmp_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Sorted candidate names and a fingerprint of their sizes and mtimes. */
static GPtrArray *
scan_dir (const char *dir, char **out_fingerprint)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) fp = g_string_new (NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    if (is_config_name (name))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, cmp_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      struct stat st = { 0 };
      stat (path, &st);
      g_string_append_printf (fp, "%s:%lld:%lld.%ld;", (char *) names->pdata[i],
                              (long long) st.st_size, (long long) st.st_mtim.tv_sec,
                              st.st_mtim.tv_nsec);
    }
  *out_fingerprint = g_string_free (g_steal_pointer (&fp), FALSE);
  return g_steal_pointer (&names);
}

/* One candidate file, read and validated. */
static JsonNode *
load_file (const char *path, const char *name, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  if (len > 1024 * 1024)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: too large", name), NULL;
  return crisp_network_parse_conflist (name, text, error);
}

/* The first file that parses wins; broken ones before it are skipped, as libcni does.  Under
 * net->lock. */
static void
cache_fill (CrispNetwork *net, GPtrArray *names, char *fingerprint)
{
  g_free (net->fingerprint);
  net->fingerprint = fingerprint;
  g_clear_pointer (&net->conflist_text, g_free);
  g_clear_pointer (&net->conflist_file, g_free);
  g_clear_pointer (&net->error_message, g_free);
  g_autoptr (GString) errors = g_string_new (NULL);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autofree char *path = g_build_filename (net->conf_dir, name, NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) list = load_file (path, name, &error);
      if (list != NULL)
        {
          net->conflist_text = json_to_string (list, FALSE);
          net->conflist_file = g_steal_pointer (&path);
          return;
        }
      g_string_append_printf (errors, "; %s", error->message);
    }
  net->error_message = g_strdup_printf ("no valid CNI network configuration in '%s'%s",
                                        net->conf_dir, errors->str);
}

void
crisp_network_file_free (CrispNetworkFile *file)
{
  g_free (file->path);
  g_clear_pointer (&file->list, json_node_unref);
  g_clear_error (&file->error);
  g_free (file);
}

GPtrArray *
crisp_network_list_files (const char *conf_dir)
{
  g_autofree char *fingerprint = NULL;
  g_autoptr (GPtrArray) names = scan_dir (conf_dir, &fingerprint);
  GPtrArray *files = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_network_file_free);
  for (guint i = 0; i < names->len; i++)
    {
      CrispNetworkFile *file = g_new0 (CrispNetworkFile, 1);
      file->path = g_build_filename (conf_dir, names->pdata[i], NULL);
      file->list = load_file (file->path, names->pdata[i], &file->error);
      g_ptr_array_add (files, file);
    }
  return files;
}

static char *
conf_dir_of (CrispNetwork *net)
{
  g_mutex_lock (&net->lock);
  char *dir = g_strdup (net->conf_dir);
  g_mutex_unlock (&net->lock);
  return dir;
}

JsonNode *
crisp_network_current_conflist (CrispNetwork *net, char **out_message)
{
  g_autofree char *dir = conf_dir_of (net);
  g_autofree char *fingerprint = NULL;
  g_autoptr (GPtrArray) names = scan_dir (dir, &fingerprint);
  g_mutex_lock (&net->lock);
  /* A reload that moved the directory meanwhile has read the new one itself. */
  if (g_str_equal (dir, net->conf_dir)
      && (g_strcmp0 (fingerprint, net->fingerprint) != 0
          || (!net->conflist_text && !net->error_message)))
    cache_fill (net, names, g_steal_pointer (&fingerprint));
  g_autofree char *text = g_strdup (net->conflist_text);
  if (text == NULL && out_message)
    *out_message = g_strdup (net->error_message);
  g_mutex_unlock (&net->lock);
  return text ? json_from_string (text, NULL) : NULL;
}

/* What crisp used before a reload, to tell what the reload changed. */
typedef struct
{
  char *dir, *file, *text, *error;
} CacheView;

static void
cache_view_clear (CacheView *v)
{
  g_free (v->dir);
  g_free (v->file);
  g_free (v->text);
  g_free (v->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CacheView, cache_view_clear)

static char *
list_name (const char *text)
{
  g_autoptr (JsonNode) list = json_from_string (text, NULL);
  return g_strdup (json_object_get_string_member (json_node_get_object (list), "name"));
}

/* "network 'n' from 'file'", or why there is none; NULL when nothing was read yet. */
static char *
describe (const char *file, const char *text, const char *error)
{
  if (text == NULL && error == NULL)
    return NULL;
  if (text == NULL)
    return g_strdup_printf ("no network (%s)", error);
  g_autofree char *name = list_name (text);
  return g_strdup_printf ("network '%s' from '%s'", name, file);
}

static char *
describe_change (const CacheView *was, const CacheView *now)
{
  g_autoptr (GPtrArray) parts = g_ptr_array_new_with_free_func (g_free);
  if (g_strcmp0 (was->dir, now->dir) != 0)
    g_ptr_array_add (parts, g_strdup_printf ("CNI config dir '%s', was '%s'", now->dir, was->dir));
  g_autofree char *before = describe (was->file, was->text, was->error);
  g_autofree char *after = describe (now->file, now->text, now->error);
  if (before == NULL)
    g_ptr_array_add (parts, g_strdup (after));
  else if (g_strcmp0 (before, after) != 0)
    g_ptr_array_add (parts, g_strdup_printf ("%s, was %s", after, before));
  else if (g_strcmp0 (was->text, now->text) != 0)
    g_ptr_array_add (parts, g_strdup_printf ("%s changed", after));
  if (parts->len == 0)
    return NULL;
  g_ptr_array_add (parts, NULL);
  return g_strjoinv ("; ", (char **) parts->pdata);
}

char *
crisp_network_reload (CrispNetwork *net, const char *conf_dir)
{
  g_autofree char *fingerprint = NULL;
  g_autoptr (GPtrArray) names = scan_dir (conf_dir, &fingerprint);
  g_mutex_lock (&net->lock);
  g_auto (CacheView) was = { g_steal_pointer (&net->conf_dir), g_strdup (net->conflist_file),
                             g_strdup (net->conflist_text), g_strdup (net->error_message) };
  net->conf_dir = g_strdup (conf_dir);
  cache_fill (net, names, g_steal_pointer (&fingerprint));
  CacheView now = { net->conf_dir, net->conflist_file, net->conflist_text, net->error_message };
  char *changes = describe_change (&was, &now);
  g_mutex_unlock (&net->lock);
  return changes;
}

static char *
missing_plugin (CrispNetwork *net, JsonNode *conflist)
{
  JsonArray *plugins = json_object_get_array_member (json_node_get_object (conflist), "plugins");
  for (guint i = 0; i < json_array_get_length (plugins); i++)
    {
      const char *type
          = json_object_get_string_member (json_array_get_object_element (plugins, i), "type");
      g_autofree char *path = crisp_network_find_plugin (net, type);
      if (path == NULL)
        return g_strdup (type);
    }
  return NULL;
}

gboolean
crisp_network_status (CrispNetwork *net, char **out_reason, char **out_message)
{
  g_autofree char *message = NULL;
  g_autoptr (JsonNode) conflist = crisp_network_current_conflist (net, &message);
  g_autofree char *missing = conflist ? missing_plugin (net, conflist) : NULL;
  if (conflist != NULL && missing == NULL)
    return TRUE;
  if (missing != NULL)
    {
      g_autofree char *dirs = g_strjoinv (":", net->plugin_dirs);
      message = g_strdup_printf ("CNI plugin '%s' not found in '%s'", missing, dirs);
    }
  if (out_reason)
    *out_reason = g_strdup ("NetworkPluginNotReady");
  if (out_message)
    *out_message = g_steal_pointer (&message);
  return FALSE;
}
