/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "shared/secret-mask.h"
#include "shared/util.h"

/* Turns a byte stream that arrives in arbitrary chunks into text safe to send as it comes:
 * secrets are replaced by "***" even when a secret is split across chunks, and invalid UTF-8 is
 * replaced by U+FFFD without breaking a character that is split across chunks. Bytes that could
 * still become a secret or a character are held back until more arrive or the stream ends. */
typedef struct StreamFilter {
        const SecretMask *mask; /* borrowed, may be NULL */
        Buffer pending;         /* held-back bytes */
} StreamFilter;

void stream_filter_init(StreamFilter *f, const SecretMask *mask);
void stream_filter_done(StreamFilter *f);
/* Appends what can be released now to out (NUL-terminated). final: the stream ended. */
int stream_filter_feed(StreamFilter *f, const char *data, size_t len, bool final, Buffer *out);
