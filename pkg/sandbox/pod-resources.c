/* UpdatePodSandboxResources: the pod-level overhead and resources the kubelet sends after it
 * has resized the pod's cgroup, kept where the CRI says they belong (the pod's config, so its
 * record) and reported by PodSandboxStatus.  The pod cgroup itself is the kubelet's: crisp
 * leaves it alone, as containerd and CRI-O do (docs/containers.md says why). */
#include "config.h"

#include "sandbox-private.h"

#include "crisp-cgroups.h"
#include "crisp-error.h"
#include "proto/proto-copy.h"

typedef Runtime__V1__LinuxContainerResources Resources;

/* Exchanges the config's overhead and resources with *overhead and *resources.  Callers hold
 * the service lock and the pod's op_lock, which every reader of config->linux holds one of. */
static void
exchange (CrispPod *pod, Resources **overhead, Resources **resources)
{
  Runtime__V1__PodSandboxConfig *c = pod->config;
  if (c->linux == NULL)
    {
      Runtime__V1__LinuxPodSandboxConfig empty = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
      c->linux = crisp_proto_dup (&empty.base);
    }
  Resources *t = c->linux->overhead;
  c->linux->overhead = *overhead;
  *overhead = t;
  t = c->linux->resources;
  c->linux->resources = *resources;
  *resources = t;
}

/* The pod's record as it will be with the new values; memory keeps the old ones. */
static JsonNode *
record_with (CrispPodService *svc, CrispPod *pod, Resources **overhead, Resources **resources)
{
  g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
  exchange (pod, overhead, resources);
  JsonNode *node = crisp_pod_to_json (pod);
  exchange (pod, overhead, resources);
  return node;
}

static void
resources_free (Resources *r)
{
  if (r != NULL)
    protobuf_c_message_free_unpacked (&r->base, NULL);
}

gboolean
crisp_pod_service_update_resources (CrispPodService *svc, const char *id, const Resources *overhead,
                                    const Resources *resources, GError **error)
{
  if (!crisp_cgroups_validate_field ("overhead", overhead, error)
      || !crisp_cgroups_validate_field ("resources", resources, error))
    return FALSE;
  g_autoptr (CrispPod) pod = crisp_pod_service_lookup (svc, id, error);
  if (pod == NULL)
    return FALSE;
  g_autoptr (GMutexLocker) op = g_mutex_locker_new (&pod->op_lock);
  if (crisp_pod_service_get_state (svc, pod) != CRISP_POD_READY)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "pod sandbox '%s' is not ready: its resources cannot change", pod->id);
  Resources *o = crisp_proto_dup (overhead ? &overhead->base : NULL);
  Resources *r = crisp_proto_dup (resources ? &resources->base : NULL);
  /* One atomic record write is the whole transaction: a kill before its rename leaves the old
   * values everywhere, after it the new ones. */
  g_autoptr (JsonNode) node = record_with (svc, pod, &o, &r);
  gboolean saved = crisp_store_save (svc->store, pod->id, "pod.json", node, error);
  if (saved)
    {
      g_autoptr (GMutexLocker) l = g_mutex_locker_new (&svc->lock);
      exchange (pod, &o, &r);
    }
  resources_free (o);
  resources_free (r);
  return saved || crisp_prefix_error (error, "pod %s: saving its resources: ", pod->id);
}
