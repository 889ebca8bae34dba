/* The container's user: uid, gid, supplementary groups and HOME from the request's
 * run_as_user / run_as_username / run_as_group / supplemental_groups or the image's User, looked
 * up in the image's own /etc/passwd and /etc/group.  Those files are read through the rootfs
 * fd with RESOLVE_IN_ROOT, so a symlink in the image can never point at the host's. */
#include "config.h"

#include "oci-private.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DB_SIZE (4 * 1024 * 1024)
#define MAX_ID 4294967294U /* (uid_t) -1 is "no id" */
#define MAX_GIDS 1024

typedef struct
{
  char *name;
  guint32 id;
  guint32 gid;    /* passwd only */
  char *home;     /* passwd only */
  char **members; /* group only */
} DbEntry;

int
crisp_oci_read_in_root (int rootfd, const char *path, gsize max, char **out_text)
{
  /* O_NONBLOCK: a FIFO planted in the image must not hang the caller. */
  _cleanup_close_ int fd = crisp_openat2 (rootfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                                          0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  struct stat st;
  if (fd < 0)
    return fd;
  if (fstat (fd, &st) < 0)
    return -errno;
  if (!S_ISREG (st.st_mode))
    return -EINVAL;
  if ((guint64) st.st_size > max)
    return -EFBIG;
  g_autofree char *buf = g_malloc ((gsize) st.st_size + 1);
  gsize len = 0;
  while (len < (gsize) st.st_size)
    {
      ssize_t n = read (fd, buf + len, (gsize) st.st_size - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      if (n == 0)
        break;
      len += (gsize) n;
    }
  buf[len] = '\0';
  *out_text = g_steal_pointer (&buf);
  return 0;
}

static gboolean
parse_id (const char *s, guint32 *out)
{
  guint64 v;
  if (s == NULL || !g_ascii_isdigit (s[0])
      || !g_ascii_string_to_unsigned (s, 10, 0, MAX_ID, &v, NULL))
    return FALSE;
  *out = (guint32) v;
  return TRUE;
}

static void
entry_free (DbEntry *e)
{
  g_free (e->name);
  g_free (e->home);
  g_strfreev (e->members);
  g_free (e);
}

/* Parses passwd (name:pw:uid:gid:gecos:home:shell) or group (name:pw:gid:members) text;
 * malformed lines are skipped as libc does. */
static GPtrArray *
parse_db (const char *text, gboolean is_group)
{
  GPtrArray *entries = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);
  for (char **l = lines; *l; l++)
    {
      g_auto (GStrv) f = g_strsplit (*l, ":", 8);
      guint n = g_strv_length (f);
      DbEntry e = { 0 };
      if (n < (is_group ? 3u : 4u) || f[0][0] == '\0' || f[0][0] == '+' || f[0][0] == '-'
          || !parse_id (f[2], &e.id) || (!is_group && !parse_id (f[3], &e.gid)))
        continue;
      DbEntry *copy = g_memdup2 (&e, sizeof e);
      copy->name = g_strdup (f[0]);
      copy->home = !is_group && n >= 6 ? g_strdup (f[5]) : NULL;
      copy->members = is_group && n >= 4 ? g_strsplit (f[3], ",", -1) : NULL;
      g_ptr_array_add (entries, copy);
    }
  return entries;
}

static GPtrArray *
load_db (const CrispOciInput *in, const char *path, gboolean is_group)
{
  g_autofree char *text = NULL;
  int r = crisp_oci_read_in_root (in->rootfs_fd, path, MAX_DB_SIZE, &text);
  if (r < 0 && r != -ENOENT)
    crisp_oci_note (in, "image's /%s unreadable (%s), treated as empty", path, g_strerror (-r));
  return parse_db (text, is_group);
}

static DbEntry *
find_by_name (GPtrArray *db, const char *name)
{
  for (guint i = 0; i < db->len; i++)
    if (g_str_equal (((DbEntry *) db->pdata[i])->name, name))
      return db->pdata[i];
  return NULL;
}

static DbEntry *
find_by_id (GPtrArray *db, guint32 id)
{
  for (guint i = 0; i < db->len; i++)
    if (((DbEntry *) db->pdata[i])->id == id)
      return db->pdata[i];
  return NULL;
}

static gboolean
check_id (const char *field, gint64 v, guint32 *out, GError **error)
{
  if (v < 0 || v > MAX_ID)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: %s %" G_GINT64_FORMAT " is not a valid id", field, v);
  *out = (guint32) v;
  return TRUE;
}

static gboolean
lookup_group (GPtrArray *group, const char *spec, guint32 *out_gid, GError **error)
{
  if (parse_id (spec, out_gid))
    return TRUE;
  DbEntry *g = find_by_name (group, spec);
  if (g == NULL)
    return crisp_throw (error, CRISP_ERROR_NOT_FOUND,
                        "image config: User group '%s' is not in the image's /etc/group", spec);
  *out_gid = g->id;
  return TRUE;
}

/* The image's User: "", "name", "uid", "uid:gid", "name:group" (each side a name or number). */
static gboolean
resolve_image_user (const CrispOciInput *in, GPtrArray *passwd, GPtrArray *group, guint32 *out_uid,
                    DbEntry **out_pw, gboolean *out_gid_set, guint32 *out_gid, GError **error)
{
  const char *user = NULL;
  JsonNode *node = in->image_config ? json_object_get_member (in->image_config, "User") : NULL;
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node)
      && json_node_get_value_type (node) == G_TYPE_STRING)
    user = json_node_get_string (node);
  else if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "image config: User is not a string");
  if (user == NULL)
    user = "";
  if (!crisp_oci_check_text ("image config: User", user, 256, error))
    return FALSE;
  g_auto (GStrv) parts = g_strsplit (user, ":", 2);
  const char *name = parts[0] ? parts[0] : "";
  if (parse_id (name, out_uid) || name[0] == '\0')
    *out_pw = find_by_id (passwd, *out_uid);
  else if ((*out_pw = find_by_name (passwd, name)) != NULL)
    *out_uid = (*out_pw)->id;
  else
    return crisp_throw (error, CRISP_ERROR_NOT_FOUND,
                        "image config: User '%s' is not in the image's /etc/passwd", name);
  *out_gid_set = parts[0] && parts[1] && parts[1][0];
  return !*out_gid_set || lookup_group (group, parts[1], out_gid, error);
}

static void
add_gid (GArray *gids, guint32 gid)
{
  for (guint i = 0; i < gids->len; i++)
    if (g_array_index (gids, guint32, i) == gid)
      return;
  g_array_append_val (gids, gid);
}

static gboolean
collect_gids (const CrispOciInput *in, GPtrArray *group, const DbEntry *pw, CrispOciUser *user,
              GError **error)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = crisp_oci_security_context (in);
  add_gid (user->gids, user->gid);
  gboolean strict
      = sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
  for (guint i = 0; !strict && pw != NULL && i < group->len; i++)
    {
      const DbEntry *g = group->pdata[i];
      if (g->members != NULL && g_strv_contains ((const char *const *) g->members, pw->name))
        add_gid (user->gids, g->id);
    }
  if (sc->n_supplemental_groups > OCI_MAX_LIST)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: more than %d supplemental_groups", OCI_MAX_LIST);
  for (gsize i = 0; i < sc->n_supplemental_groups; i++)
    {
      guint32 gid = 0;
      if (!check_id ("supplemental_groups", sc->supplemental_groups[i], &gid, error))
        return FALSE;
      add_gid (user->gids, gid);
    }
  if (user->gids->len > MAX_GIDS)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "image /etc/group puts the user in more than %d groups", MAX_GIDS);
  return TRUE;
}

void
crisp_oci_user_clear (CrispOciUser *user)
{
  g_clear_pointer (&user->gids, g_array_unref);
  g_clear_pointer (&user->home, g_free);
}

static gboolean
resolve_request_user (const Runtime__V1__LinuxContainerSecurityContext *sc, GPtrArray *passwd,
                      guint32 *out_uid, DbEntry **out_pw, GError **error)
{
  if (sc->run_as_user != NULL)
    {
      if (!check_id ("run_as_user", sc->run_as_user->value, out_uid, error))
        return FALSE;
      *out_pw = find_by_id (passwd, *out_uid);
      return TRUE;
    }
  if (!crisp_oci_check_text ("container config: run_as_username", sc->run_as_username, 256, error))
    return FALSE;
  *out_pw = find_by_name (passwd, sc->run_as_username);
  if (*out_pw == NULL)
    return crisp_throw (error, CRISP_ERROR_NOT_FOUND,
                        "container config: run_as_username '%s' is not in the image's "
                        "/etc/passwd",
                        sc->run_as_username);
  *out_uid = (*out_pw)->id;
  return TRUE;
}

gboolean
crisp_oci_resolve_user (const CrispOciInput *in, CrispOciUser *out_user, GError **error)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = crisp_oci_security_context (in);
  g_autoptr (GPtrArray) passwd = load_db (in, "etc/passwd", FALSE);
  g_autoptr (GPtrArray) group = load_db (in, "etc/group", TRUE);
  guint32 uid = 0, gid = 0;
  gboolean gid_set = FALSE;
  DbEntry *pw = NULL;
  gboolean by_request
      = sc->run_as_user != NULL || (sc->run_as_username != NULL && sc->run_as_username[0] != '\0');
  if (!by_request && sc->run_as_group != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: run_as_group is set without run_as_user or "
                        "run_as_username");
  if (by_request ? !resolve_request_user (sc, passwd, &uid, &pw, error)
                 : !resolve_image_user (in, passwd, group, &uid, &pw, &gid_set, &gid, error))
    return FALSE;
  if (sc->run_as_group != NULL && !check_id ("run_as_group", sc->run_as_group->value, &gid, error))
    return FALSE;
  gid_set = gid_set || sc->run_as_group != NULL;
  out_user->uid = uid;
  out_user->gid = gid_set ? gid : (pw ? pw->gid : 0);
  out_user->gids = g_array_new (FALSE, FALSE, sizeof (guint32));
  gboolean home_ok = pw && pw->home && pw->home[0] == '/'
                     && crisp_oci_check_text ("home", pw->home, OCI_MAX_PATH, NULL);
  out_user->home = g_strdup (home_ok ? pw->home : "/");
  return collect_gids (in, group, pw, out_user, error);
}
