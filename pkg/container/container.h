/* Containers: the container half of the CRI RuntimeService — create, start, stop, remove,
 * status, list, exec-sync, log reopen, resources and stats — on top of one crisp-conmon per
 * container. Every fact is on disk before a call returns, so a restarted crisp rebuilds all
 * of it from the records, the monitors' files and the kernel. Thread-safe. */
#pragma once

#include <gio/gio.h>

#include "proto/runtime.pb-c.h"

G_BEGIN_DECLS

typedef struct _CrispContainerService CrispContainerService;
struct _CrispPodService;
struct _CrispImageService;
struct CrispConfig;

/* Loads every container record, reconnects the live ones, collects the exit codes written
 * while crisp was down, and removes what an interrupted create left behind. */
CrispContainerService *crisp_container_service_new (const struct CrispConfig *config,
                                                    struct _CrispPodService *pods,
                                                    struct _CrispImageService *images,
                                                    GError **error);
void crisp_container_service_free (CrispContainerService *svc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispContainerService, crisp_container_service_free)

/* Events for GetContainerEvents: func runs after each change of a container (created,
 * started, stopped, deleted), in the thread that made it or saw it, never under a lock of the
 * service.  Setting it (once) also watches each live container for its exit from then on, and
 * announces as STOPPED the exits that start-up found. */
typedef void (*CrispContainerEventFunc) (const char *id, const char *pod_id,
                                         Runtime__V1__ContainerEventType type, gpointer data);
void crisp_container_service_watch (CrispContainerService *svc, CrispContainerEventFunc func,
                                    gpointer data);

/* Whether any container was made from the image (RemoveImage refuses then). */
gboolean crisp_container_service_image_in_use (CrispContainerService *svc, const char *image_id);

char *crisp_container_service_create (CrispContainerService *svc,
                                      const Runtime__V1__CreateContainerRequest *req,
                                      GCancellable *cancellable, GError **error);
gboolean crisp_container_service_start (CrispContainerService *svc, const char *id, GError **error);
/* To be called once the start's answer is on its way: the next standby monitor is made now
 * (its exec and fork would otherwise compete with the answer for the CPU). */
void crisp_container_service_start_answered (CrispContainerService *svc);
/* timeout: seconds before SIGKILL (0: at once). Stopping a stopped container succeeds. */
gboolean crisp_container_service_stop (CrispContainerService *svc, const char *id, gint64 timeout,
                                       GCancellable *cancellable, GError **error);
/* Stops if needed, then removes everything; a missing container is success. */
gboolean crisp_container_service_remove (CrispContainerService *svc, const char *id,
                                         GCancellable *cancellable, GError **error);

/* For the pod service: stop (kill) or remove every container of a pod. */
gboolean crisp_container_service_stop_pod (gpointer svc, const char *pod_id,
                                           GCancellable *cancellable, GError **error);
gboolean crisp_container_service_remove_pod (gpointer svc, const char *pod_id,
                                             GCancellable *cancellable, GError **error);
/* For the pod service, once the pod's network and namespaces are released: waits for the
 * monitors of the pod's stopped or removed containers to finish their cleanup. */
void crisp_container_service_settle_pod (gpointer svc, const char *pod_id);

/* Whether ContainerStatus of `id` can be answered from memory alone (the exit watch is
 * current, or there is no such container): then it does no I/O and need not leave the
 * main loop. */
gboolean crisp_container_service_status_in_memory (CrispContainerService *svc, const char *id);
/* Likewise for every container: a list needs no file read. */
gboolean crisp_container_service_list_in_memory (CrispContainerService *svc);

/* Responses allocated with malloc: free with protobuf_c_message_free_unpacked (m, NULL). */
Runtime__V1__ContainerStatusResponse *crisp_container_service_status (CrispContainerService *svc,
                                                                      const char *id,
                                                                      gboolean verbose,
                                                                      GError **error);
/* The status of each container of the pod (malloc'd, NULL-terminated, *out_n of them), for
 * PodSandboxStatus and the events. */
Runtime__V1__ContainerStatus **crisp_container_service_pod_statuses (CrispContainerService *svc,
                                                                     const char *pod_id,
                                                                     size_t *out_n);
Runtime__V1__ListContainersResponse *
crisp_container_service_list (CrispContainerService *svc, const Runtime__V1__ContainerFilter *f);

/* stdout and stderr together are cut to what fits a 16 MiB reply; *out_truncated says so. */
Runtime__V1__ExecSyncResponse *
crisp_container_service_exec_sync (CrispContainerService *svc,
                                   const Runtime__V1__ExecSyncRequest *req, gboolean *out_truncated,
                                   GError **error);
/* What a streaming exec or attach session needs: the container's monitor serves it. */
typedef struct
{
  char *id;          /* the full id */
  char *monitor_dir; /* the monitor's state directory (its control and attach sockets) */
  int monitor_version;
  gboolean tty, stdin_open; /* as the container was created */
} CrispContainerStreamInfo;

/* NOT_FOUND, or FAILED_PRECONDITION unless the container is running. */
gboolean crisp_container_service_stream_info (CrispContainerService *svc, const char *id,
                                              CrispContainerStreamInfo *out, GError **error);
void crisp_container_stream_info_clear (CrispContainerStreamInfo *info);
/* CheckpointContainer: the running container's processes through CRIU (left running) and its
 * root filesystem changes, as a CRI-O style tar archive at location (absolute; an existing
 * regular file is replaced). FAILED_PRECONDITION with CRIU's reason where it cannot work.
 * timeout: seconds (0: a default). */
gboolean crisp_container_service_checkpoint (CrispContainerService *svc, const char *id,
                                             const char *location, gint64 timeout,
                                             GError **error);
gboolean crisp_container_service_reopen_log (CrispContainerService *svc, const char *id,
                                             GError **error);
gboolean
crisp_container_service_update_resources (CrispContainerService *svc,
                                          const Runtime__V1__UpdateContainerResourcesRequest *req,
                                          GError **error);

/* ImageFsInfo's container filesystem: the blocks and inodes of every container's writable
 * layer (the sum of their ContainerStats writable_layer figures), and where they live: the
 * image filesystem's mountpoint image_fs when they share one filesystem, so the kubelet does
 * not take one disk for a split image filesystem, else crisp's container store. */
gboolean crisp_container_service_layers_usage (CrispContainerService *svc, const char *image_fs,
                                               char **out_mountpoint, guint64 *out_bytes,
                                               guint64 *out_inodes, GError **error);

Runtime__V1__ContainerStatsResponse *crisp_container_service_stats (CrispContainerService *svc,
                                                                    const char *id, GError **error);
Runtime__V1__ListContainerStatsResponse *
crisp_container_service_list_stats (CrispContainerService *svc,
                                    const Runtime__V1__ContainerStatsFilter *filter);
Runtime__V1__PodSandboxStatsResponse *
crisp_container_service_pod_stats (CrispContainerService *svc, const char *pod_id, GError **error);
Runtime__V1__ListPodSandboxStatsResponse *
crisp_container_service_list_pod_stats (CrispContainerService *svc,
                                        const Runtime__V1__PodSandboxStatsFilter *filter);

/* Containers by state as List reports them, for the metrics endpoint: exited ones that the
 * OOM killer ended, and running ones whose monitor process is alive. */
typedef struct
{
  guint created, running, exited;
  guint oom_killed;
  guint monitors_alive;
} CrispContainerCounts;
void crisp_container_service_count (CrispContainerService *svc, CrispContainerCounts *out);

/* One container's monitor as `crisp status` shows it. */
typedef struct
{
  char *container_id;
  int pid;           /* 0: none was recorded */
  gboolean alive;    /* the recorded process (pid and start time) still runs */
  guint64 rss_bytes; /* 0 when not alive */
} CrispMonitorHealth;

void crisp_monitor_health_free (CrispMonitorHealth *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispMonitorHealth, crisp_monitor_health_free)

/* The monitor of each created or running container, and of each exited one whose monitor is
 * still finishing (CrispMonitorHealth*); one that died or vanished is simply not alive. */
GPtrArray *crisp_container_service_monitors (CrispContainerService *svc);

G_END_DECLS
