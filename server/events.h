/* GetContainerEvents: the subscribers, and the events announced to them. */
#pragma once

#include "server.h"

G_BEGIN_DECLS

typedef struct _CrispEvents CrispEvents;

CrispEvents *crisp_events_new (CrispServer *server);
/* Starts the container service's watch; the exits start-up found are kept for the
 * subscribers of the next minutes. */
void crisp_events_attach (CrispEvents *self);
/* Announces a change of container (or pod sandbox) `id` of pod `pod_id`; from any thread. */
void crisp_events_emit (CrispEvents *self, const char *id, const char *pod_id,
                        Runtime__V1__ContainerEventType type);
/* Ends every stream with UNAVAILABLE and refuses new ones (crisp is stopping). */
void crisp_events_close (CrispEvents *self);
void crisp_events_free (CrispEvents *self);

G_END_DECLS
