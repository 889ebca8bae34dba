/* Unit tests for pkg/seccomp: the RuntimeDefault profile and the Localhost profile loader. */
#include "config.h"

#include "crisp-seccomp.h"
#include "crisp-error.h"

#include <glib/gstdio.h>
#include <seccomp.h>
#include <string.h>

static JsonArray *
allowed_names (JsonObject *profile)
{
  JsonArray *rules = json_object_get_array_member (profile, "syscalls");
  JsonObject *first = json_array_get_object_element (rules, 0);
  g_assert_cmpstr (json_object_get_string_member (first, "action"), ==, "SCMP_ACT_ALLOW");
  g_assert_false (json_object_has_member (first, "args"));
  return json_object_get_array_member (first, "names");
}

static gboolean
array_has_string (JsonArray *a, const char *s)
{
  for (guint i = 0; i < json_array_get_length (a); i++)
    if (g_strcmp0 (json_array_get_string_element (a, i), s) == 0)
      return TRUE;
  return FALSE;
}

static void
test_default_denies_by_default (void)
{
  g_autoptr (JsonNode) node = crisp_seccomp_default_profile (NULL);
  JsonObject *p = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (p, "defaultAction"), ==, "SCMP_ACT_ERRNO");
  JsonArray *arches = json_object_get_array_member (p, "architectures");
#if defined(__x86_64__)
  g_assert_true (array_has_string (arches, "SCMP_ARCH_X86_64"));
  g_assert_true (array_has_string (arches, "SCMP_ARCH_X86"));
  g_assert_true (array_has_string (arches, "SCMP_ARCH_X32"));
#endif
  JsonArray *names = allowed_names (p);
  g_assert_true (array_has_string (names, "read"));
  g_assert_true (array_has_string (names, "execve"));
  g_assert_false (array_has_string (names, "mount"));
  g_assert_false (array_has_string (names, "init_module"));
  g_assert_false (array_has_string (names, "kexec_load"));
  g_assert_false (array_has_string (names, "add_key"));
  g_assert_false (array_has_string (names, "clone")); /* only with the namespace-flag mask */
}

/* Every name in the profile must compile into a real filter on this host: what runc does. */
static void
test_default_compiles_with_libseccomp (void)
{
  const char *caps[] = { "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", NULL };
  g_autoptr (JsonNode) node = crisp_seccomp_default_profile (caps);
  JsonObject *p = json_node_get_object (node);
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ERRNO (1));
  g_assert_nonnull (ctx);
  JsonArray *rules = json_object_get_array_member (p, "syscalls");
  guint n = 0;
  for (guint i = 0; i < json_array_get_length (rules); i++)
    {
      JsonObject *rule = json_array_get_object_element (rules, i);
      if (json_object_has_member (rule, "args"))
        continue;
      JsonArray *names = json_object_get_array_member (rule, "names");
      for (guint j = 0; j < json_array_get_length (names); j++, n++)
        {
          const char *name = json_array_get_string_element (names, j);
          int nr = seccomp_syscall_resolve_name (name);
          g_assert_cmpint (nr, !=, __NR_SCMP_ERROR);
          int r = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, nr, 0);
          if (r != 0 && r != -EDOM && r != -EEXIST) /* EDOM: pseudo-syscall of another arch */
            g_error ("seccomp_rule_add (%s) = %d", name, r);
        }
    }
  g_assert_cmpuint (n, >, 250);
  seccomp_release (ctx);
}

static void
test_default_capabilities_unlock_syscalls (void)
{
  g_autoptr (JsonNode) plain = crisp_seccomp_default_profile (NULL);
  const char *caps[] = { "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", NULL };
  g_autoptr (JsonNode) admin = crisp_seccomp_default_profile (caps);
  JsonArray *plain_names = allowed_names (json_node_get_object (plain));
  JsonArray *admin_names = allowed_names (json_node_get_object (admin));
  g_assert_false (array_has_string (plain_names, "mount"));
  g_assert_true (array_has_string (admin_names, "mount"));
  g_assert_true (array_has_string (admin_names, "unshare"));
  g_assert_true (array_has_string (admin_names, "process_vm_readv"));
  g_assert_false (array_has_string (plain_names, "process_vm_readv"));
  /* clone: masked without CAP_SYS_ADMIN, plain with it */
  JsonArray *rules = json_object_get_array_member (json_node_get_object (plain), "syscalls");
  gboolean masked_clone = FALSE;
  for (guint i = 0; i < json_array_get_length (rules); i++)
    {
      JsonObject *r = json_array_get_object_element (rules, i);
      JsonArray *names = json_object_get_array_member (r, "names");
      if (array_has_string (names, "clone") && json_object_has_member (r, "args"))
        {
          JsonObject *arg
              = json_array_get_object_element (json_object_get_array_member (r, "args"), 0);
          g_assert_cmpstr (json_object_get_string_member (arg, "op"), ==, "SCMP_CMP_MASKED_EQ");
          g_assert_cmpint (json_object_get_int_member (arg, "value"), ==, 0x7E020000);
          masked_clone = TRUE;
        }
    }
  g_assert_true (masked_clone);
}

static JsonNode *
parse (const char *json, GError **error)
{
  return crisp_seccomp_profile_parse (json, strlen (json), error);
}

static void
test_parse_valid_profile (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node
      = parse ("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
               "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_AARCH64\"],"
               "\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"],"
               "\"syscalls\":[{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\","
               "\"comment\":\"basic\",\"includes\":{}},"
               "{\"name\":\"personality\",\"action\":\"SCMP_ACT_ALLOW\","
               "\"args\":[{\"index\":0,\"value\":8,\"op\":\"SCMP_CMP_EQ\"}]},"
               "{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":13}]}",
               &error);
  g_assert_no_error (error);
  g_autofree char *out = json_to_string (node, FALSE);
  g_assert_nonnull (strstr (out, "\"names\":[\"personality\"]"));
  g_assert_nonnull (strstr (out, "\"errnoRet\":13"));
  g_assert_null (strstr (out, "comment")); /* only OCI fields are re-emitted */
  g_assert_null (strstr (out, "includes"));
}

static void
test_parse_arch_map (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node
      = parse ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"archMap\":[{\"architecture\":"
               "\"SCMP_ARCH_X86_64\",\"subArchitectures\":[\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]}]}",
               &error);
  g_assert_no_error (error);
  JsonArray *a = json_object_get_array_member (json_node_get_object (node), "architectures");
  g_assert_cmpuint (json_array_get_length (a), ==, 3);
}

static void
test_parse_rejects (void)
{
  static const struct
  {
    const char *json;
    const char *needle;
  } bad[] = {
    { "[]", "not a JSON object" },
    { "{\"defaultAction\":\"SCMP_ACT_MAYBE\"}", "unknown action 'SCMP_ACT_MAYBE'" },
    { "{}", "defaultAction must be a string" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_Z80\"]}",
      "unknown architecture 'SCMP_ARCH_Z80'" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"no_such_call\"],"
      "\"action\":\"SCMP_ACT_ERRNO\"}]}",
      "unknown syscall 'no_such_call'" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
      "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":6,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]"
      "}",
      "out of range" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
      "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_XX\"}]}]"
      "}",
      "unknown comparison operator" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
      "\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}}]}",
      "conditional rules" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
      "\"action\":\"SCMP_ACT_ALLOW\",\"bogus\":1}]}",
      "unknown key 'bogus'" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[],"
      "\"action\":\"SCMP_ACT_ALLOW\"}]}",
      "names no syscall" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/x\"}", "listenerPath" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_NOPE\"]}",
      "unknown flag" },
    { "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
      "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":-1}]}",
      "out of range" },
    { "{\"defaultAction\":", "seccomp profile:" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_null (parse (bad[i].json, &error));
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
      if (strstr (error->message, bad[i].needle) == NULL)
        g_error ("case %" G_GSIZE_FORMAT ": '%s' lacks '%s'", i, error->message, bad[i].needle);
    }
}

static void
test_parse_bounds (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) deep = g_string_new ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"x\":");
  for (int i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  g_assert_null (crisp_seccomp_profile_parse (deep->str, deep->len, &error));
  g_assert_nonnull (strstr (error->message, "nested deeper"));
  g_clear_error (&error);

  g_autoptr (GString) many = g_string_new ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[");
  for (int i = 0; i < 9000; i++)
    g_string_append_printf (many, "%s{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"}",
                            i ? "," : "");
  g_string_append (many, "]}");
  g_assert_null (crisp_seccomp_profile_parse (many->str, many->len, &error));
  g_assert_nonnull (strstr (error->message, "more than"));
  g_clear_error (&error);

  g_assert_null (crisp_seccomp_profile_parse ("{\"a\0\":1}", 8, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
}

static void
test_load_file (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("crisp-test-seccomp-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "profile.json", NULL);
  const char *json = "{\"defaultAction\":\"SCMP_ACT_LOG\"}";
  g_assert_true (g_file_set_contents (path, json, -1, &error));
  g_autoptr (JsonNode) node = crisp_seccomp_profile_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "defaultAction"), ==,
                   "SCMP_ACT_LOG");

  g_assert_null (crisp_seccomp_profile_load ("relative.json", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_autofree char *missing = g_build_filename (dir, "missing.json", NULL);
  g_assert_null (crisp_seccomp_profile_load (missing, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, missing));
  g_clear_error (&error);
  g_assert_null (crisp_seccomp_profile_load (dir, &error)); /* a directory */
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_autofree char *fifo = g_build_filename (dir, "fifo", NULL);
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  g_assert_null (crisp_seccomp_profile_load (fifo, &error)); /* must not block */
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_unlink (fifo);
  g_unlink (path);
  g_rmdir (dir);
}

/* The precompiled program: whole instructions, within the kernel's bound, and nothing for what
 * a precompiled filter cannot express. */
static void
test_export_bpf (void)
{
  g_autoptr (JsonNode) profile = crisp_seccomp_default_profile (NULL);
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("crisp-bpf-XXXXXX", &path, NULL);
  g_assert_cmpint (fd, >=, 0);
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_seccomp_export_bpf (profile, fd, &error));
  g_assert_no_error (error);
  off_t len = lseek (fd, 0, SEEK_END);
  g_assert_cmpint (len % 8, ==, 0);
  g_assert_cmpint (len, >, 8 * 50);
  g_assert_cmpint (len, <=, 8 * 4096);

  const char *const refused[] = {
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"]}",
    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
    "\"action\":\"SCMP_ACT_NOTIFY\"}]}",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr (GError) local = NULL;
      g_autoptr (JsonNode) p = json_from_string (refused[i], NULL);
      g_assert_false (crisp_seccomp_export_bpf (p, fd, &local));
      g_assert_error (local, CRISP_ERROR, CRISP_ERROR_FAILED_PRECONDITION);
    }
  close (fd);
  g_unlink (path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/seccomp/default/denies-by-default", test_default_denies_by_default);
  g_test_add_func ("/seccomp/default/compiles", test_default_compiles_with_libseccomp);
  g_test_add_func ("/seccomp/default/capabilities", test_default_capabilities_unlock_syscalls);
  g_test_add_func ("/seccomp/parse/valid", test_parse_valid_profile);
  g_test_add_func ("/seccomp/parse/arch-map", test_parse_arch_map);
  g_test_add_func ("/seccomp/parse/rejects", test_parse_rejects);
  g_test_add_func ("/seccomp/parse/bounds", test_parse_bounds);
  g_test_add_func ("/seccomp/load/file", test_load_file);
  g_test_add_func ("/seccomp/export/bpf", test_export_bpf);
  return g_test_run ();
}
