/* pkg/streaming/remotecommand.c on a socketpair: a WebSocket client written here drives an exec
 * session whose "runtime" is /bin/sh, and the status and size helpers. */
#include "config.h"

#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor-protocol.h"
#include "pkg/streaming/remotecommand.h"

static void
test_status_messages (void)
{
  char buf[1024];
  g_assert_cmpuint (crisp_rc_status_message (1, 0, NULL, buf, sizeof buf), ==, 0);
  g_assert_cmpuint (crisp_rc_status_message (3, 2, NULL, buf, sizeof buf), >, 0);
  g_assert_cmpstr (buf, ==, "command terminated with non-zero exit code: 2");
  crisp_rc_status_message (4, 0, NULL, buf, sizeof buf);
  g_assert_nonnull (strstr (buf, "\"status\":\"Success\""));
  crisp_rc_status_message (5, 7, NULL, buf, sizeof buf);
  g_assert_nonnull (strstr (buf, "\"reason\":\"ExitCode\",\"message\":\"7\""));
  crisp_rc_status_message (4, -1, "a \"quoted\"\nfailure", buf, sizeof buf);
  g_assert_nonnull (strstr (buf, "a  quoted  failure"));
  g_assert_cmpuint (crisp_rc_status_message (2, -1, "plain", buf, sizeof buf), ==, 5);
  /* A small buffer cuts, never overflows. */
  g_assert_cmpuint (crisp_rc_status_message (4, 0, NULL, buf, 8), ==, 7);
}

static void
test_parse_size (void)
{
  uint16_t w = 0, h = 0;
  const char *ok = "{\"Width\":80,\"Height\":24}";
  g_assert_true (crisp_rc_parse_size (ok, strlen (ok), &w, &h));
  g_assert_cmpuint (w, ==, 80);
  g_assert_cmpuint (h, ==, 24);
  const char *spaced = "{ \"Height\" : 50 , \"Width\": 132 }";
  g_assert_true (crisp_rc_parse_size (spaced, strlen (spaced), &w, &h));
  g_assert_cmpuint (w, ==, 132);
  g_assert_cmpuint (h, ==, 50);
  const char *bad[] = { "{\"Width\":0,\"Height\":24}",
                        "{\"Width\":70000,\"Height\":24}",
                        "{\"Width\":\"80\",\"Height\":24}",
                        "{\"Height\":24}",
                        "{}",
                        "" };
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (crisp_rc_parse_size (bad[i], strlen (bad[i]), &w, &h));
}

/* One masked client frame. */
static void
put_frame (GByteArray *out, guint8 opcode, const void *data, gsize len)
{
  guint8 head[2] = { 0x80 | opcode, 0x80 | (guint8) len };
  guint8 mask[4] = { 1, 2, 3, 4 };
  g_assert_cmpuint (len, <, 126);
  g_byte_array_append (out, head, 2);
  g_byte_array_append (out, mask, 4);
  for (gsize i = 0; i < len; i++)
    {
      guint8 b = ((const guint8 *) data)[i] ^ mask[i % 4];
      g_byte_array_append (out, &b, 1);
    }
}

typedef struct
{
  GString *channel[5];
  int messages[5];
  gboolean closed;
} Seen;

/* Reads server frames (unmasked, short) until the close frame or the end. */
static void
read_server (int fd, Seen *seen)
{
  g_autoptr (GByteArray) in = g_byte_array_new ();
  guint8 buf[4096];
  ssize_t n;
  while (!seen->closed && (n = read (fd, buf, sizeof buf)) > 0)
    {
      g_byte_array_append (in, buf, n);
      for (;;)
        {
          if (in->len < 2)
            break;
          gsize len = in->data[1] & 0x7f, off = 2;
          if (len == 126)
            {
              if (in->len < 4)
                break;
              len = ((gsize) in->data[2] << 8) | in->data[3];
              off = 4;
            }
          g_assert_cmpuint (len, !=, 127);
          if (in->len < off + len)
            break;
          guint8 op = in->data[0] & 0x0f;
          if (op == 0x8)
            seen->closed = TRUE;
          else
            {
              g_assert_cmpuint (op, ==, 0x2);
              g_assert_cmpuint (len, >=, 1);
              guint8 ch = in->data[off];
              g_assert_cmpuint (ch, <, 5);
              g_string_append_len (seen->channel[ch], (const char *) in->data + off + 1, len - 1);
              seen->messages[ch]++;
            }
          g_byte_array_remove_range (in, 0, off + len);
        }
    }
}

static void
run_ws_session (const char *script, guint32 flags, GByteArray *client_bytes, Seen *seen, int *code)
{
  int sv[2];
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, NULL };
  const char *response = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  pid_t pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      close (sv[1]);
      CrispRcSession s = { .fd = sv[0],
                           .framing = CRISP_MONITOR_FRAMING_WEBSOCKET,
                           .version = 5,
                           .flags = flags,
                           .response = (const guint8 *) response,
                           .response_len = strlen (response),
                           .leftover = client_bytes->data,
                           .leftover_len = client_bytes->len,
                           .argv = argv,
                           .attach_fd = -1 };
      _exit (crisp_rc_serve (&s) & 0xff);
    }
  close (sv[0]);
  char head[sizeof "HTTP/1.1 101 Switching Protocols\r\n\r\n" - 1];
  g_assert_cmpint (read (sv[1], head, sizeof head), ==, sizeof head);
  g_assert_cmpint (memcmp (head, response, sizeof head), ==, 0);
  for (int i = 0; i < 5; i++)
    seen->channel[i] = g_string_new (NULL);
  read_server (sv[1], seen);
  close (sv[1]);
  int st;
  g_assert_cmpint (waitpid (pid, &st, 0), ==, pid);
  *code = WEXITSTATUS (st);
}

static void
seen_clear (Seen *seen)
{
  for (int i = 0; i < 5; i++)
    g_string_free (seen->channel[i], TRUE);
}

static void
test_ws_exec_output_and_exit_code (void)
{
  g_autoptr (GByteArray) none = g_byte_array_new ();
  Seen seen = { 0 };
  int code;
  run_ws_session ("echo out; echo err >&2; exit 3",
                  CRISP_MONITOR_SESSION_STDOUT | CRISP_MONITOR_SESSION_STDERR, none, &seen, &code);
  g_assert_cmpint (code, ==, 3);
  g_assert_cmpstr (seen.channel[1]->str, ==, "out\n");
  g_assert_cmpstr (seen.channel[2]->str, ==, "err\n");
  g_assert_nonnull (strstr (seen.channel[3]->str, "\"message\":\"3\""));
  g_assert_true (seen.closed);
  seen_clear (&seen);
}

static void
test_ws_exec_stdin_and_v5_close (void)
{
  g_autoptr (GByteArray) client = g_byte_array_new ();
  put_frame (client, 0x2, "\0hello ", 7);
  put_frame (client, 0x2, "\0world", 6);
  put_frame (client, 0x2, "\xff\0", 2); /* v5: close stdin */
  Seen seen = { 0 };
  int code;
  run_ws_session ("cat; echo done", CRISP_MONITOR_SESSION_STDIN | CRISP_MONITOR_SESSION_STDOUT,
                  client, &seen, &code);
  g_assert_cmpint (code, ==, 0);
  g_assert_cmpstr (seen.channel[1]->str, ==, "hello worlddone\n");
  g_assert_nonnull (strstr (seen.channel[3]->str, "Success"));
  seen_clear (&seen);
}

static void
test_ws_garbage_ends_the_session (void)
{
  g_autoptr (GByteArray) client = g_byte_array_new ();
  guint8 unmasked[] = { 0x82, 0x02, 0x00, 'x' }; /* client frames must be masked */
  g_byte_array_append (client, unmasked, sizeof unmasked);
  Seen seen = { 0 };
  int code;
  run_ws_session ("sleep 30", CRISP_MONITOR_SESSION_STDOUT, client, &seen, &code);
  g_assert_true (seen.closed);
  seen_clear (&seen);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/remotecommand/status-messages", test_status_messages);
  g_test_add_func ("/remotecommand/parse-size", test_parse_size);
  g_test_add_func ("/remotecommand/ws-exec-output-and-exit-code",
                   test_ws_exec_output_and_exit_code);
  g_test_add_func ("/remotecommand/ws-exec-stdin-and-v5-close", test_ws_exec_stdin_and_v5_close);
  g_test_add_func ("/remotecommand/ws-garbage-ends-the-session", test_ws_garbage_ends_the_session);
  return g_test_run ();
}
