/* Unit tests for the checkpoint archive (pkg/container/container-checkpoint.c) without CRIU:
 * the files written beside CRIU's images (spec.dump, config.dump, rootfs-diff.tar,
 * deleted.files) from a container's directories, and the archive written into place whole.
 * The integration tests cannot reach these where `criu check` fails. */
#include "config.h"

#include "pkg/container/container-private.h"

#include "crisp-base.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define ID_A "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define IMAGE_ID "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SPEC "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sleep\",\"9\"]}}"

typedef struct
{
  char *dir;
  CrispContainerService svc; /* the store and run_dir give the container's paths */
  CrispContainer *c;
  char *work;
} Fixture;

static void
put (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (path);
  g_assert_cmpint (crisp_mkdir_p (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("crisp-test-checkpoint-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *root = g_build_filename (f->dir, "containers", NULL);
  f->svc.store = crisp_store_open (root, &error);
  g_assert_no_error (error);
  f->svc.run_dir = g_build_filename (f->dir, "run", NULL);
  g_mutex_init (&f->svc.lock);
  f->c = crisp_container_new ();
  f->c->id = g_strdup (ID_A);
  f->c->name = g_strdup ("web");
  f->c->image_id = g_strdup (IMAGE_ID);
  f->c->runtime = g_strdup ("runc");
  f->c->created_at = G_GINT64_CONSTANT (1700000000123456789);
  Runtime__V1__ContainerConfig cfg = RUNTIME__V1__CONTAINER_CONFIG__INIT;
  Runtime__V1__ImageSpec image = RUNTIME__V1__IMAGE_SPEC__INIT;
  image.image = (char *) "example.com/web:1";
  cfg.image = &image;
  f->c->config = crisp_proto_dup (&cfg.base);
  g_autofree char *run = crisp_container_run_path (&f->svc, ID_A, NULL);
  put (run, "config.json", SPEC);
  f->work = crisp_container_run_path (&f->svc, ID_A, "checkpoint");
  put (f->work, "checkpoint/inventory.img", "criu images");
  put (f->work, "criu/dump.log", "criu log");
}

static void
teardown (Fixture *f, gconstpointer data)
{
  crisp_container_unref (f->c);
  crisp_store_free (f->svc.store);
  g_free (f->svc.run_dir);
  g_free (f->work);
  g_mutex_clear (&f->svc.lock);
  g_assert_cmpint (crisp_store_rm_rf_at (AT_FDCWD, f->dir), ==, 0);
  g_free (f->dir);
}

/* The members of the tar at path: name -> content (files) or "" (others), "->target" for
 * links. */
static GHashTable *
read_tar (const char *path)
{
  GHashTable *members = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  g_assert_cmpint (archive_read_open_filename (a, path, 16384), ==, ARCHIVE_OK);
  struct archive_entry *e;
  while (archive_read_next_header (a, &e) == ARCHIVE_OK)
    {
      g_autoptr (GString) s = g_string_new (NULL);
      if (archive_entry_symlink (e))
        g_string_printf (s, "->%s", archive_entry_symlink (e));
      char buf[4096];
      la_ssize_t n;
      while ((n = archive_read_data (a, buf, sizeof buf)) > 0)
        g_string_append_len (s, buf, n);
      g_hash_table_insert (members, g_strdup (archive_entry_pathname (e)),
                           g_string_free (g_steal_pointer (&s), FALSE));
    }
  archive_read_free (a);
  return members;
}

static JsonNode *
load_json (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, path, NULL));
  return json_node_copy (json_parser_get_root (p));
}

/* The upper directory holds what changed; the container's root filesystem (here a plain
 * directory standing for the overlay mount) holds what the container sees. */
static void
test_files_from_the_writable_layer (Fixture *f, gconstpointer data)
{
  g_autofree char *upper = crisp_container_root_path (&f->svc, ID_A, "upper");
  g_autofree char *rootfs = crisp_container_run_path (&f->svc, ID_A, "rootfs");
  put (upper, "etc/changed", "");               /* a metadata-only copy-up: no data here */
  put (rootfs, "etc/changed", "what it reads"); /* ... the container sees this */
  put (rootfs, "etc/untouched", "image data");  /* not in the upper layer: not taken */
  put (upper, "tmp/count", "");
  put (rootfs, "tmp/count", "42\n");
  g_autofree char *link_upper = g_build_filename (upper, "tmp/link", NULL);
  g_autofree char *link_root = g_build_filename (rootfs, "tmp/link", NULL);
  g_assert_cmpint (symlink ("count", link_upper), ==, 0);
  g_assert_cmpint (symlink ("count", link_root), ==, 0);
  g_autofree char *gone = g_build_filename (upper, "etc/gone", NULL);
  gboolean whiteouts = mknod (gone, S_IFCHR | 0000, makedev (0, 0)) == 0;

  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_container_checkpoint_write_files (&f->svc, f->c, f->work, &error));
  g_assert_no_error (error);

  g_autofree char *spec = NULL;
  g_autofree char *spec_path = g_build_filename (f->work, "spec.dump", NULL);
  g_assert_true (g_file_get_contents (spec_path, &spec, NULL, NULL));
  g_assert_cmpstr (spec, ==, SPEC);
  g_autoptr (JsonNode) config = load_json (f->work, "config.dump");
  JsonObject *o = json_node_get_object (config);
  g_assert_cmpstr (json_object_get_string_member (o, "id"), ==, ID_A);
  g_assert_cmpstr (json_object_get_string_member (o, "name"), ==, "web");
  g_assert_cmpstr (json_object_get_string_member (o, "rootfsImageName"), ==, "example.com/web:1");
  g_assert_cmpstr (json_object_get_string_member (o, "rootfsImageRef"), ==, IMAGE_ID);
  g_assert_cmpstr (json_object_get_string_member (o, "runtime"), ==, "runc");
  g_assert_cmpstr (json_object_get_string_member (o, "createdTime"), ==,
                   "2023-11-14T22:13:20.123456789Z");
  g_assert_true (json_object_has_member (o, "checkpointedTime"));
  g_assert_true (json_object_has_member (o, "rootfsImage"));

  g_autofree char *diff_path = g_build_filename (f->work, "rootfs-diff.tar", NULL);
  g_autoptr (GHashTable) diff = read_tar (diff_path);
  g_assert_cmpstr (g_hash_table_lookup (diff, "etc/changed"), ==, "what it reads");
  g_assert_cmpstr (g_hash_table_lookup (diff, "tmp/count"), ==, "42\n");
  g_assert_cmpstr (g_hash_table_lookup (diff, "tmp/link"), ==, "->count");
  g_assert_true (g_hash_table_contains (diff, "etc/"));
  g_assert_false (g_hash_table_contains (diff, "etc/untouched"));
  g_assert_false (g_hash_table_contains (diff, "etc/gone"));
  g_assert_cmpuint (g_hash_table_size (diff), ==, 5); /* etc, etc/changed, tmp, count, link */

  g_autoptr (JsonNode) deleted = load_json (f->work, "deleted.files");
  JsonArray *list = json_node_get_array (deleted);
  if (whiteouts)
    {
      g_assert_cmpuint (json_array_get_length (list), ==, 1);
      g_assert_cmpstr (json_array_get_string_element (list, 0), ==, "etc/gone");
    }
  else
    g_assert_cmpuint (json_array_get_length (list), ==, 0);
  g_autofree char *log = g_build_filename (f->work, "dump.log", NULL);
  g_assert_true (g_file_test (log, G_FILE_TEST_IS_REGULAR));
  if (!whiteouts)
    g_test_skip ("mknod of a whiteout needs CAP_MKNOD: deleted.files not exercised");
}

static void
test_archive_written_whole (Fixture *f, gconstpointer data)
{
  put (f->work, "spec.dump", SPEC);
  put (f->work, "config.dump", "{}");
  g_autofree char *out = g_build_filename (f->dir, "out", NULL);
  put (out, "ckpt.tar", "an older archive");
  _cleanup_close_ int dirfd = open (out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_autoptr (GError) error = NULL;
  g_autofree char *location = g_build_filename (out, "ckpt.tar", NULL);
  g_assert_true (
      crisp_container_checkpoint_write_archive (f->work, dirfd, "ckpt.tar", location, &error));
  g_assert_no_error (error);
  g_autoptr (GHashTable) tar = read_tar (location);
  g_assert_cmpstr (g_hash_table_lookup (tar, "spec.dump"), ==, SPEC);
  g_assert_cmpstr (g_hash_table_lookup (tar, "checkpoint/inventory.img"), ==, "criu images");
  g_assert_true (g_hash_table_contains (tar, "checkpoint/"));
  g_assert_true (g_hash_table_contains (tar, "config.dump"));
  g_assert_false (g_hash_table_contains (tar, "criu/dump.log")); /* CRIU's work files stay */
  g_assert_cmpuint (g_hash_table_size (tar), ==, 4);
  g_autoptr (GDir) d = g_dir_open (out, 0, NULL);
  g_assert_cmpstr (g_dir_read_name (d), ==, "ckpt.tar"); /* nothing else, no temporary */
  g_assert_null (g_dir_read_name (d));
}

static void
test_archive_failure_leaves_nothing (Fixture *f, gconstpointer data)
{
  g_autofree char *out = g_build_filename (f->dir, "out", NULL);
  g_assert_cmpint (g_mkdir (out, 0700), ==, 0);
  _cleanup_close_ int dirfd = open (out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_autofree char *missing = g_build_filename (f->dir, "no-such-work", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_false (
      crisp_container_checkpoint_write_archive (missing, dirfd, "ckpt.tar", "/x", &error));
  g_assert_nonnull (error);
  g_autoptr (GDir) d = g_dir_open (out, 0, NULL);
  g_assert_null (g_dir_read_name (d));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/checkpoint/" name, Fixture, NULL, setup, fn, teardown)
  ADD ("files-from-the-writable-layer", test_files_from_the_writable_layer);
  ADD ("archive-written-whole", test_archive_written_whole);
  ADD ("archive-failure-leaves-nothing", test_archive_failure_leaves_nothing);
  return g_test_run ();
}
