/* Runtime-wide RPCs: Version, Status, RuntimeConfig, UpdateRuntimeConfig, and an empty
 * ImageFsInfo until an image service registers its own. */
#include "config.h"

#include "server.h"
#include "health.h"

#include "pkg/container/container.h"
#include "pkg/sandbox/sandbox.h"

#include "crisp-oci.h"

#include "crisp-base.h"

#include <fcntl.h>
#include <string.h>
#include <json-glib/json-glib.h>

#define POD_CIDR_FILE "pod-cidr"

#define CRI_API_VERSION "v1"

static void
handle_version (CrispServer *self, CrispCall *call)
{
  Runtime__V1__VersionResponse resp = RUNTIME__V1__VERSION_RESPONSE__INIT;
  /* kubelet rejects a runtime whose version fields are empty. */
  resp.version = (char *) "0.1.0";
  resp.runtime_name = (char *) PACKAGE_NAME;
  resp.runtime_version = (char *) PACKAGE_VERSION;
  resp.runtime_api_version = (char *) CRI_API_VERSION;
  crisp_call_finish (call, &resp.base);
}

static char *
config_as_json (CrispServer *self)
{
  g_autofree char *data = crisp_config_to_data (self->config);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  if (g_key_file_load_from_data (kf, data, -1, G_KEY_FILE_NONE, NULL))
    {
      g_auto (GStrv) groups = g_key_file_get_groups (kf, NULL);
      for (char **g = groups; *g; g++)
        {
          json_builder_set_member_name (b, *g);
          json_builder_begin_object (b);
          g_auto (GStrv) keys = g_key_file_get_keys (kf, *g, NULL, NULL);
          for (char **k = keys; keys && *k; k++)
            {
              g_autofree char *v = g_key_file_get_string (kf, *g, *k, NULL);
              json_builder_set_member_name (b, *k);
              json_builder_add_string_value (b, v ? v : "");
            }
          json_builder_end_object (b);
        }
    }
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static char *
network_as_json (CrispServer *self)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "podCIDR");
  g_mutex_lock (&self->lock);
  json_builder_add_string_value (b, self->pod_cidr ? self->pod_cidr : "");
  g_mutex_unlock (&self->lock);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static char *
config_files_as_json (CrispServer *self)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_array (b);
  for (guint i = 0; i < self->config->sources->len; i++)
    json_builder_add_string_value (b, self->config->sources->pdata[i]);
  json_builder_end_array (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

/* Counting refreshes each container's exit state: done for verbose Status only, which crictl
 * info and crisp status ask for, not kubelet's periodic one. */
static char *
monitors_alive_as_json (CrispServer *self)
{
  CrispContainerCounts counts = { 0 };
  if (self->containers != NULL)
    crisp_container_service_count (self->containers, &counts);
  return g_strdup_printf ("%u", counts.monitors_alive);
}

static void
info_entry_free (gpointer data)
{
  Runtime__V1__StatusResponse__InfoEntry *e = data;
  g_free (e->value);
  g_free (e);
}

/* Takes value. */
static void
add_info (GPtrArray *info, const char *key, char *value)
{
  Runtime__V1__StatusResponse__InfoEntry *e = g_new (Runtime__V1__StatusResponse__InfoEntry, 1);
  *e = (Runtime__V1__StatusResponse__InfoEntry) RUNTIME__V1__STATUS_RESPONSE__INFO_ENTRY__INIT;
  e->key = (char *) key;
  e->value = value;
  g_ptr_array_add (info, e);
}

/* Each value is JSON, as crictl info expects. */
static void
add_verbose_info (CrispServer *self, GPtrArray *info)
{
  gint64 uptime = (g_get_monotonic_time () - self->started_us) / G_USEC_PER_SEC;
  add_info (info, "config", config_as_json (self));
  add_info (info, "network", network_as_json (self));
  add_info (info, "uptime", g_strdup_printf ("%" G_GINT64_FORMAT, uptime));
  add_info (info, "configFiles", config_files_as_json (self));
  add_info (info, "monitorsAlive", monitors_alive_as_json (self));
  crisp_health_add_info (self, info, add_info);
}

/* One entry per configured handler and one for the default (the empty name), each with
 * what crisp honours for it (pkg/oci decides; no handler adds anything of its own yet). */
static GPtrArray *
runtime_handlers (CrispServer *self, Runtime__V1__RuntimeHandlerFeatures *features)
{
  CrispOciFeatures f;
  crisp_oci_features (&f);
  features->recursive_read_only_mounts = f.recursive_read_only_mounts;
  features->user_namespaces = f.user_namespaces;
  GPtrArray *list = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i <= self->config->runtimes->len; i++)
    {
      Runtime__V1__RuntimeHandler *h = g_new (Runtime__V1__RuntimeHandler, 1);
      *h = (Runtime__V1__RuntimeHandler) RUNTIME__V1__RUNTIME_HANDLER__INIT;
      const CrispRuntimeHandler *rh = i > 0 ? self->config->runtimes->pdata[i - 1] : NULL;
      h->name = rh ? rh->name : (char *) "";
      h->features = features;
      g_ptr_array_add (list, h);
    }
  return list;
}

static void
runtime_features (Runtime__V1__RuntimeFeatures *out)
{
  CrispOciFeatures f;
  crisp_oci_features (&f);
  out->supplemental_groups_policy = f.supplemental_groups_policy;
  out->user_namespaces_host_network = f.user_namespaces_host_network;
  out->mount_options = f.mount_options;
}

static void
handle_status (CrispServer *self, CrispCall *call)
{
  const Runtime__V1__StatusRequest *req = CRISP_CALL_REQUEST (call, Runtime__V1__StatusRequest);
  Runtime__V1__RuntimeCondition runtime_ready = RUNTIME__V1__RUNTIME_CONDITION__INIT;
  Runtime__V1__RuntimeCondition network_ready = RUNTIME__V1__RUNTIME_CONDITION__INIT;
  g_autofree char *reason = NULL;

  runtime_ready.type = (char *) "RuntimeReady";
  runtime_ready.status = TRUE;
  network_ready.type = (char *) "NetworkReady";
  network_ready.status
      = crisp_network_status (crisp_pod_service_get_network (self->pods), NULL, &reason);
  if (!network_ready.status)
    {
      network_ready.reason = (char *) "NetworkPluginNotReady";
      network_ready.message = reason;
    }
  Runtime__V1__RuntimeCondition *conds[] = { &runtime_ready, &network_ready };
  Runtime__V1__RuntimeStatus status = RUNTIME__V1__RUNTIME_STATUS__INIT;
  status.n_conditions = G_N_ELEMENTS (conds);
  status.conditions = conds;

  Runtime__V1__StatusResponse resp = RUNTIME__V1__STATUS_RESPONSE__INIT;
  resp.status = &status;
  g_autoptr (GPtrArray) info = g_ptr_array_new_with_free_func (info_entry_free);
  if (req->verbose)
    add_verbose_info (self, info);
  resp.n_info = info->len;
  resp.info = (Runtime__V1__StatusResponse__InfoEntry **) info->pdata;
  Runtime__V1__RuntimeHandlerFeatures handler_features
      = RUNTIME__V1__RUNTIME_HANDLER_FEATURES__INIT;
  g_autoptr (GPtrArray) handlers = runtime_handlers (self, &handler_features);
  resp.n_runtime_handlers = handlers->len;
  resp.runtime_handlers = (Runtime__V1__RuntimeHandler **) handlers->pdata;
  Runtime__V1__RuntimeFeatures features = RUNTIME__V1__RUNTIME_FEATURES__INIT;
  runtime_features (&features);
  resp.features = &features;
  crisp_call_finish (call, &resp.base);
}

static void
handle_runtime_config (CrispServer *self, CrispCall *call)
{
  Runtime__V1__LinuxRuntimeConfiguration linux_cfg = RUNTIME__V1__LINUX_RUNTIME_CONFIGURATION__INIT;
  linux_cfg.cgroup_driver = g_str_equal (self->config->cgroup_driver, "systemd")
                                ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                                : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
  Runtime__V1__RuntimeConfigResponse resp = RUNTIME__V1__RUNTIME_CONFIG_RESPONSE__INIT;
  resp.linux = &linux_cfg;
  crisp_call_finish (call, &resp.base);
}

/* Kept in the run root so a restarted crisp reports it before kubelet sends it again. */
static gboolean
set_pod_cidr (CrispServer *self, const char *cidr, GError **error)
{
  if (strlen (cidr) > 64 || strchr (cidr, '\n') != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "runtime_config.network_config.pod_cidr: invalid value '%.64s'", cidr);
  _cleanup_close_ int dfd = open (self->config->run_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = dfd < 0 ? -errno
                  : crisp_write_file_atomic_at (dfd, POD_CIDR_FILE, cidr, strlen (cidr), 0600);
  if (r < 0)
    return crisp_throw_errno (error, r, "saving the pod CIDR in '%s'", self->config->run_root);
  g_mutex_lock (&self->lock);
  if (g_strcmp0 (self->pod_cidr, cidr) != 0)
    g_message ("pod CIDR set to '%s'", cidr);
  g_free (self->pod_cidr);
  self->pod_cidr = g_strdup (cidr);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static void
load_pod_cidr (CrispServer *self)
{
  _cleanup_close_ int dfd = open (self->config->run_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char *buf = NULL;
  if (dfd >= 0 && crisp_read_all_at (dfd, POD_CIDR_FILE, 64, &buf, NULL) == 0)
    self->pod_cidr = g_strdup (buf);
  free (buf);
}

static void
handle_update_runtime_config (CrispServer *self, CrispCall *call)
{
  g_autoptr (GError) error = NULL;
  const Runtime__V1__UpdateRuntimeConfigRequest *req
      = CRISP_CALL_REQUEST (call, Runtime__V1__UpdateRuntimeConfigRequest);
  const char *cidr = NULL;
  if (req->runtime_config && req->runtime_config->network_config)
    cidr = req->runtime_config->network_config->pod_cidr;
  if (cidr != NULL && *cidr != '\0' && !set_pod_cidr (self, cidr, &error))
    {
      crisp_call_fail (call, error);
      return;
    }
  Runtime__V1__UpdateRuntimeConfigResponse resp = RUNTIME__V1__UPDATE_RUNTIME_CONFIG_RESPONSE__INIT;
  crisp_call_finish (call, &resp.base);
}

static void
handle_image_fs_info_empty (CrispServer *self, CrispCall *call)
{
  Runtime__V1__ImageFsInfoResponse resp = RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT;
  crisp_call_finish (call, &resp.base);
}

gboolean
crisp_runtime_handlers_init (CrispServer *self, GError **error)
{
  load_pod_cidr (self);
  crisp_server_register_quick (self, "Version", handle_version);
  crisp_server_register (self, "Status", handle_status);
  crisp_server_register (self, "RuntimeConfig", handle_runtime_config);
  crisp_server_register (self, "UpdateRuntimeConfig", handle_update_runtime_config);
  if (!crisp_server_has_handler (self, "ImageFsInfo"))
    crisp_server_register (self, "ImageFsInfo", handle_image_fs_info_empty);
  return TRUE;
}
