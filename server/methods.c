/* The method table: every RPC of RuntimeService and ImageService, built from the
 * descriptors protoc-c generates, so the table cannot drift from the protocol. */
#include "config.h"

#include "grpc.h"

#include <string.h>

/* protoc-c's service descriptors do not say which methods stream their responses. */
static const char *const server_streaming_methods[] = {
  "StreamPodSandboxes", "StreamContainers",        "StreamContainerStats", "StreamPodSandboxStats",
  "GetContainerEvents", "StreamPodSandboxMetrics", "StreamImages",
};

static void
method_free (gpointer p)
{
  CrispMethod *m = p;
  g_free (m->path);
  g_free (m);
}

static void
add_service (GHashTable *table, const ProtobufCServiceDescriptor *service)
{
  for (unsigned i = 0; i < service->n_methods; i++)
    {
      const ProtobufCMethodDescriptor *d = &service->methods[i];
      CrispMethod *m = g_new0 (CrispMethod, 1);
      m->name = d->name;
      m->service = service->name;
      m->path = g_strdup_printf ("/%s/%s", service->name, d->name);
      m->input = d->input;
      m->output = d->output;
      if (g_hash_table_contains (table, m->name))
        g_error ("method table: '%s' appears in two services", m->name);
      g_hash_table_insert (table, (gpointer) m->name, m);
    }
}

GHashTable *
crisp_methods_new (void)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, method_free);
  add_service (table, &runtime__v1__runtime_service__descriptor);
  add_service (table, &runtime__v1__image_service__descriptor);
  for (gsize i = 0; i < G_N_ELEMENTS (server_streaming_methods); i++)
    {
      CrispMethod *m = g_hash_table_lookup (table, server_streaming_methods[i]);
      if (m == NULL)
        g_error ("method table: streaming method '%s' is not in the protocol",
                 server_streaming_methods[i]);
      m->server_streaming = TRUE;
    }
  return table;
}

const CrispMethod *
crisp_methods_lookup_path (GHashTable *methods, const char *path)
{
  /* "/runtime.v1.RuntimeService/Version": the short name is unique across both services. */
  const char *slash = path ? strrchr (path, '/') : NULL;
  if (slash == NULL)
    return NULL;
  const CrispMethod *m = g_hash_table_lookup (methods, slash + 1);
  return m != NULL && g_str_equal (m->path, path) ? m : NULL;
}

void
crisp_server_register (CrispServer *self, const char *name, CrispHandler handler)
{
  CrispMethod *m = g_hash_table_lookup (self->methods, name);
  if (m == NULL)
    g_error ("method table: no RPC named '%s' in runtime.v1", name);
  if (m->handler != NULL || m->thread_handler != NULL)
    g_error ("method table: RPC '%s' registered twice", name);
  m->handler = handler;
}

void
crisp_server_register_in_thread (CrispServer *self, const char *name, CrispCallThreadFunc fn)
{
  crisp_server_register (self, name, NULL);
  CrispMethod *m = g_hash_table_lookup (self->methods, name);
  m->thread_handler = fn;
}

void
crisp_server_register_quick (CrispServer *self, const char *name, CrispHandler handler)
{
  crisp_server_register (self, name, handler);
  CrispMethod *m = g_hash_table_lookup (self->methods, name);
  m->quick = TRUE;
}

void
crisp_server_add_cleanup (CrispServer *self, GDestroyNotify fn, gpointer data)
{
  gpointer *pair = g_new (gpointer, 2);
  pair[0] = (gpointer) fn;
  pair[1] = data;
  g_ptr_array_add (self->cleanups, pair);
}

gboolean
crisp_server_has_handler (CrispServer *self, const char *name)
{
  CrispMethod *m = g_hash_table_lookup (self->methods, name);
  return m != NULL && (m->handler != NULL || m->thread_handler != NULL);
}
