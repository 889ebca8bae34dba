/* CRI ImageService handlers: PullImage, ImageStatus, ListImages (and StreamImages), RemoveImage,
 * ImageFsInfo.
 * Each decodes, calls pkg/image, encodes; pulls, removals and disk walks run in threads. */
#include "config.h"

#include "grpc.h"
#include "metrics.h"
#include "server.h"

#include "pkg/container/container.h"
#include "pkg/image/image-service.h"
#include "pkg/image/manifest.h"

#include <string.h>

/* A CRI Image message and the memory it points into. */
typedef struct
{
  Runtime__V1__Image msg;
  Runtime__V1__Int64Value uid;
  Runtime__V1__ImageSpec spec;
  char *username;
} ImageMsg;

static void
image_msg_fill (ImageMsg *m, const CrispImage *img)
{
  Runtime__V1__Image init = RUNTIME__V1__IMAGE__INIT;
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
  m->msg = init;
  m->uid = uid;
  m->spec = spec;
  m->msg.id = img->id;
  m->msg.n_repo_tags = img->repo_tags->len;
  m->msg.repo_tags = (char **) img->repo_tags->pdata;
  m->msg.n_repo_digests = img->repo_digests->len;
  m->msg.repo_digests = (char **) img->repo_digests->pdata;
  m->msg.size = img->size;
  gint64 uid_value;
  crisp_image_user_split (img->user, &uid_value, &m->username);
  if (uid_value >= 0)
    {
      m->uid.value = uid_value;
      m->msg.uid = &m->uid;
    }
  m->msg.username = m->username ? m->username : (char *) "";
  m->spec.image = img->id;
  m->msg.spec = &m->spec;
}

static void
image_msg_clear (ImageMsg *m)
{
  g_clear_pointer (&m->username, g_free);
}

static const char *
spec_image (const Runtime__V1__ImageSpec *spec)
{
  return spec && spec->image ? spec->image : "";
}

typedef struct
{
  char *image;
  CrispCredentials *creds;
} PullJob;

static void
pull_job_free (gpointer p)
{
  PullJob *job = p;
  g_free (job->image);
  crisp_credentials_free (job->creds);
  g_free (job);
}

static void
pull_in_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  PullJob *job = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  gint64 started = g_get_monotonic_time ();
  gboolean ok = crisp_image_service_pull (self->images, job->image, job->creds,
                                          crisp_call_cancellable (call), &id, &error);
  crisp_metrics_pull_ended (self, ok, started);
  if (!ok)
    return crisp_call_fail (call, error);
  Runtime__V1__PullImageResponse resp = RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT;
  resp.image_ref = id;
  crisp_call_finish (call, &resp.base);
}

static void
handle_pull_image (CrispServer *self, CrispCall *call)
{
  const Runtime__V1__PullImageRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__PullImageRequest);
  g_autoptr (GError) error = NULL;
  const char *image = spec_image (req->image);
  if (*image == '\0')
    return crisp_call_fail_literal (call, CRISP_ERROR_INVALID_ARGUMENT, "image.image is empty");
  PullJob *job = g_new0 (PullJob, 1);
  job->image = g_strdup (image);
  const Runtime__V1__AuthConfig *a = req->auth;
  if (a != NULL)
    job->creds = crisp_credentials_new (a->username, a->password, a->auth, a->identity_token,
                                        a->registry_token, &error);
  if (error != NULL)
    {
      pull_job_free (job);
      return crisp_call_fail (call, error);
    }
  crisp_call_run_in_thread (call, pull_in_thread, job, pull_job_free);
}

static void
add_info (Runtime__V1__ImageStatusResponse *resp,
          Runtime__V1__ImageStatusResponse__InfoEntry *entry,
          Runtime__V1__ImageStatusResponse__InfoEntry **slot, char *json)
{
  Runtime__V1__ImageStatusResponse__InfoEntry init
      = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INFO_ENTRY__INIT;
  *entry = init;
  entry->key = (char *) "info";
  entry->value = json;
  *slot = entry;
  resp->n_info = 1;
  resp->info = slot;
}

static void
handle_image_status (CrispServer *self, CrispCall *call)
{
  const Runtime__V1__ImageStatusRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__ImageStatusRequest);
  g_autoptr (GError) error = NULL;
  const char *image = spec_image (req->image);
  if (*image == '\0')
    return crisp_call_fail_literal (call, CRISP_ERROR_INVALID_ARGUMENT, "image.image is empty");
  g_autoptr (CrispImage) img = crisp_image_service_find (self->images, image, &error);
  if (error != NULL)
    return crisp_call_fail (call, error);
  Runtime__V1__ImageStatusResponse resp = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INIT;
  ImageMsg m = { 0 };
  Runtime__V1__ImageStatusResponse__InfoEntry entry, *slot;
  g_autofree char *info = NULL;
  if (img != NULL)
    {
      image_msg_fill (&m, img);
      resp.image = &m.msg;
      if (req->verbose)
        add_info (&resp, &entry, &slot, info = crisp_image_info_json (img));
    }
  crisp_call_finish (call, &resp.base);
  image_msg_clear (&m);
}

/* ListImages and StreamImages. */
static void
handle_list_images (CrispServer *self, CrispCall *call)
{
  const Runtime__V1__ImageFilter *f = crisp_call_list_filter (call);
  const char *filter = f ? spec_image (f->image) : NULL;
  g_autoptr (GPtrArray) images = crisp_image_service_list (self->images, filter);
  g_autofree ImageMsg *msgs = g_new0 (ImageMsg, images->len + 1);
  g_autofree Runtime__V1__Image **ptrs = g_new0 (Runtime__V1__Image *, images->len + 1);
  for (guint i = 0; i < images->len; i++)
    {
      image_msg_fill (&msgs[i], images->pdata[i]);
      ptrs[i] = &msgs[i].msg;
    }
  Runtime__V1__ListImagesResponse resp = RUNTIME__V1__LIST_IMAGES_RESPONSE__INIT;
  resp.n_images = images->len;
  resp.images = ptrs;
  if (crisp_call_method (call)->server_streaming)
    crisp_call_stream_list (call, &resp.base);
  else
    crisp_call_finish (call, &resp.base);
  for (guint i = 0; i < images->len; i++)
    image_msg_clear (&msgs[i]);
}

static void
remove_in_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  if (!crisp_image_service_remove (self->images, data, &error))
    return crisp_call_fail (call, error);
  Runtime__V1__RemoveImageResponse resp = RUNTIME__V1__REMOVE_IMAGE_RESPONSE__INIT;
  crisp_call_finish (call, &resp.base);
}

static void
handle_remove_image (CrispServer *self, CrispCall *call)
{
  const Runtime__V1__RemoveImageRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__RemoveImageRequest);
  const char *image = spec_image (req->image);
  if (*image == '\0')
    return crisp_call_fail_literal (call, CRISP_ERROR_INVALID_ARGUMENT, "image.image is empty");
  crisp_call_run_in_thread (call, remove_in_thread, g_strdup (image), g_free);
}

/* A FilesystemUsage and the memory it points into. */
typedef struct
{
  Runtime__V1__FilesystemUsage usage;
  Runtime__V1__FilesystemIdentifier fs_id;
  Runtime__V1__UInt64Value used, inodes_used;
  char *mountpoint;
} FsUsageMsg;

static void
fs_usage_fill (FsUsageMsg *m, guint64 bytes, guint64 inodes)
{
  m->usage = (Runtime__V1__FilesystemUsage) RUNTIME__V1__FILESYSTEM_USAGE__INIT;
  m->fs_id = (Runtime__V1__FilesystemIdentifier) RUNTIME__V1__FILESYSTEM_IDENTIFIER__INIT;
  m->used = (Runtime__V1__UInt64Value) RUNTIME__V1__UINT64_VALUE__INIT;
  m->inodes_used = (Runtime__V1__UInt64Value) RUNTIME__V1__UINT64_VALUE__INIT;
  m->fs_id.mountpoint = m->mountpoint;
  m->used.value = bytes;
  m->inodes_used.value = inodes;
  m->usage.timestamp = g_get_real_time () * 1000;
  m->usage.fs_id = &m->fs_id;
  m->usage.used_bytes = &m->used;
  m->usage.inodes_used = &m->inodes_used;
}

/* The image store, and the containers' writable layers (CRI-O reports both; containerd only
 * the first, which the kubelet then takes for both). */
static void
fs_info_in_thread (CrispServer *self, CrispCall *call, gpointer data)
{
  g_autoptr (GError) error = NULL;
  FsUsageMsg image = { 0 }, layers = { 0 };
  guint64 bytes = 0, inodes = 0, layer_bytes = 0, layer_inodes = 0;
  gboolean ok
      = crisp_image_service_fs_usage (self->images, &image.mountpoint, &bytes, &inodes, &error)
        && (self->containers == NULL
            || crisp_container_service_layers_usage (self->containers, image.mountpoint,
                                                     &layers.mountpoint, &layer_bytes,
                                                     &layer_inodes, &error));
  if (ok)
    {
      fs_usage_fill (&image, bytes, inodes);
      fs_usage_fill (&layers, layer_bytes, layer_inodes);
      Runtime__V1__FilesystemUsage *images[] = { &image.usage }, *containers[] = { &layers.usage };
      Runtime__V1__ImageFsInfoResponse resp = RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT;
      resp.n_image_filesystems = 1;
      resp.image_filesystems = images;
      resp.n_container_filesystems = layers.mountpoint ? 1 : 0;
      resp.container_filesystems = containers;
      crisp_call_finish (call, &resp.base);
    }
  else
    crisp_call_fail (call, error);
  g_free (image.mountpoint);
  g_free (layers.mountpoint);
}

gboolean
crisp_image_handlers_init (CrispServer *self, GError **error)
{
  const CrispConfig *cfg = self->config;
  g_autofree char *storage = g_build_filename (cfg->root, "storage", NULL);
  self->images = crisp_image_service_new (storage, cfg->registries_dir,
                                          cfg->max_concurrent_downloads, error);
  if (self->images == NULL)
    return crisp_prefix_error (error, "image storage %s: ", storage);
  crisp_server_add_cleanup (self, (GDestroyNotify) crisp_image_service_free, self->images);
  crisp_server_register (self, "PullImage", handle_pull_image);
  crisp_server_register_quick (self, "ImageStatus", handle_image_status);
  crisp_server_register_quick (self, "ListImages", handle_list_images);
  crisp_server_register (self, "StreamImages", handle_list_images);
  crisp_server_register (self, "RemoveImage", handle_remove_image);
  crisp_server_register_in_thread (self, "ImageFsInfo", fs_info_in_thread);
  return TRUE;
}
