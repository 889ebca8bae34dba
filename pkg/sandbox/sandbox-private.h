/* Internals of pkg/sandbox shared between its files. */
#pragma once

#include "sandbox.h"

#include "pkg/store/store.h"

G_BEGIN_DECLS

struct _CrispPodService
{
  char *run_root;
  char *pods_run_dir; /* <run_root>/pods */
  char *ns_dir;       /* <run_root>/ns, a private bind mount */
  char *cgroup_driver;
  char *pause_path;
  guint64 shm_size;
  CrispStore *store; /* <root>/pods */
  CrispNetwork *network;
  CrispPodContainerHooks hooks;
  GMutex lock;       /* guards the tables and every pod's state and ips */
  GHashTable *pods;  /* id -> CrispPod */
  GHashTable *names; /* name key -> id, for RunPodSandbox retries */
};

/* namespaces.c: pins and forked helpers.  Functions returning int give 0 or -errno. */
int crisp_ns_dir_prepare (const char *dir);
int crisp_ns_dir_release (const char *dir);
/* Creates new namespaces (any of net, ipc, uts non-NULL) and bind-mounts each onto its path;
 * sets the hostname in the new UTS namespace. */
gboolean crisp_ns_pin (const char *net, const char *ipc, const char *uts, const char *hostname,
                       GError **error);
/* The same inside a new user namespace pinned at `user`, whose maps are uid_map and gid_map
 * ("container host length" lines, already checked): it owns the new net, ipc and uts. */
gboolean crisp_ns_pin_userns (const char *user, const char *uid_map, const char *gid_map,
                              const char *net, const char *ipc, const char *uts,
                              const char *hostname, GError **error);
int crisp_ns_unpin (const char *path);
gboolean crisp_ns_is_pinned (const char *path);
/* Writes /proc/sys/<path> = value for each pair inside the pinned namespaces. */
gboolean crisp_ns_write_sysctls (const char *net_ns, const char *ipc_ns, const char *const *paths,
                                 const char *const *values, GError **error);
/* Starts the pause process as PID 1 of a new PID namespace inside the pinned ones and pins
 * that PID namespace at pid_pin. */
gboolean crisp_ns_start_pause (const char *pause_path, const char *user, const char *net,
                               const char *ipc, const char *uts, const char *pid_pin, int *out_pid,
                               guint64 *out_start_time, GError **error);
/* Kills the pause process if `pid` still is the one started at `start_time`; waits for it. */
int crisp_ns_stop_pause (int pid, guint64 start_time);
/* Bind-mounts /proc/<pid>/ns/pid onto a new file at pid_pin. */
gboolean crisp_ns_pin_pid (int pid, const char *pid_pin, GError **error);

/* pod-config.c: validation of the request and what is derived from it. */
gboolean crisp_pod_config_validate (const Runtime__V1__PodSandboxConfig *config,
                                    const char *cgroup_driver, GError **error);
char *crisp_pod_config_name_key (const Runtime__V1__PodSandboxConfig *config);
/* /proc/sys-relative path of a sysctl key, or NULL with INVALID_ARGUMENT naming it. */
char *crisp_sysctl_path (const char *key, gboolean own_netns, gboolean own_ipc, GError **error);
JsonNode *crisp_pod_config_port_mappings (const Runtime__V1__PodSandboxConfig *config);
gboolean crisp_pod_config_host_network (const Runtime__V1__PodSandboxConfig *config);
gboolean crisp_pod_config_host_ipc (const Runtime__V1__PodSandboxConfig *config);
gboolean crisp_pod_config_shared_pid (const Runtime__V1__PodSandboxConfig *config);
/* The uid_map and gid_map texts of a pod with userns_options mode POD (checked by validate);
 * FALSE, leaving both NULL, for a pod without a user namespace of its own. */
gboolean crisp_pod_config_userns_maps (const Runtime__V1__PodSandboxConfig *config,
                                       char **out_uid_map, char **out_gid_map);

/* pod-files.c: hostname, resolv.conf, hosts, /dev/shm.  _write leaves hosts to
 * _write_hosts in a pod with a network namespace (written once its addresses are known). */
gboolean crisp_pod_files_write (CrispPod *pod, GError **error);
gboolean crisp_pod_files_write_hosts (CrispPod *pod, GError **error);
gboolean crisp_pod_shm_mount (const char *path, guint64 size, GError **error);
int crisp_pod_shm_unmount (const char *path);

/* pod-record.c: the on-disk form of a pod. */
CrispPod *crisp_pod_new (const char *id, const Runtime__V1__PodSandboxConfig *config,
                         const char *runtime_handler);
JsonNode *crisp_pod_to_json (CrispPod *pod);
CrispPod *crisp_pod_from_json (const char *id, JsonNode *node, GError **error);
const char *crisp_pod_state_to_string (CrispPodState state);

/* pod-service.c: the pod's CNI attachment, network.json (written before ADD), with ADD's
 * result from network-result.json (written after: a file of its own, as replacing
 * network.json cost a flush on ext4) when network.json has none. */
JsonNode *crisp_pod_load_attachment (CrispPodService *svc, const char *id, GError **error);
gboolean crisp_pod_delete_attachment (CrispPodService *svc, const char *id, GError **error);

/* pod-service.c, for start-up repair: finish a stop or a removal under the pod's lock. */
gboolean crisp_pod_service_repair_stop (CrispPodService *svc, CrispPod *pod, GError **error);
gboolean crisp_pod_service_repair_remove (CrispPodService *svc, CrispPod *pod, GError **error);

/* pod-status.c: CRI messages. */
Runtime__V1__PodSandboxStatusResponse *crisp_pod_build_status (CrispPodService *svc, CrispPod *pod,
                                                               gboolean verbose);
Runtime__V1__PodSandbox *crisp_pod_build_item (CrispPodService *svc, CrispPod *pod);

G_END_DECLS
