/* Internals shared by the CNI configuration loader and the plugin runner. */
#pragma once

#include "network.h"

G_BEGIN_DECLS

struct _CrispNetwork
{
  GStrv plugin_dirs;
  GMutex lock; /* guards conf_dir (a reload moves it) and the cache below */
  char *conf_dir;
  char *fingerprint;   /* names, sizes and mtimes of the files the cache was built from */
  char *conflist_text; /* the chosen list, normalised to {cniVersion, name, plugins}, as text:
                        * json-glib's reference counts are not atomic, so no JsonNode is ever
                        * shared between threads; each caller parses its own copy */
  char *conflist_file;
  char *error_message; /* why there is none */
};

/* Returns a private copy of the current configuration list, or NULL with a message. */
JsonNode *crisp_network_current_conflist (CrispNetwork *net, char **out_message);

/* Validates one parsed file (a list, or a single plugin config that gets wrapped) and
 * returns the normalised list. */
JsonNode *crisp_network_parse_conflist (const char *file_name, const char *text, GError **error);

/* "0.4.0" >= "0.3.1"? Compares dotted versions numerically. */
int crisp_network_version_cmp (const char *a, const char *b);

G_END_DECLS
