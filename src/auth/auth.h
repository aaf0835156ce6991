/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum AuthType {
        AUTH_NONE,
        AUTH_MASTER,
        AUTH_APIKEY,
} AuthType;

#define TENANT_MAX 128
/* The master key's tenant: a namespace of its own, which no key's tenant can name (tenant ids
 * never start with '@'). */
#define TENANT_MASTER "@master"

typedef struct AuthInfo {
        AuthType type;
        char tenant[TENANT_MAX + 1];  /* TENANT_MASTER for the master key */
        char key_id[37];              /* DB key id, empty for the master key */
        bool forwarded;               /* authenticated by another server of the cluster for its client */
} AuthInfo;

const char *auth_type_to_string(AuthType t);

/* Extracts the token from an "Authorization: Bearer <token>" value (scheme case-insensitive,
 * surrounding blanks ignored). -ENOKEY if the header is absent, -EINVAL if it is not a
 * non-empty bearer token. The returned pointer points into header. */
int auth_parse_bearer(const char *header, const char **ret_token, size_t *ret_len);

/* A tenant id a key may have: 1-TENANT_MAX printable characters, not starting with '@'. */
bool tenant_id_valid(const char *t);

/* Constant-time check of a presented token against the master key. */
bool auth_is_master(const char *master_key, const char *token, size_t token_len);
