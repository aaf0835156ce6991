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

#define LOGIN_TTL_MS UINT64_C(3600000)
#define TTL_MAX_MS (UINT64_C(10) * 365 * 24 * 3600 * 1000)

typedef struct AuthCall {
        HttpRequest *r;
        ApiContext *ctx;
        bool login;
} AuthCall;

static void call_gone(HttpRequest *r, void *userdata) {
        AuthCall *c = userdata;
        c->r = NULL;   /* the store's answer is dropped when it comes */
}

static json_object *time_or_null(int64_t ms) {
        char buf[64];
        if (ms < 0)
                return NULL;
        return json_object_new_string(format_iso8601((uint64_t) ms * USEC_PER_MSEC, buf));
}

json_object *api_key_json(const KeyInfo *k);
json_object *api_key_json(const KeyInfo *k) {
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

static int reply_store_error(HttpRequest *r, int error) {
        if (error == -EHOSTDOWN || error == -ETIMEDOUT || error == -ESHUTDOWN)
                return http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Auth database unavailable");
        log_error_errno(error, "auth: key store request failed: %m");
        return http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal error");
}

static int need_store(HttpRequest *r, ApiContext *ctx) {
        if (!ctx->keys)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "DB-backed auth is not enabled"), 1;
        return 0;
}

void api_audit_key(Audit *a, bool created, const char *id, const char *tenant, const char *name, const char *via) {
        AuditField f[] = {
                { "ISOL8_KEY_ID", id },
                { "ISOL8_TENANT", tenant },
                { "ISOL8_KEY_NAME", name },
                { "ISOL8_VIA", via },
        };
        char message[256];
        snprintf(message, sizeof(message), "API key %.8s %s for tenant %s (over %s)", id ?: "?", created ? "created" : "revoked",
                 tenant ?: "?", via ?: "?");
        audit_emit(a, created ? AUDIT_MESSAGE_KEY_CREATED : AUDIT_MESSAGE_KEY_REVOKED, LOG_NOTICE,
                   created ? "key-created" : "key-revoked", message, f, ELEMENTSOF(f));
}

static void on_created(int error, const KeyInfo *k, const char *plain, void *userdata) {
        AuthCall *c = userdata;
        json_object *o;

        if (c->r) {
                if (error < 0)
                        reply_store_error(c->r, error);
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
                        log_info("auth: key %s created for tenant %s", k->id, k->tenant);
                }
        }
        if (error >= 0)
                api_audit_key(c->ctx->audit, true, k->id, k->tenant, k->name, "http");
        free(c);
}

static int create_key(HttpRequest *r, ApiContext *ctx, bool login) {
        _cleanup_json_ json_object *body = NULL;
        const char *name = login ? "login" : NULL, *tenant = "default";
        uint64_t ttl = login ? MIN(LOGIN_TTL_MS, ctx->default_ttl_ms) : ctx->default_ttl_ms;
        AuthCall *c;
        int k;

        if (need_store(r, ctx))
                return 0;
        if (http_request_body_json(r, login, &body) > 0)
                return 0;
        if (body && !json_object_is_type(body, json_type_object))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Body must be a JSON object");
        k = json_get_string(body, "name", &name);
        if (k == -EINVAL || (!login && (k < 0 || isempty(name))))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "name is required");
        if (strlen(name) > 255)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "name is longer than 255 characters");
        k = json_get_string(body, "tenantId", &tenant);
        if (k == -EINVAL || !tenant_id_valid(tenant))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "tenantId must be 1-%d printable characters, not starting with '@'", TENANT_MAX);
        k = json_get_u64(body, "ttlMs", &ttl);
        if (k == -EINVAL || ttl == 0 || ttl > TTL_MAX_MS)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "ttlMs must be a positive number of milliseconds");

        c = calloc(1, sizeof(AuthCall));
        if (!c)
                return -ENOMEM;
        c->r = r;
        c->ctx = ctx;
        c->login = login;
        k = keystore_create(ctx->keys, name, tenant, ttl, on_created, c);
        if (k < 0) {
                free(c);
                return k;
        }
        http_request_suspend(r, call_gone, c);
        return 0;
}

int api_auth_keys_create(HttpRequest *r, void *userdata) {
        return create_key(r, userdata, false);
}

int api_auth_login(HttpRequest *r, void *userdata) {
        return create_key(r, userdata, true);
}

static void on_listed(int error, const KeyInfo *keys, size_t n, void *userdata) {
        AuthCall *c = userdata;
        json_object *o, *a;

        if (c->r) {
                if (error < 0)
                        reply_store_error(c->r, error);
                else if ((o = json_object_new_object()) && (a = json_object_new_array())) {
                        for (size_t i = 0; i < n; i++)
                                json_object_array_add(a, api_key_json(&keys[i]));
                        json_add(o, "keys", a);
                        http_reply_json(c->r, MHD_HTTP_OK, o);
                }
        }
        free(c);
}

int api_auth_keys_list(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        const char *tenant = http_request_query(r, "tenantId");
        AuthCall *c;
        int k;

        if (need_store(r, ctx))
                return 0;
        if (tenant && !tenant_id_valid(tenant))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid tenantId");
        c = calloc(1, sizeof(AuthCall));
        if (!c)
                return -ENOMEM;
        c->r = r;
        k = keystore_list(ctx->keys, tenant, on_listed, c);
        if (k < 0) {
                free(c);
                return k;
        }
        http_request_suspend(r, call_gone, c);
        return 0;
}

typedef struct RevokeCall {
        HttpRequest *r;
        ApiContext *ctx;
        char id[37];
} RevokeCall;

static void on_revoked(int error, void *userdata) {
        RevokeCall *c = userdata;
        json_object *o;

        if (c->r) {
                if (error == -ENOENT)
                        http_reply_error(c->r, MHD_HTTP_NOT_FOUND, "Key not found");
                else if (error < 0)
                        reply_store_error(c->r, error);
                else if ((o = json_object_new_object())) {
                        json_add(o, "ok", json_object_new_boolean(true));
                        json_add(o, "id", json_object_new_string(c->id));
                        http_reply_json(c->r, MHD_HTTP_OK, o);
                        log_info("auth: key %s revoked", c->id);
                }
        }
        if (error >= 0)
                api_audit_key(c->ctx->audit, false, c->id, NULL, NULL, "http");
        free(c);
}

static void revoke_gone(HttpRequest *r, void *userdata) {
        ((RevokeCall *) userdata)->r = NULL;
}

int api_auth_keys_revoke(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        RevokeCall *c;
        int k;

        if (need_store(r, ctx))
                return 0;
        if (!r->param || strlen(r->param) != 36)
                return http_reply_error(r, MHD_HTTP_NOT_FOUND, "Key not found");
        c = calloc(1, sizeof(RevokeCall));
        if (!c)
                return -ENOMEM;
        c->r = r;
        c->ctx = ctx;
        memcpy(c->id, r->param, 37);
        k = keystore_revoke(ctx->keys, c->id, on_revoked, c);
        if (k < 0) {
                free(c);
                return k;
        }
        http_request_suspend(r, revoke_gone, c);
        return 0;
}
