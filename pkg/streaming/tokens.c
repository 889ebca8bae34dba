/* The streaming token store: a hash table of pending requests, pruned of expired entries
 * whenever it is touched. */
#include "config.h"

#include "crisp-base.h"
#include "crisp-error.h"
#include "tokens.h"

typedef struct
{
  char *kind;
  gpointer request;
  GDestroyNotify destroy;
  gint64 expires; /* monotonic us */
} Entry;

struct _CrispStreamTokens
{
  GMutex lock;
  GHashTable *by_token; /* token -> Entry */
  guint max;
  gint64 ttl_us;
};

static void
entry_free (gpointer p)
{
  Entry *e = p;
  if (e->destroy && e->request)
    e->destroy (e->request);
  g_free (e->kind);
  g_free (e);
}

CrispStreamTokens *
crisp_stream_tokens_new (guint max, gint64 ttl_us)
{
  CrispStreamTokens *self = g_new0 (CrispStreamTokens, 1);
  g_mutex_init (&self->lock);
  self->by_token = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, entry_free);
  self->max = max;
  self->ttl_us = ttl_us;
  return self;
}

void
crisp_stream_tokens_free (CrispStreamTokens *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->by_token);
  g_mutex_clear (&self->lock);
  g_free (self);
}

static gboolean
expired (gpointer key, gpointer value, gpointer now)
{
  return ((Entry *) value)->expires <= *(gint64 *) now;
}

static void
prune_locked (CrispStreamTokens *self)
{
  gint64 now = g_get_monotonic_time ();
  g_hash_table_foreach_remove (self->by_token, expired, &now);
}

char *
crisp_stream_tokens_put (CrispStreamTokens *self, const char *kind, gpointer request,
                         GDestroyNotify destroy, GError **error)
{
  char token[65];
  int r = crisp_random_hex_id (token);
  if (r < 0)
    {
      if (destroy)
        destroy (request);
      return crisp_throw_errno (error, r, "making a streaming token"), NULL;
    }
  Entry *e = g_new0 (Entry, 1);
  *e = (Entry){ g_strdup (kind), request, destroy, g_get_monotonic_time () + self->ttl_us };
  g_mutex_lock (&self->lock);
  prune_locked (self);
  gboolean full = g_hash_table_size (self->by_token) >= self->max;
  if (!full)
    g_hash_table_insert (self->by_token, g_strdup (token), e);
  g_mutex_unlock (&self->lock);
  if (full)
    {
      entry_free (e);
      return crisp_throw (error, CRISP_ERROR_RESOURCE_EXHAUSTED,
                          "%u streaming requests are already pending", self->max),
             NULL;
    }
  return g_strdup (token);
}

gpointer
crisp_stream_tokens_take (CrispStreamTokens *self, const char *kind, const char *token)
{
  gpointer request = NULL;
  g_mutex_lock (&self->lock);
  prune_locked (self);
  Entry *e = token ? g_hash_table_lookup (self->by_token, token) : NULL;
  if (e != NULL && g_strcmp0 (e->kind, kind) == 0)
    {
      request = g_steal_pointer (&e->request);
      g_hash_table_remove (self->by_token, token);
    }
  g_mutex_unlock (&self->lock);
  return request;
}

guint
crisp_stream_tokens_count (CrispStreamTokens *self)
{
  g_mutex_lock (&self->lock);
  prune_locked (self);
  guint n = g_hash_table_size (self->by_token);
  g_mutex_unlock (&self->lock);
  return n;
}
