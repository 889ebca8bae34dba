/* Running CNI plugins: ADD through the list, DEL in reverse, CHECK, with the environment and
 * CNI_ARGS kubelet-driven runtimes pass, and the attachment record that makes DEL work after a
 * restart. */
#include "config.h"

#include "network-private.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <string.h>
#include <sys/wait.h>

#define MAX_PLUGIN_OUTPUT (4 * 1024 * 1024)

JsonNode *
crisp_network_prepare (CrispNetwork *net, const CrispNetworkPod *pod, GError **error)
{
  g_autofree char *message = NULL;
  g_autoptr (JsonNode) conflist = crisp_network_current_conflist (net, &message);
  if (conflist == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "network not ready: %s", message),
           NULL;
  g_autoptr (JsonObject) a = json_object_new ();
  json_object_set_int_member (a, "version", 1);
  json_object_set_member (a, "conflist", json_node_copy (conflist));
  json_object_set_string_member (a, "containerId", pod->container_id);
  json_object_set_string_member (a, "netns", pod->netns);
  json_object_set_string_member (a, "ifname", pod->ifname ? pod->ifname : "eth0");
  g_autofree char *args = g_strdup_printf (
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;"
      "K8S_POD_UID=%s",
      pod->pod_namespace, pod->pod_name, pod->container_id, pod->pod_uid);
  json_object_set_string_member (a, "args", args);
  if (pod->port_mappings != NULL)
    json_object_set_member (a, "portMappings", json_node_copy (pod->port_mappings));
  json_object_set_null_member (a, "result");
  return json_node_init_object (json_node_alloc (), a);
}

static gboolean
has_capability (JsonObject *plugin, const char *cap)
{
  JsonNode *caps = json_object_get_member (plugin, "capabilities");
  if (caps == NULL || !JSON_NODE_HOLDS_OBJECT (caps))
    return FALSE;
  JsonNode *v = json_object_get_member (json_node_get_object (caps), cap);
  return v != NULL && JSON_NODE_HOLDS_VALUE (v) && json_node_get_value_type (v) == G_TYPE_BOOLEAN
         && json_node_get_boolean (v);
}

/* The stdin a plugin gets: its own object plus name, cniVersion, prevResult and the
 * runtimeConfig for the capabilities it declares. */
static char *
plugin_stdin (JsonObject *list, JsonObject *plugin, JsonObject *a, JsonNode *prev)
{
  /* A new object sharing the members: the stored list itself is never modified. */
  g_autoptr (JsonObject) c = json_object_new ();
  g_autoptr (GList) members = json_object_get_members (plugin);
  for (GList *m = members; m; m = m->next)
    json_object_set_member (c, m->data, json_node_copy (json_object_get_member (plugin, m->data)));
  json_object_set_string_member (c, "name", json_object_get_string_member (list, "name"));
  json_object_set_string_member (c, "cniVersion",
                                 json_object_get_string_member (list, "cniVersion"));
  json_object_remove_member (c, "prevResult");
  json_object_remove_member (c, "runtimeConfig");
  if (prev != NULL && !JSON_NODE_HOLDS_NULL (prev))
    json_object_set_member (c, "prevResult", json_node_copy (prev));
  JsonNode *ports = json_object_get_member (a, "portMappings");
  if (ports != NULL && has_capability (plugin, "portMappings"))
    {
      JsonObject *rc = json_object_new ();
      json_object_set_member (rc, "portMappings", json_node_copy (ports));
      json_object_set_object_member (c, "runtimeConfig", rc);
    }
  g_autoptr (JsonNode) conf = json_node_init_object (json_node_alloc (), c);
  return json_to_string (conf, FALSE);
}

static void
strv_take (GStrvBuilder *b, char *s)
{
  g_strv_builder_add (b, s);
  g_free (s);
}

static char **
plugin_env (CrispNetwork *net, JsonObject *a, const char *command)
{
  g_autofree char *path = g_strjoinv (":", net->plugin_dirs);
  const char *sys_path = g_getenv ("PATH");
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  strv_take (b, g_strdup_printf ("CNI_COMMAND=%s", command));
  strv_take (
      b, g_strdup_printf ("CNI_CONTAINERID=%s", json_object_get_string_member (a, "containerId")));
  strv_take (b, g_strdup_printf ("CNI_NETNS=%s", json_object_get_string_member (a, "netns")));
  strv_take (b, g_strdup_printf ("CNI_IFNAME=%s", json_object_get_string_member (a, "ifname")));
  strv_take (b, g_strdup_printf ("CNI_ARGS=%s", json_object_get_string_member (a, "args")));
  strv_take (b, g_strdup_printf ("CNI_PATH=%s", path));
  /* Plugins such as portmap run iptables themselves. */
  strv_take (b, g_strdup_printf ("PATH=%s", sys_path ? sys_path : "/usr/sbin:/usr/bin:/sbin:/bin"));
  return g_strv_builder_end (b);
}

/* Turns a plugin's failure output ({"code","msg","details"}) into a message. */
static gboolean
plugin_failed (const char *type, const char *command, const char *out, const char *err,
               GError **error)
{
  g_autoptr (JsonNode) n = out && *out ? json_from_string (out, NULL) : NULL;
  if (n != NULL && JSON_NODE_HOLDS_OBJECT (n))
    {
      JsonObject *o = json_node_get_object (n);
      return crisp_throw (error, CRISP_ERROR_UNKNOWN,
                          "CNI plugin '%s' %s failed (code %" G_GINT64_FORMAT "): %s%s%s", type,
                          command, json_object_get_int_member_with_default (o, "code", 0),
                          json_object_get_string_member_with_default (o, "msg", ""),
                          json_object_has_member (o, "details") ? ": " : "",
                          json_object_get_string_member_with_default (o, "details", ""));
    }
  g_autofree char *e = g_strstrip (g_strndup (err ? err : "", 400));
  return crisp_throw (error, CRISP_ERROR_UNKNOWN, "CNI plugin '%s' %s failed: %s", type, command,
                      *e ? e : "no output");
}

static gboolean
run_plugin (CrispNetwork *net, JsonObject *a, JsonObject *plugin, const char *command,
            JsonNode *prev, GCancellable *cancellable, JsonNode **out_result, GError **error)
{
  JsonObject *list = json_object_get_object_member (a, "conflist");
  const char *type = json_object_get_string_member (plugin, "type");
  g_autofree char *exe = crisp_network_find_plugin (net, type);
  if (exe == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "CNI plugin '%s' not found", type);
  g_autofree char *input = plugin_stdin (list, plugin, a, prev);
  g_auto (GStrv) env = plugin_env (net, a, command);
  char *argv[] = { exe, NULL };
  int cancel_fd = cancellable ? g_cancellable_get_fd (cancellable) : -1;
  CrispSpawnResult res = { 0 };
  int r = crisp_spawn_communicate (exe, argv, env, input, strlen (input), MAX_PLUGIN_OUTPUT,
                                   cancel_fd, &res);
  if (cancellable)
    g_cancellable_release_fd (cancellable);
  if (r == -ECANCELED)
    return crisp_throw (error, CRISP_ERROR_CANCELLED, "CNI plugin '%s' %s: cancelled", type,
                        command);
  if (r < 0)
    return crisp_throw_errno (error, r, "CNI plugin '%s' %s", type, command);
  g_autofree char *out = g_strdup (res.out ? res.out : "");
  g_autofree char *err = g_strdup (res.err ? res.err : "");
  int status = res.status;
  crisp_spawn_result_clear (&res);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return plugin_failed (type, command, out, err, error);
  if (out_result == NULL)
    return TRUE;
  g_autoptr (GError) local = NULL;
  g_autoptr (JsonNode) result = *out ? json_from_string (out, &local) : NULL;
  if (result == NULL || !JSON_NODE_HOLDS_OBJECT (result))
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "CNI plugin '%s' ADD: bad result", type);
  *out_result = g_steal_pointer (&result);
  return TRUE;
}

static JsonArray *
plugins_of (JsonObject *a)
{
  return json_object_get_array_member (json_object_get_object_member (a, "conflist"), "plugins");
}

static const char *
version_of (JsonObject *a)
{
  return json_object_get_string_member (json_object_get_object_member (a, "conflist"),
                                        "cniVersion");
}

gboolean
crisp_network_add (CrispNetwork *net, JsonNode *attachment, GCancellable *cancellable,
                   GError **error)
{
  JsonObject *a = json_node_get_object (attachment);
  JsonArray *plugins = plugins_of (a);
  g_autoptr (JsonNode) prev = NULL;
  for (guint i = 0; i < json_array_get_length (plugins); i++)
    {
      JsonNode *result = NULL;
      if (!run_plugin (net, a, json_array_get_object_element (plugins, i), "ADD", prev, cancellable,
                       &result, error))
        {
          /* The spec asks for DEL after a failed ADD so plugins release what they took. */
          crisp_network_del (net, attachment, NULL, NULL);
          return FALSE;
        }
      g_clear_pointer (&prev, json_node_unref);
      prev = result;
    }
  json_object_set_member (a, "result", g_steal_pointer (&prev));
  return TRUE;
}

/* Before 0.4.0 DEL and CHECK get no prevResult. */
static JsonNode *
stored_result (JsonObject *a)
{
  if (crisp_network_version_cmp (version_of (a), "0.4.0") < 0)
    return NULL;
  JsonNode *r = json_object_get_member (a, "result");
  return r != NULL && JSON_NODE_HOLDS_OBJECT (r) ? r : NULL;
}

gboolean
crisp_network_del (CrispNetwork *net, JsonNode *attachment, GCancellable *cancellable,
                   GError **error)
{
  JsonObject *a = json_node_get_object (attachment);
  JsonArray *plugins = plugins_of (a);
  g_autoptr (GError) first = NULL;
  for (guint i = json_array_get_length (plugins); i > 0; i--)
    {
      g_autoptr (GError) local = NULL;
      if (!run_plugin (net, a, json_array_get_object_element (plugins, i - 1), "DEL",
                       stored_result (a), cancellable, NULL, &local)
          && first == NULL)
        first = g_steal_pointer (&local);
    }
  if (first != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&first));
      return FALSE;
    }
  return TRUE;
}

gboolean
crisp_network_check (CrispNetwork *net, JsonNode *attachment, GCancellable *cancellable,
                     GError **error)
{
  JsonObject *a = json_node_get_object (attachment);
  JsonObject *list = json_object_get_object_member (a, "conflist");
  if (crisp_network_version_cmp (version_of (a), "0.4.0") < 0
      || json_object_get_boolean_member_with_default (list, "disableCheck", FALSE))
    return TRUE;
  JsonNode *prev = stored_result (a);
  if (prev == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "no stored CNI result to check");
  JsonArray *plugins = plugins_of (a);
  for (guint i = 0; i < json_array_get_length (plugins); i++)
    if (!run_plugin (net, a, json_array_get_object_element (plugins, i), "CHECK", prev, cancellable,
                     NULL, error))
      return FALSE;
  return TRUE;
}

/* json-glib 1.6 has no typed getters with a default for arrays and objects. */
static JsonArray *
array_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n != NULL && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static JsonObject *
object_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n != NULL && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static void
add_address (GStrvBuilder *b, const char *cidr)
{
  if (cidr == NULL)
    return;
  g_autofree char *ip = g_strdup (cidr);
  char *slash = strchr (ip, '/');
  if (slash)
    *slash = '\0';
  g_strv_builder_add (b, ip);
}

GStrv
crisp_network_attachment_ips (JsonNode *attachment)
{
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  JsonNode *r = json_object_get_member (json_node_get_object (attachment), "result");
  if (r == NULL || !JSON_NODE_HOLDS_OBJECT (r))
    return g_strv_builder_end (b);
  JsonObject *res = json_node_get_object (r);
  JsonArray *ips = array_member (res, "ips");
  for (guint i = 0; ips && i < json_array_get_length (ips); i++)
    {
      JsonNode *e = json_array_get_element (ips, i);
      if (JSON_NODE_HOLDS_OBJECT (e))
        add_address (b, json_object_get_string_member_with_default (json_node_get_object (e),
                                                                    "address", NULL));
    }
  /* CNI 0.2.0 results. */
  for (const char *const *k = (const char *const[]){ "ip4", "ip6", NULL }; *k; k++)
    {
      JsonObject *o = object_member (res, *k);
      if (o != NULL)
        add_address (b, json_object_get_string_member_with_default (o, "ip", NULL));
    }
  return g_strv_builder_end (b);
}

gboolean
crisp_network_attachment_validate (JsonNode *attachment, GError **error)
{
  if (attachment == NULL || !JSON_NODE_HOLDS_OBJECT (attachment))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "network attachment is not an object");
  JsonObject *a = json_node_get_object (attachment);
  for (const char *const *k
       = (const char *const[]){ "containerId", "netns", "ifname", "args", NULL };
       *k; k++)
    {
      JsonNode *n = json_object_get_member (a, *k);
      if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
        return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "network attachment: bad \"%s\"", *k);
    }
  JsonNode *list = json_object_get_member (a, "conflist");
  if (list == NULL)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "network attachment: no \"conflist\"");
  g_autofree char *text = json_to_string (list, FALSE);
  g_autoptr (JsonNode) parsed = crisp_network_parse_conflist ("stored.conflist", text, error);
  if (parsed == NULL)
    return crisp_prefix_error (error, "network attachment: ");
  JsonNode *r = json_object_get_member (a, "result");
  if (r != NULL && !JSON_NODE_HOLDS_NULL (r) && !JSON_NODE_HOLDS_OBJECT (r))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "network attachment: bad \"result\"");
  JsonNode *pm = json_object_get_member (a, "portMappings");
  if (pm != NULL && !JSON_NODE_HOLDS_ARRAY (pm))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "network attachment: bad \"portMappings\"");
  return TRUE;
}
