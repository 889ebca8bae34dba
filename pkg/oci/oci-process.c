/* process.args, env, cwd and terminal: the request's command and args against the image's
 * Entrypoint and Cmd exactly as kubelet documents it, environment from the image then the
 * request, and the stop signal. */
#include "config.h"

#include "oci-private.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <signal.h>
#include <string.h>

#define MAX_ARGV 4096
#define MAX_ENV 4096
#define MAX_ARGV_BYTES (1024 * 1024)
#define MAX_ENV_BYTES (1024 * 1024)
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* An optional image config member that must be an array of strings (null counts as absent). */
static gboolean
image_strings (JsonObject *image, const char *key, GPtrArray *out, GError **error)
{
  JsonNode *node = image ? json_object_get_member (image, key) : NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "image config: %s is not an array of strings", key);
  JsonArray *a = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "image config: %s is not an array of strings", key);
      g_ptr_array_add (out, (char *) json_node_get_string (e));
    }
  return TRUE;
}

/* An optional image config string member; NULL when absent or null. */
static gboolean
image_string (JsonObject *image, const char *key, const char **out, GError **error)
{
  JsonNode *node = image ? json_object_get_member (image, key) : NULL;
  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "image config: %s is not a string",
                        key);
  *out = json_node_get_string (node);
  return TRUE;
}

static void
add_strv (GPtrArray *argv, char **strv, gsize n)
{
  for (gsize i = 0; i < n; i++)
    g_ptr_array_add (argv, strv[i]);
}

/* command replaces Entrypoint and drops Cmd; args alone replace Cmd. */
static gboolean
build_args (const CrispOciInput *in, JsonObject *process, GError **error)
{
  const Runtime__V1__ContainerConfig *c = in->config;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GPtrArray) entrypoint = g_ptr_array_new ();
  g_autoptr (GPtrArray) cmd = g_ptr_array_new ();
  if (!image_strings (in->image_config, "Entrypoint", entrypoint, error)
      || !image_strings (in->image_config, "Cmd", cmd, error))
    return FALSE;
  if (c->n_command > 0)
    add_strv (argv, c->command, c->n_command);
  else
    g_ptr_array_extend (argv, entrypoint, NULL, NULL);
  if (c->n_args > 0)
    add_strv (argv, c->args, c->n_args);
  else if (c->n_command == 0)
    g_ptr_array_extend (argv, cmd, NULL, NULL);
  if (argv->len == 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: no command specified (command, args and the "
                        "image's Entrypoint and Cmd are all empty)");
  gsize bytes = 0;
  for (guint i = 0; i < argv->len; i++)
    bytes += strlen (argv->pdata[i]) + 1;
  if (argv->len > MAX_ARGV || bytes > MAX_ARGV_BYTES)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: command line has %u arguments, %" G_GSIZE_FORMAT
                        " bytes: over the limit",
                        argv->len, bytes);
  JsonArray *a = json_array_new ();
  for (guint i = 0; i < argv->len; i++)
    json_array_add_string_element (a, argv->pdata[i]);
  json_object_set_array_member (process, "args", a);
  return TRUE;
}

static gboolean
env_text_ok (const char *s, gsize n)
{
  return memchr (s, '\0', n) == NULL && memchr (s, '\n', n) == NULL && memchr (s, '\r', n) == NULL;
}

/* Sets key=value, replacing an earlier value of key in place. */
static void
env_set (GPtrArray *env, GHashTable *index, char *entry)
{
  g_autofree char *key = g_strndup (entry, (gsize) (strchr (entry, '=') - entry));
  gpointer pos;
  if (g_hash_table_lookup_extended (index, key, NULL, &pos))
    {
      g_free (env->pdata[GPOINTER_TO_UINT (pos)]);
      env->pdata[GPOINTER_TO_UINT (pos)] = entry;
      return;
    }
  g_hash_table_insert (index, g_steal_pointer (&key), GUINT_TO_POINTER (env->len));
  g_ptr_array_add (env, entry);
}

static gboolean
add_image_env (const CrispOciInput *in, GPtrArray *env, GHashTable *index, GError **error)
{
  g_autoptr (GPtrArray) image_env = g_ptr_array_new ();
  if (!image_strings (in->image_config, "Env", image_env, error))
    return FALSE;
  for (guint i = 0; i < image_env->len; i++)
    {
      const char *e = image_env->pdata[i];
      const char *eq = strchr (e, '=');
      if (eq == NULL || eq == e || !env_text_ok (e, strlen (e)))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "image config: Env entry '%s' is not KEY=value on one line", e);
      env_set (env, index, g_strdup (e));
    }
  return TRUE;
}

static gboolean
add_request_env (const CrispOciInput *in, GPtrArray *env, GHashTable *index, GError **error)
{
  const Runtime__V1__ContainerConfig *c = in->config;
  for (gsize i = 0; i < c->n_envs; i++)
    {
      const Runtime__V1__KeyValue *kv = c->envs[i];
      const char *key = kv && kv->key ? kv->key : "";
      if (key[0] == '\0' || strchr (key, '=') != NULL || !env_text_ok (key, strlen (key)))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "container config: envs key '%s' is empty, has '=' or a line break",
                            key);
      if (kv->value.len > 0 && !env_text_ok ((const char *) kv->value.data, kv->value.len))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "container config: envs '%s' value has a NUL, CR or LF", key);
      env_set (env, index,
               g_strdup_printf ("%s=%.*s", key, (int) kv->value.len,
                                kv->value.len ? (const char *) kv->value.data : ""));
    }
  return TRUE;
}

static gboolean
check_env_size (GPtrArray *env, GError **error)
{
  gsize bytes = 0;
  for (guint i = 0; i < env->len; i++)
    bytes += strlen (env->pdata[i]) + 1;
  if (env->len > MAX_ENV || bytes > MAX_ENV_BYTES)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: environment has %u entries, %" G_GSIZE_FORMAT
                        " bytes: over the limit",
                        env->len, bytes);
  return TRUE;
}

static gboolean
build_env (const CrispOciInput *in, JsonObject *process, const char *home, GError **error)
{
  g_autoptr (GPtrArray) env = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  const char *hostname = in->hostname ? in->hostname : in->sandbox_config->hostname;
  env_set (env, index, g_strdup (DEFAULT_PATH));
  if (hostname && hostname[0] && env_text_ok (hostname, strlen (hostname)))
    env_set (env, index, g_strdup_printf ("HOSTNAME=%s", hostname));
  if (!add_image_env (in, env, index, error) || !add_request_env (in, env, index, error)
      || !check_env_size (env, error))
    return FALSE;
  if (!g_hash_table_contains (index, "HOME"))
    env_set (env, index, g_strdup_printf ("HOME=%s", home));
  JsonArray *a = json_array_new ();
  for (guint i = 0; i < env->len; i++)
    json_array_add_string_element (a, env->pdata[i]);
  json_object_set_array_member (process, "env", a);
  return TRUE;
}

static gboolean
build_cwd (const CrispOciInput *in, JsonObject *process, GError **error)
{
  const char *wd = in->config->working_dir;
  if (wd != NULL && wd[0] != '\0')
    {
      if (wd[0] != '/')
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "container config: working_dir '%s' is not absolute", wd);
      if (!crisp_oci_check_text ("container config: working_dir", wd, OCI_MAX_PATH, error))
        return FALSE;
      json_object_set_string_member (process, "cwd", wd);
      return TRUE;
    }
  const char *image_wd;
  if (!image_string (in->image_config, "WorkingDir", &image_wd, error))
    return FALSE;
  if (image_wd == NULL || image_wd[0] == '\0')
    image_wd = "/";
  if (!crisp_oci_check_text ("image config: WorkingDir", image_wd, OCI_MAX_PATH, error))
    return FALSE;
  /* Docker allows a relative WorkingDir in an image; it means from the root. */
  g_autofree char *abs
      = image_wd[0] == '/' ? g_strdup (image_wd) : g_strconcat ("/", image_wd, NULL);
  json_object_set_string_member (process, "cwd", abs);
  return TRUE;
}

gboolean
crisp_oci_build_process (const CrispOciInput *in, JsonObject *process, const char *home,
                         GError **error)
{
  json_object_set_boolean_member (process, "terminal", in->config->tty);
  return build_args (in, process, error) && build_env (in, process, home, error)
         && build_cwd (in, process, error);
}

/* The CRI's enum, by name ("SIGNAL_SIGTERM"); its real-time values are spelt
 * "SIGNAL_SIGRTMINPLUS1" and "SIGNAL_SIGRTMAXMINUS14" and follow SIGRTMIN in order. */
static gboolean
cri_signal (Runtime__V1__Signal value, int *out)
{
  if (value >= RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMIN
      && value <= RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMAX)
    {
      *out = CRISP_SIGNAL_RTMIN + (int) (value - RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMIN);
      return TRUE;
    }
  const ProtobufCEnumValue *v
      = protobuf_c_enum_descriptor_get_value (&runtime__v1__signal__descriptor, (int) value);
  return v != NULL && g_str_has_prefix (v->name, "SIGNAL_")
         && crisp_signal_parse (v->name + strlen ("SIGNAL_"), out) == 0;
}

Runtime__V1__Signal
crisp_oci_signal_to_cri (int sig)
{
  if (sig >= CRISP_SIGNAL_RTMIN && sig <= CRISP_SIGNAL_MAX)
    return RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMIN + (sig - CRISP_SIGNAL_RTMIN);
  char name[CRISP_SIGNAL_NAME_MAX], cri[CRISP_SIGNAL_NAME_MAX + 8];
  if (crisp_signal_format (sig, name) < 0)
    return RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT;
  g_snprintf (cri, sizeof cri, "SIGNAL_%s", name);
  const ProtobufCEnumValue *v
      = protobuf_c_enum_descriptor_get_value_by_name (&runtime__v1__signal__descriptor, cri);
  return v != NULL ? (Runtime__V1__Signal) v->value : RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT;
}

gboolean
crisp_oci_stop_signal (const Runtime__V1__ContainerConfig *config, JsonObject *image_config,
                       int *out_signal, GError **error)
{
  *out_signal = SIGTERM;
  if (config != NULL && config->stop_signal != RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT)
    {
      if (!cri_signal (config->stop_signal, out_signal))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "container config: stop_signal %d is not a signal crisp knows",
                            (int) config->stop_signal);
      return TRUE;
    }
  const char *s;
  if (!image_string (image_config, "StopSignal", &s, error))
    return FALSE;
  if (s != NULL && s[0] != '\0' && crisp_signal_parse (s, out_signal) < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "image config: StopSignal '%s' is not a signal", s);
  return TRUE;
}
