/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "shared/crypto.h"
#include "shared/macro.h"

int random_bytes(void *p, size_t n) {
        uint8_t *b = p;
        while (n > 0) {
                ssize_t k = getrandom(b, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                b += k;
                n -= (size_t) k;
        }
        return 0;
}

/* SHA-256 fetched from its provider once: OpenSSL 3's one-shot SHA256() fetches it again on every
 * call, which cost more than the hashing itself (three hashes per run: two for the key, one for
 * the audit record). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) {
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void sha256(const void *p, size_t n, uint8_t ret[SHA256_DIGEST_LENGTH]) {
        (void) pthread_once(&sha256_once, sha256_fetch);
        if (!sha256_md || !EVP_Digest(p, n, ret, NULL, sha256_md, NULL))
                SHA256(p, n, ret);   /* the slow way rather than none */
}

static void hex(const uint8_t *p, size_t n, char *ret) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                ret[2 * i] = digits[p[i] >> 4];
                ret[2 * i + 1] = digits[p[i] & 15];
        }
        ret[2 * n] = 0;
}

void sha256_hex(const void *p, size_t n, char ret[SHA256_HEX_LEN + 1]) {
        uint8_t md[SHA256_DIGEST_LENGTH];
        sha256(p, n, md);
        hex(md, sizeof(md), ret);
}

void sha1_raw(const void *p, size_t n, uint8_t ret[20]) {
        SHA1(p, n, ret);
}

int hmac_sha256_hex(const char *key, const void *p, size_t n, char ret[SHA256_HEX_LEN + 1]) {
        uint8_t md[SHA256_DIGEST_LENGTH];
        unsigned len = 0;

        if (!HMAC(EVP_sha256(), key, (int) strlen(key), p, n, md, &len) || len != sizeof(md))
                return -EIO;
        hex(md, sizeof(md), ret);
        explicit_bzero(md, sizeof(md));
        return 0;
}

bool secret_equal(const char *a, const char *b) {
        uint8_t da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
        /* Hash first so the comparison is over fixed-length data whatever the inputs' lengths. */
        sha256(a, strlen(a), da);
        sha256(b, strlen(b), db);
        return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}

char *base64_encode(const void *p, size_t n) {
        size_t len = 4 * ((n + 2) / 3);
        char *s = malloc(len + 1);
        if (!s)
                return NULL;
        if (n > INT32_MAX) {
                free(s);
                return NULL;
        }
        EVP_EncodeBlock((unsigned char *) s, p, (int) n);
        s[len] = 0;
        return s;
}

int base64_decode(const char *s, size_t len, void **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t pad = 0;
        int k;

        if (len % 4 != 0 || len > INT32_MAX)
                return -EINVAL;
        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        if (len == 0) {
                *ret_size = 0;
                *ret = TAKE_PTR(out);
                return 0;
        }
        k = EVP_DecodeBlock(out, (const unsigned char *) s, (int) len);
        if (k < 0)
                return -EINVAL;
        if (s[len - 1] == '=')
                pad++;
        if (s[len - 2] == '=')
                pad++;
        *ret_size = (size_t) k - pad;
        *ret = TAKE_PTR(out);
        return 0;
}

/* A random (version 4) UUID from the kernel's random source. */
int uuid4(char ret[37]) {
        uint8_t b[16];
        int r = random_bytes(b, sizeof(b));
        if (r < 0)
                return r;
        b[6] = (b[6] & 0x0f) | 0x40;     /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80;     /* RFC 4122 variant */
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
                 b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}
