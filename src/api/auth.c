/* SPDX-License-Identifier: MIT */
/* DB-backed key management: POST/GET /auth/keys, DELETE /auth/keys/:id, POST /auth/login.
 * Master key only (the router checks); every answer waits on the key store without blocking. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include <syslog.h>

/* A request waiting on the key store. Freed by the callback, or when the client goes away
 * (then the call is cancelled: the key is still made, only the answer is dropped). */
typedef struct AuthCall {
        HttpRequest *r;
        ManagerCall *call;
        bool login;
} AuthCall;

static void call_gone(HttpRequest *r, void *userdata) {
        AuthCall *c = userdata;
        manager_call_cancel(c->call);
        free(c);
}

static AuthCall *call_new(HttpRequest *r, bool login) {
        AuthCall *c = calloc(1, sizeof(AuthCall));
        if (c) {
                c->r = r;
                c->login = login;
        }
        return c;
}

/* The operation's immediate answer: under way (suspend until the callback), or refused. */
static int call_started(AuthCall *c, int k, const char *message) {
        HttpRequest *r = c->r;
        if (k != 0) {
                free(c);
                return api_reply_outcome(r, k, message);
        }
        http_request_suspend(r, call_gone, c);
        return 0;
}

static json_object *time_or_null(int64_t ms) {
        char buf[64];
        if (ms < 0)
                return NULL;
        return json_object_new_string(format_iso8601((uint64_t) ms * USEC_PER_MSEC, buf));
}

static json_object *key_json(const KeyInfo *k) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_add(o, "id", json_object_new_string(k->id));
        json_add(o, "name", json_object_new_string(k->name ?: ""));
        json_add(o, "keyPrefix", json_object_new_string(k->prefix));
        json_add(o, "tenantId", json_object_new_string(k->tenant));
        json_add(o, "createdAt", time_or_null(k->created_ms));
        json_add(o, "expiresAt", time_or_null(k->expires_ms));
        json_add(o, "lastUsedAt", time_or_null(k->last_used_ms));
        json_add(o, "revoked", json_object_new_boolean(k->revoked));
        return o;
}

static void on_created(int error, Outcome outcome, const KeyInfo *k, const char *plain, void *userdata) {
        AuthCall *c = userdata;
        json_object *o;

        if (error < 0 || outcome != OUTCOME_OK)
                (void) api_reply_outcome(c->r, error < 0 ? error : (int) outcome, NULL);
        else if ((o = json_object_new_object())) {
                if (c->login) {
                        json_add(o, "token", json_object_new_string(plain));
                        json_add(o, "expiresAt", time_or_null(k->expires_ms));
                        json_add(o, "keyId", json_object_new_string(k->id));
                        http_reply_json(c->r, MHD_HTTP_OK, o);
                } else {
                        json_add(o, "id", json_object_new_string(k->id));
                        json_add(o, "key", json_object_new_string(plain));
                        json_add(o, "name", json_object_new_string(k->name));
                        json_add(o, "keyPrefix", json_object_new_string(k->prefix));
                        json_add(o, "tenantId", json_object_new_string(k->tenant));
                        json_add(o, "expiresAt", time_or_null(k->expires_ms));
                        http_reply_json(c->r, MHD_HTTP_CREATED, o);
                }
        }
        free(c);
}

static int create_key(HttpRequest *r, ApiContext *ctx, bool login) {
        _cleanup_json_ json_object *body = NULL;
        const char *name = login ? "login" : NULL, *tenant = "default", *message = NULL;
        uint64_t ttl = login ? MIN(KEY_LOGIN_TTL_MS, ctx->m->config.auth_default_ttl_ms) : 0;
        AuthCall *c;
        int k;

        if (!ctx->m->keys)
                return api_reply_outcome(r, OUTCOME_KEYS_DISABLED, NULL);
        if (http_request_body_json(r, login, &body) > 0)
                return 0;
        if (body && !json_object_is_type(body, json_type_object))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Body must be a JSON object");
        if (json_get_string(body, "name", &name) == -EINVAL)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "name is required");
        if (json_get_string(body, "tenantId", &tenant) == -EINVAL)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "tenantId must be a string");
        k = json_get_u64(body, "ttlMs", &ttl);
        if (k == -EINVAL || (k >= 0 && ttl == 0))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "ttlMs must be a positive number of milliseconds");

        c = call_new(r, login);
        if (!c)
                return -ENOMEM;
        k = manager_key_create(ctx->m, name, tenant, ttl, "http", on_created, c, &c->call, &message);
        return call_started(c, k, message);
}

int api_auth_keys_create(HttpRequest *r, void *userdata) {
        return create_key(r, userdata, false);
}

int api_auth_login(HttpRequest *r, void *userdata) {
        return create_key(r, userdata, true);
}

static void on_listed(int error, Outcome outcome, const KeyInfo *keys, size_t n, void *userdata) {
        AuthCall *c = userdata;
        json_object *o, *a;

        if (error < 0 || outcome != OUTCOME_OK)
                (void) api_reply_outcome(c->r, error < 0 ? error : (int) outcome, NULL);
        else if ((o = json_object_new_object()) && (a = json_object_new_array())) {
                for (size_t i = 0; i < n; i++)
                        json_object_array_add(a, key_json(&keys[i]));
                json_add(o, "keys", a);
                http_reply_json(c->r, MHD_HTTP_OK, o);
        }
        free(c);
}

int api_auth_keys_list(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        const char *tenant = http_request_query(r, "tenantId");
        AuthCall *c;
        int k;

        c = call_new(r, false);
        if (!c)
                return -ENOMEM;
        k = manager_key_list(ctx->m, tenant, on_listed, c, &c->call);
        return call_started(c, k, k == OUTCOME_INVALID ? "Invalid tenantId" : NULL);
}

static void on_revoked(int error, Outcome outcome, const KeyInfo *k, const char *plain, void *userdata) {
        AuthCall *c = userdata;
        json_object *o;

        if (error < 0 || outcome != OUTCOME_OK)
                (void) api_reply_outcome(c->r, error < 0 ? error : (int) outcome, NULL);
        else if ((o = json_object_new_object())) {
                json_add(o, "ok", json_object_new_boolean(true));
                json_add(o, "id", json_object_new_string(k->id));
                http_reply_json(c->r, MHD_HTTP_OK, o);
        }
        free(c);
}

int api_auth_keys_revoke(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        AuthCall *c;
        int k;

        c = call_new(r, false);
        if (!c)
                return -ENOMEM;
        k = manager_key_revoke(ctx->m, http_request_param(r), "http", on_revoked, c, &c->call);
        return call_started(c, k, NULL);
}
