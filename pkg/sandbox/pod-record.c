/* The pod record (pod.json): the request as protobuf bytes, plus the state and the
 * resources crisp created for it.  Nothing read back is trusted without checks. */
#include "config.h"

#include "sandbox-private.h"

#include "crisp-base.h"
#include "crisp-error.h"
#include "proto/proto-copy.h"

#include <string.h>

#define RECORD_VERSION 1

static const char *const state_names[] = { [CRISP_POD_CREATING] = "creating",
                                           [CRISP_POD_READY] = "ready",
                                           [CRISP_POD_STOPPING] = "stopping",
                                           [CRISP_POD_NOTREADY] = "notready",
                                           [CRISP_POD_REMOVING] = "removing" };

const char *
crisp_pod_state_to_string (CrispPodState state)
{
  return state_names[state];
}

static gboolean
state_from_string (const char *s, CrispPodState *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (state_names); i++)
    if (g_strcmp0 (s, state_names[i]) == 0)
      {
        *out = i;
        return TRUE;
      }
  return FALSE;
}

CrispPod *
crisp_pod_new (const char *id, const Runtime__V1__PodSandboxConfig *config,
               const char *runtime_handler)
{
  CrispPod *pod = g_new0 (CrispPod, 1);
  pod->ref_count = 1;
  pod->id = g_strdup (id);
  pod->config = config ? crisp_proto_dup (&config->base) : NULL;
  pod->runtime_handler = g_strdup (runtime_handler ? runtime_handler : "");
  pod->ips = g_new0 (char *, 1);
  g_mutex_init (&pod->op_lock);
  return pod;
}

CrispPod *
crisp_pod_ref (CrispPod *pod)
{
  g_atomic_int_inc (&pod->ref_count);
  return pod;
}

void
crisp_pod_unref (CrispPod *pod)
{
  if (pod == NULL || !g_atomic_int_dec_and_test (&pod->ref_count))
    return;
  if (pod->config)
    runtime__v1__pod_sandbox_config__free_unpacked (pod->config, NULL);
  g_free (pod->id);
  g_free (pod->runtime_handler);
  g_free (pod->cgroup_parent);
  g_free (pod->hostname);
  g_free (pod->run_dir);
  g_free (pod->net_ns);
  g_free (pod->ipc_ns);
  g_free (pod->uts_ns);
  g_free (pod->pid_ns);
  g_free (pod->user_ns);
  g_free (pod->shm_path);
  g_strfreev (pod->ips);
  g_mutex_clear (&pod->op_lock);
  g_free (pod);
}

static void
set_opt_string (JsonObject *o, const char *name, const char *value)
{
  if (value != NULL)
    json_object_set_string_member (o, name, value);
  else
    json_object_set_null_member (o, name);
}

JsonNode *
crisp_pod_to_json (CrispPod *pod)
{
  g_autoptr (JsonObject) o = json_object_new ();
  json_object_set_int_member (o, "version", RECORD_VERSION);
  json_object_set_string_member (o, "id", pod->id);
  json_object_set_string_member (o, "state", crisp_pod_state_to_string (pod->state));
  json_object_set_int_member (o, "createdAt", pod->created_at);
  json_object_set_string_member (o, "runtimeHandler", pod->runtime_handler);
  size_t len = protobuf_c_message_get_packed_size (&pod->config->base);
  g_autofree guint8 *buf = g_malloc (len ? len : 1);
  protobuf_c_message_pack (&pod->config->base, buf);
  g_autofree char *b64 = g_base64_encode (buf, len);
  json_object_set_string_member (o, "config", b64);
  set_opt_string (o, "cgroupParent", pod->cgroup_parent);
  json_object_set_string_member (o, "hostname", pod->hostname);
  json_object_set_string_member (o, "runDir", pod->run_dir);
  set_opt_string (o, "netNs", pod->net_ns);
  set_opt_string (o, "ipcNs", pod->ipc_ns);
  set_opt_string (o, "utsNs", pod->uts_ns);
  set_opt_string (o, "pidNs", pod->pid_ns);
  set_opt_string (o, "userNs", pod->user_ns);
  set_opt_string (o, "shm", pod->shm_path);
  json_object_set_int_member (o, "pausePid", pod->pause_pid);
  json_object_set_int_member (o, "pauseStartTime", (gint64) pod->pause_start_time);
  JsonArray *ips = json_array_new ();
  for (char **ip = pod->ips; ip && *ip; ip++)
    json_array_add_string_element (ips, *ip);
  json_object_set_array_member (o, "ips", ips);
  return json_node_init_object (json_node_alloc (), o);
}

/* Reads an optional absolute path; anything else makes the record corrupt. */
static gboolean
get_opt_path (JsonObject *o, const char *name, char **out, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING
      || json_node_get_string (n)[0] != '/')
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: bad \"%s\"", name);
  *out = g_strdup (json_node_get_string (n));
  return TRUE;
}

static const char *
get_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
decode_config (CrispPod *pod, JsonObject *o, GError **error)
{
  const char *b64 = get_string (o, "config");
  if (b64 == NULL)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: no \"config\"");
  gsize len = 0;
  g_autofree guint8 *buf = g_base64_decode (b64, &len);
  pod->config = runtime__v1__pod_sandbox_config__unpack (NULL, len, buf);
  if (pod->config == NULL || crisp_pod_config_validate (pod->config, NULL, NULL) == FALSE)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: invalid \"config\"");
  return TRUE;
}

/* json-glib 1.6 has no typed getters with a default for arrays and objects. */
static JsonArray *
array_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n != NULL && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static gboolean
decode_ips (CrispPod *pod, JsonObject *o, GError **error)
{
  JsonArray *ips = array_member (o, "ips");
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  for (guint i = 0; ips && i < json_array_get_length (ips); i++)
    {
      JsonNode *n = json_array_get_element (ips, i);
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING
          || !g_hostname_is_ip_address (json_node_get_string (n)))
        return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: bad \"ips\"");
      g_strv_builder_add (b, json_node_get_string (n));
    }
  g_strfreev (pod->ips);
  pod->ips = g_strv_builder_end (b);
  return TRUE;
}

CrispPod *
crisp_pod_from_json (const char *id, JsonNode *node, GError **error)
{
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: not a JSON object"), NULL;
  JsonObject *o = json_node_get_object (node);
  if (json_object_get_int_member_with_default (o, "version", 0) != RECORD_VERSION)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: unknown version"), NULL;
  if (g_strcmp0 (get_string (o, "id"), id) != 0 || !crisp_id_is_valid_len (id, 64))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: id does not match"), NULL;
  g_autoptr (CrispPod) pod = crisp_pod_new (id, NULL, get_string (o, "runtimeHandler"));
  const char *hostname = get_string (o, "hostname");
  if (!state_from_string (get_string (o, "state"), &pod->state) || hostname == NULL)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: bad \"state\" or hostname"),
           NULL;
  pod->hostname = g_strdup (hostname);
  pod->created_at = json_object_get_int_member_with_default (o, "createdAt", 0);
  pod->pause_pid = (int) json_object_get_int_member_with_default (o, "pausePid", 0);
  pod->pause_start_time
      = (guint64) json_object_get_int_member_with_default (o, "pauseStartTime", 0);
  const char *cg = get_string (o, "cgroupParent");
  pod->cgroup_parent = cg ? g_strdup (cg) : NULL;
  if (!decode_config (pod, o, error) || !decode_ips (pod, o, error)
      || !get_opt_path (o, "runDir", &pod->run_dir, error)
      || !get_opt_path (o, "netNs", &pod->net_ns, error)
      || !get_opt_path (o, "ipcNs", &pod->ipc_ns, error)
      || !get_opt_path (o, "utsNs", &pod->uts_ns, error)
      || !get_opt_path (o, "pidNs", &pod->pid_ns, error)
      || !get_opt_path (o, "userNs", &pod->user_ns, error)
      || !get_opt_path (o, "shm", &pod->shm_path, error))
    return NULL;
  if (pod->run_dir == NULL || pod->pause_pid < 0)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "pod record: no \"runDir\""), NULL;
  return g_steal_pointer (&pod);
}
