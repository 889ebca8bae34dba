/* Image storage: a bare ostree repository holding every layer's file contents (one
 * commit per layer, keyed by diff ID) and, per layer, a metadata tree that overlayfs
 * stacks over the repo's objects to give a container its root filesystem. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _CrispStorage CrispStorage;

/* Limits a layer must stay within; beyond them the import fails. */
#define CRISP_LAYER_MAX_ENTRIES 1000000
#define CRISP_LAYER_MAX_BYTES (G_GUINT64_CONSTANT (64) << 30)
#define CRISP_LAYER_MAX_PATH 4096
#define CRISP_LAYER_MAX_XATTR 65536

/* Opens (creating if needed) the store at `root` (0700), removes what an interrupted
 * import left in its tmp directory. */
CrispStorage *crisp_storage_open (const char *root, GError **error);
void crisp_storage_free (CrispStorage *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispStorage, crisp_storage_free)

const char *crisp_storage_root (CrispStorage *store);
/* A directory fd of <root>/<name>, created 0700 if missing (for image records). */
int crisp_storage_open_subdir (CrispStorage *store, const char *name, GError **error);

gboolean crisp_storage_has_layer (CrispStorage *store, const char *diff_id);

/* An anonymous file in the store's filesystem for a download. */
int crisp_storage_open_tmpfile (CrispStorage *store, GError **error);

/* Imports a layer tar (uncompressed, gzip or zstd) read from `fd`; the uncompressed
 * stream must hash to `diff_id`. Untrusted: escapes are rejected, sizes bounded. */
gboolean crisp_storage_import_layer (CrispStorage *store, int fd, const char *diff_id,
                                     GCancellable *cancellable, GError **error);

/* Keeps a layer from being pruned while a pull still needs it (counted). */
void crisp_storage_pin (CrispStorage *store, const char *diff_id);
void crisp_storage_unpin (CrispStorage *store, const char *diff_id);

/* The repo lock: every import and prune runs under it. Callers hold it around
 * crisp_storage_prune_locked () together with whatever decides `keep`, so that nothing
 * starts needing a layer between the decision and the prune. */
void crisp_storage_lock (CrispStorage *store);
void crisp_storage_unlock (CrispStorage *store);

/* With the lock held: removes every layer not in `keep` (diff IDs) and not pinned, then
 * the repo objects no remaining layer references: with `every_object`, by a walk of the
 * whole repo (which also finds what an interrupted import left); otherwise only among the
 * objects the removed layers reached. *out_removed (nullable) counts removed layers. */
gboolean crisp_storage_prune_locked (CrispStorage *store, GHashTable *keep, gboolean every_object,
                                     guint *out_removed, GError **error);

/* Waits until the metadata trees of pruned layers are off the disk (a prune removes
 * them in the background). */
void crisp_storage_settle (CrispStorage *store);

/* Bytes and inodes the store uses on disk. */
gboolean crisp_storage_usage (CrispStorage *store, guint64 *out_bytes, guint64 *out_inodes,
                              GError **error);

/* Mounts the layers (bottom first) at `target` as overlayfs. `upper_dir`/`work_dir` may
 * be NULL for a read-only view. The layers must be present. */
gboolean crisp_storage_mount_layers (CrispStorage *store, const char *const *diff_ids,
                                     const char *upper_dir, const char *work_dir,
                                     const char *target, GError **error);
/* The same with every layer id-mapped through the user namespace userns_fd (on-disk id n is
 * id n inside it), using the new directory `stage` on the way; upper_dir is not mapped: the
 * caller makes it the namespace root's own. */
gboolean crisp_storage_mount_layers_idmapped (CrispStorage *store, const char *const *diff_ids,
                                              const char *upper_dir, const char *work_dir,
                                              const char *target, int userns_fd, const char *stage,
                                              GError **error);
/* The layers as a read-only overlay that is never attached anywhere: the mount's fd (-1 on
 * failure). The mount goes when the fd is closed, by the caller or by the kernel at crisp's
 * death, so nothing is left to clean up. */
int crisp_storage_open_layers (CrispStorage *store, const char *const *diff_ids, GError **error);
gboolean crisp_storage_unmount (const char *target, GError **error);

/* Whether overlayfs works in parent's filesystem with the layout and options of a container's
 * root filesystem (metacopy, a data-only layer, an upper layer): builds one in a private
 * directory made in parent, as a mount that is never attached anywhere, then removes it all.
 * Needs CAP_SYS_ADMIN. */
gboolean crisp_storage_probe_overlay (const char *parent, GError **error);

G_END_DECLS
