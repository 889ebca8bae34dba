/* Internals of pkg/container shared between its files. */
#pragma once

#include <json-glib/json-glib.h>

#include "container.h"
#include "crisp-cgroups.h"
#include "crisp-error.h"
#include "crisp-oci.h"
#include "monitor-client.h"
#include "pkg/config/crisp-config.h"
#include "pkg/image/image-service.h"
#include "pkg/sandbox/sandbox.h"
#include "pkg/store/store.h"
#include "proto/proto-copy.h"

G_BEGIN_DECLS

typedef enum
{
  CRISP_CONTAINER_CREATING, /* CreateContainer in progress (or crashed: removed at start-up) */
  CRISP_CONTAINER_CREATED,
  CRISP_CONTAINER_RUNNING,
  CRISP_CONTAINER_EXITED,
  CRISP_CONTAINER_REMOVING, /* RemoveContainer in progress (finished at start-up) */
} CrispContainerState;

/* The most additional gids a record may give a container (the spec builder allows 1024). */
#define CRISP_CONTAINER_MAX_GIDS 4096

/* A container. Identity fields never change after creation; `state`, the times, the exit
 * facts and `resources` change under the service lock, and every operation on one container
 * holds its op_lock. */
typedef struct
{
  gint ref_count;
  char *id;
  char *pod_id;
  char *name; /* metadata.name */
  guint32 attempt;
  Runtime__V1__ContainerConfig *config; /* as requested, unpacked from config.pb */
  char *image_id;                       /* sha256:... */
  char *image_ref;                      /* a repo digest of the image, or its id */
  char *runtime;                        /* runtime handler name */
  char *runtime_path;
  char *runtime_root;
  char *log_path; /* absolute, or NULL */
  char *cgroup_path;
  char *stop_signal;
  CrispContainerState state;
  gint64 created_at, started_at, finished_at; /* ns since the epoch; 0: not yet */
  /* The intent of a StartContainer in progress: the start time it will report. Non-zero on
   * disk while 'runtime start' runs; start-up asks the runtime whether it happened. */
  gint64 start_requested_at;
  /* Memory only, under op_lock: the container started shortly before this crisp did, maybe
   * in a call a kill left unanswered. The kubelet's retry of that StartContainer then gets
   * the success the first call never delivered. */
  gboolean start_recovered;
  /* Memory only, under the service lock: a StartContainer is between its start and its
   * STARTED event, and an exit it is to announce after that event was read meanwhile. */
  gboolean starting, exit_unannounced;
  /* Memory only, under the service lock: an exit was read and is being saved and announced
   * (svc->announced is broadcast after), so a removal waits for it: the save comes before
   * the record goes to the trash, the STOPPED before the DELETED. */
  gboolean exit_announcing;
  /* Under the service lock: its exit file is watched (crisp_container_exit_known). */
  gboolean exit_watched;
  int exit_code;
  gboolean oom_killed;
  char *reason, *message;
  int pid;                /* the container's init, in crisp's PID namespace */
  guint64 pid_start_time; /* its start time in clock ticks, for pid reuse */
  int monitor_pid;
  guint64 monitor_start_time;
  int monitor_version;
  JsonNode *resources; /* the linux resources last applied, as JSON (for status) */
  /* The process's user as the spec crisp wrote has it (ContainerStatus.user), set once at
   * create; has_user is FALSE for a record written before crisp kept it. */
  gboolean has_user;
  guint32 uid, gid;
  GArray *gids; /* guint32: the additional gids, the primary one included */
  /* Per config mount, the id of an image volume's image ("" for other mounts); NULL when the
   * request has no image volume. Set before the container is remembered, never changed. */
  char **mount_images;
  /* A container restored from a checkpoint: the directory of CRIU's images, from which
   * StartContainer's monitor runs the runtime's restore (no monitor before that); NULL for
   * any other container. Set at create, never changed. */
  char *restore_images;
  GMutex op_lock;
} CrispContainer;

CrispContainer *crisp_container_ref (CrispContainer *c);
void crisp_container_unref (CrispContainer *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispContainer, crisp_container_unref)

struct _CrispContainerService
{
  const CrispConfig *config;
  struct _CrispPodService *pods;
  struct _CrispImageService *images;
  CrispStore *store; /* <root>/containers: container.json, config.pb, upper/, work/ */
  char *run_dir;     /* <run-root>/containers/<id>: bundle, rootfs, monitor state */
  GMutex lock;       /* guards the tables and each container's mutable fields */
  GCond announced;   /* with lock: a container's exit_announcing went FALSE */
  GHashTable *by_id; /* id -> CrispContainer */
  GHashTable *names; /* "pod/name/attempt" -> id, for CreateContainer retries */
  CrispCgroups *cgroups;
  CrispCgroupDriver cgroup_driver;
  CrispOciHost host; /* probed once at start-up */
  /* Events (container-events.c): set once before calls are served. */
  CrispContainerEventFunc event_func;
  gpointer event_data;
  int inotify_fd;
  guint inotify_source;
  GHashTable *exit_watches;   /* inotify wd -> container id, under lock */
  gboolean inotify_handling;  /* under lock: events are being read and handled */
  GPtrArray *recovered_exits; /* ids whose exit start-up found, announced by _watch () */
  /* Removals finishing in the background (container-remove.c): the queue and `reaping` under
   * lock, `reap_cond` signalled on each change. */
  GThread *reaper;
  GQueue reap_queue;  /* CrispContainer refs waiting */
  GPtrArray *reaping; /* refs queued or in progress, for the waits of pods and shutdown */
  GCond reap_cond;
  gboolean reaper_stop;
  GCancellable *reap_cancel; /* shutdown: the removal in progress stops, the next start ends it */
  /* container-checkpoint.c, under lock: when `criu check` last ran (monotonic us, 0: never)
   * and what it found wrong (NULL: CRIU works). */
  gint64 criu_checked_at;
  char *criu_problem;
  /* container-standby.c: the monitor kept ready for the next create, under lock (fd -1:
   * none yet); standby_cond signalled when it is taken or the service stops. */
  GThread *standby_thread;
  CrispMonitorStandby standby;
  guint64 standby_start_time;
  gint64 standby_taken_at; /* monotonic us; 0: never */
  GCond standby_cond;
  gboolean standby_stop;
  /* container-runtime-copy.c: the sealed copies of runc the monitors run. */
  struct _CrispRuntimeCopies *runtime_copies;
};

/* container-record.c */
CrispContainer *crisp_container_new (void);
JsonNode *crisp_container_to_json (CrispContainer *c);
CrispContainer *crisp_container_from_json (const char *id, JsonNode *node, GError **error);
const char *crisp_container_state_to_string (CrispContainerState state);
/* Takes the user from an OCI process.user object ({"uid", "gid", "additionalGids"}); FALSE,
 * and c unchanged, when it is not one. */
gboolean crisp_container_set_user (CrispContainer *c, JsonNode *user);
char *crisp_container_name_key (const char *pod_id, const char *name, guint32 attempt);

/* Paths of one container. */
/* container-exec-spec.c: the monitor's exec-spec and seccomp filter from the built spec. */
gboolean crisp_container_write_exec_spec (CrispContainerService *svc, CrispContainer *c,
                                          JsonNode *spec, const char *bundle, GError **error);
char *crisp_container_run_path (CrispContainerService *svc, const char *id, const char *sub);
char *crisp_container_root_path (CrispContainerService *svc, const char *id, const char *sub);

/* container-runtime.c: the OCI runtime and the monitor. */
gboolean crisp_container_runtime_start (CrispContainer *c, GError **error);
gboolean crisp_container_runtime_delete (CrispContainer *c, GError **error);
/* Whether the container's init runs the container's process already (a start released it). */
gboolean crisp_container_init_released (CrispContainer *c);
/* The runtime's own word on the container: "created", "running", "paused" or "stopped". */
char *crisp_container_runtime_status (CrispContainer *c, GError **error);
/* Reads the monitor's exit file into c (under the caller's lock); FALSE when absent. */
gboolean crisp_container_read_exit (CrispContainerService *svc, CrispContainer *c);
/* Whether pid still is the process that started at start_time. */
gboolean crisp_process_matches (int pid, guint64 start_time);
/* A pidfd of `pid` while it is the process that started at start_time (as above), or -errno
 * (-ESRCH: it is not). */
int crisp_process_pidfd (int pid, guint64 start_time);

/* Whether the container's runtime is runc itself (its path is named "runc"): then crisp
 * releases its init without `runc start`, and its monitor runs a sealed copy of it. */
gboolean crisp_container_runtime_is_runc (const CrispContainer *c);

/* container-runtime-copy.c */
typedef struct _CrispRuntimeCopies CrispRuntimeCopies;
CrispRuntimeCopies *crisp_runtime_copies_new (void);
void crisp_runtime_copies_free (CrispRuntimeCopies *rc);
/* A descriptor (3 or above, close-on-exec, the caller's) of a copy of the ELF executable at
 * path in a memfd sealed against any change, made once per file and made again when another
 * file is found at path; -errno when none can be had (-ENOEXEC: not an ELF file). */
int crisp_runtime_copies_get (CrispRuntimeCopies *rc, const char *path);

/* container-create.c: the checks on a CreateContainer request made before anything else. */
gboolean crisp_container_validate_request (const Runtime__V1__CreateContainerRequest *req,
                                           GError **error);

/* container-checkpoint-archive.c */
/* Into the work directory of a checkpoint (CRIU's images in work/checkpoint, its own files in
 * work/criu): spec.dump, config.dump, rootfs-diff.tar, deleted.files, and CRIU's stats-dump
 * and dump.log when it wrote them. */
gboolean crisp_container_checkpoint_write_files (CrispContainerService *svc, CrispContainer *c,
                                                 const char *work, GError **error);
/* The archive of work (but work/criu) as name base in dirfd, complete or not at all; location
 * names it in errors. An existing file of that name is replaced. */
gboolean crisp_container_checkpoint_write_archive (const char *work, int dirfd, const char *base,
                                                   const char *location, GError **error);
/* NOT_FOUND, or INVALID_ARGUMENT naming the problem, unless path is a readable tar whose
 * member names all stay inside it, with config.dump and spec.dump (JSON objects) and the
 * checkpoint/ directory. Only headers and the two JSON files are read. */
gboolean crisp_container_checkpoint_check_archive (const char *path, GError **error);
/* The same, and config.dump and spec.dump (JSON objects) into out_config and out_spec when
 * they are not NULL. */
gboolean crisp_container_checkpoint_read_archive (const char *path, JsonNode **out_config,
                                                  JsonNode **out_spec, GError **error);

/* The same checks and reads of the directory dirfd holding an archive's members as files (a
 * checkpoint image's content): config.dump and spec.dump regular files, never links, of JSON
 * objects, checkpoint/ a directory; what names it in messages. */
gboolean crisp_container_checkpoint_read_dir (int dirfd, const char *what, JsonNode **out_config,
                                              JsonNode **out_spec, GError **error);

/* A checkpoint a CreateContainer restores. */
typedef struct
{
  char *what;        /* "checkpoint archive '/path'", for messages */
  char *archive;     /* the archive's path, or NULL: */
  int content;       /* the checkpoint image's files (a mount attached nowhere), or -1 */
  JsonNode *config;  /* config.dump */
  JsonNode *spec;    /* spec.dump */
  CrispImage *image; /* the image config.dump names, which it was made from */
} CrispRestore;
void crisp_restore_free (CrispRestore *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispRestore, crisp_restore_free)
/* container-checkpoint.c: *out_restore is NULL when image (a CreateContainer's
 * config.image.image) is not a checkpoint; else the checkpoint, read and checked, with the image
 * it was made from (NOT_FOUND unless pulled), once CRIU was found to work here. An error says
 * why it cannot be restored (before anything is made). */
gboolean crisp_container_check_checkpoint_image (CrispContainerService *svc, const char *image,
                                                 CrispRestore **out_restore, GError **error);
/* Under c's directories made by the create: CRIU's images unpacked, the root filesystem (mounted
 * at rootfs) given the checkpoint's changes; sets c->restore_images. */
gboolean crisp_container_restore_prepare (CrispContainerService *svc, CrispContainer *c,
                                          const CrispRestore *restore, const char *rootfs,
                                          GError **error);

/* Once the restored process runs (its start on disk): CRIU's images are not needed again, and
 * go (as CRI-O removes them). */
void crisp_container_restore_finished (CrispContainer *c);

/* container-checkpoint-restore.c: the archive (hostile) unpacked, the changes applied. */
/* A member's name without "./" and trailing slashes ("" for the top), or NULL unless it stays
 * inside the archive (clean, relative, shorter than PATH_MAX). */
char *crisp_container_checkpoint_member_name (const char *raw);
/* checkpoint/ (directories and regular files only), rootfs-diff.tar and deleted.files of the
 * archive at archive_path into destfd; other members are skipped. Names must stay inside,
 * parents are never links, nothing existing is overwritten, sizes are bounded. */
gboolean crisp_container_restore_unpack (const char *archive_path, int destfd, GError **error);
/* The same from the directory srcfd holding the archive's members as files (a checkpoint
 * image's content): the same checks, links never followed, what names it in messages. */
gboolean crisp_container_restore_unpack_dir (int srcfd, const char *what, int destfd,
                                             GError **error);
/* The tar read from tarfd applied in the root filesystem rootfd: each entry replaces what is
 * at its path, whose directories are resolved inside rootfd (RESOLVE_IN_ROOT, no mount
 * crossed); device nodes and sockets are refused. what names the tar in messages. */
gboolean crisp_container_restore_apply_diff (int rootfd, int tarfd, const char *what,
                                             GError **error);
/* Removes, inside rootfd, each path of the JSON list in dirfd/name (none: nothing to do). */
gboolean crisp_container_restore_remove_deleted (int rootfd, int dirfd, const char *name,
                                                 GError **error);
/* What the request says of the user, which a restored process must match. */
typedef struct
{
  gboolean user_fixed; /* run_as_user or run_as_username: the spec's uid is the request's */
} CrispRestoreUser;
/* spec, built for the new container, gets the checkpointed process's args, env, cwd and user
 * from dump (spec.dump); INVALID_ARGUMENT when the dump's process is unusable, runs as another
 * user than the request asks for, its terminal differs from the request's, or it had a mount
 * the new container lacks. */
gboolean crisp_container_restore_adapt_spec (JsonNode *spec, JsonNode *dump,
                                             const CrispRestoreUser *want, const char *what,
                                             GError **error);

/* container-mounts.c: image volumes and recursive read-only binds. */
/* Checks the request's mounts and resolves each image volume's image to c->mount_images:
 * NOT_FOUND for an image not pulled. Before anything is made. */
gboolean crisp_container_resolve_mounts (CrispContainerService *svc, CrispContainer *c,
                                         CrispPod *pod, GError **error);
/* Whether c was created from the image or mounts it as a volume. */
gboolean crisp_container_uses_image (const CrispContainer *c, const char *image_id);
/* Mounts what the spec binds from the run directory; *out_sources has one entry per config
 * mount (NULL for a plain bind), for CrispOciInput.mount_sources.  With userns_fd >= 0 (the
 * pod's user namespace) every mount is staged, id-mapped through it, plain binds too. */
gboolean crisp_container_stage_mounts (CrispContainerService *svc, CrispContainer *c, int userns_fd,
                                       GPtrArray **out_sources, GError **error);
/* Mounts the container's root filesystem at rootfs, its layers id-mapped through userns_fd
 * when that is >= 0 (staged under the mounts directory on the way). */
gboolean crisp_container_mount_rootfs (CrispContainerService *svc, CrispContainer *c,
                                       const char *rootfs, int userns_fd, GError **error);
/* Unmounts whatever is staged in container id's run directory (what a kill left too). */
gboolean crisp_container_unstage_mounts (CrispContainerService *svc, const char *id,
                                         GError **error);

/* container-spec.c */
gboolean crisp_container_write_spec (CrispContainerService *svc, CrispContainer *c, CrispPod *pod,
                                     const CrispImage *img,
                                     const Runtime__V1__CreateContainerRequest *req,
                                     const char *rootfs, const char *bundle,
                                     const char *const *mount_sources, JsonNode *restore_spec,
                                     GError **error);

/* container-status.c */
/* Every map<string,string> entry type of the protocol has this layout. */
typedef struct
{
  ProtobufCMessage base;
  char *key;
  char *value;
} CrispProtoStringEntry;

/* Copies a map's entries into entries of another map type (desc), malloc'd. */
void *crisp_proto_copy_map (size_t n, void *const *src, const ProtobufCMessageDescriptor *desc,
                            size_t *out_n);
Runtime__V1__Container *crisp_container_build_item (CrispContainerService *svc, CrispContainer *c);
Runtime__V1__ContainerStatusResponse *
crisp_container_build_status (CrispContainerService *svc, CrispContainer *c, gboolean verbose);
Runtime__V1__ContainerState crisp_container_cri_state (CrispContainerState state);

/* container-events.c */
void crisp_container_emit (CrispContainerService *svc, CrispContainer *c,
                           Runtime__V1__ContainerEventType type);
/* Under svc->lock, for an exit just read: whether to announce it now (else the start in
 * progress does, after its STARTED). */
gboolean crisp_container_exit_announce_now (CrispContainer *c);
/* Waits until an exit of c read by another thread has been announced (STOPPED comes before
 * DELETED). */
void crisp_container_wait_exit_announced (CrispContainerService *svc, CrispContainer *c);
/* A start begins (TRUE) or has announced STARTED (FALSE: the exit it held back follows). */
void crisp_container_set_starting (CrispContainerService *svc, CrispContainer *c,
                                   gboolean starting);
/* Watches the container's monitor directory for its exit file (once it exists). */
void crisp_container_watch_exit (CrispContainerService *svc, CrispContainer *c);
/* Whether memory knows c's exit without reading its exit file: the watch is active and no
 * inotify event is waiting or being handled. */
gboolean crisp_container_exit_known (CrispContainerService *svc, CrispContainer *c);
/* What a reader (status, list, stats) calls: a refresh unless the exit is known. */
void crisp_container_update (CrispContainerService *svc, CrispContainer *c);
void crisp_container_events_free (CrispContainerService *svc);

/* container-stats.c: blocks and inodes of the writable layer (0 when it is gone). */
void crisp_container_layer_usage (CrispContainerService *svc, CrispContainer *c, guint64 *bytes,
                                  guint64 *inodes);

/* container-standby.c */
void crisp_container_standby_start (CrispContainerService *svc);
/* Takes the standby monitor if there is one (the thread then makes the next). */
gboolean crisp_container_standby_take (CrispContainerService *svc, CrispMonitorStandby *out,
                                       guint64 *out_start_time);
/* A start has ended: the next standby need not wait any longer. */
void crisp_container_standby_nudge (CrispContainerService *svc);
void crisp_container_standby_stop (CrispContainerService *svc);

/* container-remove.c: removals whose slow part runs in one background thread (the reaper). */
void crisp_container_reaper_init (CrispContainerService *svc);
/* Queues what the store's trash holds (an earlier crisp's unfinished removals) and starts. */
void crisp_container_reaper_start (CrispContainerService *svc);
/* Waits (at most timeout_ms) for the queued removals, then stops the reaper; what is left is
 * finished at the next start. */
void crisp_container_reaper_stop (CrispContainerService *svc, int timeout_ms);
/* Waits at most timeout_ms for the monitors of the pod's containers being removed to exit:
 * they run the runtime's delete, which removes the containers' cgroups. */
void crisp_container_reaper_wait_monitors (CrispContainerService *svc, const char *pod_id,
                                           int timeout_ms);
/* Under c->op_lock, c stopped: moves its record to the trash (one durable rename), forgets it,
 * and queues the rest of its removal. */
gboolean crisp_container_remove_later (CrispContainerService *svc, CrispContainer *c,
                                       GError **error);
/* A container of which only the id is known (its record is lost): its monitor is looked for
 * through its run directory, and names its runtime (else the default handler's). */
CrispContainer *crisp_container_new_lost (CrispContainerService *svc, const char *id);

/* container-service.c */
/* c->state read under the service lock (an exit can be read by any thread). */
CrispContainerState crisp_container_get_state (CrispContainerService *svc, CrispContainer *c);
CrispContainer *crisp_container_lookup (CrispContainerService *svc, const char *id, GError **error);
GPtrArray *crisp_container_snapshot (CrispContainerService *svc, const char *pod_id);
void crisp_container_remember (CrispContainerService *svc, CrispContainer *c);
void crisp_container_forget (CrispContainerService *svc, CrispContainer *c);
/* Monitor, runtime state, mounts and directories; the caller forgets the container. */
/* half_made: a create that never finished (its monitor is killed, not waited for). */
gboolean crisp_container_destroy (CrispContainerService *svc, CrispContainer *c, gboolean half_made,
                                  GError **error);
/* The same but the record's object in the store (cancellable: FALSE, CANCELLED). */
gboolean crisp_container_release (CrispContainerService *svc, CrispContainer *c, gboolean half_made,
                                  GCancellable *cancellable, GError **error);
gboolean crisp_container_monitor_alive (CrispContainer *c);
/* Waits at most timeout_ms for the monitor to exit (its pidfd says when); TRUE once gone. */
gboolean crisp_container_wait_monitor (CrispContainer *c, int timeout_ms);
gboolean crisp_container_save (CrispContainerService *svc, CrispContainer *c, GError **error);
/* The same, not forced to disk (crisp_store_save_sync): for a step between two durable
 * saves that only a crash of crisp, not of the machine, needs to find. */
gboolean crisp_container_save_unsynced (CrispContainerService *svc, CrispContainer *c,
                                        GError **error);
/* The runtime a handler or record names, as a path to exec: a bare name is looked up on PATH
 * (the monitor and crisp_spawn_communicate exec by path); NULL when it is not found. */
char *crisp_container_runtime_path (const char *name);
/* container-create.c: spawns the container's monitor, which creates the container, or
 * restores it (c->restore_images set: the container then runs).  standby (NULL: none) is a
 * standby monitor to use instead, taken whatever the outcome. */
gboolean crisp_container_spawn_monitor (CrispContainerService *svc, CrispContainer *c,
                                        CrispMonitorStandby *standby, GError **error);
/* Refreshes a running container's state from its monitor's files. */
void crisp_container_refresh (CrispContainerService *svc, CrispContainer *c);

G_END_DECLS
