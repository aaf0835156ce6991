/* SPDX-License-Identifier: MIT */
/* Sessions and their files: GET /sessions, DELETE /session/:id, POST /file, GET /file,
 * POST /cleanup. */
#include <errno.h>
#include <string.h>

#include "api/api.h"
#include "sandbox/fsio.h"
#include "shared/crypto.h"
#include "shared/json-util.h"
#include "shared/log.h"

int api_sessions_list(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        json_object *o = json_object_new_object(), *list = session_list_json(ctx->sessions, &r->auth);

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

int api_session_delete(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        /* Idempotent: an unknown id (or another tenant's) answers the same and changes nothing. */
        if (r->param && session_id_valid(r->param))
                (void) session_destroy(ctx->sessions, &r->auth, r->param);
        return reply_ok(r, NULL, NULL);
}

/* Refusals of the file layer in words a client can act on. */
static int reply_file_error(HttpRequest *r, int error, const char *path) {
        switch (error) {
        case -ENOENT:
                return http_reply_error(r, MHD_HTTP_NOT_FOUND, "File not found: %s", path);
        case -EFBIG:
        case -ENOSPC:
        case -EDQUOT:
                return http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "File too large: %s", path);
        case -ENOMEM:
                return http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "File does not fit in the session's memory limit: %s", path);
        case -EXDEV:
        case -ELOOP:
        case -EPERM:
        case -EACCES:
        case -ENOTDIR:
        case -EISDIR:
        case -EINVAL:
        case -ENXIO:
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Refusing %s: not a regular file inside the sandbox (%s)", path,
                                        strerror(-error));
        default:
                log_warning_errno(error, "file transfer for %s failed: %m", path);
                return http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "File transfer failed");
        }
}

/* The session's root directory (ret_root optional), user, secrets and sandbox, or a 404 reply
 * (returns > 0). Marks the access. */
static int session_files(ApiContext *ctx, HttpRequest *r, const char *id, int *ret_root, uid_t *ret_uid,
                         const SecretMask **ret_mask, Sandbox **ret_sandbox) {
        Session *s;
        int root = -EBADF;
        if (!id || !session_id_valid(id) || session_lookup(ctx->sessions, &r->auth, id, &s) < 0 || !session_sandbox(s) ||
            (ret_root && (root = sandbox_open_root(session_sandbox(s))) < 0))
                return http_reply_error(r, MHD_HTTP_NOT_FOUND, "Session not found"), 1;
        session_touch(s);
        if (ret_root)
                *ret_root = root;
        *ret_uid = sandbox_host_uid(session_sandbox(s));
        if (ret_mask)
                *ret_mask = session_secret_mask(s);
        if (ret_sandbox)
                *ret_sandbox = session_sandbox(s);
        return 0;
}

typedef struct FilePut {
        Sandbox *sb;
        const char *path;
        const void *data;
        size_t size;
        uid_t uid;
} FilePut;

static int file_put_charged(void *userdata) {
        FilePut *f = userdata;
        _cleanup_close_ int root = sandbox_open_root(f->sb);
        if (root < 0)
                return root;
        return sandbox_write_file(root, f->path, f->data, f->size, f->uid, f->uid, 0644);
}

int api_file_put(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        _cleanup_json_ json_object *body = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ void *data = NULL;
        const char *id = NULL, *p = NULL, *content = NULL;
        json_object *cv;
        Sandbox *sb;
        size_t size;
        uid_t uid;
        int k;

        if (http_request_body_json(r, false, &body) > 0)
                return 0;
        if (!json_object_is_type(body, json_type_object) || json_get_string(body, "sessionId", &id) < 0 ||
            json_get_string(body, "path", &p) < 0 || json_get_string(body, "content", &content) < 0)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Expected {\"sessionId\", \"path\", \"content\": base64}");
        if (sandbox_path_normalize(p, true, &path) < 0)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid path: must stay inside /sandbox or /tmp");
        json_object_object_get_ex(body, "content", &cv);
        if (base64_decode(content, (size_t) json_object_get_string_len(cv), &data, &size) < 0)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "content is not valid base64");
        if (session_files(ctx, r, id, NULL, &uid, NULL, &sb) > 0)
                return 0;
        /* Written from the sandbox's cgroup: the file counts against the session's memory limit. */
        k = sandbox_charged_call(sb, file_put_charged, &(FilePut) { sb, path, data, size, uid });
        if (k < 0)
                return reply_file_error(r, k, path);
        return reply_ok(r, NULL, NULL);
}

int api_file_get(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        const char *id = http_request_query(r, "sessionId"), *p = http_request_query(r, "path");
        _cleanup_free_ char *path = NULL, *b64 = NULL, *masked = NULL;
        const SecretMask *mask = NULL;
        _cleanup_free_ void *data = NULL;
        _cleanup_close_ int root = -EBADF;
        json_object *o;
        size_t size;
        uid_t uid;
        int k;

        if (isempty(id) || isempty(p))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Missing sessionId or path");
        if (sandbox_path_normalize(p, true, &path) < 0)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid path: must stay inside /sandbox or /tmp");
        if (session_files(ctx, r, id, &root, &uid, &mask, NULL) > 0)
                return 0;
        /* base64 grows by a third: keep the answer within the body limit. */
        k = sandbox_read_file(root, path, ctx->exec.max_file_bytes / 4 * 3, uid, uid, &data, &size);
        if (k < 0)
                return reply_file_error(r, k, path);
        if (mask) {
                size_t consumed;
                masked = secret_mask_apply(mask, data, size, true, &size, &consumed);
                if (!masked)
                        return -ENOMEM;
        }
        b64 = base64_encode(masked ?: data, size);
        o = json_object_new_object();
        if (!b64 || !o) {
                json_object_put(o);
                return -ENOMEM;
        }
        json_add(o, "content", json_object_new_string(b64));
        return http_reply_json(r, MHD_HTTP_OK, o);
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
 * "images" when asked (?images=true or {"images": true}); this server builds no images, so that
 * one is always empty. "destroyed" is this server's older shape, kept for its own clients. */
int api_cleanup(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        _cleanup_json_ json_object *body = NULL;
        json_object *o, *destroyed;
        const char *q = http_request_query(r, "images");
        bool images = q && (streq(q, "true") || streq(q, "1"));
        unsigned sessions, sandboxes;
        int k;

        k = http_request_body_json(r, true, &body);
        if (k != 0)
                return k < 0 ? k : 0;
        if (body && json_object_is_type(body, json_type_object) && json_get_bool(body, "images", &images) == -EINVAL)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "\"images\" must be a boolean");

        sessions = session_destroy_all(ctx->sessions, "cleanup");
        sandboxes = pool_flush(ctx->exec.pool);
        log_info("cleanup: destroyed %u session(s) and %u idle sandbox(es)", sessions, sandboxes);
        pool_replenish(ctx->exec.pool);

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
                json_add(o, "images", cleanup_counts(0));
        json_add(destroyed, "sessions", json_object_new_int64(sessions));
        json_add(destroyed, "sandboxes", json_object_new_int64(sandboxes));
        json_add(o, "destroyed", destroyed);
        return http_reply_json(r, MHD_HTTP_OK, o);
}
