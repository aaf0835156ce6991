/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

int random_bytes(void *p, size_t n);
void sha256_hex(const void *p, size_t n, char ret[SHA256_HEX_LEN + 1]);
void sha1_raw(const void *p, size_t n, uint8_t ret[20]);
/* Compares two strings in time independent of where they differ (and of their lengths). */
/* HMAC-SHA-256 of p under key, in lowercase hex. */
int hmac_sha256_hex(const char *key, const void *p, size_t n, char ret[SHA256_HEX_LEN + 1]);
bool secret_equal(const char *a, const char *b);
/* Standard base64 with padding. */
char *base64_encode(const void *p, size_t n);
int base64_decode(const char *s, size_t len, void **ret, size_t *ret_size);
/* UUID v4 in canonical 36-character form. */
int uuid4(char ret[37]);
