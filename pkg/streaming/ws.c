/* TEMPORARY stub until the real codec lands (not to be committed). */
#include "config.h"
#include <errno.h>
#include "ws.h"
CrispWs *crisp_ws_new (void) { return NULL; }
void crisp_ws_free (CrispWs *self) { (void) self; }
int crisp_ws_feed (CrispWs *s, const uint8_t *b, size_t l, CrispWsMessageFunc f, void *u) { return -ENOSYS; }
int crisp_ws_put (CrispBuf *o, CrispWsOpcode op, const void *d, size_t l) { return -ENOSYS; }
int crisp_ws_put_close (CrispBuf *o, uint16_t c, const char *r) { return -ENOSYS; }
int crisp_ws_put_channel (CrispBuf *o, bool b, uint8_t c, const void *d, size_t l) { return -ENOSYS; }
int crisp_ws_channel_decode (bool b, const CrispWsMessage *m, CrispBuf *s, uint8_t *c, const uint8_t **d, size_t *l) { return -ENOSYS; }
