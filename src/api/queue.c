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
        return http_reply_json(r, MHD_HTTP_OK, o);
}
