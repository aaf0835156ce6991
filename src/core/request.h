/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "sandbox/runtime.h"
#include "shared/macro.h"
#include "shared/secret-mask.h"

/* What the server allows clients to ask for. */
typedef struct Fetcher Fetcher;

typedef struct SpecPolicy {
        const Limits *defaults;
        const Limits *maximums;
        char *const *allowed_networks;
        bool allow_seccomp_change;
        const Runtimes *runtimes;
        Fetcher *fetcher;          /* NULL: remoteCode.enabled is off */
} SpecPolicy;

typedef struct ExecFile {
        char *path;        /* normalised absolute path inside the sandbox */
        char *content;
        size_t size;
} ExecFile;

#define SANDBOX_PATH_MAX 1024

/* options.secrets: bounded so that masking stays cheap whatever a tenant sends. */
#define SECRETS_MAX 64
#define SECRET_BYTES_MAX 4096
#define SECRETS_TOTAL_BYTES_MAX 65536

/* A validated execution request. */
typedef struct ExecRequest {
        RuntimeId runtime;
        bool runtime_set;
        unsigned n_secrets_given;  /* options.secrets entries, empty ones included */
        char *code;
        char *cmd;
        char **env;            /* KEY=VALUE: secrets, then request.env */
        char **secrets;        /* secret values, masked in output */
        SecretMask *secret_mask;   /* their matcher, NULL without secrets */
        char *extension;       /* ".py", from fileExtension or the runtime */
        char *stdin_data;
        size_t stdin_size;
        ExecFile *files;
        size_t n_files;
        char **output_paths;   /* normalised */
        char *setup_script;
        char *workdir;         /* normalised, "/sandbox" by default */
        char **metadata;       /* request.metadata as KEY=VALUE (strings only), or NULL */
        char *session_id;
        Limits limits;
        char **net_whitelist;  /* options.networkFilter: narrows the server's rules */
        char **net_blacklist;
        bool log_network;      /* options.logNetwork: networkLogs in the result */
        char **packages;       /* request.installPackages, checked (package specs, never options) */
        char *code_url;        /* request.codeUrl: code comes from there before the run */
        char *code_hash;       /* request.codeHash (sha256, hex) */
        bool allow_insecure_code_url;
        char **agent_flags;    /* request.agentFlags, split at white space (runtime agent) */
        char *image;           /* options.image, or the image whose packages matched installPackages */
        char **image_env;      /* what a run on that image needs, KEY=VALUE (set when the run starts) */
        bool image_env_set;
} ExecRequest;

ExecRequest *exec_request_free(ExecRequest *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(ExecRequest *, exec_request_free);

/* Building a request, the same for every transport: a transport turns its wire format into
 * these calls (api/request.c for JSON), and every rule of the server is checked here. Each
 * returns 0, -EINVAL with a message for the client in *ret_error, or another negative errno.
 * The field names in messages (e.g. "options.timeoutMs") are the caller's. */

/* A request with the server's defaults. */
int exec_request_new(const SpecPolicy *policy, ExecRequest **ret);
/* A limit, within the server's maximum. Sizes and numbers alike are passed as u (cpu as d). */
int exec_request_set_limit(ExecRequest *req, const SpecPolicy *policy, LimitField f, uint64_t u, double d, const char *name,
                           char **ret_error);
int exec_request_set_readonly_rootfs(ExecRequest *req, const SpecPolicy *policy, bool b, char **ret_error);
int exec_request_set_network(ExecRequest *req, const SpecPolicy *policy, const char *mode, char **ret_error);
int exec_request_set_seccomp(ExecRequest *req, const SpecPolicy *policy, const char *mode, char **ret_error);
/* options.networkFilter: patterns checked here (POSIX extended regexes); they only narrow the
 * server's network.whitelist/blacklist (a host must pass both). Takes the lists. */
int exec_request_set_network_filter(ExecRequest *req, char **whitelist, char **blacklist, char **ret_error);
int exec_request_set_runtime(ExecRequest *req, const SpecPolicy *policy, const char *runtime, char **ret_error);
int exec_request_set_extension(ExecRequest *req, const char *ext, char **ret_error);
/* An environment variable (name checked); with secret, its value is masked in the output. */
int exec_request_add_env(ExecRequest *req, const char *name, const char *value, bool secret, const char *what,
                         char **ret_error);
/* A file for request.files (path normalised; content taken). */
int exec_request_add_file(ExecRequest *req, const char *path, char *content, size_t size, char **ret_error);
int exec_request_add_output_path(ExecRequest *req, const char *path, size_t index, char **ret_error);
int exec_request_set_workdir(ExecRequest *req, const char *path, char **ret_error);
int exec_request_add_metadata(ExecRequest *req, const char *key, const char *value);
const char *exec_request_metadata(const ExecRequest *req, const char *key);
/* request.codeUrl with its hash and allowInsecureCodeUrl: refused here when the server does
 * not fetch, or when the scheme, the host or the hash's form is not allowed. */
int exec_request_set_code_url(ExecRequest *req, const SpecPolicy *policy, const char *url, const char *hash,
                              bool allow_insecure, char **ret_error);
/* One entry of request.installPackages: 1..200 bytes of letters, digits and ._~@/^<>=!+:-,
 * not starting with '-', '.', '/' or '~' and without "://" (never an installer option, a URL or
 * a local path); at most REQUEST_PACKAGES_MAX. */
int exec_request_add_package(ExecRequest *req, const char *spec, size_t index, char **ret_error);
/* request.agentFlags: flags for pi, one at a time or a string split at white space (at most 64,
 * 4 KiB together). */
int exec_request_add_agent_flag(ExecRequest *req, const char *flag, char **ret_error);
int exec_request_set_agent_flags(ExecRequest *req, const char *flags, char **ret_error);
#define AGENT_PROMPT_MAX (100 * 1024)
/* options.image: a name of the form images have (whether it exists is the run's to find). */
int exec_request_set_image(ExecRequest *req, const char *name, char **ret_error);
#define REQUEST_PACKAGES_MAX 50

/* Exactly one of code and cmd (or codeUrl), and a runtime this server has (bash for a cmd without one):
 * what every later rule of a request depends on, so a parser may check it first. */
int exec_request_check_program(ExecRequest *req, const SpecPolicy *policy, char **ret_error);
/* The checks that need the whole request (the program's, then the secrets' bounds); builds the
 * secret mask and fills what was left to its default. */
int exec_request_finish(ExecRequest *req, const SpecPolicy *policy, char **ret_error);

#define REQUEST_FILES_MAX 1000
#define REQUEST_OUTPUT_PATHS_MAX 100

/* Resolves a client-given path to a normalised absolute path under /sandbox or /tmp:
 * relative paths are under /sandbox; ".." and NUL are refused. -EINVAL when refused. */
int sandbox_path_normalize(const char *path, bool allow_tmp, char **ret);
