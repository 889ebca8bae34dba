/* Internals of the image service shared by image-service.c and image-pull.c. */
#pragma once

#include "image-service.h"
#include "registry.h"
#include "pkg/storage/storage.h"

struct _CrispImageService
{
  GMutex lock; /* records, inflight, in_use; taken after the storage's repo lock */
  GCond cond;  /* an inflight pull finished */
  CrispStorage *storage;
  CrispImageStore *records;
  GHashTable *inflight;        /* reference string -> Flight */
  GHashTable *inflight_layers; /* diff IDs some pull is downloading */
  char *registries_dir;
  int max_downloads;
  CrispImageInUseFunc in_use;
  gpointer in_use_data;
  guint64 pulled_bytes; /* layer bytes downloaded since start (atomic) */
};

gboolean crisp_image_service_gc (CrispImageService *svc, gboolean every_object, GError **error);
