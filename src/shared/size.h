/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* Parses "512m", "1.5g", "100 kb", "4096" (1024-based, as the original: ^\d+(\.\d+)?\s*[kmgt]?b?$). */
int parse_size(const char *s, uint64_t *ret);
