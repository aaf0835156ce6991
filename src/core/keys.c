/* SPDX-License-Identifier: MIT */
/* API keys: authentication of presented tokens, and the master's key operations (create, list,
 * revoke) with their audit records, the same over HTTP and D-Bus. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/manager.h"
#include "shared/crypto.h"
#include "shared/log.h"
#include "shared/time-util.h"

struct ManagerCall {
        Manager *m;
        void *cb;               /* NULL once cancelled */
        void *userdata;
        char via[8];
        char id[37];
};

void manager_call_cancel(ManagerCall *c) {
        if (c)
                c->cb = NULL;
}

static ManagerCall *call_new(Manager *m, void *cb, void *userdata, const char *via) {
        ManagerCall *c = calloc(1, sizeof(ManagerCall));
        if (!c)
                return NULL;
        c->m = m;
        c->cb = cb;
        c->userdata = userdata;
        snprintf(c->via, sizeof(c->via), "%s", via ?: "");
        return c;
}

/* The store's errors: an unreachable database is an outcome the client can retry. */
static int store_error(int error, Outcome *ret) {
        if (error == -EHOSTDOWN || error == -ETIMEDOUT || error == -ESHUTDOWN) {
                *ret = OUTCOME_AUTH_UNAVAILABLE;
                return 0;
        }
        *ret = OUTCOME_OK;
        return error;
}

static void audit_key(Manager *m, bool created, const char *id, const char *tenant, const char *name, const char *via) {
        AuditField f[] = {
                { "ISOL8_KEY_ID", id },
                { "ISOL8_TENANT", tenant },
                { "ISOL8_KEY_NAME", name },
                { "ISOL8_VIA", via },
        };
        char message[256];

        snprintf(message, sizeof(message), "API key %.8s %s for tenant %s (over %s)", id ?: "?", created ? "created" : "revoked",
                 tenant ?: "?", via ?: "?");
        audit_emit(m->audit, created ? AUDIT_MESSAGE_KEY_CREATED : AUDIT_MESSAGE_KEY_REVOKED, LOG_NOTICE,
                   created ? "key-created" : "key-revoked", message, f, ELEMENTSOF(f));
}

static void on_lookup(int error, const KeyInfo *key, void *userdata) {
        ManagerCall *c = userdata;
        ManagerAuthFn cb = c->cb;
        AuthInfo who = { .type = AUTH_APIKEY };
        Outcome o;

        if (!cb)
                goto finish;
        switch (error) {
        case 0:
                snprintf(who.tenant, sizeof(who.tenant), "%s", key->tenant);
                snprintf(who.key_id, sizeof(who.key_id), "%s", key->id);
                cb(OUTCOME_OK, &who, c->userdata);
                goto finish;
        case -EKEYREVOKED:
                o = OUTCOME_KEY_REVOKED;
                break;
        case -EKEYEXPIRED:
                o = OUTCOME_KEY_EXPIRED;
                break;
        case -EHOSTDOWN:
        case -ETIMEDOUT:
        case -ESHUTDOWN:
                o = OUTCOME_AUTH_UNAVAILABLE;
                break;
        case -ENOENT:
                o = OUTCOME_KEY_UNKNOWN;
                break;
        default:
                /* The key is not known to be good: it is refused, and the failure logged once here. */
                log_error_errno(error, "auth: key lookup failed: %m");
                o = OUTCOME_KEY_UNKNOWN;
                break;
        }
        cb(o, NULL, c->userdata);
finish:
        free(c);
}

/* What a forwarded request's signature covers: who sent it when, the request line, and for
 * whom (the client's identity and address), each field on its own line. */
static int cluster_stamp(Manager *m, const char *node, int64_t time_ms, const char *method, const char *path,
                         const char *type, const char *key_id, const char *tenant, const char *remote,
                         char ret[SHA256_HEX_LEN + 1]) {
        _cleanup_free_ char *text = NULL;

        if (asprintf(&text, "isol8-cluster-v1\n%s\n%" PRId64 "\n%s\n%s\n%s\n%s\n%s\n%s", node, time_ms, method, path, type,
                     key_id, tenant, remote) < 0)
                return -ENOMEM;
        return hmac_sha256_hex(m->config.cluster_secret, text, strlen(text), ret);
}

int manager_cluster_sign(Manager *m, const char *method, const char *path, const AuthInfo *who, const char *remote,
                         ClusterSignature *ret) {
        const char *node = cluster_node_id(m->cluster), *type = auth_type_to_string(who->type);
        const char *key_id = who->key_id[0] ? who->key_id : "-";
        int64_t t = realtime_ms();
        char sig[SHA256_HEX_LEN + 1];
        int r;

        r = cluster_stamp(m, node, t, method, path, type, key_id, who->tenant, remote, sig);
        if (r < 0)
                return r;
        /* The two header values manager_cluster_authenticate() reads back. */
        snprintf(ret->stamp, sizeof(ret->stamp), "%s %" PRId64 " %s", node, t, sig);
        snprintf(ret->identity, sizeof(ret->identity), "%s %s %s", type, key_id, who->tenant);
        return 0;
}

int manager_cluster_authenticate(Manager *m, const char *stamp, const char *identity, const char *remote, const char *method,
                                 const char *path, AuthInfo *ret) {
        char node[CLUSTER_NODE_ID_MAX + 1], sig[SHA256_HEX_LEN + 1], type[16], key_id[37], want[SHA256_HEX_LEN + 1];
        const char *tenant;
        long long t;
        int n = 0;

        if (!m->cluster || !stamp || !identity || !remote)
                return OUTCOME_KEY_UNKNOWN;
        /* "<node> <time_ms> <sig>" and "<type> <key id or -> <tenant>" */
        if (sscanf(stamp, "%64s %lld %64s%n", node, &t, sig, &n) != 3 || stamp[n] != 0 ||
            sscanf(identity, "%15s %36s %n", type, key_id, &n) != 2)
                return OUTCOME_KEY_UNKNOWN;
        tenant = identity + n;
        if (!tenant_id_valid(tenant) && !streq(tenant, TENANT_MASTER))
                return OUTCOME_KEY_UNKNOWN;
        if (llabs((long long) realtime_ms() - t) > 60000)
                return OUTCOME_KEY_EXPIRED;
        if (cluster_stamp(m, node, t, method, path, type, key_id, tenant, remote, want) < 0 || !secret_equal(want, sig))
                return OUTCOME_KEY_UNKNOWN;
        *ret = (AuthInfo) { .forwarded = true };
        if (streq(type, auth_type_to_string(AUTH_MASTER)) && streq(tenant, TENANT_MASTER))
                ret->type = AUTH_MASTER;
        else if (streq(type, auth_type_to_string(AUTH_APIKEY)) && !streq(tenant, TENANT_MASTER))
                ret->type = AUTH_APIKEY;
        else
                return OUTCOME_KEY_UNKNOWN;
        snprintf(ret->tenant, sizeof(ret->tenant), "%s", tenant);
        if (!streq(key_id, "-"))
                snprintf(ret->key_id, sizeof(ret->key_id), "%s", key_id);
        return 0;
}

/* The order of API.md: the master key first, then the key store if there is one. */
int manager_authenticate(Manager *m, const char *token, size_t len, AuthInfo *ret_who, ManagerAuthFn cb, void *userdata,
                         ManagerCall **ret_call) {
        ManagerCall *c;
        int r;

        if (m->master_key && auth_is_master(m->master_key, token, len)) {
                *ret_who = (AuthInfo) { .type = AUTH_MASTER, .tenant = TENANT_MASTER };
                return 0;
        }
        if (!m->keys)
                return OUTCOME_KEY_UNKNOWN;
        c = call_new(m, (void *) cb, userdata, NULL);
        if (!c)
                return -ENOMEM;
        r = keystore_lookup(m->keys, token, len, on_lookup, c, NULL);
        if (r < 0) {
                free(c);
                return r == -ENOENT ? OUTCOME_KEY_UNKNOWN : r;
        }
        *ret_call = c;
        return MANAGER_PENDING;
}

static void on_created(int error, const KeyInfo *k, const char *plain, void *userdata) {
        ManagerCall *c = userdata;
        ManagerKeyFn cb = c->cb;
        Outcome o;

        if (error >= 0) {
                audit_key(c->m, true, k->id, k->tenant, k->name, c->via);
                log_info("auth: key %s created for tenant %s", k->id, k->tenant);
        }
        error = store_error(error, &o);
        if (cb)
                cb(error, o, error >= 0 && o == OUTCOME_OK ? k : NULL, plain, c->userdata);
        free(c);
}

int manager_key_create(Manager *m, const char *name, const char *tenant, uint64_t ttl_ms, const char *via, ManagerKeyFn cb,
                       void *userdata, ManagerCall **ret_call, const char **ret_message) {
        ManagerCall *c;
        int r;

        *ret_message = NULL;
        if (!m->keys)
                return OUTCOME_KEYS_DISABLED;
        if (!name || !*name) {
                *ret_message = "name is required";
                return OUTCOME_INVALID;
        }
        if (strlen(name) > KEY_NAME_MAX) {
                *ret_message = "name is longer than 255 characters";
                return OUTCOME_INVALID;
        }
        if (!tenant_id_valid(tenant)) {
                *ret_message = "tenant id must be 1-128 printable characters, not starting with '@'";
                return OUTCOME_INVALID;
        }
        if (ttl_ms == 0)
                ttl_ms = m->config.auth_default_ttl_ms;
        if (ttl_ms > KEY_TTL_MAX_MS) {
                *ret_message = "ttlMs must be a positive number of milliseconds";
                return OUTCOME_INVALID;
        }
        c = call_new(m, (void *) cb, userdata, via);
        if (!c)
                return -ENOMEM;
        r = keystore_create(m->keys, name, tenant, ttl_ms, on_created, c, NULL);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret_call = c;
        return 0;
}

static void on_listed(int error, const KeyInfo *keys, size_t n, void *userdata) {
        ManagerCall *c = userdata;
        ManagerKeyListFn cb = c->cb;
        Outcome o;

        error = store_error(error, &o);
        if (cb)
                cb(error, o, keys, n, c->userdata);
        free(c);
}

int manager_key_list(Manager *m, const char *tenant, ManagerKeyListFn cb, void *userdata, ManagerCall **ret_call) {
        ManagerCall *c;
        int r;

        if (!m->keys)
                return OUTCOME_KEYS_DISABLED;
        if (tenant && !tenant_id_valid(tenant))
                return OUTCOME_INVALID;
        c = call_new(m, (void *) cb, userdata, NULL);
        if (!c)
                return -ENOMEM;
        r = keystore_list(m->keys, tenant, on_listed, c, NULL);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret_call = c;
        return 0;
}

static void on_revoked(int error, void *userdata) {
        ManagerCall *c = userdata;
        ManagerKeyFn cb = c->cb;
        KeyInfo k = {};
        Outcome o = OUTCOME_OK;

        if (error >= 0) {
                audit_key(c->m, false, c->id, NULL, NULL, c->via);
                log_info("auth: key %s revoked", c->id);
        }
        if (error == -ENOENT) {
                error = 0;
                o = OUTCOME_KEY_NOT_FOUND;
        } else
                error = store_error(error, &o);
        snprintf(k.id, sizeof(k.id), "%s", c->id);
        if (cb)
                cb(error, o, &k, NULL, c->userdata);
        free(c);
}

int manager_key_revoke(Manager *m, const char *id, const char *via, ManagerKeyFn cb, void *userdata, ManagerCall **ret_call) {
        ManagerCall *c;
        int r;

        if (!m->keys)
                return OUTCOME_KEYS_DISABLED;
        if (!id || strlen(id) != 36)
                return OUTCOME_KEY_NOT_FOUND;
        c = call_new(m, (void *) cb, userdata, via);
        if (!c)
                return -ENOMEM;
        memcpy(c->id, id, 37);
        r = keystore_revoke(m->keys, c->id, on_revoked, c, NULL);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret_call = c;
        return 0;
}
