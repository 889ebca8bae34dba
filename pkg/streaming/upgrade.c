/* Parsing and judging a streaming connection's request head: see upgrade.h.  The head is
 * copied into the CrispUpgrade and cut in place; nothing is allocated. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "upgrade.h"
#include "ws.h"

#define TOKEN_MAX 128

/* What crisp speaks, most preferred first. */
static const char *const spdy_exec_protocols[]
    = { "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
        "v2.channel.k8s.io", "channel.k8s.io",    NULL };
static const char *const spdy_port_forward_protocols[] = { "portforward.k8s.io", NULL };
static const char *const ws_exec_protocols[]
    = { "v5.channel.k8s.io", "v4.channel.k8s.io",     "v4.base64.channel.k8s.io",
        "channel.k8s.io",    "base64.channel.k8s.io", NULL };
static const char *const ws_port_forward_protocols[]
    = { "v4.channel.k8s.io", "v4.base64.channel.k8s.io", NULL };

static void
refuse (CrispUpgrade *u, int status, const char *status_line, const char *message)
{
  u->status = status;
  u->status_line = status_line;
  u->message = message;
}

ssize_t
crisp_upgrade_head_end (const uint8_t *buf, size_t len)
{
  size_t n = len < CRISP_UPGRADE_HEAD_MAX ? len : CRISP_UPGRADE_HEAD_MAX;
  if (n < 4)
    return 0; /* and buf may be NULL before the first byte */
  const uint8_t *end = memmem (buf, n, "\r\n\r\n", 4);
  if (end != NULL)
    return end - buf + 4;
  return len >= CRISP_UPGRADE_HEAD_MAX ? -EMSGSIZE : 0;
}

static char *
trim (char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen (s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  return s;
}

/* Adds the comma-separated values of a header to a list of offers (cutting `value`). */
static void
add_offers (char *value, const char **offers, size_t *n)
{
  char *save = NULL;
  for (char *v = strtok_r (value, ",", &save); v; v = strtok_r (NULL, ",", &save))
    {
      v = trim (v);
      if (*v && *n < CRISP_UPGRADE_MAX_OFFERS)
        offers[(*n)++] = v;
    }
}

/* The first offer, in the client's order, that crisp speaks; "" when there were no offers;
 * NULL when none matches. */
static const char *
negotiate (const char *const *offers, size_t n, const char *const *supported)
{
  if (n == 0)
    return "";
  for (size_t i = 0; i < n; i++)
    for (const char *const *s = supported; *s; s++)
      if (strcmp (offers[i], *s) == 0)
        return *s;
  return NULL;
}

static void
set_version (CrispUpgrade *u)
{
  const char *p = u->protocol;
  if (p == NULL || u->kind == CRISP_STREAM_PORT_FORWARD)
    u->version = 0;
  else if (p[0] == 'v' && p[1] >= '1' && p[1] <= '9' && p[2] == '.')
    u->version = p[1] - '0';
  else
    u->version = 1; /* channel.k8s.io, base64.channel.k8s.io, or none offered */
  u->base64 = u->websocket && p != NULL && strstr (p, "base64.") != NULL;
}

static int
hex (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s in place ('+' is a space); false on a bad escape or an encoded NUL. */
static bool
url_decode (char *s)
{
  char *w = s;
  for (const char *r = s; *r; r++)
    {
      if (*r == '%')
        {
          int hi = hex (r[1]), lo = hi < 0 ? -1 : hex (r[2]);
          if (lo < 0 || (hi | lo) == 0)
            return false;
          *w++ = (char) (hi * 16 + lo);
          r += 2;
        }
      else
        *w++ = *r == '+' ? ' ' : *r;
    }
  *w = '\0';
  return true;
}

static bool
parse_port (const char *s, uint16_t *port)
{
  unsigned long v = 0;
  if (*s == '\0' || strlen (s) > 5)
    return false;
  for (; *s; s++)
    {
      if (*s < '0' || *s > '9')
        return false;
      v = v * 10 + (*s - '0');
    }
  if (v < 1 || v > 65535)
    return false;
  *port = (uint16_t) v;
  return true;
}

/* The `port` parameters of the query (each a comma-separated list), in order. */
static void
parse_query_ports (CrispUpgrade *u, char *query)
{
  char *save = NULL;
  for (char *kv = strtok_r (query, "&", &save); kv; kv = strtok_r (NULL, "&", &save))
    {
      char *eq = strchr (kv, '=');
      if (eq == NULL)
        continue;
      *eq = '\0';
      if (!url_decode (kv) || strcmp (kv, "port") != 0)
        continue;
      char *value = eq + 1, *p;
      if (!url_decode (value) || *value == '\0')
        return refuse (u, 400, "400 Bad Request", "a port parameter of the URL is empty or "
                                                  "badly encoded\n");
      while ((p = strsep (&value, ",")) != NULL) /* "80,,81" and "80," hold empty ports */
        {
          uint16_t port;
          if (!parse_port (trim (p), &port))
            return refuse (u, 400, "400 Bad Request",
                           "a port in the URL is not a number from 1 to 65535\n");
          if (u->n_ports == CRISP_PORT_FORWARD_MAX_PORTS)
            return refuse (u, 400, "400 Bad Request", "the URL names too many ports\n");
          u->ports[u->n_ports++] = port;
        }
    }
}

/* Cuts the request line; false when it is not `METHOD TARGET HTTP/1.x`. */
static bool
parse_request_line (char *line, char **method, char **target)
{
  char *sp1 = strchr (line, ' ');
  char *sp2 = sp1 ? strchr (sp1 + 1, ' ') : NULL;
  if (sp1 == NULL || sp2 == NULL || strchr (sp2 + 1, ' ') != NULL || sp1 == line
      || sp2 == sp1 + 1)
    return false;
  *sp1 = *sp2 = '\0';
  *method = line;
  *target = sp1 + 1;
  return strncmp (sp2 + 1, "HTTP/1.", 7) == 0 && sp2[8] != '\0' && sp2[9] == '\0';
}

typedef struct
{
  bool spdy, websocket;
  const char *key, *version;
} Headers;

/* Cuts the header lines after the request line; false on a line without a colon. */
static bool
parse_headers (CrispUpgrade *u, char *p, Headers *h)
{
  while (*p)
    {
      char *eol = strstr (p, "\r\n");
      if (eol == NULL)
        return false;
      *eol = '\0';
      if (*p == '\0')
        return true;
      char *line = p;
      p = eol + 2;
      char *colon = strchr (line, ':');
      if (colon == NULL || colon == line)
        return false;
      *colon = '\0';
      char *value = trim (colon + 1);
      if (strcasecmp (line, "X-Stream-Protocol-Version") == 0)
        add_offers (value, u->spdy_offers, &u->n_spdy_offers);
      else if (strcasecmp (line, "Sec-WebSocket-Protocol") == 0)
        add_offers (value, u->ws_offers, &u->n_ws_offers);
      else if (strcasecmp (line, "Sec-WebSocket-Key") == 0 && h->key == NULL)
        h->key = value;
      else if (strcasecmp (line, "Sec-WebSocket-Version") == 0 && h->version == NULL)
        h->version = value;
      else if (strcasecmp (line, "Upgrade") == 0)
        {
          h->spdy = h->spdy || strstr (value, "SPDY/3.1") != NULL;
          h->websocket = h->websocket || strcasecmp (value, "websocket") == 0;
        }
    }
  return true;
}

static bool
set_kind (CrispUpgrade *u, const char *path)
{
  static const struct
  {
    const char *prefix;
    CrispStreamKind kind;
    const char *name;
  } kinds[] = { { "/exec/", CRISP_STREAM_EXEC, "exec" },
                { "/attach/", CRISP_STREAM_ATTACH, "attach" },
                { "/portforward/", CRISP_STREAM_PORT_FORWARD, "portforward" } };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    {
      size_t n = strlen (kinds[i].prefix);
      if (strncmp (path, kinds[i].prefix, n) != 0)
        continue;
      const char *token = path + n;
      if (*token == '\0' || strlen (token) > TOKEN_MAX || strchr (token, '/') != NULL)
        return false;
      u->kind = kinds[i].kind;
      u->kind_name = kinds[i].name;
      u->token = token;
      return true;
    }
  return false;
}

void
crisp_upgrade_parse (const char *head, size_t len, CrispUpgrade *u)
{
  memset (u, 0, sizeof *u);
  if (len > CRISP_UPGRADE_HEAD_MAX)
    return refuse (u, 431, "431 Request Header Fields Too Large", "request head too large\n");
  memcpy (u->text, head, len);
  u->text[len] = '\0';
  char *eol = strstr (u->text, "\r\n"), *method, *target;
  Headers h = { 0 };
  if (memchr (head, '\0', len) != NULL || eol == NULL)
    return refuse (u, 400, "400 Bad Request", "malformed or unsupported request\n");
  *eol = '\0';
  if (!parse_request_line (u->text, &method, &target) || !parse_headers (u, eol + 2, &h)
      || (strcmp (method, "GET") != 0 && strcmp (method, "POST") != 0))
    return refuse (u, 400, "400 Bad Request", "malformed or unsupported request\n");
  char *query = strchr (target, '?');
  if (query != NULL)
    *query++ = '\0';
  if (!set_kind (u, target)) /* the path and its token are all that count */
    return refuse (u, 404, "404 Not Found", "unknown path\n");
  if (!h.spdy && !h.websocket)
    return refuse (u, 400, "400 Bad Request", "an upgrade to SPDY/3.1 or websocket is required\n");
  u->websocket = !h.spdy;
  if (u->websocket
      && (h.key == NULL || h.version == NULL || strcmp (h.version, "13") != 0
          || crisp_ws_accept_key (h.key, u->accept) < 0))
    return refuse (u, 400, "400 Bad Request",
                   "a WebSocket upgrade needs Sec-WebSocket-Version 13 and a valid "
                   "Sec-WebSocket-Key\n");
  bool pf = u->kind == CRISP_STREAM_PORT_FORWARD;
  if (u->websocket)
    u->protocol = negotiate (u->ws_offers, u->n_ws_offers,
                             pf ? ws_port_forward_protocols : ws_exec_protocols);
  else
    u->protocol = negotiate (u->spdy_offers, u->n_spdy_offers,
                             pf ? spdy_port_forward_protocols : spdy_exec_protocols);
  if (pf && !u->websocket && u->protocol != NULL && *u->protocol == '\0')
    u->protocol = NULL; /* port-forward over SPDY has no unversioned protocol */
  set_version (u);
  u->status = 101;
  if (pf && u->websocket && query != NULL)
    parse_query_ports (u, query);
}

bool
crisp_upgrade_set_ports (CrispUpgrade *u, const uint16_t *request_ports, size_t n)
{
  if (n > CRISP_PORT_FORWARD_MAX_PORTS)
    return refuse (u, 400, "400 Bad Request", "the PortForward request names too many ports "
                                              "for one WebSocket\n"),
           false;
  if (n > 0)
    {
      memcpy (u->ports, request_ports, n * sizeof *request_ports);
      u->n_ports = n;
    }
  if (u->n_ports == 0)
    return refuse (u, 400, "400 Bad Request",
                   "port-forward over WebSocket needs its ports: in the PortForward request "
                   "or as ?port= in the URL\n"),
           false;
  if (u->base64 && u->n_ports > CRISP_PORT_FORWARD_MAX_PORTS_BASE64)
    return refuse (u, 400, "400 Bad Request", "base64 port-forward carries at most 5 ports\n"),
           false;
  return true;
}

size_t
crisp_upgrade_response (const CrispUpgrade *u, char *buf, size_t size)
{
  const char *p = u->protocol ? u->protocol : "";
  int n = u->websocket
              ? snprintf (buf, size,
                          "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                          "Upgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                          u->accept, *p ? "Sec-WebSocket-Protocol: " : "", p, *p ? "\r\n" : "")
              : snprintf (buf, size,
                          "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                          "Upgrade: SPDY/3.1\r\n%s%s%s\r\n",
                          *p ? "X-Stream-Protocol-Version: " : "", p, *p ? "\r\n" : "");
  return n < 0 || (size_t) n >= size ? 0 : (size_t) n;
}
