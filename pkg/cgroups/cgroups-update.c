/* UpdateContainerResources on a live cgroup, and the checks every CRI resources message goes
 * through first (it comes from the request and ends up in kernel files). */
#include "config.h"

#include "crisp-cgroups.h"
#include "cgroups-private.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <string.h>

#define MAX_CPUSET_LEN 4096
#define MAX_HUGEPAGE_LIMITS 16
#define MAX_UNIFIED 64
#define MAX_UNIFIED_KEY 64
#define MAX_UNIFIED_VALUE 4096
#define DEFAULT_CFS_PERIOD 100000

gboolean
crisp_cgroups_check_rel_path (const char *rel_path, GError **error)
{
  if (rel_path == NULL || rel_path[0] == '\0' || rel_path[0] == '/')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "invalid cgroup path '%s'",
                        rel_path ? rel_path : "");
  g_auto (GStrv) parts = g_strsplit (rel_path, "/", -1);
  for (char **p = parts; *p; p++)
    if (**p == '\0' || g_str_equal (*p, ".") || g_str_equal (*p, ".."))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "invalid cgroup path '%s'",
                          rel_path);
  return TRUE;
}

guint64
crisp_cgroups_shares_to_weight (guint64 shares)
{
  if (shares == 0)
    return 0;
  shares = CLAMP (shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

guint64
crisp_cgroups_weight_to_shares (guint64 weight)
{
  if (weight == 0)
    return 0;
  weight = CLAMP (weight, 1, 10000);
  return 2 + ((weight - 1) * 262142) / 9999;
}

char *
crisp_cgroups_cpu_max (gint64 quota, gint64 period)
{
  if (period <= 0)
    period = DEFAULT_CFS_PERIOD;
  if (quota <= 0)
    return g_strdup_printf ("max %" G_GINT64_FORMAT, period);
  return g_strdup_printf ("%" G_GINT64_FORMAT " %" G_GINT64_FORMAT, quota, period);
}

char *
crisp_cgroups_swap_max (gint64 memory_limit, gint64 memory_swap_limit)
{
  if (memory_swap_limit == -1)
    return g_strdup ("max");
  /* v2 cannot express "memory+swap" without a memory limit to subtract */
  if (memory_swap_limit <= 0 || memory_limit <= 0)
    return NULL;
  return g_strdup_printf ("%" G_GINT64_FORMAT, MAX (memory_swap_limit - memory_limit, 0));
}

static gboolean
cpuset_is_valid (const char *s)
{
  /* "0-3,8,10-11": numbers joined by '-' or ','; no empty parts */
  gboolean want_digit = TRUE;
  if (strlen (s) > MAX_CPUSET_LEN)
    return FALSE;
  for (const char *p = s; *p; p++)
    {
      if (g_ascii_isdigit (*p))
        want_digit = FALSE;
      else if ((*p == ',' || *p == '-') && !want_digit)
        want_digit = TRUE;
      else
        return FALSE;
    }
  return s[0] == '\0' || !want_digit;
}

static gboolean
hugepage_size_is_valid (const char *s)
{
  gsize n = strlen (s), digits = strspn (s, "0123456789");
  return n <= 16 && digits > 0 && n == digits + 2 && strchr ("KMGTP", s[digits]) != NULL
         && s[digits + 1] == 'B';
}

static gboolean
unified_key_is_valid (const char *k)
{
  gsize n = strlen (k);
  /* cgroup.* files move processes or change the tree: never from a request */
  return n > 0 && n <= MAX_UNIFIED_KEY && strspn (k, "abcdefghijklmnopqrstuvwxyz0123456789_.") == n
         && k[0] != '.' && strchr (k, '.') != NULL && strstr (k, "..") == NULL
         && !g_str_has_prefix (k, "cgroup.");
}

static gboolean
unified_value_is_valid (const char *v)
{
  if (strlen (v) > MAX_UNIFIED_VALUE)
    return FALSE;
  for (const char *p = v; *p; p++)
    if (g_ascii_iscntrl (*p))
      return FALSE;
  return TRUE;
}

static gboolean
validate_cpu (const char *field, const Runtime__V1__LinuxContainerResources *r, GError **error)
{
  if (r->cpu_period != 0 && (r->cpu_period < 1000 || r->cpu_period > 1000000))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: cpu_period %" G_GINT64_FORMAT " is outside 1000..1000000", field,
                        r->cpu_period);
  if (r->cpu_quota != 0 && r->cpu_quota != -1 && r->cpu_quota < 1000)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: cpu_quota %" G_GINT64_FORMAT " is below 1000", field, r->cpu_quota);
  if (r->cpu_shares != 0 && (r->cpu_shares < 2 || r->cpu_shares > 262144))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: cpu_shares %" G_GINT64_FORMAT " is outside 2..262144", field,
                        r->cpu_shares);
  if (r->cpuset_cpus && !cpuset_is_valid (r->cpuset_cpus))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: cpuset_cpus '%s' is not a CPU list", field, r->cpuset_cpus);
  if (r->cpuset_mems && !cpuset_is_valid (r->cpuset_mems))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: cpuset_mems '%s' is not a node list", field, r->cpuset_mems);
  return TRUE;
}

static gboolean
validate_memory (const char *field, const Runtime__V1__LinuxContainerResources *r, GError **error)
{
  if (r->memory_limit_in_bytes < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: memory_limit_in_bytes %" G_GINT64_FORMAT " is negative", field,
                        r->memory_limit_in_bytes);
  if (r->memory_swap_limit_in_bytes < -1
      || (r->memory_swap_limit_in_bytes > 0 && r->memory_limit_in_bytes > 0
          && r->memory_swap_limit_in_bytes < r->memory_limit_in_bytes))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: memory_swap_limit_in_bytes %" G_GINT64_FORMAT
                        " is below the memory limit or invalid",
                        field, r->memory_swap_limit_in_bytes);
  if (r->oom_score_adj < -1000 || r->oom_score_adj > 1000)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: oom_score_adj %" G_GINT64_FORMAT " is outside -1000..1000", field,
                        r->oom_score_adj);
  return TRUE;
}

static gboolean
validate_maps (const char *field, const Runtime__V1__LinuxContainerResources *r, GError **error)
{
  if (r->n_hugepage_limits > MAX_HUGEPAGE_LIMITS)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: more than %d hugepage_limits",
                        field, MAX_HUGEPAGE_LIMITS);
  for (gsize i = 0; i < r->n_hugepage_limits; i++)
    if (r->hugepage_limits[i] == NULL || r->hugepage_limits[i]->page_size == NULL
        || !hugepage_size_is_valid (r->hugepage_limits[i]->page_size))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "%s: hugepage_limits page_size '%s' is not like '2MB'", field,
                          r->hugepage_limits[i] && r->hugepage_limits[i]->page_size
                              ? r->hugepage_limits[i]->page_size
                              : "");
  if (r->n_unified > MAX_UNIFIED)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: more than %d unified", field,
                        MAX_UNIFIED);
  for (gsize i = 0; i < r->n_unified; i++)
    {
      const char *k = r->unified[i] ? r->unified[i]->key : NULL;
      const char *v = r->unified[i] ? r->unified[i]->value : NULL;
      if (k == NULL || !unified_key_is_valid (k))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "%s: unified key '%s' is not a cgroup file name", field, k ? k : "");
      if (v == NULL || !unified_value_is_valid (v))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "%s: unified '%s' value is not a single line", field, k);
    }
  return TRUE;
}

gboolean
crisp_cgroups_validate_field (const char *field, const Runtime__V1__LinuxContainerResources *r,
                              GError **error)
{
  if (r == NULL)
    return TRUE;
  return validate_cpu (field, r, error) && validate_memory (field, r, error)
         && validate_maps (field, r, error);
}

gboolean
crisp_cgroups_validate_resources (const Runtime__V1__LinuxContainerResources *r, GError **error)
{
  return crisp_cgroups_validate_field ("resources", r, error);
}

/* base's hugepage limits of a size that update does not name. */
static Runtime__V1__HugepageLimit **
hugepages_kept (const Runtime__V1__LinuxContainerResources *base,
                const Runtime__V1__LinuxContainerResources *update, size_t *out_n)
{
  Runtime__V1__HugepageLimit **kept
      = g_new0 (Runtime__V1__HugepageLimit *, base->n_hugepage_limits + 1);
  *out_n = 0;
  for (size_t i = 0; i < base->n_hugepage_limits; i++)
    {
      gboolean named = FALSE;
      for (size_t j = 0; j < update->n_hugepage_limits && !named; j++)
        named
            = g_strcmp0 (base->hugepage_limits[i]->page_size, update->hugepage_limits[j]->page_size)
              == 0;
      if (!named)
        kept[(*out_n)++] = base->hugepage_limits[i];
    }
  return kept;
}

Runtime__V1__LinuxContainerResources *
crisp_cgroups_resources_merge (const Runtime__V1__LinuxContainerResources *base,
                               const Runtime__V1__LinuxContainerResources *update)
{
  /* Protobuf's own merge: a message parsed from two encodings takes the second's non-zero
   * scalars and strings, and the union of the maps with the second winning; only the repeated
   * hugepage limits would be appended, so base keeps just the sizes update leaves alone. */
  Runtime__V1__LinuxContainerResources b = *base;
  g_autofree Runtime__V1__HugepageLimit **kept
      = hugepages_kept (base, update, &b.n_hugepage_limits);
  b.hugepage_limits = kept;
  size_t n1 = runtime__v1__linux_container_resources__get_packed_size (&b);
  size_t n2 = runtime__v1__linux_container_resources__get_packed_size (update);
  g_autofree guint8 *buf = g_malloc (n1 + n2 + 1);
  runtime__v1__linux_container_resources__pack (&b, buf);
  runtime__v1__linux_container_resources__pack (update, buf + n1);
  return runtime__v1__linux_container_resources__unpack (NULL, n1 + n2, buf);
}

/* Writes value into dir/file, which must exist (cgroup files are never created); O_TRUNC is
 * a no-op on cgroupfs and lets fixture trees behave the same. */
static int
write_file (const char *dir, const char *file, const char *value)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  _cleanup_close_ int fd = open (path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd < 0)
    return -errno;
  return crisp_write_all (fd, value, strlen (value));
}

static gboolean
write_or_throw (const char *dir, const char *file, const char *value, GError **error)
{
  int r = write_file (dir, file, value);
  if (r < 0)
    return crisp_throw_errno (error, r, "writing '%s' to %s/%s", value, dir, file);
  return TRUE;
}

static gboolean
write_i64 (const char *dir, const char *file, gint64 value, GError **error)
{
  g_autofree char *s = g_strdup_printf ("%" G_GINT64_FORMAT, value);
  return write_or_throw (dir, file, s, error);
}

static gboolean
cgroup_dir (CrispCgroups *cg, const char *controller, const char *rel, char **out, GError **error)
{
  g_autofree char *dir = controller ? g_build_filename (cg->root, controller, rel, NULL)
                                    : g_build_filename (cg->root, rel, NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    return crisp_throw (error, CRISP_ERROR_NOT_FOUND, "cgroup '%s' does not exist", dir);
  *out = g_steal_pointer (&dir);
  return TRUE;
}

static gboolean
update_v1_cpu (CrispCgroups *cg, const char *rel, const Runtime__V1__LinuxContainerResources *r,
               GError **error)
{
  g_autofree char *dir = NULL;
  if ((r->cpu_shares || r->cpu_period || r->cpu_quota) && !cgroup_dir (cg, "cpu", rel, &dir, error))
    return FALSE;
  if (r->cpu_shares && !write_i64 (dir, "cpu.shares", r->cpu_shares, error))
    return FALSE;
  if (r->cpu_period && !write_i64 (dir, "cpu.cfs_period_us", r->cpu_period, error))
    return FALSE;
  return !r->cpu_quota || write_i64 (dir, "cpu.cfs_quota_us", r->cpu_quota, error);
}

/* memory.limit_in_bytes may not exceed memory.memsw.limit_in_bytes: when raising both, the
 * kernel wants memsw first, when lowering, the limit first.  Try one order, then the other. */
static gboolean
update_v1_memory (CrispCgroups *cg, const char *rel, const Runtime__V1__LinuxContainerResources *r,
                  GError **error)
{
  if (!r->memory_limit_in_bytes && !r->memory_swap_limit_in_bytes)
    return TRUE;
  g_autofree char *dir = NULL;
  if (!cgroup_dir (cg, "memory", rel, &dir, error))
    return FALSE;
  g_autofree char *memsw = g_build_filename (dir, "memory.memsw.limit_in_bytes", NULL);
  gboolean has_swap = r->memory_swap_limit_in_bytes && g_file_test (memsw, G_FILE_TEST_EXISTS);
  g_autofree char *limit = g_strdup_printf ("%" G_GINT64_FORMAT, r->memory_limit_in_bytes);
  g_autofree char *swap = g_strdup_printf ("%" G_GINT64_FORMAT, r->memory_swap_limit_in_bytes);
  if (!has_swap)
    return !r->memory_limit_in_bytes || write_or_throw (dir, "memory.limit_in_bytes", limit, error);
  if ((!r->memory_limit_in_bytes || write_file (dir, "memory.limit_in_bytes", limit) == 0)
      && write_file (dir, "memory.memsw.limit_in_bytes", swap) == 0)
    return TRUE;
  return write_or_throw (dir, "memory.memsw.limit_in_bytes", swap, error)
         && (!r->memory_limit_in_bytes
             || write_or_throw (dir, "memory.limit_in_bytes", limit, error));
}

static gboolean
update_cpuset (const char *dir, const Runtime__V1__LinuxContainerResources *r, GError **error)
{
  if (r->cpuset_cpus && r->cpuset_cpus[0]
      && !write_or_throw (dir, "cpuset.cpus", r->cpuset_cpus, error))
    return FALSE;
  return !(r->cpuset_mems && r->cpuset_mems[0])
         || write_or_throw (dir, "cpuset.mems", r->cpuset_mems, error);
}

static gboolean
update_hugetlb (const char *dir, const char *suffix, const Runtime__V1__LinuxContainerResources *r,
                GError **error)
{
  for (gsize i = 0; i < r->n_hugepage_limits; i++)
    {
      g_autofree char *file
          = g_strdup_printf ("hugetlb.%s.%s", r->hugepage_limits[i]->page_size, suffix);
      g_autofree char *v = g_strdup_printf ("%" G_GUINT64_FORMAT, r->hugepage_limits[i]->limit);
      if (!write_or_throw (dir, file, v, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
update_v1 (CrispCgroups *cg, const char *rel, const Runtime__V1__LinuxContainerResources *r,
           GError **error)
{
  if (r->n_unified > 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "resources: unified needs cgroup v2; this host is cgroup %s",
                        crisp_cgroup_mode_to_string (cg->mode));
  if (!update_v1_cpu (cg, rel, r, error) || !update_v1_memory (cg, rel, r, error))
    return FALSE;
  g_autofree char *cpuset = NULL;
  if (((r->cpuset_cpus && r->cpuset_cpus[0]) || (r->cpuset_mems && r->cpuset_mems[0]))
      && (!cgroup_dir (cg, "cpuset", rel, &cpuset, error) || !update_cpuset (cpuset, r, error)))
    return FALSE;
  g_autofree char *hugetlb = NULL;
  if (r->n_hugepage_limits == 0 || !crisp_cgroups_has_controller (cg, "hugetlb"))
    return TRUE; /* not mounted: the spec builder already dropped them with a note */
  return cgroup_dir (cg, "hugetlb", rel, &hugetlb, error)
         && update_hugetlb (hugetlb, "limit_in_bytes", r, error);
}

static gboolean
update_v2 (CrispCgroups *cg, const char *rel, const Runtime__V1__LinuxContainerResources *r,
           GError **error)
{
  g_autofree char *dir = NULL;
  if (!cgroup_dir (cg, NULL, rel, &dir, error))
    return FALSE;
  guint64 weight = crisp_cgroups_shares_to_weight ((guint64) MAX (r->cpu_shares, 0));
  if (weight && !write_i64 (dir, "cpu.weight", (gint64) weight, error))
    return FALSE;
  g_autofree char *cpu_max = crisp_cgroups_cpu_max (r->cpu_quota, r->cpu_period);
  if ((r->cpu_quota || r->cpu_period) && !write_or_throw (dir, "cpu.max", cpu_max, error))
    return FALSE;
  if (r->memory_limit_in_bytes && !write_i64 (dir, "memory.max", r->memory_limit_in_bytes, error))
    return FALSE;
  g_autofree char *swap
      = crisp_cgroups_swap_max (r->memory_limit_in_bytes, r->memory_swap_limit_in_bytes);
  if (swap != NULL && !write_or_throw (dir, "memory.swap.max", swap, error))
    return FALSE;
  if (!update_cpuset (dir, r, error) || !update_hugetlb (dir, "max", r, error))
    return FALSE;
  for (gsize i = 0; i < r->n_unified; i++)
    if (!write_or_throw (dir, r->unified[i]->key, r->unified[i]->value, error))
      return FALSE;
  return TRUE;
}

gboolean
crisp_cgroups_update (CrispCgroups *cg, const char *rel_path,
                      const Runtime__V1__LinuxContainerResources *r, GError **error)
{
  if (r == NULL)
    return TRUE;
  if (!crisp_cgroups_check_rel_path (rel_path, error)
      || !crisp_cgroups_validate_resources (r, error))
    return FALSE;
  if (cg->mode == CRISP_CGROUP_MODE_V2)
    return update_v2 (cg, rel_path, r, error);
  return update_v1 (cg, rel_path, r, error);
}
