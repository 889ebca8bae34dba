/* Unit tests for pkg/sandbox and pkg/network that need no root: request validation, the
 * sysctl allow-list, CNI configuration discovery and results, /proc/net/dev parsing (and, as
 * root, reading it inside a network namespace). */
#include "config.h"

#include "pkg/sandbox/sandbox-private.h"
#include "pkg/network/network-private.h"
#include "pkg/sandbox/net-stats.h"

#include "crisp-error.h"
#include "proto/proto-strings.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
test_sysctl_allow_list (void)
{
  struct
  {
    const char *key;
    gboolean own_net, own_ipc;
    const char *path; /* NULL: refused */
  } cases[] = {
    { "kernel.shm_rmid_forced", TRUE, TRUE, "kernel/shm_rmid_forced" },
    { "kernel.shmmax", TRUE, TRUE, "kernel/shmmax" },
    { "kernel.msgmax", TRUE, TRUE, "kernel/msgmax" },
    { "kernel.sem", TRUE, TRUE, "kernel/sem" },
    { "fs.mqueue.msg_max", TRUE, TRUE, "fs/mqueue/msg_max" },
    { "net.ipv4.ip_forward", TRUE, TRUE, "net/ipv4/ip_forward" },
    { "net/ipv4/conf/eth0.100/forwarding", TRUE, TRUE, "net/ipv4/conf/eth0.100/forwarding" },
    { "net.ipv4.ip_forward", FALSE, TRUE, NULL },
    { "kernel.shmmax", TRUE, FALSE, NULL },
    { "kernel.core_pattern", TRUE, TRUE, NULL },
    { "kernel.semx", TRUE, TRUE, NULL },
    { "kernel.shm/../../core_pattern", TRUE, TRUE, NULL },
    { "net..ipv4", TRUE, TRUE, NULL },
    { "net.ipv4.ip_forward=1", TRUE, TRUE, NULL },
    { "vm.overcommit_memory", TRUE, TRUE, NULL },
    { "", TRUE, TRUE, NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *path
          = crisp_sysctl_path (cases[i].key, cases[i].own_net, cases[i].own_ipc, &error);
      g_assert_cmpstr (path, ==, cases[i].path);
      if (cases[i].path == NULL)
        {
          g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
          if (*cases[i].key)
            g_assert_nonnull (strstr (error->message, cases[i].key));
        }
    }
}

typedef struct
{
  Runtime__V1__PodSandboxConfig config;
  Runtime__V1__PodSandboxMetadata meta;
  Runtime__V1__LinuxPodSandboxConfig linux_;
} Req;

static void
req_init (Req *r)
{
  r->config = (Runtime__V1__PodSandboxConfig) RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  r->meta = (Runtime__V1__PodSandboxMetadata) RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
  r->linux_ = (Runtime__V1__LinuxPodSandboxConfig) RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
  r->meta.name = (char *) "web";
  r->meta.uid = (char *) "uid-1";
  r->meta.namespace_ = (char *) "default";
  r->config.metadata = &r->meta;
  r->config.linux = &r->linux_;
}

static void
expect_invalid (Req *r, const char *driver, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (crisp_pod_config_validate (&r->config, driver, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, needle));
}

static void
test_config_validation (void)
{
  Req r;
  req_init (&r);
  g_assert_true (crisp_pod_config_validate (&r.config, "cgroupfs", NULL));
  r.meta.name = (char *) "";
  expect_invalid (&r, "cgroupfs", "metadata.name");
  req_init (&r);
  r.meta.uid = (char *) "a;K8S_POD_NAME=evil";
  expect_invalid (&r, "cgroupfs", "metadata.uid");
  req_init (&r);
  r.config.hostname = (char *) "bad host";
  expect_invalid (&r, "cgroupfs", "hostname");
  req_init (&r);
  r.linux_.cgroup_parent = (char *) "kubepods-besteffort-pod1.slice";
  expect_invalid (&r, "cgroupfs", "cgroup_parent");
  g_assert_true (crisp_pod_config_validate (&r.config, "systemd", NULL));
  r.linux_.cgroup_parent = (char *) "/kubepods/besteffort/pod1";
  g_assert_true (crisp_pod_config_validate (&r.config, "cgroupfs", NULL));
  expect_invalid (&r, "systemd", "cgroup_parent");
  r.linux_.cgroup_parent = (char *) "/kubepods/../../etc";
  expect_invalid (&r, "cgroupfs", "cgroup_parent");
}

/* RunPodSandbox's pod-level overhead and resources get UpdateContainerResources' checks, with
 * the field named; a record read back (no driver) is not checked again. */
static void
test_pod_resources_validation (void)
{
  Req r;
  req_init (&r);
  Runtime__V1__LinuxContainerResources over = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  Runtime__V1__LinuxContainerResources res = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  r.linux_.overhead = &over;
  r.linux_.resources = &res;
  over.cpu_shares = 102;
  res.memory_limit_in_bytes = 64 << 20;
  g_assert_true (crisp_pod_config_validate (&r.config, "cgroupfs", NULL));
  over.cpu_shares = 300000;
  expect_invalid (&r, "cgroupfs", "linux.overhead: cpu_shares 300000");
  g_assert_true (crisp_pod_config_validate (&r.config, NULL, NULL));
  over.cpu_shares = 0;
  res.memory_limit_in_bytes = -5;
  expect_invalid (&r, "cgroupfs", "linux.resources: memory_limit_in_bytes -5");
}

static void
test_metadata_names (void)
{
  Req r;
  req_init (&r);
  r.meta.name = (char *) "a/b";
  expect_invalid (&r, "cgroupfs", "metadata.name");
  r.meta.name = (char *) "a\tb";
  expect_invalid (&r, "cgroupfs", "metadata.name");
  g_autofree char *long_name = g_strnfill (CRISP_NAME_MAX + 1, 'a');
  r.meta.name = long_name;
  expect_invalid (&r, "cgroupfs", "metadata.name");
  long_name[CRISP_NAME_MAX] = '\0';
  g_assert_true (crisp_pod_config_validate (&r.config, "cgroupfs", NULL));
  req_init (&r);
  r.meta.namespace_ = (char *) "kube/system";
  expect_invalid (&r, "cgroupfs", "metadata.namespace");
  /* A record read back (no driver) is held to the rules it was made under. */
  g_assert_true (crisp_pod_config_validate (&r.config, NULL, NULL));
}

static void
test_annotation_bounds (void)
{
  Req r;
  req_init (&r);
  /* Two entries of 128 KiB of keys plus values: exactly the limit, then one byte over. */
  g_autofree char *value = g_strnfill (128 * 1024 - 1, 'v');
  Runtime__V1__PodSandboxConfig__AnnotationsEntry e[2];
  Runtime__V1__PodSandboxConfig__AnnotationsEntry *entries[2] = { &e[0], &e[1] };
  for (int i = 0; i < 2; i++)
    {
      e[i] = (Runtime__V1__PodSandboxConfig__AnnotationsEntry)
          RUNTIME__V1__POD_SANDBOX_CONFIG__ANNOTATIONS_ENTRY__INIT;
      e[i].key = (char *) (i ? "b" : "a");
      e[i].value = value;
    }
  r.config.annotations = entries;
  r.config.n_annotations = 2;
  g_assert_true (crisp_pod_config_validate (&r.config, "cgroupfs", NULL));
  e[1].key = (char *) "bb";
  expect_invalid (&r, "cgroupfs", "annotations");
  expect_invalid (&r, "cgroupfs", "262144 bytes");
  e[1].key = (char *) "";
  expect_invalid (&r, "cgroupfs", "a key is empty");
}

static void
test_log_directory (void)
{
  Req r;
  req_init (&r);
  const char *bad[] = { "var/log/pods", "/var/log/../../etc", "/var//log", "/var/log/", "/" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      r.config.log_directory = (char *) bad[i];
      expect_invalid (&r, "cgroupfs", "log_directory");
    }
  g_autofree char *dir = g_dir_make_tmp ("crisp-test-logdir-XXXXXX", NULL);
  g_assert_nonnull (dir);
  g_autofree char *link = g_build_filename (dir, "link", NULL);
  g_assert_cmpint (symlink ("/etc", link), ==, 0);
  g_autofree char *via = g_build_filename (link, "pods", NULL);
  r.config.log_directory = via;
  expect_invalid (&r, "cgroupfs", "symbolic link");
  g_assert_true (crisp_pod_config_validate (&r.config, NULL, NULL));
  /* Missing components are fine: CreateContainer makes them. */
  g_autofree char *fresh = g_build_filename (dir, "pods", "ns_name_uid", NULL);
  r.config.log_directory = fresh;
  g_assert_true (crisp_pod_config_validate (&r.config, "cgroupfs", NULL));
  g_assert_false (g_file_test (fresh, G_FILE_TEST_EXISTS));
  g_assert_cmpint (unlink (link), ==, 0);
  g_assert_cmpint (rmdir (dir), ==, 0);
}

/* Packs a RunPodSandboxRequest, then turns every '#' in the encoding into a NUL. */
static guint8 *
pack_with_nuls (Req *r, gsize *out_len)
{
  Runtime__V1__RunPodSandboxRequest req = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
  req.config = &r->config;
  *out_len = protobuf_c_message_get_packed_size (&req.base);
  guint8 *buf = g_malloc (*out_len);
  protobuf_c_message_pack (&req.base, buf);
  for (gsize i = 0; i < *out_len; i++)
    if (buf[i] == '#')
      buf[i] = 0;
  return buf;
}

static void
test_find_nul (void)
{
  const ProtobufCMessageDescriptor *d = &runtime__v1__run_pod_sandbox_request__descriptor;
  Req r;
  req_init (&r);
  char path[64];
  gsize len;
  g_autofree guint8 *clean = pack_with_nuls (&r, &len);
  g_assert_false (crisp_proto_find_nul (d, clean, len, path, sizeof path));

  r.meta.name = (char *) "evil#name";
  g_autofree guint8 *in_name = pack_with_nuls (&r, &len);
  g_assert_true (crisp_proto_find_nul (d, in_name, len, path, sizeof path));
  g_assert_cmpstr (path, ==, "config.metadata.name");

  req_init (&r);
  Runtime__V1__PodSandboxConfig__LabelsEntry e
      = RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
  Runtime__V1__PodSandboxConfig__LabelsEntry *entries[] = { &e };
  e.key = (char *) "app";
  e.value = (char *) "web#x";
  r.config.labels = entries;
  r.config.n_labels = 1;
  g_autofree guint8 *in_label = pack_with_nuls (&r, &len);
  g_assert_true (crisp_proto_find_nul (d, in_label, len, path, sizeof path));
  g_assert_cmpstr (path, ==, "config.labels.value");
}

static void
test_dns_validation (void)
{
  Req r;
  req_init (&r);
  Runtime__V1__DNSConfig dns = RUNTIME__V1__DNSCONFIG__INIT;
  char *servers[] = { (char *) "10.0.0.10" };
  char *searches[] = { (char *) "svc.cluster.local\nnameserver 6.6.6.6" };
  dns.n_servers = 1;
  dns.servers = servers;
  r.config.dns_config = &dns;
  g_assert_true (crisp_pod_config_validate (&r.config, "cgroupfs", NULL));
  dns.n_searches = 1;
  dns.searches = searches;
  expect_invalid (&r, "cgroupfs", "dns_config.searches[0]");
  dns.n_searches = 0;
  servers[0] = (char *) "ns.example.com";
  expect_invalid (&r, "cgroupfs", "dns_config.servers[0]");
}

static char *
write_conf (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return g_strdup (path);
}

static void
test_conflist_discovery (void)
{
  g_autofree char *dir = g_dir_make_tmp ("crisp-test-cni-XXXXXX", NULL);
  g_autofree char *plugins = g_dir_make_tmp ("crisp-test-cnibin-XXXXXX", NULL);
  const char *pdirs[] = { plugins, NULL };
  g_autoptr (CrispNetwork) net = crisp_network_new (dir, pdirs);
  g_autofree char *reason = NULL, *message = NULL;
  g_assert_false (crisp_network_status (net, &reason, &message));
  g_assert_cmpstr (reason, ==, "NetworkPluginNotReady");
  g_clear_pointer (&message, g_free);

  g_autofree char *broken = write_conf (dir, "00-broken.conflist", "{\"cniVersion\": ");
  g_autofree char *b = write_conf (
      dir, "20-b.conflist",
      "{\"cniVersion\":\"1.0.0\",\"name\":\"b\",\"plugins\":[{\"type\":\"bridge\"}]}");
  g_autofree char *a
      = write_conf (dir, "10-a.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"a\",\"type\":\"ptp\"}");
  g_autoptr (JsonNode) list = crisp_network_current_conflist (net, NULL);
  g_assert_nonnull (list);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (list), "name"), ==, "a");
  /* The plugin is not installed yet. */
  g_assert_false (crisp_network_status (net, NULL, &message));
  g_assert_nonnull (strstr (message, "'ptp'"));
  g_clear_pointer (&message, g_free);
  g_autofree char *ptp = write_conf (plugins, "ptp", "#!/bin/sh\n");
  g_assert_cmpint (g_chmod (ptp, 0755), ==, 0);
  g_assert_true (crisp_network_status (net, NULL, NULL));
  /* A change in the directory is picked up. */
  g_assert_cmpint (g_unlink (a), ==, 0);
  g_clear_pointer (&list, json_node_unref);
  list = crisp_network_current_conflist (net, NULL);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (list), "name"), ==, "b");
  g_unlink (broken);
  g_unlink (b);
  g_unlink (ptp);
  g_rmdir (dir);
  g_rmdir (plugins);
}

/* A reload reads the directory again even when sizes and times say nothing changed, may
 * move to another directory, and says what changed. */
static void
test_conflist_reload (void)
{
  g_autofree char *d1 = g_dir_make_tmp ("crisp-test-cni-XXXXXX", NULL);
  g_autofree char *d2 = g_dir_make_tmp ("crisp-test-cni-XXXXXX", NULL);
  const char *pdirs[] = { d1, NULL };
  const char *list_a = "{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"plugins\":[{\"type\":\"x\"}]}";
  g_autofree char *a = write_conf (d1, "10-a.conflist", list_a);
  g_autofree char *b
      = write_conf (d2, "10-b.conflist",
                    "{\"cniVersion\":\"1.0.0\",\"name\":\"b\",\"plugins\":[{\"type\":\"x\"}]}");
  g_autoptr (CrispNetwork) net = crisp_network_new (d1, pdirs);
  g_autofree char *first = crisp_network_reload (net, d1);
  g_autofree char *want = g_strdup_printf ("network 'a' from '%s'", a);
  g_assert_cmpstr (first, ==, want);
  g_assert_null (crisp_network_reload (net, d1));

  /* Same size, same mtime, other content: only a forced read sees it. */
  struct stat st;
  g_assert_cmpint (stat (a, &st), ==, 0);
  g_free (write_conf (d1, "10-a.conflist",
                      "{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"plugins\":[{\"type\":\"y\"}]}"));
  g_assert_cmpint (utimensat (AT_FDCWD, a, (struct timespec[]){ st.st_atim, st.st_mtim }, 0), ==,
                   0);
  g_autofree char *changed = crisp_network_reload (net, d1);
  g_autofree char *want_changed = g_strdup_printf ("network 'a' from '%s' changed", a);
  g_assert_cmpstr (changed, ==, want_changed);

  g_autofree char *moved = crisp_network_reload (net, d2);
  g_autofree char *want_moved
      = g_strdup_printf ("CNI config dir '%s', was '%s'; network 'b' from '%s', was network 'a' "
                         "from '%s'",
                         d2, d1, b, a);
  g_assert_cmpstr (moved, ==, want_moved);
  g_autoptr (JsonNode) list = crisp_network_current_conflist (net, NULL);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (list), "name"), ==, "b");

  g_free (write_conf (d2, "10-b.conflist", "{"));
  g_autofree char *broken = crisp_network_reload (net, d2);
  g_assert_true (g_str_has_prefix (broken, "no network (no valid CNI network configuration in"));
  g_assert_nonnull (strstr (broken, "), was network 'b' from '"));
  g_autofree char *message = NULL;
  g_assert_false (crisp_network_status (net, NULL, &message));
  g_assert_nonnull (strstr (message, "10-b.conflist: not a JSON object"));
  g_unlink (a);
  g_unlink (b);
  g_rmdir (d1);
  g_rmdir (d2);
}

static void
test_conflist_list_files (void)
{
  g_autofree char *dir = g_dir_make_tmp ("crisp-test-cni-XXXXXX", NULL);
  g_autofree char *broken = write_conf (dir, "00-broken.conflist", "{\"cniVersion\": ");
  g_autofree char *good = write_conf (
      dir, "10-good.conflist",
      "{\"cniVersion\":\"1.0.0\",\"name\":\"g\",\"plugins\":[{\"type\":\"bridge\"}]}");
  g_autofree char *other = write_conf (dir, "notes.txt", "not a candidate");
  g_autoptr (GPtrArray) files = crisp_network_list_files (dir);
  g_assert_cmpuint (files->len, ==, 2);
  CrispNetworkFile *f0 = files->pdata[0], *f1 = files->pdata[1];
  g_assert_cmpstr (f0->path, ==, broken);
  g_assert_null (f0->list);
  g_assert_error (f0->error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (f1->path, ==, good);
  g_assert_no_error (f1->error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (f1->list), "name"), ==,
                   "g");
  g_autoptr (GPtrArray) none = crisp_network_list_files ("/nonexistent/crisp-test-cni");
  g_assert_cmpuint (none->len, ==, 0);
  g_unlink (broken);
  g_unlink (good);
  g_unlink (other);
  g_rmdir (dir);
}

static void
test_attachment_ips (void)
{
  g_autoptr (JsonNode) a = json_from_string (
      "{\"result\":{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.88.0.5/24\"},"
      "{\"address\":\"fd00::5/64\"}]}}",
      NULL);
  g_auto (GStrv) ips = crisp_network_attachment_ips (a);
  g_assert_cmpuint (g_strv_length (ips), ==, 2);
  g_assert_cmpstr (ips[0], ==, "10.88.0.5");
  g_assert_cmpstr (ips[1], ==, "fd00::5");
  g_autoptr (JsonNode) old
      = json_from_string ("{\"result\":{\"ip4\":{\"ip\":\"10.1.2.3/16\"}}}", NULL);
  g_auto (GStrv) ips2 = crisp_network_attachment_ips (old);
  g_assert_cmpstr (ips2[0], ==, "10.1.2.3");
  g_autoptr (GError) error = NULL;
  g_assert_false (crisp_network_attachment_validate (old, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
}

static const char net_dev[]
    = "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
      "errs drop fifo colls carrier compressed\n"
      "    lo:    3267      29    0    0    0     0          0         0     3267      29    0 "
      "   0    0     0       0          0\n"
      "  eth0: 42582101     971    1    2    0     0          0         0    49199     606    3 "
      "   4    0     0       0          0\n"
      "veth-long-name1: 18446744073709551615 1 0 0 0 0 0 0 5 6 7 8 0 0 0 0\n";

static void
test_net_dev_parse (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) a = crisp_net_dev_parse (net_dev, strlen (net_dev), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (a->len, ==, 2); /* lo left out */
  const CrispNetDevStats *e = &g_array_index (a, CrispNetDevStats, 0);
  g_assert_cmpstr (e->name, ==, "eth0");
  g_assert_cmpuint (e->rx_bytes, ==, 42582101);
  g_assert_cmpuint (e->rx_packets, ==, 971);
  g_assert_cmpuint (e->rx_errors, ==, 1);
  g_assert_cmpuint (e->rx_dropped, ==, 2);
  g_assert_cmpuint (e->tx_bytes, ==, 49199);
  g_assert_cmpuint (e->tx_packets, ==, 606);
  g_assert_cmpuint (e->tx_errors, ==, 3);
  g_assert_cmpuint (e->tx_dropped, ==, 4);
  const CrispNetDevStats *v = &g_array_index (a, CrispNetDevStats, 1);
  g_assert_cmpstr (v->name, ==, "veth-long-name1");
  g_assert_cmpuint (v->rx_bytes, ==, G_MAXUINT64);
  g_assert_cmpuint (v->tx_dropped, ==, 8);
  /* the text need not end in a newline, nor in a NUL */
  g_autofree char *cut = g_strndup (net_dev, strlen (net_dev) - 1);
  g_autoptr (GArray) b = crisp_net_dev_parse (cut, strlen (cut), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (b->len, ==, 2);
  gsize headers_len = (gsize) (strstr (net_dev, "    lo:") - net_dev);
  g_autoptr (GArray) headers = crisp_net_dev_parse (net_dev, headers_len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (headers->len, ==, 0);
}

static void
test_net_dev_rejects_garbage (void)
{
  const char *header = "a|b\nc|d\n";
  const char *bad[] = {
    "  eth0: 1 2 3\n",                                                     /* too few counters */
    "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n",                 /* too many */
    "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n",                     /* not a number */
    "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -1\n",                    /* negative */
    "  eth0: 18446744073709551616 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", /* overflow */
    "  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",                     /* no colon */
    ": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",                          /* no name */
    "a-name-of-16-chr: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",          /* too long (16) */
    "e\xff\xfe: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",                 /* not UTF-8 */
    "e\tx: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",                      /* control character */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *text = g_strconcat (header, bad[i], NULL);
      g_assert_null (crisp_net_dev_parse (text, strlen (text), &error));
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
      g_assert_nonnull (strstr (error->message, "line 3"));
    }
  g_autoptr (GError) error = NULL;
  const char no_header[] = "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
  g_assert_null (crisp_net_dev_parse (no_header, strlen (no_header), &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
  g_clear_error (&error);
  const char nul[] = "a|b\nc|d\n  et\0h0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
  g_assert_null (crisp_net_dev_parse (nul, sizeof nul - 1, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_DATA_LOSS);
}

static void
test_net_dev_bounds_interfaces (void)
{
  g_autoptr (GString) text = g_string_new ("a|b\nc|d\n");
  for (int i = 0; i < CRISP_NET_DEV_MAX_INTERFACES + 10; i++)
    g_string_append_printf (text, "if%d: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", i);
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) a = crisp_net_dev_parse (text->str, text->len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (a->len, ==, CRISP_NET_DEV_MAX_INTERFACES);
}

/* As root: reading inside this process's own network namespace gives what /proc/net/dev says
 * (its counters may move in between, so only the interface names are compared). */
static void
test_net_dev_read_in_namespace (void)
{
  int fd = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) got = getuid () == 0 && fd >= 0 ? crisp_net_dev_read_in (fd, &error) : NULL;
  if (fd >= 0)
    close (fd);
  if (getuid () != 0)
    {
      g_test_skip ("entering a network namespace needs CAP_SYS_ADMIN");
      return;
    }
  g_assert_no_error (error);
  g_autofree char *text = NULL;
  gsize len;
  g_assert_true (g_file_get_contents ("/proc/self/net/dev", &text, &len, NULL));
  g_autoptr (GArray) want = crisp_net_dev_parse (text, len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (got->len, ==, want->len);
  for (guint i = 0; i < got->len; i++)
    g_assert_cmpstr (g_array_index (got, CrispNetDevStats, i).name, ==,
                     g_array_index (want, CrispNetDevStats, i).name);
  g_assert_null (crisp_net_dev_read_in (-1, &error));
  g_assert_nonnull (error);
}

/* As root: a fresh network namespace (a child's) has only "lo", whatever this one has. */
static void
test_net_dev_read_in_other_namespace (void)
{
  int p[2];
  if (getuid () != 0 || pipe2 (p, O_CLOEXEC) < 0)
    {
      g_test_skip ("needs root");
      return;
    }
  pid_t pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      char c;
      close (p[1]);
      if (unshare (CLONE_NEWNET) < 0)
        _exit (1);
      _exit (read (p[0], &c, 1) < 0); /* until the parent is done */
    }
  close (p[0]);
  g_autofree char *path = g_strdup_printf ("/proc/%d/ns/net", (int) pid);
  g_autofree char *self = g_file_read_link ("/proc/self/ns/net", NULL);
  g_autofree char *other = NULL;
  for (int i = 0; i < 1000 && (other == NULL || g_strcmp0 (other, self) == 0); i++)
    {
      g_free (other);
      other = g_file_read_link (path, NULL);
      g_usleep (1000);
    }
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) got = fd >= 0 ? crisp_net_dev_read_in (fd, &error) : NULL;
  close (fd);
  close (p[1]);
  waitpid (pid, NULL, 0);
  g_assert_cmpstr (other, !=, self);
  g_assert_no_error (error);
  g_assert_cmpuint (got->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sandbox/sysctl-allow-list", test_sysctl_allow_list);
  g_test_add_func ("/sandbox/config-validation", test_config_validation);
  g_test_add_func ("/sandbox/pod-resources-validation", test_pod_resources_validation);
  g_test_add_func ("/sandbox/dns-validation", test_dns_validation);
  g_test_add_func ("/sandbox/metadata-names", test_metadata_names);
  g_test_add_func ("/sandbox/annotation-bounds", test_annotation_bounds);
  g_test_add_func ("/sandbox/log-directory", test_log_directory);
  g_test_add_func ("/proto/find-nul", test_find_nul);
  g_test_add_func ("/network/conflist-discovery", test_conflist_discovery);
  g_test_add_func ("/network/conflist-list-files", test_conflist_list_files);
  g_test_add_func ("/network/conflist-reload", test_conflist_reload);
  g_test_add_func ("/network/attachment-ips", test_attachment_ips);
  g_test_add_func ("/sandbox/net-dev/parse", test_net_dev_parse);
  g_test_add_func ("/sandbox/net-dev/garbage", test_net_dev_rejects_garbage);
  g_test_add_func ("/sandbox/net-dev/bounds", test_net_dev_bounds_interfaces);
  g_test_add_func ("/sandbox/net-dev/in-namespace", test_net_dev_read_in_namespace);
  g_test_add_func ("/sandbox/net-dev/in-other-namespace", test_net_dev_read_in_other_namespace);
  return g_test_run ();
}
