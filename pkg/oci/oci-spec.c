/* crisp_oci_spec_build: the skeleton of config.json and the order its parts are filled in;
 * shared checks for paths and text from the request. */
#include "config.h"

#include "oci-private.h"
#include "crisp-error.h"

#include <errno.h>
#include <string.h>
#include <sys/mount.h>

const Runtime__V1__LinuxContainerSecurityContext *
crisp_oci_security_context (const CrispOciInput *in)
{
  /* the initialiser names the deprecated fields, which clang warns about */
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  static const Runtime__V1__LinuxContainerSecurityContext empty
      = RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
  G_GNUC_END_IGNORE_DEPRECATIONS
  const Runtime__V1__LinuxContainerConfig *l = in->config->linux;
  return l != NULL && l->security_context != NULL ? l->security_context : &empty;
}

void
crisp_oci_note (const CrispOciInput *in, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_debug ("%s", msg);
  if (in->notes != NULL)
    g_ptr_array_add (in->notes, msg);
  else
    g_free (msg);
}

gboolean
crisp_oci_check_text (const char *field, const char *s, gsize max, GError **error)
{
  gsize n = strlen (s);
  if (n > max)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is longer than %" G_GSIZE_FORMAT,
                        field, max);
  for (gsize i = 0; i < n; i++)
    if (g_ascii_iscntrl (s[i]))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "%s '%s' contains a control character", field, s);
  return TRUE;
}

gboolean
crisp_oci_check_path (const char *field, const char *path, GError **error)
{
  if (path == NULL || path[0] != '/')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s '%s' is not an absolute path",
                        field, path ? path : "");
  if (!crisp_oci_check_text (field, path, OCI_MAX_PATH, error))
    return FALSE;
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  for (char **p = parts; *p; p++)
    if (g_str_equal (*p, ".") || g_str_equal (*p, ".."))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s '%s' has a '%s' component",
                          field, path, *p);
  return TRUE;
}

JsonArray *
crisp_oci_strv_array (const char *const *strv)
{
  JsonArray *a = json_array_new ();
  for (; strv != NULL && *strv != NULL; strv++)
    json_array_add_string_element (a, *strv);
  return a;
}

static gboolean
check_input (const CrispOciInput *in, gboolean *out_privileged, GError **error)
{
  g_return_val_if_fail (in->config != NULL && in->sandbox_config != NULL && in->host != NULL,
                        FALSE);
  if (in->config->metadata == NULL || in->config->metadata->name == NULL
      || in->config->metadata->name[0] == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: metadata.name is empty");
  if (in->rootfs == NULL || in->rootfs[0] != '/' || in->rootfs_fd < 0)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "container rootfs is not set");
  gboolean privileged = crisp_oci_security_context (in)->privileged;
  const Runtime__V1__LinuxPodSandboxConfig *pl = in->sandbox_config->linux;
  if (privileged && !(pl && pl->security_context && pl->security_context->privileged))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: privileged container in a non-privileged pod");
  *out_privileged = privileged;
  return TRUE;
}

static JsonObject *
user_object (const CrispOciUser *user)
{
  JsonObject *u = json_object_new ();
  json_object_set_int_member (u, "uid", user->uid);
  json_object_set_int_member (u, "gid", user->gid);
  JsonArray *gids = json_array_new ();
  for (guint i = 0; i < user->gids->len; i++)
    json_array_add_int_element (gids, g_array_index (user->gids, guint32, i));
  json_object_set_array_member (u, "additionalGids", gids);
  return u;
}

static JsonObject *
root_object (const CrispOciInput *in)
{
  JsonObject *root = json_object_new ();
  json_object_set_string_member (root, "path", in->rootfs);
  json_object_set_boolean_member (root, "readonly",
                                  crisp_oci_security_context (in)->readonly_rootfs);
  return root;
}

static gboolean
build_process (const CrispOciInput *in, JsonObject *spec, JsonObject *linux_obj,
               gboolean privileged, GError **error)
{
  g_auto (CrispOciUser) user = { 0 };
  if (!crisp_oci_resolve_user (in, &user, error))
    return FALSE;
  JsonObject *process = json_object_new ();
  json_object_set_object_member (spec, "process", process);
  json_object_set_object_member (process, "user", user_object (&user));
  return crisp_oci_build_process (in, process, user.home, error)
         && crisp_oci_build_security (in, process, linux_obj, privileged, error);
}

/* mount_setattr (Linux 5.12) is what makes a bind read-only through every submount; crisp
 * stages such a tree itself, whatever the OCI runtime knows.  A call with no attributes
 * fails with EINVAL where the call exists. */
static gboolean
kernel_has_mount_setattr (void)
{
  return mount_setattr (-1, "", 0, NULL, 0) == 0 || errno != ENOSYS;
}

void
crisp_oci_features (CrispOciFeatures *out)
{
  *out = (CrispOciFeatures){
    .recursive_read_only_mounts = kernel_has_mount_setattr (),
    /* userns_options mode POD, with id-mapped root filesystems and volumes (pod-config.c,
     * oci-linux.c); with the host's network it is refused, so that feature stays FALSE. */
    .user_namespaces = kernel_has_mount_setattr (),
    .user_namespaces_host_network = FALSE,
    /* mount_options are not read at all */
    .mount_options = FALSE,
    /* oci-user.c: Strict leaves the image's /etc/group memberships out */
    .supplemental_groups_policy = TRUE,
  };
}

gboolean
crisp_oci_spec_build (const CrispOciInput *in, JsonNode **out_spec, GError **error)
{
  gboolean privileged = FALSE;
  if (!check_input (in, &privileged, error))
    return FALSE;
  g_autoptr (JsonObject) spec = json_object_new ();
  json_object_set_string_member (spec, "ociVersion", "1.0.2");
  json_object_set_object_member (spec, "root", root_object (in));
  JsonObject *linux_obj = json_object_new ();
  json_object_set_object_member (spec, "linux", linux_obj);
  JsonObject *resources = json_object_new ();
  json_object_set_object_member (linux_obj, "resources", resources);
  JsonArray *device_rules = json_array_new ();
  json_object_set_array_member (resources, "devices", device_rules);
  if (!build_process (in, spec, linux_obj, privileged, error)
      || !crisp_oci_build_mounts (in, spec, privileged, error)
      || !crisp_oci_build_devices (in, linux_obj, device_rules, privileged, error)
      || !crisp_oci_build_namespaces (in, spec, linux_obj, error)
      || !crisp_oci_build_resources (in, json_object_get_object_member (spec, "process"), linux_obj,
                                     resources, error)
      || !crisp_oci_build_sysctls (in, linux_obj, error)
      || !crisp_oci_build_annotations (in, spec, error))
    return FALSE;
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, g_steal_pointer (&spec));
  *out_spec = node;
  return TRUE;
}
