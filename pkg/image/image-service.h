/* The CRI image service: pull, list, status, remove, file-system usage, and the root
 * filesystem mount the container service uses. Thread-safe. */
#pragma once

#include <gio/gio.h>

#include "auth.h"
#include "image-store.h"

G_BEGIN_DECLS

typedef struct _CrispImageService CrispImageService;

/* Answers whether a container uses the image; RemoveImage refuses those. */
typedef gboolean (*CrispImageInUseFunc) (const char *image_id, gpointer data);

/* `storage_root` is <root>/storage. Loads records, removes what an interrupted pull
 * left (unreferenced layers, temporaries). */
CrispImageService *crisp_image_service_new (const char *storage_root, const char *registries_dir,
                                            int max_downloads, GError **error);
void crisp_image_service_free (CrispImageService *svc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispImageService, crisp_image_service_free)

void crisp_image_service_set_in_use_func (CrispImageService *svc, CrispImageInUseFunc fn,
                                          gpointer data);

/* Pulls `image` (a reference); `creds` may be NULL. Two pulls of one reference at once
 * share the work. *out_id is the image ID. */
gboolean crisp_image_service_pull (CrispImageService *svc, const char *image,
                                   const CrispCredentials *creds, GCancellable *cancellable,
                                   char **out_id, GError **error);

/* Bytes of layer blobs downloaded (and verified) by pulls since the service started. */
guint64 crisp_image_service_pulled_bytes (CrispImageService *svc);

/* An image by ID (full, or a unique hex prefix of 12+) or reference. NULL with no error
 * when there is none; INVALID_ARGUMENT for a malformed reference. A copy. */
CrispImage *crisp_image_service_find (CrispImageService *svc, const char *image, GError **error);

/* Copies of all images, or of the one `filter` names (NULL or "" for all). */
GPtrArray *crisp_image_service_list (CrispImageService *svc, const char *filter);

/* Removes the image and every name it has; absent is success. Layers no other image
 * needs are pruned. */
gboolean crisp_image_service_remove (CrispImageService *svc, const char *image, GError **error);

gboolean crisp_image_service_fs_usage (CrispImageService *svc, char **out_mountpoint,
                                       guint64 *out_bytes, guint64 *out_inodes, GError **error);

/* Mounts the image's root filesystem at `target` with a writable upper layer
 * (upper_dir/work_dir on one filesystem), or read-only when they are NULL. */
gboolean crisp_image_service_mount_rootfs (CrispImageService *svc, const char *image,
                                           const char *upper_dir, const char *work_dir,
                                           const char *target, GError **error);
/* The same with the layers id-mapped through the user namespace userns_fd (see
 * crisp_storage_mount_layers_idmapped); `stage` is a path for a transient mount. */
gboolean crisp_image_service_mount_rootfs_idmapped (CrispImageService *svc, const char *image,
                                                    const char *upper_dir, const char *work_dir,
                                                    const char *target, int userns_fd,
                                                    const char *stage, GError **error);
/* The image's root filesystem, read-only, as the fd of a mount attached nowhere (see
 * crisp_storage_open_layers); -1 on failure. */
int crisp_image_service_open_rootfs (CrispImageService *svc, const char *image, GError **error);
gboolean crisp_image_service_unmount_rootfs (const char *target, GError **error);

G_END_DECLS
