/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "shared/stream-filter.h"

void stream_filter_init(StreamFilter *f, char *const *secrets) {
        *f = (StreamFilter) { .secrets = secrets };
}

void stream_filter_done(StreamFilter *f) {
        buffer_done(&f->pending);
}

/* Length of the longest proper suffix of s[0..n) that is a prefix of some secret. */
static size_t secret_prefix_suffix(char *const *secrets, const char *s, size_t n) {
        size_t best = 0;
        for (char *const *p = secrets; p && *p; p++) {
                size_t sl = strlen(*p);
                for (size_t k = MIN(sl - 1, n); k > best; k--)
                        if (memcmp(s + n - k, *p, k) == 0) {
                                best = k;
                                break;
                        }
        }
        return best;
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
        size_t hold = 0, mlen, clen;
        const char *src;
        size_t n;
        int r;

        r = buffer_append(&f->pending, data, len);
        if (r < 0)
                return r;
        src = f->pending.data ?: "";
        n = f->pending.size;

        if (f->secrets && f->secrets[0]) {
                /* Mask complete occurrences, then keep back a tail that may begin a secret. */
                masked = mask_secrets(src, n, f->secrets, &mlen);
                if (!masked)
                        return -ENOMEM;
                if (!final)
                        hold = secret_prefix_suffix(f->secrets, masked, mlen);
                src = masked;
                n = mlen;
        }
        if (!final)
                hold = MAX(hold, utf8_incomplete_tail(src, n));

        clean = utf8_sanitize(src, n - hold, &clen);
        if (!clean)
                return -ENOMEM;
        r = buffer_append(out, clean, clen);
        if (r < 0)
                return r;

        {
                Buffer rest = {};
                r = buffer_append(&rest, src + n - hold, hold);
                if (r < 0)
                        return r;
                buffer_done(&f->pending);
                f->pending = rest;
        }
        return 0;
}
