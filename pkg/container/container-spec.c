/* The bundle's config.json: the OCI spec built by pkg/oci from the request, the pod and the
 * image, with the host facts probed once at start-up. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "pkg/image/image-service.h"
#include "pkg/sandbox/sandbox.h"

#include <fcntl.h>

static JsonObject *
image_config_object (JsonParser *parser, const CrispImage *img)
{
  if (img->config_json == NULL || !json_parser_load_from_data (parser, img->config_json, -1, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  JsonNode *config = json_object_get_member (json_node_get_object (root), "config");
  return config && JSON_NODE_HOLDS_OBJECT (config) ? json_node_get_object (config) : NULL;
}

static char *
pod_file (CrispPod *pod, const char *name)
{
  g_autofree char *path = g_build_filename (pod->run_dir, name, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS) ? g_steal_pointer (&path) : NULL;
}

/* spec.<a>.<b>, or NULL. */
static JsonNode *
spec_member (JsonNode *spec, const char *a, const char *b)
{
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (spec) ? json_node_get_object (spec) : NULL;
  JsonNode *n = o ? json_object_get_member (o, a) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_object_get_member (json_node_get_object (n), b)
                                         : NULL;
}

static gboolean
write_spec (const char *bundle, JsonNode *spec, GError **error)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, spec);
  gsize len = 0;
  g_autofree char *data = json_generator_to_data (gen, &len);
  _cleanup_close_ int dfd = open (bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  /* The run directory does not outlive a reboot's purpose: no fsync. */
  int r = dfd < 0 ? -errno : crisp_write_file_replace_at (dfd, "config.json", data, len, 0600);
  if (r < 0)
    return crisp_throw_errno (error, r, "writing '%s/config.json'", bundle);
  return TRUE;
}

gboolean
crisp_container_write_spec (CrispContainerService *svc, CrispContainer *c, CrispPod *pod,
                            const CrispImage *img, const Runtime__V1__CreateContainerRequest *req,
                            const char *rootfs, const char *bundle,
                            const char *const *mount_sources, JsonNode *restore_spec,
                            GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *image_config = image_config_object (parser, img);
  _cleanup_close_ int rootfs_fd = open (rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfs_fd < 0)
    return crisp_throw_errno (error, errno, "opening the root filesystem '%s'", rootfs);
  g_autofree char *resolv = pod_file (pod, "resolv.conf");
  g_autofree char *hostname = pod_file (pod, "hostname");
  g_autofree char *hosts = pod_file (pod, "hosts");
  g_autoptr (GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  g_mutex_lock (&pod->op_lock); /* namespace pins are cleared by a stop */
  CrispOciInput in = {
    .container_id = c->id,
    .sandbox_id = pod->id,
    .config = req->config,
    .sandbox_config = req->sandbox_config ? req->sandbox_config : pod->config,
    .image_config = image_config,
    .image_name = req->config->image->image,
    .rootfs = rootfs,
    .rootfs_fd = rootfs_fd,
    .netns_path = pod->net_ns,
    .ipcns_path = pod->ipc_ns,
    .utsns_path = pod->uts_ns,
    .pidns_path = pod->pid_ns,
    .userns_path = pod->user_ns,
    .pod_userns = crisp_pod_userns (pod),
    .cgroup_parent = pod->cgroup_parent,
    .cgroup_driver = svc->cgroup_driver,
    .resolv_conf_path = resolv,
    .hostname_path = hostname,
    .hosts_path = hosts,
    .shm_path = pod->shm_path,
    .hostname = pod->hostname,
    .mount_sources = mount_sources,
    .host = &svc->host,
    .notes = notes,
  };
  g_autoptr (JsonNode) spec = NULL;
  gboolean ok = crisp_oci_spec_build (&in, &spec, error);
  g_mutex_unlock (&pod->op_lock);
  if (!ok)
    return FALSE;
  for (guint i = 0; i < notes->len; i++)
    g_info ("container '%s': %s", c->id, (char *) notes->pdata[i]);
  int sig = SIGTERM;
  if (!crisp_oci_stop_signal (req->config, image_config, &sig, error))
    return FALSE;
  g_free (c->stop_signal);
  c->stop_signal = g_strdup_printf ("%d", sig);
  const Runtime__V1__LinuxContainerSecurityContext *sc
      = req->config->linux ? req->config->linux->security_context : NULL;
  const CrispRestoreUser want = {
    .user_fixed = sc && (sc->run_as_user || (sc->run_as_username && *sc->run_as_username)),
  };
  if (restore_spec != NULL
      && !crisp_container_restore_adapt_spec (spec, restore_spec, &want, "the checkpoint", error))
    return FALSE;
  if (!crisp_container_set_user (c, spec_member (spec, "process", "user")))
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "the spec built has no valid process.user");
  return crisp_container_write_exec_spec (svc, c, spec, bundle, error) && write_spec (bundle, spec, error);
}
