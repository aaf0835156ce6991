/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "shared/macro.h"

/* Replaces secrets in text with "***" in one pass (Aho-Corasick), whatever their number: at each
 * position the longest secret that starts there is replaced, and scanning resumes after it. */
typedef struct SecretMask SecretMask;

/* secrets: NULL-terminated, non-empty strings; *ret is NULL when there are none. */
int secret_mask_new(char *const *secrets, SecretMask **ret);
SecretMask *secret_mask_free(SecretMask *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(SecretMask *, secret_mask_free);

/* Masks s[0..len). Unless final, stops before a tail that may still begin a secret (or end one
 * that began earlier): *ret_consumed tells how many input bytes the result covers, and the rest
 * is to be fed again with what follows. The result is NUL-terminated, its length in *ret_len. */
char *secret_mask_apply(const SecretMask *m, const char *s, size_t len, bool final, size_t *ret_len, size_t *ret_consumed);
