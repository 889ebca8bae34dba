/* Validation of a RunPodSandbox request and what is derived from it: namespace modes, the
 * sysctl allow-list, cgroup parent, port mappings.  Errors name the field and value. */
#include "config.h"

#include "sandbox-private.h"

#include "crisp-base.h"
#include "crisp-cgroups.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>

static Runtime__V1__NamespaceOption *
ns_options (const Runtime__V1__PodSandboxConfig *config)
{
  if (config->linux == NULL || config->linux->security_context == NULL)
    return NULL;
  return config->linux->security_context->namespace_options;
}

gboolean
crisp_pod_config_host_network (const Runtime__V1__PodSandboxConfig *config)
{
  Runtime__V1__NamespaceOption *o = ns_options (config);
  return o != NULL && o->network == RUNTIME__V1__NAMESPACE_MODE__NODE;
}

gboolean
crisp_pod_config_host_ipc (const Runtime__V1__PodSandboxConfig *config)
{
  Runtime__V1__NamespaceOption *o = ns_options (config);
  return o != NULL && o->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE;
}

gboolean
crisp_pod_config_shared_pid (const Runtime__V1__PodSandboxConfig *config)
{
  Runtime__V1__NamespaceOption *o = ns_options (config);
  /* An absent option means POD in the protocol's defaults. */
  return o == NULL || o->pid == RUNTIME__V1__NAMESPACE_MODE__POD;
}

char *
crisp_pod_config_name_key (const Runtime__V1__PodSandboxConfig *config)
{
  Runtime__V1__PodSandboxMetadata *m = config->metadata;
  return g_strdup_printf ("%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt);
}

static gboolean
has_bad_chars (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s <= ' ' || *s == 0x7f)
      return TRUE;
  return FALSE;
}

gboolean
crisp_pod_config_check_name (const char *field, const char *value, GError **error)
{
  if (value == NULL || *value == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is empty", field);
  if (strlen (value) > CRISP_NAME_MAX || has_bad_chars (value) || strchr (value, '/') != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s '%.64s' is not a valid name (at most %d bytes, no '/', spaces or "
                        "control characters)",
                        field, value, CRISP_NAME_MAX);
  return TRUE;
}

static gboolean
validate_metadata (const Runtime__V1__PodSandboxMetadata *m, GError **error)
{
  if (m == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "sandbox config: metadata is missing");
  const struct
  {
    const char *field, *value;
  } f[] = { { "name", m->name }, { "uid", m->uid }, { "namespace", m->namespace_ } };
  for (gsize i = 0; i < G_N_ELEMENTS (f); i++)
    {
      if (f[i].value == NULL || *f[i].value == '\0')
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "sandbox config: metadata.%s is empty", f[i].field);
      /* They end up in CNI_ARGS (';'-separated) and in a name key ('_'-separated). */
      if (strlen (f[i].value) > CRISP_NAME_MAX || has_bad_chars (f[i].value)
          || strchr (f[i].value, ';') || strchr (f[i].value, '='))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "sandbox config: metadata.%s '%s' is not a valid name", f[i].field,
                            f[i].value);
    }
  return TRUE;
}

/* Every map<string, string> entry protobuf-c generates has this layout. */
typedef struct
{
  ProtobufCMessage base;
  char *key;
  char *value;
} MapEntry;
G_STATIC_ASSERT (G_STRUCT_OFFSET (MapEntry, key)
                 == G_STRUCT_OFFSET (Runtime__V1__PodSandboxConfig__LabelsEntry, key));
G_STATIC_ASSERT (G_STRUCT_OFFSET (MapEntry, value)
                 == G_STRUCT_OFFSET (Runtime__V1__ContainerConfig__AnnotationsEntry, value));

gboolean
crisp_pod_config_check_map (const char *field, void *const *entries, size_t n, gsize max,
                            GError **error)
{
  gsize total = 0;
  for (size_t i = 0; i < n; i++)
    {
      const MapEntry *e = entries[i];
      if (e->key == NULL || *e->key == '\0')
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: a key is empty", field);
      total += strlen (e->key) + (e->value ? strlen (e->value) : 0);
    }
  if (total > max)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: %zu entries of %" G_GSIZE_FORMAT " bytes in total, over the limit of "
                        "%" G_GSIZE_FORMAT " bytes (%" G_GSIZE_FORMAT " KiB, keys plus values)",
                        field, n, total, max, max / 1024);
  return TRUE;
}

gboolean
crisp_pod_config_throw_path (GError **error, int r, const char *field, const char *path)
{
  const char *why = r == -ELOOP     ? "a symbolic link, which crisp does not follow"
                    : r == -ENOTDIR ? "not a directory"
                    : r == -EINVAL  ? "'.', '..' or empty"
                                    : NULL;
  if (why != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s '%s': a component is %s", field,
                        path, why);
  return crisp_throw_errno (error, r, "%s '%s'", field, path);
}

gboolean
crisp_pod_config_check_log_directory (const char *field, const char *dir, GError **error)
{
  if (dir == NULL || *dir == '\0')
    return TRUE;
  if (strlen (dir) >= PATH_MAX || !crisp_path_is_clean (dir, TRUE))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s '%.256s' must be an absolute path without '.', '..' or empty "
                        "components",
                        field, dir);
  /* Only what exists is checked here: CreateContainer makes the rest, with the same walk. */
  _cleanup_close_ int fd = -1;
  int r = crisp_open_dir_nofollow (-1, dir, FALSE, 0, &fd);
  if (r < 0 && r != -ENOENT)
    return crisp_pod_config_throw_path (error, r, field, dir);
  return TRUE;
}

static gboolean
validate_hostname (const char *h, GError **error)
{
  if (h == NULL || *h == '\0')
    return TRUE;
  if (strlen (h) > 64)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "sandbox config: hostname '%s' is longer than 64 characters", h);
  for (const char *p = h; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.')
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "sandbox config: hostname '%s' is not a valid host name", h);
  return TRUE;
}

static gboolean
validate_dns_list (const char *field, char **v, size_t n, GError **error)
{
  for (size_t i = 0; i < n; i++)
    if (v[i] == NULL || *v[i] == '\0' || has_bad_chars (v[i]) || strlen (v[i]) > 255)
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "sandbox config: dns_config.%s[%zu] '%s' is not valid", field, i,
                          v[i] ? v[i] : "");
  return TRUE;
}

static gboolean
validate_dns (const Runtime__V1__DNSConfig *dns, GError **error)
{
  if (dns == NULL)
    return TRUE;
  for (size_t i = 0; i < dns->n_servers; i++)
    if (!g_hostname_is_ip_address (dns->servers[i]))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "sandbox config: dns_config.servers[%zu] '%s' is not an IP address", i,
                          dns->servers[i]);
  return validate_dns_list ("searches", dns->searches, dns->n_searches, error)
         && validate_dns_list ("options", dns->options, dns->n_options, error);
}

/* ---- user namespaces ---- */

/* Lines the kernel would take are 340; kubelet sends one range for uids and one for gids. */
#define USERNS_MAX_MAPPINGS 16

typedef struct
{
  guint64 start, end; /* [start, end) */
} IdRange;

static gboolean
ranges_overlap (const IdRange *a, const IdRange *b)
{
  return a->start < b->end && b->start < a->end;
}

/* One side (uids or gids) of the mappings: each range sane, none overlapping another on
 * either side, and host id 0 never mapped: a container must not own the host's root. */
static gboolean
check_mappings (const char *what, Runtime__V1__IDMapping **m, size_t n, GError **error)
{
  const char *f = "sandbox config: namespace_options.userns_options";
  if (n == 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: mode POD needs at least one %s mapping", f, what);
  if (n > USERNS_MAX_MAPPINGS)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: %zu %s mappings, over the limit of %d", f, n, what,
                        USERNS_MAX_MAPPINGS);
  IdRange host[USERNS_MAX_MAPPINGS], cont[USERNS_MAX_MAPPINGS];
  for (size_t i = 0; i < n; i++)
    {
      guint64 len = m[i]->length;
      host[i] = (IdRange){ m[i]->host_id, (guint64) m[i]->host_id + len };
      cont[i] = (IdRange){ m[i]->container_id, (guint64) m[i]->container_id + len };
      if (len == 0)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: %s mapping %zu has length 0",
                            f, what, i);
      /* (u32) -1 is no id at all, so a range may end at it but not include it. */
      if (host[i].end > G_MAXUINT32 || cont[i].end > G_MAXUINT32)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "%s: %s mapping %zu (container %u, host %u, length %u) runs past "
                            "the largest id 4294967294",
                            f, what, i, m[i]->container_id, m[i]->host_id, m[i]->length);
      if (host[i].start == 0)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "%s: %s mapping %zu (container %u, host 0, length %u) maps the "
                            "host's root id into the pod, which is refused",
                            f, what, i, m[i]->container_id, m[i]->length);
      for (size_t j = 0; j < i; j++)
        if (ranges_overlap (&host[i], &host[j]) || ranges_overlap (&cont[i], &cont[j]))
          return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                              "%s: %s mappings %zu and %zu overlap on the %s side", f, what, j, i,
                              ranges_overlap (&host[i], &host[j]) ? "host" : "container");
    }
  for (size_t i = 0; i < n; i++)
    if (cont[i].start == 0)
      return TRUE;
  return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                      "%s: no %s mapping covers container id 0: the runtime sets every "
                      "container up as the user namespace's root",
                      f, what);
}

static gboolean
validate_userns (const Runtime__V1__NamespaceOption *o, GError **error)
{
  const Runtime__V1__UserNamespace *u = o->userns_options;
  if (u == NULL || u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
    {
      if (u != NULL && (u->n_uids || u->n_gids))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "sandbox config: namespace_options.userns_options: mode NODE (the "
                            "host's user namespace) takes no uid or gid mappings");
      return TRUE;
    }
  if (u->mode != RUNTIME__V1__NAMESPACE_MODE__POD)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "sandbox config: namespace_options.userns_options: mode %s is not "
                        "supported: a user namespace is either the host's (NODE) or the pod's "
                        "own (POD), never one per container or another container's",
                        u->mode == RUNTIME__V1__NAMESPACE_MODE__CONTAINER ? "CONTAINER"
                        : u->mode == RUNTIME__V1__NAMESPACE_MODE__TARGET  ? "TARGET"
                                                                          : "unknown");
  /* The host's network, IPC or PID namespaces belong to the host's user namespace: root in
   * the pod's could not manage them (mount sysfs, set sysctls), and Kubernetes refuses
   * hostUsers: false with any of them. */
  const char *host = o->network == RUNTIME__V1__NAMESPACE_MODE__NODE ? "network"
                     : o->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE   ? "IPC"
                     : o->pid == RUNTIME__V1__NAMESPACE_MODE__NODE   ? "PID"
                                                                     : NULL;
  if (host != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "sandbox config: namespace_options.userns_options mode POD with the "
                        "host's %s namespace is not supported: that namespace is owned by the "
                        "host's user namespace, not the pod's",
                        host);
  return check_mappings ("uid", u->uids, u->n_uids, error)
         && check_mappings ("gid", u->gids, u->n_gids, error);
}

static char *
map_text (Runtime__V1__IDMapping **m, size_t n)
{
  GString *s = g_string_new (NULL);
  for (size_t i = 0; i < n; i++)
    g_string_append_printf (s, "%u %u %u\n", m[i]->container_id, m[i]->host_id, m[i]->length);
  return g_string_free (s, FALSE);
}

const Runtime__V1__UserNamespace *
crisp_pod_userns (const CrispPod *pod)
{
  Runtime__V1__NamespaceOption *o = ns_options (pod->config);
  const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;
  return u != NULL && u->mode == RUNTIME__V1__NAMESPACE_MODE__POD ? u : NULL;
}

int
crisp_pod_open_userns (CrispPod *pod)
{
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&pod->op_lock); /* a stop clears the pin */
  if (pod->user_ns == NULL)
    return crisp_pod_userns (pod) ? -ENOENT : -1;
  int fd = open (pod->user_ns, O_RDONLY | O_CLOEXEC);
  /* -1 means "none" to callers: EPERM is told as EACCES. */
  return fd >= 0 ? fd : errno == EPERM ? -EACCES : -errno;
}

gboolean
crisp_pod_config_userns_maps (const Runtime__V1__PodSandboxConfig *config, char **out_uid_map,
                              char **out_gid_map)
{
  Runtime__V1__NamespaceOption *o = ns_options (config);
  const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;
  if (u == NULL || u->mode != RUNTIME__V1__NAMESPACE_MODE__POD)
    return FALSE;
  if (out_uid_map != NULL)
    *out_uid_map = map_text (u->uids, u->n_uids);
  if (out_gid_map != NULL)
    *out_gid_map = map_text (u->gids, u->n_gids);
  return TRUE;
}

static gboolean
validate_namespaces (const Runtime__V1__PodSandboxConfig *config, GError **error)
{
  Runtime__V1__NamespaceOption *o = ns_options (config);
  if (o == NULL)
    return TRUE;
  if (o->network == RUNTIME__V1__NAMESPACE_MODE__TARGET
      || o->network == RUNTIME__V1__NAMESPACE_MODE__CONTAINER
      || o->ipc == RUNTIME__V1__NAMESPACE_MODE__TARGET
      || o->ipc == RUNTIME__V1__NAMESPACE_MODE__CONTAINER
      || o->pid == RUNTIME__V1__NAMESPACE_MODE__TARGET)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "sandbox config: namespace_options: mode not valid for a pod "
                        "(network %d, ipc %d, pid %d)",
                        o->network, o->ipc, o->pid);
  return validate_userns (o, error);
}

static gboolean
validate_cgroup_parent (const char *parent, const char *driver, GError **error)
{
  /* No driver: a record read back, checked when it was created. */
  if (parent == NULL || *parent == '\0' || driver == NULL)
    return TRUE;
  if (has_bad_chars (parent) || strstr (parent, "..") != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "sandbox config: linux.cgroup_parent '%s' is not valid", parent);
  if (g_strcmp0 (driver, "systemd") == 0)
    {
      if (strchr (parent, '/') != NULL || !g_str_has_suffix (parent, ".slice"))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "sandbox config: linux.cgroup_parent '%s' is not a systemd slice "
                            "name (cgroup driver is systemd)",
                            parent);
      return TRUE;
    }
  if (parent[0] != '/')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "sandbox config: linux.cgroup_parent '%s' is not an absolute cgroup path "
                        "(cgroup driver is cgroupfs)",
                        parent);
  return TRUE;
}

/* Sysctls whose namespace the pod owns.  A key is matched in its '/' form. */
static gboolean
sysctl_allowed (const char *path, gboolean own_netns, gboolean own_ipc, const char **out_why)
{
  gboolean ipc = ((g_str_has_prefix (path, "kernel/shm") || g_str_has_prefix (path, "kernel/msg"))
                  && strchr (path + 7, '/') == NULL)
                 || strcmp (path, "kernel/sem") == 0 || g_str_has_prefix (path, "fs/mqueue/");
  if (ipc)
    {
      *out_why = "needs the pod's own IPC namespace";
      return own_ipc;
    }
  if (g_str_has_prefix (path, "net/"))
    {
      *out_why = "needs the pod's own network namespace";
      return own_netns;
    }
  *out_why = "is not a namespaced sysctl on the allow-list";
  return FALSE;
}

char *
crisp_sysctl_path (const char *key, gboolean own_netns, gboolean own_ipc, GError **error)
{
  if (key == NULL || *key == '\0' || strlen (key) > 255)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "sysctl: empty or long key"), NULL;
  for (const char *p = key; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("._-/", *p) == NULL)
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "sysctl '%s': invalid character in key", key),
             NULL;
  /* "a.b.c" and "a/b.c/d" (a dot inside a component, e.g. a VLAN interface) both exist. */
  g_autofree char *path
      = strchr (key, '/') ? g_strdup (key) : g_strdelimit (g_strdup (key), ".", '/');
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  for (char **p = parts; *p; p++)
    if (**p == '\0' || strcmp (*p, ".") == 0 || strcmp (*p, "..") == 0)
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "sysctl '%s': invalid key", key),
             NULL;
  const char *why = NULL;
  if (!sysctl_allowed (path, own_netns, own_ipc, &why))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "sysctl '%s' not allowed: it %s", key,
                        why),
           NULL;
  return g_steal_pointer (&path);
}

static gboolean
validate_sysctls (const Runtime__V1__PodSandboxConfig *config, GError **error)
{
  if (config->linux == NULL)
    return TRUE;
  gboolean own_net = !crisp_pod_config_host_network (config);
  gboolean own_ipc = !crisp_pod_config_host_ipc (config);
  for (size_t i = 0; i < config->linux->n_sysctls; i++)
    {
      Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *e = config->linux->sysctls[i];
      g_autofree char *path = crisp_sysctl_path (e->key, own_net, own_ipc, error);
      if (path == NULL)
        return FALSE;
      if (strlen (e->value) > 4096)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "sysctl '%s': value too long",
                            e->key);
    }
  return TRUE;
}

static gboolean
validate_ports (const Runtime__V1__PodSandboxConfig *config, GError **error)
{
  for (size_t i = 0; i < config->n_port_mappings; i++)
    {
      Runtime__V1__PortMapping *p = config->port_mappings[i];
      if (p->container_port < 0 || p->container_port > 65535 || p->host_port < 0
          || p->host_port > 65535)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "sandbox config: port_mappings[%zu]: port out of range", i);
      if (p->host_ip && *p->host_ip && !g_hostname_is_ip_address (p->host_ip))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "sandbox config: port_mappings[%zu].host_ip '%s' is not an address", i,
                            p->host_ip);
    }
  return TRUE;
}

/* The pod-level resources a kubelet reports (the same checks as UpdatePodSandboxResources). */
static gboolean
validate_pod_resources (const Runtime__V1__LinuxPodSandboxConfig *l, GError **error)
{
  return l == NULL
         || (crisp_cgroups_validate_field ("sandbox config: linux.overhead", l->overhead, error)
             && crisp_cgroups_validate_field ("sandbox config: linux.resources", l->resources,
                                              error));
}

/* Rules checked on requests only.  A record read back (no cgroup driver) was accepted by the
 * crisp that made it: failing it on a rule added since, or on a link that appeared in its log
 * directory, would lose a running pod at start-up. */
static gboolean
validate_request_only (const Runtime__V1__PodSandboxConfig *config, GError **error)
{
  const Runtime__V1__PodSandboxMetadata *m = config->metadata;
  return crisp_pod_config_check_name ("sandbox config: metadata.name", m->name, error)
         && crisp_pod_config_check_name ("sandbox config: metadata.namespace", m->namespace_, error)
         && crisp_pod_config_check_name ("sandbox config: metadata.uid", m->uid, error)
         && crisp_pod_config_check_map ("sandbox config: labels", (void *const *) config->labels,
                                        config->n_labels, CRISP_LABELS_MAX, error)
         && crisp_pod_config_check_map ("sandbox config: annotations",
                                        (void *const *) config->annotations, config->n_annotations,
                                        CRISP_ANNOTATIONS_MAX, error)
         && crisp_pod_config_check_log_directory ("sandbox config: log_directory",
                                                  config->log_directory, error)
         && validate_pod_resources (config->linux, error);
}

gboolean
crisp_pod_config_validate (const Runtime__V1__PodSandboxConfig *config, const char *cgroup_driver,
                           GError **error)
{
  if (config == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "sandbox config is missing");
  return validate_metadata (config->metadata, error)
         && (cgroup_driver == NULL || validate_request_only (config, error))
         && validate_hostname (config->hostname, error) && validate_dns (config->dns_config, error)
         && validate_namespaces (config, error)
         && validate_cgroup_parent (config->linux ? config->linux->cgroup_parent : NULL,
                                    cgroup_driver, error)
         && validate_sysctls (config, error) && validate_ports (config, error);
}

static const char *
protocol_name (Runtime__V1__Protocol p)
{
  switch (p)
    {
    case RUNTIME__V1__PROTOCOL__UDP:
      return "udp";
    case RUNTIME__V1__PROTOCOL__SCTP:
      return "sctp";
    default:
      return "tcp";
    }
}

JsonNode *
crisp_pod_config_port_mappings (const Runtime__V1__PodSandboxConfig *config)
{
  JsonArray *arr = json_array_new ();
  for (size_t i = 0; i < config->n_port_mappings; i++)
    {
      Runtime__V1__PortMapping *p = config->port_mappings[i];
      if (p->host_port <= 0)
        continue;
      JsonObject *o = json_object_new ();
      json_object_set_int_member (o, "hostPort", p->host_port);
      json_object_set_int_member (o, "containerPort", p->container_port);
      json_object_set_string_member (o, "protocol", protocol_name (p->protocol));
      json_object_set_string_member (o, "hostIP", p->host_ip ? p->host_ip : "");
      json_array_add_object_element (arr, o);
    }
  JsonNode *n = json_node_alloc ();
  json_node_init_array (n, arr);
  json_array_unref (arr);
  return n;
}
