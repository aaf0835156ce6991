/* SPDX-License-Identifier: MIT */
/* SQLite: a local file, so a query runs at once; its answer still comes from the loop. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/db.h"
#include "shared/log.h"
#include "shared/util.h"

static int sqlite_open(Db *db, const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        sqlite3 *h = NULL;
        int r;

        if (!dir)
                return -ENOMEM;
        /* The directory of the key database is private to the service. */
        r = mkdir_p(dirname(dir), 0700);
        if (r < 0)
                return log_error_errno(r, "auth: cannot create the directory of %s: %m", path);
        r = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (r < 0)
                return log_error_errno(errno, "auth: cannot open %s: %m", path);
        (void) fchmod(r, 0600);
        close(r);
        if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
                log_error("auth: cannot open SQLite database %s: %s", path, h ? sqlite3_errmsg(h) : "out of memory");
                sqlite3_close(h);
                return -EIO;
        }
        sqlite3_busy_timeout(h, (int) (db->timeout_usec / 1000));
        (void) sqlite3_exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
        db->backend = h;
        if (asprintf(&db->description, "SQLite %s", path) < 0)
                db->description = NULL;
        db->up = true;
        if (db->on_ready)
                db->on_ready(db, db->userdata);
        return 0;
}

static void sqlite_close(Db *db) {
        sqlite3_close(db->backend);
        db->backend = NULL;
}

static int run(sqlite3 *h, DbQuery *q, DbResult *res) {
        sqlite3_stmt *st = NULL;
        Buffer cells = {};
        int rc;

        if (sqlite3_prepare_v2(h, q->sql, -1, &st, NULL) != SQLITE_OK) {
                log_error("auth: SQLite: %s", sqlite3_errmsg(h));
                return -EIO;
        }
        for (unsigned i = 0; i < q->n_params; i++) {
                char name[16];
                int idx;
                snprintf(name, sizeof(name), "$%u", i + 1);
                idx = sqlite3_bind_parameter_index(st, name);
                if (idx == 0)
                        continue;
                if (q->params[i].type == DB_TEXT)
                        sqlite3_bind_text(st, idx, q->params[i].text, -1, SQLITE_STATIC);
                else if (q->params[i].type == DB_INT)
                        sqlite3_bind_int64(st, idx, q->params[i].num);
                else
                        sqlite3_bind_null(st, idx);
        }
        res->n_cols = (unsigned) sqlite3_column_count(st);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                for (unsigned c = 0; c < res->n_cols; c++) {
                        const unsigned char *t = sqlite3_column_text(st, (int) c);
                        char *v = t ? strdup((const char *) t) : NULL;
                        if (buffer_append(&cells, &v, sizeof(v)) < 0) {
                                free(v);
                                rc = SQLITE_NOMEM;
                                break;
                        }
                }
                if (rc == SQLITE_NOMEM)
                        break;
                res->n_rows++;
        }
        res->cells = (char **) cells.data;
        if (rc != SQLITE_DONE) {
                log_error("auth: SQLite: %s", sqlite3_errmsg(h));
                sqlite3_finalize(st);
                return rc == SQLITE_BUSY ? -ETIMEDOUT : -EIO;
        }
        res->affected = (uint64_t) sqlite3_changes(h);
        sqlite3_finalize(st);
        return 0;
}

static void sqlite_kick(Db *db) {
        while (db->head) {
                DbResult res = {};
                int r = run(db->backend, db->head, &res);
                db->busy = true;
                db_complete_head(db, r, &res);
                db_result_free(&res);
        }
}

const DbBackendOps db_sqlite_ops = {
        .open = sqlite_open,
        .close = sqlite_close,
        .kick = sqlite_kick,
};
