/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/request.h"
#include "shared/json-util.h"
#include "shared/size.h"
#include "shared/util.h"

ExecRequest *exec_request_free(ExecRequest *r) {
        if (!r)
                return NULL;
        free(r->code);
        free(r->cmd);
        strv_free(r->env);
        strv_free(r->secrets);
        secret_mask_free(r->secret_mask);
        free(r->extension);
        free(r->stdin_data);
        for (size_t i = 0; i < r->n_files; i++) {
                free(r->files[i].path);
                free(r->files[i].content);
        }
        free(r->files);
        strv_free(r->output_paths);
        free(r->setup_script);
        free(r->workdir);
        json_object_put(r->metadata);
        free(r->session_id);
        free(r);
        return NULL;
}

static int errorf(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int errorf(char **ret_error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return -EINVAL;
}

int sandbox_path_normalize(const char *path, bool allow_tmp, char **ret) {
        _cleanup_free_ char *copy = NULL;
        const char *rest;
        const char *prefix;
        Buffer b = {};
        char *save = NULL;

        if (isempty(path) || strlen(path) >= SANDBOX_PATH_MAX)
                return -EINVAL;
        if (path[0] == '/') {
                if ((rest = startswith(path, "/sandbox")) && (*rest == 0 || *rest == '/'))
                        prefix = "/sandbox";
                else if (allow_tmp && (rest = startswith(path, "/tmp")) && (*rest == 0 || *rest == '/'))
                        prefix = "/tmp";
                else
                        return -EINVAL;
        } else {
                prefix = "/sandbox";
                rest = path;
        }
        copy = strdup(rest);
        if (!copy || buffer_append(&b, prefix, strlen(prefix)) < 0) {
                buffer_done(&b);
                return -ENOMEM;
        }
        for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
                if (streq(t, "."))
                        continue;
                if (streq(t, "..")) {
                        buffer_done(&b);
                        return -EINVAL;
                }
                for (const char *c = t; *c; c++)
                        if ((unsigned char) *c < 0x20) {
                                buffer_done(&b);
                                return -EINVAL;
                        }
                if (buffer_append(&b, "/", 1) < 0 || buffer_append(&b, t, strlen(t)) < 0) {
                        buffer_done(&b);
                        return -ENOMEM;
                }
        }
        *ret = buffer_steal_string(&b);
        return *ret ? 0 : -ENOMEM;
}

static bool env_name_valid(const char *s) {
        if (isempty(s) || strlen(s) > 256 || !(isalpha((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && *p != '_')
                        return false;
        return true;
}

static int parse_env_object(json_object *o, const char *what, char ***env, char ***values, char **ret_error) {
        json_object_object_foreach(o, key, val) {
                char *kv;
                if (!env_name_valid(key))
                        return errorf(ret_error, "%s: invalid variable name \"%.64s\"", what, key);
                if (!json_object_is_type(val, json_type_string) ||
                    strlen(json_object_get_string(val)) != (size_t) json_object_get_string_len(val))
                        return errorf(ret_error, "%s.%s must be a string", what, key);
                if (asprintf(&kv, "%s=%s", key, json_object_get_string(val)) < 0 || strv_push(env, kv) < 0)
                        return -ENOMEM;
                if (values && json_object_get_string_len(val) > 0 && strv_push(values, strdup(json_object_get_string(val))) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Optional typed field; a wrong type is a 400 naming the field. */
#define GET_OPT(getter, obj, key, dst, what)                                                 \
        ({                                                                                   \
                int _k = getter(obj, key, dst);                                              \
                if (_k == -EINVAL)                                                           \
                        return errorf(ret_error, "%s.%s has the wrong type", what, key);     \
                _k >= 0;                                                                     \
        })

static int parse_size_field(json_object *o, const char *key, uint64_t *dst, uint64_t max, char **ret_error) {
        json_object *v;
        uint64_t n;

        if (!json_object_object_get_ex(o, key, &v) || !v)
                return 0;
        if (json_object_is_type(v, json_type_string)) {
                if (parse_size(json_object_get_string(v), &n) < 0)
                        return errorf(ret_error, "Invalid %s: \"%.64s\" (expected e.g. \"512m\")", key, json_object_get_string(v));
        } else if (json_get_u64(o, key, &n) < 0)
                return errorf(ret_error, "Invalid %s: expected a size such as \"512m\"", key);
        if (n == 0)
                return errorf(ret_error, "Invalid %s: must be greater than zero", key);
        if (n > max)
                return errorf(ret_error, "options.%s exceeds the server maximum of %" PRIu64 " bytes", key, max);
        *dst = n;
        return 0;
}

static int parse_options(json_object *opt, const SpecPolicy *p, ExecRequest *req, char **ret_error) {
        ExecLimits *l = &req->limits;
        const ExecMaximums *m = p->maximums;
        json_object *o;
        const char *s;
        uint64_t u;
        double d;
        bool b;
        int r;

        if (!opt)
                return 0;
        if (GET_OPT(json_get_string, opt, "network", &s, "options")) {
                if (streq(s, "none"))
                        l->network = NETWORK_NONE;
                else if (streq(s, "host") || streq(s, "filtered")) {
                        bool allowed = false;
                        for (char *const *n = p->allowed_networks; n && *n; n++)
                                if (streq(*n, s))
                                        allowed = true;
                        if (!allowed)
                                return errorf(ret_error, "options.network \"%s\" is not allowed by this server", s);
                        if (streq(s, "filtered"))
                                return errorf(ret_error, "options.network \"filtered\" is not supported by this server yet");
                        l->network = NETWORK_HOST;
                } else
                        return errorf(ret_error, "Invalid options.network: \"%.32s\" (expected none, host or filtered)", s);
        }
        if (GET_OPT(json_get_double, opt, "cpuLimit", &d, "options")) {
                if (d <= 0)
                        return errorf(ret_error, "options.cpuLimit must be greater than zero");
                if (d > m->cpu)
                        return errorf(ret_error, "options.cpuLimit exceeds the server maximum of %g", m->cpu);
                l->cpu = d;
        }
        r = parse_size_field(opt, "memoryLimit", &l->memory_bytes, m->memory_bytes, ret_error);
        if (r < 0)
                return r;
        if (GET_OPT(json_get_u64, opt, "pidsLimit", &u, "options")) {
                if (u < 1 || u > m->pids)
                        return errorf(ret_error, "options.pidsLimit must be between 1 and %" PRIu64, m->pids);
                l->pids = u;
        }
        if (GET_OPT(json_get_bool, opt, "readonlyRootFs", &b, "options")) {
                if (!b && p->defaults->readonly_rootfs)
                        return errorf(ret_error, "options.readonlyRootFs cannot be turned off on this server");
                l->readonly_rootfs = b;
        }
        if (GET_OPT(json_get_u64, opt, "maxOutputSize", &u, "options")) {
                if (u < 1 || u > m->max_output)
                        return errorf(ret_error, "options.maxOutputSize must be between 1 and %" PRIu64, m->max_output);
                l->max_output = u;
        }
        if (GET_OPT(json_get_u64, opt, "timeoutMs", &u, "options")) {
                if (u < 1 || u > m->timeout_ms)
                        return errorf(ret_error, "options.timeoutMs must be between 1 and %" PRIu64, m->timeout_ms);
                l->timeout_ms = u;
        }
        r = parse_size_field(opt, "sandboxSize", &l->sandbox_bytes, m->sandbox_bytes, ret_error);
        if (r < 0)
                return r;
        r = parse_size_field(opt, "tmpSize", &l->tmp_bytes, m->tmp_bytes, ret_error);
        if (r < 0)
                return r;
        if (GET_OPT(json_get_object, opt, "secrets", &o, "options")) {
                size_t n = 0, total = 0;
                if (json_object_object_length(o) > SECRETS_MAX)
                        return errorf(ret_error, "options.secrets: too many secrets (at most %d)", SECRETS_MAX);
                r = parse_env_object(o, "options.secrets", &req->env, &req->secrets, ret_error);
                if (r < 0)
                        return r;
                for (char **v = req->secrets; v && *v; v++, n++) {
                        size_t sl = strlen(*v);
                        if (sl > SECRET_BYTES_MAX)
                                return errorf(ret_error, "options.secrets: a secret is longer than %d bytes", SECRET_BYTES_MAX);
                        total += sl;
                }
                if (total > SECRETS_TOTAL_BYTES_MAX)
                        return errorf(ret_error, "options.secrets: %zu bytes of secrets in all (at most %d)", total,
                                      SECRETS_TOTAL_BYTES_MAX);
                r = secret_mask_new(req->secrets, &req->secret_mask);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_object, opt, "security", &o, "options")) {
                if (GET_OPT(json_get_string, o, "seccomp", &s, "options.security")) {
                        if (!streq(s, "strict") && !streq(s, "unconfined"))
                                return errorf(ret_error, "Invalid options.security.seccomp: \"%.32s\"", s);
                        if (streq(s, "unconfined") && l->seccomp && !p->allow_seccomp_change)
                                return errorf(ret_error, "options.security.seccomp cannot be loosened on this server");
                        l->seccomp = streq(s, "strict");
                }
        }
        if (GET_OPT(json_get_object, opt, "networkFilter", &o, "options")) {
                /* Only meaningful with network "filtered", which is refused above. */
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

int exec_request_parse(json_object *envelope, const SpecPolicy *p, ExecRequest **ret, char **ret_error) {
        _cleanup_(exec_request_freep) ExecRequest *req = NULL;
        json_object *rq, *opt = NULL, *o;
        const char *s, *runtime = NULL;
        uint64_t u;
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

        req = calloc(1, sizeof(ExecRequest));
        if (!req)
                return -ENOMEM;
        req->limits = (ExecLimits) {
                .timeout_ms = p->defaults->timeout_ms,
                .memory_bytes = p->defaults->memory_bytes,
                .cpu = p->defaults->cpu,
                .pids = p->defaults->pids,
                .max_output = p->defaults->max_output,
                .sandbox_bytes = p->defaults->sandbox_bytes,
                .tmp_bytes = p->defaults->tmp_bytes,
                .readonly_rootfs = p->defaults->readonly_rootfs,
                .network = streq_ptr(p->defaults->network, "host") ? NETWORK_HOST : NETWORK_NONE,
                .seccomp = !streq_ptr(p->defaults->seccomp, "unconfined"),
        };

        if (GET_OPT(json_get_string, envelope, "sessionId", &s, "body")) {
                req->session_id = strdup(s);
                if (!req->session_id)
                        return -ENOMEM;
        }

        /* Secrets first, so request.env (added after) is what a program sees on a clash. */
        r = parse_options(opt, p, req, ret_error);
        if (r < 0)
                return r;

        if (GET_OPT(json_get_string, rq, "code", &s, "request") && *s)
                req->code = strdup(s);
        if (GET_OPT(json_get_string, rq, "cmd", &s, "request") && *s)
                req->cmd = strdup(s);
        if (GET_OPT(json_get_string, rq, "codeUrl", &s, "request") && *s)
                return errorf(ret_error, "request.codeUrl is not supported by this server yet");
        if (!!req->code == !!req->cmd)
                return errorf(ret_error, "Exactly one of request.code or request.cmd must be given");

        if (GET_OPT(json_get_string, rq, "runtime", &s, "request"))
                runtime = s;
        if (!runtime && req->cmd)
                runtime = "bash";
        if (!runtime)
                return errorf(ret_error, "request.runtime is required");
        r = runtime_from_string(runtime);
        if (r < 0 || !p->runtimes->path[r]) {
                _cleanup_free_ char *avail = runtimes_available_list(p->runtimes);
                return errorf(ret_error, "Unknown runtime: \"%.64s\". Available: %s", runtime, avail ?: "");
        }
        req->runtime = (RuntimeId) r;
        if (req->cmd && !p->runtimes->path[RUNTIME_BASH])
                return errorf(ret_error, "request.cmd needs bash, which this server does not have");

        if (GET_OPT(json_get_u64, rq, "timeoutMs", &u, "request")) {
                if (u < 1 || u > p->maximums->timeout_ms)
                        return errorf(ret_error, "request.timeoutMs must be between 1 and %" PRIu64, p->maximums->timeout_ms);
                req->limits.timeout_ms = u;
        }
        if (GET_OPT(json_get_object, rq, "env", &o, "request")) {
                r = parse_env_object(o, "request.env", &req->env, NULL, ret_error);
                if (r < 0)
                        return r;
        }
        if (GET_OPT(json_get_string, rq, "fileExtension", &s, "request")) {
                const char *e = s[0] == '.' ? s + 1 : s;
                if (isempty(e) || strlen(e) > 16)
                        return errorf(ret_error, "Invalid request.fileExtension");
                for (const char *c = e; *c; c++)
                        if (!isalnum((unsigned char) *c))
                                return errorf(ret_error, "Invalid request.fileExtension");
                if (asprintf(&req->extension, ".%s", e) < 0)
                        return -ENOMEM;
        } else if (!(req->extension = strdup(runtime_info(req->runtime)->extension)))
                return -ENOMEM;
        if (GET_OPT(json_get_string, rq, "stdin", &s, "request")) {
                json_object *v;
                json_object_object_get_ex(rq, "stdin", &v);
                req->stdin_size = (size_t) json_object_get_string_len(v);
                req->stdin_data = malloc(req->stdin_size + 1);
                if (!req->stdin_data)
                        return -ENOMEM;
                memcpy(req->stdin_data, s, req->stdin_size + 1);
        }
        if (GET_OPT(json_get_object, rq, "files", &o, "request")) {
                size_t n = (size_t) json_object_object_length(o);
                if (n > 1000)
                        return errorf(ret_error, "request.files: too many files (at most 1000)");
                req->files = calloc(n ? n : 1, sizeof(ExecFile));
                if (!req->files)
                        return -ENOMEM;
                json_object_object_foreach(o, key, val) {
                        ExecFile *f = &req->files[req->n_files];
                        if (sandbox_path_normalize(key, true, &f->path) < 0)
                                return errorf(ret_error, "Invalid path in request.files: \"%.128s\"", key);
                        r = file_content_parse(val, &f->content, &f->size);
                        if (r < 0)
                                f->path = (free(f->path), NULL);
                        if (r == -EINVAL)
                                return errorf(ret_error, "request.files[\"%.64s\"] must be a string or a Buffer "
                                              "({\"type\":\"Buffer\",\"data\":[bytes]})", key);
                        if (r < 0)
                                return r;
                        req->n_files++;
                }
        }
        if (GET_OPT(json_get_array, rq, "outputPaths", &o, "request")) {
                size_t n = json_object_array_length(o);
                if (n > 100)
                        return errorf(ret_error, "request.outputPaths: too many paths (at most 100)");
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(o, i);
                        char *norm;
                        if (!json_object_is_type(e, json_type_string) ||
                            strlen(json_object_get_string(e)) != (size_t) json_object_get_string_len(e) ||
                            sandbox_path_normalize(json_object_get_string(e), true, &norm) < 0)
                                return errorf(ret_error, "Invalid path in request.outputPaths at index %zu", i);
                        if (strv_push(&req->output_paths, norm) < 0)
                                return -ENOMEM;
                }
        }
        if (GET_OPT(json_get_string, rq, "setupScript", &s, "request") && *s)
                req->setup_script = strdup(s);
        if (GET_OPT(json_get_string, rq, "workdir", &s, "request") && *s) {
                if (sandbox_path_normalize(s, false, &req->workdir) < 0)
                        return errorf(ret_error, "request.workdir must resolve inside /sandbox");
        } else
                req->workdir = strdup("/sandbox");
        if (GET_OPT(json_get_object, rq, "metadata", &o, "request")) {
                json_object_object_foreach(o, key, val)
                        if (!json_object_is_type(val, json_type_string))
                                return errorf(ret_error, "request.metadata.%.64s must be a string", key);
                req->metadata = json_object_get(o);
        }
        if (GET_OPT(json_get_array, rq, "installPackages", &o, "request") && json_object_array_length(o) > 0)
                return errorf(ret_error, "request.installPackages is not supported by this server yet");

        if (!req->workdir || !req->extension || (rq && json_object_object_length(rq) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(req);
        return 0;
}
