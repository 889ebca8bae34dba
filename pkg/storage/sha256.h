/* SHA-256 for blobs and layer streams through libcrypto (SHA-NI where the CPU has it:
 * ~6x faster than GChecksum here, and a pull hashes every byte twice). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CrispSha256 CrispSha256;

CrispSha256 *crisp_sha256_new (void);
void crisp_sha256_update (CrispSha256 *h, const void *data, gsize len);
void crisp_sha256_reset (CrispSha256 *h);
/* "sha256:<64 hex>" of what was fed so far. */
char *crisp_sha256_digest (CrispSha256 *h);
void crisp_sha256_free (CrispSha256 *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispSha256, crisp_sha256_free)

G_END_DECLS
