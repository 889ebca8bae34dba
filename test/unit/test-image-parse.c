/* Unit tests for pkg/image parsers: references, manifests, indexes, configs,
 * WWW-Authenticate, credentials, registry settings. */
#include "config.h"

#include "auth.h"
#include "crisp-error.h"
#include "image-store.h"
#include "manifest.h"
#include "reference.h"
#include "registries.h"

#include <glib/gstdio.h>
#include <string.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void
check_ref (const char *in, const char *domain, const char *path, const char *tag,
           const char *digest)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispImageRef) ref = crisp_image_ref_parse (in, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ref->domain, ==, domain);
  g_assert_cmpstr (ref->path, ==, path);
  g_assert_cmpstr (ref->tag, ==, tag);
  g_assert_cmpstr (ref->digest, ==, digest);
}

static void
test_ref_normalises (void)
{
  check_ref ("busybox", "docker.io", "library/busybox", "latest", NULL);
  check_ref ("busybox:1.36", "docker.io", "library/busybox", "1.36", NULL);
  check_ref ("index.docker.io/foo/bar", "docker.io", "foo/bar", "latest", NULL);
  check_ref ("registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", NULL);
  check_ref ("127.0.0.1:5000/busybox", "127.0.0.1:5000", "busybox", "latest", NULL);
  check_ref ("localhost/a/b-c__d.e:t_1", "localhost", "a/b-c__d.e", "t_1", NULL);
  check_ref ("gcr.io/x/y@" D1, "gcr.io", "x/y", NULL, D1);
  check_ref ("gcr.io/x/y:v1@" D1, "gcr.io", "x/y", "v1", D1);
  g_autoptr (CrispImageRef) ref = crisp_image_ref_parse ("busybox", NULL);
  g_autofree char *s = crisp_image_ref_to_string (ref);
  g_assert_cmpstr (s, ==, "docker.io/library/busybox:latest");
  g_autofree char *dg = crisp_image_ref_digested (ref, D2);
  g_assert_cmpstr (dg, ==, "docker.io/library/busybox@" D2);
}

static void
test_ref_rejects_malformed (void)
{
  const char *bad[] = { "",     "Busybox", "busybox:",    "busybox@sha256:abc", "a//b",
                        "-a",   "a-",      "host:port/x", "busybox:-tag",       "x@md5:1234",
                        "a/b/", ":tag",    "a__-b",       "ex ample",           "a/../b" };
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CrispImageRef) ref = crisp_image_ref_parse (bad[i], &error);
      if (ref != NULL)
        g_error ("'%s' was accepted", bad[i]);
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, bad[i]));
    }
  g_autofree char *longname = g_strnfill (300, 'a');
  g_autoptr (GError) error = NULL;
  g_assert_null (crisp_image_ref_parse (longname, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
}

static const char manifest_json[] = "{\"schemaVersion\":2,\"mediaType\":\"" CRISP_MT_OCI_MANIFEST
                                    "\",\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1
                                    "\",\"size\":12},\"layers\":[{\"mediaType\":"
                                    "\"application/vnd.oci.image.layer.v1.tar+zstd\","
                                    "\"digest\":\"" D2 "\",\"size\":99}]}";

static void
test_manifest_parses_image (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispManifest) m
      = crisp_manifest_parse (manifest_json, strlen (manifest_json), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (m->kind, ==, CRISP_MANIFEST_IMAGE);
  g_assert_cmpstr (m->config->digest, ==, D1);
  g_assert_cmpuint (m->descriptors->len, ==, 1);
  CrispDescriptor *l = m->descriptors->pdata[0];
  g_assert_cmpint (l->size, ==, 99);
}

static void
test_manifest_rejects_bad (void)
{
  const char *bad[] = {
    "[]",
    "{",
    "{\"schemaVersion\":1}",
    "{\"schemaVersion\":2,\"mediaType\":\"text/plain\"}",
    "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
    "\",\"size\":1},\"layers\":[{\"digest\":\"sha256:xx\",\"size\":1}]}",
    "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":-1},\"layers\":[]}",
    "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
    "\",\"size\":1},\"layers\":[{\"mediaType\":\"application/x-helm\",\"digest\":\"" D2
    "\",\"size\":1}]}",
    "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
    "\",\"size\":1},\"layers\":[{\"digest\":7,\"size\":1}]}",
  };
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CrispManifest) m = crisp_manifest_parse (bad[i], strlen (bad[i]), NULL, &error);
      if (m != NULL)
        g_error ("accepted: %s", bad[i]);
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_manifest_bounds_layers (void)
{
  GString *s = g_string_new ("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
                             "\",\"size\":1},\"layers\":[");
  for (int i = 0; i < CRISP_MANIFEST_MAX_LAYERS + 1; i++)
    g_string_append_printf (s, "%s{\"digest\":\"" D2 "\",\"size\":1}", i ? "," : "");
  g_string_append (s, "]}");
  g_autoptr (GError) error = NULL;
  g_assert_null (crisp_manifest_parse (s->str, s->len, NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_string_free (s, TRUE);
}

static void
test_index_selects_platform (void)
{
  const char *json
      = "{\"schemaVersion\":2,\"mediaType\":\"" CRISP_MT_DOCKER_LIST "\",\"manifests\":["
        "{\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":"
        "\"arm64\",\"variant\":\"v8\"}},"
        "{\"digest\":\"" D2
        "\",\"size\":2,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispManifest) m = crisp_manifest_parse (json, strlen (json), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (m->kind, ==, CRISP_MANIFEST_INDEX);
  const CrispDescriptor *d = crisp_manifest_select_platform (m, "linux", "amd64", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (d->digest, ==, D2);
  d = crisp_manifest_select_platform (m, "linux", "arm64", "v8", &error);
  g_assert_cmpstr (d->digest, ==, D1);
  g_assert_null (crisp_manifest_select_platform (m, "linux", "s390x", NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_NOT_FOUND);
}

static void
test_config_user (void)
{
  const char *json
      = "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"User\":\"1002:1003\"},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\"]}}";
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispImageConfig) c = crisp_image_config_parse (json, strlen (json), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->user, ==, "1002:1003");
  g_assert_cmpuint (c->diff_ids->len, ==, 1);
  struct
  {
    const char *user;
    gint64 uid;
    const char *name;
  } cases[] = {
    { "1002", 1002, NULL },
    { "1002:1003", 1002, NULL },
    { "www-data", -1, "www-data" },
    { "www-data:www-data", -1, "www-data" },
    { "", -1, NULL },
    { "0", 0, NULL },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gint64 uid;
      g_autofree char *name = NULL;
      crisp_image_user_split (cases[i].user, &uid, &name);
      g_assert_cmpint (uid, ==, cases[i].uid);
      g_assert_cmpstr (name, ==, cases[i].name);
    }
  const char *bad = "{\"rootfs\":{\"diff_ids\":[\"nope\"]}}";
  g_assert_null (crisp_image_config_parse (bad, strlen (bad), &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
}

static void
test_challenge_parses (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispChallenge) c = crisp_challenge_parse (
      "Bearer realm=\"https://auth.example/token\",service=\"reg\\\"istry\", "
      "scope=repository:a/b:pull",
      &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->scheme, ==, "bearer");
  g_assert_cmpstr (g_hash_table_lookup (c->params, "realm"), ==, "https://auth.example/token");
  g_assert_cmpstr (g_hash_table_lookup (c->params, "service"), ==, "reg\"istry");
  g_assert_cmpstr (g_hash_table_lookup (c->params, "scope"), ==, "repository:a/b:pull");
  g_autoptr (CrispChallenge) b = crisp_challenge_parse ("Basic realm=\"x\"", &error);
  g_assert_cmpstr (b->scheme, ==, "basic");
  const char *bad[] = { "", "Bearer realm=\"unterminated", "Bearer =x", "Bearer a=b c=d" };
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autoptr (CrispChallenge) x = crisp_challenge_parse (bad[i], &e);
      if (x != NULL)
        g_error ("accepted '%s'", bad[i]);
      g_assert_error (e, CRISP_ERROR, CRISP_ERROR_UNAUTHENTICATED);
    }
}

static void
test_credentials_from_auth (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (crisp_credentials_new ("", "", "", "", "", &error));
  g_assert_no_error (error);
  g_autoptr (CrispCredentials) c
      = crisp_credentials_new (NULL, NULL, "dXNlcjpwYTpzcw==", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->username, ==, "user");
  g_assert_cmpstr (c->password, ==, "pa:ss");
  g_assert_null (crisp_credentials_new (NULL, NULL, "bm9jb2xvbg==", NULL, NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_autofree char *tok = crisp_token_response_parse ("{\"access_token\":\"abc\"}", 22, NULL);
  g_assert_cmpstr (tok, ==, "abc");
}

static void
test_registries_endpoints (void)
{
  g_autofree char *dir = g_dir_make_tmp ("crisp-test-reg-XXXXXX", NULL);
  g_autofree char *f1 = g_build_filename (dir, "10-local.conf", NULL);
  g_autofree char *f2 = g_build_filename (dir, "20-k8s.conf", NULL);
  g_assert_true (
      g_file_set_contents (f1, "[registry \"127.0.0.1:5000\"]\ninsecure=true\n", -1, NULL));
  g_assert_true (g_file_set_contents (
      f2,
      "[registry \"registry.k8s.io\"]\nmirrors=127.0.0.1:5000;https://m2.example\n"
      "mirrors-only=true\n[registry \"docker.io\"]\nusername=u\npassword=p\n",
      -1, NULL));
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispRegistries) regs = crisp_registries_load (dir, &error);
  g_assert_no_error (error);
  g_autoptr (GPtrArray) eps = crisp_registries_endpoints (regs, "registry.k8s.io");
  g_assert_cmpuint (eps->len, ==, 2);
  CrispEndpoint *e0 = eps->pdata[0], *e1 = eps->pdata[1];
  g_assert_cmpstr (e0->base_url, ==, "http://127.0.0.1:5000");
  g_assert_true (e0->is_mirror);
  g_assert_cmpstr (e1->base_url, ==, "https://m2.example");
  g_autoptr (GPtrArray) d = crisp_registries_endpoints (regs, "docker.io");
  g_assert_cmpuint (d->len, ==, 1);
  CrispEndpoint *de = d->pdata[0];
  g_assert_cmpstr (de->base_url, ==, "https://registry-1.docker.io");
  g_assert_cmpstr (de->username, ==, "u");
  g_autoptr (GPtrArray) q = crisp_registries_endpoints (regs, "quay.io");
  g_assert_cmpuint (q->len, ==, 1);
  g_assert_true (g_file_set_contents (f2, "[registry \"x\"]\ninsecure=maybe\n", -1, NULL));
  g_autoptr (CrispRegistries) bad = crisp_registries_load (dir, &error);
  g_assert_null (bad);
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "20-k8s.conf"));
  g_unlink (f1);
  g_unlink (f2);
  g_rmdir (dir);
}

static void
test_record_round_trip (void)
{
  g_autoptr (CrispImage) img = crisp_image_new ();
  img->id = g_strdup (D1);
  img->manifest_digest = g_strdup (D2);
  g_ptr_array_add (img->repo_tags, g_strdup ("docker.io/library/busybox:latest"));
  g_ptr_array_add (img->layer_digests, g_strdup (D2));
  g_ptr_array_add (img->diff_ids, g_strdup (D1));
  img->size = 42;
  img->user = g_strdup ("www-data");
  img->config_json = g_strdup ("{\"os\":\"linux\"}");
  img->manifest_json = g_strdup ("{}");
  g_autofree char *json = crisp_image_to_json (img);
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispImage) back = crisp_image_from_json (json, strlen (json), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->id, ==, D1);
  g_assert_cmpstr (back->repo_tags->pdata[0], ==, "docker.io/library/busybox:latest");
  g_assert_cmpuint (back->size, ==, 42);
  g_assert_cmpstr (back->user, ==, "www-data");
  g_assert_cmpstr (back->config_json, ==, img->config_json);
  g_autofree char *again = crisp_image_to_json (back);
  g_assert_cmpstr (again, ==, json);
  const char *bad[]
      = { "{}", "[]", "{\"version\":1,\"id\":\"sha256:x\"}", "{\"version\":2,\"id\":\"" D1 "\"}" };
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autoptr (CrispImage) x = crisp_image_from_json (bad[i], strlen (bad[i]), &e);
      g_assert_null (x);
      g_assert_nonnull (e);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/image/ref/normalises", test_ref_normalises);
  g_test_add_func ("/image/ref/rejects-malformed", test_ref_rejects_malformed);
  g_test_add_func ("/image/manifest/parses-image", test_manifest_parses_image);
  g_test_add_func ("/image/manifest/rejects-bad", test_manifest_rejects_bad);
  g_test_add_func ("/image/manifest/bounds-layers", test_manifest_bounds_layers);
  g_test_add_func ("/image/manifest/index-selects-platform", test_index_selects_platform);
  g_test_add_func ("/image/config/user", test_config_user);
  g_test_add_func ("/image/auth/challenge", test_challenge_parses);
  g_test_add_func ("/image/auth/credentials", test_credentials_from_auth);
  g_test_add_func ("/image/registries/endpoints", test_registries_endpoints);
  g_test_add_func ("/image/record/round-trip", test_record_round_trip);
  return g_test_run ();
}
