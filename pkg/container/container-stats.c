/* Resources and statistics: UpdateContainerResources into the container's cgroup, and the
 * CPU, memory and writable-layer figures of ContainerStats and PodSandboxStats. */
#include "config.h"

#include "container-private.h"

#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>

static Runtime__V1__UInt64Value *
u64 (guint64 v)
{
  Runtime__V1__UInt64Value *m = malloc (sizeof *m);
  runtime__v1__uint64_value__init (m);
  m->value = v;
  return m;
}

gboolean
crisp_container_service_update_resources (CrispContainerService *svc,
                                          const Runtime__V1__UpdateContainerResourcesRequest *req,
                                          GError **error)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, req->container_id, error);
  if (c == NULL)
    return FALSE;
  if (req->linux == NULL)
    return TRUE; /* nothing for Linux to change */
  g_mutex_lock (&c->op_lock);
  crisp_container_update (svc, c);
  gboolean ok;
  if (c->state != CRISP_CONTAINER_RUNNING && c->state != CRISP_CONTAINER_CREATED)
    ok = crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                      "container '%s' is not running: its resources cannot change", c->id);
  else
    ok = crisp_cgroups_update (svc->cgroups, c->cgroup_path, req->linux, error);
  if (ok)
    {
      /* Status reports what the cgroup now holds: keep it in the record's config. */
      g_mutex_lock (&svc->lock);
      Runtime__V1__LinuxContainerConfig *linux = c->config->linux;
      if (linux != NULL)
        {
          Runtime__V1__LinuxContainerResources *old = linux->resources;
          linux->resources = old ? crisp_cgroups_resources_merge (old, req->linux)
                                 : crisp_proto_dup (&req->linux->base);
          if (old)
            protobuf_c_message_free_unpacked (&old->base, NULL);
        }
      g_mutex_unlock (&svc->lock);
      ok = crisp_container_save (svc, c, error);
    }
  g_mutex_unlock (&c->op_lock);
  return ok;
}

/* Adds up the blocks and inodes below dfd without following links or leaving its
 * filesystem; depth-bounded so a hostile tree cannot exhaust the stack. */
static void
walk_usage (int dfd, dev_t dev, int depth, guint64 *bytes, guint64 *inodes)
{
  DIR *d = depth < 256 ? fdopendir (dfd) : NULL;
  if (d == NULL)
    {
      close (dfd);
      return;
    }
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      struct stat st;
      if (g_str_equal (de->d_name, ".") || g_str_equal (de->d_name, "..")
          || fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
        continue;
      (*inodes)++;
      *bytes += (guint64) st.st_blocks * 512;
      if (S_ISDIR (st.st_mode))
        {
          int sub = openat (dirfd (d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0)
            walk_usage (sub, dev, depth + 1, bytes, inodes);
        }
    }
  closedir (d);
}

void
crisp_container_layer_usage (CrispContainerService *svc, CrispContainer *c, guint64 *bytes,
                             guint64 *inodes)
{
  g_autofree char *upper = crisp_container_root_path (svc, c->id, "upper");
  *bytes = *inodes = 0;
  int fd = open (upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return;
  if (fstat (fd, &st) < 0)
    {
      close (fd);
      return;
    }
  walk_usage (fd, st.st_dev, 0, bytes, inodes);
}

gboolean
crisp_container_service_layers_usage (CrispContainerService *svc, const char *image_fs,
                                      char **out_mountpoint, guint64 *out_bytes,
                                      guint64 *out_inodes, GError **error)
{
  const char *dir = crisp_store_path (svc->store);
  struct stat mine, theirs;
  if (stat (dir, &mine) < 0)
    return crisp_throw_errno (error, errno, "measuring '%s'", dir);
  guint64 total = 0, count = 0;
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  for (guint i = 0; i < all->len; i++)
    {
      guint64 bytes = 0, inodes = 0;
      crisp_container_layer_usage (svc, all->pdata[i], &bytes, &inodes);
      total += bytes;
      count += inodes;
    }
  /* The kubelet takes two different mountpoints for a split image filesystem (KEP 4191). */
  gboolean same = image_fs && stat (image_fs, &theirs) == 0 && theirs.st_dev == mine.st_dev;
  *out_mountpoint = g_strdup (same ? image_fs : dir);
  *out_bytes = total;
  *out_inodes = count;
  return TRUE;
}

static Runtime__V1__ContainerStats *
build_stats (CrispContainerService *svc, CrispContainer *c)
{
  Runtime__V1__ContainerStats *s = malloc (sizeof *s);
  runtime__v1__container_stats__init (s);
  Runtime__V1__ContainerAttributes *a = malloc (sizeof *a);
  runtime__v1__container_attributes__init (a);
  a->id = strdup (c->id);
  a->metadata = crisp_proto_dup (&c->config->metadata->base);
  a->labels = crisp_proto_copy_map (c->config->n_labels, (void *const *) c->config->labels,
                                    &runtime__v1__container_attributes__labels_entry__descriptor,
                                    &a->n_labels);
  a->annotations = crisp_proto_copy_map (
      c->config->n_annotations, (void *const *) c->config->annotations,
      &runtime__v1__container_attributes__annotations_entry__descriptor, &a->n_annotations);
  s->attributes = a;
  CrispCgroupStats cs = { 0 };
  gint64 now = g_get_real_time () * 1000;
  if (c->state == CRISP_CONTAINER_RUNNING
      && crisp_cgroups_read_stats (svc->cgroups, c->cgroup_path, &cs, NULL))
    {
      if (cs.has_cpu)
        {
          s->cpu = malloc (sizeof *s->cpu);
          runtime__v1__cpu_usage__init (s->cpu);
          s->cpu->timestamp = cs.timestamp_ns;
          s->cpu->usage_core_nano_seconds = u64 (cs.cpu_usage_ns);
        }
      if (cs.has_memory)
        {
          s->memory = malloc (sizeof *s->memory);
          runtime__v1__memory_usage__init (s->memory);
          s->memory->timestamp = cs.timestamp_ns;
          s->memory->working_set_bytes = u64 (cs.memory_working_set);
          s->memory->usage_bytes = u64 (cs.memory_usage);
          s->memory->rss_bytes = u64 (cs.memory_rss);
          s->memory->page_faults = u64 (cs.page_faults);
          s->memory->major_page_faults = u64 (cs.major_page_faults);
          if (cs.memory_limit > 0)
            s->memory->available_bytes = u64 (cs.memory_limit > cs.memory_working_set
                                                  ? cs.memory_limit - cs.memory_working_set
                                                  : 0);
        }
    }
  guint64 bytes = 0, inodes = 0;
  crisp_container_layer_usage (svc, c, &bytes, &inodes);
  s->writable_layer = malloc (sizeof *s->writable_layer);
  runtime__v1__filesystem_usage__init (s->writable_layer);
  s->writable_layer->timestamp = now;
  s->writable_layer->fs_id = malloc (sizeof *s->writable_layer->fs_id);
  runtime__v1__filesystem_identifier__init (s->writable_layer->fs_id);
  s->writable_layer->fs_id->mountpoint = strdup (svc->config->root);
  s->writable_layer->used_bytes = u64 (bytes);
  s->writable_layer->inodes_used = u64 (inodes);
  return s;
}

Runtime__V1__ContainerStatsResponse *
crisp_container_service_stats (CrispContainerService *svc, const char *id, GError **error)
{
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, error);
  if (c == NULL)
    return NULL;
  crisp_container_update (svc, c);
  Runtime__V1__ContainerStatsResponse *resp = malloc (sizeof *resp);
  runtime__v1__container_stats_response__init (resp);
  resp->stats = build_stats (svc, c);
  return resp;
}

static gboolean
labels_match (const Runtime__V1__ContainerConfig *cfg, size_t n, void *const *selector)
{
  for (size_t i = 0; i < n; i++)
    {
      const CrispProtoStringEntry *want = selector[i];
      gboolean found = FALSE;
      for (size_t j = 0; !found && j < cfg->n_labels; j++)
        found = g_strcmp0 (cfg->labels[j]->key, want->key) == 0
                && g_strcmp0 (cfg->labels[j]->value, want->value) == 0;
      if (!found)
        return FALSE;
    }
  return TRUE;
}

/* Running containers only: an exited one has no cgroup left to measure. */
static GPtrArray *
running_matching (CrispContainerService *svc, const char *id, const char *pod_id, size_t n,
                  void *const *selector)
{
  g_autoptr (GPtrArray) all = crisp_container_snapshot (svc, NULL);
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_container_unref);
  for (guint i = 0; i < all->len; i++)
    {
      CrispContainer *c = all->pdata[i];
      crisp_container_update (svc, c);
      if (c->state == CRISP_CONTAINER_RUNNING && (!id || !*id || g_str_has_prefix (c->id, id))
          && (!pod_id || !*pod_id || g_str_has_prefix (c->pod_id, pod_id))
          && labels_match (c->config, n, selector))
        g_ptr_array_add (out, crisp_container_ref (c));
    }
  return out;
}

Runtime__V1__ListContainerStatsResponse *
crisp_container_service_list_stats (CrispContainerService *svc,
                                    const Runtime__V1__ContainerStatsFilter *f)
{
  g_autoptr (GPtrArray) list = running_matching (
      svc, f ? f->id : NULL, f ? f->pod_sandbox_id : NULL, f ? f->n_label_selector : 0,
      f ? (void *const *) f->label_selector : NULL);
  Runtime__V1__ListContainerStatsResponse *resp = malloc (sizeof *resp);
  runtime__v1__list_container_stats_response__init (resp);
  resp->n_stats = list->len;
  resp->stats = malloc ((list->len ? list->len : 1) * sizeof (void *));
  for (guint i = 0; i < list->len; i++)
    resp->stats[i] = build_stats (svc, list->pdata[i]);
  return resp;
}

/* A pod's figures are the sum of its running containers'. */
static Runtime__V1__PodSandboxStats *
build_pod_stats (CrispContainerService *svc, CrispPod *pod)
{
  Runtime__V1__PodSandboxStats *s = malloc (sizeof *s);
  runtime__v1__pod_sandbox_stats__init (s);
  s->attributes = malloc (sizeof *s->attributes);
  runtime__v1__pod_sandbox_attributes__init (s->attributes);
  s->attributes->id = strdup (pod->id);
  s->attributes->metadata = crisp_proto_dup (&pod->config->metadata->base);
  s->attributes->labels = crisp_proto_copy_map (
      pod->config->n_labels, (void *const *) pod->config->labels,
      &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor, &s->attributes->n_labels);
  s->attributes->annotations
      = crisp_proto_copy_map (pod->config->n_annotations, (void *const *) pod->config->annotations,
                              &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor,
                              &s->attributes->n_annotations);
  g_autoptr (GPtrArray) list = running_matching (svc, NULL, pod->id, 0, NULL);
  Runtime__V1__LinuxPodSandboxStats *l = malloc (sizeof *l);
  runtime__v1__linux_pod_sandbox_stats__init (l);
  s->linux = l;
  l->n_containers = list->len;
  l->containers = malloc ((list->len ? list->len : 1) * sizeof (void *));
  guint64 cpu = 0, ws = 0, usage = 0;
  gint64 now = g_get_real_time () * 1000;
  for (guint i = 0; i < list->len; i++)
    {
      Runtime__V1__ContainerStats *cs = build_stats (svc, list->pdata[i]);
      l->containers[i] = cs;
      cpu += cs->cpu && cs->cpu->usage_core_nano_seconds ? cs->cpu->usage_core_nano_seconds->value
                                                         : 0;
      ws += cs->memory && cs->memory->working_set_bytes ? cs->memory->working_set_bytes->value : 0;
      usage += cs->memory && cs->memory->usage_bytes ? cs->memory->usage_bytes->value : 0;
    }
  /* The pod's own cgroup (kubelet makes it) counts everything in the pod; without one, the
   * sum of its containers is the best figure there is. */
  CrispCgroupStats ps = { 0 };
  g_autofree char *rel = NULL;
  if (pod->cgroup_parent && *pod->cgroup_parent
      && crisp_cgroups_parent_path (svc->cgroup_driver, pod->cgroup_parent, &rel, NULL)
      && crisp_cgroups_read_stats (svc->cgroups, rel, &ps, NULL))
    {
      now = ps.timestamp_ns;
      if (ps.has_cpu)
        cpu = ps.cpu_usage_ns;
      if (ps.has_memory)
        {
          ws = ps.memory_working_set;
          usage = ps.memory_usage;
        }
    }
  l->cpu = malloc (sizeof *l->cpu);
  runtime__v1__cpu_usage__init (l->cpu);
  l->cpu->timestamp = now;
  l->cpu->usage_core_nano_seconds = u64 (cpu);
  l->memory = malloc (sizeof *l->memory);
  runtime__v1__memory_usage__init (l->memory);
  l->memory->timestamp = now;
  l->memory->working_set_bytes = u64 (ws);
  l->memory->usage_bytes = u64 (usage);
  return s;
}

Runtime__V1__PodSandboxStatsResponse *
crisp_container_service_pod_stats (CrispContainerService *svc, const char *pod_id, GError **error)
{
  g_autoptr (CrispPod) pod = crisp_pod_service_lookup (svc->pods, pod_id, error);
  if (pod == NULL)
    return NULL;
  Runtime__V1__PodSandboxStatsResponse *resp = malloc (sizeof *resp);
  runtime__v1__pod_sandbox_stats_response__init (resp);
  resp->stats = build_pod_stats (svc, pod);
  return resp;
}

Runtime__V1__ListPodSandboxStatsResponse *
crisp_container_service_list_pod_stats (CrispContainerService *svc,
                                        const Runtime__V1__PodSandboxStatsFilter *f)
{
  Runtime__V1__PodSandboxFilter pf = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
  if (f != NULL)
    {
      pf.id = f->id;
      pf.n_label_selector = f->n_label_selector;
      pf.label_selector = (Runtime__V1__PodSandboxFilter__LabelSelectorEntry **) f->label_selector;
    }
  Runtime__V1__ListPodSandboxResponse *pods = crisp_pod_service_list (svc->pods, &pf);
  Runtime__V1__ListPodSandboxStatsResponse *resp = malloc (sizeof *resp);
  runtime__v1__list_pod_sandbox_stats_response__init (resp);
  resp->stats = malloc ((pods->n_items ? pods->n_items : 1) * sizeof (void *));
  for (size_t i = 0; i < pods->n_items; i++)
    {
      g_autoptr (CrispPod) pod = crisp_pod_service_lookup (svc->pods, pods->items[i]->id, NULL);
      if (pod != NULL)
        resp->stats[resp->n_stats++] = build_pod_stats (svc, pod);
    }
  protobuf_c_message_free_unpacked (&pods->base, NULL);
  return resp;
}
