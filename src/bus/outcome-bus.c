/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "bus/bus.h"
#include "bus/errors.h"
#include "shared/log.h"

/* The one table from core outcomes to D-Bus error names. */
static const char *const name_table[_OUTCOME_MAX] = {
        [OUTCOME_INVALID]           = BUS_ERROR_INVALID,
        [OUTCOME_SHUTTING_DOWN]     = BUS_ERROR_UNAVAILABLE,
        [OUTCOME_QUEUE_FULL]        = BUS_ERROR_LIMIT,
        [OUTCOME_QUEUE_TIMEOUT]     = BUS_ERROR_LIMIT,
        [OUTCOME_CANCELLED]         = BUS_ERROR_UNAVAILABLE,
        [OUTCOME_SESSION_LIMIT]     = BUS_ERROR_LIMIT,
        [OUTCOME_SESSION_NOT_FOUND] = BUS_ERROR_UNKNOWN_SESSION,
        [OUTCOME_RUNTIME_SWITCH]    = BUS_ERROR_INVALID,
        [OUTCOME_PATH_REFUSED]      = BUS_ERROR_FILE,
        [OUTCOME_FILE_NOT_FOUND]    = BUS_ERROR_FILE,
        [OUTCOME_TOO_BIG]           = BUS_ERROR_FILE,
        [OUTCOME_MEMORY_LIMIT]      = BUS_ERROR_FILE,
        [OUTCOME_KEYS_DISABLED]     = BUS_ERROR_AUTH_DB_OFF,
        [OUTCOME_KEY_UNKNOWN]       = BUS_ERROR_UNKNOWN_KEY,
        [OUTCOME_KEY_REVOKED]       = BUS_ERROR_UNKNOWN_KEY,
        [OUTCOME_KEY_EXPIRED]       = BUS_ERROR_UNKNOWN_KEY,
        [OUTCOME_KEY_NOT_FOUND]     = BUS_ERROR_UNKNOWN_KEY,
        [OUTCOME_AUTH_UNAVAILABLE]  = BUS_ERROR_UNAVAILABLE,
        [OUTCOME_IMAGE_NOT_FOUND]   = BUS_ERROR_UNKNOWN_IMAGE,
        [OUTCOME_IMAGE_EXISTS]      = BUS_ERROR_IMAGE,
        [OUTCOME_IMAGE_IN_USE]      = BUS_ERROR_IMAGE,
        [OUTCOME_IMAGE_BUILD_FAILED] = BUS_ERROR_IMAGE,
        [OUTCOME_DRAINING]          = BUS_ERROR_UNAVAILABLE,
        [OUTCOME_SESSION_LOST]      = BUS_ERROR_UNKNOWN_SESSION,
        [OUTCOME_NODE_UNREACHABLE]  = BUS_ERROR_UNAVAILABLE,
};

const char *bus_outcome_error_name(Outcome o) {
        return (unsigned) o < _OUTCOME_MAX && name_table[o] ? name_table[o] : SD_BUS_ERROR_FAILED;
}

int bus_set_outcome(sd_bus_error *error, int r, const char *message) {
        if (r < 0) {
                log_error_errno(r, "D-Bus call failed: %m");
                return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, "Internal error");
        }
        return sd_bus_error_set(error, bus_outcome_error_name((Outcome) r), message ?: outcome_message((Outcome) r));
}

int bus_reply_outcome(sd_bus_message *m, int r, const char *message) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        (void) bus_set_outcome(&error, r, message);
        return sd_bus_reply_method_error(m, &error);
}
