/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/json-util.h"
#include "tap.h"

static int parse(const char *s, json_object **o) {
        return json_parse_limited(s, strlen(s), 4, o);
}

int main(void) {
        json_object *o = NULL;
        const char *s;
        uint64_t u;
        bool b;
        char deep[256];

        CHECK(parse("{\"a\":1}", &o) == 0 && json_object_is_type(o, json_type_object));
        json_object_put(o);
        CHECK(parse("  {\"a\":[1,2]}  \n", &o) == 0);
        json_object_put(o);
        CHECK(parse("{\"a\":1} x", &o) == -EBADMSG);
        CHECK(parse("{\"a\":1}{}", &o) == -EBADMSG);
        CHECK(parse("{", &o) == -EBADMSG);
        CHECK(parse("", &o) == -EBADMSG);
        CHECK(parse("nonsense", &o) == -EBADMSG);
        o = NULL;
        CHECK(parse("[[1]]", &o) == 0 && o);
        json_object_put(o);
        o = NULL;
        CHECK(parse("[[[[[[1]]]]]]", &o) == -ELOOP);
        memset(deep, '[', 200);
        deep[200] = 0;
        CHECK(parse(deep, &o) == -ELOOP || parse(deep, &o) == -EBADMSG);
        CHECK(parse("42", &o) == 0 && json_object_get_int(o) == 42);
        json_object_put(o);

        CHECK(parse("{\"s\":\"x\",\"n\":5,\"f\":1.5,\"neg\":-1,\"b\":true,\"z\":null,\"nul\":\"a\\u0000b\"}", &o) == 0);
        CHECK(json_get_string(o, "s", &s) == 0 && strcmp(s, "x") == 0);
        CHECK(json_get_string(o, "n", &s) == -EINVAL);
        CHECK(json_get_string(o, "missing", &s) == -ENOENT);
        CHECK(json_get_string(o, "z", &s) == -EINVAL || json_get_string(o, "z", &s) == -ENOENT);
        CHECK(json_get_string(o, "nul", &s) == -EINVAL);
        CHECK(json_get_u64(o, "n", &u) == 0 && u == 5);
        CHECK(json_get_u64(o, "f", &u) == -EINVAL);
        CHECK(json_get_u64(o, "neg", &u) == -EINVAL);
        CHECK(json_get_u64(o, "s", &u) == -EINVAL);
        CHECK(json_get_bool(o, "b", &b) == 0 && b);
        CHECK(json_get_bool(o, "n", &b) == -EINVAL);
        json_object_put(o);
        return tap_done();
}
