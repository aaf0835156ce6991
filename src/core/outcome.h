/* SPDX-License-Identifier: MIT */
#pragma once

/* Documented outcomes of the core's operations, apart from failures.
 *
 * A core operation returns < 0 (a negative errno) only when something failed inside the
 * server: the caller answers 500 / org.freedesktop.DBus.Error.Failed and the place that
 * handles it logs it once. Everything a client can cause or act on is an Outcome (> 0), which
 * each transport maps with one table: api/outcome-http.c for HTTP, bus/errors.c for D-Bus. */
typedef enum Outcome {
        OUTCOME_OK = 0,
        OUTCOME_INVALID,                /* bad input; the message says what */
        OUTCOME_SHUTTING_DOWN,
        OUTCOME_QUEUE_FULL,
        OUTCOME_QUEUE_TIMEOUT,
        OUTCOME_CANCELLED,
        OUTCOME_SESSION_LIMIT,
        OUTCOME_SESSION_NOT_FOUND,
        OUTCOME_RUNTIME_SWITCH,
        OUTCOME_PATH_REFUSED,           /* a path outside /sandbox or /tmp, a link out, not a regular file */
        OUTCOME_FILE_NOT_FOUND,
        OUTCOME_TOO_BIG,                /* files do not fit the sandbox or the answer's limit */
        OUTCOME_MEMORY_LIMIT,           /* a file does not fit the session's memory limit */
        OUTCOME_KEYS_DISABLED,          /* no key store (DB-backed auth off) */
        OUTCOME_KEY_UNKNOWN,
        OUTCOME_KEY_REVOKED,
        OUTCOME_KEY_EXPIRED,
        OUTCOME_KEY_NOT_FOUND,          /* revoking an id the store does not have */
        OUTCOME_AUTH_UNAVAILABLE,       /* the key store's database does not answer */
        OUTCOME_IMAGE_NOT_FOUND,
        OUTCOME_IMAGE_EXISTS,           /* building a name that is taken (or being built) */
        OUTCOME_IMAGE_IN_USE,           /* removing an image runs are using */
        OUTCOME_IMAGE_BUILD_FAILED,     /* the installer failed; the message has its output */
        OUTCOME_DRAINING,               /* the server is leaving: running work finishes, nothing new starts */
        OUTCOME_SESSION_LOST,           /* the session's server (another node of the cluster) is gone */
        OUTCOME_NODE_UNREACHABLE,       /* the session's server is live but did not answer */
        _OUTCOME_MAX,
} Outcome;

/* The words for an outcome when the operation gave none of its own. */
const char *outcome_message(Outcome o);
/* A short stable name ("queue-full"): audit records, logs, the D-Bus error names' source. */
const char *outcome_to_string(Outcome o);

/* The result of a call into the file layer (sandbox/fsio.c) as a core result: 0 on success,
 * the Outcome for an errno the file layer documents as the client's doing, and the errno
 * itself (an internal failure) for any other. Only for the file layer's own results: an
 * errno from a cgroup or a dead sandbox must never pass through here. */
int outcome_file_result(int r);
