/* The on-disk form of a container: one JSON record, versioned, read defensively. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"

#include <string.h>

#define RECORD_VERSION 1

static const char *const state_names[] = {
  [CRISP_CONTAINER_CREATING] = "creating", [CRISP_CONTAINER_CREATED] = "created",
  [CRISP_CONTAINER_RUNNING] = "running",   [CRISP_CONTAINER_EXITED] = "exited",
  [CRISP_CONTAINER_REMOVING] = "removing",
};

const char *
crisp_container_state_to_string (CrispContainerState state)
{
  return state_names[state];
}

CrispContainer *
crisp_container_new (void)
{
  CrispContainer *c = g_new0 (CrispContainer, 1);
  c->ref_count = 1;
  g_mutex_init (&c->op_lock);
  return c;
}

CrispContainer *
crisp_container_ref (CrispContainer *c)
{
  g_atomic_int_inc (&c->ref_count);
  return c;
}

void
crisp_container_unref (CrispContainer *c)
{
  if (c == NULL || !g_atomic_int_dec_and_test (&c->ref_count))
    return;
  g_free (c->id);
  g_free (c->pod_id);
  g_free (c->name);
  if (c->config)
    protobuf_c_message_free_unpacked (&c->config->base, NULL);
  g_free (c->image_id);
  g_free (c->image_ref);
  g_strfreev (c->mount_images);
  g_free (c->runtime);
  g_free (c->runtime_path);
  g_free (c->runtime_root);
  g_free (c->log_path);
  g_free (c->cgroup_path);
  g_free (c->stop_signal);
  g_free (c->restore_images);
  g_free (c->reason);
  g_free (c->message);
  if (c->resources)
    json_node_unref (c->resources);
  if (c->gids)
    g_array_unref (c->gids);
  g_mutex_clear (&c->op_lock);
  g_free (c);
}

char *
crisp_container_name_key (const char *pod_id, const char *name, guint32 attempt)
{
  return g_strdup_printf ("%s/%s/%u", pod_id, name, attempt);
}

static void
add_string (JsonBuilder *b, const char *key, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, value);
}

static void
add_int (JsonBuilder *b, const char *key, gint64 value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, value);
}

static void
add_strv (JsonBuilder *b, const char *key, char **strv)
{
  if (strv == NULL)
    return;
  json_builder_set_member_name (b, key);
  json_builder_begin_array (b);
  for (char **s = strv; *s; s++)
    json_builder_add_string_value (b, *s);
  json_builder_end_array (b);
}

static void
add_user (JsonBuilder *b, const CrispContainer *c)
{
  json_builder_set_member_name (b, "user");
  json_builder_begin_object (b);
  add_int (b, "uid", c->uid);
  add_int (b, "gid", c->gid);
  json_builder_set_member_name (b, "additionalGids");
  json_builder_begin_array (b);
  for (guint i = 0; i < c->gids->len; i++)
    json_builder_add_int_value (b, g_array_index (c->gids, guint32, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
}

/* An id as the OCI spec has them: an integer of 0..2^32-1. */
static gboolean
get_id (JsonNode *n, guint32 *out)
{
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64
      || json_node_get_int (n) < 0 || json_node_get_int (n) > G_MAXUINT32)
    return FALSE;
  *out = (guint32) json_node_get_int (n);
  return TRUE;
}

gboolean
crisp_container_set_user (CrispContainer *c, JsonNode *user)
{
  JsonObject *o = user && JSON_NODE_HOLDS_OBJECT (user) ? json_node_get_object (user) : NULL;
  JsonNode *gids = o ? json_object_get_member (o, "additionalGids") : NULL;
  JsonArray *a = gids && JSON_NODE_HOLDS_ARRAY (gids) ? json_node_get_array (gids) : NULL;
  guint32 uid = 0, gid = 0;
  if (o == NULL || !get_id (json_object_get_member (o, "uid"), &uid)
      || !get_id (json_object_get_member (o, "gid"), &gid)
      || (a != NULL && json_array_get_length (a) > CRISP_CONTAINER_MAX_GIDS))
    return FALSE;
  g_autoptr (GArray) list = g_array_new (FALSE, FALSE, sizeof (guint32));
  for (guint i = 0; a != NULL && i < json_array_get_length (a); i++)
    {
      guint32 g = 0;
      if (!get_id (json_array_get_element (a, i), &g))
        return FALSE;
      g_array_append_val (list, g);
    }
  if (c->gids)
    g_array_unref (c->gids);
  c->gids = g_steal_pointer (&list);
  c->uid = uid;
  c->gid = gid;
  c->has_user = TRUE;
  return TRUE;
}

static char *
config_to_base64 (const Runtime__V1__ContainerConfig *config)
{
  gsize len = protobuf_c_message_get_packed_size (&config->base);
  g_autofree guint8 *buf = g_malloc (len ? len : 1);
  protobuf_c_message_pack (&config->base, buf);
  return g_base64_encode (buf, len);
}

JsonNode *
crisp_container_to_json (CrispContainer *c)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *config = config_to_base64 (c->config);
  json_builder_begin_object (b);
  add_int (b, "version", RECORD_VERSION);
  add_string (b, "pod_id", c->pod_id);
  add_string (b, "name", c->name);
  add_int (b, "attempt", c->attempt);
  add_string (b, "config", config);
  add_string (b, "image_id", c->image_id);
  add_string (b, "image_ref", c->image_ref);
  add_strv (b, "mount_images", c->mount_images);
  add_string (b, "runtime", c->runtime);
  add_string (b, "runtime_path", c->runtime_path);
  add_string (b, "runtime_root", c->runtime_root);
  add_string (b, "log_path", c->log_path);
  add_string (b, "cgroup_path", c->cgroup_path);
  add_string (b, "stop_signal", c->stop_signal);
  add_string (b, "restore_images", c->restore_images);
  add_string (b, "state", crisp_container_state_to_string (c->state));
  add_int (b, "created_at", c->created_at);
  add_int (b, "started_at", c->started_at);
  add_int (b, "finished_at", c->finished_at);
  if (c->start_requested_at != 0)
    add_int (b, "start_requested_at", c->start_requested_at);
  add_int (b, "exit_code", c->exit_code);
  add_int (b, "oom_killed", c->oom_killed);
  add_string (b, "reason", c->reason);
  add_string (b, "message", c->message);
  add_int (b, "pid", c->pid);
  add_int (b, "pid_start_time", (gint64) c->pid_start_time);
  add_int (b, "monitor_pid", c->monitor_pid);
  add_int (b, "monitor_start_time", (gint64) c->monitor_start_time);
  add_int (b, "monitor_version", c->monitor_version);
  if (c->resources)
    {
      json_builder_set_member_name (b, "resources");
      json_builder_add_value (b, json_node_copy (c->resources));
    }
  if (c->has_user)
    add_user (b, c);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static char *
get_string (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  if (n == NULL || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return g_strdup (json_node_get_string (n));
}

static gint64
get_int (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  if (n == NULL || json_node_get_value_type (n) != G_TYPE_INT64)
    return 0;
  return json_node_get_int (n);
}

static gboolean
parse_state (const char *s, CrispContainerState *out)
{
  for (gsize i = 0; i < G_N_ELEMENTS (state_names); i++)
    if (g_strcmp0 (s, state_names[i]) == 0)
      {
        *out = (CrispContainerState) i;
        return TRUE;
      }
  return FALSE;
}

static gboolean
is_image_mount (const Runtime__V1__Mount *m)
{
  return crisp_oci_mount_kind (m) == CRISP_OCI_MOUNT_IMAGE;
}

/* An image id for an image volume, "" for any other mount. */
static gboolean
mount_image_is_valid (const Runtime__V1__Mount *m, JsonNode *e)
{
  const char *id = json_node_get_value_type (e) == G_TYPE_STRING ? json_node_get_string (e) : NULL;
  if (id == NULL)
    return FALSE;
  if (!is_image_mount (m))
    return id[0] == '\0';
  return g_str_has_prefix (id, "sha256:") && crisp_id_is_valid_len (id + 7, 64);
}

/* One entry per config mount (mount_image_is_valid). Required when the config has an image
 * volume: a record that lost its images is not guessed at, or a RemoveImage could remove an
 * image a running container mounts. */
static gboolean
get_mount_images (JsonObject *o, const Runtime__V1__ContainerConfig *config, char ***out)
{
  JsonNode *n = json_object_get_member (o, "mount_images");
  gboolean needed = FALSE;
  for (gsize i = 0; i < config->n_mounts; i++)
    needed |= is_image_mount (config->mounts[i]);
  *out = NULL;
  if (n == NULL)
    return !needed;
  JsonArray *a = JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
  if (a == NULL || json_array_get_length (a) != config->n_mounts)
    return FALSE;
  g_auto (GStrv) ids = g_new0 (char *, config->n_mounts + 1);
  for (guint i = 0; i < config->n_mounts; i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (!mount_image_is_valid (config->mounts[i], e))
        return FALSE;
      ids[i] = g_strdup (json_node_get_string (e));
    }
  *out = g_steal_pointer (&ids);
  return TRUE;
}

static Runtime__V1__ContainerConfig *
config_from_base64 (const char *text)
{
  if (text == NULL)
    return NULL;
  gsize len = 0;
  g_autofree guint8 *buf = g_base64_decode (text, &len);
  return runtime__v1__container_config__unpack (NULL, len, buf);
}

CrispContainer *
crisp_container_from_json (const char *id, JsonNode *node, GError **error)
{
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "container record is not a JSON object"),
           NULL;
  JsonObject *o = json_node_get_object (node);
  gint64 version = get_int (o, "version");
  /* A newer format is refused by the state version check before any record is read; a record
   * that still claims one is not guessed at. */
  if (version < 1 || version > RECORD_VERSION)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS,
                        "container record has format version %" G_GINT64_FORMAT
                        ", this crisp reads version %d",
                        version, RECORD_VERSION),
           NULL;
  g_autoptr (CrispContainer) c = crisp_container_new ();
  c->id = g_strdup (id);
  c->pod_id = get_string (o, "pod_id");
  c->name = get_string (o, "name");
  c->attempt = (guint32) get_int (o, "attempt");
  g_autofree char *config = get_string (o, "config");
  c->config = config_from_base64 (config);
  g_autofree char *state = get_string (o, "state");
  if (c->pod_id == NULL || c->name == NULL || c->config == NULL || !parse_state (state, &c->state))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "container record is incomplete"), NULL;
  c->image_id = get_string (o, "image_id");
  c->image_ref = get_string (o, "image_ref");
  if (!get_mount_images (o, c->config, &c->mount_images))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS,
                        "container record's mount_images is missing or not one image id (for "
                        "an image volume) or \"\" per mount"),
           NULL;
  c->runtime = get_string (o, "runtime");
  c->runtime_path = get_string (o, "runtime_path");
  c->runtime_root = get_string (o, "runtime_root");
  c->log_path = get_string (o, "log_path");
  c->cgroup_path = get_string (o, "cgroup_path");
  c->stop_signal = get_string (o, "stop_signal");
  c->restore_images = get_string (o, "restore_images");
  if (c->restore_images != NULL && !crisp_path_is_clean (c->restore_images, TRUE))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS,
                        "container record's restore_images is not a clean absolute path"),
           NULL;
  c->created_at = get_int (o, "created_at");
  c->started_at = get_int (o, "started_at");
  c->finished_at = get_int (o, "finished_at");
  c->start_requested_at = get_int (o, "start_requested_at");
  c->exit_code = (int) get_int (o, "exit_code");
  c->oom_killed = get_int (o, "oom_killed") != 0;
  c->reason = get_string (o, "reason");
  c->message = get_string (o, "message");
  c->pid = (int) get_int (o, "pid");
  c->pid_start_time = (guint64) get_int (o, "pid_start_time");
  c->monitor_pid = (int) get_int (o, "monitor_pid");
  c->monitor_start_time = (guint64) get_int (o, "monitor_start_time");
  c->monitor_version = (int) get_int (o, "monitor_version");
  JsonNode *res = json_object_get_member (o, "resources");
  if (res != NULL && JSON_NODE_HOLDS_OBJECT (res))
    c->resources = json_node_copy (res);
  JsonNode *user = json_object_get_member (o, "user");
  if (user != NULL && !crisp_container_set_user (c, user))
    g_warning ("container %s: its record's user is not valid, not reporting it", id);
  if (c->runtime_path == NULL || c->image_id == NULL)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "container record is incomplete"), NULL;
  return g_steal_pointer (&c);
}
