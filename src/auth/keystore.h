/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "auth/auth.h"
#include "shared/macro.h"

/* DB-backed API keys over SQLite, PostgreSQL or MySQL/MariaDB. Keys are "isol8_" + 64 hex
 * characters from the kernel's random source; only their SHA-256 is stored. Lookups are cached
 * for a few seconds; lastUsedAt is written in batches; expired and revoked keys are purged. */

typedef struct KeyStore KeyStore;
/* One operation under way: valid until its callback has run; cancelling it means the callback
 * is never called (the query itself finishes in the background). */
typedef struct KeyStoreCall KeyStoreCall;
void keystore_call_cancel(KeyStoreCall *c);

typedef struct KeyInfo {
        char id[37];
        char *name;
        char prefix[16];
        char tenant[TENANT_MAX + 1];
        int64_t created_ms;
        int64_t expires_ms;       /* -1: never */
        int64_t last_used_ms;     /* -1: never */
        bool revoked;
} KeyInfo;

typedef struct KeyStoreConfig {
        uint64_t timeout_usec;        /* connect and query timeout */
        uint64_t cache_usec;          /* 0: no cache */
        uint64_t purge_interval_usec;
        uint64_t touch_interval_usec; /* how often lastUsedAt is written */
} KeyStoreConfig;

int keystore_new(KeyStore **ret, sd_event *event, const char *conn, const KeyStoreConfig *config);
KeyStore *keystore_free(KeyStore *ks);
DEFINE_TRIVIAL_CLEANUP_FUNC(KeyStore *, keystore_free);
const char *keystore_describe(KeyStore *ks);

/* error: -ENOENT unknown key, -EKEYREVOKED, -EKEYEXPIRED, -EHOSTDOWN/-ETIMEDOUT unavailable. */
typedef void (*KeyLookupFn)(int error, const KeyInfo *key, void *userdata);
typedef void (*KeyCreateFn)(int error, const KeyInfo *key, const char *plain_key, void *userdata);
typedef void (*KeyListFn)(int error, const KeyInfo *keys, size_t n, void *userdata);
typedef void (*KeyRevokeFn)(int error, void *userdata);

int keystore_lookup(KeyStore *ks, const char *token, size_t len, KeyLookupFn cb, void *userdata, KeyStoreCall **ret);
int keystore_create(KeyStore *ks, const char *name, const char *tenant, uint64_t ttl_ms, KeyCreateFn cb, void *userdata, KeyStoreCall **ret);
int keystore_list(KeyStore *ks, const char *tenant, KeyListFn cb, void *userdata, KeyStoreCall **ret);
int keystore_revoke(KeyStore *ks, const char *id, KeyRevokeFn cb, void *userdata, KeyStoreCall **ret);
/* Writes pending lastUsedAt updates now (also done on a timer and at exit). */
void keystore_flush(KeyStore *ks);
/* Forgets every cached lookup (a reload): the next use of each key asks the database. */
void keystore_drop_cache(KeyStore *ks);

void key_info_done(KeyInfo *k);
