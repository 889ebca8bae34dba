/* A small record store: one directory per object id under a root, each holding JSON records
 * written atomically.  Shared by pods and containers; policy stays with the callers. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _CrispStore CrispStore;

/* Records larger than this are treated as corrupt rather than read into memory. */
#define CRISP_STORE_MAX_RECORD (4 * 1024 * 1024)

/* Opens (creating with mode 0700 when missing) the store rooted at `path`. */
CrispStore *crisp_store_open (const char *path, GError **error);
void crisp_store_free (CrispStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispStore, crisp_store_free)

const char *crisp_store_path (CrispStore *store);
/* The directory of object `id` (it may not exist yet). */
char *crisp_store_object_path (CrispStore *store, const char *id);

/* Writes record `name` of object `id` atomically, creating the object's 0700 directory. */
gboolean crisp_store_save (CrispStore *store, const char *id, const char *name, JsonNode *node,
                           GError **error);
/* The same, forced to disk only when durable (else crisp_write_file_replace_at): unsynced for
 * a record that matters only if crisp, not the machine, dies before the next durable save. */
gboolean crisp_store_save_sync (CrispStore *store, const char *id, const char *name, JsonNode *node,
                                gboolean durable, GError **error);
/* Reads record `name`: NOT_FOUND when it is missing, DATA_LOSS when it is not a JSON object. */
JsonNode *crisp_store_load (CrispStore *store, const char *id, const char *name, GError **error);
/* Deletes one record; a missing one is fine. */
gboolean crisp_store_delete (CrispStore *store, const char *id, const char *name, GError **error);
/* Removes object `id` and everything in it (never crossing into another mount); a missing
 * object is fine. */
gboolean crisp_store_remove (CrispStore *store, const char *id, GError **error);
/* Moves object `id` aside to `<root>/.quarantine/` so that a corrupt record is kept for a
 * human to look at but never loaded again. */
gboolean crisp_store_quarantine (CrispStore *store, const char *id, GError **error);

/* Called for each object: with its record `name` when that parsed (returning FALSE with an
 * error means it is corrupt and the object is quarantined), or with record NULL just before
 * an object whose record is missing or unreadable is removed or quarantined, so the caller can
 * release what the object's other records and its id describe (the return value is then
 * ignored). */
typedef gboolean (*CrispStoreLoadFunc) (const char *id, JsonNode *record, gpointer data,
                                        GError **error);

/* Loads record `name` of every object.  An object without the record (a crash before its
 * first write, or during its removal) is removed; one whose record is unreadable or rejected
 * by `fn` is quarantined; each problem is appended as a message to `problems`
 * (may be NULL) for the caller to log.  Never fails as a whole except when the root itself
 * cannot be read. */
gboolean crisp_store_load_all (CrispStore *store, const char *name, CrispStoreLoadFunc fn,
                               gpointer data, GPtrArray *problems, GError **error);

/* Removal in two steps, for objects with much to delete.  crisp_store_retire moves object `id`
 * into `<root>/.trash/` with one rename made durable by one fsync: from then on it is never
 * loaded again, crash or not, and its contents stay readable in the trash
 * (crisp_store_trash_load) until crisp_store_trash_remove deletes them, which may happen later
 * or after a restart (crisp_store_trash_list names what is left). */
gboolean crisp_store_retire (CrispStore *store, const char *id, GError **error);
char *crisp_store_trash_path (CrispStore *store, const char *id);
GPtrArray *crisp_store_trash_list (CrispStore *store);
JsonNode *crisp_store_trash_load (CrispStore *store, const char *id, const char *name,
                                  GError **error);
/* Fails (ECANCELED) when cancellable is cancelled midway, leaving the rest for a later call. */
gboolean crisp_store_trash_remove (CrispStore *store, const char *id, GCancellable *cancellable,
                                   GError **error);

/* Removes `name` under `dirfd` recursively without following symlinks or crossing mounts:
 * -EBUSY when something is still mounted inside. */
int crisp_store_rm_rf_at (int dirfd, const char *name);

G_END_DECLS
