/* SPDX-License-Identifier: MIT */
/* MySQL/MariaDB through the client library's non-blocking API: every call is a "start" that
 * says what to wait for (readable, writable, a timeout), and a "cont" once it happened. */
#include <errno.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "auth/db.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

typedef enum MyStep {
        STEP_IDLE,
        STEP_CONNECT,
        STEP_QUERY,
        STEP_STORE,
} MyStep;

typedef struct My {
        char *host, *user, *password, *dbname;
        unsigned port;
        MYSQL *mysql;
        sd_event_source *io;
        sd_event_source *wait_timer;   /* the library's own timeouts */
        MyStep step;
        uint64_t deadline;
} My;

static void my_connect(Db *db);
static void my_continue(Db *db, int status);

static void my_drop(Db *db, int error) {
        My *my = db->backend;
        my->io = sd_event_source_disable_unref(my->io);
        my->wait_timer = sd_event_source_disable_unref(my->wait_timer);
        if (my->mysql)
                mysql_close(my->mysql);
        my->mysql = NULL;
        my->step = STEP_IDLE;
        db_mark_down(db, error);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Db *db = userdata;
        My *my = db->backend;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (my->mysql && my->step != STEP_IDLE)
                my_drop(db, -ETIMEDOUT);
        if (!my->mysql)
                my_connect(db);
        return 0;
}

static void arm_timer(Db *db, uint64_t usec) {
        db_arm_timer(db, usec, on_timer);
}

static void schedule_reconnect(Db *db) {
        db_schedule_reconnect(db, on_timer);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Db *db = userdata;
        int status = 0;
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                status |= MYSQL_WAIT_READ;
        if (revents & EPOLLOUT)
                status |= MYSQL_WAIT_WRITE;
        if (revents & EPOLLPRI)
                status |= MYSQL_WAIT_EXCEPT;
        my_continue(db, status);
        return 0;
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        my_continue(userdata, MYSQL_WAIT_TIMEOUT);
        return 0;
}

/* Waits for what the library asked for. */
static void wait_for(Db *db, int status) {
        My *my = db->backend;
        uint32_t ev = 0;

        if (status & MYSQL_WAIT_READ)
                ev |= EPOLLIN;
        if (status & MYSQL_WAIT_WRITE)
                ev |= EPOLLOUT;
        if (status & MYSQL_WAIT_EXCEPT)
                ev |= EPOLLPRI;
        if (!my->io) {
                if (sd_event_add_io(db->event, &my->io, mysql_get_socket(my->mysql), ev, on_io, db) < 0) {
                        my_drop(db, -EHOSTDOWN);
                        schedule_reconnect(db);
                        return;
                }
                (void) sd_event_source_set_description(my->io, "mysql-io");
        } else {
                (void) sd_event_source_set_io_events(my->io, ev);
                (void) sd_event_source_set_enabled(my->io, ev ? SD_EVENT_ON : SD_EVENT_OFF);
        }
        if (status & MYSQL_WAIT_TIMEOUT) {
                uint64_t usec = (uint64_t) mysql_get_timeout_value_ms(my->mysql) * USEC_PER_MSEC;
                my->wait_timer = sd_event_source_disable_unref(my->wait_timer);
                (void) sd_event_add_time_relative(db->event, &my->wait_timer, CLOCK_MONOTONIC, usec, 1000, on_wait_timeout, db);
                (void) sd_event_source_set_description(my->wait_timer, "mysql-wait");
        }
}

static void finish_store(Db *db, MYSQL_RES *res) {
        My *my = db->backend;
        DbResult out = {};
        int err = 0;

        if (res) {
                MYSQL_ROW row;
                unsigned cols = mysql_num_fields(res);
                unsigned rows = (unsigned) mysql_num_rows(res);
                out.n_cols = cols;
                out.cells = calloc((size_t) rows * cols + 1, sizeof(char *));
                while (out.cells && (row = mysql_fetch_row(res)))
                        {
                                for (unsigned c = 0; c < cols; c++)
                                        out.cells[out.n_rows * cols + c] = row[c] ? strdup(row[c]) : NULL;
                                out.n_rows++;
                        }
                mysql_free_result(res);
        } else if (mysql_errno(my->mysql)) {
                log_warning("database: MySQL query failed: %s", mysql_error(my->mysql));
                err = -EIO;
        } else
                out.affected = mysql_affected_rows(my->mysql);
        my->step = STEP_IDLE;
        if (my->io)
                (void) sd_event_source_set_enabled(my->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(db->timer, SD_EVENT_OFF);
        db_complete_head(db, err, &out);
        db_result_free(&out);
}

/* The query went out (ret: its result): fetch the rows, or give up on a dead connection. */
static void query_sent(Db *db, int ret) {
        My *my = db->backend;
        MYSQL_RES *res = NULL;
        int st;

        if (ret) {
                unsigned e = mysql_errno(my->mysql);
                if (e == 2006 || e == 2013 || e == 2002 || e == 2003) {   /* gone away, lost, cannot connect */
                        my_drop(db, -EHOSTDOWN);
                        schedule_reconnect(db);
                        return;
                }
                finish_store(db, NULL);
                return;
        }
        my->step = STEP_STORE;
        st = mysql_store_result_start(&res, my->mysql);
        if (st) {
                wait_for(db, st);
                return;
        }
        finish_store(db, res);
}

static void my_continue(Db *db, int status) {
        My *my = db->backend;
        int st;

        my->wait_timer = sd_event_source_disable_unref(my->wait_timer);
        switch (my->step) {
        case STEP_CONNECT: {
                MYSQL *ret = NULL;
                st = mysql_real_connect_cont(&ret, my->mysql, status);
                if (st) {
                        wait_for(db, st);
                        return;
                }
                if (!ret) {
                        log_debug("database: MySQL connection failed: %s", mysql_error(my->mysql));
                        my_drop(db, -EHOSTDOWN);
                        schedule_reconnect(db);
                        return;
                }
                my->step = STEP_IDLE;
                (void) sd_event_source_set_enabled(my->io, SD_EVENT_OFF);
                (void) sd_event_source_set_enabled(db->timer, SD_EVENT_OFF);
                db->up = true;
                db->backoff_usec = 0;
                log_info("database: connected to %s", db_describe(db));
                if (db->on_ready)
                        db->on_ready(db, db->userdata);
                db_schedule_kick(db);
                return;
        }
        case STEP_QUERY: {
                int ret = 0;
                st = mysql_real_query_cont(&ret, my->mysql, status);
                if (st) {
                        wait_for(db, st);
                        return;
                }
                query_sent(db, ret);
                return;
        }
        case STEP_STORE: {
                MYSQL_RES *res = NULL;
                st = mysql_store_result_cont(&res, my->mysql, status);
                if (st) {
                        wait_for(db, st);
                        return;
                }
                finish_store(db, res);
                return;
        }
        default:
                /* Readable while idle: the server closed the connection. */
                if (my->io)
                        (void) sd_event_source_set_enabled(my->io, SD_EVENT_OFF);
                return;
        }
}

static void my_connect(Db *db) {
        My *my = db->backend;
        unsigned timeout = (unsigned) MAX(db->timeout_usec / USEC_PER_SEC, (uint64_t) 1);
        MYSQL *ret = NULL;
        int st;

        my->mysql = mysql_init(NULL);
        if (!my->mysql) {
                schedule_reconnect(db);
                return;
        }
        mysql_options(my->mysql, MYSQL_OPT_NONBLOCK, 0);
        mysql_options(my->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
        mysql_options(my->mysql, MYSQL_OPT_READ_TIMEOUT, &timeout);
        mysql_options(my->mysql, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
        mysql_options(my->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        my->step = STEP_CONNECT;
        arm_timer(db, db->timeout_usec);
        st = mysql_real_connect_start(&ret, my->mysql, my->host, my->user, my->password, my->dbname, my->port, NULL,
                                      CLIENT_FOUND_ROWS);
        if (st) {
                wait_for(db, st);
                return;
        }
        my_continue(db, 0);
}

/* mysql://user:password@host:port/database */
static int parse_url(My *my, const char *url) {
        _cleanup_free_ char *copy = strdup(url + strlen("mysql://"));
        char *p, *at, *slash, *colon;

        if (!copy)
                return -ENOMEM;
        p = copy;
        p[strcspn(p, "?")] = 0;
        slash = strchr(p, '/');
        if (slash) {
                *slash = 0;
                my->dbname = strdup(slash + 1);
        } else
                my->dbname = strdup("isol8");
        at = strrchr(p, '@');
        if (at) {
                *at = 0;
                colon = strchr(p, ':');
                if (colon) {
                        *colon = 0;
                        my->password = strdup(colon + 1);
                }
                my->user = strdup(p);
                p = at + 1;
        } else
                my->user = strdup("root");
        colon = strrchr(p, ':');
        my->port = 3306;
        if (colon) {
                *colon = 0;
                my->port = (unsigned) strtoul(colon + 1, NULL, 10);
        }
        my->host = strdup(*p ? p : "localhost");
        if (!my->host || !my->user || !my->dbname)
                return -ENOMEM;
        return 0;
}

static int my_open(Db *db, const char *conn) {
        My *my = calloc(1, sizeof(My));
        int r;
        if (!my)
                return -ENOMEM;
        db->backend = my;
        r = parse_url(my, conn);
        if (r < 0)
                return r;
        if (asprintf(&db->description, "MySQL %s:%u/%s", my->host, my->port, my->dbname) < 0)
                db->description = NULL;
        my_connect(db);
        return 0;
}

static void my_close(Db *db) {
        My *my = db->backend;
        if (!my)
                return;
        sd_event_source_disable_unref(my->io);
        sd_event_source_disable_unref(my->wait_timer);
        if (my->mysql)
                mysql_close(my->mysql);
        if (my->password)
                explicit_bzero(my->password, strlen(my->password));
        free(my->host);
        free(my->user);
        free(my->password);
        free(my->dbname);
        free(my);
        db->backend = NULL;
}

/* Literal SQL for a query with $N placeholders: MySQL's text protocol has no parameters,
 * so every value is escaped with the connection's character set. */
static char *expand(My *my, DbQuery *q) {
        Buffer b = {};
        for (const char *s = q->sql; *s; s++) {
                if (*s == '$' && s[1] >= '1' && s[1] <= '9') {
                        unsigned i = 0;
                        while (s[1] >= '0' && s[1] <= '9')
                                i = i * 10 + (unsigned) (*++s - '0');
                        if (i == 0 || i > q->n_params) {
                                buffer_done(&b);
                                return NULL;
                        }
                        DbParam *p = &q->params[i - 1];
                        if (p->type == DB_NULL)
                                buffer_append(&b, "NULL", 4);
                        else if (p->type == DB_INT) {
                                char n[24];
                                snprintf(n, sizeof(n), "%" PRId64, p->num);
                                buffer_append(&b, n, strlen(n));
                        } else {
                                size_t l = strlen(p->text);
                                char *esc = malloc(2 * l + 1);
                                if (!esc) {
                                        buffer_done(&b);
                                        return NULL;
                                }
                                unsigned long el = mysql_real_escape_string(my->mysql, esc, p->text, l);
                                buffer_append(&b, "'", 1);
                                buffer_append(&b, esc, el);
                                buffer_append(&b, "'", 1);
                                free(esc);
                        }
                        continue;
                }
                buffer_append(&b, s, 1);
        }
        return buffer_steal_string(&b);
}

static void my_kick(Db *db) {
        My *my = db->backend;
        DbQuery *q = db->head;
        _cleanup_free_ char *sql = NULL;
        int st, ret = 0;

        if (!q || my->step != STEP_IDLE)
                return;
        if (!db->up || !my->mysql) {
                db_fail_all(db, -EHOSTDOWN);
                return;
        }
        sql = expand(my, q);
        if (!sql) {
                db_complete_head(db, -EINVAL, NULL);
                return;
        }
        db->busy = true;
        my->step = STEP_QUERY;
        arm_timer(db, db->timeout_usec);
        st = mysql_real_query_start(&ret, my->mysql, sql, strlen(sql));
        if (st) {
                wait_for(db, st);
                return;
        }
        query_sent(db, ret);
}

const DbBackendOps db_mysql_ops = {
        .open = my_open,
        .close = my_close,
        .kick = my_kick,
};
