/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "audit/failure-limit.h"
#include "shared/time-util.h"
#include "shared/util.h"

#define ADDRESSES_MAX 16

typedef struct Suppressed {
        char addr[64];          /* "" for the addresses past ADDRESSES_MAX */
        unsigned count;
} Suppressed;

struct FailureLimit {
        Audit *audit;
        sd_event_source *timer;
        uint64_t window_start;
        unsigned in_window;
        Suppressed suppressed[ADDRESSES_MAX + 1];
        size_t n_suppressed;
};

static void flush(FailureLimit *f) {
        for (size_t i = 0; i < f->n_suppressed; i++) {
                Suppressed *s = &f->suppressed[i];
                char count[16];
                snprintf(count, sizeof(count), "%u", s->count);
                AuditField fields[] = {
                        { "ISOL8_AUTH_REASON", "summary" },
                        { "ISOL8_REMOTE_ADDR", s->addr[0] ? s->addr : "other" },
                        { "ISOL8_FAILURE_COUNT", count },
                };
                char message[160];
                snprintf(message, sizeof(message), "%u more authentication failures from %s in the last second",
                         s->count, s->addr[0] ? s->addr : "other addresses");
                audit_emit(f->audit, AUDIT_MESSAGE_AUTH_FAILURE, LOG_WARNING, "auth-failure-summary", message,
                           fields, ELEMENTSOF(fields));
        }
        f->n_suppressed = 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        flush(userdata);
        return 0;
}

int failure_limit_new(FailureLimit **ret, sd_event *event, Audit *audit) {
        FailureLimit *f = calloc(1, sizeof(FailureLimit));
        int r;

        if (!f)
                return -ENOMEM;
        f->audit = audit;
        r = sd_event_add_time(event, &f->timer, CLOCK_MONOTONIC, 0, 100 * USEC_PER_MSEC, on_timer, f);
        (void) sd_event_source_set_description(f->timer, "auth-failure-limit");
        if (r < 0) {
                free(f);
                return r;
        }
        (void) sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
        *ret = f;
        return 0;
}

FailureLimit *failure_limit_free(FailureLimit *f) {
        if (!f)
                return NULL;
        flush(f);
        sd_event_source_disable_unref(f->timer);
        free(f);
        return NULL;
}

void failure_limit_record(FailureLimit *f, const char *remote, const char *reason, const char *method, const char *path) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        Suppressed *s = NULL;

        if (!f->audit)
                return;
        if (now >= f->window_start + USEC_PER_SEC) {
                f->window_start = now;
                f->in_window = 0;
        }
        if (f->in_window < AUTH_FAILURES_PER_SEC) {
                char p[AUTH_FAILURE_PATH_MAX + 1];
                snprintf(p, sizeof(p), "%s", path ?: "");
                AuditField fields[] = {
                        { "ISOL8_AUTH_REASON", reason },
                        { "ISOL8_REMOTE_ADDR", !isempty(remote) ? remote : NULL },
                        { "ISOL8_PATH", p },
                        { "ISOL8_METHOD", method },
                };
                char message[400];
                /* The path is the client's: no control character reaches the message. */
                for (char *c = p; *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                *c = '?';
                snprintf(message, sizeof(message), "authentication failure from %s: %s (%s %.64s)",
                         !isempty(remote) ? remote : "?", reason, method ?: "?", p);
                f->in_window++;
                audit_emit(f->audit, AUDIT_MESSAGE_AUTH_FAILURE, LOG_WARNING, "auth-failure", message, fields, ELEMENTSOF(fields));
                return;
        }
        for (size_t i = 0; i < f->n_suppressed && !s; i++)
                if (streq(f->suppressed[i].addr, remote ?: ""))
                        s = &f->suppressed[i];
        if (!s) {
                if (f->n_suppressed < ADDRESSES_MAX) {
                        s = &f->suppressed[f->n_suppressed++];
                        snprintf(s->addr, sizeof(s->addr), "%s", remote ?: "");
                } else {
                        /* The slot past the table counts every other address. */
                        s = &f->suppressed[ADDRESSES_MAX];
                        if (f->n_suppressed == ADDRESSES_MAX) {
                                f->n_suppressed++;
                                s->addr[0] = 0;
                        }
                }
                s->count = 0;
        }
        s->count++;
        if (sd_event_source_get_enabled(f->timer, NULL) <= 0) {
                (void) sd_event_source_set_time(f->timer, f->window_start + USEC_PER_SEC);
                (void) sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT);
        }
}
