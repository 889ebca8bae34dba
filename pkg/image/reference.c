/* Image reference grammar (distribution's reference rules) and normalisation. */
#include "config.h"

#include "reference.h"
#include "crisp-error.h"

#include <string.h>

void
crisp_image_ref_free (CrispImageRef *ref)
{
  if (ref == NULL)
    return;
  g_free (ref->domain);
  g_free (ref->path);
  g_free (ref->tag);
  g_free (ref->digest);
  g_free (ref);
}

gboolean
crisp_digest_is_valid (const char *digest)
{
  if (digest == NULL || !g_str_has_prefix (digest, "sha256:"))
    return FALSE;
  const char *hex = digest + strlen ("sha256:");
  if (strlen (hex) != 64)
    return FALSE;
  for (const char *p = hex; *p; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

static gboolean
is_alnum_lower (char c)
{
  return g_ascii_isdigit (c) || (c >= 'a' && c <= 'z');
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+ */
static gboolean
path_component_is_valid (const char *s, size_t len)
{
  if (len == 0 || !is_alnum_lower (s[0]) || !is_alnum_lower (s[len - 1]))
    return FALSE;
  for (size_t i = 0; i < len;)
    {
      if (is_alnum_lower (s[i]))
        {
          i++;
          continue;
        }
      size_t j = i;
      if (s[i] == '.')
        j = i + 1;
      else if (s[i] == '_')
        j = (i + 1 < len && s[i + 1] == '_') ? i + 2 : i + 1;
      else if (s[i] == '-')
        while (j < len && s[j] == '-')
          j++;
      else
        return FALSE;
      if (j >= len || !is_alnum_lower (s[j]))
        return FALSE;
      i = j;
    }
  return TRUE;
}

/* domain := label ('.' label)* (':' port)?, label := [a-zA-Z0-9-]+ not starting/ending in '-' */
static gboolean
domain_is_valid (const char *d)
{
  const char *colon = strrchr (d, ':');
  size_t hostlen = colon ? (size_t) (colon - d) : strlen (d);
  if (colon != NULL)
    {
      if (colon[1] == '\0' || strlen (colon + 1) > 5)
        return FALSE;
      for (const char *p = colon + 1; *p; p++)
        if (!g_ascii_isdigit (*p))
          return FALSE;
    }
  if (hostlen == 0)
    return FALSE;
  gboolean label_start = TRUE;
  for (size_t i = 0; i < hostlen; i++)
    {
      char c = d[i];
      if (c == '.')
        {
          if (label_start || d[i - 1] == '-')
            return FALSE;
          label_start = TRUE;
          continue;
        }
      if (!g_ascii_isalnum (c) && c != '-')
        return FALSE;
      if (label_start && c == '-')
        return FALSE;
      label_start = FALSE;
    }
  return !label_start && d[hostlen - 1] != '-';
}

static gboolean
tag_is_valid (const char *t)
{
  size_t len = strlen (t);
  if (len == 0 || len > 128 || !(g_ascii_isalnum (t[0]) || t[0] == '_'))
    return FALSE;
  for (const char *p = t; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '.' && *p != '-')
      return FALSE;
  return TRUE;
}

static gboolean
invalid (GError **error, const char *text, const char *why)
{
  return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "invalid image reference '%s': %s", text,
                      why);
}

/* Splits "name[:tag][@digest]" into its parts; the tag's colon is the last one after the
 * last slash, so "host:5000/x" keeps its port. */
static gboolean
split_reference (const char *text, char **out_name, char **out_tag, char **out_digest,
                 GError **error)
{
  g_autofree char *name = g_strdup (text);
  char *at = strchr (name, '@');
  if (at != NULL)
    {
      *at = '\0';
      if (!crisp_digest_is_valid (at + 1))
        return invalid (error, text, "digest must be sha256:<64 lowercase hex digits>");
      *out_digest = g_strdup (at + 1);
    }
  char *slash = strrchr (name, '/');
  char *colon = strrchr (slash ? slash : name, ':');
  if (colon != NULL)
    {
      *colon = '\0';
      if (!tag_is_valid (colon + 1))
        return invalid (error, text, "malformed tag");
      *out_tag = g_strdup (colon + 1);
    }
  *out_name = g_steal_pointer (&name);
  return TRUE;
}

static gboolean
split_domain (const char *text, const char *name, CrispImageRef *ref, GError **error)
{
  const char *slash = strchr (name, '/');
  g_autofree char *first = slash ? g_strndup (name, slash - name) : NULL;
  if (first != NULL
      && (strchr (first, '.') || strchr (first, ':') || g_str_equal (first, "localhost")))
    {
      if (!domain_is_valid (first))
        return invalid (error, text, "malformed registry host");
      ref->domain = g_steal_pointer (&first);
      ref->path = g_strdup (slash + 1);
    }
  else
    {
      ref->domain = g_strdup (CRISP_IMAGE_DEFAULT_DOMAIN);
      ref->path = g_strdup (name);
    }
  if (g_str_equal (ref->domain, "index.docker.io"))
    g_free (ref->domain), ref->domain = g_strdup (CRISP_IMAGE_DEFAULT_DOMAIN);
  return TRUE;
}

static gboolean
check_path (const char *text, CrispImageRef *ref, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (ref->path, "/", -1);
  for (char **p = parts; *p; p++)
    if (!path_component_is_valid (*p, strlen (*p)))
      return invalid (error, text,
                      "repository name must be lowercase letters, digits and separators");
  if (g_str_equal (ref->domain, CRISP_IMAGE_DEFAULT_DOMAIN) && g_strv_length (parts) == 1)
    {
      char *full = g_strconcat ("library/", ref->path, NULL);
      g_free (ref->path);
      ref->path = full;
    }
  if (strlen (ref->domain) + 1 + strlen (ref->path) > CRISP_IMAGE_NAME_MAX)
    return invalid (error, text, "name longer than 255 characters");
  return TRUE;
}

CrispImageRef *
crisp_image_ref_parse (const char *text, GError **error)
{
  if (text == NULL || *text == '\0')
    return (invalid (error, "", "empty"), NULL);
  if (strlen (text) > 1024)
    return (invalid (error, "(too long)", "longer than 1024 characters"), NULL);
  g_autoptr (CrispImageRef) ref = g_new0 (CrispImageRef, 1);
  g_autofree char *name = NULL;
  if (!split_reference (text, &name, &ref->tag, &ref->digest, error))
    return NULL;
  if (*name == '\0')
    return (invalid (error, text, "empty name"), NULL);
  if (!split_domain (text, name, ref, error) || !check_path (text, ref, error))
    return NULL;
  if (ref->tag == NULL && ref->digest == NULL)
    ref->tag = g_strdup ("latest");
  return g_steal_pointer (&ref);
}

char *
crisp_image_ref_name (const CrispImageRef *ref)
{
  return g_strconcat (ref->domain, "/", ref->path, NULL);
}

char *
crisp_image_ref_tagged (const CrispImageRef *ref)
{
  if (ref->tag == NULL)
    return NULL;
  return g_strconcat (ref->domain, "/", ref->path, ":", ref->tag, NULL);
}

char *
crisp_image_ref_digested (const CrispImageRef *ref, const char *digest)
{
  const char *d = digest ? digest : ref->digest;
  g_return_val_if_fail (d != NULL, NULL);
  return g_strconcat (ref->domain, "/", ref->path, "@", d, NULL);
}

char *
crisp_image_ref_to_string (const CrispImageRef *ref)
{
  g_autofree char *name = crisp_image_ref_name (ref);
  return g_strconcat (name, ref->tag ? ":" : "", ref->tag ? ref->tag : "", ref->digest ? "@" : "",
                      ref->digest ? ref->digest : "", NULL);
}
