/* CNI networking for pods: the network configuration list from a directory, plugin lookup,
 * and ADD / DEL / CHECK per the CNI specification. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _CrispNetwork CrispNetwork;

CrispNetwork *crisp_network_new (const char *conf_dir, const char *const *plugin_dirs);
void crisp_network_free (CrispNetwork *net);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispNetwork, crisp_network_free)

/* TRUE when a valid configuration list exists and all its plugins are installed; otherwise
 * FALSE with a CRI condition reason ("NetworkPluginNotReady") and a message.  Re-reads the
 * directory when any file in it changed. */
gboolean crisp_network_status (CrispNetwork *net, char **out_reason, char **out_message);

/* Points net at conf_dir and reads it again now, whatever the files' sizes and times say (on
 * SIGHUP).  Returns what changed, for the log ("network 'b' from '/d/20-b.conflist', was 'a'
 * from '/d/10-a.conflist'"), or NULL when nothing did.  Calls in flight keep the list they
 * took; pods keep the one their attachment stores. */
char *crisp_network_reload (CrispNetwork *net, const char *conf_dir);

/* Absolute path of plugin `type` in the first plugin directory that has it, or NULL. */
char *crisp_network_find_plugin (CrispNetwork *net, const char *type);

/* One candidate configuration file, for `crisp check`: its normalised list, or why it is
 * refused. */
typedef struct
{
  char *path;
  JsonNode *list;
  GError *error;
} CrispNetworkFile;

void crisp_network_file_free (CrispNetworkFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispNetworkFile, crisp_network_file_free)

/* Every candidate file in conf_dir (CrispNetworkFile*), in the order crisp tries them: the
 * first with a list is the one used.  An absent or unreadable directory has none. */
GPtrArray *crisp_network_list_files (const char *conf_dir);

/* What identifies one pod's attachment to the network. */
typedef struct
{
  const char *container_id; /* the pod id */
  const char *netns;        /* path of the pinned network namespace */
  const char *ifname;       /* NULL: eth0 */
  const char *pod_name;
  const char *pod_namespace;
  const char *pod_uid;
  JsonNode *port_mappings; /* NULL or an array of CNI portMappings objects */
} CrispNetworkPod;

/* Snapshots the current configuration list and the pod's CNI parameters into an
 * "attachment" to persist before ADD, so that DEL after a crash or restart uses exactly what
 * ADD used.  FAILED_PRECONDITION when no valid configuration exists. */
JsonNode *crisp_network_prepare (CrispNetwork *net, const CrispNetworkPod *pod, GError **error);

/* Runs ADD through the list; on success stores the result in the attachment.  On failure
 * the plugins that may have done something are DELeted before returning. */
gboolean crisp_network_add (CrispNetwork *net, JsonNode *attachment, GCancellable *cancellable,
                            GError **error);
/* DEL in reverse order with the stored result; idempotent. */
gboolean crisp_network_del (CrispNetwork *net, JsonNode *attachment, GCancellable *cancellable,
                            GError **error);
/* CHECK (CNI >= 0.4.0 and not disabled); TRUE when the version has no CHECK. */
gboolean crisp_network_check (CrispNetwork *net, JsonNode *attachment, GCancellable *cancellable,
                              GError **error);

/* The addresses (without prefix length) in the attachment's result, primary first. */
GStrv crisp_network_attachment_ips (JsonNode *attachment);

G_END_DECLS

G_BEGIN_DECLS
/* Checks that an attachment read back from disk has the shape crisp_network_prepare ()
 * gives, so a corrupt record is refused instead of crashing DEL. */
gboolean crisp_network_attachment_validate (JsonNode *attachment, GError **error);
G_END_DECLS
