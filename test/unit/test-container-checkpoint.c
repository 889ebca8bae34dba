/* Unit tests for the checkpoint archive (pkg/container/container-checkpoint*.c) without CRIU:
 * the files written beside CRIU's images (spec.dump, config.dump, rootfs-diff.tar,
 * deleted.files) from a container's directories, the archive written into place whole, and
 * the restore's side: the archive (hostile) unpacked, its changes applied inside a root, the
 * checkpointed process given to the new container's spec. The integration tests cannot reach
 * these where `criu check` fails. */
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

/* A tar at path with these members (hostile ones included). */
typedef struct
{
  const char *name;
  mode_t type;      /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR ... */
  const char *data; /* a file's content, a symbolic link's target */
  const char *hard; /* a hard link's target */
} Member;

static void
write_tar (const char *path, const Member *m, gsize n)
{
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  g_assert_cmpint (archive_write_open_filename (a, path), ==, ARCHIVE_OK);
  for (gsize i = 0; i < n; i++)
    {
      struct archive_entry *e = archive_entry_new ();
      archive_entry_set_pathname (e, m[i].name);
      archive_entry_set_filetype (e, m[i].type);
      archive_entry_set_perm (e, m[i].type == AE_IFDIR ? 0751 : 0640);
      archive_entry_set_uid (e, getuid ());
      archive_entry_set_gid (e, getgid ());
      archive_entry_set_mtime (e, 1500000000, 0);
      if (m[i].hard)
        archive_entry_set_hardlink (e, m[i].hard);
      else if (m[i].type == AE_IFLNK)
        archive_entry_set_symlink (e, m[i].data);
      gsize len = m[i].type == AE_IFREG && !m[i].hard && m[i].data ? strlen (m[i].data) : 0;
      archive_entry_set_size (e, (la_int64_t) len);
      g_assert_cmpint (archive_write_header (a, e), ==, ARCHIVE_OK);
      if (len)
        g_assert_cmpint (archive_write_data (a, m[i].data, len), ==, (la_ssize_t) len);
      archive_entry_free (e);
    }
  g_assert_cmpint (archive_write_close (a), ==, ARCHIVE_OK);
  archive_write_free (a);
}

static char *
slurp (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *text = NULL;
  return g_file_get_contents (path, &text, NULL, NULL) ? text : NULL;
}

static void
assert_content (const char *dir, const char *name, const char *expected)
{
  g_autofree char *text = slurp (dir, name);
  g_assert_cmpstr (text, ==, expected);
}

static gboolean
exists (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  struct stat st;
  return lstat (path, &st) == 0;
}

/* A directory that stands for a freshly mounted image root, with a link to "/" in it: what
 * is resolved through the link must stay inside. */
static char *
image_root (Fixture *f)
{
  g_autofree char *root = g_build_filename (f->dir, "image-root", NULL);
  put (root, "etc/os-release", "image");
  put (root, "etc/gone", "deleted by the container");
  put (root, "var/lib/state/a", "deleted with its directory");
  put (root, "tmp/count", "0\n");
  g_autofree char *up = g_build_filename (root, "up", NULL);
  g_assert_cmpint (symlink ("/", up), ==, 0);
  return g_steal_pointer (&root);
}

/* The archive's members unpacked into a directory, as a checkpoint image's files are. */
static char *
unpacked_archive (Fixture *f, const char *archive)
{
  g_autofree char *dir = g_build_filename (f->dir, "image-files", NULL);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  const char *argv[] = { "tar", "-C", dir, "-xf", archive, NULL };
  int status = -1;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  return g_steal_pointer (&dir);
}

/* A checkpoint crisp writes is what a restore unpacks and applies: the archive round trip
 * without CRIU; with data, the archive is first unpacked as a checkpoint image holds it, and
 * its files are read and unpacked the same way. */
static void
test_restore_round_trip (Fixture *f, gconstpointer data)
{
  g_autofree char *upper = crisp_container_root_path (&f->svc, ID_A, "upper");
  g_autofree char *rootfs = crisp_container_run_path (&f->svc, ID_A, "rootfs");
  put (upper, "tmp/count", "");
  put (rootfs, "tmp/count", "41\n");
  put (upper, "data/new", "");
  put (rootfs, "data/new", "made by the container");
  g_autofree char *gone = g_build_filename (upper, "etc/gone", NULL);
  put (upper, "etc/keep", "");
  put (rootfs, "etc/keep", "kept");
  gboolean whiteouts = mknod (gone, S_IFCHR | 0000, makedev (0, 0)) == 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_container_checkpoint_write_files (&f->svc, f->c, f->work, &error));
  g_assert_no_error (error);
  g_autofree char *out = g_build_filename (f->dir, "out", NULL);
  g_assert_cmpint (g_mkdir (out, 0700), ==, 0);
  _cleanup_close_ int outfd = open (out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_autofree char *archive = g_build_filename (out, "ckpt.tar", NULL);
  g_assert_true (
      crisp_container_checkpoint_write_archive (f->work, outfd, "ckpt.tar", archive, &error));
  g_assert_no_error (error);

  g_autofree char *files = data ? unpacked_archive (f, archive) : NULL;
  _cleanup_close_ int filesfd = files ? open (files, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  JsonNode *config = NULL, *spec = NULL;
  g_assert_true (
      data ? crisp_container_checkpoint_read_dir (filesfd, "image", &config, &spec, &error)
           : crisp_container_checkpoint_read_archive (archive, &config, &spec, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (config), "rootfsImageRef"),
                   ==, IMAGE_ID);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (spec));
  json_node_unref (config);
  json_node_unref (spec);

  g_autofree char *dest = g_build_filename (f->dir, "restore", NULL);
  g_assert_cmpint (g_mkdir (dest, 0700), ==, 0);
  _cleanup_close_ int destfd = open (dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_true (data ? crisp_container_restore_unpack_dir (filesfd, "image", destfd, &error)
                      : crisp_container_restore_unpack (archive, destfd, &error));
  g_assert_no_error (error);
  assert_content (dest, "checkpoint/inventory.img", "criu images");
  g_assert_false (exists (dest, "config.dump")); /* read, not unpacked */
  g_assert_false (exists (dest, "dump.log"));

  g_autofree char *root = image_root (f);
  _cleanup_close_ int rootfd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_close_ int tarfd = openat (destfd, "rootfs-diff.tar", O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (tarfd, >=, 0);
  g_assert_true (crisp_container_restore_apply_diff (rootfd, tarfd, "diff", &error));
  g_assert_no_error (error);
  g_assert_true (crisp_container_restore_remove_deleted (rootfd, destfd, "deleted.files", &error));
  g_assert_no_error (error);
  assert_content (root, "tmp/count", "41\n");
  assert_content (root, "data/new", "made by the container");
  assert_content (root, "etc/os-release", "image");
  g_assert_cmpint (exists (root, "etc/gone"), ==, !whiteouts);
  if (!whiteouts)
    g_test_skip ("mknod of a whiteout needs CAP_MKNOD: deleted.files not exercised");
}

/* What the archive unpacks: directories and files only, inside, each once. */
static void
test_restore_unpack_refuses_hostile_members (Fixture *f, gconstpointer data)
{
  const struct
  {
    Member m;
    const char *why;
  } cases[] = {
    { { "checkpoint/../../evil", AE_IFREG, "x", NULL }, "escapes" },
    { { "/checkpoint/abs", AE_IFREG, "x", NULL }, "escapes" },
    { { "checkpoint/link", AE_IFLNK, "/etc", NULL }, "neither a directory nor a regular file" },
    { { "checkpoint/hard", AE_IFREG, NULL, "../../etc/passwd" }, "not a regular file" },
    { { "checkpoint/dev", AE_IFCHR, NULL, NULL }, "neither a directory nor a regular file" },
    { { "rootfs-diff.tar", AE_IFDIR, NULL, NULL }, "not a regular file" },
    { { "checkpoint/pages.img", AE_IFREG, "again", NULL }, "appears twice" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Member members[] = {
        { "checkpoint/", AE_IFDIR, NULL, NULL },
        { "checkpoint/pages.img", AE_IFREG, "pages", NULL },
        { "dump.log", AE_IFLNK, "/etc/shadow", NULL }, /* not wanted: skipped, never made */
        cases[i].m,
      };
      g_autofree char *tar = g_build_filename (f->dir, "hostile.tar", NULL);
      write_tar (tar, members, G_N_ELEMENTS (members));
      g_autofree char *dest = g_build_filename (f->dir, "dest", NULL);
      g_assert_cmpint (g_mkdir (dest, 0700), ==, 0);
      _cleanup_close_ int destfd = open (dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      g_autoptr (GError) error = NULL;
      g_test_message ("member '%s'", cases[i].m.name);
      g_assert_false (crisp_container_restore_unpack (tar, destfd, &error));
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, cases[i].why));
      g_assert_false (exists (f->dir, "evil"));
      g_assert_false (exists (dest, "dump.log"));
      g_assert_cmpint (crisp_store_rm_rf_at (AT_FDCWD, dest), ==, 0);
    }
}

/* rootfs-diff.tar is resolved inside the root: a link to "/" leads to the root's top, and
 * nothing lands outside. */
static void
test_restore_diff_stays_inside (Fixture *f, gconstpointer data)
{
  g_autofree char *root = image_root (f);
  g_autofree char *outside = g_build_filename (f->dir, "outside", NULL);
  g_autofree char *rel = g_strdup_printf ("up%s/planted", outside); /* up -> "/" */
  const Member members[] = {
    { "./", AE_IFDIR, NULL, NULL },
    { "etc/", AE_IFDIR, NULL, NULL },
    { "etc/os-release", AE_IFREG, "changed", NULL },
    { "etc/hard", AE_IFREG, NULL, "etc/os-release" },
    { "etc/link", AE_IFLNK, "/etc/os-release", NULL },
    { "tmp/count", AE_IFDIR, NULL, NULL }, /* a file replaced by a directory */
    { "up/etc-via-link", AE_IFREG, "inside", NULL },
    { "fifo", AE_IFIFO, NULL, NULL },
  };
  g_autofree char *tar = g_build_filename (f->dir, "diff.tar", NULL);
  write_tar (tar, members, G_N_ELEMENTS (members));
  g_assert_cmpint (g_mkdir (outside, 0700), ==, 0);
  _cleanup_close_ int rootfd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_close_ int tarfd = open (tar, O_RDONLY | O_CLOEXEC);
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_container_restore_apply_diff (rootfd, tarfd, "diff", &error));
  g_assert_no_error (error);
  assert_content (root, "etc/os-release", "changed");
  assert_content (root, "etc/hard", "changed");
  assert_content (root, "etc-via-link", "inside");
  struct stat st;
  g_autofree char *os_path = g_build_filename (root, "etc/os-release", NULL);
  g_assert_cmpint (lstat (os_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0640);
  g_assert_cmpint (st.st_mtime, ==, 1500000000);
  g_assert_cmpint (st.st_nlink, ==, 2);
  g_autofree char *count = g_build_filename (root, "tmp/count", NULL);
  g_assert_true (g_file_test (count, G_FILE_TEST_IS_DIR));
  g_autofree char *link = g_build_filename (root, "etc/link", NULL);
  g_autofree char *target = g_file_read_link (link, NULL);
  g_assert_cmpstr (target, ==, "/etc/os-release");

  /* Through the link to "/" and the path of a host directory: still inside the root. */
  const Member escape[] = { { rel, AE_IFREG, "planted", NULL } };
  write_tar (tar, escape, 1);
  _cleanup_close_ int tarfd2 = open (tar, O_RDONLY | O_CLOEXEC);
  g_assert_false (crisp_container_restore_apply_diff (rootfd, tarfd2, "diff", &error));
  /* the directory does not exist inside the root */
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_false (exists (outside, "planted"));
  g_clear_error (&error);

  const Member dev[] = { { "etc/sda", AE_IFBLK, NULL, NULL } };
  write_tar (tar, dev, 1);
  _cleanup_close_ int tarfd3 = open (tar, O_RDONLY | O_CLOEXEC);
  g_assert_false (crisp_container_restore_apply_diff (rootfd, tarfd3, "diff", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  const Member dotdot[] = { { "etc/../../x", AE_IFREG, "x", NULL } };
  write_tar (tar, dotdot, 1);
  _cleanup_close_ int tarfd4 = open (tar, O_RDONLY | O_CLOEXEC);
  g_assert_false (crisp_container_restore_apply_diff (rootfd, tarfd4, "diff", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_false (exists (f->dir, "x"));
  g_clear_error (&error);

  const Member nowhere[] = { { "etc/h2", AE_IFREG, NULL, "no/such/file" } };
  write_tar (tar, nowhere, 1);
  _cleanup_close_ int tarfd5 = open (tar, O_RDONLY | O_CLOEXEC);
  g_assert_false (crisp_container_restore_apply_diff (rootfd, tarfd5, "diff", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "member 'etc/h2' cannot be made"));
}

/* deleted.files removes inside the root only; a directory goes with what it holds. */
static void
test_restore_deleted_files (Fixture *f, gconstpointer data)
{
  g_autofree char *root = image_root (f);
  g_autofree char *outside = g_build_filename (f->dir, "outside", NULL);
  put (outside, "victim", "must stay");
  g_autofree char *list = g_strdup_printf (
      "[\"/etc/gone\", \"var/lib/state\", \"not/there\", \"up%s/victim\"]", outside);
  g_autofree char *dest = g_build_filename (f->dir, "restore", NULL);
  put (dest, "deleted.files", list);
  _cleanup_close_ int destfd = open (dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_close_ int rootfd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_container_restore_remove_deleted (rootfd, destfd, "deleted.files", &error));
  g_assert_no_error (error);
  g_assert_false (exists (root, "etc/gone"));
  g_assert_false (exists (root, "var/lib/state"));
  g_assert_true (exists (root, "etc/os-release"));
  g_assert_true (exists (outside, "victim"));

  const char *bad[] = { "[\"../outside/victim\"]", "[\"/\"]", "[1]", "{}", "not json" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      put (dest, "deleted.files", bad[i]);
      g_assert_false (
          crisp_container_restore_remove_deleted (rootfd, destfd, "deleted.files", &error));
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }
  g_assert_true (exists (outside, "victim"));
  g_assert_cmpint (unlinkat (destfd, "deleted.files", 0), ==, 0);
  g_assert_true (crisp_container_restore_remove_deleted (rootfd, destfd, "deleted.files", &error));
}

static JsonNode *
json (const char *text)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p, text, -1, NULL));
  return json_node_copy (json_parser_get_root (p));
}

#define NEW_SPEC                                                                                   \
  "{\"process\":{\"terminal\":false,\"args\":[\"from-image\"],\"env\":[\"PATH=/bin\"],"            \
  "\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},\"capabilities\":{\"bounding\":[]}},"              \
  "\"mounts\":[{\"destination\":\"/proc\"},{\"destination\":\"/data\"}]}"

/* The new pod's spec keeps its own mounts, namespaces and limits and takes the checkpointed
 * process. */
static void
test_restore_spec_takes_the_process (Fixture *f, gconstpointer data)
{
  g_autoptr (JsonNode) spec = json (NEW_SPEC);
  g_autoptr (JsonNode) dump = json (
      "{\"process\":{\"args\":[\"sh\",\"-c\",\"count\"],\"env\":[\"A=1\"],\"cwd\":\"/work\","
      "\"user\":{\"uid\":1000,\"gid\":100,\"additionalGids\":[100]}},"
      "\"mounts\":[{\"destination\":\"/data\"},{\"destination\":\"/etc/hostname\"}],"
      "\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":\"/old/netns\"}]}}");
  g_autoptr (GError) error = NULL;
  const CrispRestoreUser any = { FALSE };
  g_assert_true (crisp_container_restore_adapt_spec (spec, dump, &any, "ckpt", &error));
  g_assert_no_error (error);
  JsonObject *p = json_object_get_object_member (json_node_get_object (spec), "process");
  JsonArray *args = json_object_get_array_member (p, "args");
  g_assert_cmpuint (json_array_get_length (args), ==, 3);
  g_assert_cmpstr (json_array_get_string_element (args, 2), ==, "count");
  g_assert_cmpstr (json_object_get_string_member (p, "cwd"), ==, "/work");
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (p, "env"), 0), ==,
                   "A=1");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (p, "user"), "uid"),
                   ==, 1000);
  g_assert_true (json_object_has_member (p, "capabilities")); /* the new request's */
  g_assert_false (json_object_has_member (json_node_get_object (spec), "linux"));

  /* The request's user holds for the checkpointed process. */
  const CrispRestoreUser fixed = { TRUE };
  g_autoptr (JsonNode) root_dump
      = json ("{\"process\":{\"args\":[\"x\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}}}");
  g_autoptr (JsonNode) as_root = json (NEW_SPEC); /* its process is uid 0 */
  g_assert_true (crisp_container_restore_adapt_spec (as_root, root_dump, &fixed, "ckpt", &error));
  g_autoptr (JsonNode) fresh1 = json (NEW_SPEC);
  g_assert_false (crisp_container_restore_adapt_spec (fresh1, dump, &fixed, "ckpt", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "runs as uid 1000, and the request asks for uid 0"));
  g_clear_error (&error);

  const struct
  {
    const char *dump;
    const char *why;
  } bad[] = {
    { "{\"process\":{\"args\":[],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}}}",
      "no usable process" },
    { "{\"process\":{\"args\":[\"x\"],\"cwd\":\"rel\",\"user\":{\"uid\":0,\"gid\":0}}}",
      "no usable process" },
    { "{\"process\":{\"args\":[\"x\"],\"cwd\":\"/\",\"user\":{\"uid\":-1,\"gid\":0}}}",
      "no usable process" },
    { "{\"process\":{\"args\":[\"x\"],\"env\":[1],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}}}",
      "no usable process" },
    { "{}", "no usable process" },
    { "{\"process\":{\"terminal\":true,\"args\":[\"x\"],\"cwd\":\"/\",\"user\":{\"uid\":0,"
      "\"gid\":0}}}",
      "with a terminal" },
    { "{\"process\":{\"args\":[\"x\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}},"
      "\"mounts\":[{\"destination\":\"/host-secret\"},{\"destination\":\"/data\"}]}",
      "'/host-secret'" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (JsonNode) fresh = json (NEW_SPEC);
      g_autoptr (JsonNode) d = json (bad[i].dump);
      g_autoptr (GError) e = NULL;
      g_assert_false (crisp_container_restore_adapt_spec (fresh, d, &any, "ckpt", &e));
      g_assert_error (e, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
      g_test_message ("%s", e->message);
      g_assert_nonnull (strstr (e->message, bad[i].why));
    }
}

/* A directory's files are as hostile as an archive's members: links are not followed, only
 * directories and regular files are taken, the JSON files are bounded. */
static void
test_restore_directory_refuses_hostile_files (Fixture *f, gconstpointer data)
{
  enum
  {
    CONFIG_LINK,
    CONFIG_LARGE,
    CONFIG_NOT_JSON,
    IMAGES_LINK,
    IMAGES_FIFO,
    IMAGES_DEVICE,
    DIFF_LINK,
    N_CASES
  };
  const char *why[] = { "config.dump is not a regular file",
                        "config.dump is larger than 4194304 bytes",
                        "config.dump is not a JSON object",
                        "member 'checkpoint/link' is neither a directory nor a regular file",
                        "member 'checkpoint/fifo' is neither a directory nor a regular file",
                        "member 'checkpoint/dev' is neither a directory nor a regular file",
                        "member 'rootfs-diff.tar' is not a regular file" };
  g_autofree char *secret = g_build_filename (f->dir, "secret.json", NULL);
  put (f->dir, "secret.json", "{\"rootfsImageRef\": \"outside\"}");
  for (int i = 0; i < N_CASES; i++)
    {
      g_autofree char *files = g_build_filename (f->dir, "files", NULL);
      put (files, "checkpoint/pages.img", "pages");
      put (files, "config.dump", "{\"rootfsImageRef\": \"x\"}");
      put (files, "spec.dump", SPEC);
      put (files, "deleted.files", "[]");
      g_autofree char *config = g_build_filename (files, "config.dump", NULL);
      g_autofree char *images = g_build_filename (files, "checkpoint", NULL);
      g_autofree char *dump_log = g_build_filename (files, "dump.log", NULL);
      g_assert_cmpint (symlink (secret, dump_log), ==, 0); /* not wanted: never read */
      if (i == CONFIG_LINK)
        g_assert_true (g_unlink (config) == 0 && symlink (secret, config) == 0);
      else if (i == CONFIG_LARGE)
        g_assert_cmpint (truncate (config, 5 << 20), ==, 0);
      else if (i == CONFIG_NOT_JSON)
        put (files, "config.dump", "{\"rootfsImageRef\":");
      else if (i == IMAGES_LINK)
        {
          g_autofree char *link = g_build_filename (images, "link", NULL);
          g_assert_cmpint (symlink (f->dir, link), ==, 0);
        }
      else if (i == IMAGES_FIFO)
        {
          g_autofree char *fifo = g_build_filename (images, "fifo", NULL);
          g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
        }
      else if (i == IMAGES_DEVICE)
        {
          g_autofree char *dev = g_build_filename (images, "dev", NULL);
          if (mknod (dev, S_IFCHR | 0600, makedev (1, 3)) < 0)
            {
              g_test_message ("mknod needs CAP_MKNOD: the device case is not run");
              g_assert_cmpint (crisp_store_rm_rf_at (AT_FDCWD, files), ==, 0);
              continue;
            }
        }
      else if (i == DIFF_LINK)
        {
          g_autofree char *diff = g_build_filename (files, "rootfs-diff.tar", NULL);
          g_assert_cmpint (symlink (secret, diff), ==, 0);
        }
      _cleanup_close_ int filesfd = open (files, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      g_autofree char *dest = g_build_filename (f->dir, "dest", NULL);
      g_assert_cmpint (g_mkdir (dest, 0700), ==, 0);
      _cleanup_close_ int destfd = open (dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      g_autoptr (GError) error = NULL;
      JsonNode *cfg = NULL, *spec = NULL;
      gboolean read = crisp_container_checkpoint_read_dir (filesfd, "image", &cfg, &spec, &error);
      g_clear_pointer (&cfg, json_node_unref);
      g_clear_pointer (&spec, json_node_unref);
      gboolean ok = read && crisp_container_restore_unpack_dir (filesfd, "image", destfd, &error);
      g_test_message ("case %d: %s", i, error ? error->message : "accepted");
      g_assert_false (ok);
      g_assert_cmpint (read, ==, i >= IMAGES_LINK);
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, why[i]));
      g_assert_false (exists (dest, "dump.log"));
      g_assert_false (exists (dest, "checkpoint/link"));
      g_assert_cmpint (crisp_store_rm_rf_at (AT_FDCWD, dest), ==, 0);
      g_assert_cmpint (crisp_store_rm_rf_at (AT_FDCWD, files), ==, 0);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/checkpoint/" name, Fixture, NULL, setup, fn, teardown)
  ADD ("files-from-the-writable-layer", test_files_from_the_writable_layer);
  ADD ("archive-written-whole", test_archive_written_whole);
  ADD ("archive-failure-leaves-nothing", test_archive_failure_leaves_nothing);
  ADD ("restore-round-trip", test_restore_round_trip);
  ADD ("restore-unpack-refuses-hostile-members", test_restore_unpack_refuses_hostile_members);
  g_test_add ("/checkpoint/restore-round-trip-through-a-directory", Fixture, "directory", setup,
              test_restore_round_trip, teardown);
  ADD ("restore-directory-refuses-hostile-files", test_restore_directory_refuses_hostile_files);
  ADD ("restore-diff-stays-inside", test_restore_diff_stays_inside);
  ADD ("restore-deleted-files", test_restore_deleted_files);
  ADD ("restore-spec-takes-the-process", test_restore_spec_takes_the_process);
  return g_test_run ();
}
