/* PodSandboxStatus and ListPodSandbox messages, built from malloc'd memory so the caller
 * frees them with protobuf_c_message_free_unpacked (). */
#include "config.h"

#include "sandbox-private.h"

#include <string.h>

#define PB_NEW(Type, INIT)                                                                         \
  ({                                                                                               \
    Type *_m = g_new (Type, 1);                                                                    \
    *_m = (Type) INIT;                                                                             \
    _m;                                                                                            \
  })

static Runtime__V1__PodSandboxMetadata *
metadata_copy (const Runtime__V1__PodSandboxMetadata *m)
{
  Runtime__V1__PodSandboxMetadata *c
      = PB_NEW (Runtime__V1__PodSandboxMetadata, RUNTIME__V1__POD_SANDBOX_METADATA__INIT);
  c->name = g_strdup (m->name);
  c->uid = g_strdup (m->uid);
  c->namespace_ = g_strdup (m->namespace_);
  c->attempt = m->attempt;
  return c;
}

/* The CRI's map entries all share one layout: base, key, value. */
typedef struct
{
  ProtobufCMessage base;
  char *key;
  char *value;
} Entry;

static void *
entries_copy (const ProtobufCMessageDescriptor *desc, void *const *src, size_t n)
{
  Entry **out = g_new0 (Entry *, n ? n : 1);
  for (size_t i = 0; i < n; i++)
    {
      const Entry *e = src[i];
      out[i] = g_malloc0 (desc->sizeof_message);
      protobuf_c_message_init (desc, out[i]);
      out[i]->key = g_strdup (e->key);
      out[i]->value = g_strdup (e->value);
    }
  return out;
}

static Runtime__V1__PodSandboxState
cri_state (CrispPodState s)
{
  return s == CRISP_POD_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                              : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
}

Runtime__V1__PodSandbox *
crisp_pod_build_item (CrispPodService *svc, CrispPod *pod)
{
  Runtime__V1__PodSandboxConfig *c = pod->config;
  Runtime__V1__PodSandbox *item = PB_NEW (Runtime__V1__PodSandbox, RUNTIME__V1__POD_SANDBOX__INIT);
  item->id = g_strdup (pod->id);
  item->metadata = metadata_copy (c->metadata);
  item->state = cri_state (pod->state);
  item->created_at = pod->created_at;
  item->n_labels = c->n_labels;
  item->labels = entries_copy (&runtime__v1__pod_sandbox__labels_entry__descriptor,
                               (void *const *) c->labels, c->n_labels);
  item->n_annotations = c->n_annotations;
  item->annotations = entries_copy (&runtime__v1__pod_sandbox__annotations_entry__descriptor,
                                    (void *const *) c->annotations, c->n_annotations);
  item->runtime_handler = g_strdup (pod->runtime_handler);
  return item;
}

static Runtime__V1__PodSandboxNetworkStatus *
network_status (CrispPod *pod)
{
  Runtime__V1__PodSandboxNetworkStatus *n = PB_NEW (Runtime__V1__PodSandboxNetworkStatus,
                                                    RUNTIME__V1__POD_SANDBOX_NETWORK_STATUS__INIT);
  guint count = pod->ips ? g_strv_length (pod->ips) : 0;
  n->ip = g_strdup (count > 0 ? pod->ips[0] : "");
  n->n_additional_ips = count > 1 ? count - 1 : 0;
  n->additional_ips = g_new0 (Runtime__V1__PodIP *, n->n_additional_ips + 1);
  for (guint i = 1; i < count; i++)
    {
      n->additional_ips[i - 1] = PB_NEW (Runtime__V1__PodIP, RUNTIME__V1__POD_IP__INIT);
      n->additional_ips[i - 1]->ip = g_strdup (pod->ips[i]);
    }
  return n;
}

static Runtime__V1__LinuxPodSandboxStatus *
linux_status (CrispPod *pod)
{
  Runtime__V1__LinuxPodSandboxStatus *l
      = PB_NEW (Runtime__V1__LinuxPodSandboxStatus, RUNTIME__V1__LINUX_POD_SANDBOX_STATUS__INIT);
  l->namespaces = PB_NEW (Runtime__V1__Namespace, RUNTIME__V1__NAMESPACE__INIT);
  Runtime__V1__NamespaceOption *o
      = PB_NEW (Runtime__V1__NamespaceOption, RUNTIME__V1__NAMESPACE_OPTION__INIT);
  Runtime__V1__PodSandboxConfig *c = pod->config;
  Runtime__V1__NamespaceOption *req = c->linux && c->linux->security_context
                                          ? c->linux->security_context->namespace_options
                                          : NULL;
  if (req != NULL)
    {
      o->network = req->network;
      o->pid = req->pid;
      o->ipc = req->ipc;
    }
  o->target_id = g_strdup ("");
  /* The user namespace as asked, mappings included: a copy in the response's own memory. */
  const Runtime__V1__UserNamespace *u = req ? req->userns_options : NULL;
  if (u != NULL)
    {
      size_t len = protobuf_c_message_get_packed_size (&u->base);
      g_autofree guint8 *buf = g_malloc (len ? len : 1);
      protobuf_c_message_pack (&u->base, buf);
      o->userns_options = runtime__v1__user_namespace__unpack (NULL, len, buf);
    }
  l->namespaces->options = o;
  return l;
}

static void
set_int_unless_zero (JsonObject *o, const char *name, gint64 value)
{
  if (value != 0)
    json_object_set_int_member (o, name, value);
}

/* A LinuxContainerResources as JSON, under the CRI's field names; zero fields are left out. */
static JsonNode *
resources_to_json (const Runtime__V1__LinuxContainerResources *r)
{
  g_autoptr (JsonObject) o = json_object_new (); /* the node takes a reference of its own */
  set_int_unless_zero (o, "cpu_period", r->cpu_period);
  set_int_unless_zero (o, "cpu_quota", r->cpu_quota);
  set_int_unless_zero (o, "cpu_shares", r->cpu_shares);
  set_int_unless_zero (o, "memory_limit_in_bytes", r->memory_limit_in_bytes);
  set_int_unless_zero (o, "oom_score_adj", r->oom_score_adj);
  set_int_unless_zero (o, "memory_swap_limit_in_bytes", r->memory_swap_limit_in_bytes);
  if (r->cpuset_cpus && *r->cpuset_cpus)
    json_object_set_string_member (o, "cpuset_cpus", r->cpuset_cpus);
  if (r->cpuset_mems && *r->cpuset_mems)
    json_object_set_string_member (o, "cpuset_mems", r->cpuset_mems);
  JsonArray *huge = json_array_new ();
  for (size_t i = 0; i < r->n_hugepage_limits; i++)
    {
      JsonObject *h = json_object_new ();
      json_object_set_string_member (h, "page_size", r->hugepage_limits[i]->page_size);
      json_object_set_int_member (h, "limit", (gint64) r->hugepage_limits[i]->limit);
      json_array_add_object_element (huge, h);
    }
  json_object_set_array_member (o, "hugepage_limits", huge);
  JsonObject *unified = json_object_new ();
  for (size_t i = 0; i < r->n_unified; i++)
    json_object_set_string_member (unified, r->unified[i]->key, r->unified[i]->value);
  json_object_set_object_member (o, "unified", unified);
  return json_node_init_object (json_node_alloc (), o);
}

/* The pod-level overhead and resources the kubelet last reported (RunPodSandbox or
 * UpdatePodSandboxResources); null when it gave none. */
static void
add_pod_resources (JsonObject *o, CrispPod *pod)
{
  const Runtime__V1__LinuxPodSandboxConfig *l = pod->config->linux;
  if (l != NULL && l->overhead != NULL)
    json_object_set_member (o, "overhead", resources_to_json (l->overhead));
  else
    json_object_set_null_member (o, "overhead");
  if (l != NULL && l->resources != NULL)
    json_object_set_member (o, "resources", resources_to_json (l->resources));
  else
    json_object_set_null_member (o, "resources");
}

static char *
verbose_info (CrispPodService *svc, CrispPod *pod)
{
  g_autoptr (JsonNode) rec = crisp_pod_to_json (pod);
  JsonObject *o = json_node_get_object (rec);
  json_object_remove_member (o, "config");
  add_pod_resources (o, pod);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) net = crisp_pod_load_attachment (svc, pod->id, NULL);
  if (net != NULL)
    json_object_set_member (o, "network", g_steal_pointer (&net));
  return json_to_string (rec, FALSE);
}

Runtime__V1__PodSandboxStatusResponse *
crisp_pod_build_status (CrispPodService *svc, CrispPod *pod, gboolean verbose)
{
  Runtime__V1__PodSandboxConfig *c = pod->config;
  Runtime__V1__PodSandboxStatusResponse *resp = PB_NEW (
      Runtime__V1__PodSandboxStatusResponse, RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INIT);
  Runtime__V1__PodSandboxStatus *s
      = PB_NEW (Runtime__V1__PodSandboxStatus, RUNTIME__V1__POD_SANDBOX_STATUS__INIT);
  s->id = g_strdup (pod->id);
  s->metadata = metadata_copy (c->metadata);
  s->state = cri_state (pod->state);
  s->created_at = pod->created_at;
  s->network = network_status (pod);
  s->linux = linux_status (pod);
  s->n_labels = c->n_labels;
  s->labels = entries_copy (&runtime__v1__pod_sandbox_status__labels_entry__descriptor,
                            (void *const *) c->labels, c->n_labels);
  s->n_annotations = c->n_annotations;
  s->annotations = entries_copy (&runtime__v1__pod_sandbox_status__annotations_entry__descriptor,
                                 (void *const *) c->annotations, c->n_annotations);
  s->runtime_handler = g_strdup (pod->runtime_handler);
  resp->status = s;
  resp->timestamp = g_get_real_time () * 1000;
  resp->info = g_new0 (Runtime__V1__PodSandboxStatusResponse__InfoEntry *, 1);
  if (verbose)
    {
      resp->n_info = 1;
      resp->info[0] = PB_NEW (Runtime__V1__PodSandboxStatusResponse__InfoEntry,
                              RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INFO_ENTRY__INIT);
      resp->info[0]->key = g_strdup ("info");
      resp->info[0]->value = verbose_info (svc, pod);
    }
  return resp;
}
