/* CRI pod and container metrics (ListMetricDescriptors, ListPodSandboxMetrics and its
 * streaming twin): the metrics cAdvisor serves, by cAdvisor's names and labels, read from
 * the cgroups, the pods' network namespaces and the writable layers. */
#pragma once

#include <glib.h>

#include "container.h"
#include "proto/runtime.pb-c.h"

G_BEGIN_DECLS

/* Every metric crisp_pod_metrics_collect () may return: name, help and label keys; the same
 * for the whole life of the daemon.  malloc'd: free with protobuf_c_message_free_unpacked. */
Runtime__V1__ListMetricDescriptorsResponse *crisp_pod_metrics_descriptors (void);

/* The metrics of every ready pod that filter matches (NULL: all ready pods; its state is
 * ignored), one Runtime__V1__PodSandboxMetrics per pod with its running containers, in no
 * particular order.  The array frees its elements.  Metrics are read live (timestamp 0);
 * what cannot be read (a container that exits meanwhile, a controller that is not mounted)
 * is left out rather than failing the call. */
GPtrArray *crisp_pod_metrics_collect (CrispContainerService *svc,
                                      const Runtime__V1__PodSandboxFilter *filter);

G_END_DECLS
