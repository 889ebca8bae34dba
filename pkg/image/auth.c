/* WWW-Authenticate parsing (untrusted, from any registry), token answers, credentials. */
#include "config.h"

#include "auth.h"
#include "crisp-error.h"

#include <json-glib/json-glib.h>
#include <string.h>

void
crisp_challenge_free (CrispChallenge *c)
{
  if (c == NULL)
    return;
  g_free (c->scheme);
  if (c->params)
    g_hash_table_unref (c->params);
  g_free (c);
}

static const char *
skip_space (const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

static gboolean
is_token_char (char c)
{
  return c != '\0' && (g_ascii_isalnum (c) || strchr ("!#$%&'*+-.^_`|~/", c) != NULL);
}

/* Reads a token or a quoted-string (with backslash escapes) at *pp. */
static char *
read_value (const char **pp)
{
  const char *p = *pp;
  GString *out = g_string_new (NULL);
  if (*p == '"')
    {
      for (p++; *p && *p != '"'; p++)
        {
          if (*p == '\\' && p[1] != '\0')
            p++;
          g_string_append_c (out, *p);
        }
      if (*p != '"')
        return (g_string_free (out, TRUE), NULL);
      p++;
    }
  else
    {
      while (*p && (is_token_char (*p) || *p == ':' || *p == '='))
        g_string_append_c (out, *p++);
    }
  *pp = p;
  return g_string_free (out, FALSE);
}

static gboolean
parse_params (const char *p, GHashTable *params, GError **error)
{
  while (*(p = skip_space (p)) != '\0')
    {
      const char *k = p;
      while (is_token_char (*p))
        p++;
      if (p == k || *(p = skip_space (p)) != '=')
        return crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED,
                            "malformed WWW-Authenticate parameter");
      g_autofree char *key = g_ascii_strdown (k, p - k);
      p = skip_space (p + 1);
      char *value = read_value (&p);
      if (value == NULL)
        return crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED,
                            "unterminated quoted string in WWW-Authenticate");
      g_hash_table_replace (params, g_steal_pointer (&key), value);
      p = skip_space (p);
      if (*p == ',')
        p++;
      else if (*p != '\0')
        return crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED,
                            "malformed WWW-Authenticate (expected ',')");
    }
  return TRUE;
}

CrispChallenge *
crisp_challenge_parse (const char *header, GError **error)
{
  if (header == NULL || strlen (header) > CRISP_WWW_AUTHENTICATE_MAX)
    return (
        crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED, "WWW-Authenticate missing or too long"),
        NULL);
  const char *p = skip_space (header);
  const char *s = p;
  while (is_token_char (*p))
    p++;
  if (p == s)
    return (crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED, "WWW-Authenticate has no scheme"),
            NULL);
  g_autoptr (CrispChallenge) c = g_new0 (CrispChallenge, 1);
  c->scheme = g_ascii_strdown (s, p - s);
  c->params = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!parse_params (p, c->params, error))
    return NULL;
  return g_steal_pointer (&c);
}

void
crisp_credentials_free (CrispCredentials *c)
{
  if (c == NULL)
    return;
  g_free (c->username);
  if (c->password)
    memset (c->password, 0, strlen (c->password));
  g_free (c->password);
  g_free (c->identity_token);
  g_free (c->registry_token);
  g_free (c);
}

static gboolean
nonempty (const char *s)
{
  return s != NULL && *s != '\0';
}

CrispCredentials *
crisp_credentials_new (const char *username, const char *password, const char *auth,
                       const char *identity_token, const char *registry_token, GError **error)
{
  if (!nonempty (username) && !nonempty (password) && !nonempty (auth) && !nonempty (identity_token)
      && !nonempty (registry_token))
    return NULL;
  g_autoptr (CrispCredentials) c = g_new0 (CrispCredentials, 1);
  if (nonempty (auth))
    {
      gsize len = 0;
      g_autofree guchar *raw = g_base64_decode (auth, &len);
      g_autofree char *text = g_strndup ((const char *) raw, len);
      char *colon = strchr (text, ':');
      if (colon == NULL)
        return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                             "auth.auth is not base64 of 'user:password'"),
                NULL);
      c->username = g_strndup (text, colon - text);
      c->password = g_strdup (colon + 1);
      memset (text, 0, len);
    }
  else if (nonempty (username))
    {
      c->username = g_strdup (username);
      c->password = g_strdup (password ? password : "");
    }
  c->identity_token = nonempty (identity_token) ? g_strdup (identity_token) : NULL;
  c->registry_token = nonempty (registry_token) ? g_strdup (registry_token) : NULL;
  return g_steal_pointer (&c);
}

char *
crisp_token_response_parse (const char *data, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  if (len > 1024 * 1024 || !json_parser_load_from_data (parser, data, (gssize) len, NULL))
    return (crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED, "token server answer is not JSON"),
            NULL);
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return (
        crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED, "token server answer is not an object"),
        NULL);
  JsonObject *o = json_node_get_object (root);
  const char *keys[] = { "token", "access_token" };
  for (size_t i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      JsonNode *n = json_object_get_member (o, keys[i]);
      if (n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
          && *json_node_get_string (n) != '\0')
        return g_strdup (json_node_get_string (n));
    }
  crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED, "token server answer has no token");
  return NULL;
}
