/* Unit tests for pkg/cgroups: paths per driver, v1->v2 conversions, stats and metrics parsing
 * from fixture trees, updates into fixture trees, and (as root) a real scratch cgroup. */
#include "config.h"

#include "crisp-cgroups.h"
#include "crisp-error.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *
make_tree (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("crisp-test-cgroups-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static void
put (const char *root, const char *rel, const char *text)
{
  g_autofree char *path = g_build_filename (root, rel, NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static char *
get (const char *root, const char *rel)
{
  g_autofree char *path = g_build_filename (root, rel, NULL);
  char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

static void
rm_rf (const char *path)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", path);
  g_assert_cmpint (system (cmd), ==, 0);
}

static void
test_paths_cgroupfs (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *oci = NULL, *rel = NULL;
  g_assert_true (crisp_cgroups_container_path (CRISP_CGROUP_DRIVER_CGROUPFS, "/kubepods/podX",
                                               "abc", &oci, &rel, &error));
  g_assert_cmpstr (oci, ==, "/kubepods/podX/crisp-abc");
  g_assert_cmpstr (rel, ==, "kubepods/podX/crisp-abc");
  g_clear_pointer (&oci, g_free);
  g_assert_true (
      crisp_cgroups_container_path (CRISP_CGROUP_DRIVER_CGROUPFS, "", "abc", &oci, NULL, &error));
  g_assert_cmpstr (oci, ==, "/crisp-abc");
  g_assert_false (crisp_cgroups_container_path (CRISP_CGROUP_DRIVER_CGROUPFS, "/a/../../etc", "abc",
                                                NULL, NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (crisp_cgroups_container_path (CRISP_CGROUP_DRIVER_CGROUPFS, "/a", "../x", NULL,
                                                NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
}

static void
test_paths_systemd (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *oci = NULL, *rel = NULL;
  g_assert_true (crisp_cgroups_container_path (
      CRISP_CGROUP_DRIVER_SYSTEMD, "kubepods-besteffort-pod12.slice", "abc", &oci, &rel, &error));
  g_assert_cmpstr (oci, ==, "kubepods-besteffort-pod12.slice:crisp:abc");
  g_assert_cmpstr (rel, ==,
                   "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/"
                   "crisp-abc.scope");
  g_clear_pointer (&rel, g_free);
  g_assert_true (
      crisp_cgroups_container_path (CRISP_CGROUP_DRIVER_SYSTEMD, "", "abc", NULL, &rel, &error));
  g_assert_cmpstr (rel, ==, "system.slice/crisp-abc.scope");
  g_assert_false (crisp_cgroups_container_path (CRISP_CGROUP_DRIVER_SYSTEMD, "/kubepods/pod", "abc",
                                                NULL, NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (crisp_cgroups_container_path (CRISP_CGROUP_DRIVER_SYSTEMD, "a--b.slice", "abc",
                                                NULL, NULL, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
}

static void
test_driver_and_parent (void)
{
  g_autoptr (GError) error = NULL;
  CrispCgroupDriver d;
  g_assert_true (crisp_cgroups_driver_from_string ("systemd", &d, &error));
  g_assert_cmpint (d, ==, CRISP_CGROUP_DRIVER_SYSTEMD);
  g_assert_true (crisp_cgroups_driver_from_string ("cgroupfs", &d, &error));
  g_assert_cmpint (d, ==, CRISP_CGROUP_DRIVER_CGROUPFS);
  g_assert_false (crisp_cgroups_driver_from_string ("cgroupv3", &d, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_autofree char *a = NULL, *b = NULL, *c = NULL;
  g_assert_true (
      crisp_cgroups_parent_path (CRISP_CGROUP_DRIVER_CGROUPFS, "/kubepods/pod1/", &a, &error));
  g_assert_cmpstr (a, ==, "kubepods/pod1");
  g_assert_true (crisp_cgroups_parent_path (CRISP_CGROUP_DRIVER_SYSTEMD,
                                            "kubepods-besteffort-pod1.slice", &b, &error));
  g_assert_cmpstr (b, ==,
                   "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice");
  g_assert_true (crisp_cgroups_parent_path (CRISP_CGROUP_DRIVER_CGROUPFS, "", &c, &error));
  g_assert_cmpstr (c, ==, "");
}

static void
test_conversions (void)
{
  g_assert_cmpuint (crisp_cgroups_shares_to_weight (0), ==, 0);
  g_assert_cmpuint (crisp_cgroups_shares_to_weight (2), ==, 1);
  g_assert_cmpuint (crisp_cgroups_shares_to_weight (1024), ==, 39);
  g_assert_cmpuint (crisp_cgroups_shares_to_weight (262144), ==, 10000);
  g_autofree char *a = crisp_cgroups_cpu_max (50000, 100000);
  g_autofree char *b = crisp_cgroups_cpu_max (-1, 0);
  g_autofree char *c = crisp_cgroups_cpu_max (20000, 0);
  g_assert_cmpstr (a, ==, "50000 100000");
  g_assert_cmpstr (b, ==, "max 100000");
  g_assert_cmpstr (c, ==, "20000 100000");
  g_autofree char *s1 = crisp_cgroups_swap_max (100, 300);
  g_autofree char *s2 = crisp_cgroups_swap_max (100, -1);
  g_autofree char *s3 = crisp_cgroups_swap_max (100, 100);
  g_assert_cmpstr (s1, ==, "200");
  g_assert_cmpstr (s2, ==, "max");
  g_assert_cmpstr (s3, ==, "0");
  g_assert_null (crisp_cgroups_swap_max (100, 0));
  g_assert_null (crisp_cgroups_swap_max (0, 300));
}

static void
test_parse_stat (void)
{
  const char *text = "cache 10\nrss 20\ntotal_rss 30\ntotal_inactive_file 40\npgfault 5\n";
  guint64 v = 0;
  g_assert_true (crisp_cgroups_parse_stat (text, "rss", &v));
  g_assert_cmpuint (v, ==, 20);
  g_assert_true (crisp_cgroups_parse_stat (text, "total_inactive_file", &v));
  g_assert_cmpuint (v, ==, 40);
  g_assert_false (crisp_cgroups_parse_stat (text, "inactive_file", &v));
  g_assert_false (crisp_cgroups_parse_stat ("rss -3\n", "rss", &v));
  g_assert_false (crisp_cgroups_parse_stat ("rss 3x\n", "rss", &v));
  g_assert_false (crisp_cgroups_parse_stat ("", "rss", &v));
}

static void
test_stats_v1 (void)
{
  g_autofree char *root = make_tree ();
  put (root, "cpuacct/pod/c1/cpuacct.usage", "123456789\n");
  put (root, "memory/pod/c1/memory.usage_in_bytes", "10000\n");
  put (root, "memory/pod/c1/memory.limit_in_bytes", "9223372036854771712\n");
  put (root, "memory/pod/c1/memory.stat",
       "cache 4000\nrss 3000\ninactive_file 99\ntotal_cache 4000\ntotal_rss 3500\n"
       "total_inactive_file 2500\ntotal_pgfault 77\ntotal_pgmajfault 7\n");
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_HYBRID);
  CrispCgroupStats s;
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_cgroups_read_stats (cg, "pod/c1", &s, &error));
  g_assert_true (s.has_cpu && s.has_memory);
  g_assert_cmpuint (s.cpu_usage_ns, ==, 123456789);
  g_assert_cmpuint (s.memory_usage, ==, 10000);
  g_assert_cmpuint (s.memory_working_set, ==, 7500);
  g_assert_cmpuint (s.memory_rss, ==, 3500);
  g_assert_cmpuint (s.memory_limit, ==, 0);
  g_assert_cmpuint (s.page_faults, ==, 77);
  g_assert_cmpuint (s.major_page_faults, ==, 7);
  g_assert_false (crisp_cgroups_read_stats (cg, "pod/gone", &s, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (crisp_cgroups_read_stats (cg, "../etc", &s, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  rm_rf (root);
}

static void
test_stats_v2 (void)
{
  g_autofree char *root = make_tree ();
  put (root, "pod/c1/cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
  put (root, "pod/c1/memory.current", "8192\n");
  put (root, "pod/c1/memory.max", "max\n");
  put (root, "pod/c1/memory.stat",
       "anon 4096\nfile 4096\ninactive_file 10000\npgfault 3\npgmajfault 1\n");
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_V2);
  CrispCgroupStats s;
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_cgroups_read_stats (cg, "pod/c1", &s, &error));
  g_assert_cmpuint (s.cpu_usage_ns, ==, 2500000);
  g_assert_cmpuint (s.memory_usage, ==, 8192);
  g_assert_cmpuint (s.memory_working_set, ==, 0); /* inactive above usage floors at 0 */
  g_assert_cmpuint (s.memory_rss, ==, 4096);
  g_assert_cmpuint (s.memory_limit, ==, 0);
  g_assert_cmpuint (s.major_page_faults, ==, 1);
  rm_rf (root);
}

static void
test_has_controller (void)
{
  g_autofree char *root = make_tree ();
  put (root, "memory/x", "");
  put (root, "cgroup.controllers", "cpuset cpu io memory pids\n");
  g_autoptr (CrispCgroups) v1 = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_V1);
  g_autoptr (CrispCgroups) v2 = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_V2);
  g_assert_true (crisp_cgroups_has_controller (v1, "memory"));
  g_assert_false (crisp_cgroups_has_controller (v1, "hugetlb"));
  g_assert_false (crisp_cgroups_has_controller (v1, "../memory"));
  g_assert_true (crisp_cgroups_has_controller (v2, "io"));
  g_assert_false (crisp_cgroups_has_controller (v2, "hugetlb"));
  rm_rf (root);
}

static void
test_detect_host (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new (NULL, &error);
  if (cg == NULL)
    {
      g_test_skip (error->message);
      return;
    }
  /* The mode must agree with what the filesystem says about the unified hierarchy. */
  gboolean unified = g_file_test ("/sys/fs/cgroup/unified/cgroup.procs", G_FILE_TEST_EXISTS);
  gboolean top = g_file_test ("/sys/fs/cgroup/cgroup.procs", G_FILE_TEST_EXISTS);
  g_assert_cmpint (cg->mode, ==,
                   top ? CRISP_CGROUP_MODE_V2
                       : (unified ? CRISP_CGROUP_MODE_HYBRID : CRISP_CGROUP_MODE_V1));
  g_assert_false (crisp_cgroups_new ("/proc", &error) != NULL);
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_FAILED_PRECONDITION);
}

static Runtime__V1__LinuxContainerResources *
resources_new (void)
{
  Runtime__V1__LinuxContainerResources *r = g_new0 (Runtime__V1__LinuxContainerResources, 1);
  runtime__v1__linux_container_resources__init (r);
  return r;
}

static void
test_validate (void)
{
  g_autofree Runtime__V1__LinuxContainerResources *r = resources_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_cgroups_validate_resources (r, &error));
  struct
  {
    gint64 *field;
    gint64 value;
    const char *needle;
  } bad[] = {
    { &r->cpu_period, 10, "cpu_period 10" },
    { &r->cpu_quota, -5, "cpu_quota -5" },
    { &r->cpu_shares, 1, "cpu_shares 1" },
    { &r->memory_limit_in_bytes, -2, "memory_limit_in_bytes -2" },
    { &r->memory_swap_limit_in_bytes, -7, "memory_swap_limit_in_bytes -7" },
    { &r->oom_score_adj, 1001, "oom_score_adj 1001" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      gint64 saved = *bad[i].field;
      *bad[i].field = bad[i].value;
      g_assert_false (crisp_cgroups_validate_resources (r, &error));
      g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, bad[i].needle));
      g_clear_error (&error);
      *bad[i].field = saved;
    }
  r->cpuset_cpus = (char *) "0-3,x";
  g_assert_false (crisp_cgroups_validate_resources (r, &error));
  g_assert_nonnull (strstr (error->message, "cpuset_cpus '0-3,x'"));
  g_clear_error (&error);
  r->cpuset_cpus = (char *) "0-3,8";
  g_assert_true (crisp_cgroups_validate_resources (r, &error));
  Runtime__V1__LinuxContainerResources__UnifiedEntry e
      = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
  Runtime__V1__LinuxContainerResources__UnifiedEntry *ep = &e;
  r->n_unified = 1;
  r->unified = &ep;
  e.key = (char *) "cgroup.procs";
  e.value = (char *) "1";
  g_assert_false (crisp_cgroups_validate_resources (r, &error));
  g_assert_nonnull (strstr (error->message, "'cgroup.procs'"));
  g_clear_error (&error);
  e.key = (char *) "memory.high";
  e.value = (char *) "1\n2";
  g_assert_false (crisp_cgroups_validate_resources (r, &error));
  g_clear_error (&error);
  e.value = (char *) "1000000";
  g_assert_true (crisp_cgroups_validate_resources (r, &error));
  Runtime__V1__HugepageLimit h = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
  Runtime__V1__HugepageLimit *hp = &h;
  r->n_hugepage_limits = 1;
  r->hugepage_limits = &hp;
  h.page_size = (char *) "2M";
  g_assert_false (crisp_cgroups_validate_resources (r, &error));
  g_assert_nonnull (strstr (error->message, "'2M'"));
  g_clear_error (&error);
  h.page_size = (char *) "2MB";
  g_assert_true (crisp_cgroups_validate_resources (r, &error));
}

/* Another message of the same type is checked the same way, its own name leading the error. */
static void
test_validate_field (void)
{
  g_autofree Runtime__V1__LinuxContainerResources *r = resources_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_cgroups_validate_field ("overhead", NULL, &error));
  r->cpu_shares = 1;
  g_assert_false (crisp_cgroups_validate_field ("overhead", r, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, "overhead: cpu_shares 1 is outside 2..262144");
  g_clear_error (&error);
  g_assert_false (crisp_cgroups_validate_resources (r, &error));
  g_assert_cmpstr (error->message, ==, "resources: cpu_shares 1 is outside 2..262144");
}

/* What UpdateContainerResources leaves in place is what a status must go on reporting. */
static void
test_resources_merge (void)
{
  Runtime__V1__LinuxContainerResources base = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  Runtime__V1__LinuxContainerResources upd = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  Runtime__V1__HugepageLimit h2 = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
  Runtime__V1__HugepageLimit h1g = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
  Runtime__V1__HugepageLimit h2new = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
  Runtime__V1__LinuxContainerResources__UnifiedEntry ua
      = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
  Runtime__V1__LinuxContainerResources__UnifiedEntry ub
      = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
  h2.page_size = h2new.page_size = (char *) "2MB";
  h1g.page_size = (char *) "1GB";
  h2.limit = 1, h1g.limit = 2, h2new.limit = 5;
  ua.key = (char *) "memory.high", ua.value = (char *) "1000";
  ub.key = (char *) "pids.max", ub.value = (char *) "10";
  Runtime__V1__HugepageLimit *bh[] = { &h2, &h1g }, *uh[] = { &h2new };
  Runtime__V1__LinuxContainerResources__UnifiedEntry *bu[] = { &ua }, *uu[] = { &ub };
  base.memory_limit_in_bytes = 64 << 20, base.cpu_shares = 512, base.cpuset_cpus = (char *) "0";
  base.n_hugepage_limits = 2, base.hugepage_limits = bh, base.n_unified = 1, base.unified = bu;
  upd.memory_limit_in_bytes = 48 << 20, upd.n_hugepage_limits = 1, upd.hugepage_limits = uh;
  upd.n_unified = 1, upd.unified = uu;
  Runtime__V1__LinuxContainerResources *m = crisp_cgroups_resources_merge (&base, &upd);
  g_assert_cmpint (m->memory_limit_in_bytes, ==, 48 << 20);
  g_assert_cmpint (m->cpu_shares, ==, 512);
  g_assert_cmpstr (m->cpuset_cpus, ==, "0");
  g_assert_cmpuint (m->n_hugepage_limits, ==, 2);
  g_assert_cmpstr (m->hugepage_limits[0]->page_size, ==, "1GB");
  g_assert_cmpuint (m->hugepage_limits[0]->limit, ==, 2);
  g_assert_cmpstr (m->hugepage_limits[1]->page_size, ==, "2MB");
  g_assert_cmpuint (m->hugepage_limits[1]->limit, ==, 5);
  g_assert_cmpuint (m->n_unified, ==, 2);
  g_assert_cmpstr (m->unified[0]->key, ==, "memory.high");
  g_assert_cmpstr (m->unified[1]->key, ==, "pids.max");
  protobuf_c_message_free_unpacked (&m->base, NULL);
}

static void
test_update_v1_fixture (void)
{
  g_autofree char *root = make_tree ();
  put (root, "cpu/pod/c/cpu.shares", "1024");
  put (root, "cpu/pod/c/cpu.cfs_period_us", "100000");
  put (root, "cpu/pod/c/cpu.cfs_quota_us", "-1");
  put (root, "memory/pod/c/memory.limit_in_bytes", "0");
  put (root, "cpuset/pod/c/cpuset.cpus", "");
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_HYBRID);
  g_autofree Runtime__V1__LinuxContainerResources *r = resources_new ();
  r->cpu_shares = 512;
  r->cpu_quota = 50000;
  r->memory_limit_in_bytes = 64 << 20;
  r->cpuset_cpus = (char *) "0";
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_cgroups_update (cg, "pod/c", r, &error));
  g_autofree char *shares = get (root, "cpu/pod/c/cpu.shares");
  g_autofree char *quota = get (root, "cpu/pod/c/cpu.cfs_quota_us");
  g_autofree char *period = get (root, "cpu/pod/c/cpu.cfs_period_us");
  g_autofree char *mem = get (root, "memory/pod/c/memory.limit_in_bytes");
  g_autofree char *cpus = get (root, "cpuset/pod/c/cpuset.cpus");
  g_assert_cmpstr (shares, ==, "512");
  g_assert_cmpstr (quota, ==, "50000");
  g_assert_cmpstr (period, ==, "100000"); /* zero: left alone */
  g_assert_cmpstr (mem, ==, "67108864");
  g_assert_cmpstr (cpus, ==, "0");
  g_assert_false (crisp_cgroups_update (cg, "pod/gone", r, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_NOT_FOUND);
  rm_rf (root);
}

static void
test_update_v2_fixture (void)
{
  g_autofree char *root = make_tree ();
  const char *files[] = { "cpu.weight", "cpu.max", "memory.max", "memory.swap.max", "memory.high" };
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *rel = g_build_filename ("pod/c", files[i], NULL);
      put (root, rel, "");
    }
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_V2);
  g_autofree Runtime__V1__LinuxContainerResources *r = resources_new ();
  r->cpu_shares = 1024;
  r->cpu_quota = 25000;
  r->cpu_period = 50000;
  r->memory_limit_in_bytes = 1000000;
  r->memory_swap_limit_in_bytes = 3000000;
  Runtime__V1__LinuxContainerResources__UnifiedEntry e
      = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
  Runtime__V1__LinuxContainerResources__UnifiedEntry *ep = &e;
  e.key = (char *) "memory.high";
  e.value = (char *) "900000";
  r->n_unified = 1;
  r->unified = &ep;
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_cgroups_update (cg, "pod/c", r, &error));
  g_autofree char *w = get (root, "pod/c/cpu.weight");
  g_autofree char *m = get (root, "pod/c/cpu.max");
  g_autofree char *mm = get (root, "pod/c/memory.max");
  g_autofree char *sw = get (root, "pod/c/memory.swap.max");
  g_autofree char *hi = get (root, "pod/c/memory.high");
  g_assert_cmpstr (w, ==, "39");
  g_assert_cmpstr (m, ==, "25000 50000");
  g_assert_cmpstr (mm, ==, "1000000");
  g_assert_cmpstr (sw, ==, "2000000");
  g_assert_cmpstr (hi, ==, "900000");
  /* a unified key whose file does not exist is an error, never a created file */
  e.key = (char *) "memory.nonexistent";
  g_assert_false (crisp_cgroups_update (cg, "pod/c", r, &error));
  g_autofree char *created = g_build_filename (root, "pod/c/memory.nonexistent", NULL);
  g_assert_false (g_file_test (created, G_FILE_TEST_EXISTS));
  rm_rf (root);
}

/* As root on a v1/hybrid host with controller: a real cgroup <name>-<pid> made under this
 * process's own in that hierarchy, and sub below it unless NULL. Its path relative to each
 * hierarchy's root, with the layout in *out_cg; NULL (the test skipped) elsewhere. */
static char *
scratch_cgroup (const char *controller, const char *name, const char *sub, CrispCgroups **out_cg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new (NULL, &error);
  if (getuid () != 0 || cg == NULL || cg->mode == CRISP_CGROUP_MODE_V2
      || !crisp_cgroups_has_controller (cg, controller))
    {
      g_test_skip_printf ("needs root and a cgroup v1 %s controller", controller);
      return NULL;
    }
  g_autofree char *self = crisp_cgroups_self_path (controller, &error);
  g_assert_no_error (error);
  g_autofree char *rel = g_strdup_printf ("%s/%s-%d", self, name, (int) getpid ());
  while (rel[0] == '/')
    memmove (rel, rel + 1, strlen (rel));
  g_autofree char *dir = g_build_filename (cg->root, controller, rel, NULL);
  g_autofree char *below = sub ? g_build_filename (dir, sub, NULL) : NULL;
  if (g_mkdir (dir, 0755) != 0 || (below != NULL && g_mkdir (below, 0755) != 0))
    {
      g_test_skip_printf ("cannot create a %s cgroup here", controller);
      return NULL;
    }
  *out_cg = g_steal_pointer (&cg);
  return g_steal_pointer (&rel);
}

/* As root on a v1/hybrid host: a scratch memory cgroup under this process's own, updated and
 * read back through the kernel, then removed. */
static void
test_real_memory_cgroup (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispCgroups) cg = NULL;
  g_autofree char *rel = scratch_cgroup ("memory", "crisp-unit", NULL, &cg);
  if (rel == NULL)
    return;
  g_autofree char *dir = g_build_filename (cg->root, "memory", rel, NULL);
  g_autofree Runtime__V1__LinuxContainerResources *r = resources_new ();
  r->memory_limit_in_bytes = 32 << 20;
  gboolean ok = crisp_cgroups_update (cg, rel, r, &error);
  CrispCgroupStats s = { 0 };
  gboolean stats_ok = ok && crisp_cgroups_read_stats (cg, rel, &s, &error);
  g_autofree char *limit_path = g_build_filename (dir, "memory.limit_in_bytes", NULL);
  g_autofree char *limit = NULL;
  g_file_get_contents (limit_path, &limit, NULL, NULL);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
  g_assert_no_error (error);
  g_assert_true (ok && stats_ok);
  g_assert_true (s.has_memory);
  g_assert_cmpuint (s.memory_limit, ==, 32 << 20);
  g_assert_cmpstr (limit, ==, "33554432\n");
}

/* Removal on fixture trees: the cgroup and the ones below it go from every hierarchy (links
 * between hierarchies skipped), its parent stays, absence is no error. */
static void
test_remove_fixture (void)
{
  g_autofree char *root = make_tree ();
  put (root, "memory/cgroup.procs", "");
  put (root, "pids/cgroup.procs", "");
  put (root, "cpu,cpuacct/cgroup.procs", "");
  g_autofree char *cpu = g_build_filename (root, "cpu", NULL);
  g_assert_cmpint (symlink ("cpu,cpuacct", cpu), ==, 0);
  const char *made[] = { "memory/kubepods/crisp-x/sub/deeper", "pids/kubepods/crisp-x",
                         "cpu,cpuacct/kubepods/crisp-x/sub", "memory/kubepods/crisp-y" };
  for (gsize i = 0; i < G_N_ELEMENTS (made); i++)
    {
      g_autofree char *d = g_build_filename (root, made[i], NULL);
      g_assert_cmpint (g_mkdir_with_parents (d, 0755), ==, 0);
    }
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_V1);
  g_autoptr (GError) error = NULL;
  g_assert_true (crisp_cgroups_remove (cg, "kubepods/crisp-x", 100, &error));
  g_assert_no_error (error);
  const char *gone[] = { "memory/kubepods/crisp-x", "pids/kubepods/crisp-x",
                         "cpu,cpuacct/kubepods/crisp-x" };
  for (gsize i = 0; i < G_N_ELEMENTS (gone); i++)
    {
      g_autofree char *d = g_build_filename (root, gone[i], NULL);
      g_assert_false (g_file_test (d, G_FILE_TEST_EXISTS));
    }
  g_autofree char *sibling = g_build_filename (root, "memory/kubepods/crisp-y", NULL);
  g_assert_true (g_file_test (sibling, G_FILE_TEST_IS_DIR));
  /* Again, and under a parent that is not there: nothing to do. */
  g_assert_true (crisp_cgroups_remove (cg, "kubepods/crisp-x", 100, &error));
  g_assert_true (crisp_cgroups_remove (cg, "nowhere/crisp-x", 100, &error));
  g_assert_no_error (error);
  /* What cannot be removed is named (a file here; a real cgroup never holds one). */
  put (root, "pids/kubepods/crisp-y/stray", "x");
  g_assert_false (crisp_cgroups_remove (cg, "kubepods/crisp-y", 100, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INTERNAL);
  g_assert_nonnull (strstr (error->message, "pids/kubepods/crisp-y"));
  g_clear_error (&error);
  g_assert_false (crisp_cgroups_remove (cg, "kubepods/../etc", 100, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* v2: the one hierarchy is the root itself. */
  g_autoptr (CrispCgroups) cg2 = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_V2);
  g_autofree char *v2 = g_build_filename (root, "kubepods/crisp-z/sub", NULL);
  g_assert_cmpint (g_mkdir_with_parents (v2, 0755), ==, 0);
  g_assert_true (crisp_cgroups_remove (cg2, "kubepods/crisp-z", 100, &error));
  g_assert_no_error (error);
  g_autofree char *v2_top = g_build_filename (root, "kubepods/crisp-z", NULL);
  g_assert_false (g_file_test (v2_top, G_FILE_TEST_EXISTS));
  rm_rf (root);
}

/* As root on a v1/hybrid host: a real scratch cgroup with a sub-cgroup holding a process;
 * removal kills the process and removes both. */
static void
test_real_remove_kills (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispCgroups) cg = NULL;
  g_autofree char *rel = scratch_cgroup ("pids", "crisp-unit-rm", "sub", &cg);
  if (rel == NULL)
    return;
  g_autofree char *sub = g_build_filename (cg->root, "pids", rel, "sub", NULL);
  pid_t child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    {
      for (;;)
        pause ();
    }
  g_autofree char *procs = g_build_filename (sub, "cgroup.procs", NULL);
  g_autofree char *pid_text = g_strdup_printf ("%d", (int) child);
  gboolean moved = g_file_set_contents_full (procs, pid_text, -1, G_FILE_SET_CONTENTS_NONE, 0644,
                                             &error);
  gboolean removed = moved && crisp_cgroups_remove (cg, rel, 5000, &error);
  int status = 0;
  if (!removed)
    kill (child, SIGKILL);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  g_autofree char *top = g_build_filename (cg->root, "pids", rel, NULL);
  if (!removed)
    {
      g_rmdir (sub);
      g_rmdir (top);
    }
  g_assert_no_error (error);
  g_assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
  g_assert_false (g_file_test (top, G_FILE_TEST_EXISTS));
}

typedef struct
{
  CrispCgroupMetric field;
  gint64 value; /* -1: must be absent */
} Expect;

/* Reads the metrics of rel in a fixture tree of (path, text) pairs (NULL-terminated) and
 * checks each expectation. */
static void
check_metrics (CrispCgroupMode mode, const char *const *files, const char *rel, const Expect *want,
               gsize n)
{
  g_autofree char *root = make_tree ();
  for (; files[0] != NULL; files += 2)
    put (root, files[0], files[1]);
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new_with_mode (root, mode);
  g_autoptr (GError) error = NULL;
  CrispCgroupMetrics m;
  g_assert_true (crisp_cgroups_read_metrics (cg, rel, &m, &error));
  g_assert_no_error (error);
  for (gsize i = 0; i < n; i++)
    {
      gboolean has = (m.present & (1u << want[i].field)) != 0;
      if (has != (want[i].value >= 0))
        g_error ("metric %d: %s", want[i].field, has ? "present" : "absent");
      if (has)
        g_assert_cmpuint (m.value[want[i].field], ==, (guint64) want[i].value);
    }
  rm_rf (root);
}

/* A v2 container cgroup with a sub-cgroup of its own. */
static const char *const v2_tree[] = {
  "pod/c1/cpu.stat",
  "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 40\n"
  "nr_throttled 4\nthrottled_usec 1500\n",
  "pod/c1/cpu.max",
  "50000 100000\n",
  "pod/c1/cpu.weight",
  "100\n",
  "pod/c1/memory.current",
  "9000\n",
  "pod/c1/memory.max",
  "1048576\n",
  "pod/c1/memory.stat",
  "anon 4096\nfile 3000\nfile_mapped 512\ninactive_file 1000\npgfault 30\npgmajfault 2\n",
  "pod/c1/memory.swap.current",
  "128\n",
  "pod/c1/memory.peak",
  "20000\n",
  "pod/c1/memory.events",
  "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
  "pod/c1/pids.current",
  "7\n",
  "pod/c1/pids.max",
  "max\n",
  "pod/c1/cgroup.procs",
  "10\n11\n",
  "pod/c1/cgroup.threads",
  "10\n11\n12\n",
  "pod/c1/sub/cgroup.procs",
  "20\n",
  "pod/c1/sub/cgroup.threads",
  "20\n",
  NULL,
};

static void
test_cgroup_metrics_v2 (void)
{
  const Expect want[] = {
    { CRISP_CGROUP_CPU_USAGE_NS, 2500000000 },
    { CRISP_CGROUP_CPU_USER_NS, 2000000000 },
    { CRISP_CGROUP_CPU_SYSTEM_NS, 500000000 },
    { CRISP_CGROUP_CPU_PERIODS, 40 },
    { CRISP_CGROUP_CPU_THROTTLED_PERIODS, 4 },
    { CRISP_CGROUP_CPU_THROTTLED_NS, 1500000 },
    { CRISP_CGROUP_CPU_PERIOD_US, 100000 },
    { CRISP_CGROUP_CPU_QUOTA_US, 50000 },
    { CRISP_CGROUP_CPU_SHARES, 2 + (99 * 262142) / 9999 },
    { CRISP_CGROUP_MEMORY_USAGE, 9000 },
    { CRISP_CGROUP_MEMORY_WORKING_SET, 8000 },
    { CRISP_CGROUP_MEMORY_RSS, 4096 },
    { CRISP_CGROUP_MEMORY_CACHE, 3000 },
    { CRISP_CGROUP_MEMORY_MAPPED_FILE, 512 },
    { CRISP_CGROUP_MEMORY_SWAP, 128 },
    { CRISP_CGROUP_MEMORY_MAX_USAGE, 20000 },
    { CRISP_CGROUP_MEMORY_FAILCNT, 5 },
    { CRISP_CGROUP_MEMORY_LIMIT, 1048576 },
    { CRISP_CGROUP_PGFAULT, 30 },
    { CRISP_CGROUP_PGFAULT_OWN, 30 },
    { CRISP_CGROUP_PGMAJFAULT_OWN, 2 },
    { CRISP_CGROUP_OOM_KILLS, 1 },
    { CRISP_CGROUP_PROCESSES, 3 }, /* the sub-cgroup's process counts too */
    { CRISP_CGROUP_THREADS, 7 },   /* pids.current, not the lists */
    { CRISP_CGROUP_THREADS_MAX, 0 },
  };
  check_metrics (CRISP_CGROUP_MODE_V2, v2_tree, "pod/c1", want, G_N_ELEMENTS (want));
}

/* What an older kernel or a cgroup without a quota lacks is absent, not zero. */
static void
test_cgroup_metrics_v2_sparse (void)
{
  static const char *const tree[] = {
    "c/cpu.stat",
    "usage_usec 10\n",
    "c/cpu.max",
    "max 100000\n",
    "c/memory.current",
    "100\n",
    "c/memory.stat",
    "anon 1\n",
    "c/cgroup.procs",
    "",
    "c/cgroup.threads",
    "1\n2\n",
    NULL,
  };
  const Expect want[] = {
    { CRISP_CGROUP_CPU_PERIOD_US, 100000 },
    { CRISP_CGROUP_CPU_QUOTA_US, -1 },
    { CRISP_CGROUP_CPU_USER_NS, -1 },
    { CRISP_CGROUP_MEMORY_MAX_USAGE, -1 },
    { CRISP_CGROUP_OOM_KILLS, -1 },
    { CRISP_CGROUP_THREADS_MAX, -1 },
    { CRISP_CGROUP_MEMORY_LIMIT, 0 },
    { CRISP_CGROUP_PROCESSES, 0 },
    { CRISP_CGROUP_THREADS, 2 }, /* no pids controller: the threads listed */
  };
  check_metrics (CRISP_CGROUP_MODE_V2, tree, "c", want, G_N_ELEMENTS (want));
}

static void
test_cgroup_metrics_errors (void)
{
  g_autofree char *root = make_tree ();
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_V2);
  g_autoptr (GError) error = NULL;
  CrispCgroupMetrics m;
  g_assert_false (crisp_cgroups_read_metrics (cg, "gone", &m, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (crisp_cgroups_read_metrics (cg, "c/../..", &m, &error));
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_INVALID_ARGUMENT);
  rm_rf (root);
}

static const char *const v1_tree[] = {
  "cpuacct/pod/c1/cpuacct.usage",
  "3000000000\n",
  "cpuacct/pod/c1/cpuacct.stat",
  "user 200\nsystem 50\n",
  "cpu/pod/c1/cpu.stat",
  "nr_periods 9\nnr_throttled 3\nthrottled_time 7000\n",
  "cpu/pod/c1/cpu.cfs_period_us",
  "100000\n",
  "cpu/pod/c1/cpu.cfs_quota_us",
  "-1\n",
  "cpu/pod/c1/cpu.shares",
  "512\n",
  "memory/pod/c1/memory.usage_in_bytes",
  "10000\n",
  "memory/pod/c1/memory.limit_in_bytes",
  "9223372036854771712\n",
  "memory/pod/c1/memory.max_usage_in_bytes",
  "15000\n",
  "memory/pod/c1/memory.failcnt",
  "2\n",
  "memory/pod/c1/memory.oom_control",
  "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
  "memory/pod/c1/memory.stat",
  "cache 1\nrss 2\nmapped_file 3\nswap 4\npgfault 50\npgmajfault 5\ntotal_cache 4000\n"
  "total_rss 3500\ntotal_mapped_file 300\ntotal_swap 40\ntotal_inactive_file 2500\n"
  "total_pgfault 77\ntotal_pgmajfault 7\n",
  "memory/pod/c1/cgroup.procs",
  "1\n",
  "memory/pod/c1/tasks",
  "1\n2\n",
  "pids/pod/c1/pids.current",
  "4\n",
  "pids/pod/c1/pids.max",
  "1024\n",
  "pids/pod/c1/cgroup.procs",
  "1\n2\n",
  NULL,
};

static void
test_cgroup_metrics_v1 (void)
{
  gint64 ns_per_tick = 1000000000 / sysconf (_SC_CLK_TCK);
  const Expect want[] = {
    { CRISP_CGROUP_CPU_USAGE_NS, 3000000000 },
    { CRISP_CGROUP_CPU_USER_NS, 200 * ns_per_tick },
    { CRISP_CGROUP_CPU_SYSTEM_NS, 50 * ns_per_tick },
    { CRISP_CGROUP_CPU_PERIODS, 9 },
    { CRISP_CGROUP_CPU_THROTTLED_NS, 7000 },
    { CRISP_CGROUP_CPU_PERIOD_US, 100000 },
    { CRISP_CGROUP_CPU_QUOTA_US, -1 }, /* -1 in the file: no quota */
    { CRISP_CGROUP_CPU_SHARES, 512 },
    { CRISP_CGROUP_MEMORY_WORKING_SET, 7500 },
    { CRISP_CGROUP_MEMORY_CACHE, 4000 },
    { CRISP_CGROUP_MEMORY_MAPPED_FILE, 300 },
    { CRISP_CGROUP_MEMORY_SWAP, 40 },
    { CRISP_CGROUP_MEMORY_MAX_USAGE, 15000 },
    { CRISP_CGROUP_MEMORY_FAILCNT, 2 },
    { CRISP_CGROUP_MEMORY_LIMIT, 0 },
    { CRISP_CGROUP_PGFAULT, 77 },
    { CRISP_CGROUP_PGFAULT_OWN, 50 },
    { CRISP_CGROUP_PGMAJFAULT, 7 },
    { CRISP_CGROUP_PGMAJFAULT_OWN, 5 },
    { CRISP_CGROUP_OOM_KILLS, 3 },
    { CRISP_CGROUP_PROCESSES, 2 }, /* from the pids hierarchy */
    { CRISP_CGROUP_THREADS, 4 },
    { CRISP_CGROUP_THREADS_MAX, 1024 },
  };
  check_metrics (CRISP_CGROUP_MODE_HYBRID, v1_tree, "pod/c1", want, G_N_ELEMENTS (want));
}

static void
test_cpu_max_and_weight (void)
{
  gint64 quota;
  guint64 period;
  g_assert_true (crisp_cgroups_parse_cpu_max ("max 100000\n", &quota, &period));
  g_assert_cmpint (quota, ==, -1);
  g_assert_cmpuint (period, ==, 100000);
  g_assert_true (crisp_cgroups_parse_cpu_max ("25000 50000", &quota, &period));
  g_assert_cmpint (quota, ==, 25000);
  g_assert_cmpuint (period, ==, 50000);
  const char *bad[] = { "",
                        "max",
                        " 100000",
                        "maxi 100000",
                        "-5 100000",
                        "1 x",
                        "99999999999999999999 1",
                        "1 99999999999999999999",
                        "1 2 3" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (crisp_cgroups_parse_cpu_max (bad[i], &quota, &period));
  g_assert_cmpuint (crisp_cgroups_weight_to_shares (0), ==, 0);
  g_assert_cmpuint (crisp_cgroups_weight_to_shares (1), ==, 2);
  g_assert_cmpuint (crisp_cgroups_weight_to_shares (10000), ==, 262144);
  g_assert_cmpuint (crisp_cgroups_weight_to_shares (99999), ==, 262144);
  /* the round trip through the v1 -> v2 conversion stays close */
  guint64 w = crisp_cgroups_shares_to_weight (1024);
  guint64 back = crisp_cgroups_weight_to_shares (w);
  g_assert_cmpuint (back, >=, 1024 - 30);
  g_assert_cmpuint (back, <=, 1024 + 30);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cgroups/paths/cgroupfs", test_paths_cgroupfs);
  g_test_add_func ("/cgroups/paths/systemd", test_paths_systemd);
  g_test_add_func ("/cgroups/conversions", test_conversions);
  g_test_add_func ("/cgroups/driver-and-parent", test_driver_and_parent);
  g_test_add_func ("/cgroups/parse-stat", test_parse_stat);
  g_test_add_func ("/cgroups/stats/v1", test_stats_v1);
  g_test_add_func ("/cgroups/stats/v2", test_stats_v2);
  g_test_add_func ("/cgroups/has-controller", test_has_controller);
  g_test_add_func ("/cgroups/detect-host", test_detect_host);
  g_test_add_func ("/cgroups/validate", test_validate);
  g_test_add_func ("/cgroups/validate-field", test_validate_field);
  g_test_add_func ("/cgroups/resources-merge", test_resources_merge);
  g_test_add_func ("/cgroups/update/v1", test_update_v1_fixture);
  g_test_add_func ("/cgroups/update/v2", test_update_v2_fixture);
  g_test_add_func ("/cgroups/root/memory", test_real_memory_cgroup);
  g_test_add_func ("/cgroups/remove/fixture", test_remove_fixture);
  g_test_add_func ("/cgroups/root/remove-kills", test_real_remove_kills);
  g_test_add_func ("/cgroups/metrics/v2", test_cgroup_metrics_v2);
  g_test_add_func ("/cgroups/metrics/v2-sparse", test_cgroup_metrics_v2_sparse);
  g_test_add_func ("/cgroups/metrics/errors", test_cgroup_metrics_errors);
  g_test_add_func ("/cgroups/metrics/v1", test_cgroup_metrics_v1);
  g_test_add_func ("/cgroups/metrics/cpu-max-and-weight", test_cpu_max_and_weight);
  return g_test_run ();
}
