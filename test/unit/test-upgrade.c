/* Unit tests for pkg/streaming/upgrade.c (request heads: kinds, framings, negotiation, the
 * ports of a WebSocket port-forward, the answers) and pkg/streaming/portforward.c (a
 * WebSocket port-forward session on a socketpair, dialing socketpairs of its own). */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pkg/streaming/codec-glib.h"
#include "pkg/streaming/portforward.h"
#include "pkg/streaming/upgrade.h"

static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ=="; /* RFC 6455 section 1.3 */

static CrispUpgrade *
parse (const char *head)
{
  CrispUpgrade *u = g_new (CrispUpgrade, 1);
  crisp_upgrade_parse (head, strlen (head), u);
  return u;
}

static char *
ws_head (const char *target, const char *protocols)
{
  return g_strdup_printf ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          "Upgrade: websocket\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                          target, ws_key, protocols ? "Sec-WebSocket-Protocol: " : "",
                          protocols ? protocols : "", protocols ? "\r\n" : "");
}

static void
test_head_end (void)
{
  const char *h = "GET /exec/t HTTP/1.1\r\nA: b\r\n\r\nrest";
  g_assert_cmpint (crisp_upgrade_head_end ((const guint8 *) h, strlen (h)), ==,
                   strlen (h) - 4);
  g_assert_cmpint (crisp_upgrade_head_end ((const guint8 *) h, 10), ==, 0);
  g_assert_cmpint (crisp_upgrade_head_end (NULL, 0), ==, 0); /* an empty GByteArray */
  g_autofree guint8 *big = g_malloc (CRISP_UPGRADE_HEAD_MAX + 10);
  memset (big, 'a', CRISP_UPGRADE_HEAD_MAX + 10);
  g_assert_cmpint (crisp_upgrade_head_end (big, CRISP_UPGRADE_HEAD_MAX + 10), ==, -EMSGSIZE);
  g_assert_cmpint (crisp_upgrade_head_end (big, CRISP_UPGRADE_HEAD_MAX - 1), ==, 0);
}

static void
test_spdy_exec (void)
{
  g_autofree CrispUpgrade *u
      = parse ("POST /exec/abc HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
               "X-Stream-Protocol-Version: v9.channel.k8s.io\r\n"
               "X-Stream-Protocol-Version: v4.channel.k8s.io, v5.channel.k8s.io\r\n\r\n");
  g_assert_cmpint (u->status, ==, 101);
  g_assert_cmpint (u->kind, ==, CRISP_STREAM_EXEC);
  g_assert_cmpstr (u->token, ==, "abc");
  g_assert_false (u->websocket);
  g_assert_cmpstr (u->protocol, ==, "v4.channel.k8s.io"); /* the client's order */
  g_assert_cmpuint (u->version, ==, 4);
  g_assert_false (u->base64);
  char buf[512];
  g_assert_cmpuint (crisp_upgrade_response (u, buf, sizeof buf), >, 0);
  g_assert_nonnull (strstr (buf, "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: "
                                 "v4.channel.k8s.io\r\n\r\n"));
  g_assert_cmpuint (crisp_upgrade_response (u, buf, 20), ==, 0);
}

static void
test_ws_attach_base64 (void)
{
  g_autofree char *h = ws_head ("/attach/tok?x=1", "base64.channel.k8s.io");
  g_autofree CrispUpgrade *u = parse (h);
  g_assert_cmpint (u->status, ==, 101);
  g_assert_cmpint (u->kind, ==, CRISP_STREAM_ATTACH);
  g_assert_cmpstr (u->kind_name, ==, "attach");
  g_assert_cmpstr (u->token, ==, "tok");
  g_assert_true (u->websocket && u->base64);
  g_assert_cmpuint (u->version, ==, 1);
  g_assert_cmpstr (u->accept, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  char buf[512];
  crisp_upgrade_response (u, buf, sizeof buf);
  g_assert_nonnull (strstr (buf, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                 "Sec-WebSocket-Protocol: base64.channel.k8s.io\r\n\r\n"));
}

static void
test_negotiation (void)
{
  g_autofree char *none = ws_head ("/exec/t", NULL);
  g_autofree CrispUpgrade *u = parse (none);
  g_assert_cmpstr (u->protocol, ==, ""); /* the unversioned protocol */
  g_assert_cmpuint (u->version, ==, 1);
  g_autofree char *bad = ws_head ("/exec/t", "v9.channel.k8s.io");
  g_autofree CrispUpgrade *v = parse (bad);
  g_assert_cmpint (v->status, ==, 101);
  g_assert_null (v->protocol); /* 403 once the token is checked */
  g_autofree CrispUpgrade *w
      = parse ("GET /portforward/t HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\r\n");
  g_assert_null (w->protocol); /* port-forward over SPDY needs portforward.k8s.io */
  g_autofree char *pf = ws_head ("/portforward/t", "v5.channel.k8s.io, v4.channel.k8s.io");
  g_autofree CrispUpgrade *x = parse (pf);
  g_assert_cmpstr (x->protocol, ==, "v4.channel.k8s.io");
  g_assert_cmpuint (x->version, ==, 0);
}

static void
test_refusals (void)
{
  static const struct
  {
    const char *head;
    int status;
    const char *message;
  } cases[] = {
    { "GET /exec/t HTTP/1.1\r\n\r\n", 400, "upgrade" },
    { "PUT /exec/t HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\r\n", 400, "malformed" },
    { "GET /exec/t HTTP/2\r\nUpgrade: SPDY/3.1\r\n\r\n", 400, "malformed" },
    { "GET  /exec/t HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\r\n", 400, "malformed" },
    { "GET /exec/t HTTP/1.1 x\r\nUpgrade: SPDY/3.1\r\n\r\n", 400, "malformed" },
    { "GET /exec/t HTTP/1.1\r\nno colon\r\n\r\n", 400, "malformed" },
    { "GET /exec/ HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\r\n", 404, "unknown path" },
    { "GET /exec/a/b HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\r\n", 404, "unknown path" },
    { "GET /other/t HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\r\n", 404, "unknown path" },
    { "GET /exec/t HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n", 400,
      "Sec-WebSocket-Key" },
    { "GET /exec/t HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      400, "Version 13" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree CrispUpgrade *u = parse (cases[i].head);
      g_assert_cmpint (u->status, ==, cases[i].status);
      g_assert_nonnull (strstr (u->message, cases[i].message));
    }
  g_autofree CrispUpgrade *u = g_new (CrispUpgrade, 1);
  static const char nul[] = "GET /exec/t HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\0x: y\r\n\r\n";
  crisp_upgrade_parse (nul, sizeof nul - 1, u);
  g_assert_cmpint (u->status, ==, 400);
}

static void
test_port_forward_ports (void)
{
  g_autofree char *h = ws_head ("/portforward/t?port=8081&x=y&port=80%2C443", NULL);
  g_autofree CrispUpgrade *u = parse (h);
  g_assert_cmpint (u->status, ==, 101);
  g_assert_cmpuint (u->n_ports, ==, 3);
  g_assert_cmpuint (u->ports[0], ==, 8081);
  g_assert_cmpuint (u->ports[1], ==, 80);
  g_assert_cmpuint (u->ports[2], ==, 443);
  g_assert_true (crisp_upgrade_set_ports (u, NULL, 0)); /* the URL's, when the request has none */
  g_assert_cmpuint (u->n_ports, ==, 3);
  const guint16 req[] = { 22 };
  g_assert_true (crisp_upgrade_set_ports (u, req, 1)); /* the request's win */
  g_assert_cmpuint (u->n_ports, ==, 1);
  g_assert_cmpuint (u->ports[0], ==, 22);

  const char *bad[] = { "port=0", "port=65536", "port=1x", "port=", "port=%zz", "port=8080,",
                        "port=123456" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *target = g_strdup_printf ("/portforward/t?%s", bad[i]);
      g_autofree char *hb = ws_head (target, NULL);
      g_autofree CrispUpgrade *b = parse (hb);
      g_assert_cmpint (b->status, ==, 400);
    }
  g_autofree char *none = ws_head ("/portforward/t", NULL);
  g_autofree CrispUpgrade *n = parse (none);
  g_assert_false (crisp_upgrade_set_ports (n, NULL, 0));
  g_assert_cmpint (n->status, ==, 400);

  GString *many = g_string_new ("/portforward/t?port=1");
  for (int i = 2; i <= CRISP_PORT_FORWARD_MAX_PORTS + 1; i++)
    g_string_append_printf (many, ",%d", i);
  g_autofree char *hm = ws_head (many->str, NULL);
  g_string_free (many, TRUE);
  g_autofree CrispUpgrade *m = parse (hm);
  g_assert_cmpint (m->status, ==, 400);

  g_autofree char *b64 = ws_head ("/portforward/t?port=1,2,3,4,5,6", "v4.base64.channel.k8s.io");
  g_autofree CrispUpgrade *b = parse (b64);
  g_assert_cmpint (b->status, ==, 101);
  g_assert_false (crisp_upgrade_set_ports (b, NULL, 0));
  g_assert_nonnull (strstr (b->message, "at most 5"));
}

/* ---- a WebSocket port-forward session ---- */

typedef struct
{
  int pod[2]; /* [0]: the pod's end of the connection dialed for port 8080 */
  int dials;
} Pod;

static int
dial (guint16 port, void *data)
{
  Pod *pod = data;
  pod->dials++;
  if (port != 8080)
    return -ECONNREFUSED;
  return pod->pod[1];
}

static gpointer
serve_thread (gpointer data)
{
  crisp_port_forward_serve (data);
  return NULL;
}

/* Reads messages from the session until `want` of them arrived or the socket closed. */
static void
read_messages (int fd, GPtrArray *got, guint want, gboolean *closed)
{
  /* The server's frames are unmasked and short here: decoded by hand. */
  guint8 buf[4096];
  GByteArray *acc = g_byte_array_new ();
  while (got->len < want && !*closed)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      g_assert_cmpint (n, >=, 0);
      if (n == 0)
        break;
      g_byte_array_append (acc, buf, n);
      while (acc->len >= 2)
        {
          gsize len = acc->data[1] & 0x7f, hdr = 2;
          g_assert_cmpuint (len, <, 126);
          if (acc->len < hdr + len)
            break;
          if ((acc->data[0] & 0x0f) == CRISP_WS_CLOSE)
            *closed = TRUE;
          else
            g_ptr_array_add (got, g_bytes_new (acc->data + hdr, len));
          g_byte_array_remove_range (acc, 0, hdr + len);
        }
    }
  g_byte_array_unref (acc);
}

static gboolean
bytes_is (GBytes *b, const void *data, gsize len)
{
  gsize n;
  const void *p = g_bytes_get_data (b, &n);
  return n == len && memcmp (p, data, len) == 0;
}

static void
test_ws_port_forward_session (void)
{
  Pod pod = { 0 };
  int client[2];
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, client), ==, 0);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pod.pod), ==, 0);
  const guint16 ports[] = { 8080, 9090 };
  CrispPortForwardSession s = { .fd = client[1], .websocket = TRUE, .ports = ports,
                                .n_ports = 2, .pod_id = "p1", .dial = dial, .dial_data = &pod };
  GThread *t = g_thread_new ("pf", serve_thread, &s);

  g_autoptr (GPtrArray) got = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  gboolean closed = FALSE;
  /* Four port prefixes, then the refused port's error. */
  read_messages (client[0], got, 5, &closed);
  g_assert_cmpuint (got->len, ==, 5);
  g_assert_true (bytes_is (got->pdata[0], "\x00\x90\x1f", 3));
  g_assert_true (bytes_is (got->pdata[1], "\x01\x90\x1f", 3));
  g_assert_true (bytes_is (got->pdata[2], "\x02\x82\x23", 3));
  g_assert_true (bytes_is (got->pdata[3], "\x03\x82\x23", 3));
  gsize n;
  const char *err = g_bytes_get_data (got->pdata[4], &n);
  g_assert_cmpint (err[0], ==, 3);
  g_autofree char *text = g_strndup (err + 1, n - 1);
  g_assert_cmpstr (text, ==, "error forwarding port 9090 to pod p1: Connection refused");
  g_assert_cmpint (pod.dials, ==, 2);

  /* Client to pod on channel 0; garbage channels and the error channel are dropped. */
  const guint8 mask[4] = { 1, 2, 3, 4 };
  g_auto (CrispBuf) out = CRISP_BUF_INIT;
  crisp_ws_put_frame (&out, CRISP_WS_BINARY, TRUE, mask, "\x07zz", 3);
  crisp_ws_put_frame (&out, CRISP_WS_BINARY, TRUE, mask, "\x01zz", 3);
  crisp_ws_put_frame (&out, CRISP_WS_BINARY, TRUE, mask, "\x00hello", 6);
  g_assert_cmpint (write (client[0], out.data, out.len), ==, (ssize_t) out.len);
  char in[16];
  g_assert_cmpint (read (pod.pod[0], in, sizeof in), ==, 5);
  g_assert_cmpmem (in, 5, "hello", 5);

  /* Pod to client, then the pod's end closes: every port is done, the session closes. */
  g_assert_cmpint (write (pod.pod[0], "world", 5), ==, 5);
  close (pod.pod[0]);
  g_ptr_array_set_size (got, 0);
  read_messages (client[0], got, 2, &closed);
  g_assert_cmpuint (got->len, ==, 1);
  g_assert_true (bytes_is (got->pdata[0], "\x00world", 6));
  g_assert_true (closed);
  g_thread_join (t);
  close (client[0]);
  close (client[1]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/upgrade/head-end", test_head_end);
  g_test_add_func ("/upgrade/spdy-exec", test_spdy_exec);
  g_test_add_func ("/upgrade/ws-attach-base64", test_ws_attach_base64);
  g_test_add_func ("/upgrade/negotiation", test_negotiation);
  g_test_add_func ("/upgrade/refusals", test_refusals);
  g_test_add_func ("/upgrade/port-forward-ports", test_port_forward_ports);
  g_test_add_func ("/port-forward/ws-session", test_ws_port_forward_session);
  return g_test_run ();
}
