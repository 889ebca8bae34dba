/* Unit tests for pkg/container without root: the record on disk (round trips, corrupt records),
 * CreateContainer request checks and the spec written into the bundle, state transitions from
 * the monitor's exit file, the CRI status and list items, and lookups by id prefix. */
#include "config.h"

#include "pkg/container/container-private.h"
#include "pkg/container/pod-metrics.h"

#include "crisp-base.h"
#include "monitor-protocol.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#define ID_A "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define ID_B "a1ffc3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define POD_ID "5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d"
#define IMAGE_ID "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct
{
  char *dir;
  CrispContainerService svc; /* only the parts these tests touch: tables, store, run_dir */
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("crisp-test-container-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *root = g_build_filename (f->dir, "containers", NULL);
  f->svc.store = crisp_store_open (root, &error);
  g_assert_no_error (error);
  f->svc.run_dir = g_build_filename (f->dir, "run", NULL);
  g_assert_cmpint (g_mkdir (f->svc.run_dir, 0700), ==, 0);
  g_mutex_init (&f->svc.lock);
  f->svc.by_id = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) crisp_container_unref);
  f->svc.names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  f->svc.cgroup_driver = CRISP_CGROUP_DRIVER_CGROUPFS;
  f->svc.config = crisp_config_new ();
  f->svc.host = (CrispOciHost){ .cgroup_mode = CRISP_CGROUP_MODE_HYBRID,
                                .cap_last_cap = 40,
                                .cap_bounding = G_MAXUINT64 };
}

static void
teardown (Fixture *f, gconstpointer data)
{
  g_hash_table_unref (f->svc.by_id);
  g_hash_table_unref (f->svc.names);
  crisp_store_free (f->svc.store);
  crisp_config_free ((CrispConfig *) f->svc.config);
  g_free (f->svc.run_dir);
  g_mutex_clear (&f->svc.lock);
  g_assert_cmpint (crisp_store_rm_rf_at (AT_FDCWD, f->dir), ==, 0);
  g_free (f->dir);
}

/* A request's container config, on the stack: strings are borrowed literals. */
typedef struct
{
  Runtime__V1__ContainerConfig config;
  Runtime__V1__ContainerMetadata metadata;
  Runtime__V1__ImageSpec image;
  Runtime__V1__ContainerConfig__LabelsEntry label, *labels[1];
  Runtime__V1__ContainerConfig__AnnotationsEntry annotation, *annotations[1];
  Runtime__V1__Mount mount, *mounts[1];
  Runtime__V1__LinuxContainerConfig linux_config;
  Runtime__V1__LinuxContainerResources resources;
} Config;

static void
config_init (Config *k)
{
  runtime__v1__container_config__init (&k->config);
  runtime__v1__container_metadata__init (&k->metadata);
  runtime__v1__image_spec__init (&k->image);
  runtime__v1__container_config__labels_entry__init (&k->label);
  runtime__v1__container_config__annotations_entry__init (&k->annotation);
  runtime__v1__mount__init (&k->mount);
  runtime__v1__linux_container_config__init (&k->linux_config);
  runtime__v1__linux_container_resources__init (&k->resources);
  k->metadata.name = (char *) "web";
  k->metadata.attempt = 2;
  k->image.image = (char *) "example.com/web:1";
  k->label.key = (char *) "app";
  k->label.value = (char *) "web";
  k->labels[0] = &k->label;
  k->annotation.key = (char *) "note";
  k->annotation.value = (char *) "x";
  k->annotations[0] = &k->annotation;
  k->mount.container_path = (char *) "/data";
  k->mount.host_path = (char *) "/srv/data";
  k->mounts[0] = &k->mount;
  k->resources.memory_limit_in_bytes = 64 << 20;
  k->linux_config.resources = &k->resources;
  k->config.metadata = &k->metadata;
  k->config.image = &k->image;
  k->config.n_labels = 1;
  k->config.labels = k->labels;
  k->config.n_annotations = 1;
  k->config.annotations = k->annotations;
  k->config.n_mounts = 1;
  k->config.mounts = k->mounts;
  k->config.linux = &k->linux_config;
  k->config.log_path = (char *) "web/2.log";
  k->config.tty = TRUE;
}

/* A container as CreateContainer leaves it, with every field set. */
static CrispContainer *
make_container (const char *id, const char *pod_id)
{
  Config k;
  config_init (&k);
  CrispContainer *c = crisp_container_new ();
  c->id = g_strdup (id);
  c->pod_id = g_strdup (pod_id);
  c->name = g_strdup ("web");
  c->attempt = 2;
  c->config = crisp_proto_dup (&k.config.base);
  c->image_id = g_strdup (IMAGE_ID);
  c->image_ref = g_strdup ("example.com/web@sha256:feed");
  c->runtime = g_strdup ("runc");
  c->runtime_path = g_strdup ("/usr/sbin/runc");
  c->runtime_root = g_strdup ("/run/crisp/runc");
  c->log_path = g_strdup ("/var/log/pods/p/web/2.log");
  c->cgroup_path = g_strdup ("/kubepods/pod1/" ID_A);
  c->stop_signal = g_strdup ("15");
  c->state = CRISP_CONTAINER_RUNNING;
  c->created_at = 1700000000000000001;
  c->started_at = 1700000000000000002;
  c->pid = 4242;
  c->pid_start_time = 123456;
  c->monitor_pid = 4241;
  c->monitor_start_time = 123450;
  c->monitor_version = 1;
  return c;
}

/* The same container after the kernel's OOM killer ended it. */
static CrispContainer *
make_oom_killed (const char *id)
{
  CrispContainer *c = make_container (id, POD_ID);
  c->state = CRISP_CONTAINER_EXITED;
  c->finished_at = 1700000000000000003;
  c->exit_code = 137;
  c->oom_killed = TRUE;
  c->reason = g_strdup ("OOMKilled");
  return c;
}

static void
assert_same_config (const Runtime__V1__ContainerConfig *a, const Runtime__V1__ContainerConfig *b)
{
  gsize la = protobuf_c_message_get_packed_size (&a->base);
  gsize lb = protobuf_c_message_get_packed_size (&b->base);
  g_autofree guint8 *pa = g_malloc (la + 1);
  g_autofree guint8 *pb = g_malloc (lb + 1);
  protobuf_c_message_pack (&a->base, pa);
  protobuf_c_message_pack (&b->base, pb);
  g_assert_cmpmem (pa, la, pb, lb);
}

/* Saves c through the store and reads it back as start-up does. */
static CrispContainer *
save_and_load (Fixture *f, CrispContainer *c, GError **error)
{
  g_autoptr (JsonNode) node = crisp_container_to_json (c);
  g_assert_true (crisp_store_save (f->svc.store, c->id, "container.json", node, error));
  g_autoptr (JsonNode) back = crisp_store_load (f->svc.store, c->id, "container.json", error);
  g_assert_nonnull (back);
  return crisp_container_from_json (c->id, back, error);
}

static void
test_record_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispContainer) c = make_oom_killed (ID_A);
  c->message = g_strdup ("out of memory");
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (
      json_parser_load_from_data (p, "{\"linux\":{\"memoryLimitInBytes\":1}}", -1, NULL));
  c->resources = json_node_copy (json_parser_get_root (p));

  g_autoptr (CrispContainer) back = save_and_load (f, c, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->id, ==, ID_A);
  g_assert_cmpstr (back->pod_id, ==, POD_ID);
  g_assert_cmpstr (back->name, ==, "web");
  g_assert_cmpuint (back->attempt, ==, 2);
  assert_same_config (back->config, c->config);
  g_assert_cmpstr (back->image_id, ==, c->image_id);
  g_assert_cmpstr (back->image_ref, ==, c->image_ref);
  g_assert_cmpstr (back->runtime, ==, "runc");
  g_assert_cmpstr (back->runtime_path, ==, "/usr/sbin/runc");
  g_assert_cmpstr (back->runtime_root, ==, "/run/crisp/runc");
  g_assert_cmpstr (back->log_path, ==, c->log_path);
  g_assert_cmpstr (back->cgroup_path, ==, c->cgroup_path);
  g_assert_cmpstr (back->stop_signal, ==, "15");
  g_assert_cmpint (back->state, ==, CRISP_CONTAINER_EXITED);
  g_assert_cmpint (back->created_at, ==, c->created_at);
  g_assert_cmpint (back->started_at, ==, c->started_at);
  g_assert_cmpint (back->finished_at, ==, c->finished_at);
  g_assert_cmpint (back->exit_code, ==, 137);
  g_assert_true (back->oom_killed);
  g_assert_cmpstr (back->reason, ==, "OOMKilled");
  g_assert_cmpstr (back->message, ==, "out of memory");
  g_assert_cmpint (back->pid, ==, 4242);
  g_assert_cmpuint (back->pid_start_time, ==, 123456);
  g_assert_cmpint (back->monitor_pid, ==, 4241);
  g_assert_cmpuint (back->monitor_start_time, ==, 123450);
  g_assert_cmpint (back->monitor_version, ==, 1);
  g_assert_nonnull (back->resources);
  g_assert_true (json_node_equal (back->resources, c->resources));
}

/* Optional fields may be absent; each state is written and read back as itself. */
static void
test_record_every_state (Fixture *f, gconstpointer data)
{
  const CrispContainerState states[]
      = { CRISP_CONTAINER_CREATING, CRISP_CONTAINER_CREATED, CRISP_CONTAINER_RUNNING,
          CRISP_CONTAINER_EXITED, CRISP_CONTAINER_REMOVING };
  for (gsize i = 0; i < G_N_ELEMENTS (states); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
      g_clear_pointer (&c->image_ref, g_free);
      g_clear_pointer (&c->log_path, g_free);
      g_clear_pointer (&c->runtime_root, g_free);
      c->state = states[i];
      g_autoptr (CrispContainer) back = save_and_load (f, c, &error);
      g_assert_no_error (error);
      g_assert_cmpint (back->state, ==, states[i]);
      g_assert_null (back->image_ref);
      g_assert_null (back->log_path);
      g_assert_null (back->runtime_root);
      g_assert_null (back->resources);
    }
}

/* The record of make_container, edited by fn, parsed again. */
static CrispContainer *
parse_edited (void (*fn) (JsonObject *o, const char *member), const char *member, GError **error)
{
  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  g_autoptr (JsonNode) node = crisp_container_to_json (c);
  fn (json_node_get_object (node), member);
  return crisp_container_from_json (ID_A, node, error);
}

static void
remove_member (JsonObject *o, const char *member)
{
  json_object_remove_member (o, member);
}

static void
set_to_array (JsonObject *o, const char *member)
{
  json_object_set_array_member (o, member, json_array_new ());
}

static void
set_to_string (JsonObject *o, const char *member)
{
  json_object_set_string_member (o, member, "2");
}

static void
set_to_int (JsonObject *o, const char *member)
{
  json_object_set_int_member (o, member, 2);
}

static void
set_to_junk_config (JsonObject *o, const char *member)
{
  json_object_set_string_member (o, member, "/////w=="); /* 0xffffffff: no valid tag */
}

static void
set_to_unknown_state (JsonObject *o, const char *member)
{
  json_object_set_string_member (o, member, "paused");
}

static const char *const required[]
    = { "version", "pod_id", "name", "config", "state", "runtime_path", "image_id" };

static gboolean
is_required (const char *member)
{
  return g_strv_contains (required, member);
}

/* A record missing a member it cannot do without, or holding one of the wrong type, is
 * DATA_LOSS (start-up then quarantines it); any other member is optional. */
static void
test_record_missing_or_mistyped_members (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  g_autoptr (JsonNode) node = crisp_container_to_json (c);
  g_autoptr (GList) members = json_object_get_members (json_node_get_object (node));
  void (*edits[]) (JsonObject *, const char *) = { remove_member, set_to_array, set_to_string };
  for (GList *l = members; l; l = l->next)
    for (gsize e = 0; e < G_N_ELEMENTS (edits); e++)
      {
        const char *member = l->data;
        /* Strings stay strings: their wrong type is an array. */
        if (edits[e] == set_to_string
            && json_node_get_value_type (
                   json_object_get_member (json_node_get_object (node), member))
                   == G_TYPE_STRING)
          continue;
        g_autoptr (GError) error = NULL;
        g_autoptr (CrispContainer) back = parse_edited (edits[e], member, &error);
        if (is_required (member))
          {
            g_assert_null (back);
            g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
          }
        else
          {
            g_assert_no_error (error);
            g_assert_nonnull (back);
          }
      }
}

static void
assert_data_loss (void (*fn) (JsonObject *o, const char *member), const char *member)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispContainer) back = parse_edited (fn, member, &error);
  g_assert_null (back);
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
}

static void
test_record_bad_values (Fixture *f, gconstpointer data)
{
  assert_data_loss (set_to_junk_config, "config");
  assert_data_loss (set_to_unknown_state, "state");
  assert_data_loss (set_to_int, "state");
  assert_data_loss (set_to_int, "pod_id");
  assert_data_loss (set_to_string, "version");
  /* A record of a newer format is refused, never read as the one this build knows. */
  assert_data_loss (set_to_int, "version");
}

#define VOLUME_ID "sha256:abababababababababababababababababababababababababababababababab"

/* make_container whose one mount is an image volume. */
static CrispContainer *
make_with_image_volume (void)
{
  CrispContainer *c = make_container (ID_A, POD_ID);
  Config k;
  config_init (&k);
  Runtime__V1__ImageSpec volume = RUNTIME__V1__IMAGE_SPEC__INIT;
  volume.image = (char *) "example.com/data:1";
  k.mount.host_path = (char *) "";
  k.mount.image = &volume;
  protobuf_c_message_free_unpacked (&c->config->base, NULL);
  c->config = crisp_proto_dup (&k.config.base);
  char *ids[] = { (char *) VOLUME_ID, NULL };
  c->mount_images = g_strdupv (ids);
  return c;
}

static void
set_mount_images (JsonObject *o, const char *value)
{
  JsonArray *a = json_array_new ();
  json_array_add_string_element (a, value);
  json_object_set_array_member (o, "mount_images", a);
}

/* The images of a container's image volumes are kept in use across a restart: a record whose
 * config has one must name it, or it is DATA_LOSS. */
static void
test_record_mount_images (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispContainer) c = make_with_image_volume ();
  g_autoptr (CrispContainer) back = save_and_load (f, c, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->mount_images[0], ==, VOLUME_ID);
  g_assert_null (back->mount_images[1]);
  g_assert_true (crisp_container_uses_image (back, VOLUME_ID));
  g_assert_true (crisp_container_uses_image (back, IMAGE_ID));
  g_assert_false (crisp_container_uses_image (back, "sha256:feed"));
  const char *bad[] = { NULL, "", "sha256:feed", "example.com/data:1" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (JsonNode) node = crisp_container_to_json (c);
      JsonObject *o = json_node_get_object (node);
      if (bad[i] == NULL)
        json_object_remove_member (o, "mount_images");
      else
        set_mount_images (o, bad[i]);
      g_autoptr (GError) local = NULL;
      g_autoptr (CrispContainer) none = crisp_container_from_json (ID_A, node, &local);
      g_assert_null (none);
      g_assert_error (local, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
    }
  /* A plain bind has no image: "" is its entry, and the member may be absent. */
  g_autoptr (CrispContainer) plain = make_container (ID_A, POD_ID);
  g_assert_null (plain->mount_images);
  g_autoptr (JsonNode) node = crisp_container_to_json (plain);
  set_mount_images (json_node_get_object (node), VOLUME_ID);
  g_autoptr (CrispContainer) wrong = crisp_container_from_json (ID_A, node, &error);
  g_assert_null (wrong);
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
}

/* A record cut short by a crash is never parsed as a smaller container. */
static void
test_record_truncated (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  g_autoptr (JsonNode) node = crisp_container_to_json (c);
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_store_save (f->svc.store, ID_A, "container.json", node, &error));
  g_autofree char *dir = crisp_store_object_path (f->svc.store, ID_A);
  g_autofree char *path = g_build_filename (dir, "container.json", NULL);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &text, &len, NULL));
  for (gsize cut = 0; cut < len; cut += 7)
    {
      g_autoptr (GError) local = NULL;
      g_assert_true (g_file_set_contents (path, text, (gssize) cut, NULL));
      g_autoptr (JsonNode) back = crisp_store_load (f->svc.store, ID_A, "container.json", &local);
      g_assert_null (back);
      g_assert_error (local, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
    }
}

/* CRI states: the transient ones are UNKNOWN to the kubelet. */
static void
test_status_state_mapping (void)
{
  g_assert_cmpint (crisp_container_cri_state (CRISP_CONTAINER_CREATED), ==,
                   RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED);
  g_assert_cmpint (crisp_container_cri_state (CRISP_CONTAINER_RUNNING), ==,
                   RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING);
  g_assert_cmpint (crisp_container_cri_state (CRISP_CONTAINER_EXITED), ==,
                   RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
  g_assert_cmpint (crisp_container_cri_state (CRISP_CONTAINER_CREATING), ==,
                   RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN);
  g_assert_cmpint (crisp_container_cri_state (CRISP_CONTAINER_REMOVING), ==,
                   RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN);
  g_assert_cmpstr (crisp_container_state_to_string (CRISP_CONTAINER_REMOVING), ==, "removing");
}

static void
free_message (gpointer m)
{
  protobuf_c_message_free_unpacked (m, NULL);
}

/* The "info" entry of a verbose status, parsed. */
static JsonObject *
status_info (Runtime__V1__ContainerStatusResponse *resp, JsonParser *p)
{
  g_assert_cmpuint (resp->n_info, ==, 1);
  g_assert_cmpstr (resp->info[0]->key, ==, "info");
  g_assert_true (json_parser_load_from_data (p, resp->info[0]->value, -1, NULL));
  return json_node_get_object (json_parser_get_root (p));
}

static void
test_status_running (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  c->exit_code = 3; /* stale facts of a running container are not reported */
  c->finished_at = 99;
  c->reason = g_strdup ("Error");
  Runtime__V1__ContainerStatusResponse *resp = crisp_container_build_status (&f->svc, c, TRUE);
  Runtime__V1__ContainerStatus *st = resp->status;
  g_assert_cmpstr (st->id, ==, ID_A);
  g_assert_cmpint (st->state, ==, RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING);
  g_assert_cmpstr (st->metadata->name, ==, "web");
  g_assert_cmpuint (st->metadata->attempt, ==, 2);
  g_assert_cmpstr (st->image->image, ==, "example.com/web:1");
  g_assert_cmpstr (st->image_ref, ==, "example.com/web@sha256:feed");
  g_assert_cmpstr (st->image_id, ==, IMAGE_ID);
  g_assert_cmpint (st->created_at, ==, c->created_at);
  g_assert_cmpint (st->started_at, ==, c->started_at);
  g_assert_cmpint (st->finished_at, ==, 0);
  g_assert_cmpint (st->exit_code, ==, 0);
  g_assert_cmpstr (st->reason, ==, "");
  g_assert_cmpstr (st->message, ==, "");
  g_assert_cmpuint (st->n_labels, ==, 1);
  g_assert_cmpstr (st->labels[0]->key, ==, "app");
  g_assert_cmpstr (st->labels[0]->value, ==, "web");
  g_assert_cmpuint (st->n_annotations, ==, 1);
  g_assert_cmpstr (st->annotations[0]->key, ==, "note");
  g_assert_cmpuint (st->n_mounts, ==, 1);
  g_assert_cmpstr (st->mounts[0]->container_path, ==, "/data");
  g_assert_cmpstr (st->log_path, ==, c->log_path);
  g_assert_nonnull (st->resources);
  g_assert_cmpint (st->resources->linux->memory_limit_in_bytes, ==, 64 << 20);
  g_autoptr (JsonParser) p = json_parser_new ();
  JsonObject *info = status_info (resp, p);
  g_assert_cmpint (json_object_get_int_member (info, "pid"), ==, 4242);
  g_assert_cmpstr (json_object_get_string_member (info, "sandboxID"), ==, POD_ID);
  g_assert_cmpstr (json_object_get_string_member (info, "state"), ==, "running");
  free_message (resp);
}

static void
test_status_exited (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispContainer) c = make_oom_killed (ID_A);
  g_clear_pointer (&c->image_ref, g_free);
  g_clear_pointer (&c->log_path, g_free);
  protobuf_c_message_free_unpacked (&c->config->linux->resources->base, NULL);
  c->config->linux->resources = NULL;
  Runtime__V1__ContainerStatusResponse *resp = crisp_container_build_status (&f->svc, c, FALSE);
  Runtime__V1__ContainerStatus *st = resp->status;
  g_assert_cmpint (st->state, ==, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
  g_assert_cmpint (st->exit_code, ==, 137);
  g_assert_cmpint (st->finished_at, ==, 1700000000000000003);
  g_assert_cmpstr (st->reason, ==, "OOMKilled");
  g_assert_cmpstr (st->image_ref, ==, "");
  g_assert_cmpstr (st->log_path, ==, "");
  g_assert_null (st->resources);
  g_assert_cmpuint (resp->n_info, ==, 0);
  free_message (resp);
}

static void
test_status_list_item (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  c->state = CRISP_CONTAINER_CREATED;
  Runtime__V1__Container *item = crisp_container_build_item (&f->svc, c);
  g_assert_cmpstr (item->id, ==, ID_A);
  g_assert_cmpstr (item->pod_sandbox_id, ==, POD_ID);
  g_assert_cmpint (item->state, ==, RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED);
  g_assert_cmpstr (item->metadata->name, ==, "web");
  g_assert_cmpstr (item->image->image, ==, "example.com/web:1");
  g_assert_cmpstr (item->image_id, ==, IMAGE_ID);
  g_assert_cmpuint (item->n_labels, ==, 1);
  g_assert_cmpstr (item->labels[0]->value, ==, "web");
  g_assert_cmpuint (item->n_annotations, ==, 1);
  g_assert_cmpstr (item->annotations[0]->value, ==, "x");
  free_message (item);
}

/* Writes the monitor's exit file for container id. */
static void
write_exit_file (Fixture *f, const char *id, const char *text)
{
  g_autofree char *dir = crisp_container_run_path (&f->svc, id, "monitor");
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_autofree char *path = g_build_filename (dir, CRISP_MONITOR_FILE_EXIT, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
assert_exit_read (Fixture *f, const char *text, int code, gboolean oom, const char *reason)
{
  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  write_exit_file (f, ID_A, text);
  g_assert_true (crisp_container_read_exit (&f->svc, c));
  g_assert_cmpint (c->state, ==, CRISP_CONTAINER_EXITED);
  g_assert_cmpint (c->exit_code, ==, code);
  g_assert_cmpint (c->oom_killed, ==, oom);
  g_assert_cmpstr (c->reason, ==, reason);
}

static void
test_transition_exit_reasons (Fixture *f, gconstpointer data)
{
  assert_exit_read (f, "version=1\nstatus=0\nexited_at_ns=5\n", 0, FALSE, "Completed");
  assert_exit_read (f, "version=1\nstatus=1\nexited_at_ns=5\noom_killed=0\n", 1, FALSE, "Error");
  assert_exit_read (f, "version=1\nstatus=137\nsignal=9\noom_killed=1\n", 137, TRUE, "OOMKilled");

  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  write_exit_file (f, ID_A, "version=1\nstatus=2\nexited_at_ns=77\nfuture_key=1\n");
  g_assert_true (crisp_container_read_exit (&f->svc, c));
  g_assert_cmpint (c->finished_at, ==, 77);
}

/* No exit file, or one without a status (being written), changes nothing. */
static void
test_transition_no_exit_yet (Fixture *f, gconstpointer data)
{
  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  g_assert_false (crisp_container_read_exit (&f->svc, c));
  write_exit_file (f, ID_A, "version=1\nexited_at_ns=5\n");
  g_assert_false (crisp_container_read_exit (&f->svc, c));
  write_exit_file (f, ID_A, "");
  g_assert_false (crisp_container_read_exit (&f->svc, c));
  g_assert_cmpint (c->state, ==, CRISP_CONTAINER_RUNNING);
  g_assert_cmpint (c->exit_code, ==, 0);
  g_assert_null (c->reason);
}

static CrispContainerState
saved_state (Fixture *f, const char *id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = crisp_store_load (f->svc.store, id, "container.json", &error);
  g_assert_no_error (error);
  g_autoptr (CrispContainer) c = crisp_container_from_json (id, node, &error);
  g_assert_no_error (error);
  return c->state;
}

/* A live container that exited becomes EXITED in memory and on disk. */
static void
test_transition_refresh_saves_exit (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
  g_assert_true (crisp_container_save (&f->svc, c, &error));
  crisp_container_refresh (&f->svc, c);
  g_assert_cmpint (c->state, ==, CRISP_CONTAINER_RUNNING);
  g_assert_cmpint (saved_state (f, ID_A), ==, CRISP_CONTAINER_RUNNING);

  write_exit_file (f, ID_A, "version=1\nstatus=143\nexited_at_ns=10\n");
  crisp_container_refresh (&f->svc, c);
  g_assert_cmpint (c->state, ==, CRISP_CONTAINER_EXITED);
  g_assert_cmpint (c->exit_code, ==, 143);
  g_assert_cmpint (saved_state (f, ID_A), ==, CRISP_CONTAINER_EXITED);
}

/* Only CREATED and RUNNING read the exit file: an exit is final, and the transient states
 * belong to the call in progress. */
static void
test_transition_refresh_only_live (Fixture *f, gconstpointer data)
{
  const CrispContainerState states[]
      = { CRISP_CONTAINER_EXITED, CRISP_CONTAINER_CREATING, CRISP_CONTAINER_REMOVING };
  write_exit_file (f, ID_A, "version=1\nstatus=9\nexited_at_ns=10\n");
  for (gsize i = 0; i < G_N_ELEMENTS (states); i++)
    {
      g_autoptr (CrispContainer) c = make_container (ID_A, POD_ID);
      c->state = states[i];
      c->exit_code = 1;
      crisp_container_refresh (&f->svc, c);
      g_assert_cmpint (c->state, ==, states[i]);
      g_assert_cmpint (c->exit_code, ==, 1);
    }
  g_autoptr (CrispContainer) created = make_container (ID_A, POD_ID);
  created->state = CRISP_CONTAINER_CREATED;
  crisp_container_refresh (&f->svc, created);
  g_assert_cmpint (created->state, ==, CRISP_CONTAINER_EXITED);
  g_assert_cmpint (created->exit_code, ==, 9);
}

static void
remember_new (Fixture *f, const char *id, const char *pod_id)
{
  g_autoptr (CrispContainer) c = make_container (id, pod_id);
  g_mutex_lock (&f->svc.lock);
  crisp_container_remember (&f->svc, c);
  g_mutex_unlock (&f->svc.lock);
}

static void
assert_lookup_fails (Fixture *f, const char *id, int code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispContainer) c = crisp_container_lookup (&f->svc, id, &error);
  g_assert_null (c);
  g_assert_error (error, CRISP_ERROR, code);
}

static void
test_lookup_by_prefix (Fixture *f, gconstpointer data)
{
  remember_new (f, ID_A, POD_ID);
  remember_new (f, ID_B, "other");
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispContainer) full = crisp_container_lookup (&f->svc, ID_A, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (full->id, ==, ID_A);
  g_autoptr (CrispContainer) prefix = crisp_container_lookup (&f->svc, "a1ff", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (prefix->id, ==, ID_B);
  assert_lookup_fails (f, "a1", CRISP_ERROR_INVALID_ARGUMENT); /* ambiguous */
  assert_lookup_fails (f, "", CRISP_ERROR_INVALID_ARGUMENT);
  assert_lookup_fails (f, NULL, CRISP_ERROR_INVALID_ARGUMENT);
  assert_lookup_fails (f, "b", CRISP_ERROR_NOT_FOUND);

  g_autoptr (GPtrArray) of_pod = crisp_container_snapshot (&f->svc, POD_ID);
  g_assert_cmpuint (of_pod->len, ==, 1);
  g_autoptr (GPtrArray) all = crisp_container_snapshot (&f->svc, NULL);
  g_assert_cmpuint (all->len, ==, 2);
  g_assert_true (crisp_container_service_image_in_use (&f->svc, IMAGE_ID));

  crisp_container_forget (&f->svc, full);
  assert_lookup_fails (f, ID_A, CRISP_ERROR_NOT_FOUND);
  g_autofree char *key = crisp_container_name_key (POD_ID, "web", 2);
  g_assert_false (g_hash_table_contains (f->svc.names, key));
}

static void
assert_request_invalid (const Runtime__V1__CreateContainerRequest *req, const char *field)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (crisp_container_validate_request (req, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, field));
}

static void
test_request_validation (void)
{
  Config k;
  config_init (&k);
  Runtime__V1__CreateContainerRequest req = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
  req.pod_sandbox_id = (char *) POD_ID;
  req.config = &k.config;
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_container_validate_request (&req, &error));
  g_assert_no_error (error);

  req.pod_sandbox_id = (char *) "";
  assert_request_invalid (&req, "pod_sandbox_id");
  req.pod_sandbox_id = (char *) POD_ID;
  req.config = NULL;
  assert_request_invalid (&req, "config");
  req.config = &k.config;
  k.config.metadata = NULL;
  assert_request_invalid (&req, "config.metadata.name");
  k.config.metadata = &k.metadata;
  k.metadata.name = (char *) "a/b";
  assert_request_invalid (&req, "config.metadata.name");
  g_autofree char *long_name = g_strnfill (254, 'n');
  k.metadata.name = long_name;
  assert_request_invalid (&req, "config.metadata.name");
  k.metadata.name = (char *) "web";
  k.image.image = (char *) "";
  assert_request_invalid (&req, "config.image.image");
  k.config.image = NULL;
  assert_request_invalid (&req, "config.image.image");
  k.config.image = &k.image;
  k.image.image = (char *) "busybox";
  const char *bad_logs[] = { "/var/log/x.log", "../x.log", "a/../../x.log", "a/.." };
  for (gsize i = 0; i < G_N_ELEMENTS (bad_logs); i++)
    {
      k.config.log_path = (char *) bad_logs[i];
      assert_request_invalid (&req, "config.log_path");
    }
  k.config.log_path = (char *) "a..b/c.log"; /* dots inside a name are fine */
  g_assert_true (crisp_container_validate_request (&req, &error));
  g_assert_no_error (error);
}

/* What crisp_container_write_spec takes: a request, a pod with its files in <dir>/pod, an
 * image, a container and an empty bundle directory. */
typedef struct
{
  Config k;
  Runtime__V1__CreateContainerRequest req;
  Runtime__V1__PodSandboxConfig pod_config;
  CrispPod pod;
  CrispImage *img;
  CrispContainer *c;
  char *bundle;
  char *config_json;
} Spec;

static void
spec_init (Fixture *f, Spec *s, const char *image_config)
{
  config_init (&s->k);
  runtime__v1__create_container_request__init (&s->req);
  s->req.pod_sandbox_id = (char *) POD_ID;
  s->req.config = &s->k.config;
  runtime__v1__pod_sandbox_config__init (&s->pod_config);
  s->pod = (CrispPod){ .id = (char *) POD_ID, .config = &s->pod_config };
  s->pod.run_dir = g_build_filename (f->dir, "pod", NULL);
  s->pod.cgroup_parent = (char *) "/kubepods/pod1";
  s->pod.hostname = (char *) "podhost";
  s->pod.net_ns = (char *) "/run/crisp/ns/net-1";
  s->pod.pid_ns = (char *) "/proc/4242/ns/pid";
  s->pod.ipc_ns = (char *) "/run/crisp/ns/ipc-1";
  s->pod.uts_ns = (char *) "/run/crisp/ns/uts-1";
  g_mutex_init (&s->pod.op_lock);
  g_autofree char *resolv = g_build_filename (s->pod.run_dir, "resolv.conf", NULL);
  g_assert_cmpint (g_mkdir_with_parents (s->pod.run_dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (resolv, "nameserver 10.0.0.10\n", -1, NULL));
  s->img = crisp_image_new ();
  s->img->config_json = g_strdup (image_config);
  /* As CreateContainer has it when it writes the spec: no stop signal or cgroup yet. */
  s->c = make_container (ID_A, POD_ID);
  g_clear_pointer (&s->c->stop_signal, g_free);
  g_clear_pointer (&s->c->cgroup_path, g_free);
  s->bundle = g_build_filename (f->dir, "bundle", NULL);
  g_assert_cmpint (g_mkdir (s->bundle, 0700), ==, 0);
  g_autofree char *state = g_build_filename (s->bundle, "monitor", NULL);
  g_assert_cmpint (g_mkdir (state, 0700), ==, 0);
  s->config_json = g_build_filename (s->bundle, "config.json", NULL);
}

static void
spec_clear (Spec *s)
{
  g_free (s->pod.run_dir);
  g_mutex_clear (&s->pod.op_lock);
  crisp_image_free (s->img);
  crisp_container_unref (s->c);
  g_free (s->bundle);
  g_free (s->config_json);
}

static gboolean
spec_write (Fixture *f, Spec *s, const char *rootfs, GError **error)
{
  return crisp_container_write_spec (&f->svc, s->c, &s->pod, s->img, &s->req, rootfs, s->bundle,
                                     NULL, NULL, error);
}

/* The source of the spec's mount at destination, or NULL. */
static const char *
spec_mount_source (JsonObject *spec, const char *destination)
{
  JsonArray *mounts = json_object_get_array_member (spec, "mounts");
  for (guint i = 0; i < json_array_get_length (mounts); i++)
    {
      JsonObject *m = json_array_get_object_element (mounts, i);
      if (g_strcmp0 (json_object_get_string_member (m, "destination"), destination) == 0)
        return json_object_get_string_member (m, "source");
    }
  return NULL;
}

#define ROOTFS TEST_SRCDIR "/fuzz/rootfs-oci"

/* The bundle's config.json comes from the request, the image config and the pod. */
static void
test_spec_written_to_bundle (Fixture *f, gconstpointer data)
{
  Spec s;
  spec_init (f, &s,
             "{\"config\":{\"Entrypoint\":[\"/entry\"],\"Cmd\":[\"--default\"],"
             "\"StopSignal\":\"SIGINT\"}}");
  char *args[] = { (char *) "--port", (char *) "80" };
  s.k.config.n_args = G_N_ELEMENTS (args);
  s.k.config.args = args; /* they replace the image's Cmd, after its Entrypoint */
  g_autoptr (GError) error = NULL;
  gboolean ok = spec_write (f, &s, ROOTFS, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpstr (s.c->stop_signal, ==, "2");

  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, s.config_json, &error));
  JsonObject *spec = json_node_get_object (json_parser_get_root (p));
  /* The cgroup the record names (chosen before the first save, see container-create.c). */
  const char *cg = json_object_get_string_member (json_object_get_object_member (spec, "linux"),
                                                  "cgroupsPath");
  g_assert_nonnull (strstr (cg, "crisp-" ID_A));
  JsonObject *process = json_object_get_object_member (spec, "process");
  JsonArray *argv = json_object_get_array_member (process, "args");
  g_assert_cmpuint (json_array_get_length (argv), ==, 3);
  g_assert_cmpstr (json_array_get_string_element (argv, 0), ==, "/entry");
  g_assert_cmpstr (json_array_get_string_element (argv, 1), ==, "--port");
  g_assert_cmpstr (json_array_get_string_element (argv, 2), ==, "80");
  g_assert_true (json_object_get_boolean_member (process, "terminal"));
  JsonObject *root = json_object_get_object_member (spec, "root");
  g_assert_cmpstr (json_object_get_string_member (root, "path"), ==, ROOTFS);
  g_autofree char *resolv = g_build_filename (s.pod.run_dir, "resolv.conf", NULL);
  g_assert_cmpstr (spec_mount_source (spec, "/etc/resolv.conf"), ==, resolv);
  g_assert_null (spec_mount_source (spec, "/etc/hosts")); /* the pod has no hosts file */

  /* The monitor's exec-spec comes from the same process object. */
  g_autofree char *exec_spec = g_build_filename (s.bundle, "monitor", "exec-spec", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (exec_spec, &text, NULL, &error));
  g_assert_true (g_str_has_prefix (text, "version=1\ncwd=/\nkeyring=_ses." ID_A "\n"));
  g_assert_nonnull (strstr (text, "\nuid=0\ngid=0\n"));
  g_assert_nonnull (strstr (text, "\ncaps_bounding="));
  g_assert_nonnull (strstr (text, "\nenv=PATH="));
  spec_clear (&s);
}

/* A request the spec builder refuses leaves no config.json behind. */
static void
test_spec_refused (Fixture *f, gconstpointer data)
{
  Spec s;
  spec_init (f, &s, "{\"config\":{\"StopSignal\":\"SIGNOPE\"}}");
  g_autoptr (GError) error = NULL;
  g_assert_false (spec_write (f, &s, ROOTFS, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_false (g_file_test (s.config_json, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  g_free (s.img->config_json);
  s.img->config_json = g_strdup ("{\"config\":{\"Entrypoint\":[\"/entry\"]}}");
  g_autofree char *missing = g_build_filename (f->dir, "no-rootfs", NULL);
  g_assert_false (spec_write (f, &s, missing, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_NOT_FOUND);
  g_assert_false (g_file_test (s.config_json, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  Runtime__V1__LinuxContainerSecurityContext sc;
  runtime__v1__linux_container_security_context__init (&sc);
  Runtime__V1__NamespaceOption ns;
  runtime__v1__namespace_option__init (&ns);
  ns.pid = 42; /* no such mode */
  sc.namespace_options = &ns;
  s.k.config.linux->security_context = &sc;
  g_assert_false (spec_write (f, &s, ROOTFS, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "pid namespace mode 42"));
  g_assert_false (g_file_test (s.config_json, G_FILE_TEST_EXISTS));
  spec_clear (&s);
}

/* Names are unique, each descriptor's label keys start with cAdvisor's id, name, image and
 * repeat none, and none is one of the labels the kubelet adds itself. */
static void
test_descriptors (void)
{
  Runtime__V1__ListMetricDescriptorsResponse *r = crisp_pod_metrics_descriptors ();
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  g_assert_cmpuint (r->n_descriptors, >=, 30);
  for (size_t i = 0; i < r->n_descriptors; i++)
    {
      const Runtime__V1__MetricDescriptor *d = r->descriptors[i];
      g_assert_true (g_str_has_prefix (d->name, "container_"));
      g_assert_true (g_hash_table_add (names, d->name));
      g_assert_cmpuint (strlen (d->help), >, 10);
      g_assert_cmpuint (d->n_label_keys, >=, 3);
      g_assert_cmpstr (d->label_keys[0], ==, "id");
      g_assert_cmpstr (d->label_keys[1], ==, "name");
      g_assert_cmpstr (d->label_keys[2], ==, "image");
      for (size_t j = 0; j < d->n_label_keys; j++)
        {
          g_assert_false (g_str_equal (d->label_keys[j], "namespace")
                          || g_str_equal (d->label_keys[j], "pod")
                          || g_str_equal (d->label_keys[j], "container"));
          for (size_t k = 0; k < j; k++)
            g_assert_cmpstr (d->label_keys[j], !=, d->label_keys[k]);
        }
    }
  for (const char *const *n
       = (const char *const[]){ "container_cpu_usage_seconds_total",
                                "container_memory_working_set_bytes",
                                "container_network_receive_bytes_total", "container_fs_usage_bytes",
                                "container_processes", NULL };
       *n; n++)
    g_assert_true (g_hash_table_contains (names, *n));
  protobuf_c_message_free_unpacked (&r->base, NULL);
}

/* The sealed copies of runc (container-runtime-copy.c), of /bin/true standing in for it. */
static void
write_file_from (const char *dst, const char *src)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (src, &data, &len, NULL));
  g_autofree char *tmp = g_strconcat (dst, ".new", NULL);
  g_assert_true (g_file_set_contents (tmp, data, (gssize) len, NULL));
  g_assert_cmpint (chmod (tmp, 0755), ==, 0);
  g_assert_cmpint (rename (tmp, dst), ==, 0); /* a new inode, as an upgrade makes */
}

static ino_t
inode_of (int fd)
{
  struct stat st;
  g_assert_cmpint (fstat (fd, &st), ==, 0);
  return st.st_ino;
}

static void
test_runtime_copy (Fixture *f, gconstpointer data)
{
  g_autofree char *bin = g_build_filename (f->dir, "runc", NULL);
  write_file_from (bin, "/bin/true");
  CrispRuntimeCopies *rc = crisp_runtime_copies_new ();
  int a = crisp_runtime_copies_get (rc, bin);
  g_assert_cmpint (a, >=, 3);
  g_assert_cmpint (fcntl (a, F_GETFD), ==, FD_CLOEXEC);
  g_assert_cmpint (fcntl (a, F_GET_SEALS), ==,
                   F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
  g_autofree char *orig = NULL, *copied = NULL;
  gsize orig_len = 0, copied_len = 0;
  g_assert_true (g_file_get_contents ("/bin/true", &orig, &orig_len, NULL));
  g_autofree char *proc = g_strdup_printf ("/proc/self/fd/%d", a);
  g_assert_true (g_file_get_contents (proc, &copied, &copied_len, NULL));
  g_assert_cmpmem (orig, orig_len, copied, copied_len);
  g_assert_cmpint (write (a, "x", 1), ==, -1);
  g_assert_cmpint (errno, ==, EPERM);
  /* The same file: the same copy. */
  int b = crisp_runtime_copies_get (rc, bin);
  g_assert_cmpuint (inode_of (b), ==, inode_of (a));
  /* Another file at the path: a new copy; the old one lives on in whoever holds it. */
  write_file_from (bin, "/bin/true");
  int c = crisp_runtime_copies_get (rc, bin);
  g_assert_cmpuint (inode_of (c), !=, inode_of (a));
  g_assert_cmpint (fcntl (a, F_GET_SEALS), >, 0);
  /* A script cannot be run from a descriptor closed at its exec: no copy of it. */
  g_autofree char *script = g_build_filename (f->dir, "wrapper", NULL);
  g_assert_true (g_file_set_contents (script, "#!/bin/sh\nexit 0\n", -1, NULL));
  g_assert_cmpint (crisp_runtime_copies_get (rc, script), ==, -ENOEXEC);
  g_autofree char *missing = g_build_filename (f->dir, "missing", NULL);
  g_assert_cmpint (crisp_runtime_copies_get (rc, missing), ==, -ENOENT);
  g_assert_cmpint (crisp_runtime_copies_get (rc, f->dir), ==, -EINVAL);
  close (a);
  close (b);
  close (c);
  crisp_runtime_copies_free (rc);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/container/" name, Fixture, NULL, setup, fn, teardown)
  ADD ("record/round-trip", test_record_round_trip);
  ADD ("record/every-state", test_record_every_state);
  ADD ("record/missing-or-mistyped-members", test_record_missing_or_mistyped_members);
  ADD ("record/bad-values", test_record_bad_values);
  ADD ("record/truncated", test_record_truncated);
  ADD ("record/mount-images", test_record_mount_images);
  g_test_add_func ("/container/status/state-mapping", test_status_state_mapping);
  ADD ("status/running", test_status_running);
  ADD ("status/exited", test_status_exited);
  ADD ("status/list-item", test_status_list_item);
  ADD ("transition/exit-reasons", test_transition_exit_reasons);
  ADD ("transition/no-exit-yet", test_transition_no_exit_yet);
  ADD ("transition/refresh-saves-exit", test_transition_refresh_saves_exit);
  ADD ("transition/refresh-only-live", test_transition_refresh_only_live);
  ADD ("lookup/by-prefix", test_lookup_by_prefix);
  g_test_add_func ("/container/request/validation", test_request_validation);
  ADD ("spec/written-to-bundle", test_spec_written_to_bundle);
  ADD ("spec/refused", test_spec_refused);
  g_test_add_func ("/container/pod-metrics/descriptors", test_descriptors);
  ADD ("runtime-copy/sealed-and-renewed", test_runtime_copy);
  return g_test_run ();
}
