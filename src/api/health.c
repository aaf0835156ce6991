/* SPDX-License-Identifier: MIT */
#include "api/api.h"
#include "shared/json-util.h"

int api_health(HttpRequest *r, void *userdata) {
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        ApiContext *ctx = userdata;
        bool leaving = ctx->m->draining || ctx->m->shutting_down;
        /* A load balancer's health check takes a leaving server out of rotation. */
        json_add(o, "status", json_object_new_string(leaving ? "draining" : "ok"));
        json_add(o, "version", json_object_new_string(ISOL8_VERSION));
        return http_reply_json(r, leaving ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, o);
}
