/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "sandbox/runtime.h"
#include "shared/macro.h"
#include "shared/secret-mask.h"

typedef enum NetworkMode {
        NETWORK_NONE,
        NETWORK_HOST,
} NetworkMode;

/* What the server allows clients to ask for. */
typedef struct SpecPolicy {
        const ExecDefaults *defaults;
        const ExecMaximums *maximums;
        char *const *allowed_networks;
        bool allow_seccomp_change;
        const Runtimes *runtimes;
} SpecPolicy;

typedef struct ExecLimits {
        uint64_t timeout_ms;
        uint64_t memory_bytes;
        double cpu;
        uint64_t pids;
        uint64_t max_output;
        uint64_t sandbox_bytes;
        uint64_t tmp_bytes;
        bool readonly_rootfs;
        NetworkMode network;
        bool seccomp;
} ExecLimits;

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
        json_object *metadata; /* object of strings, or NULL */
        char *session_id;
        ExecLimits limits;
} ExecRequest;

ExecRequest *exec_request_free(ExecRequest *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(ExecRequest *, exec_request_free);

/* Parses the envelope {"request":{...},"options":{...},"sessionId":...}. On a client error
 * returns -EINVAL with a message for the 400 in *ret_error. */
int exec_request_parse(json_object *envelope, const SpecPolicy *policy, ExecRequest **ret, char **ret_error);

/* Resolves a client-given path to a normalised absolute path under /sandbox or /tmp:
 * relative paths are under /sandbox; ".." and NUL are refused. -EINVAL when refused. */
int sandbox_path_normalize(const char *path, bool allow_tmp, char **ret);
