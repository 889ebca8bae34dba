/* OCI distribution v2 client over libcurl: manifests and blobs of one repository on one
 * endpoint, with bearer/basic auth, timeouts, retries and digest verification. */
#pragma once

#include <gio/gio.h>

#include "auth.h"
#include "manifest.h"
#include "registries.h"

G_BEGIN_DECLS

typedef struct _CrispRegistryClient CrispRegistryClient;

/* Call once before any thread uses curl. */
void crisp_registry_global_init (void);

/* `creds` (nullable) is copied; `cancellable` (nullable) aborts transfers. */
CrispRegistryClient *crisp_registry_client_new (const CrispEndpoint *ep, const char *repo_path,
                                                const CrispCredentials *creds,
                                                GCancellable *cancellable);
void crisp_registry_client_free (CrispRegistryClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispRegistryClient, crisp_registry_client_free)

/* `reference` is a tag or a digest; a digest is verified against the body. */
gboolean crisp_registry_get_manifest (CrispRegistryClient *c, const char *reference,
                                      GBytes **out_body, char **out_content_type, char **out_digest,
                                      GError **error);

/* A small blob (config) in memory, at most `max` bytes, verified. */
GBytes *crisp_registry_get_blob_bytes (CrispRegistryClient *c, const CrispDescriptor *d, gsize max,
                                       GError **error);

/* A blob written to `fd` (truncated first), size and digest verified. */
gboolean crisp_registry_get_blob_fd (CrispRegistryClient *c, const CrispDescriptor *d, int fd,
                                     GError **error);

const char *crisp_registry_client_base_url (CrispRegistryClient *c);

G_END_DECLS
