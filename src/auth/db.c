/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/db.h"
#include "shared/log.h"
#include "shared/util.h"

void db_result_free(DbResult *r) {
        if (!r)
                return;
        for (size_t i = 0; i < (size_t) r->n_rows * r->n_cols; i++)
                free(r->cells[i]);
        free(r->cells);
        *r = (DbResult) {};
}

static void query_free(DbQuery *q) {
        for (unsigned i = 0; i < q->n_params; i++)
                free(q->param_text[i]);
        free(q->param_text);
        free(q->params);
        free(q->sql);
        free(q);
}

static int on_kick(sd_event_source *s, void *userdata) {
        Db *db = userdata;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (db->head && !db->busy)
                db->ops->kick(db);
        return 0;
}

void db_schedule_kick(Db *db) {
        (void) sd_event_source_set_enabled(db->defer, SD_EVENT_ONESHOT);
}

int db_open(Db **ret, sd_event *event, const char *conn, uint64_t timeout_usec,
            void (*on_ready)(Db *db, void *userdata), void *userdata) {
        Db *db;
        int r;

        db = calloc(1, sizeof(Db));
        if (!db)
                return -ENOMEM;
        db->event = sd_event_ref(event);
        db->timeout_usec = timeout_usec;
        db->on_ready = on_ready;
        db->userdata = userdata;
        if (startswith(conn, "postgres://") || startswith(conn, "postgresql://")) {
#if HAVE_POSTGRESQL
                db->kind = DB_POSTGRES;
                db->ops = &db_pg_ops;
#else
                db_free(db);
                return log_error_errno(-EPROTONOSUPPORT, "This isol8 was built without PostgreSQL support (meson -Dpostgresql=enabled).");
#endif
        } else if (startswith(conn, "mysql://")) {
#if HAVE_MARIADB
                db->kind = DB_MYSQL;
                db->ops = &db_mysql_ops;
#else
                db_free(db);
                return log_error_errno(-EPROTONOSUPPORT, "This isol8 was built without MySQL/MariaDB support (meson -Dmariadb=enabled).");
#endif
        } else {
                db->kind = DB_SQLITE;
                db->ops = &db_sqlite_ops;
        }
        r = sd_event_add_defer(event, &db->defer, on_kick, db);
        (void) sd_event_source_set_description(db->defer, "db-kick");
        if (r >= 0) {
                (void) sd_event_source_set_enabled(db->defer, SD_EVENT_OFF);
                r = db->ops->open(db, conn);
        }
        if (r < 0) {
                db_free(db);
                return r;
        }
        *ret = db;
        return 0;
}

Db *db_free(Db *db) {
        if (!db)
                return NULL;
        db_fail_all(db, -ESHUTDOWN);
        if (db->ops)
                db->ops->close(db);
        sd_event_source_disable_unref(db->defer);
        sd_event_source_disable_unref(db->timer);
        free(db->description);
        sd_event_unref(db->event);
        free(db);
        return NULL;
}

void db_set_notify_handler(Db *db, DbNotifyFn fn, void *userdata) {
        db->on_notify = fn;
        db->notify_userdata = userdata;
}

DbKind db_kind(Db *db) {
        return db->kind;
}

bool db_is_up(Db *db) {
        return db->up;
}

const char *db_describe(Db *db) {
        return db->description ?: "database";
}

static int db_enqueue(Db *db, bool first, const char *sql, const DbParam *params, unsigned n_params, DbCallback cb,
                      void *userdata) {
        DbQuery *q = calloc(1, sizeof(DbQuery));

        if (!q)
                return -ENOMEM;
        q->sql = strdup(sql);
        q->params = calloc(n_params + 1, sizeof(DbParam));
        q->param_text = calloc(n_params + 1, sizeof(char *));
        if (!q->sql || !q->params || !q->param_text) {
                query_free(q);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < n_params; i++) {
                q->params[i] = params[i];
                if (params[i].type == DB_TEXT) {
                        q->param_text[i] = strdup(params[i].text ?: "");
                        if (!q->param_text[i]) {
                                q->n_params = i;
                                query_free(q);
                                return -ENOMEM;
                        }
                        q->params[i].text = q->param_text[i];
                }
        }
        q->n_params = n_params;
        q->cb = cb;
        q->userdata = userdata;
        if (first && db->head) {
                /* Ahead of everything waiting, but never ahead of the query under way. */
                DbQuery *after = db->busy ? db->head : NULL;
                if (after) {
                        q->next = after->next;
                        after->next = q;
                        if (db->tail == after)
                                db->tail = q;
                } else {
                        q->next = db->head;
                        db->head = q;
                }
        } else if (db->tail) {
                db->tail->next = q;
                db->tail = q;
        } else
                db->head = db->tail = q;
        db_schedule_kick(db);
        return 0;
}

int db_query(Db *db, const char *sql, const DbParam *params, unsigned n_params, DbCallback cb, void *userdata) {
        return db_enqueue(db, false, sql, params, n_params, cb, userdata);
}

int db_query_first(Db *db, const char *sql, DbCallback cb, void *userdata) {
        return db_enqueue(db, true, sql, NULL, 0, cb, userdata);
}

void db_complete_head(Db *db, int error, const DbResult *res) {
        DbQuery *q = db->head;
        if (!q)
                return;
        db->head = q->next;
        if (!db->head)
                db->tail = NULL;
        db->busy = false;
        q->cb(error, error < 0 ? NULL : res, q->userdata);
        query_free(q);
        if (db->head)
                db_schedule_kick(db);
}

void db_mark_down(Db *db, int error) {
        if (db->up)
                log_warning("auth: %s is unavailable; retrying", db_describe(db));
        db->up = false;
        db_fail_all(db, error);
}

void db_fail_all(Db *db, int error) {
        while (db->head) {
                db->busy = false;
                db_complete_head(db, error, NULL);
        }
        db->busy = false;
}

#define BACKOFF_MIN_USEC (250 * 1000)
#define BACKOFF_MAX_USEC (5 * 1000 * 1000)

void db_arm_timer(Db *db, uint64_t usec, sd_event_time_handler_t cb) {
        if (!db->timer) {
                if (sd_event_add_time_relative(db->event, &db->timer, CLOCK_MONOTONIC, usec, 10000, cb, db) < 0)
                        return;
                (void) sd_event_source_set_description(db->timer, "db-timeout");
        }
        (void) sd_event_source_set_time_relative(db->timer, usec);
        (void) sd_event_source_set_enabled(db->timer, SD_EVENT_ONESHOT);
}

void db_schedule_reconnect(Db *db, sd_event_time_handler_t cb) {
        db->backoff_usec = db->backoff_usec ? MIN(db->backoff_usec * 2, (uint64_t) BACKOFF_MAX_USEC) : BACKOFF_MIN_USEC;
        db_arm_timer(db, db->backoff_usec, cb);
}
