/* CPU and memory statistics of one cgroup, from the v1 cpuacct and memory controllers or the
 * v2 unified files.  Working set is usage minus inactive file cache, as kubelet computes it. */
#include "config.h"

#include "crisp-cgroups.h"
#include "cgroups-private.h"
#include "crisp-error.h"

#include <string.h>

/* v1 reports "no limit" as the largest page-aligned value; anything this large is none. */
#define V1_UNLIMITED_FLOOR (G_MAXINT64 / 2)

gboolean
crisp_cgroups_parse_stat (const char *text, const char *key, guint64 *out_value)
{
  gsize klen = strlen (key);
  for (const char *line = text; line != NULL && *line; line = strchr (line, '\n'))
    {
      if (*line == '\n')
        line++;
      if (strncmp (line, key, klen) != 0 || line[klen] != ' ')
        continue;
      return crisp_cgroups_parse_u64 (line + klen + 1, out_value);
    }
  return FALSE;
}

gboolean
crisp_cgroups_parse_u64 (const char *text, guint64 *out_value)
{
  char *end = NULL;
  while (*text == ' ')
    text++;
  if (!g_ascii_isdigit (*text))
    return FALSE;
  errno = 0;
  guint64 v = g_ascii_strtoull (text, &end, 10);
  if (errno != 0 || (*end != '\0' && *end != '\n'))
    return FALSE;
  *out_value = v;
  return TRUE;
}

gboolean
crisp_cgroups_read_u64 (const char *dir, const char *file, guint64 *out)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_autofree char *text = NULL;
  return g_file_get_contents (path, &text, NULL, NULL) && crisp_cgroups_parse_u64 (text, out);
}

char *
crisp_cgroups_read_text (const char *dir, const char *file)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  char *text = NULL;
  return g_file_get_contents (path, &text, NULL, NULL) ? text : NULL;
}

static void
fill_memory (CrispCgroupStats *s, const char *stat, const char *inactive_key, const char *rss_key,
             const char *fault_key, const char *major_key)
{
  guint64 inactive = 0;
  crisp_cgroups_parse_stat (stat, inactive_key, &inactive);
  crisp_cgroups_parse_stat (stat, rss_key, &s->memory_rss);
  crisp_cgroups_parse_stat (stat, fault_key, &s->page_faults);
  crisp_cgroups_parse_stat (stat, major_key, &s->major_page_faults);
  s->memory_working_set = s->memory_usage > inactive ? s->memory_usage - inactive : 0;
  s->has_memory = TRUE;
}

static void
read_v1 (CrispCgroups *cg, const char *rel, CrispCgroupStats *s)
{
  g_autofree char *cpu = g_build_filename (cg->root, "cpuacct", rel, NULL);
  g_autofree char *mem = g_build_filename (cg->root, "memory", rel, NULL);
  s->has_cpu = crisp_cgroups_read_u64 (cpu, "cpuacct.usage", &s->cpu_usage_ns);
  g_autofree char *stat = crisp_cgroups_read_text (mem, "memory.stat");
  if (stat == NULL || !crisp_cgroups_read_u64 (mem, "memory.usage_in_bytes", &s->memory_usage))
    return;
  if (crisp_cgroups_read_u64 (mem, "memory.limit_in_bytes", &s->memory_limit)
      && s->memory_limit >= V1_UNLIMITED_FLOOR)
    s->memory_limit = 0;
  fill_memory (s, stat, "total_inactive_file", "total_rss", "total_pgfault", "total_pgmajfault");
}

static void
read_v2 (CrispCgroups *cg, const char *rel, CrispCgroupStats *s)
{
  g_autofree char *dir = g_build_filename (cg->root, rel, NULL);
  g_autofree char *cpu = crisp_cgroups_read_text (dir, "cpu.stat");
  guint64 usec;
  if (cpu != NULL && crisp_cgroups_parse_stat (cpu, "usage_usec", &usec))
    {
      s->cpu_usage_ns = usec * 1000;
      s->has_cpu = TRUE;
    }
  g_autofree char *stat = crisp_cgroups_read_text (dir, "memory.stat");
  if (stat == NULL || !crisp_cgroups_read_u64 (dir, "memory.current", &s->memory_usage))
    return;
  if (!crisp_cgroups_read_u64 (dir, "memory.max", &s->memory_limit)) /* "max" */
    s->memory_limit = 0;
  fill_memory (s, stat, "inactive_file", "anon", "pgfault", "pgmajfault");
}

gboolean
crisp_cgroups_read_stats (CrispCgroups *cg, const char *rel_path, CrispCgroupStats *out_stats,
                          GError **error)
{
  if (!crisp_cgroups_check_rel_path (rel_path, error))
    return FALSE;
  CrispCgroupStats s = { 0 };
  s.timestamp_ns = g_get_real_time () * 1000;
  if (cg->mode == CRISP_CGROUP_MODE_V2)
    read_v2 (cg, rel_path, &s);
  else
    read_v1 (cg, rel_path, &s);
  if (!s.has_cpu && !s.has_memory)
    return crisp_throw (error, CRISP_ERROR_NOT_FOUND, "no cgroup '%s' under '%s'", rel_path,
                        cg->root);
  *out_stats = s;
  return TRUE;
}
