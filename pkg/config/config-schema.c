/* The schema table: every configuration key with its type, default and help text. */
#include "config.h"

#include "config-private.h"

#include <string.h>

#define FIELD(f) offsetof (CrispConfig, f)
#define HANDLER_FIELD(f) offsetof (CrispRuntimeHandler, f)

static const char *const log_levels[] = { "error", "warning", "info", "debug", NULL };
static const char *const cgroup_drivers[] = { "cgroupfs", "systemd", NULL };

static const char *
check_ip_address (const char *value)
{
  return g_hostname_is_ip_address (value) ? NULL : "an IP address";
}

const CrispConfigKey crisp_config_schema[] = {
  { "crisp", "listen", CRISP_CONFIG_PATH, FIELD (listen), "/run/crisp/crisp.sock",
    "Path of the unix socket the CRI clients (kubelet, crictl) connect to." },
  { "crisp", "root", CRISP_CONFIG_PATH, FIELD (root), "/var/lib/crisp",
    "Persistent state: images, writable layers, pod and container records." },
  { "crisp", "run-root", CRISP_CONFIG_PATH, FIELD (run_root), "/run/crisp",
    "Runtime state, gone at reboot (a tmpfs): bundles, exit files, pinned namespaces." },
  { "crisp", "log-level", CRISP_CONFIG_ENUM, FIELD (log_level), "info",
    "Least important messages logged: error, warning, info or debug.", .choices = log_levels },
  { "crisp", "shutdown-grace", CRISP_CONFIG_INT, FIELD (shutdown_grace), "10",
    "Seconds crisp waits for in-flight requests when stopping (0 to 3600).", .min = 0,
    .max = 3600 },

  { "runtime", "default-runtime", CRISP_CONFIG_STRING, FIELD (default_runtime), "runc",
    "Runtime handler used when a pod names no RuntimeClass; a [runtime.<name>] group." },
  { "runtime", "cgroup-driver", CRISP_CONFIG_ENUM, FIELD (cgroup_driver), "cgroupfs",
    "How container cgroups are managed: cgroupfs or systemd (must match the kubelet).",
    .choices = cgroup_drivers },
  { "runtime", "conmon", CRISP_CONFIG_PATH, FIELD (conmon), LIBEXECDIR "/crisp-conmon",
    "Path of the per-container monitor." },
  { "runtime", "restrict-oom-score-adj", CRISP_CONFIG_BOOL, FIELD (restrict_oom_score_adj), "false",
    "Never give a container an oom_score_adj below crisp's own (unprivileged hosts)." },
  { "runtime", "exec-direct", CRISP_CONFIG_BOOL, FIELD (exec_direct), "true",
    "ExecSync enters the container from its monitor instead of running 'runtime exec' (false: "
    "always the runtime; containers created before a change keep their way)." },

  /* [runtime.<name>]: one group per handler; path and root defaults depend on the name. */
  { NULL, "path", CRISP_CONFIG_COMMAND, HANDLER_FIELD (path), NULL,
    "OCI runtime binary: an absolute path, or a name looked up on PATH when used." },
  { NULL, "root", CRISP_CONFIG_PATH, HANDLER_FIELD (root), NULL,
    "The runtime's state directory (--root); default <run-root>/runtime/<name>.",
    .optional = TRUE },
  { NULL, "monitor-cgroup", CRISP_CONFIG_STRING, HANDLER_FIELD (monitor_cgroup), NULL,
    "Cgroup monitors move to before their container exists; unset: crisp's own cgroup.",
    .optional = TRUE },

  { "network", "cni-config-dir", CRISP_CONFIG_PATH, FIELD (cni_config_dir), "/etc/cni/net.d",
    "Directory of CNI network configuration files; SIGHUP reads it again." },
  { "network", "cni-plugin-dirs", CRISP_CONFIG_PATHV, FIELD (cni_plugin_dirs),
    "/opt/cni/bin;/usr/lib/cni", "Directories searched for CNI plugins, in order." },

  { "streaming", "address", CRISP_CONFIG_STRING, FIELD (streaming_address), "127.0.0.1",
    "IP address the exec/attach/port-forward server listens on.", .check = check_ip_address },
  { "streaming", "port", CRISP_CONFIG_INT, FIELD (streaming_port), "0",
    "Port of the streaming server; 0 picks a free one.", .min = 0, .max = 65535 },

  { "metrics", "enable", CRISP_CONFIG_BOOL, FIELD (metrics_enable), "false",
    "Serve Prometheus metrics over HTTP at http://<address>:<port>/metrics." },
  { "metrics", "address", CRISP_CONFIG_STRING, FIELD (metrics_address), "127.0.0.1",
    "IP address the metrics endpoint listens on.", .check = check_ip_address },
  { "metrics", "port", CRISP_CONFIG_INT, FIELD (metrics_port), "9090",
    "Port of the metrics endpoint; 0 picks a free one (crisp logs the port).", .min = 0,
    .max = 65535 },

  { "image", "registries-dir", CRISP_CONFIG_PATH, FIELD (registries_dir), "/etc/crisp/registries.d",
    "Directory of per-registry settings (mirrors, plain HTTP)." },
  { "image", "max-concurrent-downloads", CRISP_CONFIG_INT, FIELD (max_concurrent_downloads), "3",
    "Layers downloaded at once per image pull (1 to 64).", .min = 1, .max = 64 },
};

const size_t crisp_config_schema_len = G_N_ELEMENTS (crisp_config_schema);

const char *const *
crisp_config_schema_groups (void)
{
  static const char *groups[G_N_ELEMENTS (crisp_config_schema) + 1];
  static gsize initialized;

  if (g_once_init_enter (&initialized))
    {
      size_t n = 0;
      for (size_t i = 0; i < crisp_config_schema_len; i++)
        {
          const char *g = crisp_config_schema[i].group;
          if (g != NULL && !g_strv_contains (groups, g))
            groups[n++] = g;
        }
      g_once_init_leave (&initialized, 1);
    }
  return groups;
}

const CrispConfigKey *
crisp_config_schema_lookup (const char *group, const char *key)
{
  for (size_t i = 0; i < crisp_config_schema_len; i++)
    {
      const CrispConfigKey *row = &crisp_config_schema[i];
      if (g_strcmp0 (row->group, group) == 0 && strcmp (row->key, key) == 0)
        return row;
    }
  return NULL;
}
