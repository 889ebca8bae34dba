/* GetContainerEvents.  A change is queued by the thread that made it; one thread at a time
 * (whichever found the queue idle) turns queued changes into events, in order, and hands each
 * to every subscriber's stream.  A subscriber that lets EVENTS_MAX_WAITING events pile up is
 * dropped: it never holds up crisp or the others.  Nothing is built while nobody listens. */
#include "config.h"

#include "events.h"

#include "pkg/container/container.h"
#include "pkg/sandbox/sandbox.h"

#define EVENTS_MAX_SUBSCRIBERS 1024
#define EVENTS_MAX_WAITING 256
/* Exits found at start-up go to the subscribers that come within this time (a kubelet
 * re-subscribes within seconds of a restart), at most EVENTS_REPLAY_MAX of them. */
#define EVENTS_REPLAY_SECONDS 300
#define EVENTS_REPLAY_MAX 1024

typedef struct
{
  char *id, *pod_id;
  Runtime__V1__ContainerEventType type;
  gint64 at; /* ns since the epoch */
} Change;

struct _CrispEvents
{
  CrispServer *server;
  GMutex lock; /* guards all below */
  GQueue changes; /* Change *, not yet turned into events */
  gboolean draining;
  GPtrArray *subscribers; /* CrispCall *, each open (not ended) */
  gboolean closed;
  gboolean recording; /* events go to `replay` too */
  GPtrArray *replay;  /* Runtime__V1__ContainerEventResponse * */
  gint64 replay_until; /* monotonic */
};

static void
change_free (gpointer p)
{
  Change *c = p;
  g_free (c->id);
  g_free (c->pod_id);
  g_free (c);
}

static void
event_free (gpointer p)
{
  protobuf_c_message_free_unpacked (p, NULL);
}

CrispEvents *
crisp_events_new (CrispServer *server)
{
  CrispEvents *self = g_new0 (CrispEvents, 1);
  self->server = server;
  g_mutex_init (&self->lock);
  g_queue_init (&self->changes);
  self->subscribers = g_ptr_array_new ();
  self->replay = g_ptr_array_new_with_free_func (event_free);
  return self;
}

void
crisp_events_free (CrispEvents *self)
{
  if (self == NULL)
    return;
  g_queue_clear_full (&self->changes, change_free);
  g_ptr_array_unref (self->subscribers);
  g_ptr_array_unref (self->replay);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/* The statuses of the pod and of each of its containers, as they are now. */
static void
fill_statuses (CrispEvents *self, Runtime__V1__ContainerEventResponse *ev, const char *pod_id)
{
  Runtime__V1__PodSandboxStatusResponse *pod
      = crisp_pod_service_status (self->server->pods, pod_id, FALSE, NULL);
  if (pod != NULL)
    {
      ev->pod_sandbox_status = g_steal_pointer (&pod->status);
      protobuf_c_message_free_unpacked (&pod->base, NULL);
    }
  ev->containers_statuses = crisp_container_service_pod_statuses (
      self->server->containers, pod_id, &ev->n_containers_statuses);
}

static Runtime__V1__ContainerEventResponse *
build_event (CrispEvents *self, const Change *c)
{
  Runtime__V1__ContainerEventResponse *ev = g_new (Runtime__V1__ContainerEventResponse, 1);
  *ev = (Runtime__V1__ContainerEventResponse) RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
  ev->container_id = g_strdup (c->id);
  ev->container_event_type = c->type;
  ev->created_at = c->at;
  fill_statuses (self, ev, c->pod_id);
  return ev;
}

/* Ends the streams of subscribers taken out of the list. */
static void
end_streams (GPtrArray *calls, CrispErrorCode code, const char *message)
{
  for (guint i = 0; calls && i < calls->len; i++)
    crisp_call_fail_literal (calls->pdata[i], code, message);
}

/* Under lock: sends ev to every subscriber; the ones that cannot take it are taken out. */
static GPtrArray *
deliver_locked (CrispEvents *self, const Runtime__V1__ContainerEventResponse *ev)
{
  GPtrArray *dropped = NULL;
  for (guint i = 0; i < self->subscribers->len;)
    {
      CrispCall *call = self->subscribers->pdata[i];
      if (crisp_call_stream_send (call, &ev->base, EVENTS_MAX_WAITING))
        {
          i++;
          continue;
        }
      if (dropped == NULL)
        dropped = g_ptr_array_new ();
      g_ptr_array_add (dropped, call);
      g_ptr_array_remove_index_fast (self->subscribers, i);
    }
  return dropped;
}

/* Turns queued changes into events until none is left.  Only one thread drains at a time,
 * so events go out in the order the changes came; building one may queue more (a status read
 * can find an exit), which this loop then takes too. */
static void
drain (CrispEvents *self)
{
  g_mutex_lock (&self->lock);
  for (Change *c; (c = g_queue_pop_head (&self->changes)) != NULL;)
    {
      gboolean wanted = self->subscribers->len > 0 || self->recording;
      g_mutex_unlock (&self->lock);
      Runtime__V1__ContainerEventResponse *ev = wanted ? build_event (self, c) : NULL;
      change_free (c);
      g_mutex_lock (&self->lock);
      if (ev == NULL)
        continue;
      g_autoptr (GPtrArray) dropped = deliver_locked (self, ev);
      if (self->recording && self->replay->len < EVENTS_REPLAY_MAX)
        g_ptr_array_add (self->replay, ev);
      else
        event_free (ev);
      if (dropped == NULL)
        continue;
      g_mutex_unlock (&self->lock);
      g_warning ("GetContainerEvents: dropping %u subscriber(s) with %d events waiting",
                 dropped->len, EVENTS_MAX_WAITING);
      end_streams (dropped, CRISP_ERROR_RESOURCE_EXHAUSTED,
                   "this subscriber fell too far behind: more than 256 events were waiting "
                   "for it; subscribe again");
      g_mutex_lock (&self->lock);
    }
  self->draining = FALSE;
  g_mutex_unlock (&self->lock);
}

void
crisp_events_emit (CrispEvents *self, const char *id, const char *pod_id,
                   Runtime__V1__ContainerEventType type)
{
  Change *c = g_new (Change, 1);
  c->id = g_strdup (id);
  c->pod_id = g_strdup (pod_id);
  c->type = type;
  c->at = g_get_real_time () * 1000;
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->changes, c);
  gboolean drain_here = !self->draining;
  self->draining = TRUE;
  g_mutex_unlock (&self->lock);
  if (drain_here)
    drain (self);
}

static void
on_container_event (const char *id, const char *pod_id, Runtime__V1__ContainerEventType type,
                    gpointer data)
{
  crisp_events_emit (data, id, pod_id, type);
}

void
crisp_events_attach (CrispEvents *self)
{
  g_mutex_lock (&self->lock);
  self->recording = TRUE;
  self->replay_until = g_get_monotonic_time () + EVENTS_REPLAY_SECONDS * G_USEC_PER_SEC;
  g_mutex_unlock (&self->lock);
  crisp_container_service_watch (self->server->containers, on_container_event, self);
  g_mutex_lock (&self->lock);
  self->recording = FALSE;
  g_mutex_unlock (&self->lock);
  if (self->replay->len > 0)
    g_message ("GetContainerEvents: %u exit(s) found at start-up go to the next subscribers",
               self->replay->len);
}

static void
on_subscriber_gone (CrispCall *call, gpointer data)
{
  CrispEvents *self = data;
  g_mutex_lock (&self->lock);
  gboolean ours = g_ptr_array_remove_fast (self->subscribers, call);
  g_mutex_unlock (&self->lock);
  if (ours)
    crisp_call_fail_literal (call, CRISP_ERROR_CANCELLED, "the subscriber went away");
}

static void
handle_get_container_events (CrispServer *server, CrispCall *call)
{
  CrispEvents *self = server->events;
  const char *refused = NULL;
  CrispErrorCode code = CRISP_ERROR_UNAVAILABLE;
  g_mutex_lock (&self->lock);
  if (self->closed)
    refused = "crisp is stopping";
  else if (self->subscribers->len >= EVENTS_MAX_SUBSCRIBERS)
    refused = "too many GetContainerEvents subscribers (1024)", code = CRISP_ERROR_RESOURCE_EXHAUSTED;
  else
    {
      if (g_get_monotonic_time () > self->replay_until)
        g_ptr_array_set_size (self->replay, 0);
      for (guint i = 0; i < self->replay->len; i++)
        crisp_call_stream_send (call, self->replay->pdata[i], 0);
      g_ptr_array_add (self->subscribers, call);
    }
  g_mutex_unlock (&self->lock);
  if (refused != NULL)
    return crisp_call_fail_literal (call, code, refused);
  if (!crisp_call_set_close_func (call, on_subscriber_gone, self))
    on_subscriber_gone (call, self);
}

void
crisp_events_close (CrispEvents *self)
{
  g_mutex_lock (&self->lock);
  self->closed = TRUE;
  g_autoptr (GPtrArray) calls = g_steal_pointer (&self->subscribers);
  self->subscribers = g_ptr_array_new ();
  g_mutex_unlock (&self->lock);
  end_streams (calls, CRISP_ERROR_UNAVAILABLE, "crisp is stopping; subscribe again once it is back");
}

static void
free_events (gpointer data)
{
  crisp_events_free (data);
}

gboolean
crisp_events_handlers_init (CrispServer *self, GError **error)
{
  self->events = crisp_events_new (self);
  crisp_server_add_cleanup (self, free_events, self->events);
  crisp_server_register (self, "GetContainerEvents", handle_get_container_events);
  crisp_events_attach (self->events);
  return TRUE;
}
