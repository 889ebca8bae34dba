/* OCI / Docker schema2 manifests, image indexes (manifest lists) and image configs:
 * bounded, validated parsing of untrusted registry documents, and platform selection. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRISP_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define CRISP_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define CRISP_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define CRISP_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define CRISP_MANIFEST_ACCEPT                                                                      \
  CRISP_MT_OCI_INDEX ", " CRISP_MT_OCI_MANIFEST ", " CRISP_MT_DOCKER_LIST                          \
                     ", " CRISP_MT_DOCKER_MANIFEST

#define CRISP_MANIFEST_MAX_BYTES (4 * 1024 * 1024)
#define CRISP_CONFIG_MAX_BYTES (8 * 1024 * 1024)
#define CRISP_MANIFEST_MAX_LAYERS 127
#define CRISP_INDEX_MAX_ENTRIES 1024

typedef struct
{
  char *media_type;
  char *digest;
  gint64 size;
  char *os, *architecture, *variant; /* index entries only */
} CrispDescriptor;

typedef enum
{
  CRISP_MANIFEST_IMAGE,
  CRISP_MANIFEST_INDEX,
} CrispManifestKind;

typedef struct
{
  CrispManifestKind kind;
  char *media_type;
  CrispDescriptor *config; /* IMAGE only */
  GPtrArray *descriptors;  /* IMAGE: layers, bottom first; INDEX: manifests */
} CrispManifest;

typedef struct
{
  char *user; /* config.User, "" when unset */
  GPtrArray *diff_ids;
  char *os, *architecture;
} CrispImageConfig;

void crisp_descriptor_free (CrispDescriptor *d);
void crisp_manifest_free (CrispManifest *m);
void crisp_image_config_free (CrispImageConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispDescriptor, crisp_descriptor_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispManifest, crisp_manifest_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispImageConfig, crisp_image_config_free)

/* `content_type` is the registry's Content-Type (may be NULL); the document's own
 * mediaType and shape decide when it is missing or generic. */
CrispManifest *crisp_manifest_parse (const char *data, gsize len, const char *content_type,
                                     GError **error);

/* Picks the entry of an index for os/architecture/variant (variant may be NULL). */
const CrispDescriptor *crisp_manifest_select_platform (const CrispManifest *index, const char *os,
                                                       const char *arch, const char *variant,
                                                       GError **error);
/* This host's platform in OCI terms ("amd64", "arm64"+"v8", ...). */
void crisp_host_platform (const char **out_arch, const char **out_variant);

CrispImageConfig *crisp_image_config_parse (const char *data, gsize len, GError **error);

/* kubelet's view of config.User: "1002" and "1002:1003" give uid 1002; a name gives the
 * username; "" gives neither (*out_uid = -1, *out_username = NULL). */
void crisp_image_user_split (const char *user, gint64 *out_uid, char **out_username);

G_END_DECLS
