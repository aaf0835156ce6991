/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "shared/json-util.h"

/* Upper bounds on the values and the objects in a JSON text, counted without parsing: every
 * value but the first follows a ',' or opens a container. */
static void json_count(const char *buf, size_t len, size_t *ret_values, size_t *ret_objects) {
        size_t values = 1, objects = 0;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                if (in_string) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_string = false;
                } else if (c == '"')
                        in_string = true;
                else if (c == ',' || c == '[')
                        values++;
                else if (c == '{') {
                        values++;
                        objects++;
                }
        }
        *ret_values = values;
        *ret_objects = objects;
}

int json_parse_limited(const char *buf, size_t len, int max_depth, json_object **ret) {
        _cleanup_free_ char *copy = NULL;
        json_tokener *tok;
        json_object *o;
        enum json_tokener_error err;
        size_t consumed;

        if (len >= INT32_MAX)
                return -E2BIG;
        if (memchr(buf, 0, len))
                return -EBADMSG;  /* JSON text never holds a raw NUL */
        /* json-c spends about 50 bytes per value and 250 per object: 10 MiB of "{}," would
         * cost gigabytes. (A file sent as a Node Buffer is one value per byte.) */
        {
                size_t values, objects;
                json_count(buf, len, &values, &objects);
                if (values > JSON_VALUES_MAX || objects > JSON_OBJECTS_MAX)
                        return -E2BIG;
        }
        if (buf[len] != 0) {
                /* The tokener needs the terminating NUL to finish a bare top-level number. */
                copy = strndup(buf, len);
                if (!copy)
                        return -ENOMEM;
                buf = copy;
        }
        tok = json_tokener_new_ex(max_depth);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, buf, (int) len + 1);
        err = json_tokener_get_error(tok);
        consumed = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        if (err == json_tokener_error_depth) {
                json_object_put(o);
                return -ELOOP;
        }
        if (!o || err != json_tokener_success) {
                json_object_put(o);
                return -EBADMSG;
        }
        for (size_t i = consumed; i < len; i++)
                if (!strchr(" \t\r\n", buf[i])) {
                        json_object_put(o);
                        return -EBADMSG;
                }
        *ret = o;
        return 0;
}

static int get(json_object *o, const char *key, json_type type, json_object **ret) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return -ENOENT;
        if (!json_object_is_type(v, type))
                return -EINVAL;
        *ret = v;
        return 0;
}

int json_get_string(json_object *o, const char *key, const char **ret) {
        json_object *v;
        int r = get(o, key, json_type_string, &v);
        if (r < 0)
                return r;
        /* Embedded NUL bytes would silently truncate: refuse them. */
        if (strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                return -EINVAL;
        *ret = json_object_get_string(v);
        return 0;
}

int json_get_bool(json_object *o, const char *key, bool *ret) {
        json_object *v;
        int r = get(o, key, json_type_boolean, &v);
        if (r < 0)
                return r;
        *ret = json_object_get_boolean(v);
        return 0;
}

int json_get_double(json_object *o, const char *key, double *ret) {
        json_object *v;
        double d;
        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return -ENOENT;
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                return -EINVAL;
        d = json_object_get_double(v);
        if (!isfinite(d))
                return -EINVAL;
        *ret = d;
        return 0;
}

int json_get_u64(json_object *o, const char *key, uint64_t *ret) {
        double d;
        int r = json_get_double(o, key, &d);
        if (r < 0)
                return r;
        if (d < 0 || d != floor(d) || d > 9007199254740992.0)
                return -EINVAL;
        *ret = (uint64_t) d;
        return 0;
}

int json_get_object(json_object *o, const char *key, json_object **ret) {
        return get(o, key, json_type_object, ret);
}

int json_get_array(json_object *o, const char *key, json_object **ret) {
        return get(o, key, json_type_array, ret);
}

int json_add(json_object *o, const char *key, json_object *value) {
        if (json_object_object_add(o, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

const char *json_to_string(json_object *o) {
        return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

size_t json_escaped_prefix(const char *s, size_t len, uint64_t max_encoded) {
        uint64_t n = 0;
        size_t i = 0, keep = 0;

        while (i < len) {
                unsigned char c = (unsigned char) s[i];
                n += c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f' ? 2 :
                     c < 0x20 ? 6 : 1;
                if (n > max_encoded)
                        break;
                i++;
                /* Whole characters only: a cut never splits a UTF-8 sequence. */
                if (i == len || ((unsigned char) s[i] & 0xc0) != 0x80)
                        keep = i;
        }
        return i == len ? len : keep;
}
