/* SPDX-License-Identifier: MIT */
/* Sessions and their files: GET /sessions, DELETE /session/:id, POST /file, GET /file,
 * POST /cleanup. */
#include <errno.h>
#include <string.h>

#include "api/api.h"
#include "core/images.h"
#include "shared/crypto.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

static bool path_inside_sandbox(const char *p) {
        _cleanup_free_ char *norm = NULL;
        return sandbox_path_normalize(p, true, &norm) >= 0;
}

/* [{"id","isActive","lastAccessedAt","createdAt","runtime","tenantId","executions"}] for the caller. */
static json_object *api_sessions_json(Manager *m, const AuthInfo *who) {
        json_object *a = json_object_new_array();
        if (!a)
                return NULL;
        for (Session *s = session_first(m->sessions); s; s = session_next(s)) {
                SessionInfo si;
                json_object *o;
                char t1[64], t2[64];

                session_info(s, &si);
                if (who->type != AUTH_MASTER && !streq(si.tenant, who->tenant))
                        continue;
                o = json_object_new_object();
                if (!o)
                        break;
                json_add(o, "id", json_object_new_string(si.id));
                json_add(o, "isActive", json_object_new_boolean(si.active));
                json_add(o, "lastAccessedAt", json_object_new_string(format_iso8601(si.last_access_usec, t1)));
                json_add(o, "createdAt", json_object_new_string(format_iso8601(si.created_usec, t2)));
                json_add(o, "runtime", json_object_new_string(si.runtime));
                json_add(o, "tenantId", json_object_new_string(si.tenant));
                json_add(o, "executions", json_object_new_int64(si.executions));
                json_object_array_add(a, o);
        }
        return a;
}

int api_sessions_list(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        json_object *o = json_object_new_object(), *list = api_sessions_json(ctx->m, http_request_auth(r));

        if (!o || !list) {
                json_object_put(o);
                json_object_put(list);
                return -ENOMEM;
        }
        json_add(o, "sessions", list);
        return http_reply_json(r, MHD_HTTP_OK, o);
}

static int reply_ok(HttpRequest *r, const char *extra_key, json_object *extra) {
        json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(extra);
                return -ENOMEM;
        }
        json_add(o, "ok", json_object_new_boolean(true));
        if (extra_key)
                json_add(o, extra_key, extra);
        return http_reply_json(r, MHD_HTTP_OK, o);
}

static int session_delete(HttpRequest *r, ApiContext *ctx) {
        /* Idempotent: an unknown id (or another tenant's) answers the same and changes nothing. */
        (void) manager_session_destroy(ctx->m, http_request_auth(r), http_request_param(r));
        return reply_ok(r, NULL, NULL);
}

static void session_delete_later(HttpRequest *r, ApiContext *ctx, void *data) {
        int k = session_delete(r, ctx);
        if (k < 0)
                (void) api_reply_outcome(r, k, NULL);
}

int api_session_delete(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        int k = api_session_route(r, ctx, http_request_param(r), API_ROUTE_DELETE, session_delete_later, NULL, NULL);
        if (k != 0)
                return k < 0 ? k : 0;
        return session_delete(r, ctx);
}

/* The file's outcomes in words a client can act on; failures are 500s, logged once. */
static int reply_file_outcome(HttpRequest *r, int k, const char *path) {
        switch (k) {
        case OUTCOME_FILE_NOT_FOUND:
                return http_reply_error(r, MHD_HTTP_NOT_FOUND, "File not found: %s", path);
        case OUTCOME_TOO_BIG:
                return http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "File too large: %s", path);
        case OUTCOME_MEMORY_LIMIT:
                return http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "File does not fit in the session's memory limit: %s", path);
        case OUTCOME_PATH_REFUSED:
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST,
                                        "Refusing %s: must be a regular file inside /sandbox or /tmp", path);
        default:
                return api_reply_outcome(r, k, NULL);
        }
}

typedef struct FilePut {
        HttpRequest *r;             /* NULL once the client is gone (the write still ends) */
        char *path;
} FilePut;

static void file_put_done(int result, void *userdata) {
        FilePut *f = userdata;

        if (f->r) {
                if (result != 0)
                        (void) reply_file_outcome(f->r, result, f->path);
                else
                        (void) reply_ok(f->r, NULL, NULL);
        }
        free(f->path);
        free(f);
}

static void file_put_gone(HttpRequest *r, void *userdata) {
        FilePut *f = userdata;
        f->r = NULL;
}

static void file_put_later(HttpRequest *r, ApiContext *ctx, void *data);

/* routed: the session was looked for in the cluster already. */
static int file_put(HttpRequest *r, ApiContext *ctx, bool routed) {
        _cleanup_json_ json_object *body = NULL;
        _cleanup_free_ void *data = NULL;
        const char *id = NULL, *p = NULL, *content = NULL;
        json_object *cv;
        FilePut *f;
        size_t size;
        int k;

        if (http_request_body_json(r, false, &body) > 0)
                return 0;
        if (!json_object_is_type(body, json_type_object) || json_get_string(body, "sessionId", &id) < 0 ||
            json_get_string(body, "path", &p) < 0 || json_get_string(body, "content", &content) < 0)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Expected {\"sessionId\", \"path\", \"content\": base64}");
        if (!path_inside_sandbox(p))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid path: must stay inside /sandbox or /tmp");
        json_object_object_get_ex(body, "content", &cv);
        if (base64_decode(content, (size_t) json_object_get_string_len(cv), &data, &size) < 0)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "content is not valid base64");
        if (!routed) {
                k = api_session_route(r, ctx, id, 0, file_put_later, NULL, NULL);
                if (k != 0)
                        return k < 0 ? k : 0;
        }
        f = calloc(1, sizeof(FilePut));
        if (!f || !(f->path = strdup(p))) {
                free(f);
                return -ENOMEM;
        }
        f->r = r;
        k = manager_file_write(ctx->m, http_request_auth(r), id, p, data, size, file_put_done, f, NULL);
        if (k != 0) {
                free(f->path);
                free(f);
                return reply_file_outcome(r, k, p);
        }
        http_request_suspend(r, file_put_gone, f);
        return 0;
}

static void file_put_later(HttpRequest *r, ApiContext *ctx, void *data) {
        int k = file_put(r, ctx, true);
        if (k < 0)
                (void) api_reply_outcome(r, k, NULL);
}

int api_file_put(HttpRequest *r, void *userdata) {
        return file_put(r, userdata, false);
}

static void file_get_later(HttpRequest *r, ApiContext *ctx, void *data);

static int file_get(HttpRequest *r, ApiContext *ctx, bool routed) {
        const char *id = http_request_query(r, "sessionId"), *p = http_request_query(r, "path");
        _cleanup_free_ char *data = NULL, *b64 = NULL;
        json_object *o;
        size_t size;
        int k;

        if (isempty(id) || isempty(p))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Missing sessionId or path");
        if (!path_inside_sandbox(p))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid path: must stay inside /sandbox or /tmp");
        if (!routed) {
                k = api_session_route(r, ctx, id, 0, file_get_later, NULL, NULL);
                if (k != 0)
                        return k < 0 ? k : 0;
        }
        /* base64 grows by a third: keep the answer within the body limit. */
        k = manager_file_read(ctx->m, http_request_auth(r), id, p, ctx->m->config.limits.body_bytes / 4 * 3, &data, &size);
        if (k != 0)
                return reply_file_outcome(r, k, p);
        b64 = base64_encode(data, size);
        o = json_object_new_object();
        if (!b64 || !o) {
                json_object_put(o);
                return -ENOMEM;
        }
        json_add(o, "content", json_object_new_string(b64));
        return http_reply_json(r, MHD_HTTP_OK, o);
}

static void file_get_later(HttpRequest *r, ApiContext *ctx, void *data) {
        int k = file_get(r, ctx, true);
        if (k < 0)
                (void) api_reply_outcome(r, k, NULL);
}

int api_file_get(HttpRequest *r, void *userdata) {
        return file_get(r, userdata, false);
}

static json_object *cleanup_counts(unsigned removed) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_add(o, "removed", json_object_new_int64(removed));
        json_add(o, "failed", json_object_new_int64(0));
        json_add(o, "errors", json_object_new_array());
        return o;
}

/* Upstream's answer: {"ok", "sessions": {removed, failed, errors}, "containers": {...}} and
 * "images" when asked (?images=true or {"images": true}): the runtime images no run is using
 * are removed. "destroyed" is this server's older shape, kept for its own clients. */
int api_cleanup(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        _cleanup_json_ json_object *body = NULL;
        json_object *o, *destroyed;
        const char *q = http_request_query(r, "images");
        bool images = q && (streq(q, "true") || streq(q, "1"));
        unsigned sessions, sandboxes, removed_images = 0;
        int k;

        k = http_request_body_json(r, true, &body);
        if (k != 0)
                return k < 0 ? k : 0;
        if (body && json_object_is_type(body, json_type_object) && json_get_bool(body, "images", &images) == -EINVAL)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "\"images\" must be a boolean");

        CleanupCounts counts;
        manager_cleanup(ctx->m, &counts);
        sessions = counts.sessions;
        sandboxes = counts.sandboxes;
        if (images)
                removed_images = manager_images_cleanup(ctx->m, "http");

        o = json_object_new_object();
        destroyed = json_object_new_object();
        if (!o || !destroyed) {
                json_object_put(o);
                json_object_put(destroyed);
                return -ENOMEM;
        }
        json_add(o, "ok", json_object_new_boolean(true));
        json_add(o, "sessions", cleanup_counts(sessions));
        json_add(o, "containers", cleanup_counts(sandboxes));
        if (images)
                json_add(o, "images", cleanup_counts(removed_images));
        json_add(destroyed, "sessions", json_object_new_int64(sessions));
        json_add(destroyed, "sandboxes", json_object_new_int64(sandboxes));
        json_add(o, "destroyed", destroyed);
        return http_reply_json(r, MHD_HTTP_OK, o);
}
