/* Registry authentication pieces: WWW-Authenticate challenges and CRI AuthConfig
 * credentials. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRISP_WWW_AUTHENTICATE_MAX 4096

typedef struct
{
  char *scheme;       /* lowercase: "bearer", "basic" */
  GHashTable *params; /* lowercase key -> value ("realm", "service", "scope") */
} CrispChallenge;

/* Parses the first challenge of a WWW-Authenticate header value. */
CrispChallenge *crisp_challenge_parse (const char *header, GError **error);
void crisp_challenge_free (CrispChallenge *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispChallenge, crisp_challenge_free)

/* Credentials for one pull (CRI AuthConfig or the registry's configured ones). */
typedef struct
{
  char *username, *password;
  char *identity_token; /* OAuth2 refresh token */
  char *registry_token; /* a bearer token to use as is */
} CrispCredentials;

/* From CRI AuthConfig fields; `auth` is base64("user:password") and wins over
 * username/password when set. NULL (no error) when everything is empty. */
CrispCredentials *crisp_credentials_new (const char *username, const char *password,
                                         const char *auth, const char *identity_token,
                                         const char *registry_token, GError **error);
void crisp_credentials_free (CrispCredentials *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispCredentials, crisp_credentials_free)

/* Token endpoint answer: {"token": ...} or {"access_token": ...}. */
char *crisp_token_response_parse (const char *data, gsize len, GError **error);

G_END_DECLS
