/* SPDX-License-Identifier: MIT */
/* The JSON execution envelope of API.md ({"request", "options", "sessionId"}) into a core
 * ExecRequest. Only the wire is here (types, field names, sizes written as "512m", Node
 * Buffers); every rule of the server is the core's (core/request.c). Used by /execute, SSE,
 * the WebSocket and the local CLI. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "core/egress.h"
#include "shared/json-util.h"
#include "shared/size.h"
#include "shared/util.h"

/* Optional typed field; a wrong type is a 400 naming the field. */
#define GET_OPT(getter, obj, key, dst, what)                                                 \
        ({                                                                                   \
                int _k = getter(obj, key, dst);                                              \
                if (_k == -EINVAL)                                                           \
                        return errorf(ret_error, "%s.%s has the wrong type", what, key);     \
                _k >= 0;                                                                     \
        })

/* A JSON array of strings (no NUL inside), at most EGRESS_PATTERNS_MAX of them. */
/* Entry i of a JSON array if it is a string without a NUL in it, else NULL. */
static const char *string_at(json_object *a, size_t i) {
        json_object *e = json_object_array_get_idx(a, i);
        if (!json_object_is_type(e, json_type_string) ||
            strlen(json_object_get_string(e)) != (size_t) json_object_get_string_len(e))
                return NULL;
        return json_object_get_string(e);
}

static int string_array(json_object *a, const char *what, char ***ret, char **ret_error) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = json_object_array_length(a);

        if (n > EGRESS_PATTERNS_MAX)
                return errorf(ret_error, "%s: too many entries (at most %d)", what, EGRESS_PATTERNS_MAX);
        for (size_t i = 0; i < n; i++) {
                const char *e = string_at(a, i);
                if (!e)
                        return errorf(ret_error, "%s[%zu] must be a string", what, i);
                if (strv_push(&l, strdup(e)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

typedef enum OptionType {
        OPT_COUNT,      /* a whole number */
        OPT_SIZE,       /* bytes: a number or "512m" */
        OPT_DOUBLE,
} OptionType;

/* The options that are limits, and where the core keeps them. */
static const struct {
        const char *key;
        OptionType type;
        LimitField field;
} limit_options[] = {
        { "cpuLimit",      OPT_DOUBLE, LIMIT_CPU },
        { "memoryLimit",   OPT_SIZE,   LIMIT_MEMORY },
        { "pidsLimit",     OPT_COUNT,  LIMIT_PIDS },
        { "maxOutputSize", OPT_COUNT,  LIMIT_MAX_OUTPUT },
        { "timeoutMs",     OPT_COUNT,  LIMIT_TIMEOUT },
        { "sandboxSize",   OPT_SIZE,   LIMIT_SANDBOX_SIZE },
        { "tmpSize",       OPT_SIZE,   LIMIT_TMP_SIZE },
};

static int parse_size_value(json_object *o, const char *key, uint64_t *ret, char **ret_error) {
        json_object *v;

        json_object_object_get_ex(o, key, &v);
        if (json_object_is_type(v, json_type_string)) {
                if (parse_size(json_object_get_string(v), ret) < 0)
                        return errorf(ret_error, "Invalid %s: \"%.64s\" (expected e.g. \"512m\")", key, json_object_get_string(v));
        } else if (json_get_u64(o, key, ret) < 0)
                return errorf(ret_error, "Invalid %s: expected a size such as \"512m\"", key);
        return 0;
}

static int parse_limit_options(json_object *opt, const SpecPolicy *p, ExecRequest *req, char **ret_error) {
        for (size_t i = 0; i < ELEMENTSOF(limit_options); i++) {
                const char *key = limit_options[i].key;
                char name[64];
                uint64_t u = 0;
                double d = 0;
                json_object *v;
                int r;

                if (!json_object_object_get_ex(opt, key, &v) || !v)
                        continue;
                switch (limit_options[i].type) {
                case OPT_SIZE:
                        r = parse_size_value(opt, key, &u, ret_error);
                        if (r < 0)
                                return r;
                        /* As the size keys always were named in messages: by their own key. */
                        snprintf(name, sizeof(name), u == 0 ? "%s" : "options.%s", key);
                        break;
                case OPT_COUNT:
                        if (GET_OPT(json_get_u64, opt, key, &u, "options") == 0)
                                continue;
                        snprintf(name, sizeof(name), "options.%s", key);
                        break;
                case OPT_DOUBLE:
                        if (GET_OPT(json_get_double, opt, key, &d, "options") == 0)
                                continue;
                        snprintf(name, sizeof(name), "options.%s", key);
                        break;
                }
                r = exec_request_set_limit(req, p, limit_options[i].field, u, d, name, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* {"NAME": "value", ...}; the values must be strings without NUL. */
static int parse_env_object(json_object *o, const char *what, bool secret, ExecRequest *req, char **ret_error) {
        json_object_object_foreach(o, key, val) {
                int r;
                if (!json_object_is_type(val, json_type_string) ||
                    strlen(json_object_get_string(val)) != (size_t) json_object_get_string_len(val)) {
                        /* The name's own error first, as a client would fix it first. */
                        r = exec_request_add_env(req, key, "", false, what, ret_error);
                        if (r < 0)
                                return r;
                        return errorf(ret_error, "%s.%s must be a string", what, key);
                }
                r = exec_request_add_env(req, key, json_object_get_string(val), secret, what, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_options(json_object *opt, const SpecPolicy *p, ExecRequest *req, char **ret_error) {
        json_object *o;
        const char *s;
        bool b;
        int r;

        if (!opt)
                return 0;
        if (GET_OPT(json_get_string, opt, "network", &s, "options")) {
                r = exec_request_set_network(req, p, s, ret_error);
                if (r < 0)
                        return r;
        }
        r = parse_limit_options(opt, p, req, ret_error);
        if (r < 0)
                return r;
        if (GET_OPT(json_get_bool, opt, "readonlyRootFs", &b, "options")) {
                r = exec_request_set_readonly_rootfs(req, p, b, ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_object, opt, "secrets", &o, "options")) {
                if (json_object_object_length(o) > SECRETS_MAX)
                        return errorf(ret_error, "options.secrets: too many secrets (at most %d)", SECRETS_MAX);
                r = parse_env_object(o, "options.secrets", true, req, ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_object, opt, "security", &o, "options"))
                if (GET_OPT(json_get_string, o, "seccomp", &s, "options.security")) {
                        r = exec_request_set_seccomp(req, p, s, ret_error);
                        if (r < 0)
                                return r;
                }
        if (GET_OPT(json_get_object, opt, "networkFilter", &o, "options")) {
                _cleanup_strv_free_ char **w = NULL, **bl = NULL;
                json_object *a;
                if (GET_OPT(json_get_array, o, "whitelist", &a, "options.networkFilter")) {
                        r = string_array(a, "options.networkFilter.whitelist", &w, ret_error);
                        if (r < 0)
                                return r;
                }
                if (GET_OPT(json_get_array, o, "blacklist", &a, "options.networkFilter")) {
                        r = string_array(a, "options.networkFilter.blacklist", &bl, ret_error);
                        if (r < 0)
                                return r;
                }
                r = exec_request_set_network_filter(req, TAKE_PTR(w), TAKE_PTR(bl), ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_bool, opt, "logNetwork", &b, "options"))
                req->log_network = b;
        if (GET_OPT(json_get_string, opt, "image", &s, "options")) {
                r = exec_request_set_image(req, s, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A file's content: a string, or a Node.js Buffer as JSON.stringify() writes it
 * ({"type":"Buffer","data":[104,105]}), which upstream's CLI sends for files it read. */
static int file_content_parse(json_object *v, char **ret, size_t *ret_size) {
        json_object *type, *data;
        char *c;
        size_t n;

        if (json_object_is_type(v, json_type_string)) {
                n = (size_t) json_object_get_string_len(v);
                c = malloc(n + 1);
                if (!c)
                        return -ENOMEM;
                memcpy(c, json_object_get_string(v), n + 1);
                *ret = c;
                *ret_size = n;
                return 0;
        }
        if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, "type", &type) ||
            !json_object_is_type(type, json_type_string) || !streq(json_object_get_string(type), "Buffer") ||
            !json_object_object_get_ex(v, "data", &data) || !json_object_is_type(data, json_type_array))
                return -EINVAL;
        n = json_object_array_length(data);
        c = malloc(n + 1);
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *b = json_object_array_get_idx(data, i);
                int64_t x;
                if (!json_object_is_type(b, json_type_int) || (x = json_object_get_int64(b)) < 0 || x > 255) {
                        free(c);
                        return -EINVAL;
                }
                c[i] = (char) x;
        }
        c[n] = 0;
        *ret = c;
        *ret_size = n;
        return 0;
}

static int parse_files(json_object *o, ExecRequest *req, char **ret_error) {
        if (json_object_object_length(o) > REQUEST_FILES_MAX)
                return errorf(ret_error, "request.files: too many files (at most %d)", REQUEST_FILES_MAX);
        json_object_object_foreach(o, key, val) {
                _cleanup_free_ char *norm = NULL;
                char *content;
                size_t size;
                int r;

                /* The path first: a bad one is named before its content is looked at. */
                if (sandbox_path_normalize(key, true, &norm) < 0)
                        return errorf(ret_error, "Invalid path in request.files: \"%.128s\"", key);
                r = file_content_parse(val, &content, &size);
                if (r == -EINVAL)
                        return errorf(ret_error, "request.files[\"%.64s\"] must be a string or a Buffer "
                                      "({\"type\":\"Buffer\",\"data\":[bytes]})", key);
                if (r < 0)
                        return r;
                r = exec_request_add_file(req, key, content, size, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A string field with its length (it may hold NUL bytes, e.g. stdin). */
static int dup_string(json_object *o, const char *key, char **ret, size_t *ret_size) {
        json_object *v;
        size_t n;

        json_object_object_get_ex(o, key, &v);
        n = (size_t) json_object_get_string_len(v);
        *ret = malloc(n + 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, json_object_get_string(v), n + 1);
        if (ret_size)
                *ret_size = n;
        return 0;
}

static int parse_request(json_object *rq, const SpecPolicy *p, ExecRequest *req, char **ret_error) {
        json_object *o;
        const char *s;
        uint64_t u;
        int r;

        if (GET_OPT(json_get_string, rq, "code", &s, "request") && *s && !(req->code = strdup(s)))
                return -ENOMEM;
        if (GET_OPT(json_get_string, rq, "cmd", &s, "request") && *s && !(req->cmd = strdup(s)))
                return -ENOMEM;
        if (GET_OPT(json_get_string, rq, "runtime", &s, "request")) {
                r = exec_request_set_runtime(req, p, s, ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_string, rq, "codeUrl", &s, "request") && *s) {
                const char *hash = NULL;
                bool insecure = false;
                if (req->code || req->cmd)
                        return errorf(ret_error, "Exactly one of request.code, request.cmd or request.codeUrl must be given");
                (void) GET_OPT(json_get_string, rq, "codeHash", &hash, "request");
                (void) GET_OPT(json_get_bool, rq, "allowInsecureCodeUrl", &insecure, "request");
                r = exec_request_set_code_url(req, p, s, hash && *hash ? hash : NULL, insecure, ret_error);
                if (r < 0)
                        return r;
        }
        r = exec_request_check_program(req, p, ret_error);
        if (r < 0)
                return r;
        if (GET_OPT(json_get_u64, rq, "timeoutMs", &u, "request")) {
                r = exec_request_set_limit(req, p, LIMIT_TIMEOUT, u, 0, "request.timeoutMs", ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_object, rq, "env", &o, "request")) {
                r = parse_env_object(o, "request.env", false, req, ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_string, rq, "fileExtension", &s, "request")) {
                r = exec_request_set_extension(req, s, ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_string, rq, "stdin", &s, "request") && dup_string(rq, "stdin", &req->stdin_data, &req->stdin_size) < 0)
                return -ENOMEM;
        if (GET_OPT(json_get_object, rq, "files", &o, "request")) {
                r = parse_files(o, req, ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_array, rq, "outputPaths", &o, "request")) {
                size_t n = json_object_array_length(o);
                if (n > REQUEST_OUTPUT_PATHS_MAX)
                        return errorf(ret_error, "request.outputPaths: too many paths (at most %d)", REQUEST_OUTPUT_PATHS_MAX);
                for (size_t i = 0; i < n; i++) {
                        r = exec_request_add_output_path(req, string_at(o, i), i, ret_error);
                        if (r < 0)
                                return r;
                }
        }
        if (GET_OPT(json_get_string, rq, "setupScript", &s, "request") && *s && !(req->setup_script = strdup(s)))
                return -ENOMEM;
        if (GET_OPT(json_get_string, rq, "workdir", &s, "request") && *s) {
                r = exec_request_set_workdir(req, s, ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_object, rq, "metadata", &o, "request")) {
                json_object_object_foreach(o, key, val)
                        if (!json_object_is_type(val, json_type_string))
                                return errorf(ret_error, "request.metadata.%.64s must be a string", key);
                json_object_object_foreach(o, k2, v2)
                        if (exec_request_add_metadata(req, k2, json_object_get_string(v2)) < 0)
                                return -ENOMEM;
        }
        if (GET_OPT(json_get_array, rq, "installPackages", &o, "request")) {
                size_t n = json_object_array_length(o);
                for (size_t i = 0; i < n; i++) {
                        r = exec_request_add_package(req, string_at(o, i), i, ret_error);
                        if (r < 0)
                                return r;
                }
        }
        /* Upstream's agentFlags is one string of flags; a list of them is taken too. */
        {
                json_object *f = json_object_object_get(rq, "agentFlags");
                if (f && json_object_is_type(f, json_type_string))
                        r = exec_request_set_agent_flags(req, json_object_get_string(f), ret_error);
                else if (f && json_object_is_type(f, json_type_array)) {
                        r = 0;
                        for (size_t i = 0; r >= 0 && i < json_object_array_length(f); i++) {
                                const char *a = string_at(f, i);
                                if (!a)
                                        return errorf(ret_error, "request.agentFlags[%zu] is not a string", i);
                                r = exec_request_add_agent_flag(req, a, ret_error);
                        }
                } else if (f && !json_object_is_type(f, json_type_null))
                        return errorf(ret_error, "request.agentFlags has the wrong type");
                else
                        r = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

int api_request_parse(json_object *envelope, const SpecPolicy *p, ExecRequest **ret, char **ret_error) {
        _cleanup_(exec_request_freep) ExecRequest *req = NULL;
        json_object *rq, *opt = NULL;
        const char *s;
        int r;

        *ret_error = NULL;
        if (!envelope || !json_object_is_type(envelope, json_type_object))
                return errorf(ret_error, "Request body must be a JSON object");
        r = json_get_object(envelope, "request", &rq);
        if (r == -ENOENT)
                return errorf(ret_error, "Missing \"request\" object");
        if (r < 0)
                return errorf(ret_error, "\"request\" must be an object");
        r = json_get_object(envelope, "options", &opt);
        if (r == -EINVAL)
                return errorf(ret_error, "\"options\" must be an object");

        r = exec_request_new(p, &req);
        if (r < 0)
                return r;
        if (GET_OPT(json_get_string, envelope, "sessionId", &s, "body") && !(req->session_id = strdup(s)))
                return -ENOMEM;
        /* Secrets first, so request.env (added after) is what a program sees on a clash. */
        r = parse_options(opt, p, req, ret_error);
        if (r < 0)
                return r;
        r = parse_request(rq, p, req, ret_error);
        if (r < 0)
                return r;
        r = exec_request_finish(req, p, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(req);
        return 0;
}
