/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <time.h>

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define NSEC_PER_USEC UINT64_C(1000)

uint64_t now_usec(clockid_t clock);
/* Wall-clock milliseconds since the epoch (what the databases' rows hold). */
static inline int64_t realtime_ms(void) {
        return (int64_t) (now_usec(CLOCK_REALTIME) / USEC_PER_MSEC);
}
/* ISO-8601 in UTC with milliseconds, like JavaScript's toISOString(): 2026-01-02T03:04:05.678Z */
char *format_iso8601(uint64_t realtime_usec, char buf[static 64]);
