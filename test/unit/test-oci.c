/* Unit tests for pkg/oci: one test per rule of the CRI request -> config.json mapping, against
 * a temporary rootfs that has its own /etc/passwd and /etc/group. */
#include "config.h"

#include "crisp-oci.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define PASSWD                                                                                     \
  "root:x:0:0:root:/root:/bin/sh\n"                                                                \
  "app:x:1000:1000:App:/home/app:/bin/sh\n"                                                        \
  "nohome:x:1001:1001::relative:/bin/sh\n"                                                         \
  "bad line without fields\n"
#define GROUP                                                                                      \
  "root:x:0:\n"                                                                                    \
  "app:x:1000:\n"                                                                                  \
  "wheel:x:10:app,other\n"                                                                         \
  "audio:x:29:app\n"                                                                               \
  "staff:x:50:\n"

typedef struct
{
  char *dir;
  char *rootfs;
  int rootfs_fd;
  Runtime__V1__ContainerConfig config;
  Runtime__V1__ContainerMetadata metadata;
  Runtime__V1__LinuxContainerConfig linux_config;
  Runtime__V1__LinuxContainerSecurityContext sc;
  Runtime__V1__LinuxContainerResources resources;
  Runtime__V1__NamespaceOption ns;
  Runtime__V1__Capability caps;
  Runtime__V1__PodSandboxConfig pod;
  Runtime__V1__PodSandboxMetadata pod_metadata;
  Runtime__V1__LinuxPodSandboxConfig pod_linux;
  Runtime__V1__LinuxSandboxSecurityContext pod_sc;
  JsonObject *image;
  CrispOciHost host;
  GPtrArray *notes;
  Runtime__V1__Mount *one_mount[1];
  CrispOciInput in;
} Fixture;

static void
write_file (const char *root, const char *rel, const char *text)
{
  g_autofree char *path = g_build_filename (root, rel, NULL);
  g_autofree char *parent = g_path_get_dirname (path);
  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("crisp-test-oci-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->rootfs = g_build_filename (f->dir, "a", "b", "rootfs", NULL);
  write_file (f->rootfs, "etc/passwd", PASSWD);
  write_file (f->rootfs, "etc/group", GROUP);
  f->rootfs_fd = open (f->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (f->rootfs_fd, >=, 0);

  runtime__v1__container_config__init (&f->config);
  runtime__v1__container_metadata__init (&f->metadata);
  runtime__v1__linux_container_config__init (&f->linux_config);
  runtime__v1__linux_container_security_context__init (&f->sc);
  runtime__v1__linux_container_resources__init (&f->resources);
  runtime__v1__namespace_option__init (&f->ns);
  runtime__v1__capability__init (&f->caps);
  runtime__v1__pod_sandbox_config__init (&f->pod);
  runtime__v1__pod_sandbox_metadata__init (&f->pod_metadata);
  runtime__v1__linux_pod_sandbox_config__init (&f->pod_linux);
  runtime__v1__linux_sandbox_security_context__init (&f->pod_sc);
  f->metadata.name = (char *) "web";
  f->config.metadata = &f->metadata;
  f->config.linux = &f->linux_config;
  f->linux_config.security_context = &f->sc;
  f->linux_config.resources = &f->resources;
  f->sc.namespace_options = &f->ns;
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  f->pod_metadata.name = (char *) "pod";
  f->pod_metadata.namespace_ = (char *) "default";
  f->pod_metadata.uid = (char *) "uid-1";
  f->pod.metadata = &f->pod_metadata;
  f->pod.hostname = (char *) "podhost";
  f->pod.linux = &f->pod_linux;
  f->pod_linux.cgroup_parent = (char *) "/kubepods/pod1";
  f->pod_linux.security_context = &f->pod_sc;

  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (
      p,
      "{\"Entrypoint\":[\"/entry\"],\"Cmd\":[\"cmd1\",\"cmd2\"],\"Env\":[\"PATH=/img/bin\","
      "\"IMG=1\",\"SHARED=image\"],\"WorkingDir\":\"/srv\",\"StopSignal\":\"SIGQUIT\"}",
      -1, NULL));
  f->image = json_object_ref (json_node_get_object (json_parser_get_root (p)));

  f->host.cgroup_mode = CRISP_CGROUP_MODE_HYBRID;
  f->host.cap_last_cap = 40;
  f->host.cap_bounding = G_MAXUINT64;
  f->notes = g_ptr_array_new_with_free_func (g_free);
  f->in = (CrispOciInput){
    .container_id = "c0ffee",
    .sandbox_id = "5a4d",
    .config = &f->config,
    .sandbox_config = &f->pod,
    .image_config = f->image,
    .image_name = "example.com/app:1",
    .rootfs = f->rootfs,
    .rootfs_fd = f->rootfs_fd,
    .netns_path = "/run/crisp/ns/net-1",
    .ipcns_path = "/run/crisp/ns/ipc-1",
    .utsns_path = "/run/crisp/ns/uts-1",
    .pidns_path = "/proc/4242/ns/pid",
    .cgroup_driver = CRISP_CGROUP_DRIVER_CGROUPFS,
    .resolv_conf_path = "/run/crisp/pod/resolv.conf",
    .hostname_path = "/run/crisp/pod/hostname",
    .hosts_path = "/run/crisp/pod/hosts",
    .shm_path = "/run/crisp/pod/shm",
    .host = &f->host,
    .notes = f->notes,
  };
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  close (f->rootfs_fd);
  json_object_unref (f->image);
  g_ptr_array_unref (f->notes);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->dir);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->rootfs);
  g_free (f->dir);
}

static JsonObject *
build_ok (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  JsonNode *spec = NULL;
  if (!crisp_oci_spec_build (&f->in, &spec, &error))
    g_error ("spec build failed: %s", error->message);
  JsonObject *o = json_object_ref (json_node_get_object (spec));
  json_node_unref (spec);
  return o;
}

/* Builds expecting failure with code and a message containing needle. */
static void
build_fails (Fixture *f, int code, const char *needle)
{
  g_autoptr (GError) error = NULL;
  JsonNode *spec = NULL;
  g_assert_false (crisp_oci_spec_build (&f->in, &spec, &error));
  g_assert_null (spec);
  g_assert_error (error, CRISP_ERROR, code);
  if (strstr (error->message, needle) == NULL)
    g_error ("error '%s' lacks '%s'", error->message, needle);
}

static JsonNode *
path_get (JsonObject *spec, const char *path)
{
  g_auto (GStrv) parts = g_strsplit (path, ".", -1);
  JsonObject *o = spec;
  for (char **p = parts; *p; p++)
    {
      JsonNode *n = o ? json_object_get_member (o, *p) : NULL;
      if (p[1] == NULL || n == NULL)
        return n;
      o = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
    }
  return NULL;
}

static char *
strings (JsonObject *spec, const char *path)
{
  JsonNode *n = path_get (spec, path);
  if (n == NULL)
    return g_strdup ("<absent>");
  g_autoptr (GString) s = g_string_new (NULL);
  JsonArray *a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING)
        g_string_append_printf (s, "%s%s", i ? " " : "", json_node_get_string (e));
      else
        g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? " " : "", json_node_get_int (e));
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static const char *
str (JsonObject *spec, const char *path)
{
  JsonNode *n = path_get (spec, path);
  return n ? json_node_get_string (n) : NULL;
}

static gint64
num (JsonObject *spec, const char *path)
{
  JsonNode *n = path_get (spec, path);
  g_assert_nonnull (n);
  return json_node_get_int (n);
}

static JsonObject *
find_mount (JsonObject *spec, const char *dest)
{
  JsonArray *m = json_object_get_array_member (spec, "mounts");
  JsonObject *found = NULL;
  for (guint i = 0; i < json_array_get_length (m); i++)
    if (g_str_equal (
            json_object_get_string_member (json_array_get_object_element (m, i), "destination"),
            dest))
      {
        g_assert_null (found); /* one mount per destination */
        found = json_array_get_object_element (m, i);
      }
  return found;
}

static gboolean
has_note (Fixture *f, const char *needle)
{
  for (guint i = 0; i < f->notes->len; i++)
    if (strstr (f->notes->pdata[i], needle))
      return TRUE;
  return FALSE;
}

static char **
strv (const char *s)
{
  return g_strsplit (s, " ", -1);
}

/* ---- process.args ---- */

static void
test_args_image_default (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *args = strings (spec, "process.args");
  g_assert_cmpstr (args, ==, "/entry cmd1 cmd2");
}

static void
test_args_command_replaces_entrypoint_and_cmd (Fixture *f, gconstpointer d)
{
  g_auto (GStrv) cmd = strv ("/bin/sh -c");
  f->config.command = cmd;
  f->config.n_command = 2;
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *args = strings (spec, "process.args");
  g_assert_cmpstr (args, ==, "/bin/sh -c");
  g_auto (GStrv) a = strv ("echo hi");
  f->config.args = a;
  f->config.n_args = 2;
  g_autoptr (JsonObject) spec2 = build_ok (f);
  g_autofree char *args2 = strings (spec2, "process.args");
  g_assert_cmpstr (args2, ==, "/bin/sh -c echo hi");
}

static void
test_args_alone_replace_cmd (Fixture *f, gconstpointer d)
{
  g_auto (GStrv) a = strv ("--flag value");
  f->config.args = a;
  f->config.n_args = 2;
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *args = strings (spec, "process.args");
  g_assert_cmpstr (args, ==, "/entry --flag value");
}

static void
test_args_none_is_invalid (Fixture *f, gconstpointer d)
{
  json_object_remove_member (f->image, "Entrypoint");
  json_object_set_null_member (f->image, "Cmd");
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "no command specified");
  json_object_set_string_member (f->image, "Cmd", "not-an-array");
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "image config: Cmd is not an array");
}

/* ---- process.env ---- */

static Runtime__V1__KeyValue *
kv (const char *k, const char *v, gsize vlen)
{
  Runtime__V1__KeyValue *e = g_new0 (Runtime__V1__KeyValue, 1);
  runtime__v1__key_value__init (e);
  e->key = (char *) k;
  e->value.data = (uint8_t *) v;
  e->value.len = vlen;
  return e;
}

static void
test_env_image_then_request (Fixture *f, gconstpointer d)
{
  g_autofree Runtime__V1__KeyValue *a = kv ("SHARED", "request", 7);
  g_autofree Runtime__V1__KeyValue *b = kv ("REQ", "x=y", 3);
  Runtime__V1__KeyValue *envs[] = { a, b };
  f->config.envs = envs;
  f->config.n_envs = 2;
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *env = strings (spec, "process.env");
  g_assert_cmpstr (env, ==,
                   "PATH=/img/bin HOSTNAME=podhost IMG=1 SHARED=request REQ=x=y HOME=/root");
}

static void
test_env_rejects_smuggling (Fixture *f, gconstpointer d)
{
  static const struct
  {
    const char *key, *value;
    gsize len;
    const char *needle;
  } bad[] = {
    { "A", "x\ny", 3, "'A' value has a NUL, CR or LF" },
    { "A", "x\ry", 3, "'A' value" },
    { "A", "x\0y", 3, "'A' value" },
    { "A=B", "x", 1, "key 'A=B'" },
    { "", "x", 1, "key ''" },
    { "A\nB", "x", 1, "envs key" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree Runtime__V1__KeyValue *e = kv (bad[i].key, bad[i].value, bad[i].len);
      Runtime__V1__KeyValue *envs[] = { e };
      f->config.envs = envs;
      f->config.n_envs = 1;
      build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, bad[i].needle);
    }
  f->config.n_envs = 0;
  JsonArray *img = json_array_new ();
  json_array_add_string_element (img, "NOEQUALS");
  json_object_set_array_member (f->image, "Env", img);
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "image config: Env entry 'NOEQUALS'");
}

/* ---- process.cwd ---- */

static void
test_cwd (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) a = build_ok (f);
  g_assert_cmpstr (str (a, "process.cwd"), ==, "/srv");
  f->config.working_dir = (char *) "/work";
  g_autoptr (JsonObject) b = build_ok (f);
  g_assert_cmpstr (str (b, "process.cwd"), ==, "/work");
  f->config.working_dir = (char *) "";
  json_object_remove_member (f->image, "WorkingDir");
  g_autoptr (JsonObject) c = build_ok (f);
  g_assert_cmpstr (str (c, "process.cwd"), ==, "/");
  f->config.working_dir = (char *) "relative";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "working_dir 'relative'");
}

/* ---- process.user ---- */

static void
expect_user (Fixture *f, gint64 uid, gint64 gid, const char *gids, const char *home)
{
  g_autoptr (JsonObject) spec = build_ok (f);
  g_assert_cmpint (num (spec, "process.user.uid"), ==, uid);
  g_assert_cmpint (num (spec, "process.user.gid"), ==, gid);
  g_autofree char *g = strings (spec, "process.user.additionalGids");
  g_assert_cmpstr (g, ==, gids);
  g_autofree char *env = strings (spec, "process.env");
  g_autofree char *want = g_strdup_printf ("HOME=%s", home);
  g_assert_nonnull (strstr (env, want));
}

static void
test_user_image_forms (Fixture *f, gconstpointer d)
{
  expect_user (f, 0, 0, "0", "/root");
  json_object_set_string_member (f->image, "User", "app");
  expect_user (f, 1000, 1000, "1000 10 29", "/home/app");
  json_object_set_string_member (f->image, "User", "1000");
  expect_user (f, 1000, 1000, "1000 10 29", "/home/app");
  json_object_set_string_member (f->image, "User", "4321");
  expect_user (f, 4321, 0, "0", "/");
  json_object_set_string_member (f->image, "User", "1000:50");
  expect_user (f, 1000, 50, "50 10 29", "/home/app");
  json_object_set_string_member (f->image, "User", "app:staff");
  expect_user (f, 1000, 50, "50 10 29", "/home/app");
  json_object_set_string_member (f->image, "User", "nohome");
  expect_user (f, 1001, 1001, "1001", "/"); /* a relative home is not trusted */
  json_object_set_string_member (f->image, "User", "ghost");
  build_fails (f, CRISP_ERROR_NOT_FOUND, "User 'ghost'");
  json_object_set_string_member (f->image, "User", "app:ghosts");
  build_fails (f, CRISP_ERROR_NOT_FOUND, "group 'ghosts'");
}

static void
test_user_request (Fixture *f, gconstpointer d)
{
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
  json_object_set_string_member (f->image, "User", "ghost"); /* request wins over the image */
  uid.value = 1000;
  f->sc.run_as_user = &uid;
  expect_user (f, 1000, 1000, "1000 10 29", "/home/app");
  gid.value = 7;
  f->sc.run_as_group = &gid;
  expect_user (f, 1000, 7, "7 10 29", "/home/app");
  f->sc.run_as_user = NULL;
  f->sc.run_as_username = (char *) "app";
  expect_user (f, 1000, 7, "7 10 29", "/home/app");
  f->sc.run_as_username = (char *) "ghost";
  build_fails (f, CRISP_ERROR_NOT_FOUND, "run_as_username 'ghost'");
  f->sc.run_as_username = (char *) "";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "run_as_group is set without");
  f->sc.run_as_group = NULL;
  uid.value = -1;
  f->sc.run_as_user = &uid;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "run_as_user -1");
}

static void
test_user_supplemental_groups (Fixture *f, gconstpointer d)
{
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  uid.value = 1000;
  f->sc.run_as_user = &uid;
  int64_t groups[] = { 2000, 10, 3000 };
  f->sc.supplemental_groups = groups;
  f->sc.n_supplemental_groups = 3;
  expect_user (f, 1000, 1000, "1000 10 29 2000 3000", "/home/app");
  f->sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
  expect_user (f, 1000, 1000, "1000 2000 10 3000", "/home/app");
  groups[1] = -5;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "supplemental_groups -5");
}

/* /etc/passwd is a symlink that, followed on the host, would leave the root. */
static void
test_user_passwd_symlink_stays_in_root (Fixture *f, gconstpointer d)
{
  g_autofree char *pw = g_build_filename (f->rootfs, "etc/passwd", NULL);
  g_assert_cmpint (g_unlink (pw), ==, 0);
  write_file (f->rootfs, "usr/share/passwd", "inside:x:4242:4343:In:/inside:/bin/sh\n");
  g_assert_cmpint (symlink ("/../../usr/share/passwd", pw), ==, 0);
  json_object_set_string_member (f->image, "User", "inside");
  expect_user (f, 4242, 4343, "4343", "/inside");
  /* pointing at /../../etc/passwd from inside the root is itself: a loop, never the host's */
  g_assert_cmpint (g_unlink (pw), ==, 0);
  g_assert_cmpint (symlink ("/../../etc/passwd", pw), ==, 0);
  json_object_set_string_member (f->image, "User", "daemon");
  build_fails (f, CRISP_ERROR_NOT_FOUND, "User 'daemon'");
  g_assert_true (has_note (f, "unreadable"));
  json_object_set_string_member (f->image, "User", "root");
  build_fails (f, CRISP_ERROR_NOT_FOUND, "User 'root'");
  /* a directory or FIFO there must not hang or crash the lookup */
  g_assert_cmpint (g_unlink (pw), ==, 0);
  g_assert_cmpint (mkfifo (pw, 0600), ==, 0);
  json_object_set_string_member (f->image, "User", "");
  expect_user (f, 0, 0, "0", "/");
}

/* ---- mounts ---- */

static Runtime__V1__Mount *
mount_new (const char *c, const char *h, gboolean ro, Runtime__V1__MountPropagation p)
{
  Runtime__V1__Mount *m = g_new0 (Runtime__V1__Mount, 1);
  runtime__v1__mount__init (m);
  m->container_path = (char *) c;
  m->host_path = (char *) h;
  m->readonly = ro;
  m->propagation = p;
  return m;
}

/* The request's only mount is m. */
static void
use_one_mount (Fixture *f, Runtime__V1__Mount *m)
{
  f->one_mount[0] = m;
  f->config.mounts = f->one_mount;
  f->config.n_mounts = 1;
}

static void
test_mounts_defaults (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) spec = build_ok (f);
  const char *dests[]
      = { "/proc",          "/dev",     "/dev/pts",         "/dev/mqueue",   "/sys",
          "/sys/fs/cgroup", "/dev/shm", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts" };
  for (gsize i = 0; i < G_N_ELEMENTS (dests); i++)
    g_assert_nonnull (find_mount (spec, dests[i]));
  JsonObject *sys = find_mount (spec, "/sys");
  g_autofree char *sys_opts = strings (sys, "options");
  g_assert_nonnull (strstr (sys_opts, "ro"));
  JsonObject *shm = find_mount (spec, "/dev/shm");
  g_assert_cmpstr (json_object_get_string_member (shm, "source"), ==, "/run/crisp/pod/shm");
  JsonObject *hosts = find_mount (spec, "/etc/hosts");
  g_assert_cmpstr (json_object_get_string_member (hosts, "type"), ==, "bind");
  g_assert_null (path_get (spec, "linux.rootfsPropagation"));
}

static void
test_mounts_request (Fixture *f, gconstpointer d)
{
  g_autofree Runtime__V1__Mount *a
      = mount_new ("/data/cache", "/host/cache", FALSE,
                   RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER);
  g_autofree Runtime__V1__Mount *b = mount_new (
      "/data", "/host/data", TRUE, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE);
  g_autofree Runtime__V1__Mount *c = mount_new (
      "/etc/hosts", "/kubelet/hosts", FALSE, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE);
  g_autofree Runtime__V1__Mount *e = mount_new (
      "/shared", "/host/shared", FALSE, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL);
  Runtime__V1__Mount *mounts[] = { a, b, c, e };
  f->config.mounts = mounts;
  f->config.n_mounts = 4;
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *ao = strings (find_mount (spec, "/data/cache"), "options");
  g_autofree char *bo = strings (find_mount (spec, "/data"), "options");
  g_autofree char *eo = strings (find_mount (spec, "/shared"), "options");
  g_assert_cmpstr (ao, ==, "rbind rslave rw");
  g_assert_cmpstr (bo, ==, "rbind rprivate ro");
  g_assert_cmpstr (eo, ==, "rbind rshared rw");
  g_assert_cmpstr (json_object_get_string_member (find_mount (spec, "/etc/hosts"), "source"), ==,
                   "/kubelet/hosts");
  g_assert_cmpstr (str (spec, "linux.rootfsPropagation"), ==, "rshared");
  /* the parent is mounted before the child whatever the request's order */
  JsonArray *m = json_object_get_array_member (spec, "mounts");
  int data = -1, cache = -1;
  for (guint i = 0; i < json_array_get_length (m); i++)
    {
      const char *dst
          = json_object_get_string_member (json_array_get_object_element (m, i), "destination");
      data = g_str_equal (dst, "/data") ? (int) i : data;
      cache = g_str_equal (dst, "/data/cache") ? (int) i : cache;
    }
  g_assert_cmpint (data, <, cache);
}

static void
test_mounts_reject (Fixture *f, gconstpointer d)
{
  const char *bad_dest[] = { "relative", "/a/../../etc", "/", "/a/./b" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad_dest); i++)
    {
      g_autofree Runtime__V1__Mount *m = mount_new (
          bad_dest[i], "/host", FALSE, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE);
      use_one_mount (f, m);
      build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "container config: mount");
    }
  g_autofree Runtime__V1__Mount *m
      = mount_new ("/x", "/host", FALSE, (Runtime__V1__MountPropagation) 7);
  use_one_mount (f, m);
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "propagation 7");
  m->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE;
  m->host_path = (char *) "relative/host";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "host_path 'relative/host'");
}

static void
test_mounts_recursive_ro (Fixture *f, gconstpointer d)
{
  g_autofree Runtime__V1__Mount *m = mount_new (
      "/data", "/host/data", FALSE, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE);
  use_one_mount (f, m);
  m->recursive_read_only = TRUE;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT,
               "mount '/data': recursive_read_only needs readonly");
  m->readonly = TRUE;
  m->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT,
               "needs propagation PROPAGATION_PRIVATE, not PROPAGATION_HOST_TO_CONTAINER");
  m->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE;
  g_assert_cmpint (crisp_oci_mount_kind (m), ==, CRISP_OCI_MOUNT_RECURSIVE_RO);
  /* the tree is the caller's to stage: a spec never binds the host path itself */
  build_fails (f, CRISP_ERROR_INTERNAL, "mount '/data' was not prepared");
  const char *sources[] = { "/run/crisp/c/mounts/0" };
  f->in.mount_sources = sources;
  g_autoptr (JsonObject) spec = build_ok (f);
  JsonObject *b = find_mount (spec, "/data");
  g_assert_cmpstr (json_object_get_string_member (b, "source"), ==, sources[0]);
  g_autofree char *opts = strings (b, "options");
  g_assert_cmpstr (opts, ==, "rbind rprivate ro");
}

static void
test_mounts_image (Fixture *f, gconstpointer d)
{
  Runtime__V1__ImageSpec image = RUNTIME__V1__IMAGE_SPEC__INIT;
  image.image = (char *) "example.com/data:1";
  g_autofree Runtime__V1__Mount *m
      = mount_new ("/data", "", FALSE, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL);
  m->image = &image;
  use_one_mount (f, m);
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "BIDIRECTIONAL cannot apply to a read-only image");
  m->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
  m->host_path = (char *) "/host";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "names both host_path '/host' and image");
  m->host_path = (char *) "";
  const char *bad_sub[] = { "../etc", "/abs", "a//b", "a/./b" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad_sub); i++)
    {
      m->image_sub_path = (char *) bad_sub[i];
      build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "image_sub_path");
    }
  m->image_sub_path = (char *) "";
  g_assert_cmpint (crisp_oci_mount_kind (m), ==, CRISP_OCI_MOUNT_IMAGE);
  const char *sources[] = { "/run/crisp/c/mounts/0" };
  f->in.mount_sources = sources;
  /* read-only whatever readonly says; the propagation asked for is noted and left out */
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *opts = strings (find_mount (spec, "/data"), "options");
  g_assert_cmpstr (opts, ==, "rbind rprivate ro");
  g_assert_null (path_get (spec, "linux.rootfsPropagation"));
  g_assert_cmpuint (f->notes->len, ==, 1);
  g_assert_nonnull (strstr (f->notes->pdata[0], "PROPAGATION_HOST_TO_CONTAINER ignored"));
  /* an image_sub_path needs an image */
  image.image = (char *) "";
  m->host_path = (char *) "/host";
  m->image_sub_path = (char *) "sub";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "image_sub_path 'sub' without an image");
}

static void
test_mounts_id_mapped (Fixture *f, gconstpointer d)
{
  Runtime__V1__IDMapping map = RUNTIME__V1__IDMAPPING__INIT;
  Runtime__V1__IDMapping *maps[] = { &map };
  g_autofree Runtime__V1__Mount *m
      = mount_new ("/data", "/host", FALSE, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE);
  m->uidmappings = maps;
  m->n_uidmappings = 1;
  use_one_mount (f, m);
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "uidMappings or gidMappings");
}

/* A pod with a user namespace: container 0 is host 700000, 65536 ids. */
static Runtime__V1__IDMapping pod_map
    = { PROTOBUF_C_MESSAGE_INIT (&runtime__v1__idmapping__descriptor), 700000, 0, 65536 };
static Runtime__V1__IDMapping *pod_maps[] = { &pod_map };

static void
use_pod_userns (Fixture *f, Runtime__V1__UserNamespace *u)
{
  runtime__v1__user_namespace__init (u);
  u->mode = RUNTIME__V1__NAMESPACE_MODE__POD;
  u->uids = u->gids = pod_maps;
  u->n_uids = u->n_gids = 1;
  f->in.userns_path = "/run/crisp/ns/pod-user";
  f->in.pod_userns = u;
}

static void
test_userns_joins_the_pod (Fixture *f, gconstpointer d)
{
  Runtime__V1__UserNamespace u;
  use_pod_userns (f, &u);
  /* The container says nothing: it follows its pod. */
  g_autoptr (JsonObject) spec = build_ok (f);
  JsonArray *nss = json_node_get_array (path_get (spec, "linux.namespaces"));
  JsonObject *first = json_array_get_object_element (nss, 0);
  g_assert_cmpstr (json_object_get_string_member (first, "type"), ==, "user");
  g_assert_cmpstr (json_object_get_string_member (first, "path"), ==, "/run/crisp/ns/pod-user");
  JsonArray *uids = json_node_get_array (path_get (spec, "linux.uidMappings"));
  g_assert_cmpuint (json_array_get_length (uids), ==, 1);
  JsonObject *m = json_array_get_object_element (uids, 0);
  g_assert_cmpint (json_object_get_int_member (m, "hostID"), ==, 700000);
  g_assert_cmpint (json_object_get_int_member (m, "containerID"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (m, "size"), ==, 65536);
  g_assert_nonnull (path_get (spec, "linux.gidMappings"));
}

static void
test_userns_container_must_match (Fixture *f, gconstpointer d)
{
  Runtime__V1__UserNamespace pod, mine;
  Runtime__V1__IDMapping other = pod_map;
  Runtime__V1__IDMapping *others[] = { &other };
  use_pod_userns (f, &pod);
  runtime__v1__user_namespace__init (&mine);
  f->ns.userns_options = &mine;
  mine.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "cannot leave its pod's user namespace");
  mine.mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "mode CONTAINER is not supported");
  mine.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
  other.host_id = 800000;
  mine.uids = mine.gids = others;
  mine.n_uids = mine.n_gids = 1;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "mappings differ from the pod's");
  mine.uids = mine.gids = pod_maps;
  g_autoptr (JsonObject) spec = build_ok (f);
  /* Mode POD in a pod without a user namespace. */
  f->in.pod_userns = NULL;
  f->in.userns_path = NULL;
  build_fails (f, CRISP_ERROR_FAILED_PRECONDITION, "the pod has no user namespace");
}

static void
test_userns_mount_mappings (Fixture *f, gconstpointer d)
{
  Runtime__V1__UserNamespace u;
  Runtime__V1__IDMapping other = pod_map;
  Runtime__V1__IDMapping *others[] = { &other };
  use_pod_userns (f, &u);
  g_autofree Runtime__V1__Mount *m
      = mount_new ("/data", "/host", FALSE, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE);
  const char *staged[] = { "/run/crisp/containers/c0ffee/mounts/0" };
  m->uidmappings = m->gidmappings = pod_maps;
  m->n_uidmappings = m->n_gidmappings = 1;
  use_one_mount (f, m);
  f->in.mount_sources = staged;
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *mounts = json_to_string (path_get (spec, "mounts"), FALSE);
  g_assert_nonnull (strstr (mounts, staged[0]));
  other.container_id = 1;
  m->uidmappings = others;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "must be the pod's own user namespace mappings");
  m->n_uidmappings = m->n_gidmappings = 0;
  m->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "is not supported in a pod with a user namespace");
}

/* ---- devices ---- */

static void
test_devices (Fixture *f, gconstpointer d)
{
  Runtime__V1__Device dev = RUNTIME__V1__DEVICE__INIT;
  Runtime__V1__Device *devs[] = { &dev };
  dev.container_path = (char *) "/dev/mynull";
  dev.host_path = (char *) "/dev/null";
  dev.permissions = (char *) "rw";
  f->config.devices = devs;
  f->config.n_devices = 1;
  g_autoptr (JsonObject) spec = build_ok (f);
  JsonObject *d0
      = json_array_get_object_element (json_node_get_array (path_get (spec, "linux.devices")), 0);
  g_assert_cmpstr (json_object_get_string_member (d0, "path"), ==, "/dev/mynull");
  g_assert_cmpstr (json_object_get_string_member (d0, "type"), ==, "c");
  g_assert_cmpint (json_object_get_int_member (d0, "major"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (d0, "minor"), ==, 3);
  JsonArray *rules = json_node_get_array (path_get (spec, "linux.resources.devices"));
  g_assert_cmpuint (json_array_get_length (rules), ==, 2);
  g_assert_false (
      json_object_get_boolean_member (json_array_get_object_element (rules, 0), "allow"));
  g_assert_cmpstr (
      json_object_get_string_member (json_array_get_object_element (rules, 1), "access"), ==, "rw");
  dev.permissions = (char *) "rwx";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "permissions 'rwx'");
  dev.permissions = (char *) "rr";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "permissions 'rr'");
  dev.permissions = (char *) "";
  dev.host_path = (char *) "/etc/hostname";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "is not a device node");
  dev.host_path = (char *) "/dev/does-not-exist";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "'/dev/does-not-exist'");
}

/* ---- capabilities ---- */

static void
test_caps_default (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *eff = strings (spec, "process.capabilities.effective");
  g_autofree char *bnd = strings (spec, "process.capabilities.bounding");
  g_assert_cmpstr (eff, ==,
                   "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID "
                   "CAP_SETUID CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_SYS_CHROOT "
                   "CAP_MKNOD CAP_AUDIT_WRITE CAP_SETFCAP");
  g_assert_cmpstr (bnd, ==, eff);
}

static void
test_caps_add_drop (Fixture *f, gconstpointer d)
{
  g_auto (GStrv) add = strv ("sys_admin CAP_NET_ADMIN Sys_Time");
  g_auto (GStrv) drop = strv ("NET_RAW cap_mknod sys_time");
  f->sc.capabilities = &f->caps;
  f->caps.add_capabilities = add;
  f->caps.n_add_capabilities = 3;
  f->caps.drop_capabilities = drop;
  f->caps.n_drop_capabilities = 3;
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *eff = strings (spec, "process.capabilities.effective");
  g_assert_nonnull (strstr (eff, "CAP_SYS_ADMIN"));
  g_assert_nonnull (strstr (eff, "CAP_NET_ADMIN"));
  g_assert_null (strstr (eff, "CAP_SYS_TIME")); /* a drop beats an add */
  g_assert_null (strstr (eff, "CAP_NET_RAW"));
  g_assert_null (strstr (eff, "CAP_MKNOD"));
  g_assert_nonnull (strstr (eff, "CAP_CHOWN"));
}

static void
test_caps_all (Fixture *f, gconstpointer d)
{
  g_auto (GStrv) all = strv ("all");
  g_auto (GStrv) one = strv ("kill");
  f->sc.capabilities = &f->caps;
  f->caps.add_capabilities = all;
  f->caps.n_add_capabilities = 1;
  g_autoptr (JsonObject) a = build_ok (f);
  g_assert_cmpuint (
      json_array_get_length (json_node_get_array (path_get (a, "process.capabilities.effective"))),
      ==, 41);
  f->caps.add_capabilities = one;
  f->caps.drop_capabilities = all;
  f->caps.n_drop_capabilities = 1;
  g_autoptr (JsonObject) b = build_ok (f);
  g_autofree char *eff = strings (b, "process.capabilities.effective");
  g_assert_cmpstr (eff, ==, "CAP_KILL");
  f->caps.n_add_capabilities = 0;
  g_autoptr (JsonObject) c = build_ok (f);
  g_autofree char *none = strings (c, "process.capabilities.effective");
  g_assert_cmpstr (none, ==, "");
}

static void
test_caps_outside_bounding_set (Fixture *f, gconstpointer d)
{
  g_auto (GStrv) add = strv ("sys_admin sys_resource");
  f->sc.capabilities = &f->caps;
  f->caps.add_capabilities = add;
  f->caps.n_add_capabilities = 2;
  f->host.cap_bounding &= ~(G_GUINT64_CONSTANT (1) << 24); /* CAP_SYS_RESOURCE, as here */
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autofree char *eff = strings (spec, "process.capabilities.effective");
  g_assert_nonnull (strstr (eff, "CAP_SYS_ADMIN"));
  g_assert_null (strstr (eff, "CAP_SYS_RESOURCE"));
  g_assert_true (has_note (f, "capabilities CAP_SYS_RESOURCE left out"));
}

static void
test_caps_unknown (Fixture *f, gconstpointer d)
{
  g_auto (GStrv) add = strv ("CAP_TELEPORT");
  f->sc.capabilities = &f->caps;
  f->caps.add_capabilities = add;
  f->caps.n_add_capabilities = 1;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "unknown capability 'CAP_TELEPORT'");
  f->host.cap_last_cap = 37; /* an older kernel without CAP_BPF */
  g_free (add[0]);
  add[0] = g_strdup ("bpf");
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "unknown capability 'bpf'");
}

/* ---- privileged, no_new_privs, read-only root ---- */

static void
test_privileged (Fixture *f, gconstpointer d)
{
  Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
  f->sc.seccomp = &sp; /* RuntimeDefault, ignored when privileged */
  f->sc.privileged = TRUE;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "non-privileged pod");
  f->pod_sc.privileged = TRUE;
  write_file (f->dir, "dev/sub/ignored-regular-file", "");
  g_autofree char *devdir = g_build_filename (f->dir, "dev", NULL);
  f->in.host_dev_dir = devdir;
  g_autoptr (JsonObject) spec = build_ok (f);
  g_assert_cmpuint (json_array_get_length (
                        json_node_get_array (path_get (spec, "process.capabilities.bounding"))),
                    ==, 41);
  g_autofree char *masked = strings (spec, "linux.maskedPaths");
  g_autofree char *ro = strings (spec, "linux.readonlyPaths");
  g_assert_cmpstr (masked, ==, "");
  g_assert_cmpstr (ro, ==, "");
  g_assert_null (path_get (spec, "linux.seccomp"));
  JsonArray *rules = json_node_get_array (path_get (spec, "linux.resources.devices"));
  g_assert_true (
      json_object_get_boolean_member (json_array_get_object_element (rules, 0), "allow"));
  g_autofree char *sys_opts = strings (find_mount (spec, "/sys"), "options");
  g_assert_nonnull (strstr (sys_opts, "rw"));
  /* only device nodes under the host dev dir become devices (none in this fake one) */
  g_assert_cmpuint (json_array_get_length (json_node_get_array (path_get (spec, "linux.devices"))),
                    ==, 0);
  f->in.host_dev_dir = "/dev";
  g_autoptr (JsonObject) real = build_ok (f);
  g_autofree char *devs = json_to_string (path_get (real, "linux.devices"), FALSE);
  g_assert_nonnull (strstr (devs, "\"/dev/null\""));
  g_assert_null (strstr (devs, "/dev/pts/"));
}

static void
test_nnp_and_readonly_root (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) a = build_ok (f);
  g_assert_false (json_node_get_boolean (path_get (a, "process.noNewPrivileges")));
  g_assert_false (json_node_get_boolean (path_get (a, "root.readonly")));
  g_assert_cmpstr (str (a, "root.path"), ==, f->rootfs);
  f->sc.no_new_privs = TRUE;
  f->sc.readonly_rootfs = TRUE;
  g_autoptr (JsonObject) b = build_ok (f);
  g_assert_true (json_node_get_boolean (path_get (b, "process.noNewPrivileges")));
  g_assert_true (json_node_get_boolean (path_get (b, "root.readonly")));
  g_autofree char *hosts = strings (find_mount (b, "/etc/hosts"), "options");
  g_assert_nonnull (strstr (hosts, "ro"));
}

static void
test_masked_readonly_paths (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) a = build_ok (f);
  g_autofree char *masked = strings (a, "linux.maskedPaths");
  g_autofree char *ro = strings (a, "linux.readonlyPaths");
  g_assert_nonnull (strstr (masked, "/proc/kcore"));
  g_assert_nonnull (strstr (ro, "/proc/sys"));
  g_auto (GStrv) m = strv ("/proc/custom");
  g_auto (GStrv) r = strv ("/proc/ro1 /proc/ro2");
  f->sc.masked_paths = m;
  f->sc.n_masked_paths = 1;
  f->sc.readonly_paths = r;
  f->sc.n_readonly_paths = 2;
  g_autoptr (JsonObject) b = build_ok (f);
  g_autofree char *masked2 = strings (b, "linux.maskedPaths");
  g_autofree char *ro2 = strings (b, "linux.readonlyPaths");
  g_assert_cmpstr (masked2, ==, "/proc/custom");
  g_assert_cmpstr (ro2, ==, "/proc/ro1 /proc/ro2");
  g_free (m[0]);
  m[0] = g_strdup ("proc/relative");
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "masked_paths 'proc/relative'");
}

/* ---- seccomp ---- */

static void
test_seccomp_profiles (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) none = build_ok (f);
  g_assert_null (path_get (none, "linux.seccomp"));
  Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
  f->sc.seccomp = &sp;
  g_autoptr (JsonObject) def = build_ok (f);
  g_assert_cmpstr (str (def, "linux.seccomp.defaultAction"), ==, "SCMP_ACT_ERRNO");
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
  g_autoptr (JsonObject) unc = build_ok (f);
  g_assert_null (path_get (unc, "linux.seccomp"));
  g_autofree char *profile = g_build_filename (f->dir, "profile.json", NULL);
  g_assert_true (g_file_set_contents (profile, "{\"defaultAction\":\"SCMP_ACT_LOG\"}", -1, NULL));
  sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
  sp.localhost_ref = profile;
  g_autoptr (JsonObject) local = build_ok (f);
  g_assert_cmpstr (str (local, "linux.seccomp.defaultAction"), ==, "SCMP_ACT_LOG");
  sp.localhost_ref = (char *) "/nonexistent/profile.json";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "/nonexistent/profile.json");
  g_assert_true (g_file_set_contents (profile, "{\"defaultAction\":\"SCMP_ACT_NOPE\"}", -1, NULL));
  sp.localhost_ref = profile;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "unknown action 'SCMP_ACT_NOPE'");
}

static void
test_seccomp_deprecated_path (Fixture *f, gconstpointer d)
{
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  f->sc.seccomp_profile_path = (char *) "runtime/default";
  g_autoptr (JsonObject) a = build_ok (f);
  g_assert_cmpstr (str (a, "linux.seccomp.defaultAction"), ==, "SCMP_ACT_ERRNO");
  g_autofree char *profile = g_build_filename (f->dir, "p.json", NULL);
  g_autofree char *ref = g_strconcat ("localhost/", profile, NULL);
  g_assert_true (g_file_set_contents (profile, "{\"defaultAction\":\"SCMP_ACT_TRAP\"}", -1, NULL));
  f->sc.seccomp_profile_path = ref;
  g_autoptr (JsonObject) b = build_ok (f);
  g_assert_cmpstr (str (b, "linux.seccomp.defaultAction"), ==, "SCMP_ACT_TRAP");
  f->sc.seccomp_profile_path = (char *) "unconfined";
  g_autoptr (JsonObject) c = build_ok (f);
  g_assert_null (path_get (c, "linux.seccomp"));
  f->sc.seccomp_profile_path = (char *) "sometimes";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "seccomp_profile_path 'sometimes'");
  G_GNUC_END_IGNORE_DEPRECATIONS
}

static void
test_lsm_notes (Fixture *f, gconstpointer d)
{
  Runtime__V1__SecurityProfile aa = RUNTIME__V1__SECURITY_PROFILE__INIT;
  Runtime__V1__SELinuxOption se = RUNTIME__V1__SELINUX_OPTION__INIT;
  se.level = (char *) "s0:c1,c2";
  f->sc.apparmor = &aa;
  f->sc.selinux_options = &se;
  g_autoptr (JsonObject) spec = build_ok (f);
  g_assert_true (has_note (f, "apparmor profile runtime/default ignored"));
  g_assert_true (has_note (f, "selinux options ignored"));
  g_assert_null (path_get (spec, "process.apparmorProfile"));
}

/* ---- resources, OOM score ---- */

static void
test_resources (Fixture *f, gconstpointer d)
{
  f->resources.cpu_period = 100000;
  f->resources.cpu_quota = 50000;
  f->resources.cpu_shares = 512;
  f->resources.memory_limit_in_bytes = 64 << 20;
  f->resources.memory_swap_limit_in_bytes = 128 << 20;
  f->resources.cpuset_cpus = (char *) "0-1";
  f->resources.cpuset_mems = (char *) "0";
  g_autoptr (JsonObject) spec = build_ok (f);
  g_assert_cmpint (num (spec, "linux.resources.cpu.period"), ==, 100000);
  g_assert_cmpint (num (spec, "linux.resources.cpu.quota"), ==, 50000);
  g_assert_cmpint (num (spec, "linux.resources.cpu.shares"), ==, 512);
  g_assert_cmpstr (str (spec, "linux.resources.cpu.cpus"), ==, "0-1");
  g_assert_cmpstr (str (spec, "linux.resources.cpu.mems"), ==, "0");
  g_assert_cmpint (num (spec, "linux.resources.memory.limit"), ==, 64 << 20);
  g_assert_cmpint (num (spec, "linux.resources.memory.swap"), ==, 128 << 20);
  f->resources.cpu_shares = 1;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "cpu_shares 1");
}

static void
test_resources_hugepages_and_unified (Fixture *f, gconstpointer d)
{
  Runtime__V1__HugepageLimit h = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
  Runtime__V1__HugepageLimit *hp = &h;
  h.page_size = (char *) "2MB";
  h.limit = 1 << 21;
  f->resources.hugepage_limits = &hp;
  f->resources.n_hugepage_limits = 1;
  Runtime__V1__LinuxContainerResources__UnifiedEntry u
      = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
  Runtime__V1__LinuxContainerResources__UnifiedEntry *up = &u;
  u.key = (char *) "memory.high";
  u.value = (char *) "1000000";
  f->resources.unified = &up;
  f->resources.n_unified = 1;
  g_autoptr (JsonObject) a = build_ok (f);
  g_assert_null (path_get (a, "linux.resources.hugepageLimits"));
  g_assert_null (path_get (a, "linux.resources.unified"));
  g_assert_true (has_note (f, "hugetlb cgroup controller is not mounted"));
  g_assert_true (has_note (f, "not cgroup v2"));
  f->host.hugetlb = TRUE;
  f->host.cgroup_mode = CRISP_CGROUP_MODE_V2;
  g_autoptr (JsonObject) b = build_ok (f);
  g_autofree char *hj = json_to_string (path_get (b, "linux.resources.hugepageLimits"), FALSE);
  g_assert_cmpstr (hj, ==, "[{\"pageSize\":\"2MB\",\"limit\":2097152}]");
  g_assert_cmpstr (str (b, "linux.resources.unified.memory.high"), ==, NULL); /* dotted key */
  JsonObject *unified = json_node_get_object (path_get (b, "linux.resources.unified"));
  g_assert_cmpstr (json_object_get_string_member (unified, "memory.high"), ==, "1000000");
  g_autofree char *nss = json_to_string (path_get (b, "linux.namespaces"), FALSE);
  g_assert_nonnull (strstr (nss, "\"cgroup\""));
}

static void
test_oom_score (Fixture *f, gconstpointer d)
{
  f->resources.oom_score_adj = -500;
  g_autoptr (JsonObject) a = build_ok (f);
  g_assert_cmpint (num (a, "process.oomScoreAdj"), ==, -500);
  f->host.oom_score_restricted = TRUE;
  f->host.oom_score_adj_min = -100;
  g_autoptr (JsonObject) b = build_ok (f);
  g_assert_cmpint (num (b, "process.oomScoreAdj"), ==, -100);
  g_assert_true (has_note (f, "oom_score_adj -500 clamped to -100"));
  f->resources.oom_score_adj = 300;
  g_autoptr (JsonObject) c = build_ok (f);
  g_assert_cmpint (num (c, "process.oomScoreAdj"), ==, 300);
  f->resources.oom_score_adj = -1001;
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "oom_score_adj -1001");
}

/* ---- namespaces, hostname, cgroupsPath ---- */

static char *
namespaces (JsonObject *spec)
{
  JsonArray *a = json_node_get_array (path_get (spec, "linux.namespaces"));
  g_autoptr (GString) s = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *ns = json_array_get_object_element (a, i);
      g_string_append_printf (s, "%s%s", i ? " " : "", json_object_get_string_member (ns, "type"));
      if (json_object_has_member (ns, "path"))
        g_string_append_printf (s, "=%s", json_object_get_string_member (ns, "path"));
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
test_namespaces (Fixture *f, gconstpointer d)
{
  /* kubelet sends the pod's options with the pod and with each of its containers. */
  f->pod_sc.namespace_options = &f->ns;
  g_autoptr (JsonObject) a = build_ok (f);
  g_autofree char *na = namespaces (a);
  g_assert_cmpstr (na, ==,
                   "mount pid network=/run/crisp/ns/net-1 ipc=/run/crisp/ns/ipc-1 "
                   "uts=/run/crisp/ns/uts-1");
  g_assert_null (path_get (a, "hostname")); /* the pod's UTS namespace has it already */
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
  f->ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  g_autoptr (JsonObject) b = build_ok (f);
  g_autofree char *nb = namespaces (b);
  g_assert_cmpstr (nb, ==, "mount pid=/proc/4242/ns/pid");
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
  f->in.utsns_path = NULL;
  g_autoptr (JsonObject) c = build_ok (f);
  g_autofree char *nc = namespaces (c);
  g_assert_cmpstr (nc, ==, "mount network=/run/crisp/ns/net-1 uts");
  g_assert_cmpstr (str (c, "hostname"), ==, "podhost");
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
  f->in.pidns_path = NULL;
  build_fails (f, CRISP_ERROR_FAILED_PRECONDITION, "pid mode POD");
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  f->in.netns_path = NULL;
  build_fails (f, CRISP_ERROR_FAILED_PRECONDITION, "no network namespace");
}

/* Network and IPC are the pod's, whatever a container's own options claim. */
static void
test_namespaces_follow_the_pod (Fixture *f, gconstpointer d)
{
  Runtime__V1__NamespaceOption pod_ns = RUNTIME__V1__NAMESPACE_OPTION__INIT;
  pod_ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  f->pod_sc.namespace_options = &pod_ns;
  f->ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  g_autoptr (JsonObject) a = build_ok (f);
  g_autofree char *na = namespaces (a);
  g_assert_cmpstr (na, ==,
                   "mount pid network=/run/crisp/ns/net-1 ipc=/run/crisp/ns/ipc-1 "
                   "uts=/run/crisp/ns/uts-1");
  /* A request that leaves pid unset (POD) in a pod without a shared PID namespace. */
  f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
  f->in.pidns_path = NULL;
  g_autoptr (JsonObject) b = build_ok (f);
  g_autofree char *nb = namespaces (b);
  g_assert_true (g_str_has_prefix (nb, "mount pid network="));
  pod_ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
  pod_ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
  g_autoptr (JsonObject) c = build_ok (f);
  g_autofree char *nc = namespaces (c);
  g_assert_cmpstr (nc, ==, "mount pid");
}

static void
test_cgroups_path (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) a = build_ok (f);
  g_assert_cmpstr (str (a, "linux.cgroupsPath"), ==, "/kubepods/pod1/crisp-c0ffee");
  f->in.cgroup_driver = CRISP_CGROUP_DRIVER_SYSTEMD;
  f->pod_linux.cgroup_parent = (char *) "kubepods-burstable-pod1.slice";
  g_autoptr (JsonObject) b = build_ok (f);
  g_assert_cmpstr (str (b, "linux.cgroupsPath"), ==, "kubepods-burstable-pod1.slice:crisp:c0ffee");
  f->pod_linux.cgroup_parent = (char *) "/not/a/slice";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "not a systemd slice");
}

/* ---- sysctls, annotations, terminal, stop signal ---- */

static void
test_sysctls (Fixture *f, gconstpointer d)
{
  Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry s[3];
  Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *sp[] = { &s[0], &s[1], &s[2] };
  const char *kv[][2] = { { "net.ipv4.ip_unprivileged_port_start", "0" },
                          { "kernel.shm_rmid_forced", "1" },
                          { "vm.swappiness", "10" } };
  for (int i = 0; i < 3; i++)
    {
      runtime__v1__linux_pod_sandbox_config__sysctls_entry__init (&s[i]);
      s[i].key = (char *) kv[i][0];
      s[i].value = (char *) kv[i][1];
    }
  f->pod_linux.sysctls = sp;
  f->pod_linux.n_sysctls = 3;
  g_autoptr (JsonObject) a = build_ok (f);
  JsonObject *sys = json_node_get_object (path_get (a, "linux.sysctl"));
  g_assert_cmpuint (json_object_get_size (sys), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (sys, "kernel.shm_rmid_forced"), ==, "1");
  g_assert_true (has_note (f, "'vm.swappiness' not applied"));
  /* A host-network pod: network sysctls would change the host's. */
  f->pod_sc.namespace_options = &f->ns;
  f->ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
  g_autoptr (JsonObject) b = build_ok (f);
  sys = json_node_get_object (path_get (b, "linux.sysctl"));
  g_assert_false (json_object_has_member (sys, "net.ipv4.ip_unprivileged_port_start"));
  s[0].value = (char *) "1\n2";
  build_fails (f, CRISP_ERROR_INVALID_ARGUMENT, "sysctl 'net.ipv4.ip_unprivileged_port_start'");
}

static void
test_annotations (Fixture *f, gconstpointer d)
{
  Runtime__V1__ContainerConfig__AnnotationsEntry e[2];
  Runtime__V1__ContainerConfig__AnnotationsEntry *ep[] = { &e[0], &e[1] };
  runtime__v1__container_config__annotations_entry__init (&e[0]);
  runtime__v1__container_config__annotations_entry__init (&e[1]);
  e[0].key = (char *) "example.com/mine";
  e[0].value = (char *) "yes";
  e[1].key = (char *) "io.kubernetes.cri.sandbox-id";
  e[1].value = (char *) "forged";
  f->config.annotations = ep;
  f->config.n_annotations = 2;
  g_autoptr (JsonObject) spec = build_ok (f);
  JsonObject *a = json_node_get_object (path_get (spec, "annotations"));
  g_assert_cmpstr (json_object_get_string_member (a, "example.com/mine"), ==, "yes");
  g_assert_cmpstr (json_object_get_string_member (a, "io.kubernetes.cri.sandbox-id"), ==, "5a4d");
  g_assert_cmpstr (json_object_get_string_member (a, "io.kubernetes.cri.container-type"), ==,
                   "container");
  g_assert_cmpstr (json_object_get_string_member (a, "io.kubernetes.cri.container-name"), ==,
                   "web");
  g_assert_cmpstr (json_object_get_string_member (a, "io.kubernetes.cri.sandbox-name"), ==, "pod");
  g_assert_cmpstr (json_object_get_string_member (a, "io.kubernetes.cri.sandbox-namespace"), ==,
                   "default");
  g_assert_cmpstr (json_object_get_string_member (a, "io.kubernetes.cri.image-name"), ==,
                   "example.com/app:1");
  g_assert_cmpstr (str (spec, "ociVersion"), ==, "1.0.2");
}

static void
test_terminal_and_rlimits (Fixture *f, gconstpointer d)
{
  g_autoptr (JsonObject) a = build_ok (f);
  g_assert_false (json_node_get_boolean (path_get (a, "process.terminal")));
  g_assert_null (path_get (a, "process.rlimits"));
  f->config.tty = TRUE;
  f->config.stdin = TRUE;
  g_autoptr (JsonObject) b = build_ok (f);
  g_assert_true (json_node_get_boolean (path_get (b, "process.terminal")));
}

static void
test_stop_signal (Fixture *f, gconstpointer d)
{
  g_autoptr (GError) error = NULL;
  int sig = 0;
  g_assert_true (crisp_oci_stop_signal (&f->config, f->image, &sig, &error));
  g_assert_cmpint (sig, ==, SIGQUIT);
  f->config.stop_signal = RUNTIME__V1__SIGNAL__SIGNAL_SIGUSR1;
  g_assert_true (crisp_oci_stop_signal (&f->config, f->image, &sig, &error));
  g_assert_cmpint (sig, ==, SIGUSR1);
  f->config.stop_signal = RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT;
  json_object_set_string_member (f->image, "StopSignal", "9");
  g_assert_true (crisp_oci_stop_signal (&f->config, f->image, &sig, &error));
  g_assert_cmpint (sig, ==, SIGKILL);
  json_object_set_string_member (f->image, "StopSignal", "SIGBOGUS");
  g_assert_false (crisp_oci_stop_signal (&f->config, f->image, &sig, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_true (crisp_oci_stop_signal (&f->config, NULL, &sig, NULL));
  g_assert_cmpint (sig, ==, SIGTERM);
  g_clear_error (&error);
  json_object_set_string_member (f->image, "StopSignal", "SIGRTMIN+3");
  g_assert_true (crisp_oci_stop_signal (&f->config, f->image, &sig, &error));
  g_assert_cmpint (sig, ==, 37);
}

/* Every value of the CRI's enum names the signal Docker's table gives its name. */
static void
test_stop_signal_cri_enum (Fixture *f, gconstpointer d)
{
  const ProtobufCEnumDescriptor *desc = &runtime__v1__signal__descriptor;
  for (unsigned i = 0; i < desc->n_values; i++)
    {
      const ProtobufCEnumValue *v = &desc->values[i];
      if (v->value == RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT)
        continue;
      /* "SIGNAL_SIGRTMINPLUS3" is spelt "SIGRTMIN+3" elsewhere */
      g_autoptr (GString) name = g_string_new (v->name + strlen ("SIGNAL_"));
      g_string_replace (name, "PLUS", "+", 1);
      g_string_replace (name, "MINUS", "-", 1);
      int want = 0, sig = 0;
      g_assert_cmpint (crisp_signal_parse (name->str, &want), ==, 0);
      f->config.stop_signal = (Runtime__V1__Signal) v->value;
      g_autoptr (GError) error = NULL;
      g_assert_true (crisp_oci_stop_signal (&f->config, f->image, &sig, &error));
      g_assert_no_error (error);
      g_assert_cmpint (sig, ==, want);
      /* and back (ContainerStatus.stop_signal): an alias (SIGIOT, SIGCLD, SIGPOLL) comes back
       * as the canonical name of its number, which reads as the same signal */
      int again = 0;
      Runtime__V1__Signal back = crisp_oci_signal_to_cri (sig);
      f->config.stop_signal = back;
      g_assert_true (crisp_oci_stop_signal (&f->config, f->image, &again, NULL));
      g_assert_cmpint (again, ==, sig);
    }
  g_assert_cmpint (crisp_oci_signal_to_cri (SIGTERM), ==, RUNTIME__V1__SIGNAL__SIGNAL_SIGTERM);
  g_assert_cmpint (crisp_oci_signal_to_cri (34), ==, RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMIN);
  g_assert_cmpint (crisp_oci_signal_to_cri (64), ==, RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMAX);
  g_assert_cmpint (crisp_oci_signal_to_cri (32), ==, RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT);
  g_assert_cmpint (crisp_oci_signal_to_cri (65), ==, RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT);
  f->config.stop_signal = (Runtime__V1__Signal) 99;
  int sig = 0;
  g_autoptr (GError) error = NULL;
  g_assert_false (crisp_oci_stop_signal (&f->config, f->image, &sig, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
}

static void
test_host_probe (void)
{
  CrispOciHost h;
  crisp_oci_host_probe (NULL, &h);
  g_assert_cmpint (h.cap_last_cap, >=, 30);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents ("/proc/self/oom_score_adj", &text, NULL, NULL));
  g_assert_cmpint (h.oom_score_adj_min, ==, atoi (text));
}

static gboolean
runc_usable (void)
{
  g_autofree char *runc = g_find_program_in_path ("runc");
  if (getuid () == 0 && runc != NULL && g_file_test ("/bin/busybox", G_FILE_TEST_IS_EXECUTABLE))
    return TRUE;
  g_test_skip ("needs root, runc and a static /bin/busybox");
  return FALSE;
}

/* Puts busybox in the fixture's rootfs, runs script there with the host's network and IPC,
 * builds the spec from the fixture with the real host facts, runs it with `runc run` and
 * returns its stdout. */
static char *
run_in_runc (Fixture *f, const char *script)
{
  g_autofree char *bin = g_build_filename (f->rootfs, "bin", NULL);
  g_autofree char *cp = g_strdup_printf ("cp /bin/busybox '%s/busybox'", bin);
  g_assert_cmpint (g_mkdir_with_parents (bin, 0755), ==, 0);
  g_assert_cmpint (system (cp), ==, 0);
  for (const char *const *dir = (const char *const[]){ "proc", "sys", "dev", "tmp", NULL }; *dir;
       dir++)
    {
      g_autofree char *p = g_build_filename (f->rootfs, *dir, NULL);
      g_assert_cmpint (g_mkdir_with_parents (p, 0755), ==, 0);
    }
  char *cmd[] = { (char *) "/bin/busybox", (char *) "sh", (char *) "-c", (char *) script };
  f->config.command = cmd;
  f->config.n_command = G_N_ELEMENTS (cmd);
  f->ns.network = f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  f->pod_sc.namespace_options = &f->ns; /* a host-network, host-IPC pod */
  f->pod_linux.cgroup_parent = (char *) "";
  f->in.container_id = "crisp-unit-oci";
  f->in.resolv_conf_path = f->in.hostname_path = f->in.hosts_path = f->in.shm_path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new (NULL, &error);
  g_assert_no_error (error);
  crisp_oci_host_probe (cg, &f->host);
  g_autoptr (JsonObject) spec = build_ok (f);
  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), spec);
  g_autofree char *json = json_to_string (node, TRUE);
  g_autofree char *config = g_build_filename (f->dir, "a", "b", "config.json", NULL);
  g_assert_true (g_file_set_contents (config, json, -1, NULL));
  g_autofree char *bundle = g_path_get_dirname (config);
  g_autofree char *state = g_build_filename (f->dir, "runc-state", NULL);
  g_autofree char *runc = g_find_program_in_path ("runc");
  const char *argv[] = { runc, "--root", state, "run", "--bundle", bundle, "crisp-unit-oci", NULL };
  char *out = NULL;
  g_autofree char *err = NULL;
  int status = -1;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL,
                               &out, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("runc run failed: %s\n%s", err, json);
  return out;
}

/* A read-only root, user 'app', RuntimeDefault seccomp, no-new-privileges, a memory limit and
 * a negative oom_score_adj (clamped where the host forbids it), checked from inside. */
static void
test_runc_runs_confined (Fixture *f, gconstpointer d)
{
  if (!runc_usable ())
    return;
  json_object_set_string_member (f->image, "User", "app");
  f->sc.readonly_rootfs = TRUE;
  f->sc.no_new_privs = TRUE;
  Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
  f->sc.seccomp = &sp;
  f->resources.memory_limit_in_bytes = 64 << 20;
  f->resources.oom_score_adj = -10;
  g_autofree char *out = run_in_runc (f, "id -u; id -G; "
                                         "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; "
                                         "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
                                         "touch /x 2>/dev/null || echo ro-root; "
                                         "unshare -U true 2>/dev/null || echo no-unshare");
  g_assert_cmpstr (out, ==,
                   "1000\n1000 10 29\nNoNewPrivs:\t1\nSeccomp:\t2\n67108864\nro-root\n"
                   "no-unshare\n");
  if (f->host.oom_score_restricted && f->host.oom_score_adj_min > -10)
    g_assert_true (has_note (f, "clamped"));
}

/* Privileged: every host device, all capabilities, no seccomp, writable /sys. */
static void
test_runc_runs_privileged (Fixture *f, gconstpointer d)
{
  if (!runc_usable ())
    return;
  f->sc.privileged = TRUE;
  f->pod_sc.privileged = TRUE;
  g_autofree char *out = run_in_runc (f, "grep -E '^(Seccomp|CapEff):' /proc/self/status; "
                                         "test -c /dev/null && echo null; "
                                         "grep -q ' /sys sysfs rw' /proc/mounts && echo sys-rw");
  guint64 all = ((G_GUINT64_CONSTANT (1) << (f->host.cap_last_cap + 1)) - 1) & f->host.cap_bounding;
  g_autofree char *caps = g_strdup_printf ("CapEff:\t%016" G_GINT64_MODIFIER "x\n", all);
  g_assert_nonnull (strstr (out, caps));
  g_assert_nonnull (strstr (out, "Seccomp:\t0\n"));
  g_assert_nonnull (strstr (out, "null\n"));
  g_assert_nonnull (strstr (out, "sys-rw\n"));
}

#define ADD(name, fn) g_test_add ("/oci/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ADD ("args/image-default", test_args_image_default);
  ADD ("args/command-replaces", test_args_command_replaces_entrypoint_and_cmd);
  ADD ("args/args-alone", test_args_alone_replace_cmd);
  ADD ("args/none", test_args_none_is_invalid);
  ADD ("env/order", test_env_image_then_request);
  ADD ("env/smuggling", test_env_rejects_smuggling);
  ADD ("cwd", test_cwd);
  ADD ("user/image-forms", test_user_image_forms);
  ADD ("user/request", test_user_request);
  ADD ("user/supplemental", test_user_supplemental_groups);
  ADD ("user/passwd-symlink", test_user_passwd_symlink_stays_in_root);
  ADD ("mounts/defaults", test_mounts_defaults);
  ADD ("mounts/request", test_mounts_request);
  ADD ("mounts/reject", test_mounts_reject);
  ADD ("mounts/recursive-ro", test_mounts_recursive_ro);
  ADD ("mounts/image", test_mounts_image);
  ADD ("mounts/id-mapped", test_mounts_id_mapped);
  ADD ("userns/joins-the-pod", test_userns_joins_the_pod);
  ADD ("userns/container-must-match", test_userns_container_must_match);
  ADD ("userns/mount-mappings", test_userns_mount_mappings);
  ADD ("devices", test_devices);
  ADD ("caps/default", test_caps_default);
  ADD ("caps/add-drop", test_caps_add_drop);
  ADD ("caps/all", test_caps_all);
  ADD ("caps/unknown", test_caps_unknown);
  ADD ("caps/outside-bounding-set", test_caps_outside_bounding_set);
  ADD ("privileged", test_privileged);
  ADD ("nnp-readonly-root", test_nnp_and_readonly_root);
  ADD ("masked-readonly-paths", test_masked_readonly_paths);
  ADD ("seccomp/profiles", test_seccomp_profiles);
  ADD ("seccomp/deprecated-path", test_seccomp_deprecated_path);
  ADD ("lsm-notes", test_lsm_notes);
  ADD ("resources/basic", test_resources);
  ADD ("resources/hugepages-unified", test_resources_hugepages_and_unified);
  ADD ("oom-score", test_oom_score);
  ADD ("namespaces", test_namespaces);
  ADD ("namespaces-follow-the-pod", test_namespaces_follow_the_pod);
  ADD ("cgroups-path", test_cgroups_path);
  ADD ("sysctls", test_sysctls);
  ADD ("annotations", test_annotations);
  ADD ("terminal", test_terminal_and_rlimits);
  ADD ("stop-signal", test_stop_signal);
  ADD ("stop-signal-cri-enum", test_stop_signal_cri_enum);
  g_test_add_func ("/oci/host-probe", test_host_probe);
  ADD ("runc/confined", test_runc_runs_confined);
  ADD ("runc/privileged", test_runc_runs_privileged);
  return g_test_run ();
}
