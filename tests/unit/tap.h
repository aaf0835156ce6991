/* SPDX-License-Identifier: MIT */
/* A minimal TAP producer for the unit tests: meson reads the "ok"/"not ok" lines. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                tap_n++;                                                                         \
                if (cond)                                                                        \
                        printf("ok %d - %s\n", tap_n, #cond);                                    \
                else {                                                                           \
                        tap_failed++;                                                            \
                        printf("not ok %d - %s (%s:%d)\n", tap_n, #cond, __FILE__, __LINE__);    \
                }                                                                                \
        } while (0)

#define CHECK_STREQ(a, b)                                                                        \
        do {                                                                                     \
                const char *_a = (a), *_b = (b);                                                 \
                tap_n++;                                                                         \
                if (_a && _b && strcmp(_a, _b) == 0)                                             \
                        printf("ok %d - %s == \"%s\"\n", tap_n, #a, _b);                         \
                else {                                                                           \
                        tap_failed++;                                                            \
                        printf("not ok %d - %s: got \"%s\", want \"%s\" (%s:%d)\n", tap_n, #a,   \
                               _a ? _a : "(null)", _b ? _b : "(null)", __FILE__, __LINE__);      \
                }                                                                                \
        } while (0)

static inline int tap_done(void) {
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}
