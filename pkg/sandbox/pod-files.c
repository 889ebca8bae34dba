/* The files a pod's containers mount: hostname, resolv.conf (from the DNS config or the
 * host's), hosts, and the sized tmpfs for /dev/shm, all under the pod's run directory. */
#include "config.h"

#include "sandbox-private.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

static gboolean
write_file (CrispPod *pod, const char *name, const char *text, GError **error)
{
  _cleanup_close_ int dfd = open (pod->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return crisp_throw_errno (error, errno, "opening '%s'", pod->run_dir);
  /* 0644: containers running as any user read them.  Replaced atomically but not synced:
   * the run directory and the pod it serves both end at a reboot. */
  int r = crisp_write_file_replace_at (dfd, name, text, strlen (text), 0644);
  if (r < 0)
    return crisp_throw_errno (error, r, "writing '%s/%s'", pod->run_dir, name);
  return TRUE;
}

static char *
host_file (const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &text, &len, NULL) || len > 64 * 1024)
    return g_strdup ("");
  return g_steal_pointer (&text);
}

static char *
resolv_conf (const Runtime__V1__DNSConfig *dns)
{
  if (dns == NULL || (dns->n_servers == 0 && dns->n_searches == 0 && dns->n_options == 0))
    return host_file ("/etc/resolv.conf");
  g_autoptr (GString) s = g_string_new (NULL);
  if (dns->n_searches > 0)
    {
      g_string_append (s, "search");
      for (size_t i = 0; i < dns->n_searches; i++)
        g_string_append_printf (s, " %s", dns->searches[i]);
      g_string_append_c (s, '\n');
    }
  for (size_t i = 0; i < dns->n_servers; i++)
    g_string_append_printf (s, "nameserver %s\n", dns->servers[i]);
  if (dns->n_options > 0)
    {
      g_string_append (s, "options");
      for (size_t i = 0; i < dns->n_options; i++)
        g_string_append_printf (s, " %s", dns->options[i]);
      g_string_append_c (s, '\n');
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

gboolean
crisp_pod_files_write_hosts (CrispPod *pod, GError **error)
{
  if (pod->net_ns == NULL && crisp_pod_config_host_network (pod->config))
    {
      g_autofree char *hosts = host_file ("/etc/hosts");
      return write_file (pod, "hosts", hosts, error);
    }
  g_autoptr (GString) s = g_string_new ("127.0.0.1\tlocalhost\n"
                                        "::1\tlocalhost ip6-localhost ip6-loopback\n"
                                        "fe00::0\tip6-localnet\n"
                                        "fe00::0\tip6-mcastprefix\n"
                                        "fe00::1\tip6-allnodes\n"
                                        "fe00::2\tip6-allrouters\n");
  for (char **ip = pod->ips; ip && *ip; ip++)
    g_string_append_printf (s, "%s\t%s\n", *ip, pod->hostname);
  return write_file (pod, "hosts", s->str, error);
}

gboolean
crisp_pod_files_write (CrispPod *pod, GError **error)
{
  g_autofree char *hostname = g_strdup_printf ("%s\n", pod->hostname);
  g_autofree char *resolv = resolv_conf (pod->config->dns_config);
  /* A pod with a network of its own gets its hosts file once its addresses are known. */
  return write_file (pod, "hostname", hostname, error)
         && write_file (pod, "resolv.conf", resolv, error)
         && (pod->net_ns != NULL || crisp_pod_files_write_hosts (pod, error));
}

gboolean
crisp_pod_shm_mount (const char *path, guint64 size, GError **error)
{
  if (mkdir (path, 0700) < 0 && errno != EEXIST)
    return crisp_throw_errno (error, errno, "creating '%s'", path);
  g_autofree char *opts = g_strdup_printf ("mode=1777,size=%" G_GUINT64_FORMAT, size);
  if (mount ("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
    return crisp_throw_errno (error, errno, "mounting the pod's shm at '%s'", path);
  return TRUE;
}

int
crisp_pod_shm_unmount (const char *path)
{
  if (path == NULL)
    return 0;
  if (umount2 (path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return -errno;
  if (rmdir (path) < 0 && errno != ENOENT)
    return -errno;
  return 0;
}
