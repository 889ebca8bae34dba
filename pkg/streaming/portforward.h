/* One port-forward session on an upgraded connection, over SPDY/3.1 (portforward.k8s.io) or
 * WebSocket (v4.channel.k8s.io, v4.base64.channel.k8s.io, or no protocol: binary).  It runs in
 * crisp's streaming server and ends with crisp (port-forward is pod-scoped: no monitor owns
 * it).  How a connection into the pod is made is the caller's: `dial` is called for each
 * forwarded connection, so the session itself never changes namespace.
 *
 * SPDY: the client opens a pair of streams per connection, `error` and `data`, with headers
 * `port` and `requestID`; once both are there the session dials and copies bytes both ways,
 * and a failure goes to the error stream.
 * WebSocket: the ports are fixed at the upgrade; port i has channel 2i (data, both ways) and
 * 2i+1 (errors, to the client), and each channel first carries the port, two bytes little
 * endian.  The session dials every port at once; a port whose connection fails or ends is
 * done, and the socket closes when every port is done or the client leaves. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Connects to `port` in the pod: a connected socket, or -errno. */
typedef int (*CrispPortForwardDial) (uint16_t port, void *user_data);

typedef struct
{
  int fd;                  /* the client's connection (blocking; the caller closes it) */
  bool websocket, base64;  /* the framing, and for WebSocket the base64 channels */
  const uint16_t *ports;   /* WebSocket: the forwarded ports, in channel order */
  size_t n_ports;          /* at most CRISP_PORT_FORWARD_MAX_PORTS (upgrade.h) */
  const char *pod_id;      /* for messages on the error channel */
  const uint8_t *leftover; /* the client's first protocol bytes, read with its head */
  size_t leftover_len;
  CrispPortForwardDial dial;
  void *dial_data;
} CrispPortForwardSession;

/* Serves the session until the client leaves (or, over WebSocket, every port is done). */
void crisp_port_forward_serve (const CrispPortForwardSession *session);
