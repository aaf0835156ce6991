/* SPDX-License-Identifier: MIT */
/* PostgreSQL through libpq's asynchronous API: PQconnectStart/PQconnectPoll, then
 * PQsendQueryParams/PQconsumeInput/PQgetResult, all driven by an io source on PQsocket(). */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "auth/db.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

typedef struct Pg {
        char *conninfo;
        PGconn *conn;
        sd_event_source *io;
        int fd;
        bool connecting;
        bool in_query;
        DbResult res;
        int res_error;
} Pg;

static void on_notice(void *arg, const char *message) {
        log_debug("database: PostgreSQL: %.*s", (int) strcspn(message, "\n"), message);
}

static void pg_connect(Db *db);

static void pg_drop(Db *db, int error) {
        Pg *pg = db->backend;
        pg->io = sd_event_source_disable_unref(pg->io);
        if (pg->conn)
                PQfinish(pg->conn);
        pg->conn = NULL;
        pg->fd = -1;
        pg->connecting = pg->in_query = false;
        db_result_free(&pg->res);
        db_mark_down(db, error);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Db *db = userdata;
        Pg *pg = db->backend;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (pg->conn && (pg->connecting || pg->in_query))
                pg_drop(db, -ETIMEDOUT);   /* no answer in time: give up on this connection */
        if (!pg->conn)
                pg_connect(db);
        return 0;
}

static void arm_timer(Db *db, uint64_t usec) {
        db_arm_timer(db, usec, on_timer);
}

static void schedule_reconnect(Db *db) {
        db_schedule_reconnect(db, on_timer);
}

static void set_events(Db *db, uint32_t ev) {
        Pg *pg = db->backend;
        if (pg->io)
                (void) sd_event_source_set_io_events(pg->io, ev);
}

/* Notifications arrive with any input, idle or not. */
static void dispatch_notifies(Db *db) {
        Pg *pg = db->backend;
        PGnotify *n;

        while (pg->conn && (n = PQnotifies(pg->conn))) {
                if (db->on_notify)
                        db->on_notify(db, n->relname, n->extra, db->notify_userdata);
                PQfreemem(n);
        }
}

static void finish_query(Db *db) {
        Pg *pg = db->backend;
        DbResult res = pg->res;
        int err = pg->res_error;

        pg->res = (DbResult) {};
        pg->res_error = 0;
        pg->in_query = false;
        (void) sd_event_source_set_enabled(db->timer, SD_EVENT_OFF);
        db_complete_head(db, err, &res);
        db_result_free(&res);
}

static void collect(Db *db) {
        Pg *pg = db->backend;
        PGresult *r;

        if (!PQconsumeInput(pg->conn)) {
                pg_drop(db, -EHOSTDOWN);
                schedule_reconnect(db);
                return;
        }
        dispatch_notifies(db);
        while (!PQisBusy(pg->conn)) {
                r = PQgetResult(pg->conn);
                if (!r) {
                        finish_query(db);
                        return;
                }
                switch (PQresultStatus(r)) {
                case PGRES_TUPLES_OK:
                case PGRES_COMMAND_OK: {
                        int rows = PQntuples(r), cols = PQnfields(r);
                        const char *aff = PQcmdTuples(r);
                        db_result_free(&pg->res);
                        pg->res.n_rows = (unsigned) rows;
                        pg->res.n_cols = (unsigned) cols;
                        pg->res.cells = calloc((size_t) rows * (size_t) cols + 1, sizeof(char *));
                        for (int i = 0; pg->res.cells && i < rows; i++)
                                for (int j = 0; j < cols; j++)
                                        if (!PQgetisnull(r, i, j))
                                                pg->res.cells[i * cols + j] = strdup(PQgetvalue(r, i, j));
                        pg->res.affected = aff && *aff ? strtoull(aff, NULL, 10) : 0;
                        break;
                }
                default:
                        log_warning("database: PostgreSQL query failed: %s", PQresultErrorMessage(r));
                        pg->res_error = -EIO;
                        break;
                }
                PQclear(r);
        }
}

static void poll_connect(Db *db) {
        Pg *pg = db->backend;

        switch (PQconnectPoll(pg->conn)) {
        case PGRES_POLLING_READING:
                set_events(db, EPOLLIN);
                return;
        case PGRES_POLLING_WRITING:
                set_events(db, EPOLLOUT);
                return;
        case PGRES_POLLING_OK:
                pg->connecting = false;
                (void) PQsetnonblocking(pg->conn, 1);
                /* "relation already exists, skipping" and the like: not for stderr. */
                (void) PQsetNoticeProcessor(pg->conn, on_notice, NULL);
                set_events(db, EPOLLIN);
                (void) sd_event_source_set_enabled(db->timer, SD_EVENT_OFF);
                db->up = true;
                db->backoff_usec = 0;
                log_info("database: connected to %s", db_describe(db));
                if (db->on_ready)
                        db->on_ready(db, db->userdata);
                db_schedule_kick(db);
                return;
        default:
                log_debug("database: PostgreSQL connection failed: %s", PQerrorMessage(pg->conn));
                pg_drop(db, -EHOSTDOWN);
                schedule_reconnect(db);
                return;
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Db *db = userdata;
        Pg *pg = db->backend;

        if (pg->connecting) {
                poll_connect(db);
                return 0;
        }
        if (revents & EPOLLOUT) {
                int f = PQflush(pg->conn);
                if (f < 0) {
                        pg_drop(db, -EHOSTDOWN);
                        schedule_reconnect(db);
                        return 0;
                }
                if (f == 0)
                        set_events(db, EPOLLIN);
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (!pg->in_query) {
                        /* Idle: a notification or notice, or the server closing on us. */
                        if (!PQconsumeInput(pg->conn) || PQstatus(pg->conn) == CONNECTION_BAD) {
                                pg_drop(db, -EHOSTDOWN);
                                schedule_reconnect(db);
                                return 0;
                        }
                        dispatch_notifies(db);
                        return 0;
                }
                collect(db);
        }
        return 0;
}

static void pg_connect(Db *db) {
        Pg *pg = db->backend;
        char timeout[32];
        const char *keys[] = { "dbname", "connect_timeout", NULL };
        const char *vals[] = { pg->conninfo, timeout, NULL };

        snprintf(timeout, sizeof(timeout), "%u", (unsigned) MAX(db->timeout_usec / USEC_PER_SEC, (uint64_t) 1));
        pg->conn = PQconnectStartParams(keys, vals, 1);
        if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD || PQsocket(pg->conn) < 0) {
                if (pg->conn)
                        PQfinish(pg->conn);
                pg->conn = NULL;
                schedule_reconnect(db);
                return;
        }
        pg->fd = PQsocket(pg->conn);
        pg->connecting = true;
        if (sd_event_add_io(db->event, &pg->io, pg->fd, EPOLLOUT, on_io, db) < 0) {
                pg_drop(db, -EHOSTDOWN);
                schedule_reconnect(db);
                return;
        }
        (void) sd_event_source_set_description(pg->io, "postgresql-io");
        arm_timer(db, db->timeout_usec);
}

static char *describe(const char *conn) {
        /* postgres://user:secret@host:port/db -> "PostgreSQL host:port/db" (no credentials) */
        const char *p = strstr(conn, "://");
        const char *at;
        char *d;
        p = p ? p + 3 : conn;
        at = strchr(p, '@');
        if (at)
                p = at + 1;
        if (asprintf(&d, "PostgreSQL %.*s", (int) strcspn(p, "?"), p) < 0)
                return NULL;
        return d;
}

static int pg_open(Db *db, const char *conn) {
        Pg *pg = calloc(1, sizeof(Pg));
        if (!pg)
                return -ENOMEM;
        pg->fd = -1;
        pg->conninfo = strdup(conn);
        if (!pg->conninfo) {
                free(pg);
                return -ENOMEM;
        }
        db->backend = pg;
        db->description = describe(conn);
        pg_connect(db);
        return 0;
}

static void pg_close(Db *db) {
        Pg *pg = db->backend;
        if (!pg)
                return;
        sd_event_source_disable_unref(pg->io);
        if (pg->conn)
                PQfinish(pg->conn);
        db_result_free(&pg->res);
        free(pg->conninfo);
        free(pg);
        db->backend = NULL;
}

static void pg_kick(Db *db) {
        Pg *pg = db->backend;
        DbQuery *q = db->head;
        const char *values[16];
        char nums[16][24];

        if (!q || pg->in_query)
                return;
        if (!db->up || !pg->conn || pg->connecting) {
                /* Down: fail fast rather than let requests pile up behind a dead server. */
                if (!pg->connecting)
                        db_fail_all(db, -EHOSTDOWN);
                return;
        }
        if (q->n_params > 16) {
                db_complete_head(db, -EINVAL, NULL);
                return;
        }
        for (unsigned i = 0; i < q->n_params; i++) {
                if (q->params[i].type == DB_NULL)
                        values[i] = NULL;
                else if (q->params[i].type == DB_INT) {
                        snprintf(nums[i], sizeof(nums[i]), "%" PRId64, q->params[i].num);
                        values[i] = nums[i];
                } else
                        values[i] = q->params[i].text;
        }
        if (!PQsendQueryParams(pg->conn, q->sql, (int) q->n_params, NULL, values, NULL, NULL, 0)) {
                log_warning("database: PostgreSQL: %s", PQerrorMessage(pg->conn));
                pg_drop(db, -EHOSTDOWN);
                schedule_reconnect(db);
                return;
        }
        db->busy = true;
        pg->in_query = true;
        set_events(db, PQflush(pg->conn) == 1 ? EPOLLIN | EPOLLOUT : EPOLLIN);
        arm_timer(db, db->timeout_usec);
}

const DbBackendOps db_pg_ops = {
        .open = pg_open,
        .close = pg_close,
        .kick = pg_kick,
};
