/* The registry client: one curl easy handle per transfer (transfers of one pull run in
 * several threads), a shared Authorization value guarded by a mutex. */
#include "config.h"

#include "registry.h"
#include "pkg/storage/sha256.h"
#include "crisp-error.h"
#include "crisp-base.h"

#include <curl/curl.h>
#include <string.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_S 15L
#define STALL_TIMEOUT_S 30L
#define ATTEMPTS 3

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CURL, curl_easy_cleanup)

struct _CrispRegistryClient
{
  char *base_url;
  char *repo_path;
  CrispCredentials *creds; /* nullable */
  GCancellable *cancellable;
  GMutex lock;
  char *authorization; /* "Bearer ..." / "Basic ...", guarded by lock */
};

typedef struct
{
  CrispRegistryClient *client;
  CURL *curl;
  GByteArray *mem; /* memory sink, or */
  int fd;          /* file sink */
  gsize max;
  CrispSha256 *sum;
  goffset received;
  gboolean too_big;
  int write_errno;
  char *content_type, *www_auth;
} Transfer;

void
crisp_registry_global_init (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once))
    {
      curl_global_init (CURL_GLOBAL_DEFAULT);
      g_once_init_leave (&once, 1);
    }
}

CrispRegistryClient *
crisp_registry_client_new (const CrispEndpoint *ep, const char *repo_path,
                           const CrispCredentials *creds, GCancellable *cancellable)
{
  CrispRegistryClient *c = g_new0 (CrispRegistryClient, 1);
  c->base_url = g_strdup (ep->base_url);
  c->repo_path = g_strdup (repo_path);
  if (creds != NULL)
    c->creds = crisp_credentials_new (creds->username, creds->password, NULL, creds->identity_token,
                                      creds->registry_token, NULL);
  else if (ep->username != NULL)
    c->creds = crisp_credentials_new (ep->username, ep->password, NULL, NULL, NULL, NULL);
  c->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  g_mutex_init (&c->lock);
  if (c->creds && c->creds->registry_token)
    c->authorization = g_strconcat ("Bearer ", c->creds->registry_token, NULL);
  return c;
}

void
crisp_registry_client_free (CrispRegistryClient *c)
{
  if (c == NULL)
    return;
  g_free (c->base_url);
  g_free (c->repo_path);
  crisp_credentials_free (c->creds);
  g_clear_object (&c->cancellable);
  g_mutex_clear (&c->lock);
  g_free (c->authorization);
  g_free (c);
}

const char *
crisp_registry_client_base_url (CrispRegistryClient *c)
{
  return c->base_url;
}

static size_t
on_header (char *buf, size_t size, size_t n, void *data)
{
  Transfer *t = data;
  size_t len = size * n;
  g_autofree char *line = g_strstrip (g_strndup (buf, len));
  if (g_str_has_prefix (line, "HTTP/"))
    {
      /* a new response (after a redirect or 100): forget the previous one's headers */
      g_clear_pointer (&t->content_type, g_free);
      g_clear_pointer (&t->www_auth, g_free);
    }
  else if (g_ascii_strncasecmp (line, "content-type:", 13) == 0)
    g_free (t->content_type), t->content_type = g_strdup (g_strstrip (line + 13));
  else if (g_ascii_strncasecmp (line, "www-authenticate:", 17) == 0 && t->www_auth == NULL)
    t->www_auth = g_strdup (g_strstrip (line + 17));
  return len;
}

static size_t
on_data (char *buf, size_t size, size_t n, void *data)
{
  Transfer *t = data;
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo (t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200)
    return len; /* error bodies and redirects are not content */
  if (t->received + (goffset) len > (goffset) t->max)
    {
      t->too_big = TRUE;
      return 0;
    }
  t->received += len;
  crisp_sha256_update (t->sum, buf, len);
  if (t->mem != NULL)
    g_byte_array_append (t->mem, (const guint8 *) buf, len);
  else
    {
      int r = crisp_write_all (t->fd, buf, len);
      if (r < 0)
        {
          t->write_errno = -r;
          return 0;
        }
    }
  return len;
}

static int
on_progress (void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  Transfer *t = data;
  return g_cancellable_is_cancelled (t->client->cancellable) ? 1 : 0;
}

static void
transfer_reset (Transfer *t)
{
  t->received = 0;
  t->too_big = FALSE;
  t->write_errno = 0;
  crisp_sha256_reset (t->sum);
  if (t->mem)
    g_byte_array_set_size (t->mem, 0);
  else if (t->fd >= 0)
    {
      G_GNUC_UNUSED int r = ftruncate (t->fd, 0);
      lseek (t->fd, 0, SEEK_SET);
    }
  g_clear_pointer (&t->content_type, g_free);
  g_clear_pointer (&t->www_auth, g_free);
}

static struct curl_slist *
make_headers (CrispRegistryClient *c, const char *accept)
{
  struct curl_slist *h = NULL;
  if (accept != NULL)
    {
      g_autofree char *a = g_strconcat ("Accept: ", accept, NULL);
      h = curl_slist_append (h, a);
    }
  g_mutex_lock (&c->lock);
  if (c->authorization != NULL)
    {
      g_autofree char *v = g_strconcat ("Authorization: ", c->authorization, NULL);
      h = curl_slist_append (h, v);
    }
  g_mutex_unlock (&c->lock);
  return h;
}

static void
setup_easy (CURL *curl, const char *url, Transfer *t, char *errbuf)
{
  curl_easy_setopt (curl, CURLOPT_URL, url);
  curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (curl, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, STALL_TIMEOUT_S);
  curl_easy_setopt (curl, CURLOPT_USERAGENT, "crisp/" PACKAGE_VERSION);
  curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (curl, CURLOPT_HEADERDATA, t);
  curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt (curl, CURLOPT_WRITEDATA, t);
  curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt (curl, CURLOPT_XFERINFODATA, t);
  curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
}

/* One HTTP exchange; *out_status is 0 when curl failed. */
static CURLcode
perform_once (Transfer *t, const char *url, const char *accept, long *out_status, char *errbuf)
{
  g_autoptr (CURL) curl = curl_easy_init ();
  if (curl == NULL)
    return CURLE_OUT_OF_MEMORY;
  t->curl = curl;
  transfer_reset (t);
  errbuf[0] = '\0';
  setup_easy (curl, url, t, errbuf);
  struct curl_slist *headers = make_headers (t->client, accept);
  curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform (curl);
  *out_status = 0;
  curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, out_status);
  curl_slist_free_all (headers);
  t->curl = NULL;
  return rc;
}

static gboolean
is_transient (CURLcode rc, long status)
{
  if (rc == CURLE_OK)
    return status == 429 || status >= 500;
  switch (rc)
    {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return TRUE;
    default:
      return FALSE;
    }
}

/* Fetches a token for the challenge into c->authorization. */
static gboolean fetch_token (CrispRegistryClient *c, CrispChallenge *ch, GError **error);

static gboolean
answer_challenge (CrispRegistryClient *c, const char *header, GError **error)
{
  g_autoptr (CrispChallenge) ch = crisp_challenge_parse (header, error);
  if (ch == NULL)
    return FALSE;
  if (g_str_equal (ch->scheme, "bearer"))
    return fetch_token (c, ch, error);
  if (g_str_equal (ch->scheme, "basic") && c->creds && c->creds->username)
    {
      g_autofree char *pair = g_strconcat (c->creds->username, ":", c->creds->password, NULL);
      g_autofree char *b64 = g_base64_encode ((const guchar *) pair, strlen (pair));
      g_mutex_lock (&c->lock);
      g_free (c->authorization);
      c->authorization = g_strconcat ("Basic ", b64, NULL);
      g_mutex_unlock (&c->lock);
      return TRUE;
    }
  return crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED,
                      "%s requires %s authentication and no credentials were given", c->base_url,
                      ch->scheme);
}

static gboolean
fail_status (CrispRegistryClient *c, const char *url, long status, GError **error)
{
  CrispErrorCode code = CRISP_ERROR_UNKNOWN;
  if (status == 401)
    code = CRISP_ERROR_UNAUTHENTICATED;
  else if (status == 403)
    code = CRISP_ERROR_PERMISSION_DENIED;
  else if (status == 404)
    code = CRISP_ERROR_NOT_FOUND;
  else if (status == 429 || status >= 500)
    code = CRISP_ERROR_UNAVAILABLE;
  return crisp_throw (error, code, "GET %s: HTTP %ld", url, status);
}

static gboolean
fail_curl (Transfer *t, const char *url, CURLcode rc, const char *errbuf, GError **error)
{
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    return crisp_throw (error, CRISP_ERROR_CANCELLED, "GET %s: cancelled", url);
  if (t->too_big)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "GET %s: more data than the %" G_GSIZE_FORMAT " bytes expected", url,
                        t->max);
  if (t->write_errno)
    return crisp_throw_errno (error, t->write_errno, "GET %s: writing", url);
  return crisp_throw (error, CRISP_ERROR_UNAVAILABLE, "GET %s: %s", url,
                      errbuf[0] ? errbuf : curl_easy_strerror (rc));
}

/* GET with retries for transient failures and one round of authentication. */
static gboolean
request (Transfer *t, const char *url, const char *accept, GError **error)
{
  char errbuf[CURL_ERROR_SIZE];
  gboolean authed = FALSE;
  for (int attempt = 0; attempt < ATTEMPTS;)
    {
      long status = 0;
      CURLcode rc = perform_once (t, url, accept, &status, errbuf);
      if (rc == CURLE_OK && status == 200)
        return TRUE;
      if (rc == CURLE_OK && status == 401 && !authed && t->www_auth != NULL)
        {
          authed = TRUE;
          if (!answer_challenge (t->client, t->www_auth, error))
            return FALSE;
          continue;
        }
      if (rc == CURLE_ABORTED_BY_CALLBACK || t->too_big || t->write_errno
          || !is_transient (rc, status) || ++attempt == ATTEMPTS)
        return rc != CURLE_OK ? fail_curl (t, url, rc, errbuf, error)
                              : fail_status (t->client, url, status, error);
      g_usleep (G_USEC_PER_SEC / 2 * attempt);
    }
  return FALSE;
}

static char *
token_url (CrispRegistryClient *c, CrispChallenge *ch, GError **error)
{
  const char *realm = g_hash_table_lookup (ch->params, "realm");
  if (realm == NULL
      || !(g_str_has_prefix (realm, "https://") || g_str_has_prefix (realm, "http://")))
    return (crisp_throw (error, CRISP_ERROR_UNAUTHENTICATED,
                         "%s: bearer challenge without an http(s) realm", c->base_url),
            NULL);
  const char *service = g_hash_table_lookup (ch->params, "service");
  const char *scope = g_hash_table_lookup (ch->params, "scope");
  g_autofree char *own_scope = g_strdup_printf ("repository:%s:pull", c->repo_path);
  g_autofree char *esc_scope = g_uri_escape_string (scope ? scope : own_scope, NULL, FALSE);
  g_autofree char *esc_service = service ? g_uri_escape_string (service, NULL, FALSE) : NULL;
  return g_strdup_printf ("%s%cscope=%s%s%s", realm, strchr (realm, '?') ? '&' : '?', esc_scope,
                          esc_service ? "&service=" : "", esc_service ? esc_service : "");
}

static gboolean
fetch_token (CrispRegistryClient *c, CrispChallenge *ch, GError **error)
{
  g_autofree char *url = token_url (c, ch, error);
  if (url == NULL)
    return FALSE;
  g_autoptr (CURL) curl = curl_easy_init ();
  g_autoptr (GByteArray) body = g_byte_array_new ();
  g_autoptr (CrispSha256) sum = crisp_sha256_new ();
  Transfer t = { .client = c, .curl = curl, .mem = body, .fd = -1, .max = 1024 * 1024, .sum = sum };
  char errbuf[CURL_ERROR_SIZE] = "";
  setup_easy (curl, url, &t, errbuf);
  g_autofree char *form = NULL;
  if (c->creds && c->creds->identity_token)
    {
      /* OAuth2: the identity token is a refresh token, POSTed to the realm */
      g_autofree char *rt = g_uri_escape_string (c->creds->identity_token, NULL, FALSE);
      g_autofree char *query = g_strdup (strchr (url, '?') + 1);
      form = g_strdup_printf ("grant_type=refresh_token&client_id=crisp&refresh_token=%s&%s", rt,
                              query);
      *strchr (url, '?') = '\0';
      curl_easy_setopt (curl, CURLOPT_URL, url);
      curl_easy_setopt (curl, CURLOPT_POSTFIELDS, form);
    }
  else if (c->creds && c->creds->username)
    {
      curl_easy_setopt (curl, CURLOPT_USERNAME, c->creds->username);
      curl_easy_setopt (curl, CURLOPT_PASSWORD, c->creds->password);
    }
  CURLcode rc = curl_easy_perform (curl);
  long status = 0;
  curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
  g_free (t.content_type);
  g_free (t.www_auth);
  if (rc != CURLE_OK)
    return fail_curl (&t, url, rc, errbuf, error);
  if (status != 200)
    return crisp_throw (error,
                        status == 401 || status == 403 ? CRISP_ERROR_UNAUTHENTICATED
                                                       : CRISP_ERROR_UNAVAILABLE,
                        "token server %s: HTTP %ld", url, status);
  char *token = crisp_token_response_parse ((const char *) body->data, body->len, error);
  if (token == NULL)
    return FALSE;
  g_mutex_lock (&c->lock);
  g_free (c->authorization);
  c->authorization = g_strconcat ("Bearer ", token, NULL);
  g_mutex_unlock (&c->lock);
  g_free (token);
  return TRUE;
}

static char *
checksum_digest (CrispSha256 *sum)
{
  return crisp_sha256_digest (sum);
}

gboolean
crisp_registry_get_manifest (CrispRegistryClient *c, const char *reference, GBytes **out_body,
                             char **out_content_type, char **out_digest, GError **error)
{
  g_autofree char *url
      = g_strdup_printf ("%s/v2/%s/manifests/%s", c->base_url, c->repo_path, reference);
  g_autoptr (GByteArray) body = g_byte_array_new ();
  g_autoptr (CrispSha256) sum = crisp_sha256_new ();
  Transfer t = { .client = c, .mem = body, .fd = -1, .max = CRISP_MANIFEST_MAX_BYTES, .sum = sum };
  gboolean ok = request (&t, url, CRISP_MANIFEST_ACCEPT, error);
  g_autofree char *content_type = g_steal_pointer (&t.content_type);
  g_free (t.www_auth);
  if (!ok)
    return FALSE;
  g_autofree char *digest = checksum_digest (sum);
  if (g_str_has_prefix (reference, "sha256:") && !g_str_equal (reference, digest))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "manifest %s from %s has digest %s",
                        reference, c->base_url, digest);
  *out_body = g_byte_array_free_to_bytes (g_steal_pointer (&body));
  *out_content_type = g_steal_pointer (&content_type);
  *out_digest = g_steal_pointer (&digest);
  return TRUE;
}

static gboolean
get_blob (CrispRegistryClient *c, const CrispDescriptor *d, Transfer *t, GError **error)
{
  g_autofree char *url
      = g_strdup_printf ("%s/v2/%s/blobs/%s", c->base_url, c->repo_path, d->digest);
  g_autoptr (CrispSha256) sum = crisp_sha256_new ();
  t->client = c;
  t->sum = sum;
  gboolean ok = request (t, url, NULL, error);
  g_free (t->content_type);
  g_free (t->www_auth);
  if (!ok)
    return FALSE;
  g_autofree char *digest = checksum_digest (sum);
  if (!g_str_equal (digest, d->digest))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS,
                        "blob %s: downloaded content has digest %s (digest mismatch)", d->digest,
                        digest);
  if (t->received != d->size)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS,
                        "blob %s: %" G_GINT64_FORMAT " bytes, the manifest says %" G_GINT64_FORMAT,
                        d->digest, (gint64) t->received, d->size);
  return TRUE;
}

GBytes *
crisp_registry_get_blob_bytes (CrispRegistryClient *c, const CrispDescriptor *d, gsize max,
                               GError **error)
{
  if (d->size > (gint64) max)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                         "blob %s is %" G_GINT64_FORMAT
                         " bytes, more than the limit of %" G_GSIZE_FORMAT,
                         d->digest, d->size, max),
            NULL);
  g_autoptr (GByteArray) body = g_byte_array_new ();
  Transfer t = { .mem = body, .fd = -1, .max = (gsize) d->size };
  if (!get_blob (c, d, &t, error))
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&body));
}

gboolean
crisp_registry_get_blob_fd (CrispRegistryClient *c, const CrispDescriptor *d, int fd,
                            GError **error)
{
  Transfer t = { .fd = fd, .max = (gsize) d->size };
  return get_blob (c, d, &t, error);
}
