/* SHA-256 on libcrypto's EVP interface. */
#include "config.h"

#include "sha256.h"

#include <openssl/evp.h>

struct _CrispSha256
{
  EVP_MD_CTX *ctx;
};

CrispSha256 *
crisp_sha256_new (void)
{
  CrispSha256 *h = g_new0 (CrispSha256, 1);
  h->ctx = EVP_MD_CTX_new ();
  if (h->ctx == NULL || EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL) != 1)
    g_error ("libcrypto: cannot initialise SHA-256");
  return h;
}

void
crisp_sha256_update (CrispSha256 *h, const void *data, gsize len)
{
  EVP_DigestUpdate (h->ctx, data, len);
}

void
crisp_sha256_reset (CrispSha256 *h)
{
  EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL);
}

char *
crisp_sha256_digest (CrispSha256 *h)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX *copy = EVP_MD_CTX_new ();
  EVP_MD_CTX_copy_ex (copy, h->ctx);
  EVP_DigestFinal_ex (copy, md, &len);
  EVP_MD_CTX_free (copy);
  GString *s = g_string_new ("sha256:");
  for (unsigned int i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", md[i]);
  return g_string_free (s, FALSE);
}

void
crisp_sha256_free (CrispSha256 *h)
{
  if (h == NULL)
    return;
  EVP_MD_CTX_free (h->ctx);
  g_free (h);
}
