/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/egress.h"
#include "core/fetch.h"
#include "core/request.h"
#include "shared/size.h"
#include "shared/util.h"

ExecRequest *exec_request_free(ExecRequest *r) {
        if (!r)
                return NULL;
        free(r->code);
        free(r->cmd);
        free(r->image);
        strv_free(r->image_env);
        strv_free(r->agent_flags);
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
        strv_free(r->metadata);
        free(r->session_id);
        strv_free(r->net_whitelist);
        strv_free(r->net_blacklist);
        free(r->code_url);
        free(r->code_hash);
        strv_free(r->packages);
        free(r);
        return NULL;
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

static const char *const network_names[] = {
        [NETWORK_NONE] = "none",
        [NETWORK_HOST] = "host",
        [NETWORK_FILTERED] = "filtered",
};

const char *network_mode_to_string(NetworkMode m) {
        return (unsigned) m < ELEMENTSOF(network_names) ? network_names[m] : NULL;
}

int network_mode_from_string(const char *s) {
        for (size_t i = 0; s && i < ELEMENTSOF(network_names); i++)
                if (streq(s, network_names[i]))
                        return (int) i;
        return -EINVAL;
}

int exec_request_new(const SpecPolicy *p, ExecRequest **ret) {
        ExecRequest *req = calloc(1, sizeof(ExecRequest));
        if (!req)
                return -ENOMEM;
        req->limits = *p->defaults;
        req->limits.body_bytes = 0;
        *ret = req;
        return 0;
}

int exec_request_set_limit(ExecRequest *req, const SpecPolicy *p, LimitField f, uint64_t u, double d, const char *name,
                           char **ret_error) {
        const Limits *m = p->maximums;
        Limits *l = &req->limits;

        switch (f) {
        case LIMIT_CPU:
                if (d <= 0)
                        return errorf(ret_error, "%s must be greater than zero", name);
                if (d > m->cpu)
                        return errorf(ret_error, "%s exceeds the server maximum of %g", name, m->cpu);
                l->cpu = d;
                return 0;
        case LIMIT_MEMORY:
        case LIMIT_SANDBOX_SIZE:
        case LIMIT_TMP_SIZE: {
                uint64_t max = f == LIMIT_MEMORY ? m->memory_bytes : f == LIMIT_SANDBOX_SIZE ? m->sandbox_bytes : m->tmp_bytes;
                if (u == 0)
                        return errorf(ret_error, "Invalid %s: must be greater than zero", name);
                if (u > max)
                        return errorf(ret_error, "%s exceeds the server maximum of %" PRIu64 " bytes", name, max);
                *(f == LIMIT_MEMORY ? &l->memory_bytes : f == LIMIT_SANDBOX_SIZE ? &l->sandbox_bytes : &l->tmp_bytes) = u;
                return 0;
        }
        case LIMIT_TIMEOUT:
        case LIMIT_PIDS:
        case LIMIT_MAX_OUTPUT: {
                uint64_t max = f == LIMIT_TIMEOUT ? m->timeout_ms : f == LIMIT_PIDS ? m->pids : m->max_output;
                if (u < 1 || u > max)
                        return errorf(ret_error, "%s must be between 1 and %" PRIu64, name, max);
                *(f == LIMIT_TIMEOUT ? &l->timeout_ms : f == LIMIT_PIDS ? &l->pids : &l->max_output) = u;
                return 0;
        }
        default:
                return -EINVAL;
        }
}

int exec_request_set_readonly_rootfs(ExecRequest *req, const SpecPolicy *p, bool b, char **ret_error) {
        if (!b && p->defaults->readonly_rootfs)
                return errorf(ret_error, "options.readonlyRootFs cannot be turned off on this server");
        req->limits.readonly_rootfs = b;
        return 0;
}

int exec_request_set_network(ExecRequest *req, const SpecPolicy *p, const char *s, char **ret_error) {
        int n = network_mode_from_string(s);

        if (n < 0)
                return errorf(ret_error, "Invalid options.network: \"%.32s\" (expected none, host or filtered)", s);
        if (n == NETWORK_NONE) {
                req->limits.network = NETWORK_NONE;
                return 0;
        }
        if (!strv_contains(p->allowed_networks, s))
                return errorf(ret_error, "options.network \"%s\" is not allowed by this server", s);
        req->limits.network = (NetworkMode) n;
        return 0;
}

int exec_request_set_network_filter(ExecRequest *req, char **whitelist, char **blacklist, char **ret_error) {
        _cleanup_strv_free_ char **w = whitelist, **b = blacklist;
        RegexList l;
        int r;

        r = regex_list_compile(w, "options.networkFilter.whitelist", &l, ret_error);
        if (r < 0)
                return r;
        regex_list_done(&l);
        r = regex_list_compile(b, "options.networkFilter.blacklist", &l, ret_error);
        if (r < 0)
                return r;
        regex_list_done(&l);
        strv_free(req->net_whitelist);
        strv_free(req->net_blacklist);
        req->net_whitelist = TAKE_PTR(w);
        req->net_blacklist = TAKE_PTR(b);
        return 0;
}

int exec_request_set_seccomp(ExecRequest *req, const SpecPolicy *p, const char *s, char **ret_error) {
        if (!streq(s, "strict") && !streq(s, "unconfined"))
                return errorf(ret_error, "Invalid options.security.seccomp: \"%.32s\"", s);
        if (streq(s, "unconfined") && req->limits.seccomp && !p->allow_seccomp_change)
                return errorf(ret_error, "options.security.seccomp cannot be loosened on this server");
        req->limits.seccomp = streq(s, "strict");
        return 0;
}

int exec_request_set_runtime(ExecRequest *req, const SpecPolicy *p, const char *runtime, char **ret_error) {
        int r = runtime_from_string(runtime);

        if (r < 0 || !p->runtimes->path[r]) {
                _cleanup_free_ char *avail = runtimes_available_list(p->runtimes);
                return errorf(ret_error, "Unknown runtime: \"%.64s\". Available: %s", runtime, avail ?: "");
        }
        req->runtime = (RuntimeId) r;
        req->runtime_set = true;
        return 0;
}

int exec_request_set_extension(ExecRequest *req, const char *s, char **ret_error) {
        const char *e = s[0] == '.' ? s + 1 : s;

        if (isempty(e) || strlen(e) > 16)
                return errorf(ret_error, "Invalid request.fileExtension");
        for (const char *c = e; *c; c++)
                if (!isalnum((unsigned char) *c))
                        return errorf(ret_error, "Invalid request.fileExtension");
        free(req->extension);
        if (asprintf(&req->extension, ".%s", e) < 0) {
                req->extension = NULL;
                return -ENOMEM;
        }
        return 0;
}

int exec_request_add_env(ExecRequest *req, const char *name, const char *value, bool secret, const char *what,
                         char **ret_error) {
        char *kv;

        if (!env_name_valid(name))
                return errorf(ret_error, "%s: invalid variable name \"%.64s\"", what, name);
        if (asprintf(&kv, "%s=%s", name, value) < 0 || strv_push(&req->env, kv) < 0)
                return -ENOMEM;
        if (secret)
                req->n_secrets_given++;
        if (secret && *value && strv_push(&req->secrets, strdup(value)) < 0)
                return -ENOMEM;
        return 0;
}

int exec_request_add_file(ExecRequest *req, const char *path, char *content, size_t size, char **ret_error) {
        _cleanup_free_ char *c = content;
        ExecFile *files;

        if (req->n_files >= REQUEST_FILES_MAX)
                return errorf(ret_error, "request.files: too many files (at most %d)", REQUEST_FILES_MAX);
        files = reallocarray(req->files, req->n_files + 1, sizeof(ExecFile));
        if (!files)
                return -ENOMEM;
        req->files = files;
        if (sandbox_path_normalize(path, true, &files[req->n_files].path) < 0)
                return errorf(ret_error, "Invalid path in request.files: \"%.128s\"", path);
        files[req->n_files].content = TAKE_PTR(c);
        files[req->n_files].size = size;
        req->n_files++;
        return 0;
}

int exec_request_add_output_path(ExecRequest *req, const char *path, size_t index, char **ret_error) {
        char *norm;

        if (index >= REQUEST_OUTPUT_PATHS_MAX)
                return errorf(ret_error, "request.outputPaths: too many paths (at most %d)", REQUEST_OUTPUT_PATHS_MAX);
        if (!path || sandbox_path_normalize(path, true, &norm) < 0)
                return errorf(ret_error, "Invalid path in request.outputPaths at index %zu", index);
        return strv_push(&req->output_paths, norm);
}

int exec_request_set_workdir(ExecRequest *req, const char *path, char **ret_error) {
        free(req->workdir);
        req->workdir = NULL;
        if (sandbox_path_normalize(path, false, &req->workdir) < 0)
                return errorf(ret_error, "request.workdir must resolve inside /sandbox");
        return 0;
}

int exec_request_add_metadata(ExecRequest *req, const char *key, const char *value) {
        char *kv;
        if (asprintf(&kv, "%s=%s", key, value) < 0)
                return -ENOMEM;
        return strv_push(&req->metadata, kv);
}

const char *exec_request_metadata(const ExecRequest *req, const char *key) {
        size_t n = strlen(key);
        for (char **kv = req->metadata; kv && *kv; kv++)
                if (strncmp(*kv, key, n) == 0 && (*kv)[n] == '=')
                        return *kv + n + 1;
        return NULL;
}

int exec_request_set_code_url(ExecRequest *req, const SpecPolicy *p, const char *url, const char *hash,
                              bool allow_insecure, char **ret_error) {
        int r;

        if (!p->fetcher)
                return errorf(ret_error, "Remote code fetching is disabled. Set remoteCode.enabled to true in the server config.");
        r = fetcher_check_url(p->fetcher, url, hash, allow_insecure, ret_error);
        if (r < 0)
                return r;
        free(req->code_url);
        free(req->code_hash);
        req->code_url = strdup(url);
        req->code_hash = hash ? strdup(hash) : NULL;
        if (!req->code_url || (hash && !req->code_hash))
                return -ENOMEM;
        req->allow_insecure_code_url = allow_insecure;
        return 0;
}

int exec_request_add_package(ExecRequest *req, const char *spec, size_t index, char **ret_error) {
        size_t n = spec ? strlen(spec) : 0;

        if (index >= REQUEST_PACKAGES_MAX || strv_length(req->packages) >= REQUEST_PACKAGES_MAX)
                return errorf(ret_error, "request.installPackages: too many packages (at most %d)", REQUEST_PACKAGES_MAX);
        /* Names and versions from the index: no options, no URLs, no local paths. */
        if (n == 0 || n > 200 || strchr("-./~", spec[0]) || strstr(spec, "://"))
                return errorf(ret_error, "request.installPackages[%zu]: not a package name: \"%.64s\"", index, spec ?: "");
        for (const char *c = spec; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("._~@/^<>=!+:-", *c))
                        return errorf(ret_error, "request.installPackages[%zu]: not a package name: \"%.64s\"", index, spec);
        return strv_push(&req->packages, strdup(spec)) < 0 ? -ENOMEM : 0;
}

int exec_request_add_agent_flag(ExecRequest *req, const char *flag, char **ret_error) {
        size_t total = strlen(flag);

        for (char **f = req->agent_flags; f && *f; f++)
                total += strlen(*f) + 1;
        if (total > 4096)
                return errorf(ret_error, "request.agentFlags: longer than 4096 bytes");
        if (strv_length(req->agent_flags) >= 64)
                return errorf(ret_error, "request.agentFlags: more than 64 flags");
        return strv_push(&req->agent_flags, strdup(flag)) < 0 ? -ENOMEM : 0;
}

int exec_request_set_agent_flags(ExecRequest *req, const char *flags, char **ret_error) {
        _cleanup_free_ char *copy = strdup(flags);

        if (!copy)
                return -ENOMEM;
        for (char *save = NULL, *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
                int r = exec_request_add_agent_flag(req, t, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int exec_request_set_image(ExecRequest *req, const char *name, char **ret_error) {
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n || strchr("._-", name[0]))
                return errorf(ret_error, "options.image: not an image name: \"%.64s\"", name ?: "");
        free(req->image);
        req->image = strdup(name);
        return req->image ? 0 : -ENOMEM;
}

int exec_request_check_program(ExecRequest *req, const SpecPolicy *p, char **ret_error) {
        if ((!!req->code + !!req->cmd + !!req->code_url) != 1)
                return errorf(ret_error, req->code_url ? "Exactly one of request.code, request.cmd or request.codeUrl must be given"
                                                       : "Exactly one of request.code or request.cmd must be given");
        if (req->code_url && !req->runtime_set)
                return errorf(ret_error, "request.runtime is required");
        if (!req->runtime_set) {
                if (!req->cmd)
                        return errorf(ret_error, "request.runtime is required");
                if (exec_request_set_runtime(req, p, "bash", ret_error) < 0)
                        return -EINVAL;
        }
        if (req->cmd && !p->runtimes->path[RUNTIME_BASH])
                return errorf(ret_error, "request.cmd needs bash, which this server does not have");
        return 0;
}

int exec_request_finish(ExecRequest *req, const SpecPolicy *p, char **ret_error) {
        size_t n = 0, total = 0;
        int r;

        r = exec_request_check_program(req, p, ret_error);
        if (r < 0)
                return r;
        if (req->packages && req->runtime == RUNTIME_BASH)
                return errorf(ret_error, "request.installPackages is not supported for bash: system packages come from an image");
        if (req->agent_flags && req->runtime != RUNTIME_AGENT)
                return errorf(ret_error, "request.agentFlags is only for runtime agent");
        if (req->runtime == RUNTIME_AGENT) {
                if (!req->code)
                        return errorf(ret_error, "runtime agent takes its prompt in request.code");
                if (strlen(req->code) > AGENT_PROMPT_MAX)
                        return errorf(ret_error, "request.code: the agent's prompt is longer than %d bytes", AGENT_PROMPT_MAX);
                if (req->packages)
                        return errorf(ret_error, "request.installPackages is not supported for agent: pi comes from its image");
                /* The agent talks to its model's API: through the proxy, unless the run has the host's network. */
                if (req->limits.network == NETWORK_NONE) {
                        if (!strv_contains(p->allowed_networks, "filtered"))
                                return errorf(ret_error, "runtime agent needs network \"filtered\" (security.allowedNetworks)");
                        req->limits.network = NETWORK_FILTERED;
                }
        }
        for (char **v = req->secrets; v && *v; v++, n++) {
                size_t sl = strlen(*v);
                if (sl > SECRET_BYTES_MAX)
                        return errorf(ret_error, "options.secrets: a secret is longer than %d bytes", SECRET_BYTES_MAX);
                total += sl;
        }
        if (n > SECRETS_MAX || req->n_secrets_given > SECRETS_MAX)
                return errorf(ret_error, "options.secrets: too many secrets (at most %d)", SECRETS_MAX);
        if (total > SECRETS_TOTAL_BYTES_MAX)
                return errorf(ret_error, "options.secrets: %zu bytes of secrets in all (at most %d)", total, SECRETS_TOTAL_BYTES_MAX);
        if (req->secrets && !req->secret_mask) {
                r = secret_mask_new(req->secrets, &req->secret_mask);
                if (r < 0)
                        return r;
        }
        if (!req->extension && !(req->extension = strdup(runtime_info(req->runtime)->extension)))
                return -ENOMEM;
        if (!req->workdir && !(req->workdir = strdup("/sandbox")))
                return -ENOMEM;
        return 0;
}
