/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "core/outcome.h"
#include "shared/macro.h"

static const struct {
        const char *name;
        const char *message;
} table[_OUTCOME_MAX] = {
        [OUTCOME_OK]                = { "ok", "OK" },
        [OUTCOME_INVALID]           = { "invalid", "Invalid request" },
        [OUTCOME_SHUTTING_DOWN]     = { "shutting-down", "Server is shutting down" },
        [OUTCOME_QUEUE_FULL]        = { "queue-full", "Too many requests — queue is full" },
        [OUTCOME_QUEUE_TIMEOUT]     = { "queue-timeout", "Timed out waiting for an execution slot" },
        [OUTCOME_CANCELLED]         = { "cancelled", "Execution cancelled" },
        [OUTCOME_SESSION_LIMIT]     = { "session-limit", "Too many sessions" },
        [OUTCOME_SESSION_NOT_FOUND] = { "session-not-found", "Session not found" },
        [OUTCOME_RUNTIME_SWITCH]    = { "runtime-switch", "A session keeps the runtime of its first run" },
        [OUTCOME_PATH_REFUSED]      = { "path-refused", "Refused path" },
        [OUTCOME_FILE_NOT_FOUND]    = { "file-not-found", "File not found" },
        [OUTCOME_TOO_BIG]           = { "too-big", "Too large" },
        [OUTCOME_MEMORY_LIMIT]      = { "memory-limit", "Does not fit in the session's memory limit" },
        [OUTCOME_KEYS_DISABLED]     = { "keys-disabled", "DB-backed auth is not enabled" },
        [OUTCOME_KEY_UNKNOWN]       = { "key-unknown", "Invalid API key" },
        [OUTCOME_KEY_REVOKED]       = { "key-revoked", "Invalid API key" },
        [OUTCOME_KEY_EXPIRED]       = { "key-expired", "Invalid API key" },
        [OUTCOME_KEY_NOT_FOUND]     = { "key-not-found", "Key not found" },
        [OUTCOME_AUTH_UNAVAILABLE]  = { "auth-unavailable", "Auth database unavailable" },
        [OUTCOME_IMAGE_NOT_FOUND]   = { "image-not-found", "Image not found" },
        [OUTCOME_IMAGE_EXISTS]      = { "image-exists", "An image of that name exists or is being built" },
        [OUTCOME_IMAGE_IN_USE]      = { "image-in-use", "The image is in use" },
        [OUTCOME_IMAGE_BUILD_FAILED] = { "image-build-failed", "The image could not be built" },
        [OUTCOME_DRAINING]          = { "draining", "Server is draining" },
        [OUTCOME_SESSION_LOST]      = { "session-lost", "Session was lost with its server" },
        [OUTCOME_NODE_UNREACHABLE]  = { "node-unreachable", "The session's server did not answer" },
};

const char *outcome_message(Outcome o) {
        return (unsigned) o < _OUTCOME_MAX ? table[o].message : "Invalid request";
}

const char *outcome_to_string(Outcome o) {
        return (unsigned) o < _OUTCOME_MAX ? table[o].name : NULL;
}

int outcome_file_result(int r) {
        if (r >= 0)
                return 0;
        switch (r) {
        case -ENOENT:
                return (int) OUTCOME_FILE_NOT_FOUND;
        case -EFBIG:
        case -ENOSPC:
        case -EDQUOT:
                return (int) OUTCOME_TOO_BIG;
        case -EXDEV:
        case -ELOOP:
        case -EPERM:
        case -EACCES:
        case -ENOTDIR:
        case -EISDIR:
        case -EINVAL:
        case -ENXIO:
        case -ENAMETOOLONG:
                return (int) OUTCOME_PATH_REFUSED;
        default:
                return r;
        }
}
