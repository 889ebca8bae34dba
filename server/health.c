/* The verbose Status entries on crisp's own health: each container monitor (alive, resident
 * memory) and the ring of recent failures. */
#include "config.h"

#include "health.h"

#include "recent-errors.h"
#include "pkg/container/container.h"

#include <json-glib/json-glib.h>

static JsonNode *
monitor_node (const CrispMonitorHealth *h)
{
  g_autoptr (JsonObject) o = json_object_new ();
  json_object_set_string_member (o, "containerId", h->container_id);
  json_object_set_int_member (o, "pid", h->pid);
  json_object_set_boolean_member (o, "alive", h->alive);
  json_object_set_int_member (o, "rssBytes", (gint64) h->rss_bytes);
  return json_node_init_object (json_node_alloc (), o);
}

static char *
monitors_as_json (CrispServer *self)
{
  g_autoptr (GPtrArray) monitors = self->containers != NULL
                                       ? crisp_container_service_monitors (self->containers)
                                       : g_ptr_array_new ();
  JsonArray *a = json_array_sized_new (monitors->len);
  for (guint i = 0; i < monitors->len; i++)
    json_array_add_element (a, monitor_node (monitors->pdata[i]));
  g_autoptr (JsonNode) root = json_node_init_array (json_node_alloc (), a);
  json_array_unref (a);
  return json_to_string (root, FALSE);
}

void
crisp_health_add_info (CrispServer *self, GPtrArray *info, CrispInfoAdd add)
{
  add (info, "monitors", monitors_as_json (self));
  add (info, "recentErrors", crisp_recent_errors_to_json (self->recent_errors));
}
