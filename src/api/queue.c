/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "api/api.h"
#include "shared/json-util.h"

/* Milliseconds with two decimals, printed as such. */
static json_object *json_ms(uint64_t usec) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%.2f", (double) usec / 1000.0);
        return json_object_new_double_s((double) usec / 1000.0, buf);
}

/* Several servers as one: every node's load as the session directory last said it. */
static json_object *cluster_json(Cluster *c) {
        json_object *o = json_object_new_object(), *nodes = json_object_new_array();
        const ClusterNode *n;
        size_t k;

        if (!o || !nodes) {
                json_object_put(o);
                json_object_put(nodes);
                return NULL;
        }
        n = cluster_nodes(c, &k);
        for (size_t i = 0; i < k; i++) {
                json_object *no = json_object_new_object();
                if (!no)
                        break;
                json_add(no, "nodeId", json_object_new_string(n[i].id));
                json_add(no, "url", json_object_new_string(n[i].url));
                json_add(no, "state", json_object_new_string(cluster_node_state_to_string(n[i].state)));
                json_add(no, "current", json_object_new_int64(n[i].load.running));
                json_add(no, "max", json_object_new_int64(n[i].load.max_concurrent));
                json_add(no, "pending", json_object_new_int64(n[i].load.queued));
                json_add(no, "sessions", json_object_new_int64(n[i].load.sessions));
                json_add(no, "lastSeenMs", json_object_new_int64((int64_t) n[i].last_seen_ms));
                json_object_array_add(nodes, no);
        }
        json_add(o, "nodeId", json_object_new_string(cluster_node_id(c)));
        json_add(o, "nodes", nodes);
        return o;
}

int api_queue_status(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        json_object *o = json_object_new_object(), *qo = json_object_new_object();
        ManagerStatus st;

        if (!o || !qo) {
                json_object_put(o);
                json_object_put(qo);
                return -ENOMEM;
        }
        manager_status(ctx->m, &st);
        json_add(o, "current", json_object_new_int64(st.active));
        json_add(o, "max", json_object_new_int64(st.max_concurrent));
        json_add(o, "available", json_object_new_int64(st.active < st.max_concurrent ? st.max_concurrent - st.active : 0));
        json_add(o, "pending", json_object_new_int64(st.queued));
        json_add(qo, "maxSize", json_object_new_int64(st.max_queue));
        json_add(qo, "timeoutMs", json_object_new_int64((int64_t) st.queue_timeout_ms));
        json_add(o, "queue", qo);
        /* This server's warm pool (not in upstream's answer; clients ignore what they do not know). */
        json_object *po = json_object_new_object();
        if (po) {
                json_add(po, "ready", json_object_new_int64(st.pool.ready));
                json_add(po, "building", json_object_new_int64(st.pool.building));
                json_add(po, "cleaning", json_object_new_int64(st.pool.cleaning));
                json_add(po, "inUse", json_object_new_int64(st.pool.in_use));
                json_add(po, "waiting", json_object_new_int64(st.pool.waiting));
                json_add(po, "demand", json_object_new_int64(st.pool.demand));
                json_add(po, "target", json_object_new_int64(st.pool.target));
                json_add(po, "buildMs", json_ms(st.pool.build_usec));
                json_add(po, "cleanMs", json_ms(st.pool.clean_usec));
                json_add(po, "built", json_object_new_int64((int64_t) st.pool.built));
                json_add(po, "cleaned", json_object_new_int64((int64_t) st.pool.cleaned));
                json_add(po, "destroyed", json_object_new_int64((int64_t) st.pool.destroyed));
                json_add(o, "pool", po);
        }
        if (ctx->m->cluster)
                json_add(o, "cluster", cluster_json(ctx->m->cluster));
        return http_reply_json(r, MHD_HTTP_OK, o);
}
