/* Unit tests for pkg/store: round trips, 0700 directories, quarantine of corrupt records,
 * refusal of ids that could escape the root, removal that never crosses a mount, and the state
 * format version file. */
#include "config.h"

#include "pkg/store/state-version.h"
#include "pkg/store/store.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#define ID_A "aaaa"
#define ID_B "bbbb"

typedef struct
{
  char *dir;
  CrispStore *store;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("crisp-test-store-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *root = g_build_filename (f->dir, "records", NULL);
  f->store = crisp_store_open (root, &error);
  g_assert_no_error (error);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  crisp_store_free (f->store);
  g_assert_cmpint (crisp_store_rm_rf_at (AT_FDCWD, f->dir), ==, 0);
  g_free (f->dir);
}

static JsonNode *
make_record (const char *value)
{
  g_autoptr (JsonObject) o = json_object_new ();
  json_object_set_string_member (o, "value", value);
  return json_node_init_object (json_node_alloc (), o);
}

static void
test_save_load_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) rec = make_record ("one");
  g_assert_true (crisp_store_save (f->store, ID_A, "rec.json", rec, &error));
  g_assert_no_error (error);
  g_autoptr (JsonNode) back = crisp_store_load (f->store, ID_A, "rec.json", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (back), "value"), ==, "one");
  g_autofree char *obj = crisp_store_object_path (f->store, ID_A);
  struct stat st;
  g_assert_cmpint (stat (obj, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_cmpint (stat (crisp_store_path (f->store), &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
}

static void
test_missing_and_corrupt (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (crisp_store_load (f->store, ID_A, "rec.json", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_autoptr (JsonNode) rec = make_record ("x");
  g_assert_true (crisp_store_save (f->store, ID_A, "rec.json", rec, NULL));
  g_autofree char *path = g_build_filename (crisp_store_path (f->store), ID_A, "rec.json", NULL);
  g_assert_true (g_file_set_contents (path, "{\"value\": tru", -1, NULL));
  g_assert_null (crisp_store_load (f->store, ID_A, "rec.json", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
  g_clear_error (&error);
  g_assert_true (g_file_set_contents (path, "[1,2]", -1, NULL));
  g_assert_null (crisp_store_load (f->store, ID_A, "rec.json", &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
}

static void
test_rejects_bad_ids (Fixture *f, gconstpointer data)
{
  g_autoptr (JsonNode) rec = make_record ("x");
  const char *bad[] = { "..", "../x", "AB", "a/b", "", "xyz" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_false (crisp_store_save (f->store, bad[i], "rec.json", rec, &error));
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
    }
  g_autoptr (GError) error = NULL;
  g_assert_false (crisp_store_save (f->store, ID_A, "../rec.json", rec, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
}

typedef struct
{
  GPtrArray *seen;
  guint unreadable;
} LoadState;

static gboolean
collect (const char *id, JsonNode *record, gpointer data, GError **error)
{
  LoadState *s = data;
  if (record == NULL)
    {
      s->unreadable++;
      return FALSE;
    }
  const char *v
      = json_object_get_string_member_with_default (json_node_get_object (record), "value", "");
  if (strcmp (v, "reject") == 0)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "rejected by the loader");
  g_ptr_array_add (s->seen, g_strdup (id));
  return TRUE;
}

static void
test_load_all_quarantines (Fixture *f, gconstpointer data)
{
  g_autoptr (JsonNode) good = make_record ("good");
  g_autoptr (JsonNode) rejected = make_record ("reject");
  g_assert_true (crisp_store_save (f->store, ID_A, "rec.json", good, NULL));
  g_assert_true (crisp_store_save (f->store, ID_B, "rec.json", rejected, NULL));
  g_assert_true (crisp_store_save (f->store, "cccc", "rec.json", good, NULL));
  g_autofree char *path = g_build_filename (crisp_store_path (f->store), "cccc", "rec.json", NULL);
  g_assert_true (g_file_set_contents (path, "garbage", -1, NULL));
  g_autofree char *empty = g_build_filename (crisp_store_path (f->store), "dddd", NULL);
  g_assert_cmpint (g_mkdir (empty, 0700), ==, 0);
  g_autofree char *stray = g_build_filename (crisp_store_path (f->store), "not-an-id", NULL);
  g_assert_cmpint (g_mkdir (stray, 0700), ==, 0);

  LoadState s = { g_ptr_array_new_with_free_func (g_free), 0 };
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_store_load_all (f->store, "rec.json", collect, &s, problems, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (s.seen->len, ==, 1);
  g_assert_cmpstr (s.seen->pdata[0], ==, ID_A);
  g_assert_cmpuint (problems->len, ==, 4);
  g_assert_cmpuint (s.unreadable, ==, 2); /* cccc and dddd, told before they are moved */
  /* Quarantined objects are gone from the root and never loaded again. */
  g_autofree char *b = crisp_store_object_path (f->store, ID_B);
  g_autofree char *c = crisp_store_object_path (f->store, "cccc");
  g_assert_false (g_file_test (b, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (c, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (empty, G_FILE_TEST_EXISTS));
  g_autofree char *q = g_build_filename (crisp_store_path (f->store), ".quarantine", NULL);
  g_autoptr (GDir) qd = g_dir_open (q, 0, NULL);
  g_assert_nonnull (qd);
  guint n = 0;
  while (g_dir_read_name (qd))
    n++;
  g_assert_cmpuint (n, ==, 2);
  g_ptr_array_set_size (s.seen, 0);
  g_ptr_array_set_size (problems, 0);
  g_assert_true (crisp_store_load_all (f->store, "rec.json", collect, &s, problems, NULL));
  g_assert_cmpuint (s.seen->len, ==, 1);
  g_assert_cmpuint (problems->len, ==, 1); /* the stray directory, left alone */
  g_ptr_array_unref (s.seen);
}

static void
test_remove_and_delete (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) rec = make_record ("x");
  g_assert_true (crisp_store_save (f->store, ID_A, "a.json", rec, NULL));
  g_assert_true (crisp_store_save (f->store, ID_A, "b.json", rec, NULL));
  g_assert_true (crisp_store_delete (f->store, ID_A, "a.json", &error));
  g_assert_true (crisp_store_delete (f->store, ID_A, "a.json", &error));
  g_assert_no_error (error);
  g_autofree char *sub = g_build_filename (crisp_store_path (f->store), ID_A, "sub", "deep", NULL);
  g_assert_cmpint (g_mkdir_with_parents (sub, 0700), ==, 0);
  g_autofree char *target = g_build_filename (f->dir, "outside", NULL);
  g_assert_true (g_file_set_contents (target, "keep", -1, NULL));
  g_autofree char *link = g_build_filename (crisp_store_path (f->store), ID_A, "link", NULL);
  g_assert_cmpint (symlink (target, link), ==, 0);
  g_assert_true (crisp_store_remove (f->store, ID_A, &error));
  g_assert_no_error (error);
  g_autofree char *obj = crisp_store_object_path (f->store, ID_A);
  g_assert_false (g_file_test (obj, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (target, G_FILE_TEST_IS_REGULAR)); /* symlink not followed */
  g_assert_true (crisp_store_remove (f->store, ID_A, &error));
}

static guint
count_entries (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (d != NULL && g_dir_read_name (d))
    n++;
  return n;
}

/* Loads the store holding one object, obj, that is expected to be removed as never written,
 * not quarantined, with a report that contains `why`. */
static void
assert_loaded_as_unwritten (Fixture *f, const char *obj, const char *why)
{
  LoadState s = { g_ptr_array_new_with_free_func (g_free), 0 };
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_assert_true (crisp_store_load_all (f->store, "rec.json", collect, &s, problems, NULL));
  g_assert_cmpuint (s.seen->len, ==, 0);
  g_assert_cmpuint (s.unreadable, ==, 1);
  g_assert_cmpuint (problems->len, ==, 1);
  g_assert_nonnull (strstr (problems->pdata[0], why));
  g_assert_true (g_str_has_suffix (problems->pdata[0], ", removed"));
  g_assert_false (g_file_test (obj, G_FILE_TEST_EXISTS));
  g_autofree char *q = g_build_filename (crisp_store_path (f->store), ".quarantine", NULL);
  g_assert_cmpuint (count_entries (q), ==, 0);
  g_ptr_array_unref (s.seen);
}

/* A kill during the first write of a record leaves its directory with the other things made
 * before it and the temporary file, but no record: the loader is told (record NULL), and the
 * leftovers are removed, not quarantined. */
static void
test_load_all_finishes_unwritten (Fixture *f, gconstpointer data)
{
  g_autofree char *obj = crisp_store_object_path (f->store, ID_A);
  g_autofree char *upper = g_build_filename (obj, "upper", NULL);
  g_autofree char *tmp = g_build_filename (obj, ".rec.json.tmp4242", NULL);
  g_assert_cmpint (g_mkdir_with_parents (upper, 0700), ==, 0);
  g_assert_true (g_file_set_contents (tmp, "{\"value\": \"ha", -1, NULL));
  assert_loaded_as_unwritten (f, obj, "no record 'rec.json'");
}

/* A record that is there but empty (a power loss after its rename and before its data reached
 * the disk) counts as never written: the loader is told, the object is removed, not
 * quarantined, and the report says why. */
static void
test_load_all_removes_empty (Fixture *f, gconstpointer data)
{
  g_autoptr (JsonNode) rec = make_record ("lost");
  g_assert_true (crisp_store_save (f->store, ID_A, "rec.json", rec, NULL));
  g_autofree char *obj = crisp_store_object_path (f->store, ID_A);
  g_autofree char *path = g_build_filename (obj, "rec.json", NULL);
  g_autofree char *upper = g_build_filename (obj, "upper", NULL);
  g_assert_cmpint (g_mkdir_with_parents (upper, 0700), ==, 0);
  g_assert_true (g_file_set_contents (path, "", 0, NULL));
  assert_loaded_as_unwritten (f, obj,
                              "record 'rec.json' is empty (written just before a power loss)");
}

/* Truncated, non-object and garbage records are reported, the loader is told, and the object
 * is kept in quarantine with its files. */
static void
test_load_all_quarantines_truncated (Fixture *f, gconstpointer data)
{
  const char *bad[] = { "{", "{\"value\": \"go", "null", "\xff\xfe garbage" };
  g_autoptr (JsonNode) rec = make_record ("good");
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *id = g_strdup_printf ("%04x", (guint) (0xa0 + i));
      g_assert_true (crisp_store_save (f->store, id, "rec.json", rec, NULL));
      g_autofree char *path = g_build_filename (crisp_store_path (f->store), id, "rec.json", NULL);
      g_assert_true (g_file_set_contents (path, bad[i], -1, NULL));
    }
  LoadState s = { g_ptr_array_new_with_free_func (g_free), 0 };
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_assert_true (crisp_store_load_all (f->store, "rec.json", collect, &s, problems, NULL));
  g_assert_cmpuint (s.seen->len, ==, 0);
  g_assert_cmpuint (s.unreadable, ==, G_N_ELEMENTS (bad));
  g_assert_cmpuint (problems->len, ==, G_N_ELEMENTS (bad));
  for (guint i = 0; i < problems->len; i++)
    g_assert_nonnull (strstr (problems->pdata[i], "moved to .quarantine"));
  g_autofree char *q = g_build_filename (crisp_store_path (f->store), ".quarantine", NULL);
  g_assert_cmpuint (count_entries (q), ==, G_N_ELEMENTS (bad));
  g_assert_cmpuint (count_entries (crisp_store_path (f->store)), ==, 1); /* .quarantine */
  g_ptr_array_unref (s.seen);
}

static char *
read_version_file (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->dir, CRISP_STATE_VERSION_FILE, NULL);
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return text;
}

static void
write_version_file (Fixture *f, const char *text)
{
  g_autofree char *path = g_build_filename (f->dir, CRISP_STATE_VERSION_FILE, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

/* The state written before the version file existed is version 1: read as such, and the file
 * is written; a second check changes nothing. */
static void
test_state_version_unversioned_is_1 (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  guint found = 0;
  g_assert_true (crisp_state_version_check (f->dir, 1, NULL, &found, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (found, ==, 1);
  g_autofree char *text = read_version_file (f);
  g_assert_cmpstr (text, ==, "1\n");
  g_assert_true (crisp_state_version_check (f->dir, 1, NULL, &found, &error));
  g_assert_cmpuint (found, ==, 1);
}

/* A newer state, or a version file that does not parse, is refused and left as it is. */
static void
test_state_version_refuses_newer (Fixture *f, gconstpointer data)
{
  const char *bad[] = { "2\n", "17", "", "\n", "x\n", "0\n", "99999999999\n", "1\n2\n" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      write_version_file (f, bad[i]);
      guint found = 1234;
      g_assert_false (crisp_state_version_check (f->dir, 1, NULL, &found, &error));
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_FAILED_PRECONDITION);
      g_assert_nonnull (strstr (error->message, f->dir));
      g_assert_cmpuint (found, ==, 1234);
      g_autofree char *text = read_version_file (f);
      g_assert_cmpstr (text, ==, bad[i]);
    }
  g_autoptr (GError) error = NULL;
  write_version_file (f, "2\n");
  g_assert_false (crisp_state_version_check (f->dir, 1, NULL, NULL, &error));
  g_assert_nonnull (strstr (error->message, "format version 2"));
  g_assert_nonnull (strstr (error->message, "versions up to 1"));
}

static GPtrArray *migrated;

static gboolean
migrate_1_to_2 (const char *dir, GError **error)
{
  g_ptr_array_add (migrated, g_strdup ("1->2"));
  return TRUE;
}

static gboolean
migrate_2_to_3_fails (const char *dir, GError **error)
{
  g_ptr_array_add (migrated, g_strdup ("2->3"));
  return crisp_throw (error, CRISP_ERROR_INTERNAL, "no space");
}

/* Migrations run in order, and the version file follows each step that finished, so a failed
 * step is retried at the next start from where it stopped. */
static void
test_state_version_migrates_in_steps (Fixture *f, gconstpointer data)
{
  migrated = g_ptr_array_new_with_free_func (g_free);
  const CrispStateMigrateFunc steps[] = { migrate_1_to_2, migrate_2_to_3_fails };
  g_autoptr (GError) error = NULL;
  g_assert_false (crisp_state_version_check (f->dir, 3, steps, NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INTERNAL);
  g_assert_nonnull (strstr (error->message, "from state version 2 to 3"));
  g_assert_cmpuint (migrated->len, ==, 2);
  g_autofree char *text = read_version_file (f);
  g_assert_cmpstr (text, ==, "2\n");
  g_clear_error (&error);
  const CrispStateMigrateFunc fixed[] = { migrate_1_to_2, NULL };
  guint found = 0;
  g_assert_true (crisp_state_version_check (f->dir, 3, fixed, &found, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (found, ==, 2);
  g_assert_cmpuint (migrated->len, ==, 2); /* 1->2 is not run again */
  g_autofree char *text3 = read_version_file (f);
  g_assert_cmpstr (text3, ==, "3\n");
  g_clear_pointer (&migrated, g_ptr_array_unref);
}

/* A retired object is never loaded again, stays readable in the trash until it is removed,
 * and a cancelled removal leaves the rest for a later one. */
static void
test_retire_and_trash (Fixture *f, gconstpointer data)
{
  g_autofree char *obj = crisp_store_object_path (f->store, ID_A);
  for (int i = 0; i < 50; i++)
    {
      g_autofree char *p = g_strdup_printf ("%s/upper/f%d", obj, i);
      g_assert_cmpint (g_mkdir_with_parents (p, 0700), ==, 0);
    }
  g_autoptr (JsonNode) rec = make_record ("gone");
  for (const char *const *id = (const char *const[]){ ID_A, ID_B, NULL }; *id; id++)
    g_assert_true (crisp_store_save (f->store, *id, "rec.json", rec, NULL));
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_store_retire (f->store, ID_A, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (obj, G_FILE_TEST_EXISTS));
  LoadState s = { g_ptr_array_new_with_free_func (g_free), 0 };
  g_assert_true (crisp_store_load_all (f->store, "rec.json", collect, &s, NULL, NULL));
  g_assert_cmpuint (s.seen->len, ==, 1);
  g_assert_cmpstr (s.seen->pdata[0], ==, ID_B);
  g_ptr_array_unref (s.seen);
  g_autoptr (GPtrArray) ids = crisp_store_trash_list (f->store);
  g_assert_cmpuint (ids->len, ==, 1);
  g_assert_cmpstr (ids->pdata[0], ==, ID_A);
  g_autoptr (JsonNode) back = crisp_store_trash_load (f->store, ID_A, "rec.json", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (back), "value"), ==,
                   "gone");
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_cancellable_cancel (cancel);
  g_assert_false (crisp_store_trash_remove (f->store, ID_A, cancel, &error));
  g_clear_error (&error);
  g_autofree char *trashed = crisp_store_trash_path (f->store, ID_A);
  g_assert_true (g_file_test (trashed, G_FILE_TEST_IS_DIR));
  g_assert_true (crisp_store_trash_remove (f->store, ID_A, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (trashed, G_FILE_TEST_EXISTS));
  g_clear_pointer (&ids, g_ptr_array_unref);
  ids = crisp_store_trash_list (f->store);
  g_assert_cmpuint (ids->len, ==, 0);
}

/* A crash that left an id in both places: the store's object is the one that counts. */
static void
test_retire_replaces_an_older_trash_entry (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  for (const char *const *v = (const char *const[]){ "old", "new", NULL }; *v; v++)
    {
      g_autoptr (JsonNode) rec = make_record (*v);
      g_assert_true (crisp_store_save (f->store, ID_A, "rec.json", rec, NULL));
      g_assert_true (crisp_store_retire (f->store, ID_A, &error));
      g_assert_no_error (error);
    }
  g_autoptr (JsonNode) back = crisp_store_trash_load (f->store, ID_A, "rec.json", &error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (back), "value"), ==, "new");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/store/" name, Fixture, NULL, setup, fn, teardown)
  ADD ("save-load-round-trip", test_save_load_round_trip);
  ADD ("missing-and-corrupt", test_missing_and_corrupt);
  ADD ("rejects-bad-ids", test_rejects_bad_ids);
  ADD ("load-all-quarantines", test_load_all_quarantines);
  ADD ("remove-and-delete", test_remove_and_delete);
  ADD ("load-all-finishes-unwritten", test_load_all_finishes_unwritten);
  ADD ("load-all-quarantines-truncated", test_load_all_quarantines_truncated);
  ADD ("load-all-removes-empty", test_load_all_removes_empty);
  ADD ("retire-and-trash", test_retire_and_trash);
  ADD ("retire-replaces-an-older-trash-entry", test_retire_replaces_an_older_trash_entry);
  ADD ("state-version-unversioned-is-1", test_state_version_unversioned_is_1);
  ADD ("state-version-refuses-newer", test_state_version_refuses_newer);
  ADD ("state-version-migrates-in-steps", test_state_version_migrates_in_steps);
  return g_test_run ();
}
