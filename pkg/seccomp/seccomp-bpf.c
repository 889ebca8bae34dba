/* Compiles an OCI `linux.seccomp` object to the classic BPF program the monitor loads for a
 * direct exec, building the libseccomp filter the way runc 1.1 does (same rules, same skips),
 * so the program equals runc's but for runc's ENOSYS stub (docs/containers.md). */
#include "config.h"

#include "crisp-seccomp.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <errno.h>
#include <seccomp.h>

G_DEFINE_AUTO_CLEANUP_FREE_FUNC (scmp_filter_ctx, seccomp_release, NULL)

static const char *
member_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
             ? json_node_get_string (n)
             : NULL;
}

static gint64
member_int (JsonObject *o, const char *name, gint64 dflt)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_int (n) : dflt;
}

/* An action as runc builds it: ERRNO and TRACE return errnoRet, EPERM by default. */
static gboolean
parse_action (const char *name, gint64 errno_ret, uint32_t *out, GError **error)
{
  static const struct
  {
    const char *name;
    uint32_t action;
  } table[] = {
    { "SCMP_ACT_KILL", SCMP_ACT_KILL },
    { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL },
    { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
    { "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
    { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
    { "SCMP_ACT_LOG", SCMP_ACT_LOG },
  };
  guint16 ret = errno_ret >= 0 && errno_ret <= 0xffff ? (guint16) errno_ret : EPERM;
  if (g_strcmp0 (name, "SCMP_ACT_ERRNO") == 0)
    return *out = SCMP_ACT_ERRNO (ret), TRUE;
  if (g_strcmp0 (name, "SCMP_ACT_TRACE") == 0)
    return *out = SCMP_ACT_TRACE (ret), TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    if (g_strcmp0 (name, table[i].name) == 0)
      return *out = table[i].action, TRUE;
  return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                      "seccomp action '%s' has no precompiled form", name ? name : "(none)");
}

static gboolean
parse_condition (JsonNode *node, struct scmp_arg_cmp *out, guint counts[6], GError **error)
{
  static const char *const ops[]
      = { NULL,          "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
          "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ" };
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  gint64 index = o ? member_int (o, "index", -1) : -1;
  const char *op = o ? member_string (o, "op") : NULL;
  if (index < 0 || index > 5 || op == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp: a bad syscall argument");
  for (guint i = 1; i < G_N_ELEMENTS (ops); i++)
    if (strcmp (op, ops[i]) == 0)
      {
        *out = (struct scmp_arg_cmp){ (unsigned) index, (enum scmp_compare) i,
                                      (scmp_datum_t) member_int (o, "value", 0),
                                      (scmp_datum_t) member_int (o, "valueTwo", 0) };
        counts[index]++;
        return TRUE;
      }
  return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp: unknown operator '%s'", op);
}

/* One name of a rule: runc skips names libseccomp cannot resolve, and splits the conditions
 * into one rule each when two of them test the same argument. */
static gboolean
add_rule (scmp_filter_ctx ctx, const char *name, uint32_t action, struct scmp_arg_cmp *conds,
          guint n, gboolean split, GError **error)
{
  int nr = seccomp_syscall_resolve_name (name);
  if (nr == __NR_SCMP_ERROR)
    return TRUE;
  int r = 0;
  if (split)
    for (guint i = 0; i < n && r == 0; i++)
      r = seccomp_rule_add_array (ctx, action, nr, 1, &conds[i]);
  else
    r = seccomp_rule_add_array (ctx, action, nr, n, conds);
  if (r < 0)
    return crisp_throw_errno (error, r, "seccomp: adding a rule for '%s'", name);
  return TRUE;
}

static gboolean
add_syscalls (scmp_filter_ctx ctx, JsonObject *rule, uint32_t default_action, GError **error)
{
  uint32_t action;
  if (!parse_action (member_string (rule, "action"), member_int (rule, "errnoRet", -1), &action,
                     error))
    return FALSE;
  if (action == default_action)
    return TRUE; /* runc ignores rules that repeat the default */
  JsonNode *args = json_object_get_member (rule, "args");
  JsonArray *arr = args && JSON_NODE_HOLDS_ARRAY (args) ? json_node_get_array (args) : NULL;
  guint n = arr ? MIN (json_array_get_length (arr), 6 * 4) : 0;
  struct scmp_arg_cmp conds[6 * 4];
  guint counts[6] = { 0 };
  for (guint i = 0; i < n; i++)
    if (!parse_condition (json_array_get_element (arr, i), &conds[i], counts, error))
      return FALSE;
  gboolean split = FALSE;
  for (guint i = 0; i < 6; i++)
    split |= counts[i] > 1;
  JsonNode *names = json_object_get_member (rule, "names");
  JsonArray *namev = names && JSON_NODE_HOLDS_ARRAY (names) ? json_node_get_array (names) : NULL;
  for (guint i = 0; namev && i < json_array_get_length (namev); i++)
    {
      const char *name = json_array_get_string_element (namev, i);
      if (name && !add_rule (ctx, name, action, conds, n, split, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
add_arches (scmp_filter_ctx ctx, JsonObject *profile, GError **error)
{
  JsonNode *node = json_object_get_member (profile, "architectures");
  JsonArray *arr = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  for (guint i = 0; arr && i < json_array_get_length (arr); i++)
    {
      const char *name = json_array_get_string_element (arr, i);
      if (name == NULL || !g_str_has_prefix (name, "SCMP_ARCH_"))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp: a bad architecture");
      g_autofree char *lower = g_ascii_strdown (name + strlen ("SCMP_ARCH_"), -1);
      uint32_t arch = seccomp_arch_resolve_name (lower);
      int r = arch ? seccomp_arch_add (ctx, arch) : -EINVAL;
      if (r < 0 && r != -EEXIST)
        return crisp_throw_errno (error, r, "seccomp: architecture '%s'", name);
    }
  return TRUE;
}

gboolean
crisp_seccomp_export_bpf (JsonNode *seccomp, int fd, GError **error)
{
  JsonObject *profile = JSON_NODE_HOLDS_OBJECT (seccomp) ? json_node_get_object (seccomp) : NULL;
  if (profile == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "seccomp: not an object");
  JsonNode *flags = json_object_get_member (profile, "flags");
  if ((flags && JSON_NODE_HOLDS_ARRAY (flags)
       && json_array_get_length (json_node_get_array (flags)))
      || json_object_has_member (profile, "listenerPath"))
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "seccomp flags and listeners have no precompiled form");
  uint32_t default_action;
  if (!parse_action (member_string (profile, "defaultAction"),
                     member_int (profile, "defaultErrnoRet", -1), &default_action, error))
    return FALSE;
  g_auto (scmp_filter_ctx) ctx = seccomp_init (default_action);
  if (ctx == NULL)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "seccomp_init failed");
  seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0); /* the monitor sets no_new_privs itself */
  if (!add_arches (ctx, profile, error))
    return FALSE;
  JsonNode *syscalls = json_object_get_member (profile, "syscalls");
  JsonArray *arr
      = syscalls && JSON_NODE_HOLDS_ARRAY (syscalls) ? json_node_get_array (syscalls) : NULL;
  for (guint i = 0; arr && i < json_array_get_length (arr); i++)
    {
      JsonNode *rule = json_array_get_element (arr, i);
      if (!JSON_NODE_HOLDS_OBJECT (rule)
          || !add_syscalls (ctx, json_node_get_object (rule), default_action, error))
        return FALSE;
    }
  int r = seccomp_export_bpf (ctx, fd);
  return r < 0 ? crisp_throw_errno (error, r, "seccomp: exporting the filter") : TRUE;
}
