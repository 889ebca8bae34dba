/* Seccomp profiles for containers: crisp's own RuntimeDefault allow-list and the loader that
 * validates Localhost profile files.  Both produce the OCI runtime spec's `linux.seccomp`
 * object, ready to be set in config.json. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Largest Localhost profile file read, and bounds on what it may contain. */
#define CRISP_SECCOMP_MAX_PROFILE_SIZE (1024 * 1024)
#define CRISP_SECCOMP_MAX_RULES 4096
#define CRISP_SECCOMP_MAX_NAMES 8192

/* The RuntimeDefault profile as an OCI `linux.seccomp` object for the build architecture
 * (x86_64 with its x86 and x32 personalities, or aarch64 with arm): defaultAction
 * SCMP_ACT_ERRNO (EPERM) and an allow-list of syscalls.  caps is the container's effective
 * capability set ("CAP_SYS_ADMIN" ...; NULL-terminated, may be NULL): syscalls that only
 * make sense with a capability (mount with CAP_SYS_ADMIN, ptrace helpers with
 * CAP_SYS_PTRACE, ...) are allowed only when the container holds it, as other runtimes do.
 * Never fails; the caller owns the node. */
JsonNode *crisp_seccomp_default_profile (const char *const *caps);

/* Parses and validates a seccomp profile from memory: JSON object with defaultAction,
 * optional defaultErrnoRet, architectures (or Docker's archMap), flags, syscalls[] with
 * names (or name), action, errnoRet, args (index 0..5, op SCMP_CMP_*, value, valueTwo).
 * Actions, architectures, comparison operators and syscall names are checked against
 * libseccomp; unknown keys in a rule, conditional rules (non-empty includes/excludes) and
 * anything past the bounds above fail with CRISP_ERROR_INVALID_ARGUMENT.  Returns a fresh
 * OCI `linux.seccomp` object holding only the recognised fields. */
JsonNode *crisp_seccomp_profile_parse (const char *data, gsize len, GError **error);

/* Reads path (absolute; at most CRISP_SECCOMP_MAX_PROFILE_SIZE bytes, a regular file) and
 * parses it with crisp_seccomp_profile_parse.  A missing or unreadable file is
 * CRISP_ERROR_INVALID_ARGUMENT naming the path (it comes from the request). */
JsonNode *crisp_seccomp_profile_load (const char *path, GError **error);

/* TRUE when name is a syscall libseccomp knows on some architecture. */
gboolean crisp_seccomp_syscall_is_known (const char *name);

/* Compiles a `linux.seccomp` object (as the two functions above produce) to a classic BPF
 * program written to fd, built the way runc 1.1 builds its filter (without runc's ENOSYS
 * stub).  Flags, listeners and SCMP_ACT_NOTIFY fail with CRISP_ERROR_FAILED_PRECONDITION:
 * the caller keeps such a container on the runtime's exec. */
gboolean crisp_seccomp_export_bpf (JsonNode *seccomp, int fd, GError **error);

G_END_DECLS
