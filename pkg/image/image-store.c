/* The image records on disk and their in-memory table. */
#include "config.h"

#include "image-store.h"
#include "reference.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#define RECORD_MAX (64 * 1024 * 1024)
#define RECORD_VERSION 1

struct _CrispImageStore
{
  int dirfd;
  GHashTable *by_id; /* id -> CrispImage */
};

CrispImage *
crisp_image_new (void)
{
  CrispImage *img = g_new0 (CrispImage, 1);
  img->repo_tags = g_ptr_array_new_with_free_func (g_free);
  img->repo_digests = g_ptr_array_new_with_free_func (g_free);
  img->layer_digests = g_ptr_array_new_with_free_func (g_free);
  img->diff_ids = g_ptr_array_new_with_free_func (g_free);
  return img;
}

void
crisp_image_free (CrispImage *img)
{
  if (img == NULL)
    return;
  g_free (img->id);
  g_ptr_array_unref (img->repo_tags);
  g_ptr_array_unref (img->repo_digests);
  g_ptr_array_unref (img->layer_digests);
  g_ptr_array_unref (img->diff_ids);
  g_free (img->manifest_digest);
  g_free (img->user);
  g_free (img->config_json);
  g_free (img->manifest_json);
  g_free (img);
}

static void
copy_strs (GPtrArray *dst, GPtrArray *src)
{
  for (guint i = 0; i < src->len; i++)
    g_ptr_array_add (dst, g_strdup (src->pdata[i]));
}

CrispImage *
crisp_image_copy (const CrispImage *img)
{
  CrispImage *c = crisp_image_new ();
  c->id = g_strdup (img->id);
  copy_strs (c->repo_tags, img->repo_tags);
  copy_strs (c->repo_digests, img->repo_digests);
  copy_strs (c->layer_digests, img->layer_digests);
  copy_strs (c->diff_ids, img->diff_ids);
  c->manifest_digest = g_strdup (img->manifest_digest);
  c->size = img->size;
  c->user = g_strdup (img->user);
  c->config_json = g_strdup (img->config_json);
  c->manifest_json = g_strdup (img->manifest_json);
  c->created = img->created;
  return c;
}

gboolean
crisp_strv_contains (GPtrArray *arr, const char *s)
{
  for (guint i = 0; i < arr->len; i++)
    if (g_str_equal (arr->pdata[i], s))
      return TRUE;
  return FALSE;
}

void
crisp_strv_add_unique (GPtrArray *arr, const char *s)
{
  if (!crisp_strv_contains (arr, s))
    g_ptr_array_add (arr, g_strdup (s));
}

gboolean
crisp_strv_remove (GPtrArray *arr, const char *s)
{
  for (guint i = 0; i < arr->len; i++)
    if (g_str_equal (arr->pdata[i], s))
      return g_ptr_array_remove_index (arr, i), TRUE;
  return FALSE;
}

static void
add_str_array (JsonBuilder *b, const char *name, GPtrArray *arr)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; i < arr->len; i++)
    json_builder_add_string_value (b, arr->pdata[i]);
  json_builder_end_array (b);
}

static void
add_str (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value ? value : "");
}

char *
crisp_image_to_json (const CrispImage *img)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, RECORD_VERSION);
  add_str (b, "id", img->id);
  add_str_array (b, "repo_tags", img->repo_tags);
  add_str_array (b, "repo_digests", img->repo_digests);
  add_str (b, "manifest_digest", img->manifest_digest);
  add_str_array (b, "layer_digests", img->layer_digests);
  add_str_array (b, "diff_ids", img->diff_ids);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) img->size);
  json_builder_set_member_name (b, "created");
  json_builder_add_int_value (b, img->created);
  add_str (b, "user", img->user);
  add_str (b, "config", img->config_json);
  add_str (b, "manifest", img->manifest_json);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static gboolean
read_str_array (JsonObject *o, const char *name, GPtrArray *out, gboolean digests)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    return FALSE;
  JsonArray *a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
        return FALSE;
      if (digests && !crisp_digest_is_valid (json_node_get_string (e)))
        return FALSE;
      g_ptr_array_add (out, g_strdup (json_node_get_string (e)));
    }
  return TRUE;
}

static char *
read_str (JsonObject *o, const char *name, gboolean *ok)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      *ok = FALSE;
      return NULL;
    }
  return g_strdup (json_node_get_string (n));
}

/* An integer member, 0 when absent; an object or array there reads as 0 too, where
 * json_object_get_int_member_with_default would raise a GLib critical. */
static gint64
read_int (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n != NULL && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_int (n) : 0;
}

CrispImage *
crisp_image_from_json (const char *data, gsize len, GError **error)
{
  g_autoptr (JsonParser) p = json_parser_new_immutable ();
  if (!json_parser_load_from_data (p, data, (gssize) len, error))
    return NULL;
  JsonNode *root = json_parser_get_root (p);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return (crisp_throw (error, CRISP_ERROR_DATA_LOSS, "not a JSON object"), NULL);
  JsonObject *o = json_node_get_object (root);
  g_autoptr (CrispImage) img = crisp_image_new ();
  gboolean ok = read_int (o, "version") == RECORD_VERSION;
  img->id = read_str (o, "id", &ok);
  img->manifest_digest = read_str (o, "manifest_digest", &ok);
  img->user = read_str (o, "user", &ok);
  img->config_json = read_str (o, "config", &ok);
  img->manifest_json = read_str (o, "manifest", &ok);
  img->size = (guint64) read_int (o, "size");
  img->created = read_int (o, "created");
  ok = ok && crisp_digest_is_valid (img->id)
       && read_str_array (o, "repo_tags", img->repo_tags, FALSE)
       && read_str_array (o, "repo_digests", img->repo_digests, FALSE)
       && read_str_array (o, "layer_digests", img->layer_digests, TRUE)
       && read_str_array (o, "diff_ids", img->diff_ids, TRUE)
       && img->layer_digests->len == img->diff_ids->len;
  if (!ok)
    return (crisp_throw (error, CRISP_ERROR_DATA_LOSS, "missing or malformed fields"), NULL);
  return g_steal_pointer (&img);
}

static char *
record_name (const char *id)
{
  return g_strconcat (id + strlen ("sha256:"), ".json", NULL);
}

/* A record that cannot be read is set aside for a human, not deleted. */
static void
quarantine (CrispImageStore *store, const char *name, const char *why)
{
  g_autofree char *dest = g_strconcat (name, ".corrupt", NULL);
  g_warning ("image record '%s' is corrupt (%s), moving it to '%s'", name, why, dest);
  renameat (store->dirfd, name, store->dirfd, dest);
}

static void
load_one (CrispImageStore *store, const char *name)
{
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  int r = crisp_read_all_at (store->dirfd, name, RECORD_MAX, &buf, &len);
  if (r < 0)
    return quarantine (store, name, g_strerror (-r));
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispImage) img = crisp_image_from_json (buf, len, &error);
  g_autofree char *expect = img ? record_name (img->id) : NULL;
  if (img == NULL)
    return quarantine (store, name, error->message);
  if (!g_str_equal (expect, name))
    return quarantine (store, name, "its id does not match its name");
  CrispImage *owned = g_steal_pointer (&img);
  g_hash_table_replace (store->by_id, owned->id, owned);
}

CrispImageStore *
crisp_image_store_load (int dirfd, GError **error)
{
  g_autoptr (CrispImageStore) store = g_new0 (CrispImageStore, 1);
  store->dirfd = dirfd;
  store->by_id
      = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) crisp_image_free);
  int dup = fcntl (dirfd, F_DUPFD_CLOEXEC, 3);
  DIR *d = dup >= 0 ? fdopendir (dup) : NULL;
  if (d == NULL)
    return (crisp_throw_errno (error, errno, "listing image records"), NULL);
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      if (de->d_name[0] == '.' && strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
        unlinkat (dirfd, de->d_name, 0); /* an interrupted atomic write */
      else if (g_str_has_suffix (de->d_name, ".json"))
        load_one (store, de->d_name);
    }
  closedir (d);
  return g_steal_pointer (&store);
}

void
crisp_image_store_free (CrispImageStore *store)
{
  if (store == NULL)
    return;
  crisp_closep (&store->dirfd);
  g_hash_table_unref (store->by_id);
  g_free (store);
}

gboolean
crisp_image_store_save (CrispImageStore *store, const CrispImage *img, GError **error)
{
  g_autofree char *json = crisp_image_to_json (img);
  g_autofree char *name = record_name (img->id);
  int r = crisp_write_file_atomic_at (store->dirfd, name, json, strlen (json), 0600);
  if (r < 0)
    return crisp_throw_errno (error, r, "writing image record %s", name);
  CrispImage *copy = crisp_image_copy (img);
  g_hash_table_replace (store->by_id, copy->id, copy);
  return TRUE;
}

gboolean
crisp_image_store_delete (CrispImageStore *store, const char *id, GError **error)
{
  g_autofree char *name = record_name (id);
  if (unlinkat (store->dirfd, name, 0) < 0 && errno != ENOENT)
    return crisp_throw_errno (error, errno, "removing image record %s", name);
  g_hash_table_remove (store->by_id, id);
  return TRUE;
}

CrispImage *
crisp_image_store_get (CrispImageStore *store, const char *id)
{
  return g_hash_table_lookup (store->by_id, id);
}

GPtrArray *
crisp_image_store_list (CrispImageStore *store)
{
  GPtrArray *out = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, store->by_id);
  while (g_hash_table_iter_next (&it, NULL, &value))
    g_ptr_array_add (out, value);
  return out;
}

static void
add_raw_json (JsonBuilder *b, const char *name, const char *raw)
{
  g_autoptr (JsonParser) p = json_parser_new_immutable ();
  json_builder_set_member_name (b, name);
  if (raw != NULL && json_parser_load_from_data (p, raw, -1, NULL) && json_parser_get_root (p))
    json_builder_add_value (b, json_node_copy (json_parser_get_root (p)));
  else
    json_builder_add_null_value (b);
}

char *
crisp_image_info_json (const CrispImage *img)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  add_str (b, "id", img->id);
  add_str (b, "manifestDigest", img->manifest_digest);
  add_str_array (b, "layers", img->layer_digests);
  add_raw_json (b, "imageSpec", img->config_json);
  add_raw_json (b, "manifest", img->manifest_json);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}
