/* Parsing of registry documents (manifests, indexes, configs). Everything here is
 * untrusted: sizes, counts, digests and media types are checked before use. */
#include "config.h"

#include "manifest.h"
#include "reference.h"
#include "crisp-error.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/utsname.h>

void
crisp_descriptor_free (CrispDescriptor *d)
{
  if (d == NULL)
    return;
  g_free (d->media_type);
  g_free (d->digest);
  g_free (d->os);
  g_free (d->architecture);
  g_free (d->variant);
  g_free (d);
}

void
crisp_manifest_free (CrispManifest *m)
{
  if (m == NULL)
    return;
  g_free (m->media_type);
  crisp_descriptor_free (m->config);
  if (m->descriptors)
    g_ptr_array_unref (m->descriptors);
  g_free (m);
}

void
crisp_image_config_free (CrispImageConfig *c)
{
  if (c == NULL)
    return;
  g_free (c->user);
  g_free (c->os);
  g_free (c->architecture);
  if (c->diff_ids)
    g_ptr_array_unref (c->diff_ids);
  g_free (c);
}

static JsonNode *
parse_json_object (const char *data, gsize len, gsize max, const char *what, GError **error)
{
  if (len > max)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                         "%s is %" G_GSIZE_FORMAT " bytes, more than the limit of %" G_GSIZE_FORMAT,
                         what, len, max),
            NULL);
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local = NULL;
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local))
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is not valid JSON: %s", what,
                         local->message),
            NULL);
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is not a JSON object", what),
            NULL);
  return json_node_copy (root);
}

/* A member that must be a string when present; NULL when absent. */
static const char *
get_string (JsonObject *o, const char *name, gboolean *ok)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return NULL;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      *ok = FALSE;
      return NULL;
    }
  return json_node_get_string (n);
}

/* An integer member, or fallback when absent or null. Unlike
 * json_object_get_int_member_with_default, an object or array there is no GLib critical. */
static gint64
get_int (JsonObject *o, const char *name, gint64 fallback)
{
  JsonNode *n = json_object_get_member (o, name);
  return n != NULL && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_int (n) : fallback;
}

static JsonObject *
get_object (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return (n != NULL && JSON_NODE_HOLDS_OBJECT (n)) ? json_node_get_object (n) : NULL;
}

static JsonArray *
get_array (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return (n != NULL && JSON_NODE_HOLDS_ARRAY (n)) ? json_node_get_array (n) : NULL;
}

static CrispDescriptor *
parse_descriptor (JsonNode *node, const char *what, GError **error)
{
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is not an object", what), NULL);
  JsonObject *o = json_node_get_object (node);
  gboolean ok = TRUE;
  g_autoptr (CrispDescriptor) d = g_new0 (CrispDescriptor, 1);
  d->media_type = g_strdup (get_string (o, "mediaType", &ok));
  d->digest = g_strdup (get_string (o, "digest", &ok));
  JsonNode *size = json_object_get_member (o, "size");
  if (!ok || !crisp_digest_is_valid (d->digest))
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                         "%s: digest '%s' is not sha256:<64 hex>", what,
                         d->digest ? d->digest : ""),
            NULL);
  if (size == NULL || json_node_get_value_type (size) != G_TYPE_INT64
      || json_node_get_int (size) < 0)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s %s: size missing or negative",
                         what, d->digest),
            NULL);
  d->size = json_node_get_int (size);
  JsonObject *platform = get_object (o, "platform");
  if (platform != NULL)
    {
      d->os = g_strdup (get_string (platform, "os", &ok));
      d->architecture = g_strdup (get_string (platform, "architecture", &ok));
      d->variant = g_strdup (get_string (platform, "variant", &ok));
    }
  return g_steal_pointer (&d);
}

static gboolean
layer_media_type_ok (const char *mt)
{
  static const char *const ok[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  if (mt == NULL)
    return TRUE; /* old OCI manifests may omit it; the bytes decide */
  for (size_t i = 0; i < G_N_ELEMENTS (ok); i++)
    if (g_str_equal (mt, ok[i]))
      return TRUE;
  return FALSE;
}

static gboolean
parse_descriptor_list (JsonArray *arr, CrispManifest *m, guint max, const char *what,
                       GError **error)
{
  guint n = json_array_get_length (arr);
  if (n > max)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: %u entries, more than %u", what,
                        n, max);
  for (guint i = 0; i < n; i++)
    {
      CrispDescriptor *d = parse_descriptor (json_array_get_element (arr, i), what, error);
      if (d == NULL)
        return FALSE;
      g_ptr_array_add (m->descriptors, d);
      if (m->kind == CRISP_MANIFEST_IMAGE && !layer_media_type_ok (d->media_type))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "layer %s has unsupported media type '%s'", d->digest, d->media_type);
    }
  return TRUE;
}

static gboolean
decide_kind (JsonObject *o, const char *content_type, CrispManifest *m, GError **error)
{
  gboolean ok = TRUE;
  const char *mt = get_string (o, "mediaType", &ok);
  if (mt == NULL && content_type != NULL
      && (strstr (content_type, "manifest") || strstr (content_type, "index")))
    mt = content_type;
  m->media_type = g_strdup (mt);
  if (mt != NULL
      && (g_str_equal (mt, CRISP_MT_OCI_INDEX) || g_str_equal (mt, CRISP_MT_DOCKER_LIST)))
    m->kind = CRISP_MANIFEST_INDEX;
  else if (mt != NULL
           && (g_str_equal (mt, CRISP_MT_OCI_MANIFEST)
               || g_str_equal (mt, CRISP_MT_DOCKER_MANIFEST)))
    m->kind = CRISP_MANIFEST_IMAGE;
  else if (mt == NULL && get_array (o, "manifests") != NULL)
    m->kind = CRISP_MANIFEST_INDEX;
  else if (mt == NULL && get_array (o, "layers") != NULL)
    m->kind = CRISP_MANIFEST_IMAGE;
  else
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "unsupported manifest media type '%s'",
                        mt ? mt : "(none)");
  return TRUE;
}

CrispManifest *
crisp_manifest_parse (const char *data, gsize len, const char *content_type, GError **error)
{
  g_autoptr (JsonNode) root
      = parse_json_object (data, len, CRISP_MANIFEST_MAX_BYTES, "manifest", error);
  if (root == NULL)
    return NULL;
  JsonObject *o = json_node_get_object (root);
  if (get_int (o, "schemaVersion", 0) != 2)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                         "manifest schemaVersion is not 2 (schema 1 images are not supported)"),
            NULL);
  g_autoptr (CrispManifest) m = g_new0 (CrispManifest, 1);
  m->descriptors = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_descriptor_free);
  if (!decide_kind (o, content_type, m, error))
    return NULL;
  if (m->kind == CRISP_MANIFEST_INDEX)
    {
      JsonArray *list = get_array (o, "manifests");
      if (list == NULL)
        return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "index has no manifests"), NULL);
      if (!parse_descriptor_list (list, m, CRISP_INDEX_MAX_ENTRIES, "index entry", error))
        return NULL;
      return g_steal_pointer (&m);
    }
  JsonArray *layers = get_array (o, "layers");
  m->config = parse_descriptor (json_object_get_member (o, "config"), "config", error);
  if (m->config == NULL)
    return NULL;
  if (layers == NULL)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "manifest has no layers"), NULL);
  if (!parse_descriptor_list (layers, m, CRISP_MANIFEST_MAX_LAYERS, "layer", error))
    return NULL;
  return g_steal_pointer (&m);
}

void
crisp_host_platform (const char **out_arch, const char **out_variant)
{
  struct utsname u;
  uname (&u);
  *out_variant = NULL;
  if (g_str_equal (u.machine, "x86_64"))
    *out_arch = "amd64";
  else if (g_str_equal (u.machine, "aarch64"))
    *out_arch = "arm64", *out_variant = "v8";
  else if (g_str_has_prefix (u.machine, "armv7"))
    *out_arch = "arm", *out_variant = "v7";
  else if (g_str_has_prefix (u.machine, "i") && g_str_has_suffix (u.machine, "86"))
    *out_arch = "386";
  else if (g_str_equal (u.machine, "ppc64le"))
    *out_arch = "ppc64le";
  else if (g_str_equal (u.machine, "s390x"))
    *out_arch = "s390x";
  else
    *out_arch = "unknown";
}

const CrispDescriptor *
crisp_manifest_select_platform (const CrispManifest *index, const char *os, const char *arch,
                                const char *variant, GError **error)
{
  const CrispDescriptor *loose = NULL;
  for (guint i = 0; i < index->descriptors->len; i++)
    {
      const CrispDescriptor *d = index->descriptors->pdata[i];
      if (g_strcmp0 (d->os, os) != 0 || g_strcmp0 (d->architecture, arch) != 0)
        continue;
      if (g_strcmp0 (d->variant, variant) == 0)
        return d;
      /* arm64 entries often omit "v8"; take one without a variant if nothing is exact */
      if (d->variant == NULL && loose == NULL)
        loose = d;
    }
  if (loose != NULL)
    return loose;
  crisp_throw (error, CRISP_ERROR_NOT_FOUND, "no manifest for platform %s/%s%s%s in the index", os,
               arch, variant ? "/" : "", variant ? variant : "");
  return NULL;
}

static gboolean
parse_diff_ids (JsonObject *o, CrispImageConfig *c, GError **error)
{
  JsonObject *rootfs = get_object (o, "rootfs");
  JsonArray *ids = rootfs ? get_array (rootfs, "diff_ids") : NULL;
  if (ids == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "image config has no rootfs.diff_ids");
  guint n = json_array_get_length (ids);
  if (n > CRISP_MANIFEST_MAX_LAYERS)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "image config lists %u layers", n);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *e = json_array_get_element (ids, i);
      const char *s = JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING
                          ? json_node_get_string (e)
                          : NULL;
      if (!crisp_digest_is_valid (s))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "image config: diff_id %u is not sha256:<64 hex>", i);
      g_ptr_array_add (c->diff_ids, g_strdup (s));
    }
  return TRUE;
}

CrispImageConfig *
crisp_image_config_parse (const char *data, gsize len, GError **error)
{
  g_autoptr (JsonNode) root
      = parse_json_object (data, len, CRISP_CONFIG_MAX_BYTES, "image config", error);
  if (root == NULL)
    return NULL;
  JsonObject *o = json_node_get_object (root);
  g_autoptr (CrispImageConfig) c = g_new0 (CrispImageConfig, 1);
  c->diff_ids = g_ptr_array_new_with_free_func (g_free);
  gboolean ok = TRUE;
  c->os = g_strdup (get_string (o, "os", &ok));
  c->architecture = g_strdup (get_string (o, "architecture", &ok));
  JsonObject *cfg = get_object (o, "config");
  c->user = g_strdup (cfg ? get_string (cfg, "User", &ok) : NULL);
  if (!ok)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                         "image config: os, architecture or config.User is not a string"),
            NULL);
  if (c->user == NULL)
    c->user = g_strdup ("");
  if (!parse_diff_ids (o, c, error))
    return NULL;
  return g_steal_pointer (&c);
}

void
crisp_image_user_split (const char *user, gint64 *out_uid, char **out_username)
{
  *out_uid = -1;
  *out_username = NULL;
  if (user == NULL || *user == '\0')
    return;
  g_autofree char *first = g_strdup (user);
  char *colon = strchr (first, ':');
  if (colon)
    *colon = '\0';
  if (*first == '\0')
    return;
  guint64 v;
  if (g_ascii_string_to_unsigned (first, 10, 0, G_MAXUINT32, &v, NULL))
    *out_uid = (gint64) v;
  else
    *out_username = g_steal_pointer (&first);
}
