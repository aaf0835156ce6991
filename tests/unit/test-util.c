/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/request.h"
#include "shared/crypto.h"
#include "shared/size.h"
#include "shared/secret-mask.h"
#include "shared/util.h"
#include "tap.h"

static char *norm(const char *p, bool tmp) {
        char *r = NULL;
        if (sandbox_path_normalize(p, tmp, &r) < 0)
                return NULL;
        return r;
}

int main(void) {
        uint64_t v;
        size_t n;
        char *s;
        void *d;
        char big[2000];

        CHECK(parse_size("512m", &v) == 0 && v == 512ull << 20);
        CHECK(parse_size("1g", &v) == 0 && v == 1ull << 30);
        CHECK(parse_size("1.5G", &v) == 0 && v == 3ull << 29);
        CHECK(parse_size("100 kb", &v) == 0 && v == 102400);
        CHECK(parse_size("4096", &v) == 0 && v == 4096);
        CHECK(parse_size("2tb", &v) == 0 && v == 2ull << 40);
        CHECK(parse_size("lots", &v) == -EINVAL);
        CHECK(parse_size("-1m", &v) == -EINVAL);
        CHECK(parse_size("1.m", &v) == -EINVAL);
        CHECK(parse_size("1x", &v) == -EINVAL);
        CHECK(parse_size("", &v) == -EINVAL);
        CHECK(parse_size("12mbb", &v) == -EINVAL);

        s = norm("a/b.txt", false); CHECK_STREQ(s, "/sandbox/a/b.txt"); free(s);
        s = norm("/sandbox/./x//y", false); CHECK_STREQ(s, "/sandbox/x/y"); free(s);
        s = norm("/sandbox", false); CHECK_STREQ(s, "/sandbox"); free(s);
        s = norm("/tmp/x", true); CHECK_STREQ(s, "/tmp/x"); free(s);
        CHECK(norm("/tmp/x", false) == NULL);
        CHECK(norm("../etc/passwd", true) == NULL);
        CHECK(norm("/sandbox/../etc", true) == NULL);
        CHECK(norm("a/../../b", true) == NULL);
        CHECK(norm("/etc/passwd", true) == NULL);
        CHECK(norm("/sandboxes/x", true) == NULL);
        CHECK(norm("", true) == NULL);
        CHECK(norm("a\nb", true) == NULL);
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        CHECK(norm(big, true) == NULL);

        s = utf8_sanitize("ok\xff\xfe", 4, &n);
        CHECK(s && n == 8 && memcmp(s, "ok\xef\xbf\xbd\xef\xbf\xbd", 8) == 0);
        free(s);
        s = utf8_sanitize("h\xc3\xa9\xe2\x82\xac", 6, &n);
        CHECK(s && n == 6);
        free(s);
        s = utf8_sanitize("\xed\xa0\x80", 3, &n);  /* a surrogate is not valid UTF-8 */
        CHECK(s && n == 9);
        free(s);

        {
                char *needles[] = { (char *) "hunter2", (char *) "abc", NULL };
                SecretMask *m = NULL;
                size_t used;
                CHECK(secret_mask_new(needles, &m) == 0 && m);
                s = secret_mask_apply(m, "x hunter2 abcabc", 16, true, &n, &used);
                CHECK_STREQ(s, "x *** ******");
                CHECK(used == 16);
                free(s);
                /* not final: a tail that may begin a secret waits */
                s = secret_mask_apply(m, "abc hunt", 8, false, &n, &used);
                CHECK_STREQ(s, "*** ");
                CHECK(used == 4);
                free(s);
                secret_mask_free(m);
        }
        {
                /* the longest secret starting at a place wins; overlapping ones; suffixes of others */
                char *needles[] = { (char *) "ab", (char *) "abcd", (char *) "bcdx", (char *) "d", NULL };
                SecretMask *m = NULL;
                size_t used;
                CHECK(secret_mask_new(needles, &m) == 0);
                s = secret_mask_apply(m, "abcdx ab abc d", 14, true, &n, &used);
                CHECK_STREQ(s, "***x *** ***c ***");
                free(s);
                /* "ab" is complete but "abcd" may still come: it waits */
                s = secret_mask_apply(m, "zabc", 4, false, &n, &used);
                CHECK_STREQ(s, "z");
                CHECK(used == 1);
                free(s);
                secret_mask_free(m);
        }
        {
                /* no secrets: no matcher */
                char *none[] = { NULL };
                SecretMask *m = (SecretMask *) 1;
                CHECK(secret_mask_new(none, &m) == 0 && !m);
        }
        {
                /* 64 secrets of one repeated byte over 1 MiB of it: one pass, one "***" per run */
                char *needles[65];
                char *text = malloc(1 << 20);
                SecretMask *m = NULL;
                size_t used;
                for (int i = 0; i < 64; i++) {
                        needles[i] = malloc(i + 2);
                        memset(needles[i], 'a', i + 1);
                        needles[i][i + 1] = 0;
                }
                needles[64] = NULL;
                memset(text, 'a', 1 << 20);
                CHECK(secret_mask_new(needles, &m) == 0);
                s = secret_mask_apply(m, text, 1 << 20, true, &n, &used);
                CHECK(s && n == (1 << 20) / 64 * 3);
                free(s);
                secret_mask_free(m);
                for (int i = 0; i < 64; i++)
                        free(needles[i]);
                free(text);
        }

        s = base64_encode("hello\0x", 7);
        CHECK_STREQ(s, "aGVsbG8AeA==");
        CHECK(base64_decode(s, strlen(s), &d, &n) == 0 && n == 7 && memcmp(d, "hello\0x", 7) == 0);
        free(d);
        free(s);
        CHECK(base64_decode("abc", 3, &d, &n) == -EINVAL);
        CHECK(base64_decode("", 0, &d, &n) == 0 && n == 0);
        free(d);
        {
                char id[37], hex[65];
                CHECK(uuid4(id) == 0 && strlen(id) == 36 && id[14] == '4' && id[8] == '-');
                sha256_hex("abc", 3, hex);
                CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        }
        return tap_done();
}
