/* Image references: parsing and docker.io-style normalisation
 * (`busybox` is `docker.io/library/busybox:latest`). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRISP_IMAGE_DEFAULT_DOMAIN "docker.io"
#define CRISP_IMAGE_NAME_MAX 255

typedef struct
{
  char *domain; /* "docker.io", "registry.k8s.io", "127.0.0.1:5000" */
  char *path;   /* "library/busybox" */
  char *tag;    /* "latest"; NULL when only a digest was given */
  char *digest; /* "sha256:<64 hex>" or NULL */
} CrispImageRef;

/* Parses and normalises `text`; INVALID_ARGUMENT naming it when malformed. A reference
 * with neither tag nor digest gets the tag "latest". */
CrispImageRef *crisp_image_ref_parse (const char *text, GError **error);
void crisp_image_ref_free (CrispImageRef *ref);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispImageRef, crisp_image_ref_free)

/* "docker.io/library/busybox" */
char *crisp_image_ref_name (const CrispImageRef *ref);
/* "docker.io/library/busybox:latest" (NULL without a tag) */
char *crisp_image_ref_tagged (const CrispImageRef *ref);
/* "docker.io/library/busybox@sha256:..." with `digest` (or the ref's own when NULL) */
char *crisp_image_ref_digested (const CrispImageRef *ref, const char *digest);
/* The most specific form: name:tag@digest, name@digest or name:tag. */
char *crisp_image_ref_to_string (const CrispImageRef *ref);

/* TRUE for "sha256:<64 lowercase hex>". */
gboolean crisp_digest_is_valid (const char *digest);

G_END_DECLS
