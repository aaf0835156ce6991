/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

/* A small asynchronous SQL layer with three backends: SQLite (local, run at once and answered
 * from the loop), PostgreSQL (libpq's asynchronous API) and MySQL/MariaDB (the client's
 * non-blocking start/cont calls), the latter two driven by sd-event io sources and timers.
 * Queries use $1..$N placeholders; each backend binds them its own way. */

typedef struct Db Db;

typedef enum DbParamType {
        DB_NULL,
        DB_TEXT,
        DB_INT,
} DbParamType;

typedef struct DbParam {
        DbParamType type;
        const char *text;
        int64_t num;
} DbParam;

#define DB_TEXTP(s) ((DbParam) { .type = DB_TEXT, .text = (s) })
#define DB_INTP(n) ((DbParam) { .type = DB_INT, .num = (n) })
#define DB_NULLP ((DbParam) { .type = DB_NULL })

typedef struct DbResult {
        unsigned n_rows;
        unsigned n_cols;
        char **cells;          /* n_rows * n_cols, NULL for SQL NULL */
        uint64_t affected;
} DbResult;

void db_result_free(DbResult *r);
static inline const char *db_cell(const DbResult *r, unsigned row, unsigned col) {
        return r->cells[row * r->n_cols + col];
}

/* error < 0: -EHOSTDOWN the database is unreachable, -ETIMEDOUT it did not answer in time,
 * -EIO the query failed. res is NULL on error and freed after the callback. */
typedef void (*DbCallback)(int error, const DbResult *res, void *userdata);

typedef enum DbKind {
        DB_SQLITE,
        DB_POSTGRES,
        DB_MYSQL,
} DbKind;

/* Chooses the backend from the connection string: postgres:// or postgresql:// (PostgreSQL),
 * mysql:// (MySQL/MariaDB), anything else a SQLite file path. on_ready is called whenever a
 * connection is (re-)established, so the owner can create its schema. */
int db_open(Db **ret, sd_event *event, const char *conn, uint64_t timeout_usec,
            void (*on_ready)(Db *db, void *userdata), void *userdata);
Db *db_free(Db *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(Db *, db_free);
DbKind db_kind(Db *db);
bool db_is_up(Db *db);
/* A description without credentials, for logs. */
const char *db_describe(Db *db);
/* Runs a query; the callback always comes later from the loop. */
int db_query(Db *db, const char *sql, const DbParam *params, unsigned n_params, DbCallback cb, void *userdata);

/* Runs a parameterless query before everything queued (schema set-up after a connect). */
int db_query_first(Db *db, const char *sql, DbCallback cb, void *userdata);

/* PostgreSQL's notifications: fn is called with each payload a NOTIFY on a channel the
 * connection LISTENs to delivers (the owner issues LISTEN from on_ready). Other backends have
 * none: the handler is simply never called. */
typedef void (*DbNotifyFn)(Db *db, const char *channel, const char *payload, void *userdata);
void db_set_notify_handler(Db *db, DbNotifyFn fn, void *userdata);

/* Backend interface (internal to src/auth/). */
typedef struct DbQuery DbQuery;
struct DbQuery {
        char *sql;
        DbParam *params;
        unsigned n_params;
        char **param_text;     /* owned copies */
        DbCallback cb;
        void *userdata;
        DbQuery *next;
};

typedef struct DbBackendOps {
        int (*open)(Db *db, const char *conn);
        void (*close)(Db *db);
        /* Starts the head query of the queue when idle. */
        void (*kick)(Db *db);
} DbBackendOps;

struct Db {
        sd_event *event;
        DbKind kind;
        const DbBackendOps *ops;
        char *description;
        uint64_t timeout_usec;
        bool up;
        bool busy;
        DbQuery *head, *tail;
        sd_event_source *defer;       /* kicks the queue */
        sd_event_source *timer;       /* query timeout / reconnect backoff */
        uint64_t backoff_usec;
        void (*on_ready)(Db *db, void *userdata);
        void *userdata;
        DbNotifyFn on_notify;
        void *notify_userdata;
        void *backend;
};

/* For backends: complete the head query and move on. */
void db_complete_head(Db *db, int error, const DbResult *res);
/* The connection is gone: say so once, and fail what was queued. */
void db_mark_down(Db *db, int error);
/* Fails every queued query (the database went away). */
void db_fail_all(Db *db, int error);
void db_schedule_kick(Db *db);
/* (Re)arms the backend's one timer (query timeout, or reconnect backoff) to call cb. */
void db_arm_timer(Db *db, uint64_t usec, sd_event_time_handler_t cb);
/* Arms the timer after a doubling backoff (250 ms up to 5 s) for a reconnect. */
void db_schedule_reconnect(Db *db, sd_event_time_handler_t cb);

extern const DbBackendOps db_sqlite_ops;
extern const DbBackendOps db_pg_ops;
extern const DbBackendOps db_mysql_ops;
