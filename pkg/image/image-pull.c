/* PullImage: resolve the reference on the first endpoint that answers (mirrors first),
 * pick the platform from an index, fetch and verify the config, download layers in
 * parallel into the store, then write the record — last, so a pull that dies midway
 * leaves nothing listed. */
#include "config.h"

#include "image-pull-private.h"
#include "reference.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <string.h>
#include <unistd.h>

typedef struct
{
  gboolean done;
  int waiters;
  char *id;
  GError *error;
} Flight;

typedef struct
{
  char *top_digest;      /* what the reference resolved to (index or manifest) */
  char *manifest_digest; /* the platform's image manifest */
  GBytes *manifest_body;
  CrispManifest *manifest;
} Resolved;

static void
resolved_clear (Resolved *r)
{
  g_clear_pointer (&r->top_digest, g_free);
  g_clear_pointer (&r->manifest_digest, g_free);
  g_clear_pointer (&r->manifest_body, g_bytes_unref);
  g_clear_pointer (&r->manifest, crisp_manifest_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Resolved, resolved_clear)

static CrispManifest *
fetch_manifest (CrispRegistryClient *c, const char *reference, GBytes **out_body, char **out_digest,
                GError **error)
{
  g_autoptr (GBytes) body = NULL;
  g_autofree char *ct = NULL, *digest = NULL;
  if (!crisp_registry_get_manifest (c, reference, &body, &ct, &digest, error))
    return NULL;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);
  CrispManifest *m = crisp_manifest_parse (data, len, ct, error);
  if (m == NULL)
    return NULL;
  *out_body = g_steal_pointer (&body);
  *out_digest = g_steal_pointer (&digest);
  return m;
}

static gboolean
resolve (CrispRegistryClient *c, const CrispImageRef *ref, Resolved *r, GError **error)
{
  r->manifest = fetch_manifest (c, ref->digest ? ref->digest : ref->tag, &r->manifest_body,
                                &r->top_digest, error);
  if (r->manifest == NULL)
    return FALSE;
  if (r->manifest->kind == CRISP_MANIFEST_IMAGE)
    {
      r->manifest_digest = g_strdup (r->top_digest);
      return TRUE;
    }
  const char *arch, *variant;
  crisp_host_platform (&arch, &variant);
  const CrispDescriptor *d
      = crisp_manifest_select_platform (r->manifest, "linux", arch, variant, error);
  if (d == NULL)
    return FALSE;
  g_autofree char *digest = g_strdup (d->digest);
  g_clear_pointer (&r->manifest, crisp_manifest_free);
  g_clear_pointer (&r->manifest_body, g_bytes_unref);
  g_autofree char *got = NULL;
  r->manifest = fetch_manifest (c, digest, &r->manifest_body, &got, error);
  if (r->manifest == NULL)
    return FALSE;
  if (r->manifest->kind != CRISP_MANIFEST_IMAGE)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "index entry %s is itself an index",
                        digest);
  r->manifest_digest = g_steal_pointer (&digest);
  return TRUE;
}

/* Tries the endpoints in order; the first that resolves the reference serves the pull. */
static CrispRegistryClient *
connect_and_resolve (CrispImageService *svc, const CrispImageRef *ref,
                     const CrispCredentials *creds, GCancellable *cancellable, Resolved *r,
                     GError **error)
{
  g_autoptr (CrispRegistries) regs = crisp_registries_load (svc->registries_dir, error);
  if (regs == NULL)
    return NULL;
  g_autoptr (GPtrArray) eps = crisp_registries_endpoints (regs, ref->domain);
  if (eps->len == 0)
    return (crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                         "registry %s is mirrors-only and has no mirrors", ref->domain),
            NULL);
  g_autoptr (GError) last = NULL;
  for (guint i = 0; i < eps->len; i++)
    {
      CrispEndpoint *ep = eps->pdata[i];
      g_autoptr (CrispRegistryClient) c
          = crisp_registry_client_new (ep, ref->path, ep->is_mirror ? NULL : creds, cancellable);
      g_clear_error (&last);
      resolved_clear (r);
      if (resolve (c, ref, r, &last))
        return g_steal_pointer (&c);
      g_debug ("pull %s/%s from %s: %s", ref->domain, ref->path, ep->base_url, last->message);
      if (g_error_matches (last, CRISP_ERROR, CRISP_ERROR_CANCELLED))
        break;
    }
  g_autofree char *name = crisp_image_ref_to_string (ref);
  g_propagate_prefixed_error (error, g_steal_pointer (&last), "pulling image '%s': ", name);
  return NULL;
}

static CrispImageConfig *
fetch_config (CrispRegistryClient *c, const CrispManifest *m, char **out_json, GError **error)
{
  g_autoptr (GBytes) body
      = crisp_registry_get_blob_bytes (c, m->config, CRISP_CONFIG_MAX_BYTES, error);
  if (body == NULL)
    return NULL;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);
  g_autoptr (CrispImageConfig) cfg = crisp_image_config_parse (data, len, error);
  if (cfg == NULL)
    return NULL;
  if (cfg->diff_ids->len != m->descriptors->len)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                         "image config lists %u diff IDs for %u layers", cfg->diff_ids->len,
                         m->descriptors->len),
            NULL);
  *out_json = g_strndup (data, len);
  return g_steal_pointer (&cfg);
}

/* Parallel layer downloads: workers take the next missing layer, download it to an
 * anonymous file (verified) and import it (imports serialise on the repo lock). */
typedef struct
{
  CrispImageService *svc;
  CrispRegistryClient *client;
  const CrispManifest *manifest;
  const CrispImageConfig *config;
  GCancellable *cancellable;
  GMutex lock;
  guint next;
  GError *error;
} Fetch;

static gboolean
download_and_import (Fetch *f, const CrispDescriptor *d, const char *diff_id, GError **error)
{
  _cleanup_close_ int fd = crisp_storage_open_tmpfile (f->svc->storage, error);
  if (fd < 0 || !crisp_registry_get_blob_fd (f->client, d, fd, error))
    return FALSE;
  __atomic_add_fetch (&f->svc->pulled_bytes, (guint64) d->size, __ATOMIC_RELAXED);
  if (lseek (fd, 0, SEEK_SET) < 0)
    return crisp_throw_errno (error, errno, "rewinding layer %s", d->digest);
  if (!crisp_storage_import_layer (f->svc->storage, fd, diff_id, f->cancellable, error))
    return crisp_prefix_error (error, "layer %s: ", d->digest);
  return TRUE;
}

/* Claims diff_id for this pull, or waits while another pull (of another name of the
 * same content) fetches it. FALSE when the layer is there or this pull is cancelled. */
static gboolean
claim_layer (Fetch *f, const char *diff_id)
{
  CrispImageService *svc = f->svc;
  g_mutex_lock (&svc->lock);
  while (g_hash_table_contains (svc->inflight_layers, diff_id)
         && !g_cancellable_is_cancelled (f->cancellable))
    g_cond_wait_until (&svc->cond, &svc->lock, g_get_monotonic_time () + G_USEC_PER_SEC / 5);
  gboolean claimed = !g_cancellable_is_cancelled (f->cancellable)
                     && !crisp_storage_has_layer (svc->storage, diff_id);
  if (claimed)
    g_hash_table_add (svc->inflight_layers, g_strdup (diff_id));
  g_mutex_unlock (&svc->lock);
  return claimed;
}

static void
release_layer (Fetch *f, const char *diff_id)
{
  g_mutex_lock (&f->svc->lock);
  g_hash_table_remove (f->svc->inflight_layers, diff_id);
  g_cond_broadcast (&f->svc->cond);
  g_mutex_unlock (&f->svc->lock);
}

static gboolean
fetch_layer (Fetch *f, guint i, GError **error)
{
  const CrispDescriptor *d = f->manifest->descriptors->pdata[i];
  const char *diff_id = f->config->diff_ids->pdata[i];
  if (!claim_layer (f, diff_id))
    return !g_cancellable_set_error_if_cancelled (f->cancellable, error);
  gboolean ok = download_and_import (f, d, diff_id, error);
  release_layer (f, diff_id);
  return ok;
}

static gpointer
fetch_worker (gpointer data)
{
  Fetch *f = data;
  for (;;)
    {
      g_mutex_lock (&f->lock);
      guint i = f->next++;
      gboolean stop = f->error != NULL || i >= f->manifest->descriptors->len;
      g_mutex_unlock (&f->lock);
      if (stop)
        return NULL;
      g_autoptr (GError) local = NULL;
      if (fetch_layer (f, i, &local))
        continue;
      g_mutex_lock (&f->lock);
      if (f->error == NULL)
        f->error = g_steal_pointer (&local);
      g_mutex_unlock (&f->lock);
      g_cancellable_cancel (f->cancellable); /* the others stop too */
    }
}

static void
cancel_child (GCancellable *parent, gpointer child)
{
  g_cancellable_cancel (child);
}

static gboolean
fetch_layers (CrispImageService *svc, CrispRegistryClient *client, const CrispManifest *m,
              const CrispImageConfig *cfg, GCancellable *cancellable, GError **error)
{
  g_autoptr (GCancellable) child = g_cancellable_new ();
  gulong handler = cancellable
                       ? g_cancellable_connect (cancellable, G_CALLBACK (cancel_child), child, NULL)
                       : 0;
  Fetch f = { .svc = svc, .client = client, .manifest = m, .config = cfg, .cancellable = child };
  g_mutex_init (&f.lock);
  guint n = MIN ((guint) svc->max_downloads, m->descriptors->len);
  g_autoptr (GPtrArray) threads = g_ptr_array_new ();
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (threads, g_thread_new ("crisp-pull", fetch_worker, &f));
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (threads->pdata[i]);
  if (cancellable)
    g_cancellable_disconnect (cancellable, handler);
  g_mutex_clear (&f.lock);
  if (f.error != NULL)
    return g_propagate_error (error, f.error), FALSE;
  return TRUE;
}

/* Under the service lock: the tag moves to this image (taken from any other). */
static gboolean
record_image (CrispImageService *svc, const CrispImageRef *ref, const Resolved *r,
              const CrispImageConfig *cfg, char *config_json, GError **error)
{
  const char *id = r->manifest->config->digest;
  CrispImage *existing = crisp_image_store_get (svc->records, id);
  g_autoptr (CrispImage) img = existing ? crisp_image_copy (existing) : crisp_image_new ();
  if (existing == NULL)
    {
      img->id = g_strdup (id);
      img->manifest_digest = g_strdup (r->manifest_digest);
      img->size = r->manifest->config->size;
      for (guint i = 0; i < r->manifest->descriptors->len; i++)
        {
          const CrispDescriptor *d = r->manifest->descriptors->pdata[i];
          g_ptr_array_add (img->layer_digests, g_strdup (d->digest));
          g_ptr_array_add (img->diff_ids, g_strdup (cfg->diff_ids->pdata[i]));
          img->size += d->size;
        }
      img->user = g_strdup (cfg->user);
      img->config_json = g_strdup (config_json);
      img->manifest_json = g_strndup (g_bytes_get_data (r->manifest_body, NULL),
                                      g_bytes_get_size (r->manifest_body));
      img->created = g_get_real_time () / G_USEC_PER_SEC;
    }
  g_autofree char *tagged = crisp_image_ref_tagged (ref);
  g_autofree char *digested = crisp_image_ref_digested (ref, r->top_digest);
  if (tagged != NULL)
    {
      g_autoptr (GPtrArray) all = crisp_image_store_list (svc->records);
      for (guint i = 0; i < all->len; i++)
        {
          CrispImage *other = all->pdata[i];
          if (g_str_equal (other->id, id) || !crisp_strv_contains (other->repo_tags, tagged))
            continue;
          g_autoptr (CrispImage) moved = crisp_image_copy (other);
          crisp_strv_remove (moved->repo_tags, tagged);
          if (!crisp_image_store_save (svc->records, moved, error))
            return FALSE;
        }
      crisp_strv_add_unique (img->repo_tags, tagged);
    }
  crisp_strv_add_unique (img->repo_digests, digested);
  return crisp_image_store_save (svc->records, img, error);
}

static void
pin_all (CrispImageService *svc, const CrispImageConfig *cfg, gboolean pin)
{
  for (guint i = 0; i < cfg->diff_ids->len; i++)
    (pin ? crisp_storage_pin : crisp_storage_unpin) (svc->storage, cfg->diff_ids->pdata[i]);
}

static gboolean
pull_leader (CrispImageService *svc, const CrispImageRef *ref, const CrispCredentials *creds,
             GCancellable *cancellable, char **out_id, GError **error)
{
  g_auto (Resolved) r = { 0 };
  g_autoptr (CrispRegistryClient) client
      = connect_and_resolve (svc, ref, creds, cancellable, &r, error);
  if (client == NULL)
    return FALSE;
  g_autofree char *config_json = NULL;
  g_autoptr (CrispImageConfig) cfg = fetch_config (client, r.manifest, &config_json, error);
  if (cfg == NULL)
    return crisp_prefix_error (error, "image config %s: ", r.manifest->config->digest);
  pin_all (svc, cfg, TRUE);
  gboolean ok = fetch_layers (svc, client, r.manifest, cfg, cancellable, error);
  if (ok)
    {
      /* under the repo lock: a prune cannot have decided what to keep before this
       * record existed and run after the layers are unpinned */
      crisp_storage_lock (svc->storage);
      g_mutex_lock (&svc->lock);
      ok = record_image (svc, ref, &r, cfg, config_json, error);
      g_mutex_unlock (&svc->lock);
      crisp_storage_unlock (svc->storage);
    }
  pin_all (svc, cfg, FALSE);
  if (ok)
    *out_id = g_strdup (r.manifest->config->digest);
  else if (!crisp_image_service_gc (svc, TRUE, NULL))
    g_debug ("pruning after a failed pull failed, ignoring");
  return ok;
}

/* Waits for the pull another call started; gives up when this call is cancelled. */
static gboolean
follow_flight (CrispImageService *svc, Flight *f, GCancellable *cancellable, char **out_id,
               GError **error)
{
  f->waiters++;
  while (!f->done && !g_cancellable_is_cancelled (cancellable))
    g_cond_wait_until (&svc->cond, &svc->lock, g_get_monotonic_time () + G_USEC_PER_SEC / 5);
  gboolean ok = f->done && f->error == NULL;
  if (ok)
    *out_id = g_strdup (f->id);
  else if (f->done)
    g_propagate_error (error, g_error_copy (f->error));
  else
    crisp_throw (error, CRISP_ERROR_CANCELLED, "pull cancelled");
  if (--f->waiters == 0 && f->done)
    {
      g_free (f->id);
      g_clear_error (&f->error);
      g_free (f);
    }
  return ok;
}

gboolean
crisp_image_service_pull (CrispImageService *svc, const char *image, const CrispCredentials *creds,
                          GCancellable *cancellable, char **out_id, GError **error)
{
  g_autoptr (CrispImageRef) ref = crisp_image_ref_parse (image, error);
  if (ref == NULL)
    return FALSE;
  g_autofree char *key = crisp_image_ref_to_string (ref);
  g_mutex_lock (&svc->lock);
  Flight *f = g_hash_table_lookup (svc->inflight, key);
  if (f != NULL)
    {
      gboolean ok = follow_flight (svc, f, cancellable, out_id, error);
      g_mutex_unlock (&svc->lock);
      return ok;
    }
  f = g_new0 (Flight, 1);
  g_hash_table_insert (svc->inflight, key, f);
  g_mutex_unlock (&svc->lock);
  g_autoptr (GError) local = NULL;
  g_autofree char *id = NULL;
  gboolean ok = pull_leader (svc, ref, creds, cancellable, &id, &local);
  g_mutex_lock (&svc->lock);
  g_hash_table_remove (svc->inflight, key);
  f->done = TRUE;
  f->id = g_strdup (id);
  f->error = local ? g_error_copy (local) : NULL;
  g_cond_broadcast (&svc->cond);
  if (f->waiters == 0)
    {
      g_free (f->id);
      g_clear_error (&f->error);
      g_free (f);
    }
  g_mutex_unlock (&svc->lock);
  if (!ok)
    return g_propagate_error (error, g_steal_pointer (&local)), FALSE;
  *out_id = g_steal_pointer (&id);
  return TRUE;
}

guint64
crisp_image_service_pulled_bytes (CrispImageService *svc)
{
  return __atomic_load_n (&svc->pulled_bytes, __ATOMIC_RELAXED);
}
