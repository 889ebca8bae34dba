/* Localhost seccomp profiles: a bounded, strict JSON reader that checks every action,
 * architecture, operator and syscall name against libseccomp and re-emits only the fields the
 * OCI runtime spec defines, so a profile file cannot smuggle anything else into config.json. */
#include "config.h"

#include "crisp-seccomp.h"
#include "crisp-error.h"
#include "crisp-base.h"

#include <fcntl.h>
#include <seccomp.h>
#include <string.h>
#include <sys/stat.h>

/* json-glib's parser recurses per nesting level; a profile needs four. */
#define MAX_JSON_DEPTH 16
#define MAX_ARGS 6
#define MAX_FLAGS 16
#define MAX_ARCHES 32

static const char *const known_actions[] = {
  "SCMP_ACT_KILL",        "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",       "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",      NULL,
};

static const char *const known_ops[] = {
  "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
  "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", NULL,
};

static const char *const known_flags[] = {
  "SECCOMP_FILTER_FLAG_TSYNC",
  "SECCOMP_FILTER_FLAG_LOG",
  "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
  NULL,
};

gboolean
crisp_seccomp_syscall_is_known (const char *name)
{
  /* A name libseccomp knows but the native architecture lacks resolves to a negative
   * pseudo-number; only an unknown name yields __NR_SCMP_ERROR. */
  return name != NULL && *name != '\0' && strlen (name) < 64
         && seccomp_syscall_resolve_name (name) != __NR_SCMP_ERROR;
}

static gboolean
arch_is_known (const char *name)
{
  if (!g_str_has_prefix (name, "SCMP_ARCH_") || strlen (name) > 32)
    return FALSE;
  g_autofree char *lower = g_ascii_strdown (name + strlen ("SCMP_ARCH_"), -1);
  return seccomp_arch_resolve_name (lower) != 0;
}

/* Rejects nesting deeper than MAX_JSON_DEPTH before json-glib recurses into it. */
static gboolean
check_depth (const char *data, gsize len, GError **error)
{
  int depth = 0;
  gboolean in_string = FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = data[i];
      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if ((c == '[' || c == '{') && ++depth > MAX_JSON_DEPTH)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "seccomp profile: nested deeper than %d levels", MAX_JSON_DEPTH);
      else if (c == ']' || c == '}')
        depth--;
    }
  return TRUE;
}

static const char *
get_string (JsonObject *obj, const char *key, const char *what, GError **error)
{
  JsonNode *node = json_object_get_member (obj, key);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp profile: %s.%s must be a string",
                   what, key);
      return NULL;
    }
  return json_node_get_string (node);
}

/* An optional array member; *out is NULL when absent or null. */
static gboolean
get_array (JsonObject *obj, const char *key, guint max, const char *what, JsonArray **out,
           GError **error)
{
  JsonNode *node = json_object_get_member (obj, key);
  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: %s.%s must be an array", what, key);
  *out = json_node_get_array (node);
  if (json_array_get_length (*out) > max)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: %s.%s has more than %u entries", what, key, max);
  return TRUE;
}

/* Non-negative integer member below limit; absent leaves *out alone. */
static gboolean
get_uint (JsonObject *obj, const char *key, guint64 limit, const char *what, gboolean *out_set,
          guint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member (obj, key);
  *out_set = FALSE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: %s.%s must be an integer", what, key);
  gint64 v = json_node_get_int (node);
  /* json-glib reads integers as signed 64-bit; a mask like 0xffffffffffffffff arrives
   * negative and is taken bit for bit, as runc does. */
  if (limit != G_MAXUINT64 && (v < 0 || (guint64) v > limit))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: %s.%s %" G_GINT64_FORMAT " out of range", what, key, v);
  *out = (guint64) v;
  *out_set = TRUE;
  return TRUE;
}

static gboolean
check_string_in (const char *value, const char *const *list, const char *what, GError **error)
{
  if (!g_strv_contains (list, value))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp profile: unknown %s '%s'",
                        what, value);
  return TRUE;
}

static gboolean
check_keys (JsonObject *obj, const char *const *allowed_keys, const char *what, GError **error)
{
  g_autoptr (GList) members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains (allowed_keys, l->data))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "seccomp profile: unknown key '%s' in %s", (const char *) l->data, what);
  return TRUE;
}

static JsonObject *
parse_arg (JsonNode *node, GError **error)
{
  static const char *const keys[] = { "index", "value", "valueTwo", "op", NULL };
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: syscall arg must be an object"),
           NULL;
  JsonObject *in = json_node_get_object (node);
  guint64 index = 0, value = 0, value_two = 0;
  gboolean has_index, has_value, has_two;
  const char *op;
  if (!check_keys (in, keys, "syscall arg", error)
      || !get_uint (in, "index", MAX_ARGS - 1, "arg", &has_index, &index, error)
      || !get_uint (in, "value", G_MAXUINT64, "arg", &has_value, &value, error)
      || !get_uint (in, "valueTwo", G_MAXUINT64, "arg", &has_two, &value_two, error)
      || (op = get_string (in, "op", "arg", error)) == NULL
      || !check_string_in (op, known_ops, "comparison operator", error))
    return NULL;
  if (!has_index)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp profile: arg without index"),
           NULL;
  JsonObject *out = json_object_new ();
  json_object_set_int_member (out, "index", (gint64) index);
  json_object_set_int_member (out, "value", (gint64) value);
  json_object_set_int_member (out, "valueTwo", (gint64) value_two);
  json_object_set_string_member (out, "op", op);
  return out;
}

static gboolean
parse_names (JsonObject *in, guint *budget, JsonArray *out, GError **error)
{
  JsonArray *names = NULL;
  if (!get_array (in, "names", CRISP_SECCOMP_MAX_NAMES, "syscall", &names, error))
    return FALSE;
  if (json_object_has_member (in, "name"))
    {
      const char *name = get_string (in, "name", "syscall", error);
      if (name == NULL)
        return FALSE;
      json_array_add_string_element (out, name);
    }
  for (guint i = 0; names != NULL && i < json_array_get_length (names); i++)
    {
      JsonNode *n = json_array_get_element (names, i);
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "seccomp profile: syscall names must be strings");
      json_array_add_string_element (out, json_node_get_string (n));
    }
  if (json_array_get_length (out) == 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: a syscall rule names no syscall");
  if (json_array_get_length (out) > *budget)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: more than %d syscall names", CRISP_SECCOMP_MAX_NAMES);
  *budget -= json_array_get_length (out);
  for (guint i = 0; i < json_array_get_length (out); i++)
    if (!crisp_seccomp_syscall_is_known (json_array_get_string_element (out, i)))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "seccomp profile: unknown syscall '%s'",
                          json_array_get_string_element (out, i));
  return TRUE;
}

/* Docker-format profiles carry includes/excludes conditions; only empty ones are accepted,
 * since crisp cannot evaluate them the way the profile's author meant. */
static gboolean
check_condition (JsonObject *in, const char *key, GError **error)
{
  JsonNode *node = json_object_get_member (in, key);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node) || json_object_get_size (json_node_get_object (node)) != 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: conditional rules ('%s') are not supported", key);
  return TRUE;
}

static gboolean
parse_errno (JsonObject *in, JsonObject *out, const char *what, const char *key, GError **error)
{
  gboolean set;
  guint64 v;
  if (!get_uint (in, key, 4095, what, &set, &v, error))
    return FALSE;
  if (set)
    json_object_set_int_member (out, key, (gint64) v);
  return TRUE;
}

static gboolean
parse_rule_args (JsonObject *in, JsonObject *out, GError **error)
{
  JsonArray *args;
  if (!get_array (in, "args", MAX_ARGS, "syscall", &args, error))
    return FALSE;
  if (args == NULL)
    return TRUE;
  JsonArray *out_args = json_array_new ();
  json_object_set_array_member (out, "args", out_args);
  for (guint i = 0; i < json_array_get_length (args); i++)
    {
      JsonObject *arg = parse_arg (json_array_get_element (args, i), error);
      if (arg == NULL)
        return FALSE;
      json_array_add_object_element (out_args, arg);
    }
  return TRUE;
}

static JsonObject *
parse_rule (JsonNode *node, guint *budget, GError **error)
{
  static const char *const keys[]
      = { "names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes", NULL };
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: syscall rule must be an object"),
           NULL;
  JsonObject *in = json_node_get_object (node);
  g_autoptr (JsonObject) out = json_object_new ();
  JsonArray *names = json_array_new ();
  json_object_set_array_member (out, "names", names);
  const char *action;
  if (!check_keys (in, keys, "syscall rule", error) || !check_condition (in, "includes", error)
      || !check_condition (in, "excludes", error) || !parse_names (in, budget, names, error)
      || (action = get_string (in, "action", "syscall", error)) == NULL
      || !check_string_in (action, known_actions, "action", error)
      || !parse_errno (in, out, "syscall", "errnoRet", error) || !parse_rule_args (in, out, error))
    return NULL;
  json_object_set_string_member (out, "action", action);
  return g_steal_pointer (&out);
}

static gboolean
add_arch (JsonArray *out, JsonNode *node, GError **error)
{
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: architectures must be strings");
  const char *arch = json_node_get_string (node);
  if (!arch_is_known (arch))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: unknown architecture '%s'", arch);
  if (json_array_get_length (out) >= MAX_ARCHES)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: too many architectures");
  json_array_add_string_element (out, arch);
  return TRUE;
}

/* Docker's archMap lists {architecture, subArchitectures[]}; all of them are kept, since the
 * runtime ignores architectures other than the host's. */
static gboolean
parse_arch_map (JsonObject *in, JsonArray *out, GError **error)
{
  JsonArray *map;
  if (!get_array (in, "archMap", MAX_ARCHES, "profile", &map, error))
    return FALSE;
  for (guint i = 0; map != NULL && i < json_array_get_length (map); i++)
    {
      JsonNode *entry = json_array_get_element (map, i);
      if (!JSON_NODE_HOLDS_OBJECT (entry))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "seccomp profile: archMap entries must be objects");
      JsonObject *obj = json_node_get_object (entry);
      JsonArray *subs;
      JsonNode *arch = json_object_get_member (obj, "architecture");
      if (arch == NULL || !add_arch (out, arch, error)
          || !get_array (obj, "subArchitectures", MAX_ARCHES, "archMap", &subs, error))
        return arch == NULL ? crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                                           "seccomp profile: archMap entry without architecture")
                            : FALSE;
      for (guint j = 0; subs != NULL && j < json_array_get_length (subs); j++)
        if (!add_arch (out, json_array_get_element (subs, j), error))
          return FALSE;
    }
  return TRUE;
}

static gboolean
parse_architectures (JsonObject *in, JsonObject *out, GError **error)
{
  JsonArray *arches;
  JsonArray *out_arches = json_array_new ();
  json_object_set_array_member (out, "architectures", out_arches);
  if (!get_array (in, "architectures", MAX_ARCHES, "profile", &arches, error))
    return FALSE;
  for (guint i = 0; arches != NULL && i < json_array_get_length (arches); i++)
    if (!add_arch (out_arches, json_array_get_element (arches, i), error))
      return FALSE;
  return parse_arch_map (in, out_arches, error);
}

static gboolean
parse_flags (JsonObject *in, JsonObject *out, GError **error)
{
  JsonArray *flags;
  if (!get_array (in, "flags", MAX_FLAGS, "profile", &flags, error))
    return FALSE;
  if (flags == NULL)
    return TRUE;
  JsonArray *out_flags = json_array_new ();
  json_object_set_array_member (out, "flags", out_flags);
  for (guint i = 0; i < json_array_get_length (flags); i++)
    {
      JsonNode *n = json_array_get_element (flags, i);
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING
          || !check_string_in (json_node_get_string (n), known_flags, "flag", error))
        return error == NULL || *error != NULL
                   ? FALSE
                   : crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                                  "seccomp profile: flags must be strings");
      json_array_add_string_element (out_flags, json_node_get_string (n));
    }
  return TRUE;
}

static gboolean
parse_syscalls (JsonObject *in, JsonObject *out, GError **error)
{
  JsonArray *rules;
  guint budget = CRISP_SECCOMP_MAX_NAMES;
  if (!get_array (in, "syscalls", CRISP_SECCOMP_MAX_RULES, "profile", &rules, error))
    return FALSE;
  JsonArray *out_rules = json_array_new ();
  json_object_set_array_member (out, "syscalls", out_rules);
  for (guint i = 0; rules != NULL && i < json_array_get_length (rules); i++)
    {
      JsonObject *rule = parse_rule (json_array_get_element (rules, i), &budget, error);
      if (rule == NULL)
        return crisp_prefix_error (error, "rule %u: ", i);
      json_array_add_object_element (out_rules, rule);
    }
  return TRUE;
}

static JsonObject *
parse_profile (JsonObject *in, GError **error)
{
  static const char *const keys[]
      = { "defaultAction", "defaultErrnoRet", "architectures",    "archMap", "flags",
          "syscalls",      "listenerPath",    "listenerMetadata", NULL };
  g_autoptr (JsonObject) out = json_object_new ();
  const char *action;
  if (!check_keys (in, keys, "profile", error)
      || (action = get_string (in, "defaultAction", "profile", error)) == NULL
      || !check_string_in (action, known_actions, "action", error))
    return NULL;
  if (json_object_has_member (in, "listenerPath"))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: listenerPath (user notification) is not supported"),
           NULL;
  json_object_set_string_member (out, "defaultAction", action);
  if (!parse_errno (in, out, "profile", "defaultErrnoRet", error)
      || !parse_architectures (in, out, error) || !parse_flags (in, out, error)
      || !parse_syscalls (in, out, error))
    return NULL;
  return g_steal_pointer (&out);
}

JsonNode *
crisp_seccomp_profile_parse (const char *data, gsize len, GError **error)
{
  if (len > CRISP_SECCOMP_MAX_PROFILE_SIZE)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile: larger than %d bytes", CRISP_SECCOMP_MAX_PROFILE_SIZE),
           NULL;
  if (memchr (data, '\0', len) != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp profile: contains NUL"), NULL;
  if (!check_depth (data, len, error))
    return NULL;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local_error = NULL;
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp profile: %s",
                        local_error->message),
           NULL;
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp profile: not a JSON object"),
           NULL;
  JsonObject *out = parse_profile (json_node_get_object (root), error);
  if (out == NULL)
    return NULL;
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, out);
  return node;
}

JsonNode *
crisp_seccomp_profile_load (const char *path, GError **error)
{
  if (path == NULL || path[0] != '/')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile path '%s' is not absolute", path ? path : ""),
           NULL;
  /* O_NONBLOCK: a FIFO planted at the path must not hang the caller. */
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (fd < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp profile '%s': %s", path,
                        g_strerror (errno)),
           NULL;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile '%s' is not a regular file", path),
           NULL;
  if (st.st_size > CRISP_SECCOMP_MAX_PROFILE_SIZE)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "seccomp profile '%s' is larger than %d bytes", path,
                        CRISP_SECCOMP_MAX_PROFILE_SIZE),
           NULL;
  g_autofree char *buf = g_malloc (CRISP_SECCOMP_MAX_PROFILE_SIZE + 1);
  gsize len = 0;
  while (len <= CRISP_SECCOMP_MAX_PROFILE_SIZE)
    {
      ssize_t n = read (fd, buf + len, CRISP_SECCOMP_MAX_PROFILE_SIZE + 1 - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return crisp_throw_errno (error, errno, "reading seccomp profile '%s'", path), NULL;
      if (n == 0)
        break;
      len += (gsize) n;
    }
  JsonNode *node = crisp_seccomp_profile_parse (buf, len, error);
  if (node == NULL)
    crisp_prefix_error (error, "'%s': ", path);
  return node;
}
