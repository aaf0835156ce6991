/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "shared/size.h"
#include "shared/util.h"

int parse_size(const char *s, uint64_t *ret) {
        const char *p = s;
        double v, mult = 1;
        char *end;

        if (isempty(s) || !isdigit((unsigned char) *p))
                return -EINVAL;
        while (isdigit((unsigned char) *p))
                p++;
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                while (isdigit((unsigned char) *p))
                        p++;
        }
        v = strtod(s, &end);
        if (end != p)
                return -EINVAL;
        while (*p == ' ' || *p == '\t')
                p++;
        switch (tolower((unsigned char) *p)) {
        case 'k': mult = 1024.0; p++; break;
        case 'm': mult = 1024.0 * 1024; p++; break;
        case 'g': mult = 1024.0 * 1024 * 1024; p++; break;
        case 't': mult = 1024.0 * 1024 * 1024 * 1024; p++; break;
        default: break;
        }
        if (tolower((unsigned char) *p) == 'b')
                p++;
        if (*p)
                return -EINVAL;
        v *= mult;
        if (v > 1e18)
                return -ERANGE;
        *ret = (uint64_t) floor(v);
        return 0;
}
