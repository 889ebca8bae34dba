/* mounts[] (the defaults every container gets, the pod's files, the request's bind mounts with
 * their propagation) and devices (the request's, or every host device when privileged). */
#include "config.h"

#include "oci-private.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define MAX_DEVICES 128
#define MAX_HOST_DEVICES 4096
#define MAX_DEV_DEPTH 8

static JsonObject *
mount_new (const char *dest, const char *type, const char *source, const char *const *options)
{
  JsonObject *m = json_object_new ();
  json_object_set_string_member (m, "destination", dest);
  json_object_set_string_member (m, "type", type);
  json_object_set_string_member (m, "source", source);
  json_object_set_array_member (m, "options", crisp_oci_strv_array (options));
  return m;
}

static JsonObject *
bind_new (const char *dest, const char *source, gboolean readonly, const char *propagation)
{
  const char *opts[] = { "rbind", propagation, readonly ? "ro" : "rw", NULL };
  return mount_new (dest, "bind", source, opts);
}

static gboolean
taken (GHashTable *dests, const char *dest)
{
  return g_hash_table_contains (dests, dest);
}

/* The defaults, skipping any destination the request mounts itself (kubelet brings its own
 * /etc/hosts, for one). */
static void
add_default_mounts (const CrispOciInput *in, JsonArray *mounts, GHashTable *dests,
                    gboolean privileged)
{
  const char *proc[] = { "nosuid", "noexec", "nodev", NULL };
  const char *dev[] = { "nosuid", "strictatime", "mode=755", "size=65536k", NULL };
  const char *pts[]
      = { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL };
  const char *mqueue[] = { "nosuid", "noexec", "nodev", NULL };
  const char *sys[] = { "nosuid", "noexec", "nodev", privileged ? "rw" : "ro", NULL };
  const char *cgroup[]
      = { "nosuid", "noexec", "nodev", "relatime", privileged ? "rw" : "ro", NULL };
  const char *shm[] = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL };
  const gboolean ro = crisp_oci_security_context (in)->readonly_rootfs;
  struct
  {
    JsonObject *m;
  } all[] = {
    { mount_new ("/proc", "proc", "proc", proc) },
    { mount_new ("/dev", "tmpfs", "tmpfs", dev) },
    { mount_new ("/dev/pts", "devpts", "devpts", pts) },
    { mount_new ("/dev/mqueue", "mqueue", "mqueue", mqueue) },
    { mount_new ("/sys", "sysfs", "sysfs", sys) },
    { mount_new ("/sys/fs/cgroup", "cgroup", "cgroup", cgroup) },
    { in->shm_path ? bind_new ("/dev/shm", in->shm_path, FALSE, "rprivate")
                   : mount_new ("/dev/shm", "tmpfs", "shm", shm) },
    { in->resolv_conf_path ? bind_new ("/etc/resolv.conf", in->resolv_conf_path, ro, "rprivate")
                           : NULL },
    { in->hostname_path ? bind_new ("/etc/hostname", in->hostname_path, ro, "rprivate") : NULL },
    { in->hosts_path ? bind_new ("/etc/hosts", in->hosts_path, ro, "rprivate") : NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (all); i++)
    {
      if (all[i].m == NULL)
        continue;
      if (taken (dests, json_object_get_string_member (all[i].m, "destination")))
        json_object_unref (all[i].m);
      else
        json_array_add_object_element (mounts, all[i].m);
    }
}

static gboolean
propagation_option (Runtime__V1__MountPropagation p, const char **out, GError **error)
{
  switch (p)
    {
    case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE:
      *out = "rprivate";
      return TRUE;
    case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER:
      *out = "rslave";
      return TRUE;
    case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL:
      *out = "rshared";
      return TRUE;
    default:
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "container config: mount propagation %d is unknown", (int) p);
    }
}

static const char *
propagation_name (Runtime__V1__MountPropagation p)
{
  const ProtobufCEnumValue *v
      = protobuf_c_enum_descriptor_get_value (&runtime__v1__mount_propagation__descriptor, (int) p);
  return v ? v->name : "(unknown)";
}

/* The CRI's rule (and the kubelet's): a recursive read-only mount is read-only and private. */
static gboolean
check_recursive_read_only (const Runtime__V1__Mount *m, GError **error)
{
  if (!m->readonly)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mount '%s': recursive_read_only needs readonly",
                        m->container_path);
  if (m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mount '%s': recursive_read_only needs propagation "
                        "PROPAGATION_PRIVATE, not %s",
                        m->container_path, propagation_name (m->propagation));
  return TRUE;
}

static gboolean
check_sub_path (const Runtime__V1__Mount *m, const char *sub, GError **error)
{
  if (!crisp_oci_check_text ("container config: mounts image_sub_path", sub, OCI_MAX_PATH, error))
    return FALSE;
  if (!crisp_path_is_clean (sub, FALSE))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mount '%s': image_sub_path '%s' is not a relative "
                        "path without '.', '..' or empty components",
                        m->container_path, sub);
  return TRUE;
}

/* An image volume is read-only by definition: mounts cannot propagate back out of it. */
static gboolean
check_image_mount (const Runtime__V1__Mount *m, GError **error)
{
  const char *image = m->image->image;
  if (!crisp_oci_check_text ("container config: mounts image", image, OCI_MAX_PATH, error))
    return FALSE;
  if (m->host_path != NULL && m->host_path[0] != '\0')
    return crisp_throw (
        error, CRISP_ERROR_INVALID_ARGUMENT,
        "container config: mount '%s' names both host_path '%.256s' and image '%s', "
        "which exclude each other",
        m->container_path, m->host_path, image);
  if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mount '%s' of image '%s': propagation "
                        "PROPAGATION_BIDIRECTIONAL cannot apply to a read-only image",
                        m->container_path, image);
  const char *sub = m->image_sub_path;
  return sub == NULL || sub[0] == '\0' || check_sub_path (m, sub, error);
}

static gboolean
is_image_mount (const Runtime__V1__Mount *m)
{
  return m->image != NULL && m->image->image != NULL && m->image->image[0] != '\0';
}

gboolean
crisp_oci_same_mappings (Runtime__V1__IDMapping *const *a, size_t na,
                         Runtime__V1__IDMapping *const *b, size_t nb)
{
  if (na != nb)
    return FALSE;
  for (size_t i = 0; i < na; i++)
    if (a[i]->host_id != b[i]->host_id || a[i]->container_id != b[i]->container_id
        || a[i]->length != b[i]->length)
      return FALSE;
  return TRUE;
}

/* crisp id-maps every mount of a pod with a user namespace with the pod's own mappings (on-disk
 * id n is id n in the container); a mount may say so, but may not ask for other mappings. */
static gboolean
check_mount_mappings (const Runtime__V1__Mount *m, const Runtime__V1__UserNamespace *pod_userns,
                      GError **error)
{
  if (pod_userns != NULL && m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mount '%s': propagation %s is not supported in a pod "
                        "with a user namespace: crisp binds an id-mapped copy of the host path, "
                        "which receives no mounts from it",
                        m->container_path, propagation_name (m->propagation));
  if (m->n_uidmappings == 0 && m->n_gidmappings == 0)
    return TRUE;
  if (pod_userns == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mount '%s' has uidMappings or gidMappings, but the "
                        "pod has no user namespace: crisp id-maps mounts only into a pod's own "
                        "user namespace (userns_options mode POD)",
                        m->container_path);
  if (!crisp_oci_same_mappings (m->uidmappings, m->n_uidmappings, pod_userns->uids,
                                pod_userns->n_uids)
      || !crisp_oci_same_mappings (m->gidmappings, m->n_gidmappings, pod_userns->gids,
                                   pod_userns->n_gids))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mount '%s': uidMappings and gidMappings must be the "
                        "pod's own user namespace mappings: crisp maps every mount of the pod "
                        "with those and no others",
                        m->container_path);
  return TRUE;
}

static gboolean
check_mount (const Runtime__V1__Mount *m, const Runtime__V1__UserNamespace *pod_userns,
             GError **error)
{
  if (!crisp_oci_check_path ("container config: mounts container_path", m->container_path, error))
    return FALSE;
  if (g_str_equal (m->container_path, "/"))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mounts container_path '/' is the container's root");
  if (!check_mount_mappings (m, pod_userns, error))
    return FALSE;
  const char *prop;
  if (!propagation_option (m->propagation, &prop, error))
    return FALSE;
  if (m->recursive_read_only && !check_recursive_read_only (m, error))
    return FALSE;
  if (is_image_mount (m))
    return check_image_mount (m, error);
  if (m->image_sub_path != NULL && m->image_sub_path[0] != '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: mount '%s': image_sub_path '%.256s' without an image",
                        m->container_path, m->image_sub_path);
  return crisp_oci_check_path ("container config: mounts host_path", m->host_path, error);
}

gboolean
crisp_oci_check_mounts (const Runtime__V1__ContainerConfig *config,
                        const Runtime__V1__UserNamespace *pod_userns, GError **error)
{
  if (config->n_mounts > OCI_MAX_LIST)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: more than %d mounts", OCI_MAX_LIST);
  for (gsize i = 0; i < config->n_mounts; i++)
    {
      /* protobuf-c never decodes a NULL element; this is for hand-built requests */
      g_return_val_if_fail (config->mounts[i] != NULL, FALSE);
      if (!check_mount (config->mounts[i], pod_userns, error))
        return FALSE;
    }
  return TRUE;
}

CrispOciMountKind
crisp_oci_mount_kind (const Runtime__V1__Mount *m)
{
  if (is_image_mount (m))
    return CRISP_OCI_MOUNT_IMAGE;
  return m->recursive_read_only ? CRISP_OCI_MOUNT_RECURSIVE_RO : CRISP_OCI_MOUNT_BIND;
}

/* A request mount and the source the spec names for it. */
typedef struct
{
  const Runtime__V1__Mount *m;
  const char *source;
} RequestMount;

static int
depth (const char *path)
{
  int n = 0;
  for (const char *p = path; *p; p++)
    n += *p == '/';
  return n;
}

/* Parents before children, so /data is mounted before /data/cache whatever the request order. */
static gint
by_depth (gconstpointer a, gconstpointer b)
{
  return depth (((const RequestMount *) a)->m->container_path)
         - depth (((const RequestMount *) b)->m->container_path);
}

/* What crisp staged (an image's layers, a tree made read-only throughout) is bound read-only
 * and private: the propagation asked for has nothing to carry. */
static JsonObject *
staged_bind (const CrispOciInput *in, const Runtime__V1__Mount *m, const char *source,
             GError **error)
{
  if (source == NULL)
    return crisp_throw (error, CRISP_ERROR_INTERNAL,
                        "container config: mount '%s' was not prepared", m->container_path),
           NULL;
  if (m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
    crisp_oci_note (in, "mount '%s': an image volume is private, %s ignored", m->container_path,
                    propagation_name (m->propagation));
  return bind_new (m->container_path, source, TRUE, "rprivate");
}

static gboolean
add_request_mount (const CrispOciInput *in, JsonArray *mounts, const RequestMount *rm,
                   const char **out_root_propagation, GError **error)
{
  const Runtime__V1__Mount *m = rm->m;
  if (m->selinux_relabel)
    crisp_oci_note (in, "mount '%s': selinux_relabel ignored (no SELinux on this host)",
                    m->container_path);
  if (crisp_oci_mount_kind (m) != CRISP_OCI_MOUNT_BIND)
    {
      JsonObject *b = staged_bind (in, m, rm->source, error);
      if (b != NULL)
        json_array_add_object_element (mounts, b);
      return b != NULL;
    }
  const char *prop;
  if (!propagation_option (m->propagation, &prop, error))
    return FALSE;
  if (g_str_equal (prop, "rshared")
      || (g_str_equal (prop, "rslave") && *out_root_propagation == NULL))
    *out_root_propagation = prop;
  /* In a pod with a user namespace the source is the id-mapped copy crisp staged. */
  const char *source = rm->source ? rm->source : m->host_path;
  json_array_add_object_element (mounts, bind_new (m->container_path, source, m->readonly, prop));
  return TRUE;
}

static gboolean
add_request_mounts (const CrispOciInput *in, JsonArray *mounts, GHashTable *dests,
                    const char **out_root_propagation, GError **error)
{
  const Runtime__V1__ContainerConfig *c = in->config;
  if (!crisp_oci_check_mounts (c, in->pod_userns, error))
    return FALSE;
  g_autoptr (GArray) sorted = g_array_new (FALSE, FALSE, sizeof (RequestMount));
  for (gsize i = 0; i < c->n_mounts; i++)
    {
      if (!g_hash_table_add (dests, c->mounts[i]->container_path))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "container config: two mounts at '%s'", c->mounts[i]->container_path);
      RequestMount rm = { c->mounts[i], in->mount_sources ? in->mount_sources[i] : NULL };
      g_array_append_val (sorted, rm);
    }
  g_array_sort (sorted, by_depth); /* GLib's sort is stable */
  for (guint i = 0; i < sorted->len; i++)
    if (!add_request_mount (in, mounts, &g_array_index (sorted, RequestMount, i),
                            out_root_propagation, error))
      return FALSE;
  return TRUE;
}

gboolean
crisp_oci_build_mounts (const CrispOciInput *in, JsonObject *spec, gboolean privileged,
                        GError **error)
{
  g_autoptr (GHashTable) dests = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (JsonArray) request = json_array_new ();
  const char *root_propagation = NULL;
  if (!add_request_mounts (in, request, dests, &root_propagation, error))
    return FALSE;
  JsonArray *mounts = json_array_new ();
  json_object_set_array_member (spec, "mounts", mounts);
  add_default_mounts (in, mounts, dests, privileged);
  for (guint i = 0; i < json_array_get_length (request); i++)
    json_array_add_element (mounts, json_array_dup_element (request, i));
  /* A slave or shared bind needs the container's root mount to let events through. */
  if (root_propagation != NULL)
    json_object_set_string_member (json_object_get_object_member (spec, "linux"),
                                   "rootfsPropagation", root_propagation);
  return TRUE;
}

static JsonObject *
device_new (const char *path, const struct stat *st)
{
  JsonObject *d = json_object_new ();
  json_object_set_string_member (d, "path", path);
  json_object_set_string_member (d, "type", S_ISBLK (st->st_mode) ? "b" : "c");
  json_object_set_int_member (d, "major", major (st->st_rdev));
  json_object_set_int_member (d, "minor", minor (st->st_rdev));
  json_object_set_int_member (d, "fileMode", st->st_mode & 07777);
  json_object_set_int_member (d, "uid", 0);
  json_object_set_int_member (d, "gid", 0);
  return d;
}

static JsonObject *
device_rule_new (const struct stat *st, const char *access)
{
  JsonObject *r = json_object_new ();
  json_object_set_boolean_member (r, "allow", TRUE);
  json_object_set_string_member (r, "type", S_ISBLK (st->st_mode) ? "b" : "c");
  json_object_set_int_member (r, "major", major (st->st_rdev));
  json_object_set_int_member (r, "minor", minor (st->st_rdev));
  json_object_set_string_member (r, "access", access);
  return r;
}

static gboolean
check_permissions (const char *p, GError **error)
{
  gsize n = strlen (p);
  if (n > 3 || strspn (p, "rwm") != n || (n > 1 && p[0] == p[1])
      || (n > 2 && (p[0] == p[2] || p[1] == p[2])))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: device permissions '%s' are not a subset of 'rwm'", p);
  return TRUE;
}

static gboolean
add_request_device (const Runtime__V1__Device *d, JsonArray *devices, JsonArray *rules,
                    GError **error)
{
  struct stat st;
  if (!crisp_oci_check_path ("container config: devices container_path", d->container_path, error)
      || !crisp_oci_check_path ("container config: devices host_path", d->host_path, error)
      || !check_permissions (d->permissions ? d->permissions : "", error))
    return FALSE;
  if (stat (d->host_path, &st) < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: device host_path '%s': %s", d->host_path,
                        g_strerror (errno));
  if (!S_ISCHR (st.st_mode) && !S_ISBLK (st.st_mode))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: device host_path '%s' is not a device node",
                        d->host_path);
  json_array_add_object_element (devices, device_new (d->container_path, &st));
  const char *access = d->permissions && d->permissions[0] ? d->permissions : "rwm";
  json_array_add_object_element (rules, device_rule_new (&st, access));
  return TRUE;
}

/* Every device node under dir, as the same path in the container; the runtime makes the
 * console and the pty devices itself. */
static void
add_host_devices (const char *host_dir, const char *rel, int depth, JsonArray *devices)
{
  static const char *const skip[] = { "pts", "shm", "mqueue", "fd", "console", ".udev", NULL };
  g_autofree char *dir = g_build_filename (host_dir, rel, NULL);
  g_autoptr (GDir) d = depth > MAX_DEV_DEPTH ? NULL : g_dir_open (dir, 0, NULL);
  for (const char *name; d != NULL && (name = g_dir_read_name (d)) != NULL;)
    {
      struct stat st;
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *crel = g_build_filename (rel, name, NULL);
      if ((depth == 0 && g_strv_contains (skip, name)) || lstat (path, &st) < 0
          || json_array_get_length (devices) >= MAX_HOST_DEVICES)
        continue;
      if (S_ISDIR (st.st_mode))
        add_host_devices (host_dir, crel, depth + 1, devices);
      else if (S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode))
        {
          g_autofree char *cpath = g_build_filename ("/dev", crel, NULL);
          json_array_add_object_element (devices, device_new (cpath, &st));
        }
    }
}

gboolean
crisp_oci_build_devices (const CrispOciInput *in, JsonObject *linux_obj, JsonArray *device_rules,
                         gboolean privileged, GError **error)
{
  const Runtime__V1__ContainerConfig *c = in->config;
  JsonArray *devices = json_array_new ();
  json_object_set_array_member (linux_obj, "devices", devices);
  JsonObject *deny = json_object_new ();
  json_object_set_boolean_member (deny, "allow", privileged);
  json_object_set_string_member (deny, "access", "rwm");
  json_array_add_object_element (device_rules, deny);
  if (privileged)
    add_host_devices (in->host_dev_dir ? in->host_dev_dir : "/dev", "", 0, devices);
  if (c->n_devices > MAX_DEVICES)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: more than %d devices", MAX_DEVICES);
  for (gsize i = 0; i < c->n_devices; i++)
    {
      g_return_val_if_fail (c->devices[i] != NULL, FALSE);
      if (!add_request_device (c->devices[i], devices, device_rules, error))
        return FALSE;
    }
  return TRUE;
}
