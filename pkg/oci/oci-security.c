/* process.capabilities, noNewPrivileges, linux.seccomp, maskedPaths and readonlyPaths; the
 * AppArmor and SELinux fields are accepted and noted, since this host has neither. */
#include "config.h"

#include "oci-private.h"
#include "crisp-seccomp.h"
#include "crisp-error.h"

#include <string.h>

#define MAX_CAP_NAMES 64

/* Index = capability number (linux/capability.h). */
static const char *const all_caps[] = {
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
  NULL,
};

/* The documented default (docs/containers.md), the set containerd and CRI-O give. */
static const char *const default_caps[] = {
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
  NULL,
};

static const char *const default_masked[] = {
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
  NULL,
};

static const char *const default_readonly[] = {
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

const char *const *
crisp_oci_default_capabilities (void)
{
  return default_caps;
}

const char *const *
crisp_oci_default_masked_paths (void)
{
  return default_masked;
}

const char *const *
crisp_oci_default_readonly_paths (void)
{
  return default_readonly;
}

/* "net_raw", "CAP_NET_RAW", "Net_Raw" -> "CAP_NET_RAW"; "all" -> "ALL"; NULL if unknown. */
static const char *
normalize_cap (const char *name, int last_cap)
{
  if (name == NULL || strlen (name) > 64)
    return NULL;
  g_autofree char *up = g_ascii_strup (name, -1);
  if (g_str_equal (up, "ALL"))
    return "ALL";
  g_autofree char *full
      = g_str_has_prefix (up, "CAP_") ? g_strdup (up) : g_strconcat ("CAP_", up, NULL);
  for (int i = 0; all_caps[i] != NULL && i <= last_cap; i++)
    if (g_str_equal (all_caps[i], full))
      return all_caps[i];
  return NULL;
}

static gboolean
normalize_list (const CrispOciInput *in, const char *field, char **names, gsize n, GPtrArray *out,
                gboolean *out_all, GError **error)
{
  if (n > MAX_CAP_NAMES)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "container config: more than %d %s",
                        MAX_CAP_NAMES, field);
  for (gsize i = 0; i < n; i++)
    {
      const char *cap = normalize_cap (names[i], in->host->cap_last_cap);
      if (cap == NULL)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "container config: %s has unknown capability '%s'", field,
                            names[i] ? names[i] : "");
      if (g_str_equal (cap, "ALL"))
        *out_all = TRUE;
      else
        g_ptr_array_add (out, (char *) cap);
    }
  return TRUE;
}

static void
add_unique (GPtrArray *set, const char *cap)
{
  for (guint i = 0; i < set->len; i++)
    if (g_str_equal (set->pdata[i], cap))
      return;
  g_ptr_array_add (set, (char *) cap);
}

static int
cap_number (const char *cap)
{
  for (int i = 0; all_caps[i] != NULL; i++)
    if (g_str_equal (all_caps[i], cap))
      return i;
  return -1;
}

/* crisp cannot hand out a capability outside its own bounding set (here CAP_SYS_RESOURCE is
 * missing): runc would fail the container with "unable to apply caps", so leave it out. */
static void
drop_unheld (const CrispOciInput *in, GPtrArray *caps)
{
  g_autoptr (GString) dropped = g_string_new (NULL);
  for (guint i = 0; i < caps->len;)
    {
      int n = cap_number (caps->pdata[i]);
      if (n >= 0 && n < 64 && (in->host->cap_bounding & (G_GUINT64_CONSTANT (1) << n)) != 0)
        {
          i++;
          continue;
        }
      g_string_append_printf (dropped, "%s%s", dropped->len ? " " : "",
                              (const char *) caps->pdata[i]);
      g_ptr_array_remove_index (caps, i);
    }
  if (dropped->len > 0)
    crisp_oci_note (in, "capabilities %s left out: crisp does not hold them", dropped->str);
}

/* Defaults (or ALL when added), minus everything when ALL is dropped, plus the named adds,
 * minus the named drops: a named drop beats a named add, as in containerd. */
static gboolean
compute_caps (const CrispOciInput *in, gboolean privileged, GPtrArray *caps, GError **error)
{
  const Runtime__V1__Capability *c = crisp_oci_security_context (in)->capabilities;
  gboolean add_all = privileged, drop_all = FALSE;
  g_autoptr (GPtrArray) add = g_ptr_array_new ();
  g_autoptr (GPtrArray) drop = g_ptr_array_new ();
  if (c != NULL && !privileged
      && (!normalize_list (in, "add_capabilities", c->add_capabilities, c->n_add_capabilities, add,
                           &add_all, error)
          || !normalize_list (in, "drop_capabilities", c->drop_capabilities, c->n_drop_capabilities,
                              drop, &drop_all, error)))
    return FALSE;
  if (c != NULL && c->n_add_ambient_capabilities > 0)
    crisp_oci_note (in, "add_ambient_capabilities ignored (not supported)");
  for (int i = 0; all_caps[i] != NULL && i <= in->host->cap_last_cap; i++)
    if (add_all || (!drop_all && g_strv_contains (default_caps, all_caps[i])))
      add_unique (caps, all_caps[i]);
  if (drop_all && !privileged)
    g_ptr_array_set_size (caps, 0);
  for (guint i = 0; i < add->len; i++)
    add_unique (caps, add->pdata[i]);
  for (guint i = 0; i < drop->len; i++)
    g_ptr_array_remove (caps, drop->pdata[i]);
  drop_unheld (in, caps);
  return TRUE;
}

static JsonObject *
caps_object (GPtrArray *caps)
{
  JsonObject *o = json_object_new ();
  const char *sets[] = { "bounding", "effective", "permitted" };
  for (gsize s = 0; s < G_N_ELEMENTS (sets); s++)
    {
      JsonArray *a = json_array_new ();
      for (guint i = 0; i < caps->len; i++)
        json_array_add_string_element (a, caps->pdata[i]);
      json_object_set_array_member (o, sets[s], a);
    }
  return o;
}

static gboolean
load_localhost (const char *field, const char *path, JsonNode **out, GError **error)
{
  if (!crisp_oci_check_path (field, path, error))
    return FALSE;
  *out = crisp_seccomp_profile_load (path, error);
  return *out != NULL ? TRUE : crisp_prefix_error (error, "%s: ", field);
}

/* Deprecated seccomp_profile_path: "", "unconfined", "runtime/default", "docker/default",
 * "localhost/<absolute path>". */
static gboolean
seccomp_from_path (const char *p, const char *const *caps, JsonNode **out, GError **error)
{
  if (p == NULL || p[0] == '\0' || g_str_equal (p, "unconfined"))
    return TRUE;
  if (g_str_equal (p, "runtime/default") || g_str_equal (p, "docker/default"))
    {
      *out = crisp_seccomp_default_profile (caps);
      return TRUE;
    }
  if (g_str_has_prefix (p, "localhost/"))
    return load_localhost ("container config: seccomp_profile_path", p + strlen ("localhost"), out,
                           error);
  return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                      "container config: seccomp_profile_path '%s' is not recognised", p);
}

/* The request may still use the deprecated string fields; reading them is deliberate. */
static const char *
deprecated_seccomp_path (const Runtime__V1__LinuxContainerSecurityContext *sc)
{
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  return sc->seccomp_profile_path;
  G_GNUC_END_IGNORE_DEPRECATIONS
}

static const char *
deprecated_apparmor_profile (const Runtime__V1__LinuxContainerSecurityContext *sc)
{
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  return sc->apparmor_profile;
  G_GNUC_END_IGNORE_DEPRECATIONS
}

static gboolean
build_seccomp (const CrispOciInput *in, gboolean privileged, GPtrArray *caps, JsonObject *linux_obj,
               GError **error)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = crisp_oci_security_context (in);
  const Runtime__V1__SecurityProfile *sp = sc->seccomp;
  g_autoptr (JsonNode) profile = NULL;
  g_ptr_array_add (caps, NULL);
  const char *const *capv = (const char *const *) caps->pdata;
  gboolean ok = TRUE;
  if (privileged)
    ; /* privileged containers run unconfined */
  else if (sp == NULL)
    ok = seccomp_from_path (deprecated_seccomp_path (sc), capv, &profile, error);
  else if (sp->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault)
    profile = crisp_seccomp_default_profile (capv);
  else if (sp->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost)
    ok = load_localhost ("container config: seccomp localhost_ref", sp->localhost_ref, &profile,
                         error);
  else if (sp->profile_type != RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined)
    ok = crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                      "container config: seccomp profile_type %d is unknown",
                      (int) sp->profile_type);
  g_ptr_array_set_size (caps, caps->len - 1);
  if (ok && profile != NULL)
    json_object_set_member (linux_obj, "seccomp", g_steal_pointer (&profile));
  return ok;
}

static gboolean
path_list (const char *field, char **req, gsize n, const char *const *defaults, gboolean privileged,
           JsonObject *linux_obj, const char *key, GError **error)
{
  if (n > OCI_MAX_LIST)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "container config: more than %d %s",
                        OCI_MAX_LIST, field);
  for (gsize i = 0; i < n; i++)
    if (!crisp_oci_check_path (field, req[i], error))
      return FALSE;
  JsonArray *a;
  if (privileged)
    a = json_array_new ();
  else if (n > 0)
    {
      a = json_array_new (); /* protobuf-c's repeated fields are not NULL-terminated */
      for (gsize i = 0; i < n; i++)
        json_array_add_string_element (a, req[i]);
    }
  else
    a = crisp_oci_strv_array (defaults);
  json_object_set_array_member (linux_obj, key, a);
  return TRUE;
}

static void
note_lsm (const CrispOciInput *in)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = crisp_oci_security_context (in);
  const Runtime__V1__SecurityProfile *aa = sc->apparmor;
  if (aa != NULL && aa->profile_type != RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined)
    crisp_oci_note (in, "apparmor profile %s%s ignored: no AppArmor on this host",
                    aa->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost
                        ? "localhost/"
                        : "runtime/default",
                    aa->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost
                        ? aa->localhost_ref
                        : "");
  else if (deprecated_apparmor_profile (sc) && deprecated_apparmor_profile (sc)[0]
           && !g_str_equal (deprecated_apparmor_profile (sc), "unconfined"))
    crisp_oci_note (in, "apparmor profile '%s' ignored: no AppArmor on this host",
                    deprecated_apparmor_profile (sc));
  const Runtime__V1__SELinuxOption *se = sc->selinux_options;
  if (se
      && ((se->user && se->user[0]) || (se->role && se->role[0]) || (se->type && se->type[0])
          || (se->level && se->level[0])))
    crisp_oci_note (in, "selinux options ignored: no SELinux on this host");
}

gboolean
crisp_oci_build_security (const CrispOciInput *in, JsonObject *process, JsonObject *linux_obj,
                          gboolean privileged, GError **error)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = crisp_oci_security_context (in);
  g_autoptr (GPtrArray) caps = g_ptr_array_new ();
  if (!compute_caps (in, privileged, caps, error)
      || !build_seccomp (in, privileged, caps, linux_obj, error)
      || !path_list ("masked_paths", sc->masked_paths, sc->n_masked_paths, default_masked,
                     privileged, linux_obj, "maskedPaths", error)
      || !path_list ("readonly_paths", sc->readonly_paths, sc->n_readonly_paths, default_readonly,
                     privileged, linux_obj, "readonlyPaths", error))
    return FALSE;
  json_object_set_object_member (process, "capabilities", caps_object (caps));
  json_object_set_boolean_member (process, "noNewPrivileges", sc->no_new_privs);
  note_lsm (in);
  return TRUE;
}
