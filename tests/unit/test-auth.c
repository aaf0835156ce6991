/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "auth/auth.h"
#include "shared/crypto.h"
#include "tap.h"

int main(void) {
        const char *t;
        size_t n;

        CHECK(auth_parse_bearer(NULL, &t, &n) == -ENOKEY);
        CHECK(auth_parse_bearer("Bearer abc", &t, &n) == 0 && n == 3 && strncmp(t, "abc", 3) == 0);
        CHECK(auth_parse_bearer("bearer abc", &t, &n) == 0 && n == 3);
        CHECK(auth_parse_bearer("BEARER   abc  ", &t, &n) == 0 && n == 3 && strncmp(t, "abc", 3) == 0);
        CHECK(auth_parse_bearer("Basic abc", &t, &n) == -EINVAL);
        CHECK(auth_parse_bearer("Bearer", &t, &n) == -EINVAL);
        CHECK(auth_parse_bearer("Bearer ", &t, &n) == -EINVAL);
        CHECK(auth_parse_bearer("Bearerabc", &t, &n) == -EINVAL);
        CHECK(auth_parse_bearer("Bearer a b", &t, &n) == -EINVAL);
        CHECK(auth_parse_bearer("", &t, &n) == -EINVAL);

        CHECK(auth_is_master("secret", "secret", 6));
        CHECK(!auth_is_master("secret", "secret2", 7));
        CHECK(!auth_is_master("secret", "secre", 5));
        CHECK(!auth_is_master("secret", "secret", 5));
        CHECK(!auth_is_master("", "", 0));
        CHECK(secret_equal("a", "a") && !secret_equal("a", "b") && !secret_equal("a", "aa"));

        CHECK_STREQ(auth_type_to_string(AUTH_MASTER), "master");
        CHECK_STREQ(auth_type_to_string(AUTH_APIKEY), "apikey");
        return tap_done();
}
