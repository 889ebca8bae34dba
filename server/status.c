/* `crisp status`: asks the running daemon over its CRI socket and prints the answers for a
 * person, or as JSON for scripts. */
#include "config.h"

#include "status.h"

#include "cri-client.h"
#include "proto/runtime.pb-c.h"

#include <stdio.h>
#include <json-glib/json-glib.h>

#define STATUS_TIMEOUT_SECONDS 5

typedef struct
{
  Runtime__V1__VersionResponse *version;
  Runtime__V1__StatusResponse *status;
  Runtime__V1__ListPodSandboxResponse *pods;
  Runtime__V1__ListContainersResponse *containers;
  Runtime__V1__ImageFsInfoResponse *fs;
  GPtrArray *errors; /* one "Method: message" per call that failed */
} Report;

static void
report_clear (Report *r)
{
  ProtobufCMessage *msgs[] = { (ProtobufCMessage *) r->version, (ProtobufCMessage *) r->status,
                               (ProtobufCMessage *) r->pods, (ProtobufCMessage *) r->containers,
                               (ProtobufCMessage *) r->fs };
  for (guint i = 0; i < G_N_ELEMENTS (msgs); i++)
    if (msgs[i] != NULL)
      protobuf_c_message_free_unpacked (msgs[i], NULL);
  g_clear_pointer (&r->errors, g_ptr_array_unref);
}

/* A failed call is recorded and the report goes on without its part. */
static void
ask (CrispCriClient *client, Report *r, const char *name, const ProtobufCMessage *req,
     const ProtobufCMessageDescriptor *desc, void *out)
{
  g_autoptr (GError) error = NULL;
  if (!crisp_cri_client_call (client, name, req, desc, STATUS_TIMEOUT_SECONDS,
                              (ProtobufCMessage **) out, &error))
    g_ptr_array_add (r->errors, g_strdup (error->message));
}

static void
report_gather (CrispCriClient *client, Report *r)
{
  Runtime__V1__VersionRequest version = RUNTIME__V1__VERSION_REQUEST__INIT;
  Runtime__V1__StatusRequest status = RUNTIME__V1__STATUS_REQUEST__INIT;
  Runtime__V1__ListPodSandboxRequest pods = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
  Runtime__V1__ListContainersRequest containers = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
  Runtime__V1__ImageFsInfoRequest fs = RUNTIME__V1__IMAGE_FS_INFO_REQUEST__INIT;
  status.verbose = TRUE;
  version.version = (char *) "v1";
  ask (client, r, "RuntimeService/Version", &version.base,
       &runtime__v1__version_response__descriptor, &r->version);
  ask (client, r, "RuntimeService/Status", &status.base, &runtime__v1__status_response__descriptor,
       &r->status);
  ask (client, r, "RuntimeService/ListPodSandbox", &pods.base,
       &runtime__v1__list_pod_sandbox_response__descriptor, &r->pods);
  ask (client, r, "RuntimeService/ListContainers", &containers.base,
       &runtime__v1__list_containers_response__descriptor, &r->containers);
  ask (client, r, "ImageService/ImageFsInfo", &fs.base,
       &runtime__v1__image_fs_info_response__descriptor, &r->fs);
}

/* Index by state: ready, notready. */
static void
count_pods (const Report *r, guint out[2])
{
  out[0] = out[1] = 0;
  for (size_t i = 0; r->pods != NULL && i < r->pods->n_items; i++)
    out[r->pods->items[i]->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY ? 0 : 1]++;
}

/* Index by state: created, running, exited, unknown (the CRI enum's order). */
static void
count_containers (const Report *r, guint out[4])
{
  out[0] = out[1] = out[2] = out[3] = 0;
  for (size_t i = 0; r->containers != NULL && i < r->containers->n_containers; i++)
    {
      guint s = (guint) r->containers->containers[i]->state;
      out[MIN (s, 3u)]++;
    }
}

static gboolean
report_ready (const Report *r)
{
  if (r->status == NULL || r->status->status == NULL)
    return FALSE;
  guint ready = 0;
  for (size_t i = 0; i < r->status->status->n_conditions; i++)
    {
      const Runtime__V1__RuntimeCondition *c = r->status->status->conditions[i];
      if ((g_str_equal (c->type, "RuntimeReady") || g_str_equal (c->type, "NetworkReady"))
          && c->status)
        ready++;
    }
  return ready == 2;
}

/* Connected, but neither Version nor Status answered: as unreachable as no socket. */
static int
report_exit_status (const Report *r)
{
  if (r->version == NULL && r->status == NULL)
    return 2;
  return report_ready (r) && r->errors->len == 0 ? 0 : 1;
}

static const char *const pod_states[] = { "ready", "notready" };
static const char *const container_states[] = { "created", "running", "exited", "unknown" };

/* An info value is JSON when the daemon made it so; anything else stays a string. */
static JsonNode *
info_value (const char *text)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  if (json_parser_load_from_data (p, text, -1, NULL) && json_parser_get_root (p) != NULL)
    return json_node_copy (json_parser_get_root (p));
  JsonNode *n = json_node_new (JSON_NODE_VALUE);
  json_node_set_string (n, text);
  return n;
}

static void
add_counts (JsonBuilder *b, const char *name, const char *const *states, const guint *n, guint len)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  for (guint i = 0; i < len; i++)
    {
      json_builder_set_member_name (b, states[i]);
      json_builder_add_int_value (b, n[i]);
    }
  json_builder_end_object (b);
}

static void
add_version_json (JsonBuilder *b, const Report *r)
{
  json_builder_set_member_name (b, "version");
  if (r->version == NULL)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "runtimeName");
  json_builder_add_string_value (b, r->version->runtime_name);
  json_builder_set_member_name (b, "runtimeVersion");
  json_builder_add_string_value (b, r->version->runtime_version);
  json_builder_set_member_name (b, "runtimeApiVersion");
  json_builder_add_string_value (b, r->version->runtime_api_version);
  json_builder_end_object (b);
}

static void
add_conditions_json (JsonBuilder *b, const Report *r)
{
  json_builder_set_member_name (b, "conditions");
  json_builder_begin_array (b);
  for (size_t i = 0; r->status && r->status->status && i < r->status->status->n_conditions; i++)
    {
      const Runtime__V1__RuntimeCondition *c = r->status->status->conditions[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, c->type);
      json_builder_set_member_name (b, "status");
      json_builder_add_boolean_value (b, c->status);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, c->reason);
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, c->message);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "info");
  json_builder_begin_object (b);
  for (size_t i = 0; r->status != NULL && i < r->status->n_info; i++)
    {
      json_builder_set_member_name (b, r->status->info[i]->key);
      json_builder_add_value (b, info_value (r->status->info[i]->value));
    }
  json_builder_end_object (b);
}

static void
add_fs_json (JsonBuilder *b, const Report *r)
{
  json_builder_set_member_name (b, "imageFilesystems");
  json_builder_begin_array (b);
  for (size_t i = 0; r->fs != NULL && i < r->fs->n_image_filesystems; i++)
    {
      const Runtime__V1__FilesystemUsage *u = r->fs->image_filesystems[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "mountpoint");
      json_builder_add_string_value (b, u->fs_id ? u->fs_id->mountpoint : "");
      json_builder_set_member_name (b, "usedBytes");
      json_builder_add_int_value (b, u->used_bytes ? (gint64) u->used_bytes->value : 0);
      json_builder_set_member_name (b, "inodesUsed");
      json_builder_add_int_value (b, u->inodes_used ? (gint64) u->inodes_used->value : 0);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static void
print_json (const char *socket_path, const Report *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  guint pods[2], containers[4];
  count_pods (r, pods);
  count_containers (r, containers);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "socket");
  json_builder_add_string_value (b, socket_path);
  json_builder_set_member_name (b, "ready");
  json_builder_add_boolean_value (b, report_ready (r));
  add_version_json (b, r);
  add_conditions_json (b, r);
  add_counts (b, "pods", pod_states, pods, 2);
  add_counts (b, "containers", container_states, containers, 4);
  add_fs_json (b, r);
  json_builder_set_member_name (b, "errors");
  json_builder_begin_array (b);
  for (guint i = 0; i < r->errors->len; i++)
    json_builder_add_string_value (b, r->errors->pdata[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = json_to_string (root, TRUE);
  printf ("%s\n", text);
}

static void
print_conditions (const Report *r)
{
  for (size_t i = 0; r->status && r->status->status && i < r->status->status->n_conditions; i++)
    {
      const Runtime__V1__RuntimeCondition *c = r->status->status->conditions[i];
      printf ("%-14s %s", c->type, c->status ? "true" : "false");
      if (!c->status)
        printf ("  %s: %s", c->reason, c->message);
      printf ("\n");
    }
}

/* Shown in sections of their own (or, for "config", by `crisp config`). */
static gboolean
info_has_section (const char *key)
{
  return g_str_equal (key, "config") || g_str_equal (key, "monitors")
         || g_str_equal (key, "recentErrors");
}

/* The info map but the keys with a section, one compact line each. */
static void
print_info (const Report *r)
{
  for (size_t i = 0; r->status != NULL && i < r->status->n_info; i++)
    {
      const Runtime__V1__StatusResponse__InfoEntry *e = r->status->info[i];
      if (info_has_section (e->key))
        continue;
      if (g_str_equal (e->key, "uptime"))
        printf ("%-14s %s s\n", e->key, e->value);
      else
        printf ("%-14s %s\n", e->key, e->value);
    }
}

/* The info value under key parsed, when it is a JSON array. */
static JsonArray *
info_array (const Report *r, const char *key, JsonNode **out_root)
{
  for (size_t i = 0; r->status != NULL && i < r->status->n_info; i++)
    if (g_str_equal (r->status->info[i]->key, key))
      {
        JsonNode *n = info_value (r->status->info[i]->value);
        if (JSON_NODE_HOLDS_ARRAY (n))
          return *out_root = n, json_node_get_array (n);
        json_node_unref (n);
      }
  return NULL;
}

/* Element i of a, when it is an object. */
static JsonObject *
object_at (JsonArray *a, guint i)
{
  JsonNode *n = json_array_get_element (a, i);
  return JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

/* s for a terminal: control characters (which a request may have put in a message) escaped. */
static char *
printable (const char *s)
{
  g_autofree char *valid = g_utf8_make_valid (s, -1);
  GString *out = g_string_new (NULL);
  for (const char *p = valid; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (g_unichar_iscntrl (c))
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

static void
print_monitor (JsonObject *m)
{
  gboolean alive = json_object_get_boolean_member_with_default (m, "alive", FALSE);
  g_autofree char *id
      = printable (json_object_get_string_member_with_default (m, "containerId", "?"));
  printf ("  %.13s  pid %-7" G_GINT64_FORMAT "  %s", id,
          json_object_get_int_member_with_default (m, "pid", 0), alive ? "alive" : "not alive");
  if (alive)
    {
      gint64 rss = json_object_get_int_member_with_default (m, "rssBytes", 0);
      g_autofree char *size = g_format_size ((guint64) MAX (rss, 0));
      printf ("  rss %s", size);
    }
  printf ("\n");
}

static void
print_monitors (const Report *r)
{
  g_autoptr (JsonNode) root = NULL;
  JsonArray *a = info_array (r, "monitors", &root);
  if (a == NULL)
    return;
  guint n = json_array_get_length (a), alive = 0;
  for (guint i = 0; i < n; i++)
    alive += object_at (a, i) != NULL
             && json_object_get_boolean_member_with_default (object_at (a, i), "alive", FALSE);
  printf ("%-14s %u, %u alive\n", "monitors", n, alive);
  for (guint i = 0; i < n; i++)
    if (object_at (a, i) != NULL)
      print_monitor (object_at (a, i));
}

static void
print_recent_error (JsonObject *e)
{
  const char *keys[] = { "time", "method", "code", "message" };
  char *v[G_N_ELEMENTS (keys)];
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    v[i] = printable (json_object_get_string_member_with_default (e, keys[i], ""));
  printf ("  %s  %s  %s: %s\n", v[0], v[1], v[2], v[3]);
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    g_free (v[i]);
}

static void
print_recent_errors (const Report *r)
{
  g_autoptr (JsonNode) root = NULL;
  JsonArray *a = info_array (r, "recentErrors", &root);
  if (a == NULL)
    return;
  guint n = json_array_get_length (a);
  printf ("%-14s %u%s\n", "recent errors", n, n ? ", newest first" : "");
  for (guint i = 0; i < n; i++)
    if (object_at (a, i) != NULL)
      print_recent_error (object_at (a, i));
}

static void
print_text (const char *socket_path, const Report *r)
{
  guint pods[2], containers[4];
  count_pods (r, pods);
  count_containers (r, containers);
  if (r->version != NULL)
    printf ("%s %s (CRI %s) on unix://%s\n", r->version->runtime_name, r->version->runtime_version,
            r->version->runtime_api_version, socket_path);
  print_conditions (r);
  if (r->pods != NULL)
    printf ("%-14s %u ready, %u notready\n", "pods", pods[0], pods[1]);
  if (r->containers != NULL)
    printf ("%-14s %u created, %u running, %u exited, %u unknown\n", "containers", containers[0],
            containers[1], containers[2], containers[3]);
  for (size_t i = 0; r->fs != NULL && i < r->fs->n_image_filesystems; i++)
    {
      const Runtime__V1__FilesystemUsage *u = r->fs->image_filesystems[i];
      printf ("%-14s %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " inodes used on %s\n",
              "image fs", u->used_bytes ? u->used_bytes->value : 0,
              u->inodes_used ? u->inodes_used->value : 0, u->fs_id ? u->fs_id->mountpoint : "?");
    }
  print_info (r);
  print_monitors (r);
  print_recent_errors (r);
  for (guint i = 0; i < r->errors->len; i++)
    printf ("error: %s\n", (char *) r->errors->pdata[i]);
}

int
crisp_status_main (const char *socket_path, gboolean json)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispCriClient) client = crisp_cri_client_new (socket_path, &error);
  if (client == NULL)
    {
      g_printerr ("crisp: %s\n", error->message);
      return 2;
    }
  Report r = { .errors = g_ptr_array_new_with_free_func (g_free) };
  report_gather (client, &r);
  int rc = report_exit_status (&r);
  if (rc == 2)
    g_printerr ("crisp: %s\n", (char *) r.errors->pdata[0]);
  else if (json)
    print_json (socket_path, &r);
  else
    print_text (socket_path, &r);
  report_clear (&r);
  return rc;
}
