/* Internals shared by the files of pkg/storage. */
#pragma once

#include "storage.h"

#include <ostree.h>

#define CRISP_LAYER_REF_PREFIX "layer/"

struct _CrispStorage
{
  char *root;
  int root_fd;
  int layers_fd; /* layers/<hex>: metadata trees */
  int tmp_fd;    /* tmp/: staging, downloads */
  OstreeRepo *repo;
  char *objects_path; /* repo/objects, the overlay data layer */
  GMutex repo_lock;   /* one ostree transaction or prune at a time */
  GMutex pin_lock;
  GHashTable *pins;    /* diff hex -> count */
  GThreadPool *reaper; /* removes tmp/<name> trees a prune moved there */
  GMutex reap_lock;
  GCond reaped;
  guint reaping; /* trees queued or being removed */
  guint64 gone_seq;
};

/* "sha256:<hex>" -> "<hex>" (NULL if malformed). */
const char *crisp_storage_diff_hex (const char *diff_id);

/* Removes `name` under `dfd` recursively, never following symlinks. */
int crisp_storage_rm_rf_at (int dfd, const char *name);
