/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "shared/macro.h"

static inline json_object *json_object_putp_helper(json_object *o) {
        json_object_put(o);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_putp_helper);
#define _cleanup_json_ _cleanup_(json_object_putp_helperp)

#define JSON_DEPTH_MAX 32
/* Values in one JSON text (objects, arrays, members and elements all count), and objects. */
#define JSON_VALUES_MAX 2000000
#define JSON_OBJECTS_MAX 100000

/* Parses exactly one JSON value from the len bytes at buf (buf[len] must be readable; a NUL
 * there saves a copy), rejecting trailing garbage and nesting deeper than max_depth. -EBADMSG on bad JSON, -ELOOP when too deep. */
int json_parse_limited(const char *buf, size_t len, int max_depth, json_object **ret);

/* Type-checked getters. Return -ENOENT if absent (or JSON null), -EINVAL on a wrong type. */
int json_get_string(json_object *o, const char *key, const char **ret);
int json_get_bool(json_object *o, const char *key, bool *ret);
int json_get_u64(json_object *o, const char *key, uint64_t *ret);
int json_get_double(json_object *o, const char *key, double *ret);
int json_get_object(json_object *o, const char *key, json_object **ret);
int json_get_array(json_object *o, const char *key, json_object **ret);

/* Adds key: value, consuming value. Returns -ENOMEM. */
int json_add(json_object *o, const char *key, json_object *value);
const char *json_to_string(json_object *o);

/* How many bytes of UTF-8 text s fit in max_encoded bytes once escaped in a JSON string (cut
 * at a character boundary). */
size_t json_escaped_prefix(const char *s, size_t len, uint64_t max_encoded);
