/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/render.h"
#include "api/request.h"
#include "shared/json-util.h"
#include "tap.h"

static Limits defaults = {
        .timeout_ms = 30000, .memory_bytes = 512ull << 20, .cpu = 1.0, .pids = 64, .max_output = 1048576,
        .sandbox_bytes = 512ull << 20, .tmp_bytes = 256ull << 20, .readonly_rootfs = true,
        .network = NETWORK_NONE, .seccomp = true,
};
static Limits maximums = {
        .timeout_ms = 300000, .memory_bytes = 4ull << 30, .cpu = 4, .pids = 1024, .max_output = 16777216,
        .sandbox_bytes = 2ull << 30, .tmp_bytes = 1ull << 30, .body_bytes = 10485760,
};
static char *allowed[] = { (char *) "none", NULL };
static Runtimes rt = { .path = { [RUNTIME_PYTHON] = (char *) "/usr/bin/python3", [RUNTIME_BASH] = (char *) "/usr/bin/bash" } };
static SpecPolicy policy = { &defaults, &maximums, allowed, false, &rt };

static int parse(const char *body, ExecRequest **req, char **err) {
        json_object *o = NULL;
        int r;
        *err = NULL;
        *req = NULL;
        if (json_parse_limited(body, strlen(body), 32, &o) < 0)
                return -999;
        r = api_request_parse(o, &policy, req, err);
        json_object_put(o);
        return r;
}

static bool bad(const char *body, const char *msg) {
        ExecRequest *req;
        char *err;
        int r = parse(body, &req, &err);
        bool ok = r == -EINVAL && err && strstr(err, msg);
        if (!ok)
                printf("# %s -> %d %s\n", body, r, err ? err : "(no message)");
        free(err);
        exec_request_free(req);
        return ok;
}

int main(void) {
        ExecRequest *req;
        char *err;

        CHECK(parse("{\"request\":{\"code\":\"print(1)\",\"runtime\":\"python\"}}", &req, &err) == 0);
        CHECK(req && req->runtime == RUNTIME_PYTHON && strcmp(req->extension, ".py") == 0);
        CHECK(req && req->limits.timeout_ms == 30000 && req->limits.memory_bytes == 512ull << 20 && req->limits.seccomp);
        CHECK(req && strcmp(req->workdir, "/sandbox") == 0);
        exec_request_free(req);

        CHECK(parse("{\"request\":{\"cmd\":\"ls\",\"env\":{\"A\":\"1\"},\"files\":{\"x/y\":\"z\"},\"outputPaths\":[\"/tmp/o\"],"
                    "\"fileExtension\":\"cjs\",\"stdin\":\"in\",\"workdir\":\"w\",\"metadata\":{\"userId\":\"u\"}},"
                    "\"options\":{\"memoryLimit\":\"64m\",\"cpuLimit\":0.5,\"pidsLimit\":10,\"timeoutMs\":100,"
                    "\"secrets\":{\"TOKEN\":\"s3\"},\"maxOutputSize\":10}}", &req, &err) == 0);
        CHECK(req && req->runtime == RUNTIME_BASH && req->cmd && !req->code);
        CHECK(req && req->limits.memory_bytes == 64ull << 20 && req->limits.cpu == 0.5 && req->limits.pids == 10);
        CHECK(req && req->limits.timeout_ms == 100 && req->limits.max_output == 10);
        CHECK(req && req->env && strcmp(req->env[0], "TOKEN=s3") == 0 && strcmp(req->env[1], "A=1") == 0);
        CHECK(req && req->secrets && strcmp(req->secrets[0], "s3") == 0);
        CHECK(req && req->n_files == 1 && strcmp(req->files[0].path, "/sandbox/x/y") == 0);
        CHECK(req && strcmp(req->output_paths[0], "/tmp/o") == 0 && strcmp(req->extension, ".cjs") == 0);
        CHECK(req && strcmp(req->workdir, "/sandbox/w") == 0 && req->stdin_size == 2);
        exec_request_free(req);

        CHECK(bad("[]", "JSON object"));
        CHECK(bad("{}", "Missing \"request\""));
        CHECK(bad("{\"request\":5}", "must be an object"));
        CHECK(bad("{\"request\":{}}", "Exactly one of"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"cmd\":\"y\",\"runtime\":\"python\"}}", "Exactly one of"));
        CHECK(bad("{\"request\":{\"code\":\"\",\"runtime\":\"python\"}}", "Exactly one of"));
        CHECK(bad("{\"request\":{\"code\":\"x\"}}", "runtime is required"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"ruby\"}}", "Unknown runtime: \"ruby\". Available: python, bash"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"node\"}}", "Unknown runtime: \"node\""));
        CHECK(bad("{\"request\":{\"code\":5,\"runtime\":\"python\"}}", "request.code has the wrong type"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"timeoutMs\":\"5\"}}", "timeoutMs"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"timeoutMs\":999999999}}", "between 1 and 300000"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\"},\"options\":{\"memoryLimit\":\"lots\"}}", "Invalid memoryLimit"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\"},\"options\":{\"memoryLimit\":\"64g\"}}", "server maximum"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\"},\"options\":{\"cpuLimit\":64}}", "server maximum"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\"},\"options\":{\"network\":\"host\"}}", "not allowed"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\"},\"options\":{\"network\":\"moon\"}}", "Invalid options.network"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\"},\"options\":{\"security\":{\"seccomp\":\"unconfined\"}}}", "cannot be loosened"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\"},\"options\":{\"readonlyRootFs\":false}}", "readonlyRootFs"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"files\":{\"../x\":\"y\"}}}", "Invalid path in request.files"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"files\":{\"/etc/passwd\":\"y\"}}}", "Invalid path"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"outputPaths\":[\"/sandbox/../../etc/shadow\"]}}", "outputPaths"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"outputPaths\":[\"a\\u0000b\"]}}", "outputPaths"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"workdir\":\"/tmp\"}}", "workdir"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"workdir\":\"../..\"}}", "workdir"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"env\":{\"A B\":\"1\"}}}", "invalid variable name"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"env\":{\"A\":1}}}", "must be a string"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"codeUrl\":\"http://x\"}}", "Exactly one of request.code, request.cmd or request.codeUrl"));
        CHECK(bad("{\"request\":{\"runtime\":\"python\",\"codeUrl\":\"https://x\"}}", "Remote code fetching is disabled"));
        CHECK(bad("{\"request\":{\"cmd\":\"x\"},\"options\":{\"networkFilter\":{\"whitelist\":[\"(\"]}}}", "options.networkFilter.whitelist[0]: invalid regular expression"));
        CHECK(bad("{\"request\":{\"cmd\":\"x\"},\"options\":{\"networkFilter\":{\"blacklist\":[1]}}}", "options.networkFilter.blacklist[0] must be a string"));
        CHECK(bad("{\"request\":{\"cmd\":\"x\"},\"options\":{\"logNetwork\":\"yes\"}}", "options.logNetwork has the wrong type"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"bash\",\"installPackages\":[\"curl\"]}}", "system packages come from an image"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"installPackages\":[\"--index-url=x\"]}}", "not a package name"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"installPackages\":[\"git+https://x/y\"]}}", "not a package name"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"installPackages\":[1]}}", "not a package name"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"fileExtension\":\"../x\"}}", "fileExtension"));
        CHECK(bad("{\"request\":{\"code\":\"x\",\"runtime\":\"python\",\"metadata\":{\"a\":1}}}", "metadata"));

        /* The result's resource figures: two decimals as written (the last of them rounded),
         * whatever the double's binary expansion, and printf's way for the huge. */
        {
                ExecResult res = { .exit_code = 0, .cpu_percent = 86.579999999999998, .memory_mb = 0.5,
                                   .peak_memory_mb = 12.344999, .execution_id = "x", .container_id = "y" };
                json_object *o;
                const char *t;

                CHECK(parse("{\"request\":{\"code\":\"x\",\"runtime\":\"python\"}}", &req, &err) == 0);
                o = api_result_json(&res, req);
                t = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "";
                CHECK(strstr(t, "\"cpuPercent\":86.58,") != NULL);
                CHECK(strstr(t, "\"memoryMB\":0.50,") != NULL);
                CHECK(strstr(t, "\"peakMemoryMB\":12.34,") != NULL);
                json_object_put(o);
                res.cpu_percent = 1e16;
                res.memory_mb = 0.004999;
                o = api_result_json(&res, req);
                t = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "";
                CHECK(strstr(t, "\"cpuPercent\":10000000000000000.00,") != NULL);
                CHECK(strstr(t, "\"memoryMB\":0.00,") != NULL);
                json_object_put(o);
                exec_request_free(req);
        }
        return tap_done();
}
