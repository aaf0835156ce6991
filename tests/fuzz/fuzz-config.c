/* SPDX-License-Identifier: MIT */
/* Fuzz target for the configuration file: anything is loaded or refused with a message that
 * names the key, and the defaults of a refused file are still whole. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/config.h"
#include "shared/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *error = NULL;
        Config c;
        int r;

        log_set_max_level(LOG_CRIT);   /* unknown keys are warned: not here */
        config_init(&c);
        r = config_load_string(&c, (const char *) data, size, &error);
        if (r == -EINVAL && !error)
                abort();
        if (r >= 0 && (c.max_concurrent == 0 || c.limits.body_bytes == 0))
                abort();   /* validated on load */
        free(error);
        config_done(&c);
        return 0;
}
