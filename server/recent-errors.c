/* The ring of recent RPC failures: bounded in count and in message length, guarded by one
 * lock because calls fail in every worker thread. */
#include "config.h"

#include "recent-errors.h"

#include "crisp-error.h"

#include <string.h>
#include <json-glib/json-glib.h>

typedef struct
{
  gint64 time_us; /* real time */
  char *method;
  int code;
  char *message;
} Entry;

struct _CrispRecentErrors
{
  GMutex lock; /* guards everything below */
  Entry *ring;
  guint capacity;
  guint next; /* where the next entry goes */
  guint len;
};

CrispRecentErrors *
crisp_recent_errors_new (guint capacity)
{
  CrispRecentErrors *self = g_new0 (CrispRecentErrors, 1);
  g_mutex_init (&self->lock);
  self->capacity = MAX (capacity, 1);
  self->ring = g_new0 (Entry, self->capacity);
  return self;
}

static void
entry_clear (Entry *e)
{
  g_clear_pointer (&e->method, g_free);
  g_clear_pointer (&e->message, g_free);
}

void
crisp_recent_errors_free (CrispRecentErrors *self)
{
  if (self == NULL)
    return;
  for (guint i = 0; i < self->capacity; i++)
    entry_clear (&self->ring[i]);
  g_free (self->ring);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/* At most max bytes of valid UTF-8 from s (whatever bytes a request put in it), cut at a
 * character boundary and marked when it was cut. */
static char *
bounded_text (const char *s, gsize max)
{
  gsize n = strnlen (s, max + 1);
  g_autofree char *valid = g_utf8_make_valid (s, (gssize) MIN (n, max));
  gsize len = strlen (valid);
  if (n <= max && len <= max)
    return g_steal_pointer (&valid);
  /* Replacement characters may have made it longer than max again. */
  char *end = valid + MIN (len, max);
  while (end > valid && (*end & 0xC0) == 0x80)
    end--;
  *end = '\0';
  return g_strconcat (valid, "…", NULL);
}

void
crisp_recent_errors_add (CrispRecentErrors *self, const char *method, int code, const char *message)
{
  if (self == NULL)
    return;
  Entry e = { .time_us = g_get_real_time (),
              .method = bounded_text (method ? method : "", 64),
              .code = code,
              .message = bounded_text (message ? message : "", CRISP_RECENT_ERROR_MESSAGE_MAX) };
  g_mutex_lock (&self->lock);
  entry_clear (&self->ring[self->next]);
  self->ring[self->next] = e;
  self->next = (self->next + 1) % self->capacity;
  self->len = MIN (self->len + 1, self->capacity);
  g_mutex_unlock (&self->lock);
}

static char *
format_time (gint64 us)
{
  g_autoptr (GDateTime) s = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  g_autoptr (GDateTime) t = s ? g_date_time_add (s, us % G_USEC_PER_SEC) : NULL;
  return t ? g_date_time_format (t, "%Y-%m-%dT%H:%M:%S.%fZ") : g_strdup ("");
}

static JsonNode *
entry_node (const Entry *e)
{
  g_autofree char *time = format_time (e->time_us);
  g_autoptr (JsonObject) o = json_object_new ();
  json_object_set_string_member (o, "time", time);
  json_object_set_string_member (o, "method", e->method);
  json_object_set_string_member (o, "code", crisp_error_code_name (e->code));
  json_object_set_string_member (o, "message", e->message);
  return json_node_init_object (json_node_alloc (), o);
}

char *
crisp_recent_errors_to_json (CrispRecentErrors *self)
{
  JsonArray *a = json_array_new ();
  if (self != NULL)
    {
      g_mutex_lock (&self->lock);
      for (guint i = 1; i <= self->len; i++)
        json_array_add_element (
            a, entry_node (&self->ring[(self->next + self->capacity - i) % self->capacity]));
      g_mutex_unlock (&self->lock);
    }
  g_autoptr (JsonNode) root = json_node_init_array (json_node_alloc (), a);
  json_array_unref (a);
  return json_to_string (root, FALSE);
}
