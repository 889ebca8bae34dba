/* Pod sandboxes: the pod service (Run / Stop / Remove / Status / List), its records on disk,
 * and what a container needs to join a pod (namespace pins, files, cgroup parent). */
#pragma once

#include <gio/gio.h>

#include "pkg/network/network.h"
#include "proto/runtime.pb-c.h"

G_BEGIN_DECLS

typedef struct
{
  const char *root;                   /* persistent state; pod records in <root>/pods */
  const char *run_root;               /* runtime state: <run_root>/pods, <run_root>/ns */
  const char *cni_config_dir;         /* [network] cni-config-dir */
  const char *const *cni_plugin_dirs; /* [network] cni-plugin-dirs */
  const char *cgroup_driver;          /* "cgroupfs" or "systemd" */
  const char *pause_path;             /* crisp-pause, for pods sharing one PID namespace */
  guint64 shm_size;                   /* bytes of the pod's /dev/shm; 0: 64 MiB */
} CrispPodOptions;

typedef enum
{
  CRISP_POD_CREATING, /* RunPodSandbox in progress (or crashed: cleaned at start-up) */
  CRISP_POD_READY,
  CRISP_POD_STOPPING, /* StopPodSandbox in progress (finished at start-up) */
  CRISP_POD_NOTREADY,
  CRISP_POD_REMOVING, /* RemovePodSandbox in progress (finished at start-up) */
} CrispPodState;

/* A pod.  After RunPodSandbox returns only `state`, `ips`, the namespace paths, `shm_path`
 * and `pause_pid` change (StopPodSandbox clears them), and `config->linux` with its overhead
 * and resources (UpdatePodSandboxResources); they are written under the service's lock and
 * the pod's op_lock, so read them holding either.  The rest of `config` never changes. */
typedef struct _CrispPod
{
  gint ref_count;
  char *id;
  Runtime__V1__PodSandboxConfig *config; /* as requested, unpacked */
  char *runtime_handler;
  CrispPodState state;
  gint64 created_at; /* ns since the epoch */
  char *cgroup_parent;
  char *hostname;
  char *run_dir; /* <run_root>/pods/<id>: hostname, resolv.conf, hosts, shm/ */
  char *net_ns;  /* pinned namespaces, NULL when shared with the host (or stopped) */
  char *ipc_ns;
  char *uts_ns;
  char *pid_ns;   /* only when the pod shares one PID namespace */
  char *user_ns;  /* userns_options mode POD: owns net, ipc and uts (see namespaces.c) */
  char *shm_path; /* the pod's sized tmpfs for /dev/shm, NULL with host IPC */
  int pause_pid;  /* 0: none */
  guint64 pause_start_time;
  GStrv ips;
  GMutex op_lock; /* serialises Run / Stop / Remove of this pod */
} CrispPod;

CrispPod *crisp_pod_ref (CrispPod *pod);
void crisp_pod_unref (CrispPod *pod);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispPod, crisp_pod_unref)

typedef struct _CrispPodService CrispPodService;

/* Bounds on what a request may carry, shared by pods and containers (pod-config.c). */
#define CRISP_NAME_MAX 253
#define CRISP_LABELS_MAX (256 * 1024)      /* keys plus values, like Kubernetes' annotations */
#define CRISP_ANNOTATIONS_MAX (256 * 1024) /* Kubernetes' own bound on an object's annotations */

/* INVALID_ARGUMENT naming field unless value is 1 to CRISP_NAME_MAX bytes without '/', spaces
 * or control characters. */
gboolean crisp_pod_config_check_name (const char *field, const char *value, GError **error);
/* INVALID_ARGUMENT naming field and max when the protobuf map entries (labels, annotations)
 * hold more than max bytes of keys and values, or an empty key. */
gboolean crisp_pod_config_check_map (const char *field, void *const *entries, size_t n, gsize max,
                                     GError **error);
/* INVALID_ARGUMENT unless dir (empty: none) is absolute and clean, and no component of it that
 * exists is a symbolic link or a non-directory. */
/* Turns crisp_open_dir_nofollow's -ELOOP, -ENOTDIR and -EINVAL into INVALID_ARGUMENT naming
 * field and path; other errors keep their errno. */
gboolean crisp_pod_config_throw_path (GError **error, int r, const char *field, const char *path);
/* The pod's userns_options when it has a user namespace of its own (mode POD), else NULL. */
const Runtime__V1__UserNamespace *crisp_pod_userns (const CrispPod *pod);
/* An O_CLOEXEC descriptor of the pod's pinned user namespace, -1 without one; -errno when it
 * cannot be opened. */
int crisp_pod_open_userns (CrispPod *pod);
gboolean crisp_pod_config_check_log_directory (const char *field, const char *dir, GError **error);

/* What the container area plugs in: StopPodSandbox calls stop_pod before tearing the pod
 * down and settle_pod after (the monitors' own cleanup, their runtime's delete, goes on
 * meanwhile: the pod is not stopped before it is done), RemovePodSandbox calls remove_pod;
 * all must be idempotent. */
typedef struct
{
  gboolean (*stop_pod) (gpointer data, const char *pod_id, GCancellable *cancellable,
                        GError **error);
  void (*settle_pod) (gpointer data, const char *pod_id);
  gboolean (*remove_pod) (gpointer data, const char *pod_id, GCancellable *cancellable,
                          GError **error);
  gpointer data;
} CrispPodContainerHooks;

/* Loads every pod record and repairs what a crash left half-done; problems that do not
 * prevent start-up are logged. */
CrispPodService *crisp_pod_service_new (const CrispPodOptions *options, GError **error);
void crisp_pod_service_free (CrispPodService *svc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispPodService, crisp_pod_service_free)

void crisp_pod_service_set_container_hooks (CrispPodService *svc,
                                            const CrispPodContainerHooks *hooks);
CrispNetwork *crisp_pod_service_get_network (CrispPodService *svc);

/* Finds a pod by id or unique id prefix (NOT_FOUND otherwise); a new reference. */
CrispPod *crisp_pod_service_lookup (CrispPodService *svc, const char *id, GError **error);
CrispPodState crisp_pod_service_get_state (CrispPodService *svc, CrispPod *pod);

char *crisp_pod_service_run (CrispPodService *svc, const Runtime__V1__RunPodSandboxRequest *req,
                             GCancellable *cancellable, GError **error);
gboolean crisp_pod_service_stop (CrispPodService *svc, const char *id, GCancellable *cancellable,
                                 GError **error);
gboolean crisp_pod_service_remove (CrispPodService *svc, const char *id, GCancellable *cancellable,
                                   GError **error);

/* UpdatePodSandboxResources: checks overhead and resources as UpdateContainerResources checks
 * its resources (INVALID_ARGUMENT naming the field and value), then keeps both (NULL: none) in
 * the pod's config and record, replacing what RunPodSandbox or an earlier update gave.
 * NOT_FOUND for an unknown pod, FAILED_PRECONDITION unless it is ready; nothing changes on
 * failure.  The pod's cgroup is the kubelet's and is not written. */
gboolean crisp_pod_service_update_resources (CrispPodService *svc, const char *id,
                                             const Runtime__V1__LinuxContainerResources *overhead,
                                             const Runtime__V1__LinuxContainerResources *resources,
                                             GError **error);

/* Responses built from malloc'd memory: free with protobuf_c_message_free_unpacked (m, NULL). */
Runtime__V1__PodSandboxStatusResponse *
crisp_pod_service_status (CrispPodService *svc, const char *id, gboolean verbose, GError **error);
Runtime__V1__ListPodSandboxResponse *
crisp_pod_service_list (CrispPodService *svc, const Runtime__V1__PodSandboxFilter *filter);

G_END_DECLS
