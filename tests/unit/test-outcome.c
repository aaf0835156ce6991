/* SPDX-License-Identifier: MIT */
/* Outcomes apart from errnos: one table to HTTP, one to D-Bus, and which errnos of the file
 * layer are the client's doing (the rest are failures: 500, never 400 or 404). */
#include <errno.h>

#include "api/api.h"
#include "bus/bus.h"
#include "bus/errors.h"
#include "core/outcome.h"
#include "tap.h"

int main(void) {
        /* Every outcome has words, a name, an HTTP status and a D-Bus error of its own. */
        for (int o = 1; o < _OUTCOME_MAX; o++) {
                unsigned st = api_outcome_status((Outcome) o);
                CHECK(outcome_message((Outcome) o) && outcome_to_string((Outcome) o));
                CHECK(st >= 400 && st < 500 ? true : st == 503);
                CHECK(strcmp(bus_outcome_error_name((Outcome) o), SD_BUS_ERROR_FAILED) != 0);
        }
        CHECK(api_outcome_status(OUTCOME_QUEUE_FULL) == 429);
        CHECK(api_outcome_status(OUTCOME_SESSION_NOT_FOUND) == 404);
        CHECK(api_outcome_status(OUTCOME_PATH_REFUSED) == 400);
        CHECK(api_outcome_status(OUTCOME_KEY_REVOKED) == 403);
        CHECK(api_outcome_status(OUTCOME_AUTH_UNAVAILABLE) == 503);
        CHECK(api_outcome_status(_OUTCOME_MAX) == 500);
        CHECK_STREQ(bus_outcome_error_name(OUTCOME_SESSION_NOT_FOUND), BUS_ERROR_UNKNOWN_SESSION);
        CHECK_STREQ(bus_outcome_error_name(OUTCOME_KEY_NOT_FOUND), BUS_ERROR_UNKNOWN_KEY);

        /* The file layer's refusals are outcomes ... */
        CHECK(outcome_file_result(-EXDEV) == OUTCOME_PATH_REFUSED);
        CHECK(outcome_file_result(-ELOOP) == OUTCOME_PATH_REFUSED);
        CHECK(outcome_file_result(-ENOENT) == OUTCOME_FILE_NOT_FOUND);
        CHECK(outcome_file_result(-EFBIG) == OUTCOME_TOO_BIG);
        CHECK(outcome_file_result(5) == 0);
        /* ... and the failures around it are not: what the init's writer (EIO: it could not
         * start) and sandbox_open_root() return when the sandbox's init fails. */
        CHECK(outcome_file_result(-EIO) == -EIO);
        CHECK(outcome_file_result(-ESRCH) == -ESRCH);
        CHECK(outcome_file_result(-ENOMEM) == -ENOMEM);

        /* The D-Bus error map gives isol8ctl an errno for each name. */
        sd_bus_error err = SD_BUS_ERROR_NULL;
        CHECK(sd_bus_error_add_map(isol8_bus_error_map) >= 0);
        CHECK(sd_bus_error_set(&err, BUS_ERROR_UNKNOWN_SESSION, "x") == -ESRCH);
        sd_bus_error_free(&err);
        CHECK(sd_bus_error_set(&err, BUS_ERROR_LIMIT, "x") == -EBUSY);
        sd_bus_error_free(&err);
        return tap_done();
}
