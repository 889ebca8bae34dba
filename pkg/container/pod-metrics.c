/* ListPodSandboxMetrics: for each ready pod, its own cgroup's metrics and the counters of
 * its network namespace; for each running container, its cgroup's metrics and its writable
 * layer.  Names, units and labels are cAdvisor's, so a kubelet serves them on
 * /metrics/cadvisor as it served cAdvisor's.  One table describes the metrics, another says
 * which cgroup value feeds which. */
#include "config.h"

#include "pod-metrics.h"

#include "container-private.h"
#include "crisp-base.h"
#include "pkg/sandbox/net-stats.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#define NS_PER_S G_GUINT64_CONSTANT (1000000000)

typedef enum
{
  M_CPU_USAGE,
  M_CPU_USER,
  M_CPU_SYSTEM,
  M_CPU_PERIODS,
  M_CPU_THROTTLED_PERIODS,
  M_CPU_THROTTLED_SECONDS,
  M_MEM_USAGE,
  M_MEM_WORKING_SET,
  M_MEM_RSS,
  M_MEM_CACHE,
  M_MEM_SWAP,
  M_MEM_MAPPED_FILE,
  M_MEM_MAX_USAGE,
  M_MEM_FAILCNT,
  M_MEM_FAILURES,
  M_OOM_EVENTS,
  M_NET_RX_BYTES,
  M_NET_RX_PACKETS,
  M_NET_RX_ERRORS,
  M_NET_RX_DROPPED,
  M_NET_TX_BYTES,
  M_NET_TX_PACKETS,
  M_NET_TX_ERRORS,
  M_NET_TX_DROPPED,
  M_FS_USAGE,
  M_FS_LIMIT,
  M_FS_INODES_TOTAL,
  M_FS_INODES_FREE,
  M_PROCESSES,
  M_THREADS,
  M_THREADS_MAX,
  M_SPEC_MEMORY_LIMIT,
  M_SPEC_CPU_PERIOD,
  M_SPEC_CPU_QUOTA,
  M_SPEC_CPU_SHARES,
  M_START_TIME,
  M_LAST_SEEN,
  N_METRICS
} MetricId;

/* Every metric has cAdvisor's "id", "name" and "image" labels first (a kubelet adds
 * "namespace", "pod" and "container" itself), then up to MAX_EXTRA of its own. */
#define BASE_LABELS 3
#define MAX_EXTRA 2
static const char *const base_label_keys[BASE_LABELS] = { "id", "name", "image" };

typedef struct
{
  const char *name;
  const char *help;
  gboolean counter;
  const char *extra[MAX_EXTRA];
} Desc;

/* CRI metric values are integers: the *_seconds metrics count whole seconds, as CRI-O's do
 * (ContainerStats has the nanoseconds). */
static const Desc descs[N_METRICS] = {
  [M_CPU_USAGE] = { "container_cpu_usage_seconds_total",
                    "Cumulative CPU time consumed, in whole seconds.",
                    TRUE,
                    { "cpu" } },
  [M_CPU_USER] = { "container_cpu_user_seconds_total",
                   "Cumulative user CPU time consumed, in whole seconds.", TRUE },
  [M_CPU_SYSTEM] = { "container_cpu_system_seconds_total",
                     "Cumulative system CPU time consumed, in whole seconds.", TRUE },
  [M_CPU_PERIODS]
  = { "container_cpu_cfs_periods_total", "Number of elapsed CFS enforcement periods.", TRUE },
  [M_CPU_THROTTLED_PERIODS] = { "container_cpu_cfs_throttled_periods_total",
                                "Number of CFS periods in which the cgroup was throttled.", TRUE },
  [M_CPU_THROTTLED_SECONDS] = { "container_cpu_cfs_throttled_seconds_total",
                                "Total time the cgroup was throttled, in whole seconds.", TRUE },
  [M_MEM_USAGE]
  = { "container_memory_usage_bytes", "Current memory usage in bytes, page cache included." },
  [M_MEM_WORKING_SET] = { "container_memory_working_set_bytes",
                          "Current working set in bytes: usage minus inactive file cache." },
  [M_MEM_RSS] = { "container_memory_rss", "Size of anonymous memory (RSS) in bytes." },
  [M_MEM_CACHE] = { "container_memory_cache", "Size of page cache memory in bytes." },
  [M_MEM_SWAP] = { "container_memory_swap", "Swap usage in bytes." },
  [M_MEM_MAPPED_FILE] = { "container_memory_mapped_file", "Size of memory-mapped files in bytes." },
  [M_MEM_MAX_USAGE] = { "container_memory_max_usage_bytes", "Highest memory usage recorded." },
  [M_MEM_FAILCNT]
  = { "container_memory_failcnt", "Number of times memory usage hit the limit.", TRUE },
  [M_MEM_FAILURES] = { "container_memory_failures_total",
                       "Cumulative count of page faults, by type and scope.",
                       TRUE,
                       { "failure_type", "scope" } },
  [M_OOM_EVENTS] = { "container_oom_events_total",
                     "Number of processes the OOM killer ended in the cgroup.", TRUE },
  [M_NET_RX_BYTES] = { "container_network_receive_bytes_total",
                       "Cumulative count of bytes received.",
                       TRUE,
                       { "interface" } },
  [M_NET_RX_PACKETS] = { "container_network_receive_packets_total",
                         "Cumulative count of packets received.",
                         TRUE,
                         { "interface" } },
  [M_NET_RX_ERRORS] = { "container_network_receive_errors_total",
                        "Cumulative count of errors while receiving.",
                        TRUE,
                        { "interface" } },
  [M_NET_RX_DROPPED] = { "container_network_receive_packets_dropped_total",
                         "Cumulative count of packets dropped while receiving.",
                         TRUE,
                         { "interface" } },
  [M_NET_TX_BYTES] = { "container_network_transmit_bytes_total",
                       "Cumulative count of bytes transmitted.",
                       TRUE,
                       { "interface" } },
  [M_NET_TX_PACKETS] = { "container_network_transmit_packets_total",
                         "Cumulative count of packets transmitted.",
                         TRUE,
                         { "interface" } },
  [M_NET_TX_ERRORS] = { "container_network_transmit_errors_total",
                        "Cumulative count of errors while transmitting.",
                        TRUE,
                        { "interface" } },
  [M_NET_TX_DROPPED] = { "container_network_transmit_packets_dropped_total",
                         "Cumulative count of packets dropped while transmitting.",
                         TRUE,
                         { "interface" } },
  [M_FS_USAGE] = { "container_fs_usage_bytes",
                   "Bytes used by the container's writable layer.",
                   FALSE,
                   { "device" } },
  [M_FS_LIMIT] = { "container_fs_limit_bytes",
                   "Size of the filesystem holding the writable layer, in bytes.",
                   FALSE,
                   { "device" } },
  [M_FS_INODES_TOTAL] = { "container_fs_inodes_total",
                          "Inodes of the filesystem holding the writable layer.",
                          FALSE,
                          { "device" } },
  [M_FS_INODES_FREE] = { "container_fs_inodes_free",
                         "Free inodes of the filesystem holding the writable layer.",
                         FALSE,
                         { "device" } },
  [M_PROCESSES] = { "container_processes", "Number of processes in the cgroup." },
  [M_THREADS] = { "container_threads", "Number of threads in the cgroup." },
  [M_THREADS_MAX]
  = { "container_threads_max", "Maximum number of threads allowed in the cgroup; 0: unlimited." },
  [M_SPEC_MEMORY_LIMIT]
  = { "container_spec_memory_limit_bytes", "Memory limit in bytes; 0: unlimited." },
  [M_SPEC_CPU_PERIOD] = { "container_spec_cpu_period", "CFS period, in microseconds." },
  [M_SPEC_CPU_QUOTA]
  = { "container_spec_cpu_quota", "CFS quota per period, in microseconds (absent: unlimited)." },
  [M_SPEC_CPU_SHARES] = { "container_spec_cpu_shares", "CPU shares." },
  [M_START_TIME]
  = { "container_start_time_seconds", "Start time since the Unix epoch, in whole seconds." },
  [M_LAST_SEEN] = { "container_last_seen", "When the metrics were read, in Unix seconds." },
};

/* The cgroup value behind each metric, divided by divisor; extra: its own label values. */
typedef struct
{
  MetricId metric;
  CrispCgroupMetric field;
  guint64 divisor;
  const char *extra[MAX_EXTRA];
} CgroupRow;

static const CgroupRow cgroup_rows[] = {
  { M_CPU_USAGE, CRISP_CGROUP_CPU_USAGE_NS, NS_PER_S, { "total" } },
  { M_CPU_USER, CRISP_CGROUP_CPU_USER_NS, NS_PER_S },
  { M_CPU_SYSTEM, CRISP_CGROUP_CPU_SYSTEM_NS, NS_PER_S },
  { M_CPU_PERIODS, CRISP_CGROUP_CPU_PERIODS, 1 },
  { M_CPU_THROTTLED_PERIODS, CRISP_CGROUP_CPU_THROTTLED_PERIODS, 1 },
  { M_CPU_THROTTLED_SECONDS, CRISP_CGROUP_CPU_THROTTLED_NS, NS_PER_S },
  { M_MEM_USAGE, CRISP_CGROUP_MEMORY_USAGE, 1 },
  { M_MEM_WORKING_SET, CRISP_CGROUP_MEMORY_WORKING_SET, 1 },
  { M_MEM_RSS, CRISP_CGROUP_MEMORY_RSS, 1 },
  { M_MEM_CACHE, CRISP_CGROUP_MEMORY_CACHE, 1 },
  { M_MEM_SWAP, CRISP_CGROUP_MEMORY_SWAP, 1 },
  { M_MEM_MAPPED_FILE, CRISP_CGROUP_MEMORY_MAPPED_FILE, 1 },
  { M_MEM_MAX_USAGE, CRISP_CGROUP_MEMORY_MAX_USAGE, 1 },
  { M_MEM_FAILCNT, CRISP_CGROUP_MEMORY_FAILCNT, 1 },
  { M_MEM_FAILURES, CRISP_CGROUP_PGFAULT_OWN, 1, { "pgfault", "container" } },
  { M_MEM_FAILURES, CRISP_CGROUP_PGFAULT, 1, { "pgfault", "hierarchy" } },
  { M_MEM_FAILURES, CRISP_CGROUP_PGMAJFAULT_OWN, 1, { "pgmajfault", "container" } },
  { M_MEM_FAILURES, CRISP_CGROUP_PGMAJFAULT, 1, { "pgmajfault", "hierarchy" } },
  { M_OOM_EVENTS, CRISP_CGROUP_OOM_KILLS, 1 },
  { M_PROCESSES, CRISP_CGROUP_PROCESSES, 1 },
  { M_THREADS, CRISP_CGROUP_THREADS, 1 },
  { M_THREADS_MAX, CRISP_CGROUP_THREADS_MAX, 1 },
  { M_SPEC_MEMORY_LIMIT, CRISP_CGROUP_MEMORY_LIMIT, 1 },
  { M_SPEC_CPU_PERIOD, CRISP_CGROUP_CPU_PERIOD_US, 1 },
  { M_SPEC_CPU_QUOTA, CRISP_CGROUP_CPU_QUOTA_US, 1 },
  { M_SPEC_CPU_SHARES, CRISP_CGROUP_CPU_SHARES, 1 },
};

static const struct
{
  MetricId metric;
  gsize offset;
} net_rows[] = {
  { M_NET_RX_BYTES, G_STRUCT_OFFSET (CrispNetDevStats, rx_bytes) },
  { M_NET_RX_PACKETS, G_STRUCT_OFFSET (CrispNetDevStats, rx_packets) },
  { M_NET_RX_ERRORS, G_STRUCT_OFFSET (CrispNetDevStats, rx_errors) },
  { M_NET_RX_DROPPED, G_STRUCT_OFFSET (CrispNetDevStats, rx_dropped) },
  { M_NET_TX_BYTES, G_STRUCT_OFFSET (CrispNetDevStats, tx_bytes) },
  { M_NET_TX_PACKETS, G_STRUCT_OFFSET (CrispNetDevStats, tx_packets) },
  { M_NET_TX_ERRORS, G_STRUCT_OFFSET (CrispNetDevStats, tx_errors) },
  { M_NET_TX_DROPPED, G_STRUCT_OFFSET (CrispNetDevStats, tx_dropped) },
};

/* The filesystem of the writable layers, looked at once per call. */
typedef struct
{
  char *device; /* its mount source, as cAdvisor's "device" label ("" when unknown) */
  gboolean has_statvfs;
  guint64 size, inodes, inodes_free;
} FsInfo;

/* Where the metrics of one pod or container go, with its base label values. */
typedef struct
{
  GPtrArray *metrics; /* Runtime__V1__Metric *, malloc'd */
  const char *base[BASE_LABELS];
} Sink;

static gsize
n_extra (const Desc *d)
{
  gsize n = 0;
  while (n < MAX_EXTRA && d->extra[n] != NULL)
    n++;
  return n;
}

/* Label values travel as proto3 strings, which a Go client refuses unless they are UTF-8. */
static char *
label_dup (const char *s)
{
  if (s == NULL)
    return strdup ("");
  if (g_utf8_validate (s, -1, NULL))
    return strdup (s);
  g_autofree char *valid = g_utf8_make_valid (s, -1);
  return strdup (valid);
}

static char **
label_array (const char *const *first, const char *const *extra, gsize n)
{
  char **out = malloc (n * sizeof (char *));
  for (gsize i = 0; i < n; i++)
    out[i] = label_dup (i < BASE_LABELS ? first[i] : extra[i - BASE_LABELS]);
  return out;
}

static void
emit (Sink *s, MetricId id, guint64 value, const char *const *extra)
{
  const Desc *d = &descs[id];
  Runtime__V1__Metric *m = malloc (sizeof *m);
  runtime__v1__metric__init (m);
  m->name = strdup (d->name);
  m->timestamp = 0; /* gathered live: the protocol asks for 0 then */
  m->metric_type = d->counter ? RUNTIME__V1__METRIC_TYPE__COUNTER : RUNTIME__V1__METRIC_TYPE__GAUGE;
  m->n_label_values = BASE_LABELS + n_extra (d);
  m->label_values = label_array (s->base, extra, m->n_label_values);
  m->value = malloc (sizeof *m->value);
  runtime__v1__uint64_value__init (m->value);
  m->value->value = value;
  g_ptr_array_add (s->metrics, m);
}

static void
emit_cgroup (Sink *s, const CrispCgroupMetrics *cm)
{
  for (gsize i = 0; i < G_N_ELEMENTS (cgroup_rows); i++)
    {
      const CgroupRow *r = &cgroup_rows[i];
      if (cm->present & (1u << r->field))
        emit (s, r->metric, cm->value[r->field] / r->divisor, r->extra);
    }
}

static void
emit_network (Sink *s, CrispPod *pod)
{
  _cleanup_close_ int fd = crisp_pod_open_net_ns (pod);
  if (fd < 0)
    {
      if (fd != -ENOENT) /* ENOENT: the host's network, which is not the pod's to report */
        g_debug ("pod '%s': its network namespace: %s", pod->id, g_strerror (-fd));
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) devs = crisp_net_dev_read_in (fd, &error);
  if (devs == NULL)
    {
      g_debug ("pod '%s': %s", pod->id, error->message);
      return;
    }
  for (guint i = 0; i < devs->len; i++)
    {
      const CrispNetDevStats *dev = &g_array_index (devs, CrispNetDevStats, i);
      const char *extra[MAX_EXTRA] = { dev->name };
      for (gsize j = 0; j < G_N_ELEMENTS (net_rows); j++)
        emit (s, net_rows[j].metric, G_STRUCT_MEMBER (guint64, (gpointer) dev, net_rows[j].offset),
              extra);
    }
}

static void
emit_times (Sink *s, gint64 started_ns)
{
  if (started_ns > 0)
    emit (s, M_START_TIME, (guint64) started_ns / NS_PER_S, NULL);
  emit (s, M_LAST_SEEN, (guint64) (g_get_real_time () / G_USEC_PER_SEC), NULL);
}

static void
emit_fs (Sink *s, CrispContainerService *svc, CrispContainer *c, const FsInfo *fs)
{
  guint64 bytes, inodes;
  crisp_container_layer_usage (svc, c, &bytes, &inodes);
  const char *extra[MAX_EXTRA] = { fs->device };
  emit (s, M_FS_USAGE, bytes, extra);
  if (!fs->has_statvfs)
    return;
  emit (s, M_FS_LIMIT, fs->size, extra);
  emit (s, M_FS_INODES_TOTAL, fs->inodes, extra);
  emit (s, M_FS_INODES_FREE, fs->inodes_free, extra);
}

/* A GPtrArray's elements as a malloc'd array for a repeated field; frees the GPtrArray. */
static void *
steal_array (GPtrArray *a, size_t *out_n)
{
  *out_n = a->len;
  void **out = a->len ? malloc (a->len * sizeof (void *)) : NULL;
  if (a->len)
    memcpy (out, a->pdata, a->len * sizeof (void *));
  g_ptr_array_free (a, TRUE);
  return out;
}

/* cAdvisor's "name" of a Kubernetes container, the one dockershim gave it. */
static char *
container_label_name (CrispPod *pod, CrispContainer *c)
{
  const Runtime__V1__PodSandboxMetadata *md = pod->config->metadata;
  return g_strdup_printf ("k8s_%s_%s_%s_%s_%u", c->name, md->name, md->namespace_, md->uid,
                          c->attempt);
}

/* The image as the user named it (a kubelet since 1.28 says so beside the id it resolved), as
 * the request named it, or the image crisp resolved. */
static const char *
container_label_image (CrispContainer *c)
{
  const Runtime__V1__ImageSpec *spec = c->config->image;
  if (spec != NULL && spec->user_specified_image != NULL && *spec->user_specified_image)
    return spec->user_specified_image;
  if (spec != NULL && spec->image != NULL && *spec->image)
    return spec->image;
  return c->image_ref;
}

static Runtime__V1__ContainerMetrics *
container_metrics (CrispContainerService *svc, CrispPod *pod, CrispContainer *c, const FsInfo *fs)
{
  crisp_container_refresh (svc, c);
  g_mutex_lock (&svc->lock);
  gboolean running = c->state == CRISP_CONTAINER_RUNNING;
  gint64 started_at = c->started_at;
  g_mutex_unlock (&svc->lock);
  CrispCgroupMetrics cm;
  if (!running || !crisp_cgroups_read_metrics (svc->cgroups, c->cgroup_path, &cm, NULL))
    return NULL; /* exited, or exiting: nothing left to measure */
  g_autofree char *name = container_label_name (pod, c);
  Sink s = { g_ptr_array_new (), { c->id, name, container_label_image (c) } };
  emit_cgroup (&s, &cm);
  emit_fs (&s, svc, c, fs);
  emit_times (&s, started_at);
  Runtime__V1__ContainerMetrics *out = malloc (sizeof *out);
  runtime__v1__container_metrics__init (out);
  out->container_id = strdup (c->id);
  out->metrics = steal_array (s.metrics, &out->n_metrics);
  return out;
}

/* The pod's own cgroup (kubelet's pod cgroup, its cgroup_parent) when it has one. */
static void
emit_pod_cgroup (Sink *s, CrispContainerService *svc, CrispPod *pod)
{
  g_autofree char *rel = NULL;
  CrispCgroupMetrics cm;
  if (pod->cgroup_parent != NULL && *pod->cgroup_parent
      && crisp_cgroups_parent_path (svc->cgroup_driver, pod->cgroup_parent, &rel, NULL) && *rel
      && crisp_cgroups_read_metrics (svc->cgroups, rel, &cm, NULL))
    emit_cgroup (s, &cm);
}

static Runtime__V1__PodSandboxMetrics *
pod_metrics (CrispContainerService *svc, CrispPod *pod, const FsInfo *fs)
{
  Runtime__V1__PodSandboxMetrics *pm = malloc (sizeof *pm);
  runtime__v1__pod_sandbox_metrics__init (pm);
  pm->pod_sandbox_id = strdup (pod->id);
  /* the pod's own series are the "POD" container's, without an image, as CRI-O has them */
  Sink s = { g_ptr_array_new (), { pod->id, "POD", "" } };
  emit_pod_cgroup (&s, svc, pod);
  emit_network (&s, pod);
  emit_times (&s, pod->created_at);
  pm->metrics = steal_array (s.metrics, &pm->n_metrics);
  g_autoptr (GPtrArray) containers = crisp_container_snapshot (svc, pod->id);
  GPtrArray *cms = g_ptr_array_new ();
  for (guint i = 0; i < containers->len; i++)
    {
      Runtime__V1__ContainerMetrics *cm = container_metrics (svc, pod, containers->pdata[i], fs);
      if (cm != NULL)
        g_ptr_array_add (cms, cm);
    }
  pm->container_metrics = steal_array (cms, &pm->n_container_metrics);
  return pm;
}

/* The source of the mount whose device is dev, from /proc/self/mountinfo:
 * "36 35 98:0 /root /mnt opts [optional fields] - fstype source superopts". */
static char *
mount_source (dev_t dev)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents ("/proc/self/mountinfo", &text, NULL, NULL))
    return NULL;
  g_autofree char *want = g_strdup_printf ("%u:%u", major (dev), minor (dev));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l != NULL; l++)
    {
      g_auto (GStrv) f = g_strsplit (*l, " ", 4);
      const char *sep = strstr (*l, " - ");
      if (g_strv_length (f) < 4 || !g_str_equal (f[2], want) || sep == NULL)
        continue;
      g_auto (GStrv) tail = g_strsplit (sep + 3, " ", 3);
      if (g_strv_length (tail) >= 2)
        return g_strdup (tail[1]);
    }
  return NULL;
}

static void
fs_info_init (FsInfo *fs, const char *root)
{
  struct stat st;
  struct statvfs sv;
  memset (fs, 0, sizeof *fs);
  fs->device = stat (root, &st) == 0 ? mount_source (st.st_dev) : NULL;
  if (fs->device == NULL)
    fs->device = g_strdup ("");
  if (statvfs (root, &sv) != 0)
    return;
  fs->has_statvfs = TRUE;
  fs->size = (guint64) sv.f_blocks * sv.f_frsize;
  fs->inodes = sv.f_files;
  fs->inodes_free = sv.f_ffree;
}

static void
free_message (gpointer m)
{
  protobuf_c_message_free_unpacked (m, NULL);
}

GPtrArray *
crisp_pod_metrics_collect (CrispContainerService *svc, const Runtime__V1__PodSandboxFilter *filter)
{
  Runtime__V1__PodSandboxStateValue ready = RUNTIME__V1__POD_SANDBOX_STATE_VALUE__INIT;
  ready.state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
  Runtime__V1__PodSandboxFilter f = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
  if (filter != NULL)
    f = *filter;
  f.state = &ready;
  Runtime__V1__ListPodSandboxResponse *pods = crisp_pod_service_list (svc->pods, &f);
  GPtrArray *out = g_ptr_array_new_with_free_func (free_message);
  FsInfo fs;
  fs_info_init (&fs, svc->config->root);
  for (size_t i = 0; i < pods->n_items; i++)
    {
      g_autoptr (CrispPod) pod = crisp_pod_service_lookup (svc->pods, pods->items[i]->id, NULL);
      if (pod != NULL)
        g_ptr_array_add (out, pod_metrics (svc, pod, &fs));
    }
  g_free (fs.device);
  protobuf_c_message_free_unpacked (&pods->base, NULL);
  return out;
}

static Runtime__V1__MetricDescriptor *
descriptor (const Desc *d)
{
  Runtime__V1__MetricDescriptor *m = malloc (sizeof *m);
  runtime__v1__metric_descriptor__init (m);
  m->name = strdup (d->name);
  m->help = strdup (d->help);
  m->n_label_keys = BASE_LABELS + n_extra (d);
  m->label_keys = label_array (base_label_keys, d->extra, m->n_label_keys);
  return m;
}

Runtime__V1__ListMetricDescriptorsResponse *
crisp_pod_metrics_descriptors (void)
{
  Runtime__V1__ListMetricDescriptorsResponse *resp = malloc (sizeof *resp);
  runtime__v1__list_metric_descriptors_response__init (resp);
  resp->n_descriptors = N_METRICS;
  resp->descriptors = malloc (N_METRICS * sizeof (void *));
  for (gsize i = 0; i < N_METRICS; i++)
    resp->descriptors[i] = descriptor (&descs[i]);
  return resp;
}
