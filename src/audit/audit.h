/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

/* The audit trail: one structured record per event, to journald (sd_journal_sendv, a fixed
 * MESSAGE_ID per kind, documented in docs/catalog/isol8.catalog), to JSON-lines files, or to
 * stdout. Untrusted text (code, metadata, names) only ever travels as the value of its own
 * field, so it cannot forge another field. Never the key itself. */

#define AUDIT_MESSAGE_EXECUTION    "bfbd7875049346fbb4b0b5c8b06a4d9a"
#define AUDIT_MESSAGE_AUTH_FAILURE "53232c662ca14bffb8d5b374865e5c84"
#define AUDIT_MESSAGE_KEY_CREATED  "c0bd57ada0b7437182d07b8ba14d43b4"
#define AUDIT_MESSAGE_KEY_REVOKED  "9c7704a5c3744860aa94d113454aeca5"
#define AUDIT_MESSAGE_SESSION_NEW  "abb3195b62294b2f906c019dcdd773e1"
#define AUDIT_MESSAGE_SESSION_GONE "f2d76a1b97e74a7dbd0cee42aa7aadbc"
#define AUDIT_MESSAGE_NETWORK_BLOCKED "9ff7518735ac4ccf823e5e646ca6f906"
#define AUDIT_MESSAGE_IMAGE_BUILT  "d21292c5d72c4b5d805201097fd3f37a"
#define AUDIT_MESSAGE_IMAGE_REMOVED "b5d64d3a59a94b5895b6d0becfba98c9"

typedef enum AuditDestination {
        AUDIT_JOURNAL,
        AUDIT_FILE,
        AUDIT_STDOUT,
} AuditDestination;

typedef struct AuditConfig {
        bool enabled;
        AuditDestination destination;
        const char *log_dir;
        unsigned retention_days;
        bool include_code;
        bool include_output;
} AuditConfig;

typedef struct Audit Audit;

int audit_new(Audit **ret, const AuditConfig *config);
Audit *audit_free(Audit *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Audit *, audit_free);
bool audit_include_code(Audit *a);
bool audit_include_output(Audit *a);

typedef struct AuditField {
        const char *name;      /* ISOL8_... */
        const char *value;     /* NULL: left out */
} AuditField;

/* message: what happened, in words; only data that cannot hold control characters (ids,
 * validated tenants, numbers) or that was made safe. */
void audit_emit(Audit *a, const char *message_id, int priority, const char *event, const char *message,
                const AuditField *fields, size_t n_fields);
