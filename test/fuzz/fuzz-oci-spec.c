/* Fuzz target: the OCI spec builder.  The input is a CreateContainerRequest as it arrives on
 * the wire; what decodes is turned into config.json against a small fixed rootfs
 * (test/fuzz/rootfs-oci) and a fixed image config, and its stop signal is computed.  A build
 * either yields a spec or an error, never both, never a crash. */
#include "config.h"

#include "crisp-oci.h"
#include "crisp-base.h"

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#ifndef FUZZ_ROOTFS
#define FUZZ_ROOTFS "test/fuzz/rootfs-oci"
#endif

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static JsonObject *
image_config (void)
{
  static JsonObject *image;
  if (image == NULL)
    {
      g_autoptr (JsonParser) p = json_parser_new ();
      g_assert (json_parser_load_from_data (
          p, "{\"Entrypoint\":[\"/e\"],\"Cmd\":[\"c\"],\"Env\":[\"P=1\"],\"User\":\"\"}", -1,
          NULL));
      image = json_object_ref (json_node_get_object (json_parser_get_root (p)));
    }
  return image;
}

static void
build (Runtime__V1__CreateContainerRequest *req, int rootfs_fd)
{
  CrispOciHost host = { .cgroup_mode = CRISP_CGROUP_MODE_HYBRID,
                        .oom_score_restricted = TRUE,
                        .cap_last_cap = 40,
                        .cap_bounding = G_MAXUINT64 };
  g_autoptr (GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  CrispOciInput in = {
    .container_id = "f00d",
    .sandbox_id = "beef",
    .config = req->config,
    .sandbox_config = req->sandbox_config,
    .image_config = image_config (),
    .rootfs = "/nonexistent/rootfs",
    .rootfs_fd = rootfs_fd,
    .netns_path = "/run/netns/x",
    .ipcns_path = "/run/ipcns/x",
    .pidns_path = "/proc/1/ns/pid",
    .host = &host,
    .host_dev_dir = "/dev/null/none", /* privileged: no host device walk per input */
    .notes = notes,
  };
  g_autoptr (GError) error = NULL;
  JsonNode *spec = NULL;
  gboolean ok = crisp_oci_spec_build (&in, &spec, &error);
  g_assert (ok == (spec != NULL) && ok == (error == NULL));
  if (spec != NULL)
    {
      g_autofree char *json = json_to_string (spec, FALSE);
      g_assert (json != NULL && json[0] == '{');
      json_node_unref (spec);
    }
  /* The stop signal from the wire's enum: a signal number or an error, never both. */
  int sig = 0;
  g_autoptr (GError) sig_error = NULL;
  ok = crisp_oci_stop_signal (req->config, image_config (), &sig, &sig_error);
  g_assert (ok ? sig >= 1 && sig <= CRISP_SIGNAL_MAX && sig_error == NULL : sig_error != NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static int rootfs_fd = -1;
  if (rootfs_fd < 0)
    rootfs_fd = open (FUZZ_ROOTFS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert (rootfs_fd >= 0);
  Runtime__V1__CreateContainerRequest *req
      = runtime__v1__create_container_request__unpack (NULL, size, data);
  if (req == NULL)
    return 0;
  if (req->config != NULL && req->sandbox_config != NULL)
    build (req, rootfs_fd);
  runtime__v1__create_container_request__free_unpacked (req, NULL);
  return 0;
}
