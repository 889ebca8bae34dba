/* GLib cleanups for the libc codecs of pkg/streaming, for the GLib code that uses them (crisp's
 * streaming server and the tests); the codecs' own headers stay free of GLib. */
#pragma once

#include <glib.h>

#include "buf.h"
#include "spdy.h"
#include "ws.h"

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CrispBuf, crisp_buf_clear)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispSpdy, crisp_spdy_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispWs, crisp_ws_free)
