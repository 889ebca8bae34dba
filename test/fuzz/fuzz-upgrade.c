/* Fuzz target: arbitrary bytes as the request head of a streaming connection.  Whatever the
 * bytes, crisp_upgrade_parse decides: an accepted upgrade has a kind, a token without '/',
 * ports in range, and an answer that ends its head; a refusal has a status line and a
 * message.  libc only, like the parser. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "pkg/streaming/upgrade.h"

static CrispUpgrade u;

static void
check (const char *head, size_t len)
{
  crisp_upgrade_parse (head, len, &u);
  if (u.status != 101)
    {
      if (u.status_line == NULL || u.message == NULL || u.message[strlen (u.message) - 1] != '\n')
        abort ();
      return;
    }
  if (u.token == NULL || *u.token == '\0' || strchr (u.token, '/') || u.kind_name == NULL
      || u.n_ports > CRISP_PORT_FORWARD_MAX_PORTS)
    abort ();
  for (size_t i = 0; i < u.n_ports; i++)
    if (u.ports[i] == 0)
      abort ();
  char buf[1024];
  size_t n = crisp_upgrade_response (&u, buf, sizeof buf);
  if (u.protocol != NULL && (n < 4 || memcmp (buf + n - 4, "\r\n\r\n", 4) != 0))
    abort ();
  if (u.kind == CRISP_STREAM_PORT_FORWARD && u.websocket && crisp_upgrade_set_ports (&u, NULL, 0)
      && (u.n_ports == 0 || (u.base64 && u.n_ports > CRISP_PORT_FORWARD_MAX_PORTS_BASE64)))
    abort ();
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ssize_t end = crisp_upgrade_head_end (data, size);
  if (end > 0)
    check ((const char *) data, (size_t) end);
  /* Also the whole input as a head, however it ends. */
  check ((const char *) data, size < CRISP_UPGRADE_HEAD_MAX ? size : CRISP_UPGRADE_HEAD_MAX);
  return 0;
}
