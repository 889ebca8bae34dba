/* The monitor's exec-spec and precompiled seccomp filter, written at create time from the very
 * spec runc gets (config.json's process and linux.seccomp): the one source of truth for both
 * exec paths.  A spec the direct path does not cover gets no exec-spec: its execs use runc. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "crisp-seccomp.h"
#include "monitor-protocol.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>

static const char *const cap_names[] = {
  "CHOWN",
  "DAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE",
  "NET_BROADCAST",
  "NET_ADMIN",
  "NET_RAW",
  "IPC_LOCK",
  "IPC_OWNER",
  "SYS_MODULE",
  "SYS_RAWIO",
  "SYS_CHROOT",
  "SYS_PTRACE",
  "SYS_PACCT",
  "SYS_ADMIN",
  "SYS_BOOT",
  "SYS_NICE",
  "SYS_RESOURCE",
  "SYS_TIME",
  "SYS_TTY_CONFIG",
  "MKNOD",
  "LEASE",
  "AUDIT_WRITE",
  "AUDIT_CONTROL",
  "SETFCAP",
  "MAC_OVERRIDE",
  "MAC_ADMIN",
  "SYSLOG",
  "WAKE_ALARM",
  "BLOCK_SUSPEND",
  "AUDIT_READ",
  "PERFMON",
  "BPF",
  "CHECKPOINT_RESTORE",
};

static const char *const rlimit_names[] = {
  [RLIMIT_CPU] = "RLIMIT_CPU",           [RLIMIT_FSIZE] = "RLIMIT_FSIZE",
  [RLIMIT_DATA] = "RLIMIT_DATA",         [RLIMIT_STACK] = "RLIMIT_STACK",
  [RLIMIT_CORE] = "RLIMIT_CORE",         [RLIMIT_RSS] = "RLIMIT_RSS",
  [RLIMIT_NPROC] = "RLIMIT_NPROC",       [RLIMIT_NOFILE] = "RLIMIT_NOFILE",
  [RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",   [RLIMIT_AS] = "RLIMIT_AS",
  [RLIMIT_LOCKS] = "RLIMIT_LOCKS",       [RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
  [RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE", [RLIMIT_NICE] = "RLIMIT_NICE",
  [RLIMIT_RTPRIO] = "RLIMIT_RTPRIO",     [RLIMIT_RTTIME] = "RLIMIT_RTTIME",
};

static JsonObject *
object_member (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static JsonArray *
array_member (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

/* A capability list as a mask; runc ignores names it does not know, and so does this. */
static guint64
cap_mask (JsonArray *names)
{
  guint64 mask = 0;
  for (guint i = 0; names && i < json_array_get_length (names); i++)
    {
      const char *name = json_array_get_string_element (names, i);
      for (guint bit = 0; name && g_str_has_prefix (name, "CAP_") && bit < G_N_ELEMENTS (cap_names);
           bit++)
        if (strcmp (name + 4, cap_names[bit]) == 0)
          mask |= 1ull << bit;
    }
  return mask;
}

static gboolean
text_ok (const char *s)
{
  return s && !strchr (s, '\n');
}

static gboolean
write_user (GString *out, JsonObject *process, const char **why)
{
  JsonObject *user = object_member (process, "user");
  if (user == NULL || json_object_has_member (user, "umask")
      || json_object_has_member (user, "username"))
    return (*why = "process.user has fields the direct exec does not apply"), FALSE;
  g_string_append_printf (out, "uid=%" G_GINT64_FORMAT "\ngid=%" G_GINT64_FORMAT "\ngroups=",
                          json_object_get_int_member_with_default (user, "uid", 0),
                          json_object_get_int_member_with_default (user, "gid", 0));
  JsonArray *groups = array_member (user, "additionalGids");
  for (guint i = 0; groups && i < json_array_get_length (groups); i++)
    g_string_append_printf (out, "%s%" G_GINT64_FORMAT, i ? "," : "",
                            json_array_get_int_element (groups, i));
  g_string_append_c (out, '\n');
  if (groups && json_array_get_length (groups) > 256)
    return (*why = "more than 256 additionalGids"), FALSE;
  return TRUE;
}

static void
write_caps (GString *out, JsonObject *process)
{
  static const char *const sets[]
      = { "bounding", "effective", "permitted", "inheritable", "ambient" };
  JsonObject *caps = object_member (process, "capabilities");
  for (guint i = 0; i < G_N_ELEMENTS (sets); i++)
    g_string_append_printf (out, "caps_%s=%" G_GINT64_MODIFIER "x\n", sets[i],
                            cap_mask (array_member (caps, sets[i])));
}

static gboolean
write_rlimits (GString *out, JsonObject *process, const char **why)
{
  JsonArray *rl = array_member (process, "rlimits");
  for (guint i = 0; rl && i < json_array_get_length (rl); i++)
    {
      JsonNode *n = json_array_get_element (rl, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
      const char *type = o ? json_object_get_string_member_with_default (o, "type", "") : "";
      guint res = 0;
      while (res < G_N_ELEMENTS (rlimit_names) && g_strcmp0 (rlimit_names[res], type) != 0)
        res++;
      if (res == G_N_ELEMENTS (rlimit_names) || i >= 32)
        return (*why = "an rlimit the direct exec does not know"), FALSE;
      g_string_append_printf (out, "rlimit=%u %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n", res,
                              (guint64) json_object_get_int_member_with_default (o, "soft", 0),
                              (guint64) json_object_get_int_member_with_default (o, "hard", 0));
    }
  return TRUE;
}

/* Process fields the direct path does not apply: such a container keeps runc's exec. */
static const char *
uncovered (JsonObject *process, JsonObject *linux_obj)
{
  static const char *const fields[]
      = { "apparmorProfile", "selinuxLabel", "ioPriority", "scheduler", "execCPUAffinity" };
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    if (json_object_has_member (process, fields[i]))
      return fields[i];
  if (linux_obj
      && (json_object_has_member (linux_obj, "personality")
          || json_object_has_member (linux_obj, "intelRdt")))
    return "linux.personality or intelRdt";
  return NULL;
}

static gboolean
build_exec_spec (CrispContainer *c, JsonObject *process, JsonObject *linux_obj, GString *out,
                 const char **why)
{
  if ((*why = uncovered (process, linux_obj)) != NULL)
    return FALSE;
  const char *cwd = json_object_get_string_member_with_default (process, "cwd", "/");
  if (!text_ok (cwd) || cwd[0] != '/')
    return (*why = "process.cwd"), FALSE;
  g_string_append_printf (
      out, "version=1\ncwd=%s\nkeyring=_ses.%s\nno_new_privs=%d\n", cwd, c->id,
      json_object_get_boolean_member_with_default (process, "noNewPrivileges", FALSE));
  if (json_object_has_member (process, "oomScoreAdj"))
    g_string_append_printf (out, "oom_score_adj=%" G_GINT64_FORMAT "\n",
                            json_object_get_int_member (process, "oomScoreAdj"));
  if (!write_user (out, process, why) || !write_rlimits (out, process, why))
    return FALSE;
  write_caps (out, process);
  JsonArray *env = array_member (process, "env");
  for (guint i = 0; env && i < json_array_get_length (env); i++)
    {
      const char *kv = json_array_get_string_element (env, i);
      if (!text_ok (kv) || strchr (kv, '=') == NULL || kv[0] == '=')
        return (*why = "an env entry with a newline or without a name"), FALSE;
      g_string_append_printf (out, "env=%s\n", kv);
    }
  g_string_append_printf (out, "seccomp=%d\n",
                          linux_obj && json_object_has_member (linux_obj, "seccomp"));
  return out->len <= CRISP_MONITOR_EXEC_SPEC_MAX || ((*why = "too large"), FALSE);
}

static gboolean
write_filter (int dirfd, JsonNode *seccomp, GError **error)
{
  const char *tmp = CRISP_MONITOR_FILE_EXEC_SECCOMP ".tmp";
  _cleanup_close_ int fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "creating the seccomp filter");
  struct stat st;
  if (!crisp_seccomp_export_bpf (seccomp, fd, error))
    return unlinkat (dirfd, tmp, 0), FALSE;
  if (fstat (fd, &st) < 0 || st.st_size == 0 || st.st_size > CRISP_MONITOR_EXEC_SECCOMP_MAX)
    {
      unlinkat (dirfd, tmp, 0);
      return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                          "the seccomp filter is longer than the kernel takes");
    }
  if (renameat (dirfd, tmp, dirfd, CRISP_MONITOR_FILE_EXEC_SECCOMP) < 0)
    return crisp_throw_errno (error, errno, "renaming the seccomp filter");
  return TRUE;
}

/* The filter first, then the exec-spec whose presence tells the monitor to exec directly: a
 * crash between them leaves runc's exec in place. */
gboolean
crisp_container_write_exec_spec (CrispContainerService *svc, CrispContainer *c, JsonNode *spec,
                                 const char *bundle, GError **error)
{
  JsonObject *root = JSON_NODE_HOLDS_OBJECT (spec) ? json_node_get_object (spec) : NULL;
  JsonObject *process = object_member (root, "process");
  JsonObject *linux_obj = object_member (root, "linux");
  g_autoptr (GString) out = g_string_new (NULL);
  const char *why = "runtime.exec-direct is off";
  if (!svc->config->exec_direct || process == NULL
      || !build_exec_spec (c, process, linux_obj, out, &why))
    {
      g_debug ("container '%s': execs run through the runtime: %s", c->id, why);
      return TRUE;
    }
  g_autofree char *state = g_build_filename (bundle, "monitor", NULL);
  _cleanup_close_ int dirfd = open (state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return crisp_throw_errno (error, errno, "opening '%s'", state);
  JsonNode *seccomp = linux_obj ? json_object_get_member (linux_obj, "seccomp") : NULL;
  g_autoptr (GError) local = NULL;
  if (seccomp && !write_filter (dirfd, seccomp, &local))
    {
      g_debug ("container '%s': execs run through the runtime: %s", c->id, local->message);
      return TRUE;
    }
  int r
      = crisp_write_file_replace_at (dirfd, CRISP_MONITOR_FILE_EXEC_SPEC, out->str, out->len, 0600);
  if (r < 0)
    return crisp_throw_errno (error, r, "writing '%s/" CRISP_MONITOR_FILE_EXEC_SPEC "'", state);
  g_debug ("container '%s': execs run directly from its monitor%s", c->id,
           seccomp ? " with the precompiled seccomp filter" : "");
  return TRUE;
}
