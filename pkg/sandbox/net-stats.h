/* Interface counters of a pod's network namespace, as /proc/net/dev shows them inside it:
 * the parser, and the reader that enters the namespace from a short-lived thread. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRISP_NET_DEV_NAME_MAX 15 /* IFNAMSIZ - 1 */
#define CRISP_NET_DEV_MAX_INTERFACES 1024
#define CRISP_NET_DEV_MAX_BYTES (1024 * 1024)

typedef struct
{
  char name[CRISP_NET_DEV_NAME_MAX + 1];
  guint64 rx_bytes, rx_packets, rx_errors, rx_dropped;
  guint64 tx_bytes, tx_packets, tx_errors, tx_dropped;
} CrispNetDevStats;

/* Parses the text of /proc/net/dev (len bytes, need not be NUL-terminated) into an array of
 * CrispNetDevStats, in the kernel's order, without the loopback ("lo").  Every line after the
 * two header lines must be "<name>: " and 16 decimal counters, the name 1 to 15 bytes of
 * valid UTF-8; anything else fails with DATA_LOSS naming the line.  At most
 * CRISP_NET_DEV_MAX_INTERFACES are returned; the rest are left out. */
GArray *crisp_net_dev_parse (const char *text, gsize len, GError **error);

/* Reads and parses net/dev inside the network namespace ns_fd refers to, from a thread that
 * enters it and ends (no other thread changes namespace). */
GArray *crisp_net_dev_read_in (int ns_fd, GError **error);

/* An fd (O_CLOEXEC) of the pod's pinned network namespace, opened under the pod's op_lock so
 * a stop cannot unpin it halfway; the open fd keeps the namespace alive.  -ENOENT when the
 * pod shares the host's network namespace or is stopped; otherwise -errno. */
struct _CrispPod;
int crisp_pod_open_net_ns (struct _CrispPod *pod);

G_END_DECLS
