/* The container's namespaces (the pod's pinned ones, or the host's), cgroupsPath and cgroup
 * resources, OOM score, namespaced sysctls, annotations and hostname; and the host probe. */
#include "config.h"

#include "oci-private.h"
#include "crisp-error.h"

#include <linux/capability.h>
#include <string.h>
#include <sys/syscall.h>

#define MAX_SYSCTLS 128
#define MAX_ANNOTATION_BYTES (256 * 1024)

static gboolean
can_lower_oom_score (void)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2] = { { 0 } };
  if (syscall (SYS_capget, &hdr, data) < 0)
    return FALSE;
  return (data[CAP_SYS_RESOURCE / 32].effective & (1u << (CAP_SYS_RESOURCE % 32))) != 0;
}

static int
read_int_file (const char *path, int fallback)
{
  g_autofree char *text = NULL;
  gint64 v;
  if (!g_file_get_contents (path, &text, NULL, NULL)
      || !g_ascii_string_to_signed (g_strstrip (text), 10, -100000, 100000, &v, NULL))
    return fallback;
  return (int) v;
}

/* CapBnd from /proc/self/status; all ones when unreadable (runc will say what is wrong). */
static guint64
read_cap_bounding (void)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents ("/proc/self/status", &text, NULL, NULL))
    return G_MAXUINT64;
  const char *line = strstr (text, "\nCapBnd:");
  if (line == NULL)
    return G_MAXUINT64;
  return g_ascii_strtoull (line + strlen ("\nCapBnd:"), NULL, 16);
}

void
crisp_oci_host_probe (CrispCgroups *cg, CrispOciHost *out_host)
{
  CrispOciHost h = { 0 };
  h.cgroup_mode = cg ? cg->mode : CRISP_CGROUP_MODE_V1;
  h.hugetlb = cg ? crisp_cgroups_has_controller (cg, "hugetlb") : FALSE;
  h.oom_score_restricted = !can_lower_oom_score ();
  h.oom_score_adj_min = read_int_file ("/proc/self/oom_score_adj", 0);
  h.cap_last_cap = read_int_file ("/proc/sys/kernel/cap_last_cap", CAP_LAST_CAP);
  h.cap_bounding = read_cap_bounding ();
  *out_host = h;
}

static void
add_namespace (JsonArray *nss, const char *type, const char *path)
{
  JsonObject *ns = json_object_new ();
  json_object_set_string_member (ns, "type", type);
  if (path != NULL)
    json_object_set_string_member (ns, "path", path);
  json_array_add_object_element (nss, ns);
}

static const Runtime__V1__NamespaceOption *
namespace_options (const CrispOciInput *in)
{
  static const Runtime__V1__NamespaceOption pod = RUNTIME__V1__NAMESPACE_OPTION__INIT;
  const Runtime__V1__NamespaceOption *o = crisp_oci_security_context (in)->namespace_options;
  return o ? o : &pod;
}

/* The pod's own options: network and IPC are whatever the pod has, whatever the container's
 * config says (kubelet sends matching ones; a stale or hand-made request must not be able to
 * ask for the host's network in a pod that has its own, or the other way round). */
static const Runtime__V1__NamespaceOption *
pod_namespace_options (const CrispOciInput *in)
{
  static const Runtime__V1__NamespaceOption pod = RUNTIME__V1__NAMESPACE_OPTION__INIT;
  const Runtime__V1__LinuxPodSandboxConfig *l = in->sandbox_config->linux;
  if (l && l->security_context && l->security_context->namespace_options)
    return l->security_context->namespace_options;
  return &pod;
}

/* A namespace the pod pinned: joined by path, or the host's (nothing in the spec). */
static gboolean
add_pod_namespace (JsonArray *nss, const char *type, Runtime__V1__NamespaceMode mode,
                   const char *path, GError **error)
{
  if (mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
    return TRUE;
  if (mode != RUNTIME__V1__NAMESPACE_MODE__POD)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: %s namespace mode %d is not supported", type,
                        (int) mode);
  if (path == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "the pod has no %s namespace for the container to join", type);
  add_namespace (nss, type, path);
  return TRUE;
}

static gboolean
add_pid_namespace (const CrispOciInput *in, JsonArray *nss, Runtime__V1__NamespaceMode mode,
                   GError **error)
{
  switch (mode)
    {
    case RUNTIME__V1__NAMESPACE_MODE__NODE:
      return TRUE;
    case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
      add_namespace (nss, "pid", NULL);
      return TRUE;
    case RUNTIME__V1__NAMESPACE_MODE__POD:
    case RUNTIME__V1__NAMESPACE_MODE__TARGET:
      /* POD is also what a request that says nothing decodes to: in a pod that shares no PID
       * namespace (no pause process), the container's own is the pod's. */
      if (in->pidns_path == NULL && mode == RUNTIME__V1__NAMESPACE_MODE__POD
          && pod_namespace_options (in)->pid != RUNTIME__V1__NAMESPACE_MODE__POD)
        {
          add_namespace (nss, "pid", NULL);
          return TRUE;
        }
      if (in->pidns_path == NULL)
        return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                            "no pid namespace to join for pid mode %s",
                            mode == RUNTIME__V1__NAMESPACE_MODE__POD ? "POD" : "TARGET");
      add_namespace (nss, "pid", in->pidns_path);
      return TRUE;
    default:
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "container config: pid namespace mode %d is unknown", (int) mode);
    }
}

static JsonArray *
mappings_array (Runtime__V1__IDMapping *const *m, size_t n)
{
  JsonArray *a = json_array_new ();
  for (size_t i = 0; i < n; i++)
    {
      JsonObject *o = json_object_new ();
      json_object_set_int_member (o, "containerID", m[i]->container_id);
      json_object_set_int_member (o, "hostID", m[i]->host_id);
      json_object_set_int_member (o, "size", m[i]->length);
      json_array_add_object_element (a, o);
    }
  return a;
}

/* A container lives in its pod's user namespace or in none: its userns_options may repeat
 * the pod's, or say nothing (then it follows the pod). The runtime joins the pinned namespace
 * by path; runc also wants the mappings (it checks them, and finds root's host id in them). */
static gboolean
add_user_namespace (const CrispOciInput *in, const Runtime__V1__NamespaceOption *o,
                    JsonObject *linux_obj, JsonArray *nss, GError **error)
{
  const Runtime__V1__UserNamespace *u = o->userns_options, *pod = in->pod_userns;
  Runtime__V1__NamespaceMode mode = u     ? u->mode
                                    : pod ? RUNTIME__V1__NAMESPACE_MODE__POD
                                          : RUNTIME__V1__NAMESPACE_MODE__NODE;
  if (mode == RUNTIME__V1__NAMESPACE_MODE__CONTAINER || mode == RUNTIME__V1__NAMESPACE_MODE__TARGET)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: userns_options mode %s is not supported: a "
                        "container's user namespace is its pod's (POD) or the host's (NODE)",
                        mode == RUNTIME__V1__NAMESPACE_MODE__CONTAINER ? "CONTAINER" : "TARGET");
  if (mode == RUNTIME__V1__NAMESPACE_MODE__NODE && pod == NULL)
    return TRUE;
  if (mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: userns_options mode NODE in a pod with its own user "
                        "namespace: a container cannot leave its pod's user namespace");
  if (mode != RUNTIME__V1__NAMESPACE_MODE__POD)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: userns_options mode %d is unknown", (int) mode);
  if (pod == NULL || in->userns_path == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "container config: userns_options mode POD, but the pod has no user "
                        "namespace (its sandbox config did not ask for one)");
  if (u != NULL && (u->n_uids || u->n_gids)
      && (!crisp_oci_same_mappings (u->uids, u->n_uids, pod->uids, pod->n_uids)
          || !crisp_oci_same_mappings (u->gids, u->n_gids, pod->gids, pod->n_gids)))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: userns_options mappings differ from the pod's: a "
                        "container shares its pod's user namespace and so its mappings");
  add_namespace (nss, "user", in->userns_path);
  json_object_set_array_member (linux_obj, "uidMappings", mappings_array (pod->uids, pod->n_uids));
  json_object_set_array_member (linux_obj, "gidMappings", mappings_array (pod->gids, pod->n_gids));
  return TRUE;
}

gboolean
crisp_oci_build_namespaces (const CrispOciInput *in, JsonObject *spec, JsonObject *linux_obj,
                            GError **error)
{
  const Runtime__V1__NamespaceOption *o = namespace_options (in);
  const Runtime__V1__NamespaceOption *p = pod_namespace_options (in);
  JsonArray *nss = json_array_new ();
  json_object_set_array_member (linux_obj, "namespaces", nss);
  if (!add_user_namespace (in, o, linux_obj, nss, error))
    return FALSE;
  add_namespace (nss, "mount", NULL);
  if (!add_pid_namespace (in, nss, o->pid, error)
      || !add_pod_namespace (nss, "network", p->network, in->netns_path, error)
      || !add_pod_namespace (nss, "ipc", p->ipc, in->ipcns_path, error))
    return FALSE;
  /* Host network means the host's UTS too, as kubelet expects. */
  if (p->network != RUNTIME__V1__NAMESPACE_MODE__NODE)
    {
      const char *hostname = in->hostname ? in->hostname : in->sandbox_config->hostname;
      add_namespace (nss, "uts", in->utsns_path);
      gboolean own_uts = in->utsns_path == NULL && hostname && hostname[0];
      if (own_uts && !crisp_oci_check_text ("pod config: hostname", hostname, 64, error))
        return FALSE;
      if (own_uts)
        json_object_set_string_member (spec, "hostname", hostname);
    }
  if (in->host->cgroup_mode == CRISP_CGROUP_MODE_V2)
    add_namespace (nss, "cgroup", NULL);
  return TRUE;
}

static void
set_if (JsonObject *o, const char *key, gint64 v)
{
  if (v != 0)
    json_object_set_int_member (o, key, v);
}

static JsonObject *
cpu_object (const Runtime__V1__LinuxContainerResources *r)
{
  JsonObject *cpu = json_object_new ();
  set_if (cpu, "shares", r->cpu_shares);
  set_if (cpu, "quota", r->cpu_quota);
  set_if (cpu, "period", r->cpu_period);
  if (r->cpuset_cpus && r->cpuset_cpus[0])
    json_object_set_string_member (cpu, "cpus", r->cpuset_cpus);
  if (r->cpuset_mems && r->cpuset_mems[0])
    json_object_set_string_member (cpu, "mems", r->cpuset_mems);
  return cpu;
}

static JsonObject *
memory_object (const Runtime__V1__LinuxContainerResources *r)
{
  JsonObject *mem = json_object_new ();
  set_if (mem, "limit", r->memory_limit_in_bytes);
  set_if (mem, "swap", r->memory_swap_limit_in_bytes);
  return mem;
}

static void
add_hugepages (const CrispOciInput *in, const Runtime__V1__LinuxContainerResources *r,
               JsonObject *resources)
{
  if (r->n_hugepage_limits == 0)
    return;
  if (!in->host->hugetlb)
    {
      crisp_oci_note (in,
                      "%zu hugepage limit(s) dropped: the hugetlb cgroup controller is not "
                      "mounted",
                      r->n_hugepage_limits);
      return;
    }
  JsonArray *a = json_array_new ();
  for (gsize i = 0; i < r->n_hugepage_limits; i++)
    {
      JsonObject *h = json_object_new ();
      json_object_set_string_member (h, "pageSize", r->hugepage_limits[i]->page_size);
      json_object_set_int_member (h, "limit", (gint64) r->hugepage_limits[i]->limit);
      json_array_add_object_element (a, h);
    }
  json_object_set_array_member (resources, "hugepageLimits", a);
}

static void
add_unified (const CrispOciInput *in, const Runtime__V1__LinuxContainerResources *r,
             JsonObject *resources)
{
  if (r->n_unified == 0)
    return;
  if (in->host->cgroup_mode != CRISP_CGROUP_MODE_V2)
    {
      crisp_oci_note (in, "%zu unified cgroup setting(s) dropped: the host is not cgroup v2",
                      r->n_unified);
      return;
    }
  JsonObject *u = json_object_new ();
  for (gsize i = 0; i < r->n_unified; i++)
    json_object_set_string_member (u, r->unified[i]->key, r->unified[i]->value);
  json_object_set_object_member (resources, "unified", u);
}

/* Where the host forbids lowering oom_score_adj, the runtime would fail the container; the
 * score is raised to this process's own instead, and the caller logs why. */
static void
set_oom_score (const CrispOciInput *in, JsonObject *process, gint64 requested)
{
  gint64 v = requested;
  if (in->host->oom_score_restricted && v < in->host->oom_score_adj_min)
    {
      v = in->host->oom_score_adj_min;
      crisp_oci_note (in,
                      "oom_score_adj %" G_GINT64_FORMAT " clamped to %" G_GINT64_FORMAT
                      ": this host does not allow lowering it",
                      requested, v);
    }
  json_object_set_int_member (process, "oomScoreAdj", v);
}

gboolean
crisp_oci_build_resources (const CrispOciInput *in, JsonObject *process, JsonObject *linux_obj,
                           JsonObject *resources, GError **error)
{
  const Runtime__V1__LinuxContainerConfig *l = in->config->linux;
  const Runtime__V1__LinuxContainerResources *r = l ? l->resources : NULL;
  const char *parent = in->cgroup_parent;
  if (parent == NULL && in->sandbox_config->linux)
    parent = in->sandbox_config->linux->cgroup_parent;
  g_autofree char *cgroups_path = NULL;
  if (!crisp_cgroups_container_path (in->cgroup_driver, parent, in->container_id, &cgroups_path,
                                     NULL, error))
    return FALSE;
  json_object_set_string_member (linux_obj, "cgroupsPath", cgroups_path);
  if (r == NULL)
    {
      set_oom_score (in, process, 0);
      return TRUE;
    }
  if (!crisp_cgroups_validate_resources (r, error))
    return crisp_prefix_error (error, "container config: ");
  json_object_set_object_member (resources, "cpu", cpu_object (r));
  json_object_set_object_member (resources, "memory", memory_object (r));
  add_hugepages (in, r, resources);
  add_unified (in, r, resources);
  set_oom_score (in, process, r->oom_score_adj);
  return TRUE;
}

static gboolean
sysctl_key_ok (const char *k)
{
  gsize n = strlen (k);
  return n > 0 && n <= 256 && k[0] != '.' && k[0] != '/'
         && strspn (k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") == n
         && strstr (k, "..") == NULL;
}

/* Which namespace a sysctl belongs to: "net", "ipc", or NULL for one the container cannot set. */
static const char *
sysctl_namespace (const char *k)
{
  static const char *const ipc[] = { "kernel.shmmax",          "kernel.shmall", "kernel.shmmni",
                                     "kernel.shm_rmid_forced", "kernel.msgmax", "kernel.msgmni",
                                     "kernel.msgmnb",          "kernel.sem",    NULL };
  if (g_str_has_prefix (k, "net.") || g_str_has_prefix (k, "net/"))
    return "net";
  if (g_str_has_prefix (k, "fs.mqueue.") || g_strv_contains (ipc, k))
    return "ipc";
  return NULL;
}

gboolean
crisp_oci_build_sysctls (const CrispOciInput *in, JsonObject *linux_obj, GError **error)
{
  const Runtime__V1__LinuxPodSandboxConfig *pl = in->sandbox_config->linux;
  const Runtime__V1__NamespaceOption *o = pod_namespace_options (in);
  JsonObject *out = json_object_new ();
  json_object_set_object_member (linux_obj, "sysctl", out);
  if (pl == NULL || pl->n_sysctls == 0)
    return TRUE;
  if (pl->n_sysctls > MAX_SYSCTLS)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "pod config: more than %d sysctls",
                        MAX_SYSCTLS);
  for (gsize i = 0; i < pl->n_sysctls; i++)
    {
      const char *k = pl->sysctls[i]->key, *v = pl->sysctls[i]->value;
      if (k == NULL || !sysctl_key_ok (k) || v == NULL
          || !crisp_oci_check_text ("pod config: sysctl value", v, 4096, NULL))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "pod config: sysctl '%s' has an invalid name or value", k ? k : "");
      const char *ns = sysctl_namespace (k);
      gboolean host = ns && g_str_equal (ns, "net")
                          ? o->network == RUNTIME__V1__NAMESPACE_MODE__NODE
                          : o->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE;
      if (ns == NULL || host)
        crisp_oci_note (in, "sysctl '%s' not applied to the container: %s", k,
                        ns ? "it would change the host's namespace" : "not namespaced");
      else
        json_object_set_string_member (out, k, v);
    }
  return TRUE;
}

static void
set_text (JsonObject *a, const char *key, const char *value)
{
  json_object_set_string_member (a, key, value ? value : "");
}

gboolean
crisp_oci_build_annotations (const CrispOciInput *in, JsonObject *spec, GError **error)
{
  const Runtime__V1__ContainerConfig *c = in->config;
  const Runtime__V1__PodSandboxMetadata *pm = in->sandbox_config->metadata;
  JsonObject *a = json_object_new ();
  json_object_set_object_member (spec, "annotations", a);
  if (c->n_annotations > OCI_MAX_LIST)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "container config: more than %d annotations", OCI_MAX_LIST);
  gsize bytes = 0;
  for (gsize i = 0; i < c->n_annotations; i++)
    {
      const char *k = c->annotations[i]->key, *v = c->annotations[i]->value;
      if (k == NULL || k[0] == '\0' || v == NULL)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "container config: annotation with an empty key");
      bytes += strlen (k) + strlen (v);
      if (bytes > MAX_ANNOTATION_BYTES)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "container config: annotations exceed %d bytes", MAX_ANNOTATION_BYTES);
      json_object_set_string_member (a, k, v);
    }
  /* crisp's own come last so a request cannot forge them */
  set_text (a, "io.kubernetes.cri.container-type", "container");
  set_text (a, "io.kubernetes.cri.container-name", c->metadata->name);
  set_text (a, "io.kubernetes.cri.sandbox-id", in->sandbox_id);
  set_text (a, "io.kubernetes.cri.sandbox-name", pm ? pm->name : NULL);
  set_text (a, "io.kubernetes.cri.sandbox-namespace", pm ? pm->namespace_ : NULL);
  set_text (a, "io.kubernetes.cri.sandbox-uid", pm ? pm->uid : NULL);
  set_text (a, "io.kubernetes.cri.image-name",
            in->image_name ? in->image_name : (c->image ? c->image->image : NULL));
  return TRUE;
}
