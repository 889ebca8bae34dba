/* Image records: one JSON file per image (named by the config digest) beside the
 * storage repo, written atomically; a corrupt one is quarantined, never trusted. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  char *id; /* config digest, "sha256:..." */
  GPtrArray *repo_tags, *repo_digests;
  char *manifest_digest;
  GPtrArray *layer_digests, *diff_ids; /* bottom first */
  guint64 size;
  char *user;
  char *config_json, *manifest_json;
  gint64 created; /* when it was pulled, unix seconds */
} CrispImage;

CrispImage *crisp_image_new (void);
CrispImage *crisp_image_copy (const CrispImage *img);
void crisp_image_free (CrispImage *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispImage, crisp_image_free)

char *crisp_image_to_json (const CrispImage *img);
/* ImageStatus's verbose info: id, manifest digest, layers, the image config (as
 * "imageSpec") and the manifest. */
char *crisp_image_info_json (const CrispImage *img);
CrispImage *crisp_image_from_json (const char *data, gsize len, GError **error);

/* Adds `s` to `arr` unless it is there; removes it. */
void crisp_strv_add_unique (GPtrArray *arr, const char *s);
gboolean crisp_strv_remove (GPtrArray *arr, const char *s);
gboolean crisp_strv_contains (GPtrArray *arr, const char *s);

/* Not thread-safe: the image service serialises access. */
typedef struct _CrispImageStore CrispImageStore;

/* Takes ownership of dirfd; loads every record (quarantining corrupt ones as
 * <name>.corrupt) and removes half-written temporaries. */
CrispImageStore *crisp_image_store_load (int dirfd, GError **error);
void crisp_image_store_free (CrispImageStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispImageStore, crisp_image_store_free)

/* Persists `img` (a copy is kept) atomically. */
gboolean crisp_image_store_save (CrispImageStore *store, const CrispImage *img, GError **error);
gboolean crisp_image_store_delete (CrispImageStore *store, const char *id, GError **error);
/* Borrowed; NULL when absent. */
CrispImage *crisp_image_store_get (CrispImageStore *store, const char *id);
/* Borrowed images, in no particular order. */
GPtrArray *crisp_image_store_list (CrispImageStore *store);

G_END_DECLS
