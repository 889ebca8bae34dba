/* The metrics of one cgroup that ListPodSandboxMetrics reports: cgroups-stats.c's figures,
 * plus the CPU time split and throttling, memory details, OOM kills, process and thread
 * counts and the cpu spec, from the v1 controllers or the v2 unified files. */
#include "config.h"

#include "crisp-cgroups.h"
#include "cgroups-private.h"

#include <dirent.h>
#include <string.h>
#include <unistd.h>

/* Bounds on the walk below a cgroup: a container may make sub-cgroups of its own. */
#define WALK_MAX_DEPTH 32
#define WALK_MAX_DIRS 4096

#define NS_PER_US G_GUINT64_CONSTANT (1000)

static void
set (CrispCgroupMetrics *m, CrispCgroupMetric field, guint64 value)
{
  m->value[field] = value;
  m->present |= 1u << field;
}

/* key's value in a text of "key value" lines, times scale, when it is there. */
static void
set_from_stat (CrispCgroupMetrics *m, CrispCgroupMetric field, const char *text, const char *key,
               guint64 scale)
{
  guint64 v;
  if (text != NULL && crisp_cgroups_parse_stat (text, key, &v))
    set (m, field, v * scale);
}

static void
set_from_file (CrispCgroupMetrics *m, CrispCgroupMetric field, const char *dir, const char *file)
{
  guint64 v;
  if (crisp_cgroups_read_u64 (dir, file, &v))
    set (m, field, v);
}

static void
set_base (CrispCgroupMetrics *m, const CrispCgroupStats *s)
{
  if (s->has_cpu)
    set (m, CRISP_CGROUP_CPU_USAGE_NS, s->cpu_usage_ns);
  if (!s->has_memory)
    return;
  set (m, CRISP_CGROUP_MEMORY_USAGE, s->memory_usage);
  set (m, CRISP_CGROUP_MEMORY_WORKING_SET, s->memory_working_set);
  set (m, CRISP_CGROUP_MEMORY_RSS, s->memory_rss);
  set (m, CRISP_CGROUP_MEMORY_LIMIT, s->memory_limit);
  set (m, CRISP_CGROUP_PGFAULT, s->page_faults);
  set (m, CRISP_CGROUP_PGMAJFAULT, s->major_page_faults);
}

/* Adds the lines of dir/file and of the same file in every sub-cgroup to *count; FALSE when
 * dir/file itself is unreadable. */
static gboolean
count_lines (const char *dir, const char *file, int depth, guint *budget, guint64 *count)
{
  g_autofree char *text = crisp_cgroups_read_text (dir, file);
  if (text == NULL)
    return FALSE;
  for (const char *p = text; *p; p++)
    *count += *p == '\n';
  DIR *d = depth < WALK_MAX_DEPTH ? opendir (dir) : NULL;
  if (d == NULL)
    return TRUE;
  struct dirent *de;
  while (*budget > 0 && (de = readdir (d)) != NULL)
    {
      if (de->d_type != DT_DIR || g_str_equal (de->d_name, ".") || g_str_equal (de->d_name, ".."))
        continue;
      (*budget)--;
      g_autofree char *sub = g_build_filename (dir, de->d_name, NULL);
      count_lines (sub, file, depth + 1, budget, count);
    }
  closedir (d);
  return TRUE;
}

/* Processes, and threads unless pids.current gave them (threads_file lists a cgroup's). */
static void
count_tasks (CrispCgroupMetrics *m, const char *dir, const char *threads_file)
{
  guint budget = WALK_MAX_DIRS;
  guint64 n = 0;
  if (count_lines (dir, "cgroup.procs", 0, &budget, &n))
    set (m, CRISP_CGROUP_PROCESSES, n);
  budget = WALK_MAX_DIRS;
  n = 0;
  if (!(m->present & (1u << CRISP_CGROUP_THREADS))
      && count_lines (dir, threads_file, 0, &budget, &n))
    set (m, CRISP_CGROUP_THREADS, n);
}

static void
read_pids (CrispCgroupMetrics *m, const char *dir)
{
  set_from_file (m, CRISP_CGROUP_THREADS, dir, "pids.current");
  g_autofree char *max = crisp_cgroups_read_text (dir, "pids.max");
  guint64 v = 0;
  if (max != NULL && (g_str_has_prefix (max, "max") || crisp_cgroups_parse_u64 (max, &v)))
    set (m, CRISP_CGROUP_THREADS_MAX, v);
}

static void
read_v1_cpu (CrispCgroupMetrics *m, const char *root, const char *rel)
{
  g_autofree char *acct = g_build_filename (root, "cpuacct", rel, NULL);
  g_autofree char *cpu = g_build_filename (root, "cpu", rel, NULL);
  /* cpuacct.stat counts USER_HZ ticks */
  long hz = sysconf (_SC_CLK_TCK);
  guint64 ns_per_tick = G_GUINT64_CONSTANT (1000000000) / (guint64) (hz > 0 ? hz : 100);
  g_autofree char *ticks = crisp_cgroups_read_text (acct, "cpuacct.stat");
  set_from_stat (m, CRISP_CGROUP_CPU_USER_NS, ticks, "user", ns_per_tick);
  set_from_stat (m, CRISP_CGROUP_CPU_SYSTEM_NS, ticks, "system", ns_per_tick);
  g_autofree char *stat = crisp_cgroups_read_text (cpu, "cpu.stat");
  set_from_stat (m, CRISP_CGROUP_CPU_PERIODS, stat, "nr_periods", 1);
  set_from_stat (m, CRISP_CGROUP_CPU_THROTTLED_PERIODS, stat, "nr_throttled", 1);
  set_from_stat (m, CRISP_CGROUP_CPU_THROTTLED_NS, stat, "throttled_time", 1);
  set_from_file (m, CRISP_CGROUP_CPU_PERIOD_US, cpu, "cpu.cfs_period_us");
  set_from_file (m, CRISP_CGROUP_CPU_QUOTA_US, cpu, "cpu.cfs_quota_us"); /* -1 (none) is not */
  set_from_file (m, CRISP_CGROUP_CPU_SHARES, cpu, "cpu.shares");
}

static void
read_v1_memory (CrispCgroupMetrics *m, const char *dir)
{
  g_autofree char *stat = crisp_cgroups_read_text (dir, "memory.stat");
  set_from_stat (m, CRISP_CGROUP_MEMORY_CACHE, stat, "total_cache", 1);
  set_from_stat (m, CRISP_CGROUP_MEMORY_SWAP, stat, "total_swap", 1); /* with swap accounting */
  set_from_stat (m, CRISP_CGROUP_MEMORY_MAPPED_FILE, stat, "total_mapped_file", 1);
  set_from_stat (m, CRISP_CGROUP_PGFAULT_OWN, stat, "pgfault", 1);
  set_from_stat (m, CRISP_CGROUP_PGMAJFAULT_OWN, stat, "pgmajfault", 1);
  set_from_file (m, CRISP_CGROUP_MEMORY_MAX_USAGE, dir, "memory.max_usage_in_bytes");
  set_from_file (m, CRISP_CGROUP_MEMORY_FAILCNT, dir, "memory.failcnt");
  g_autofree char *oom = crisp_cgroups_read_text (dir, "memory.oom_control"); /* kernel >= 4.13 */
  set_from_stat (m, CRISP_CGROUP_OOM_KILLS, oom, "oom_kill", 1);
}

static void
read_v1 (CrispCgroupMetrics *m, const char *root, const char *rel)
{
  g_autofree char *mem = g_build_filename (root, "memory", rel, NULL);
  g_autofree char *pids = g_build_filename (root, "pids", rel, NULL);
  read_v1_cpu (m, root, rel);
  read_v1_memory (m, mem);
  read_pids (m, pids);
  count_tasks (m, g_file_test (pids, G_FILE_TEST_IS_DIR) ? pids : mem, "tasks");
}

static void
read_v2_cpu (CrispCgroupMetrics *m, const char *dir)
{
  g_autofree char *stat = crisp_cgroups_read_text (dir, "cpu.stat");
  set_from_stat (m, CRISP_CGROUP_CPU_USER_NS, stat, "user_usec", NS_PER_US);
  set_from_stat (m, CRISP_CGROUP_CPU_SYSTEM_NS, stat, "system_usec", NS_PER_US);
  set_from_stat (m, CRISP_CGROUP_CPU_PERIODS, stat, "nr_periods", 1);
  set_from_stat (m, CRISP_CGROUP_CPU_THROTTLED_PERIODS, stat, "nr_throttled", 1);
  set_from_stat (m, CRISP_CGROUP_CPU_THROTTLED_NS, stat, "throttled_usec", NS_PER_US);
  g_autofree char *max = crisp_cgroups_read_text (dir, "cpu.max");
  gint64 quota;
  guint64 period, weight;
  if (max != NULL && crisp_cgroups_parse_cpu_max (max, &quota, &period))
    {
      set (m, CRISP_CGROUP_CPU_PERIOD_US, period);
      if (quota >= 0)
        set (m, CRISP_CGROUP_CPU_QUOTA_US, (guint64) quota);
    }
  if (crisp_cgroups_read_u64 (dir, "cpu.weight", &weight))
    set (m, CRISP_CGROUP_CPU_SHARES, crisp_cgroups_weight_to_shares (weight));
}

static void
read_v2_memory (CrispCgroupMetrics *m, const char *dir)
{
  g_autofree char *stat = crisp_cgroups_read_text (dir, "memory.stat");
  set_from_stat (m, CRISP_CGROUP_MEMORY_CACHE, stat, "file", 1);
  set_from_stat (m, CRISP_CGROUP_MEMORY_MAPPED_FILE, stat, "file_mapped", 1);
  set_from_stat (m, CRISP_CGROUP_PGFAULT_OWN, stat, "pgfault", 1);
  set_from_stat (m, CRISP_CGROUP_PGMAJFAULT_OWN, stat, "pgmajfault", 1);
  set_from_file (m, CRISP_CGROUP_MEMORY_SWAP, dir, "memory.swap.current");
  set_from_file (m, CRISP_CGROUP_MEMORY_MAX_USAGE, dir, "memory.peak"); /* kernel >= 5.19 */
  g_autofree char *events = crisp_cgroups_read_text (dir, "memory.events");
  set_from_stat (m, CRISP_CGROUP_MEMORY_FAILCNT, events, "max", 1);
  set_from_stat (m, CRISP_CGROUP_OOM_KILLS, events, "oom_kill", 1);
}

static void
read_v2 (CrispCgroupMetrics *m, const char *root, const char *rel)
{
  g_autofree char *dir = g_build_filename (root, rel, NULL);
  read_v2_cpu (m, dir);
  read_v2_memory (m, dir);
  read_pids (m, dir);
  count_tasks (m, dir, "cgroup.threads");
}

gboolean
crisp_cgroups_read_metrics (CrispCgroups *cg, const char *rel_path, CrispCgroupMetrics *out_metrics,
                            GError **error)
{
  CrispCgroupStats s;
  if (!crisp_cgroups_read_stats (cg, rel_path, &s, error))
    return FALSE;
  CrispCgroupMetrics m = { .timestamp_ns = s.timestamp_ns };
  set_base (&m, &s);
  if (cg->mode == CRISP_CGROUP_MODE_V2)
    read_v2 (&m, cg->root, rel_path);
  else
    read_v1 (&m, cg->root, rel_path);
  *out_metrics = m;
  return TRUE;
}

gboolean
crisp_cgroups_parse_cpu_max (const char *text, gint64 *out_quota, guint64 *out_period)
{
  const char *space = strchr (text, ' ');
  guint64 quota = 0, period;
  if (space == NULL || space == text || !crisp_cgroups_parse_u64 (space + 1, &period))
    return FALSE;
  gboolean unlimited = space - text == 3 && strncmp (text, "max", 3) == 0;
  if (!unlimited)
    {
      g_autofree char *q = g_strndup (text, (gsize) (space - text));
      if (!crisp_cgroups_parse_u64 (q, &quota) || quota > G_MAXINT64)
        return FALSE;
    }
  *out_quota = unlimited ? -1 : (gint64) quota;
  *out_period = period;
  return TRUE;
}
