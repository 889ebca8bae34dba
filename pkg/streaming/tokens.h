/* Single-use streaming tokens: an Exec/Attach/PortForward request stored under an
 * unguessable token until the client connects to the URL, at most `ttl` later. The store is
 * bounded; thread-safe. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CrispStreamTokens CrispStreamTokens;

CrispStreamTokens *crisp_stream_tokens_new (guint max, gint64 ttl_us);
void crisp_stream_tokens_free (CrispStreamTokens *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispStreamTokens, crisp_stream_tokens_free)

/* Stores `request` (freed with `destroy` when taken by nobody) for `kind` ("exec", ...).
 * Returns the token (64 hex digits), or NULL when the store is full of live tokens
 * (RESOURCE_EXHAUSTED; `request` is then destroyed). */
char *crisp_stream_tokens_put (CrispStreamTokens *self, const char *kind, gpointer request,
                               GDestroyNotify destroy, GError **error);

/* Removes the token and hands its request over, if it exists, is of `kind` and has not
 * expired; NULL otherwise. The caller frees the request. */
gpointer crisp_stream_tokens_take (CrispStreamTokens *self, const char *kind, const char *token);

guint crisp_stream_tokens_count (CrispStreamTokens *self);

G_END_DECLS
