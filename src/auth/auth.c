/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "shared/crypto.h"
#include "shared/util.h"

const char *auth_type_to_string(AuthType t) {
        switch (t) {
        case AUTH_MASTER: return "master";
        case AUTH_APIKEY: return "apikey";
        default: return "none";
        }
}

int auth_parse_bearer(const char *header, const char **ret_token, size_t *ret_len) {
        const char *p;
        size_t n;

        if (!header)
                return -ENOKEY;
        p = header + strspn(header, " \t");
        if (strncasecmp(p, "bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
                return -EINVAL;
        p += 6;
        p += strspn(p, " \t");
        n = strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
        if (n == 0 || memchr(p, ' ', n) || memchr(p, '\t', n))
                return -EINVAL;
        *ret_token = p;
        *ret_len = n;
        return 0;
}

bool tenant_id_valid(const char *t) {
        size_t n = t ? strlen(t) : 0;
        if (n == 0 || n > TENANT_MAX || t[0] == '@')
                return false;
        for (const char *p = t; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

bool auth_is_master(const char *master_key, const char *token, size_t token_len) {
        _cleanup_free_ char *t = strndup(token, token_len);
        if (!t || isempty(master_key))
                return false;
        return secret_equal(master_key, t);
}
