/* SPDX-License-Identifier: MIT */
#include "api/api.h"
#include "shared/json-util.h"

int api_queue_status(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        ExecQueue *q = ctx->queue;
        json_object *o = json_object_new_object(), *qo = json_object_new_object();
        unsigned cur = exec_queue_running(q), max = exec_queue_max(q);

        if (!o || !qo) {
                json_object_put(o);
                json_object_put(qo);
                return -ENOMEM;
        }
        json_add(o, "current", json_object_new_int64(cur));
        json_add(o, "max", json_object_new_int64(max));
        json_add(o, "available", json_object_new_int64(cur < max ? max - cur : 0));
        json_add(o, "pending", json_object_new_int64(exec_queue_pending(q)));
        json_add(qo, "maxSize", json_object_new_int64(exec_queue_max_size(q)));
        json_add(qo, "timeoutMs", json_object_new_int64((int64_t) exec_queue_timeout_ms(q)));
        json_add(o, "queue", qo);
        return http_reply_json(r, MHD_HTTP_OK, o);
}
