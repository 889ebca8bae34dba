/* Per-registry settings from <registries-dir>/\*.conf: mirrors, air-gapped mode, plain
 * HTTP, credentials. See docs/images.md for the file format. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  char *host;
  GStrv mirrors;         /* "host[:port]" or "http(s)://host[:port]", tried in order */
  gboolean mirrors_only; /* never contact `host` itself */
  gboolean insecure;     /* plain HTTP */
  char *username, *password;
} CrispRegistryConfig;

typedef struct _CrispRegistries CrispRegistries;

/* One place to contact for a registry name, in the order to try. */
typedef struct
{
  char *base_url; /* "https://registry-1.docker.io" */
  char *host;     /* the endpoint's own host ("127.0.0.1:5000") */
  gboolean is_mirror;
  const char *username, *password; /* borrowed from the endpoint's own settings */
} CrispEndpoint;

/* A missing directory is an empty configuration; a malformed file is an error naming it. */
CrispRegistries *crisp_registries_load (const char *dir, GError **error);
void crisp_registries_free (CrispRegistries *regs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispRegistries, crisp_registries_free)

const CrispRegistryConfig *crisp_registries_lookup (CrispRegistries *regs, const char *host);

/* Mirrors first, then the registry itself unless mirrors-only; never empty unless the
 * registry is mirrors-only without mirrors. */
GPtrArray *crisp_registries_endpoints (CrispRegistries *regs, const char *domain);
void crisp_endpoint_free (CrispEndpoint *ep);

G_END_DECLS
