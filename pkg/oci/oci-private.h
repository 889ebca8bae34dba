/* Internals of the OCI spec builder: each oci-*.c fills one part of config.json. */
#pragma once

#include "crisp-oci.h"

#define OCI_MAX_PATH 4096
#define OCI_MAX_LIST 256 /* mounts, masked paths, annotations, supplemental groups ... */

/* The container's security context, never NULL (an empty one when the request has none). */
const Runtime__V1__LinuxContainerSecurityContext *
crisp_oci_security_context (const CrispOciInput *in);

void crisp_oci_note (const CrispOciInput *in, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* path is absolute, at most OCI_MAX_PATH, without control characters, "." or ".."
 * components; field names it in the error. */
gboolean crisp_oci_check_path (const char *field, const char *path, GError **error);
/* s has no control characters and is at most max bytes. */
gboolean crisp_oci_check_text (const char *field, const char *s, gsize max, GError **error);

JsonArray *crisp_oci_strv_array (const char *const *strv);

/* oci-process.c: process.args, env, cwd, terminal. */
gboolean crisp_oci_build_process (const CrispOciInput *in, JsonObject *process, const char *home,
                                  GError **error);

/* oci-user.c: uid, gid, additional gids and HOME from the request, the image's User and the
 * image's /etc/passwd and /etc/group (read inside the root). */
typedef struct
{
  guint32 uid;
  guint32 gid;
  GArray *gids; /* guint32, primary first */
  char *home;
} CrispOciUser;
void crisp_oci_user_clear (CrispOciUser *user);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CrispOciUser, crisp_oci_user_clear)
gboolean crisp_oci_resolve_user (const CrispOciInput *in, CrispOciUser *out_user, GError **error);
/* Reads path inside the root dir fd without leaving it (RESOLVE_IN_ROOT), at most max bytes;
 * returns -errno (-ENOENT when absent, -EFBIG when larger, -EINVAL when not a regular file). */
int crisp_oci_read_in_root (int rootfd, const char *path, gsize max, char **out_text);

/* oci-mounts.c: mounts[], linux.devices and their cgroup rules, rootfsPropagation. */
gboolean crisp_oci_build_mounts (const CrispOciInput *in, JsonObject *spec, gboolean privileged,
                                 GError **error);
gboolean crisp_oci_build_devices (const CrispOciInput *in, JsonObject *linux_obj,
                                  JsonArray *device_rules, gboolean privileged, GError **error);

/* oci-security.c: capabilities, seccomp, masked/readonly paths, no_new_privs, LSM notes. */
gboolean crisp_oci_build_security (const CrispOciInput *in, JsonObject *process,
                                   JsonObject *linux_obj, gboolean privileged, GError **error);

/* oci-linux.c: namespaces, cgroupsPath, resources, sysctls, annotations, hostname. */
gboolean crisp_oci_build_namespaces (const CrispOciInput *in, JsonObject *spec,
                                     JsonObject *linux_obj, GError **error);
gboolean crisp_oci_build_resources (const CrispOciInput *in, JsonObject *process,
                                    JsonObject *linux_obj, JsonObject *resources, GError **error);
gboolean crisp_oci_build_sysctls (const CrispOciInput *in, JsonObject *linux_obj, GError **error);
gboolean crisp_oci_build_annotations (const CrispOciInput *in, JsonObject *spec, GError **error);
