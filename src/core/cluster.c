/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/db.h"
#include "core/cluster.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

/* Purges (lost sessions past their time, nodes gone for as long) run every this many beats. */
#define PURGE_EVERY_BEATS 10

static const char *const schema[] = {
        "CREATE TABLE IF NOT EXISTS isol8_nodes ("
        " node_id VARCHAR(64) PRIMARY KEY, url VARCHAR(512) NOT NULL, heartbeat_at BIGINT NOT NULL,"
        " state VARCHAR(16) NOT NULL, running INTEGER NOT NULL, queued INTEGER NOT NULL,"
        " sessions INTEGER NOT NULL, max_concurrent INTEGER NOT NULL)",
        /* Session ids are per tenant (docs/http-api.md). */
        "CREATE TABLE IF NOT EXISTS isol8_sessions ("
        " tenant_id VARCHAR(255) NOT NULL, session_id VARCHAR(128) NOT NULL, node_id VARCHAR(64) NOT NULL,"
        " state VARCHAR(16) NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
        " PRIMARY KEY (tenant_id, session_id))",
        "CREATE INDEX IF NOT EXISTS isol8_sessions_node ON isol8_sessions (node_id)",
};

struct ClusterCall {
        Cluster *cluster;
        char *id;
        char *tenant;                   /* the caller's (what a claim is made for) */
        bool any_tenant;                /* the master's lookup: any tenant's session by id */
        bool claim;
        bool claimed_once;
        ClusterLocateFn cb;              /* NULL once cancelled */
        void *userdata;
};

struct Cluster {
        sd_event *event;
        Db *db;
        char *node_id;
        char *url;
        ClusterConfig config;
        ClusterLoadFn load;
        void *load_userdata;
        sd_event_source *beat;
        ClusterNode *nodes;
        size_t n_nodes;
        unsigned beats;
        bool beat_busy;
        bool beat_failed;               /* said once until a beat gets through */
        bool marked_lost;                /* this node's sessions of a former life are lost */
        bool draining;
        bool leaving;
        unsigned leave_pending;
};

const char *cluster_node_state_to_string(ClusterNodeState s) {
        switch (s) {
        case CLUSTER_NODE_LIVE:
                return "live";
        case CLUSTER_NODE_DRAINING:
                return "draining";
        case CLUSTER_NODE_GONE:
                return "gone";
        case CLUSTER_NODE_DEAD:
                return "dead";
        }
        return "?";
}

static bool is_mysql(Cluster *c) {
        return db_kind(c->db) == DB_MYSQL;
}

static void on_ignored(int error, const DbResult *res, void *userdata) {
}

static void on_schema(int error, const DbResult *res, void *userdata) {
        if (error < 0)
                log_error("cluster: cannot create the session directory's tables");
}

static void on_marked_lost(int error, const DbResult *res, void *userdata) {
        Cluster *c = userdata;
        if (error < 0)
                return;
        c->marked_lost = true;
        if (res && res->affected > 0)
                log_info("cluster: %" PRIu64 " session(s) of this node's former run are lost", res->affected);
}

static void on_db_ready(Db *db, void *userdata) {
        Cluster *c = userdata;

        /* Queued ahead of everything, in order: the tables, then (at the first connection) the
         * sessions this node held before it was restarted are lost — before any lookup can
         * find them live. The node id is checked to be [A-Za-z0-9._-]: it is safe inline. */
        if (!c->marked_lost) {
                _cleanup_free_ char *sql = NULL;
                if (asprintf(&sql, "UPDATE isol8_sessions SET state = 'lost', updated_at = %" PRId64
                             " WHERE node_id = '%s' AND state = 'live'", realtime_ms(), c->node_id) >= 0)
                        (void) db_query_first(db, sql, on_marked_lost, c);
        }
        for (size_t i = ELEMENTSOF(schema); i > 0; i--)
                (void) db_query_first(db, schema[i - 1], on_schema, c);
        /* The others learn of this node (again) now, not at the next beat. */
        (void) sd_event_source_set_time_relative(c->beat, 0);
        (void) sd_event_source_set_enabled(c->beat, SD_EVENT_ON);
}

/* ---- nodes ---- */

static void nodes_clear(Cluster *c) {
        for (size_t i = 0; i < c->n_nodes; i++) {
                free(c->nodes[i].id);
                free(c->nodes[i].url);
        }
        free(c->nodes);
        c->nodes = NULL;
        c->n_nodes = 0;
}

static ClusterNodeState node_state(Cluster *c, const char *state, uint64_t heartbeat_ms) {
        if (streq_ptr(state, "gone"))
                return CLUSTER_NODE_GONE;
        if ((int64_t) (heartbeat_ms + c->config.dead_after_usec / USEC_PER_MSEC) < realtime_ms())
                return CLUSTER_NODE_DEAD;
        if (streq_ptr(state, "draining"))
                return CLUSTER_NODE_DRAINING;
        return CLUSTER_NODE_LIVE;
}

static unsigned cell_uint(const DbResult *res, unsigned row, unsigned col) {
        const char *v = db_cell(res, row, col);
        return v ? (unsigned) strtoul(v, NULL, 10) : 0;
}

static void on_nodes(int error, const DbResult *res, void *userdata) {
        Cluster *c = userdata;
        ClusterNode *nodes;

        if (error < 0 || !res || res->n_cols < 8)
                return;
        nodes = calloc(MAX(res->n_rows, 1u), sizeof(ClusterNode));
        if (!nodes)
                return;
        nodes_clear(c);
        c->nodes = nodes;
        for (unsigned i = 0; i < res->n_rows; i++) {
                ClusterNode *n = &nodes[c->n_nodes];
                const char *id = db_cell(res, i, 0), *url = db_cell(res, i, 1), *hb = db_cell(res, i, 2);
                if (!id || !url || !hb)
                        continue;
                n->id = strdup(id);
                n->url = strdup(url);
                if (!n->id || !n->url) {
                        free(n->id);
                        free(n->url);
                        break;
                }
                n->last_seen_ms = strtoull(hb, NULL, 10);
                n->state = node_state(c, db_cell(res, i, 3), n->last_seen_ms);
                n->load = (ClusterLoad) {
                        .running = cell_uint(res, i, 4),
                        .queued = cell_uint(res, i, 5),
                        .sessions = cell_uint(res, i, 6),
                        .max_concurrent = cell_uint(res, i, 7),
                };
                c->n_nodes++;
        }
}

static void on_beat_done(int error, const DbResult *res, void *userdata) {
        Cluster *c = userdata;
        if (error < 0 && !c->beat_failed)
                log_warning("cluster: the heartbeat could not be written (%s); the other servers will think this one dead",
                            strerror(-error));
        c->beat_failed = error < 0;
        c->beat_busy = false;
        if (c->leave_pending > 0)
                c->leave_pending--;
}

static int heartbeat(Cluster *c, const char *state) {
        ClusterLoad load = {};
        int r;

        c->load(c->load_userdata, &load);
        {
                DbParam p[] = {
                        DB_TEXTP(c->node_id), DB_TEXTP(c->url), DB_INTP(realtime_ms()), DB_TEXTP(state),
                        DB_INTP(load.running), DB_INTP(load.queued), DB_INTP(load.sessions), DB_INTP(load.max_concurrent),
                };
                r = db_query(c->db,
                             is_mysql(c)
                                     ? "INSERT INTO isol8_nodes (node_id, url, heartbeat_at, state, running, queued, sessions, max_concurrent)"
                                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON DUPLICATE KEY UPDATE url = VALUES(url),"
                                       " heartbeat_at = VALUES(heartbeat_at), state = VALUES(state), running = VALUES(running),"
                                       " queued = VALUES(queued), sessions = VALUES(sessions), max_concurrent = VALUES(max_concurrent)"
                                     : "INSERT INTO isol8_nodes (node_id, url, heartbeat_at, state, running, queued, sessions, max_concurrent)"
                                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (node_id) DO UPDATE SET url = excluded.url,"
                                       " heartbeat_at = excluded.heartbeat_at, state = excluded.state, running = excluded.running,"
                                       " queued = excluded.queued, sessions = excluded.sessions, max_concurrent = excluded.max_concurrent",
                             p, ELEMENTSOF(p), on_beat_done, c);
        }
        if (r < 0)
                return r;
        c->beat_busy = true;
        return 0;
}

static int on_beat(sd_event_source *s, uint64_t usec, void *userdata) {
        Cluster *c = userdata;

        /* A beat still waiting for the database is not doubled. */
        if (!c->beat_busy && !c->leaving && db_is_up(c->db)) {
                (void) heartbeat(c, c->draining ? "draining" : "live");
                (void) db_query(c->db,
                                "SELECT node_id, url, heartbeat_at, state, running, queued, sessions, max_concurrent"
                                " FROM isol8_nodes ORDER BY node_id",
                                NULL, 0, on_nodes, c);
                if (++c->beats % PURGE_EVERY_BEATS == 0) {
                        DbParam p[] = { DB_INTP(realtime_ms() - (int64_t) (c->config.lost_ttl_usec / USEC_PER_MSEC)) };
                        (void) db_query(c->db,
                                        "DELETE FROM isol8_sessions WHERE (state = 'lost' AND updated_at < $1)"
                                        " OR node_id IN (SELECT node_id FROM isol8_nodes WHERE heartbeat_at < $1)",
                                        p, 1, on_ignored, c);
                        (void) db_query(c->db, "DELETE FROM isol8_nodes WHERE heartbeat_at < $1", p, 1, on_ignored, c);
                }
        }
        (void) sd_event_source_set_time_relative(s, c->config.heartbeat_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

int cluster_new(Cluster **ret, sd_event *event, const ClusterConfig *config, ClusterLoadFn load, void *userdata) {
        _cleanup_(cluster_freep) Cluster *c = NULL;
        int r;

        c = calloc(1, sizeof(Cluster));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->config = *config;
        c->load = load;
        c->load_userdata = userdata;
        c->node_id = strdup(config->node_id);
        c->url = strdup(config->advertise_url);
        if (!c->node_id || !c->url)
                return -ENOMEM;
        c->config.node_id = c->node_id;
        c->config.advertise_url = c->url;
        c->config.connection_string = NULL;
        r = db_open(&c->db, event, config->connection_string, config->timeout_usec, on_db_ready, c);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(event, &c->beat, CLOCK_MONOTONIC, 0, USEC_PER_MSEC * 10, on_beat, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->beat, "cluster-heartbeat");
        log_info("cluster: node %s at %s, session directory in %s", c->node_id, c->url, db_describe(c->db));
        *ret = TAKE_PTR(c);
        return 0;
}

Cluster *cluster_free(Cluster *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->beat);
        /* Calls still waiting are answered (failed) by the database as it closes; they must
         * not find the cluster gone. */
        db_free(c->db);
        nodes_clear(c);
        free(c->node_id);
        free(c->url);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

const char *cluster_node_id(Cluster *c) {
        return c->node_id;
}

const ClusterNode *cluster_nodes(Cluster *c, size_t *ret_n) {
        *ret_n = c->n_nodes;
        return c->nodes;
}

/* ---- sessions ---- */

static void call_free(ClusterCall *call) {
        free(call->id);
        free(call->tenant);
        free(call);
}

static ClusterCall *call_new(Cluster *c, const char *id, const char *tenant, ClusterLocateFn cb, void *userdata) {
        ClusterCall *call = calloc(1, sizeof(ClusterCall));
        if (!call)
                return NULL;
        call->cluster = c;
        call->id = strdup(id);
        call->tenant = strdup(tenant);
        call->cb = cb;
        call->userdata = userdata;
        if (!call->id || !call->tenant) {
                call_free(call);
                return NULL;
        }
        return call;
}

static void call_answer(ClusterCall *call, int error, ClusterPlace place, const char *node, const char *url,
                        const char *tenant) {
        if (call->cb)
                call->cb(error, place, node, url, tenant, call->userdata);
        call_free(call);
}

static int lookup(ClusterCall *call);

static void on_claimed(int error, const DbResult *res, void *userdata) {
        ClusterCall *call = userdata;

        if (error < 0) {
                call_answer(call, error, CLUSTER_HERE, NULL, NULL, NULL);
                return;
        }
        if (res && res->affected > 0) {
                call_answer(call, 0, CLUSTER_HERE, call->cluster->node_id, NULL, call->tenant);
                return;
        }
        /* Someone else claimed it meanwhile: join theirs. */
        error = lookup(call);
        if (error < 0)
                call_answer(call, error, CLUSTER_HERE, NULL, NULL, NULL);
}

static int claim(ClusterCall *call) {
        Cluster *c = call->cluster;
        int64_t now = realtime_ms();
        DbParam p[] = { DB_TEXTP(call->tenant), DB_TEXTP(call->id), DB_TEXTP(c->node_id), DB_INTP(now), DB_INTP(now) };

        call->claimed_once = true;
        return db_query(c->db,
                        is_mysql(c) ? "INSERT IGNORE INTO isol8_sessions (tenant_id, session_id, node_id, state, created_at, updated_at)"
                                      " VALUES ($1, $2, $3, 'live', $4, $5)"
                                    : "INSERT INTO isol8_sessions (tenant_id, session_id, node_id, state, created_at, updated_at)"
                                      " VALUES ($1, $2, $3, 'live', $4, $5) ON CONFLICT (tenant_id, session_id) DO NOTHING",
                        p, ELEMENTSOF(p), on_claimed, call);
}

static void on_looked_up(int error, const DbResult *res, void *userdata) {
        ClusterCall *call = userdata;
        Cluster *c = call->cluster;
        const char *node, *tenant, *state, *url, *hb;

        if (error < 0) {
                call_answer(call, error, CLUSTER_HERE, NULL, NULL, NULL);
                return;
        }
        /* The master reaches a session by id when exactly one tenant has that id. */
        if (!res || res->n_rows != 1 || res->n_cols < 6) {
                if (call->claim && !call->claimed_once) {
                        error = claim(call);
                        if (error < 0)
                                call_answer(call, error, CLUSTER_HERE, NULL, NULL, NULL);
                        return;
                }
                call_answer(call, 0, call->claim ? CLUSTER_HERE : CLUSTER_NOWHERE, NULL, NULL, NULL);
                return;
        }
        node = db_cell(res, 0, 0);
        tenant = db_cell(res, 0, 1);
        state = db_cell(res, 0, 2);
        url = db_cell(res, 0, 3);
        hb = db_cell(res, 0, 4);
        if (streq_ptr(state, "lost"))
                call_answer(call, 0, CLUSTER_LOST, node, NULL, tenant);
        else if (streq_ptr(node, c->node_id))
                call_answer(call, 0, CLUSTER_HERE, node, NULL, tenant);
        else if (!url || !hb || node_state(c, db_cell(res, 0, 5), strtoull(hb, NULL, 10)) >= CLUSTER_NODE_GONE)
                call_answer(call, 0, CLUSTER_LOST, node, NULL, tenant);
        else
                call_answer(call, 0, CLUSTER_ELSEWHERE, node, url, tenant);
}

static int lookup(ClusterCall *call) {
        DbParam p[] = { DB_TEXTP(call->id), DB_TEXTP(call->tenant) };
        return db_query(call->cluster->db,
                        !call->any_tenant ? "SELECT s.node_id, s.tenant_id, s.state, n.url, n.heartbeat_at, n.state FROM isol8_sessions s"
                                       " LEFT JOIN isol8_nodes n ON n.node_id = s.node_id WHERE s.session_id = $1 AND s.tenant_id = $2"
                                     : "SELECT s.node_id, s.tenant_id, s.state, n.url, n.heartbeat_at, n.state FROM isol8_sessions s"
                                       " LEFT JOIN isol8_nodes n ON n.node_id = s.node_id WHERE s.session_id = $1 LIMIT 2",
                        p, call->any_tenant ? 1 : 2, on_looked_up, call);
}

int cluster_locate(Cluster *c, const char *id, const char *tenant, bool any_tenant, bool claim_it, ClusterLocateFn cb,
                   void *userdata, ClusterCall **ret) {
        ClusterCall *call;
        int r;

        call = call_new(c, id, tenant, cb, userdata);
        if (!call)
                return -ENOMEM;
        call->any_tenant = any_tenant;
        call->claim = claim_it;
        r = lookup(call);
        if (r < 0) {
                call_free(call);
                return r;
        }
        if (ret)
                *ret = call;
        return 0;
}

void cluster_call_cancel(ClusterCall *call) {
        if (call)
                call->cb = NULL;
}

void cluster_session_created(Cluster *c, const char *id, const char *tenant) {
        int64_t now = realtime_ms();
        DbParam p[] = { DB_TEXTP(tenant), DB_TEXTP(id), DB_TEXTP(c->node_id), DB_INTP(now), DB_INTP(now) };

        /* Usually claimed already; a session made here is this node's whatever the row said. */
        (void) db_query(c->db,
                        is_mysql(c) ? "INSERT INTO isol8_sessions (tenant_id, session_id, node_id, state, created_at, updated_at)"
                                      " VALUES ($1, $2, $3, 'live', $4, $5) ON DUPLICATE KEY UPDATE"
                                      " node_id = VALUES(node_id), state = 'live', updated_at = VALUES(updated_at)"
                                    : "INSERT INTO isol8_sessions (tenant_id, session_id, node_id, state, created_at, updated_at)"
                                      " VALUES ($1, $2, $3, 'live', $4, $5) ON CONFLICT (tenant_id, session_id) DO UPDATE SET"
                                      " node_id = excluded.node_id, state = 'live', updated_at = excluded.updated_at",
                        p, ELEMENTSOF(p), on_ignored, c);
}

void cluster_session_removed(Cluster *c, const char *id, const char *tenant) {
        DbParam p[] = { DB_TEXTP(tenant), DB_TEXTP(id), DB_TEXTP(c->node_id) };
        (void) db_query(c->db, "DELETE FROM isol8_sessions WHERE tenant_id = $1 AND session_id = $2 AND node_id = $3", p, 3,
                        on_ignored, c);
}

static void on_forgotten(int error, const DbResult *res, void *userdata) {
        call_answer(userdata, MIN(error, 0), CLUSTER_NOWHERE, NULL, NULL, NULL);
}

int cluster_forget(Cluster *c, const char *id, const char *tenant, const char *node, ClusterLocateFn cb, void *userdata,
                   ClusterCall **ret) {
        ClusterCall *call;
        int r;

        call = call_new(c, id, tenant, cb, userdata);
        if (!call)
                return -ENOMEM;
        /* The row found lost (of that node): a session made meanwhile elsewhere stays. */
        {
                DbParam p[] = { DB_TEXTP(tenant), DB_TEXTP(id), DB_TEXTP(node) };
                r = db_query(c->db, "DELETE FROM isol8_sessions WHERE tenant_id = $1 AND session_id = $2 AND node_id = $3", p,
                             3, on_forgotten, call);
        }
        if (r < 0) {
                call_free(call);
                return r;
        }
        if (ret)
                *ret = call;
        return 0;
}

void cluster_set_draining(Cluster *c) {
        if (c->draining)
                return;
        c->draining = true;
        if (db_is_up(c->db))
                (void) heartbeat(c, "draining");
}

static void on_left(int error, const DbResult *res, void *userdata) {
        Cluster *c = userdata;
        if (c->leave_pending > 0)
                c->leave_pending--;
}

void cluster_leave(Cluster *c) {
        DbParam p[] = { DB_TEXTP(c->node_id), DB_INTP(realtime_ms()) };

        if (c->leaving)
                return;
        c->leaving = true;
        (void) sd_event_source_set_enabled(c->beat, SD_EVENT_OFF);
        if (!db_is_up(c->db))
                return;
        if (db_query(c->db, "UPDATE isol8_sessions SET state = 'lost', updated_at = $2 WHERE node_id = $1", p, 2, on_left, c) >= 0)
                c->leave_pending++;
        if (heartbeat(c, "gone") >= 0)
                c->leave_pending++;
}

bool cluster_leave_pending(Cluster *c) {
        return c->leave_pending > 0;
}
