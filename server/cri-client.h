/* A small blocking CRI client over gRPC core, for the commands that talk to a running crisp
 * (`crisp status`): one channel to a unix socket, one unary call at a time. */
#pragma once

#include <glib.h>
#include <protobuf-c/protobuf-c.h>

#include "crisp-error.h"

G_BEGIN_DECLS

typedef struct _CrispCriClient CrispCriClient;

/* Checks that something accepts connections on socket_path (a plain connect, so that the
 * error names the errno: ENOENT, ECONNREFUSED, EACCES) and opens a channel to it; errors are
 * CRISP_ERROR_UNAVAILABLE. */
CrispCriClient *crisp_cri_client_new (const char *socket_path, GError **error);
void crisp_cri_client_free (CrispCriClient *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispCriClient, crisp_cri_client_free)

/* Calls `name`, a method with its service ("RuntimeService/Version"), with `request`, waiting at
 * most timeout_seconds; on success *out_response is a message of resp_desc's type, to free with
 * protobuf_c_message_free_unpacked ().  A gRPC failure is a CRISP_ERROR with the same code. */
gboolean crisp_cri_client_call (CrispCriClient *self, const char *name,
                                const ProtobufCMessage *request,
                                const ProtobufCMessageDescriptor *resp_desc, int timeout_seconds,
                                ProtobufCMessage **out_response, GError **error);

G_END_DECLS
