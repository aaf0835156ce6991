/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "shared/stream-filter.h"

void stream_filter_init(StreamFilter *f, const SecretMask *mask) {
        *f = (StreamFilter) { .mask = mask };
}

void stream_filter_done(StreamFilter *f) {
        buffer_done(&f->pending);
}

/* Bytes at the end of s that start a UTF-8 sequence not yet complete. */
static size_t utf8_incomplete_tail(const char *s, size_t n) {
        for (size_t back = 1; back <= 3 && back <= n; back++) {
                unsigned char c = (unsigned char) s[n - back];
                if ((c & 0xc0) == 0x80)
                        continue;   /* continuation byte: look further back */
                if (c >= 0xf5 || c == 0xc0 || c == 0xc1)
                        return 0;   /* never valid: nothing to wait for */
                size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
                return need > back ? back : 0;
        }
        return 0;
}

int stream_filter_feed(StreamFilter *f, const char *data, size_t len, bool final, Buffer *out) {
        _cleanup_free_ char *masked = NULL, *clean = NULL;
        size_t n, consumed, mlen, clen;
        const char *src;
        int r;

        r = buffer_append(&f->pending, data, len);
        if (r < 0)
                return r;
        src = f->pending.data ?: "";
        n = f->pending.size;
        /* A character split across chunks waits for its other bytes. */
        if (!final)
                n -= utf8_incomplete_tail(src, n);
        if (f->mask) {
                /* Complete occurrences are masked; a tail that may begin a secret waits. */
                masked = secret_mask_apply(f->mask, src, n, final, &mlen, &consumed);
                if (!masked)
                        return -ENOMEM;
        } else
                consumed = mlen = n;

        clean = utf8_sanitize(masked ?: src, mlen, &clen);
        if (!clean)
                return -ENOMEM;
        r = buffer_append(out, clean, clen);
        if (r < 0)
                return r;
        if (consumed > 0) {
                memmove(f->pending.data, src + consumed, f->pending.size - consumed);
                f->pending.size -= consumed;
                f->pending.data[f->pending.size] = 0;
        }
        return 0;
}
