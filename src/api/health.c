/* SPDX-License-Identifier: MIT */
#include "api/api.h"
#include "shared/json-util.h"

int api_health(HttpRequest *r, void *userdata) {
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_add(o, "status", json_object_new_string("ok"));
        json_add(o, "version", json_object_new_string(ISOL8_VERSION));
        return http_reply_json(r, MHD_HTTP_OK, o);
}
