/* OCI runtime spec (config.json, runtime-spec 1.0.2) for one container, built from a CRI
 * CreateContainer request, its pod's config and the image config.  Everything taken from the
 * request or the image is treated as hostile: bounded, validated, and refused with
 * CRISP_ERROR_INVALID_ARGUMENT naming the field and value. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "crisp-cgroups.h"
#include "proto/runtime.pb-c.h"

G_BEGIN_DECLS

/* Facts about this host the spec depends on; crisp_oci_host_probe fills them once. */
typedef struct
{
  CrispCgroupMode cgroup_mode;
  gboolean hugetlb;              /* hugetlb controller mounted: else hugepage limits dropped */
  gboolean oom_score_restricted; /* no CAP_SYS_RESOURCE: a lower oom_score_adj is refused */
  int oom_score_adj_min;         /* this process's oom_score_adj: the floor when restricted */
  int cap_last_cap;              /* /proc/sys/kernel/cap_last_cap: highest capability known */
  guint64 cap_bounding;          /* this process's bounding set (bit n = capability n): a container
                                    cannot be given more, runc fails if asked */
} CrispOciHost;

/* Reads /proc/self/oom_score_adj, /proc/sys/kernel/cap_last_cap, this process's bounding set
 * and CAP_SYS_RESOURCE, and asks cg (may be NULL: v1 without hugetlb) for the cgroup facts. */
void crisp_oci_host_probe (CrispCgroups *cg, CrispOciHost *out_host);

typedef struct
{
  const char *container_id; /* crisp's id: cgroupsPath, annotations */
  const char *sandbox_id;
  const Runtime__V1__ContainerConfig *config;          /* the request's config (required) */
  const Runtime__V1__PodSandboxConfig *sandbox_config; /* the pod's config (required) */
  /* The image config's "config" object (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal);
   * NULL for none.  Borrowed. */
  JsonObject *image_config;
  const char *image_name; /* for the io.kubernetes.cri.image-name annotation; may be NULL */

  const char *rootfs; /* the mounted container root, becomes root.path */
  int rootfs_fd;      /* O_DIRECTORY fd of rootfs: /etc/passwd and /etc/group are read
                         through it with RESOLVE_IN_ROOT */

  /* The pod's pinned namespaces; NULL where the pod uses the host's (network NODE, ...). */
  const char *netns_path;
  const char *ipcns_path;
  const char *utsns_path;
  /* PID namespace: for pid mode POD the pod's shared one (the pause process's
   * /proc/<pid>/ns/pid); for TARGET the target container's.  CONTAINER gets a new one, NODE
   * the host's: then this is ignored. */
  const char *pidns_path;
  /* The pod's user namespace pin and the pod's own userns_options (from its record, never
   * from the request), both NULL for a pod in the host's user namespace. */
  const char *userns_path;
  const Runtime__V1__UserNamespace *pod_userns;

  const char *cgroup_parent; /* the pod's; NULL: from sandbox_config->linux->cgroup_parent */
  CrispCgroupDriver cgroup_driver;

  /* The pod's files bound into the container; NULL leaves that mount out (/dev/shm then gets
   * a private 64 MiB tmpfs). */
  const char *resolv_conf_path;
  const char *hostname_path;
  const char *hosts_path;
  const char *shm_path;
  const char *hostname; /* NULL: sandbox_config->hostname */

  /* config->n_mounts entries, or NULL when the request has only plain binds: the source crisp
   * staged for each image volume and recursive read-only bind (see CrispOciMountKind), NULL
   * for a plain bind. */
  const char *const *mount_sources;

  const CrispOciHost *host; /* required */
  const char *host_dev_dir; /* privileged containers get every device under it; NULL: /dev */

  /* Optional: things accepted but not acted on (AppArmor, SELinux, dropped hugepage limits,
   * a clamped oom_score_adj ...) are appended here as strings for the caller to log. */
  GPtrArray *notes;
} CrispOciInput;

/* What the spec builder honours, for Status's runtime features; each is set where its
 * feature is built, and stays FALSE while the builder refuses the request fields it needs. */
typedef struct
{
  gboolean recursive_read_only_mounts;   /* Mount.recursive_read_only */
  gboolean user_namespaces;              /* userns_options mode POD, with id-mapped mounts */
  gboolean user_namespaces_host_network; /* both at once */
  gboolean supplemental_groups_policy;   /* Strict besides Merge (ContainerStatus.user too) */
  gboolean mount_options;                /* Mount.mount_options: noexec, nodev, nosuid */
} CrispOciFeatures;

void crisp_oci_features (CrispOciFeatures *out);

/* What a request mount needs from the caller before the spec is built. */
typedef enum
{
  CRISP_OCI_MOUNT_BIND,         /* host_path, bound as asked: nothing */
  CRISP_OCI_MOUNT_RECURSIVE_RO, /* host_path with every submount read-only: the tree, staged */
  CRISP_OCI_MOUNT_IMAGE,        /* Mount.image: the image's layers, mounted read-only */
} CrispOciMountKind;

/* Checks the request's mounts as the spec builder does (paths, how many, which of image,
 * host_path, image_sub_path, readonly, recursive_read_only and propagation go together), so
 * a caller can refuse a request before it stages anything: INVALID_ARGUMENT naming the mount
 * and the field. */
gboolean crisp_oci_check_mounts (const Runtime__V1__ContainerConfig *config,
                                 const Runtime__V1__UserNamespace *pod_userns, GError **error);
/* Whether two lists of id mappings are the same ranges in the same order. */
gboolean crisp_oci_same_mappings (Runtime__V1__IDMapping *const *a, size_t na,
                                  Runtime__V1__IDMapping *const *b, size_t nb);
/* The kind of a mount (crisp_oci_check_mounts says whether it is valid). */
CrispOciMountKind crisp_oci_mount_kind (const Runtime__V1__Mount *m);

/* Builds the whole config.json.  On success *out_spec is a new JSON object node the caller
 * owns.  Errors: INVALID_ARGUMENT for anything wrong in the request or image config (naming
 * the field), FAILED_PRECONDITION when the pod lacks what the request needs (a pid namespace
 * path for pid mode POD ...), NOT_FOUND for a named user or group the image lacks. */
gboolean crisp_oci_spec_build (const CrispOciInput *in, JsonNode **out_spec, GError **error);

/* The capability set a container gets without add/drop, as "CAP_*" names. */
const char *const *crisp_oci_default_capabilities (void);

/* Default masked and read-only paths (used when the request gives none). */
const char *const *crisp_oci_default_masked_paths (void);
const char *const *crisp_oci_default_readonly_paths (void);

/* The container's stop signal, the one rule for the whole tree: the CRI stop_signal when set,
 * else the image's StopSignal when not empty (as crisp_signal_parse reads it), else SIGTERM.
 * INVALID_ARGUMENT for a value that is not a signal. */
gboolean crisp_oci_stop_signal (const Runtime__V1__ContainerConfig *config,
                                JsonObject *image_config, int *out_signal, GError **error);
/* The CRI's name for signal number sig, the inverse of how stop_signal is read;
 * SIGNAL_RUNTIME_DEFAULT for a number the CRI has no name for (32, 33, out of range). */
Runtime__V1__Signal crisp_oci_signal_to_cri (int sig);

G_END_DECLS
