/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "api/api.h"
#include "shared/log.h"

static const unsigned status_table[_OUTCOME_MAX] = {
        [OUTCOME_OK]                = MHD_HTTP_OK,
        [OUTCOME_INVALID]           = MHD_HTTP_BAD_REQUEST,
        [OUTCOME_SHUTTING_DOWN]     = MHD_HTTP_SERVICE_UNAVAILABLE,
        [OUTCOME_QUEUE_FULL]        = MHD_HTTP_TOO_MANY_REQUESTS,
        [OUTCOME_QUEUE_TIMEOUT]     = MHD_HTTP_REQUEST_TIMEOUT,
        [OUTCOME_CANCELLED]         = MHD_HTTP_SERVICE_UNAVAILABLE,
        [OUTCOME_SESSION_LIMIT]     = MHD_HTTP_TOO_MANY_REQUESTS,
        [OUTCOME_SESSION_NOT_FOUND] = MHD_HTTP_NOT_FOUND,
        [OUTCOME_RUNTIME_SWITCH]    = MHD_HTTP_BAD_REQUEST,
        [OUTCOME_PATH_REFUSED]      = MHD_HTTP_BAD_REQUEST,
        [OUTCOME_FILE_NOT_FOUND]    = MHD_HTTP_NOT_FOUND,
        [OUTCOME_TOO_BIG]           = MHD_HTTP_CONTENT_TOO_LARGE,
        [OUTCOME_MEMORY_LIMIT]      = MHD_HTTP_CONTENT_TOO_LARGE,
        [OUTCOME_KEYS_DISABLED]     = MHD_HTTP_BAD_REQUEST,
        [OUTCOME_KEY_UNKNOWN]       = MHD_HTTP_FORBIDDEN,
        [OUTCOME_KEY_REVOKED]       = MHD_HTTP_FORBIDDEN,
        [OUTCOME_KEY_EXPIRED]       = MHD_HTTP_FORBIDDEN,
        [OUTCOME_KEY_NOT_FOUND]     = MHD_HTTP_NOT_FOUND,
        [OUTCOME_AUTH_UNAVAILABLE]  = MHD_HTTP_SERVICE_UNAVAILABLE,
        [OUTCOME_IMAGE_NOT_FOUND]   = MHD_HTTP_BAD_REQUEST,      /* named by options.image */
        [OUTCOME_IMAGE_EXISTS]      = MHD_HTTP_CONFLICT,
        [OUTCOME_IMAGE_IN_USE]      = MHD_HTTP_CONFLICT,
        [OUTCOME_IMAGE_BUILD_FAILED] = MHD_HTTP_BAD_REQUEST,
        [OUTCOME_DRAINING]          = MHD_HTTP_SERVICE_UNAVAILABLE,
        [OUTCOME_SESSION_LOST]      = MHD_HTTP_GONE,
        [OUTCOME_NODE_UNREACHABLE]  = MHD_HTTP_SERVICE_UNAVAILABLE,
};

unsigned api_outcome_status(Outcome o) {
        return (unsigned) o < _OUTCOME_MAX && status_table[o] ? status_table[o] : MHD_HTTP_INTERNAL_SERVER_ERROR;
}

int api_reply_outcome(HttpRequest *req, int r, const char *message) {
        if (r < 0) {
                log_error_errno(r, "%s %s failed: %m", http_request_method(req), http_request_path(req));
                return http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal error");
        }
        return http_reply_error(req, api_outcome_status((Outcome) r), "%s", message ?: outcome_message((Outcome) r));
}
