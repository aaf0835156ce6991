/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/db.h"
#include "auth/keystore.h"
#include "shared/crypto.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

#define CACHE_MAX 1024
#define TOUCH_MAX 4096
#define KEY_COLUMNS "id, name, key_prefix, tenant_id, created_at, expires_at, last_used_at, revoked"

/* Version 1 of the schema; the same meaning on all three databases. */
static const char *const schema_v1[] = {
        "CREATE TABLE IF NOT EXISTS isol8_schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS isol8_api_keys ("
        " id VARCHAR(36) NOT NULL PRIMARY KEY,"
        " name VARCHAR(255) NOT NULL,"
        " key_hash CHAR(64) NOT NULL UNIQUE,"
        " key_prefix VARCHAR(16) NOT NULL,"
        " tenant_id VARCHAR(128) NOT NULL,"
        " created_at BIGINT NOT NULL,"
        " expires_at BIGINT NULL,"
        " last_used_at BIGINT NULL,"
        " revoked INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS isol8_api_keys_tenant ON isol8_api_keys (tenant_id, created_at)",
};

typedef struct CacheEntry {
        char hash[SHA256_HEX_LEN + 1];
        KeyInfo key;
        uint64_t until;          /* CLOCK_MONOTONIC */
} CacheEntry;

typedef struct Touch {
        char id[37];
        int64_t when_ms;
} Touch;

struct KeyStore {
        sd_event *event;
        Db *db;
        KeyStoreConfig config;
        CacheEntry *cache;
        size_t n_cache;
        Touch *touches;
        size_t n_touches;
        sd_event_source *purge_timer;
        sd_event_source *touch_timer;
};

/* An operation under way; its handle (KeyStoreCall) is the caller's until the callback runs.
 * A cancel only forgets the callback: the query finishes and the op is freed then. */
struct KeyStoreCall {
        KeyStore *ks;
        void *cb;
        void *userdata;
        char hash[SHA256_HEX_LEN + 1];
        char *plain;
        KeyInfo key;
};
typedef struct KeyStoreCall Op;

void keystore_call_cancel(KeyStoreCall *c) {
        if (c)
                c->cb = NULL;
}

void key_info_done(KeyInfo *k) {
        free(k->name);
        k->name = NULL;
}

static int64_t cell_i64(const char *s, int64_t dflt) {
        return s ? strtoll(s, NULL, 10) : dflt;
}

static int row_to_key(const DbResult *r, unsigned row, KeyInfo *k) {
        *k = (KeyInfo) {};
        snprintf(k->id, sizeof(k->id), "%s", db_cell(r, row, 0) ?: "");
        k->name = strdup(db_cell(r, row, 1) ?: "");
        snprintf(k->prefix, sizeof(k->prefix), "%s", db_cell(r, row, 2) ?: "");
        snprintf(k->tenant, sizeof(k->tenant), "%s", db_cell(r, row, 3) ?: "");
        k->created_ms = cell_i64(db_cell(r, row, 4), 0);
        k->expires_ms = cell_i64(db_cell(r, row, 5), -1);
        k->last_used_ms = cell_i64(db_cell(r, row, 6), -1);
        k->revoked = cell_i64(db_cell(r, row, 7), 0) != 0;
        return k->name ? 0 : -ENOMEM;
}

static void on_schema(int error, const DbResult *res, void *userdata) {
        KeyStore *ks = userdata;
        if (error < 0)
                log_warning_errno(error, "auth: creating the key schema on %s failed: %m", db_describe(ks->db));
}

static void on_version(int error, const DbResult *res, void *userdata) {
        KeyStore *ks = userdata;
        char sql[160];
        /* Record version 1 once; a second server racing to do the same only loses a duplicate. */
        if (error < 0 || !res || res->n_rows > 0)
                return;
        snprintf(sql, sizeof(sql), "INSERT INTO isol8_schema_migrations (version, applied_at) VALUES (1, %" PRId64 ")", realtime_ms());
        (void) db_query(ks->db, sql, NULL, 0, on_schema, ks);
}

#define KEYS_CHANNEL "isol8_keys"

static void cache_evict_id(KeyStore *ks, const char *id);

static void on_listening(int error, const DbResult *res, void *userdata) {
        if (error < 0)
                log_warning("auth: cannot LISTEN for key revocations; other servers' revocations reach this one's cache only when its entries expire");
}

/* Another server revoked a key (PostgreSQL NOTIFY): its cached lookups go at once. */
static void on_key_notify(Db *db, const char *channel, const char *payload, void *userdata) {
        KeyStore *ks = userdata;
        if (streq(channel, KEYS_CHANNEL) && payload && *payload)
                cache_evict_id(ks, payload);
}

static void on_db_ready(Db *db, void *userdata) {
        KeyStore *ks = userdata;
        /* Queued ahead of any request, in order: the last one queued goes first. A fresh
         * connection LISTENs again (after a reconnect the cache may have missed revocations:
         * it is dropped). */
        if (db_kind(db) == DB_POSTGRES) {
                keystore_drop_cache(ks);
                (void) db_query_first(db, "LISTEN " KEYS_CHANNEL, on_listening, ks);
        }
        (void) db_query_first(db, "SELECT version FROM isol8_schema_migrations WHERE version = 1", on_version, ks);
        for (size_t i = ELEMENTSOF(schema_v1); i > 0; i--)
                (void) db_query_first(db, schema_v1[i - 1], on_schema, ks);
}

static void on_purged(int error, const DbResult *res, void *userdata) {
        if (error >= 0 && res && res->affected > 0)
                log_info("auth: purged %" PRIu64 " expired or revoked key(s)", res->affected);
}

static int on_purge_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        KeyStore *ks = userdata;
        DbParam p[] = { DB_INTP(realtime_ms()) };
        if (db_is_up(ks->db))
                (void) db_query(ks->db, "DELETE FROM isol8_api_keys WHERE revoked <> 0 OR (expires_at IS NOT NULL AND expires_at < $1)",
                                p, 1, on_purged, ks);
        (void) sd_event_source_set_time_relative(s, ks->config.purge_interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static void on_touched(int error, const DbResult *res, void *userdata) {
}

void keystore_flush(KeyStore *ks) {
        for (size_t i = 0; i < ks->n_touches; i++) {
                DbParam p[] = { DB_INTP(ks->touches[i].when_ms), DB_TEXTP(ks->touches[i].id) };
                (void) db_query(ks->db, "UPDATE isol8_api_keys SET last_used_at = $1 WHERE id = $2", p, 2, on_touched, ks);
        }
        ks->n_touches = 0;
}

static int on_touch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        KeyStore *ks = userdata;
        if (db_is_up(ks->db))
                keystore_flush(ks);
        (void) sd_event_source_set_time_relative(s, ks->config.touch_interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

int keystore_new(KeyStore **ret, sd_event *event, const char *conn, const KeyStoreConfig *config) {
        _cleanup_(keystore_freep) KeyStore *ks = NULL;
        int r;

        ks = calloc(1, sizeof(KeyStore));
        if (!ks)
                return -ENOMEM;
        ks->event = sd_event_ref(event);
        ks->config = *config;
        ks->cache = calloc(CACHE_MAX, sizeof(CacheEntry));
        ks->touches = calloc(TOUCH_MAX, sizeof(Touch));
        if (!ks->cache || !ks->touches)
                return -ENOMEM;
        r = db_open(&ks->db, event, conn, config->timeout_usec, on_db_ready, ks);
        if (r < 0)
                return r;
        db_set_notify_handler(ks->db, on_key_notify, ks);
        r = sd_event_add_time_relative(event, &ks->purge_timer, CLOCK_MONOTONIC, config->purge_interval_usec, USEC_PER_SEC,
                                       on_purge_timer, ks);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(ks->purge_timer, "keystore-purge");
        (void) sd_event_source_set_enabled(ks->purge_timer, SD_EVENT_ON);
        r = sd_event_add_time_relative(event, &ks->touch_timer, CLOCK_MONOTONIC, config->touch_interval_usec, 100000,
                                       on_touch_timer, ks);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(ks->touch_timer, "keystore-touch");
        (void) sd_event_source_set_enabled(ks->touch_timer, SD_EVENT_ON);
        *ret = TAKE_PTR(ks);
        return 0;
}

KeyStore *keystore_free(KeyStore *ks) {
        if (!ks)
                return NULL;
        sd_event_source_disable_unref(ks->purge_timer);
        sd_event_source_disable_unref(ks->touch_timer);
        db_free(ks->db);
        for (size_t i = 0; ks->cache && i < ks->n_cache; i++)
                key_info_done(&ks->cache[i].key);
        free(ks->cache);
        free(ks->touches);
        sd_event_unref(ks->event);
        free(ks);
        return NULL;
}

const char *keystore_describe(KeyStore *ks) {
        return db_describe(ks->db);
}

static void cache_drop(KeyStore *ks, size_t i);

void keystore_drop_cache(KeyStore *ks) {
        while (ks->n_cache > 0)
                cache_drop(ks, ks->n_cache - 1);
}

static CacheEntry *cache_find(KeyStore *ks, const char *hash) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < ks->n_cache; i++)
                if (ks->cache[i].until > now && streq(ks->cache[i].hash, hash))
                        return &ks->cache[i];
        return NULL;
}

static void cache_drop(KeyStore *ks, size_t i) {
        key_info_done(&ks->cache[i].key);
        ks->cache[i] = ks->cache[--ks->n_cache];
}

static void cache_put(KeyStore *ks, const char *hash, const KeyInfo *k) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        CacheEntry *e;

        if (ks->config.cache_usec == 0)
                return;
        for (size_t i = 0; i < ks->n_cache;)
                if (ks->cache[i].until <= now || streq(ks->cache[i].hash, hash))
                        cache_drop(ks, i);
                else
                        i++;
        if (ks->n_cache >= CACHE_MAX)
                cache_drop(ks, 0);
        e = &ks->cache[ks->n_cache];
        *e = (CacheEntry) { .key = *k, .until = now + ks->config.cache_usec };
        e->key.name = strdup(k->name ?: "");
        if (!e->key.name)
                return;
        memcpy(e->hash, hash, sizeof(e->hash));
        ks->n_cache++;
}

static void cache_evict_id(KeyStore *ks, const char *id) {
        for (size_t i = 0; i < ks->n_cache;)
                if (streq(ks->cache[i].key.id, id))
                        cache_drop(ks, i);
                else
                        i++;
}

static void touch(KeyStore *ks, const char *id) {
        for (size_t i = 0; i < ks->n_touches; i++)
                if (streq(ks->touches[i].id, id)) {
                        ks->touches[i].when_ms = realtime_ms();
                        return;
                }
        if (ks->n_touches >= TOUCH_MAX)
                return;
        snprintf(ks->touches[ks->n_touches].id, sizeof(ks->touches[0].id), "%s", id);
        ks->touches[ks->n_touches++].when_ms = realtime_ms();
}

static int check_valid(const KeyInfo *k) {
        if (k->revoked)
                return -EKEYREVOKED;
        if (k->expires_ms >= 0 && k->expires_ms <= realtime_ms())
                return -EKEYEXPIRED;
        return 0;
}

static void op_free(Op *op) {
        key_info_done(&op->key);
        if (op->plain)
                explicit_bzero(op->plain, strlen(op->plain));
        free(op->plain);
        free(op);
}

static Op *op_new(KeyStore *ks, void *cb, void *userdata) {
        Op *op = calloc(1, sizeof(Op));
        if (op) {
                op->ks = ks;
                op->cb = cb;
                op->userdata = userdata;
        }
        return op;
}

static int on_cached_lookup(sd_event_source *s, void *userdata) {
        Op *op = userdata;
        sd_event_source_disable_unref(s);
        if (op->cb)
                ((KeyLookupFn) op->cb)(check_valid(&op->key), &op->key, op->userdata);
        op_free(op);
        return 0;
}

static void lookup_nop(int error, const KeyInfo *key, void *userdata) {
}

static void on_lookup(int error, const DbResult *res, void *userdata) {
        Op *op = userdata;
        KeyLookupFn cb = op->cb ? (KeyLookupFn) op->cb : lookup_nop;

        if (error < 0)
                cb(error == -EIO ? -EHOSTDOWN : error, NULL, op->userdata);
        else if (res->n_rows == 0)
                cb(-ENOENT, NULL, op->userdata);
        else if (row_to_key(res, 0, &op->key) < 0)
                cb(-ENOMEM, NULL, op->userdata);
        else {
                int v = check_valid(&op->key);
                if (v == 0) {
                        cache_put(op->ks, op->hash, &op->key);
                        touch(op->ks, op->key.id);
                }
                cb(v, &op->key, op->userdata);
        }
        op_free(op);
}

int keystore_lookup(KeyStore *ks, const char *token, size_t len, KeyLookupFn cb, void *userdata, KeyStoreCall **ret) {
        Op *op;
        CacheEntry *e;
        DbParam p[1];

        /* Only well-formed keys go near the database. */
        if (len != 70 || strncmp(token, "isol8_", 6) != 0)
                return -ENOENT;
        for (size_t i = 6; i < len; i++)
                if (!strchr("0123456789abcdef", token[i]))
                        return -ENOENT;
        op = op_new(ks, (void *) cb, userdata);
        if (!op)
                return -ENOMEM;
        sha256_hex(token, len, op->hash);
        e = cache_find(ks, op->hash);
        if (e) {
                sd_event_source *s;
                op->key = e->key;
                op->key.name = strdup(e->key.name);
                touch(ks, e->key.id);
                if (!op->key.name || sd_event_add_defer(ks->event, &s, on_cached_lookup, op) < 0) {
                        op_free(op);
                        return -ENOMEM;
                }
                (void) sd_event_source_set_description(s, "keystore-cached-lookup");
                if (ret)
                        *ret = op;
                return 0;
        }
        p[0] = DB_TEXTP(op->hash);
        if (db_query(ks->db, "SELECT " KEY_COLUMNS " FROM isol8_api_keys WHERE key_hash = $1", p, 1, on_lookup, op) < 0) {
                op_free(op);
                return -ENOMEM;
        }
        if (ret)
                *ret = op;
        return 0;
}

static void on_created(int error, const DbResult *res, void *userdata) {
        Op *op = userdata;
        if (op->cb)
                ((KeyCreateFn) op->cb)(error == -EIO ? -EHOSTDOWN : error, error < 0 ? NULL : &op->key, op->plain, op->userdata);
        op_free(op);
}

int keystore_create(KeyStore *ks, const char *name, const char *tenant, uint64_t ttl_ms, KeyCreateFn cb, void *userdata, KeyStoreCall **ret) {
        uint8_t raw[32];
        char hex[65];
        Op *op;
        int r;

        op = op_new(ks, (void *) cb, userdata);
        if (!op)
                return -ENOMEM;
        r = random_bytes(raw, sizeof(raw));
        if (r < 0) {
                op_free(op);
                return r;
        }
        for (size_t i = 0; i < sizeof(raw); i++)
                sprintf(hex + 2 * i, "%02x", raw[i]);
        explicit_bzero(raw, sizeof(raw));
        if (asprintf(&op->plain, "isol8_%s", hex) < 0) {
                op->plain = NULL;
                op_free(op);
                return -ENOMEM;
        }
        explicit_bzero(hex, sizeof(hex));
        sha256_hex(op->plain, strlen(op->plain), op->hash);
        r = uuid4(op->key.id);
        op->key.name = strdup(name);
        if (r < 0 || !op->key.name) {
                op_free(op);
                return r < 0 ? r : -ENOMEM;
        }
        snprintf(op->key.prefix, sizeof(op->key.prefix), "%.10s...", op->plain);
        snprintf(op->key.tenant, sizeof(op->key.tenant), "%s", tenant);
        op->key.created_ms = realtime_ms();
        op->key.expires_ms = ttl_ms > 0 ? op->key.created_ms + (int64_t) ttl_ms : -1;
        op->key.last_used_ms = -1;

        DbParam p[] = {
                DB_TEXTP(op->key.id), DB_TEXTP(op->key.name), DB_TEXTP(op->hash), DB_TEXTP(op->key.prefix),
                DB_TEXTP(op->key.tenant), DB_INTP(op->key.created_ms),
                op->key.expires_ms >= 0 ? DB_INTP(op->key.expires_ms) : DB_NULLP,
        };
        if (db_query(ks->db,
                     "INSERT INTO isol8_api_keys (id, name, key_hash, key_prefix, tenant_id, created_at, expires_at, revoked) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
                     p, ELEMENTSOF(p), on_created, op) < 0) {
                op_free(op);
                return -ENOMEM;
        }
        if (ret)
                *ret = op;
        return 0;
}

static void on_listed(int error, const DbResult *res, void *userdata) {
        Op *op = userdata;
        KeyInfo *keys = NULL;
        size_t n = 0;

        if (error >= 0) {
                keys = calloc(res->n_rows + 1, sizeof(KeyInfo));
                for (unsigned i = 0; keys && i < res->n_rows; i++)
                        if (row_to_key(res, i, &keys[n]) >= 0)
                                n++;
        }
        if (op->cb)
                ((KeyListFn) op->cb)(error == -EIO ? -EHOSTDOWN : error, keys, n, op->userdata);
        for (size_t i = 0; i < n; i++)
                key_info_done(&keys[i]);
        free(keys);
        op_free(op);
}

int keystore_list(KeyStore *ks, const char *tenant, KeyListFn cb, void *userdata, KeyStoreCall **ret) {
        Op *op = op_new(ks, (void *) cb, userdata);
        DbParam p[1];
        int r;

        if (!op)
                return -ENOMEM;
        if (tenant) {
                p[0] = DB_TEXTP(tenant);
                r = db_query(ks->db, "SELECT " KEY_COLUMNS " FROM isol8_api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id",
                             p, 1, on_listed, op);
        } else
                r = db_query(ks->db, "SELECT " KEY_COLUMNS " FROM isol8_api_keys ORDER BY created_at DESC, id", NULL, 0, on_listed, op);
        if (r < 0) {
                op_free(op);
                return r;
        }
        if (ret)
                *ret = op;
        return 0;
}

static void on_notified(int error, const DbResult *res, void *userdata) {
        if (error < 0)
                log_warning("auth: could not tell the other servers of a revoked key; their caches forget it when their entries expire");
}

static void on_revoked(int error, const DbResult *res, void *userdata) {
        Op *op = userdata;
        /* Every server LISTENing (PostgreSQL) drops the key from its cache at once. */
        if (error >= 0 && res && res->affected > 0 && db_kind(op->ks->db) == DB_POSTGRES) {
                DbParam p[] = { DB_TEXTP(op->key.id) };
                (void) db_query(op->ks->db, "SELECT pg_notify('" KEYS_CHANNEL "', $1)", p, 1, on_notified, NULL);
        }
        if (op->cb)
                ((KeyRevokeFn) op->cb)(error < 0 ? (error == -EIO ? -EHOSTDOWN : error) : res->affected == 0 ? -ENOENT : 0, op->userdata);
        op_free(op);
}

int keystore_revoke(KeyStore *ks, const char *id, KeyRevokeFn cb, void *userdata, KeyStoreCall **ret) {
        Op *op = op_new(ks, (void *) cb, userdata);
        DbParam p[] = { DB_TEXTP(id) };

        if (!op)
                return -ENOMEM;
        /* Effective at once on this server; the others hear of it (PostgreSQL) or drop it when
         * their cache entry ends (MySQL, SQLite). */
        cache_evict_id(ks, id);
        snprintf(op->key.id, sizeof(op->key.id), "%s", id);
        if (db_query(ks->db, "UPDATE isol8_api_keys SET revoked = 1 WHERE id = $1", p, 1, on_revoked, op) < 0) {
                op_free(op);
                return -ENOMEM;
        }
        if (ret)
                *ret = op;
        return 0;
}
