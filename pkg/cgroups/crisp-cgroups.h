/* Container cgroups: which hierarchy layout the host uses (v1, hybrid, v2), where a
 * container's cgroup lives for each cgroup driver, its CPU and memory statistics, and
 * UpdateContainerResources written straight into the cgroup files, with the v1 to v2
 * conversions the OCI runtimes use.  No root needed except to write real cgroups. */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "proto/runtime.pb-c.h"

G_BEGIN_DECLS

typedef enum
{
  CRISP_CGROUP_MODE_V1,     /* controllers under <root>/<controller>, no unified hierarchy */
  CRISP_CGROUP_MODE_HYBRID, /* v1 controllers, plus an empty v2 hierarchy at <root>/unified */
  CRISP_CGROUP_MODE_V2,     /* <root> itself is cgroup2 */
} CrispCgroupMode;

typedef enum
{
  CRISP_CGROUP_DRIVER_CGROUPFS,
  CRISP_CGROUP_DRIVER_SYSTEMD,
} CrispCgroupDriver;

/* The host's cgroup layout.  root is normally "/sys/fs/cgroup". */
typedef struct
{
  char *root;
  CrispCgroupMode mode;
} CrispCgroups;

void crisp_cgroups_free (CrispCgroups *cg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispCgroups, crisp_cgroups_free)

/* Detects the layout at root (NULL: /sys/fs/cgroup) by filesystem type: cgroup2 at root is
 * V2; a tmpfs with cgroup2 at root/unified is HYBRID; otherwise V1.  Fails with
 * FAILED_PRECONDITION when root is not a cgroup mount point at all. */
CrispCgroups *crisp_cgroups_new (const char *root, GError **error);

/* The same object with the layout given, for tests and fixture directories. */
CrispCgroups *crisp_cgroups_new_with_mode (const char *root, CrispCgroupMode mode);

const char *crisp_cgroup_mode_to_string (CrispCgroupMode mode);

/* Whether controller (e.g. "hugetlb", "memory") is usable: for V1/HYBRID its hierarchy
 * directory root/<controller> exists; for V2 it is listed in root/cgroup.controllers. */
gboolean crisp_cgroups_has_controller (CrispCgroups *cg, const char *controller);

/* A container's cgroup for driver, parent (the pod's cgroup_parent) and container id:
 * *out_oci_path is the OCI spec's linux.cgroupsPath ("/parent/crisp-<id>" for cgroupfs,
 * "parent.slice:crisp:<id>" for systemd) and *out_rel_path the cgroup's path relative to
 * each hierarchy's root ("parent/crisp-<id>", or the systemd slice expanded:
 * "kubepods.slice/kubepods-besteffort.slice/.../crisp-<id>.scope").  Either out may be NULL.
 * parent is hostile: INVALID_ARGUMENT for ".." components, control characters, over 4096
 * bytes, or for systemd a parent that is not a "*.slice" name.  An empty parent is the root
 * for cgroupfs and "system.slice" (runc's default) for systemd. */
gboolean crisp_cgroups_container_path (CrispCgroupDriver driver, const char *parent, const char *id,
                                       char **out_oci_path, char **out_rel_path, GError **error);

/* "cgroupfs" or "systemd" (the sandbox options' cgroup_driver string); INVALID_ARGUMENT
 * otherwise. */
gboolean crisp_cgroups_driver_from_string (const char *name, CrispCgroupDriver *out_driver,
                                           GError **error);

/* The pod's own cgroup (cgroup_parent) relative to each hierarchy's root, for PodSandboxStats:
 * "kubepods/pod1" for cgroupfs, the expanded slice path for systemd.  Same checks as above. */
gboolean crisp_cgroups_parent_path (CrispCgroupDriver driver, const char *parent,
                                    char **out_rel_path, GError **error);

/* CPU and memory of one cgroup, the figures CRI ContainerStats reports.  has_* say which
 * controllers could be read. */
typedef struct
{
  gint64 timestamp_ns; /* CLOCK_REALTIME when read */
  gboolean has_cpu;
  guint64 cpu_usage_ns; /* cumulative */
  gboolean has_memory;
  guint64 memory_usage;       /* v1 memory.usage_in_bytes, v2 memory.current */
  guint64 memory_working_set; /* usage - inactive_file, floored at 0 */
  guint64 memory_rss;         /* v1 total_rss, v2 anon */
  guint64 memory_limit;       /* 0: unlimited */
  guint64 page_faults;
  guint64 major_page_faults;
} CrispCgroupStats;

/* Reads the stats of the cgroup at rel_path (as from crisp_cgroups_container_path).
 * NOT_FOUND when the cgroup does not exist in any hierarchy (container gone); a
 * controller that is missing only leaves its has_* FALSE. */
gboolean crisp_cgroups_read_stats (CrispCgroups *cg, const char *rel_path,
                                   CrispCgroupStats *out_stats, GError **error);

/* Parses "key value" lines (memory.stat, cpu.stat) for key; FALSE when absent/garbled. */
gboolean crisp_cgroups_parse_stat (const char *text, const char *key, guint64 *out_value);

/* Checks CRI LinuxContainerResources coming from a request: cpu_period 0 or 1000..1000000,
 * cpu_quota 0, -1 or >= 1000, cpu_shares 0 or 2..262144, memory limits >= 0 (swap -1 =
 * unlimited), oom_score_adj -1000..1000, cpuset lists of digits, ',' and '-', hugepage sizes
 * like "2MB", unified keys "<controller>.<file>" with single-line values; bounded counts.
 * INVALID_ARGUMENT naming the field and value.  NULL is valid. */
gboolean crisp_cgroups_validate_resources (const Runtime__V1__LinuxContainerResources *r,
                                           GError **error);
/* The same checks for a message the request names otherwise ("overhead"): errors start with
 * field instead of "resources". */
gboolean crisp_cgroups_validate_field (const char *field,
                                       const Runtime__V1__LinuxContainerResources *r,
                                       GError **error);

/* cgroup v1 to v2 conversions (as runc and crun do them). */
guint64 crisp_cgroups_shares_to_weight (guint64 shares); /* 0 -> 0 (unset), 2..262144 -> 1..10000 */
/* The way back, as cAdvisor reports a v2 cgroup's shares: 0 -> 0, 1..10000 -> 2..262144. */
guint64 crisp_cgroups_weight_to_shares (guint64 weight);
/* cpu.max "quota period" line; quota <= 0 is "max"; period 0 is the default 100000. */
char *crisp_cgroups_cpu_max (gint64 quota, gint64 period);
/* memory.swap.max from CRI's memory+swap figure: "max" when swap is -1, swap - memory (at
 * least 0) when both are set, NULL (leave alone) otherwise. */
char *crisp_cgroups_swap_max (gint64 memory_limit, gint64 memory_swap_limit);

/* UpdateContainerResources: writes r into the cgroup at rel_path.  V1/HYBRID: cpu.shares,
 * cpu.cfs_period_us, cpu.cfs_quota_us, memory.limit_in_bytes (and memory.memsw.limit_in_bytes
 * where swap accounting exists, in the order the kernel accepts), cpuset.cpus/mems,
 * hugetlb.<size>.limit_in_bytes where mounted; unified entries are refused (INVALID_ARGUMENT)
 * since there is no v2 controller.  V2: cpu.weight, cpu.max, memory.max, memory.swap.max,
 * cpuset.cpus/mems, hugetlb.<size>.max, and unified entries as named (file must exist).
 * Zero fields are left alone.  Validates r first.  NOT_FOUND when the cgroup is gone. */
gboolean crisp_cgroups_update (CrispCgroups *cg, const char *rel_path,
                               const Runtime__V1__LinuxContainerResources *r, GError **error);

/* What the cgroup holds after crisp_cgroups_update (base, then update) as one message: update's
 * non-zero fields over base's, unified keys and hugepage sizes merged.  Free it with
 * protobuf_c_message_free_unpacked. */
Runtime__V1__LinuxContainerResources *
crisp_cgroups_resources_merge (const Runtime__V1__LinuxContainerResources *base,
                               const Runtime__V1__LinuxContainerResources *update);

/* This process's cgroup path in the v1 hierarchy holding controller (or the v2 path when
 * controller is NULL), from /proc/self/cgroup; e.g. "/process_api/…" for "memory". */
char *crisp_cgroups_self_path (const char *controller, GError **error);

/* Moves pid into the cgroup rel_path (relative to each hierarchy's root, created if needed)
 * in every mounted hierarchy: how crisp gives its monitors a cgroup of their own. */
gboolean crisp_cgroups_move_pid (CrispCgroups *cg, const char *rel_path, pid_t pid, GError **error);

/* Removes the cgroup rel_path, and any cgroups below it, from every hierarchy where it exists,
 * SIGKILLing processes still inside and waiting up to timeout_ms for them to leave: what
 * destroying a container whose runtime never got to delete it (a create a kill interrupted)
 * needs.  Absent everywhere is success. */
gboolean crisp_cgroups_remove (CrispCgroups *cg, const char *rel_path, int timeout_ms,
                               GError **error);

/* Everything ListPodSandboxMetrics reports of one cgroup, in the kernel's units (ns, bytes,
 * counts; the cpu spec values in the files' own units).  A value is there when its bit
 * (1 << field) is set in `present`: a missing file (controller not mounted, older kernel,
 * no quota set) leaves it clear. */
typedef enum
{
  CRISP_CGROUP_CPU_USAGE_NS,
  CRISP_CGROUP_CPU_USER_NS,
  CRISP_CGROUP_CPU_SYSTEM_NS,
  CRISP_CGROUP_CPU_PERIODS,           /* CFS enforcement periods elapsed */
  CRISP_CGROUP_CPU_THROTTLED_PERIODS, /* ... in which the cgroup was throttled */
  CRISP_CGROUP_CPU_THROTTLED_NS,
  CRISP_CGROUP_CPU_PERIOD_US, /* spec: the CFS period */
  CRISP_CGROUP_CPU_QUOTA_US,  /* spec: only when a quota is set */
  CRISP_CGROUP_CPU_SHARES,    /* spec: v2's cpu.weight converted back to shares */
  CRISP_CGROUP_MEMORY_USAGE,
  CRISP_CGROUP_MEMORY_WORKING_SET,
  CRISP_CGROUP_MEMORY_RSS,
  CRISP_CGROUP_MEMORY_CACHE,
  CRISP_CGROUP_MEMORY_SWAP,
  CRISP_CGROUP_MEMORY_MAPPED_FILE,
  CRISP_CGROUP_MEMORY_MAX_USAGE,
  CRISP_CGROUP_MEMORY_FAILCNT, /* times usage hit the limit */
  CRISP_CGROUP_MEMORY_LIMIT,   /* 0: unlimited */
  CRISP_CGROUP_PGFAULT,        /* the cgroup and its descendants */
  CRISP_CGROUP_PGMAJFAULT,
  CRISP_CGROUP_PGFAULT_OWN, /* the cgroup alone (v1); v2 has only the hierarchical counts */
  CRISP_CGROUP_PGMAJFAULT_OWN,
  CRISP_CGROUP_OOM_KILLS, /* processes the OOM killer ended in the cgroup */
  CRISP_CGROUP_PROCESSES, /* cgroup.procs of the cgroup and its descendants */
  CRISP_CGROUP_THREADS,   /* pids.current, or the threads listed when there is no pids controller */
  CRISP_CGROUP_THREADS_MAX, /* pids.max; 0: unlimited */
  CRISP_CGROUP_N_METRICS,
} CrispCgroupMetric;

typedef struct
{
  gint64 timestamp_ns; /* CLOCK_REALTIME when read */
  guint32 present;     /* bit (1 << CrispCgroupMetric) for each value read */
  guint64 value[CRISP_CGROUP_N_METRICS];
} CrispCgroupMetrics;

/* Reads the metrics of the cgroup at rel_path: the figures crisp_cgroups_read_stats reads,
 * plus CPU time split and throttling, memory details, OOM kills, process and thread counts
 * and the cpu spec.  Same errors as crisp_cgroups_read_stats.  Sub-cgroups below rel_path
 * are walked at most 32 deep and 4096 in all for the process and thread counts. */
gboolean crisp_cgroups_read_metrics (CrispCgroups *cg, const char *rel_path,
                                     CrispCgroupMetrics *out_metrics, GError **error);

/* cpu.max "<quota|max> <period>": *out_quota is -1 for "max"; FALSE when garbled. */
gboolean crisp_cgroups_parse_cpu_max (const char *text, gint64 *out_quota, guint64 *out_period);

G_END_DECLS
