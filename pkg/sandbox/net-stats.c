/* Interface counters of a pod's network namespace: /proc/net/dev parsed with bounds, read
 * from a thread that enters the namespace and ends there, so no thread of crisp's pools
 * ever changes namespace (the way the port-forward dialer does it). */
#include "config.h"

#include "net-stats.h"
#include "sandbox.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#define NET_DEV_COUNTERS 16

/* One decimal counter at *p (after spaces), at most end; advances *p past it. */
static gboolean
parse_counter (const char **p, const char *end, guint64 *out)
{
  const char *s = *p;
  while (s < end && *s == ' ')
    s++;
  if (s == end || !g_ascii_isdigit (*s))
    return FALSE;
  guint64 v = 0;
  for (; s < end && g_ascii_isdigit (*s); s++)
    {
      guint d = (guint) (*s - '0');
      if (v > (G_MAXUINT64 - d) / 10)
        return FALSE;
      v = v * 10 + d;
    }
  if (s < end && *s != ' ')
    return FALSE;
  *out = v;
  *p = s;
  return TRUE;
}

static gboolean
valid_name (const char *name, gsize len)
{
  if (len == 0 || len > CRISP_NET_DEV_NAME_MAX || !g_utf8_validate_len (name, len, NULL))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (g_ascii_isspace (name[i]) || g_ascii_iscntrl (name[i]) || name[i] == '/')
      return FALSE;
  return TRUE;
}

/* "  eth0: 1 2 ... 16" into *out; FALSE when the line is not that. */
static gboolean
parse_line (const char *line, const char *end, CrispNetDevStats *out)
{
  while (line < end && *line == ' ')
    line++;
  const char *colon = memchr (line, ':', (gsize) (end - line));
  if (colon == NULL || !valid_name (line, (gsize) (colon - line)))
    return FALSE;
  CrispNetDevStats s = { { 0 } };
  memcpy (s.name, line, (gsize) (colon - line));
  guint64 c[NET_DEV_COUNTERS];
  const char *p = colon + 1;
  for (int i = 0; i < NET_DEV_COUNTERS; i++)
    if (!parse_counter (&p, end, &c[i]))
      return FALSE;
  while (p < end && *p == ' ')
    p++;
  if (p != end)
    return FALSE;
  /* receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes
   * packets errs drop fifo colls carrier compressed */
  s.rx_bytes = c[0], s.rx_packets = c[1], s.rx_errors = c[2], s.rx_dropped = c[3];
  s.tx_bytes = c[8], s.tx_packets = c[9], s.tx_errors = c[10], s.tx_dropped = c[11];
  *out = s;
  return TRUE;
}

GArray *
crisp_net_dev_parse (const char *text, gsize len, GError **error)
{
  g_autoptr (GArray) out = g_array_new (FALSE, TRUE, sizeof (CrispNetDevStats));
  const char *p = text, *end = text + len;
  for (guint lineno = 1; p < end; lineno++)
    {
      const char *nl = memchr (p, '\n', (gsize) (end - p));
      const char *eol = nl ? nl : end;
      CrispNetDevStats s;
      if (lineno <= 2 ? memchr (p, '|', (gsize) (eol - p)) == NULL : !parse_line (p, eol, &s))
        return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "net/dev: line %u is not %s", lineno,
                            lineno <= 2 ? "a header" : "an interface and 16 counters"),
               NULL;
      if (lineno > 2 && !g_str_equal (s.name, "lo") && out->len < CRISP_NET_DEV_MAX_INTERFACES)
        g_array_append_val (out, s);
      p = nl ? nl + 1 : end;
    }
  return g_steal_pointer (&out);
}

typedef struct
{
  int ns_fd;
  char *text; /* malloc'd */
  size_t len;
  int result; /* 0 or -errno */
} NetDevRead;

static gpointer
read_thread (gpointer data)
{
  NetDevRead *r = data;
  if (setns (r->ns_fd, CLONE_NEWNET) < 0)
    r->result = -errno;
  else /* /proc/thread-self/net is this thread's namespace; /proc/self/net the leader's */
    r->result = crisp_read_all_at (AT_FDCWD, "/proc/thread-self/net/dev", CRISP_NET_DEV_MAX_BYTES,
                                   &r->text, &r->len);
  return NULL; /* the thread ends here, in the namespace it entered */
}

GArray *
crisp_net_dev_read_in (int ns_fd, GError **error)
{
  NetDevRead r = { ns_fd, NULL, 0, -EIO };
  GThread *t = g_thread_try_new ("crisp-netdev", read_thread, &r, error);
  if (t == NULL)
    return NULL;
  g_thread_join (t);
  _cleanup_free_ char *text = r.text;
  if (r.result < 0)
    return crisp_throw_errno (error, -r.result, "reading net/dev in a pod's network namespace"),
           NULL;
  return crisp_net_dev_parse (text, r.len, error);
}

int
crisp_pod_open_net_ns (CrispPod *pod)
{
  g_mutex_lock (&pod->op_lock); /* the namespace paths change under it */
  int fd = pod->net_ns ? open (pod->net_ns, O_RDONLY | O_CLOEXEC) : -1;
  int r = pod->net_ns == NULL ? -ENOENT : fd < 0 ? -errno : fd;
  g_mutex_unlock (&pod->op_lock);
  return r;
}
