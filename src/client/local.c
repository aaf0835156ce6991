/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/local.h"
#include "daemon/config.h"
#include "sandbox/pool.h"
#include "sandbox/run.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/stream-filter.h"

typedef struct Local {
        sd_event *event;
        FILE *out;
        StreamFilter filter[3];
        int stdin_fd;
        sd_event_source *stdin_source;
        Execution *exec;
} Local;

static void on_output(Execution *e, ExecStream stream, ExecPhase phase, const char *data, size_t len, void *userdata) {
        Local *l = userdata;
        Buffer b = {};
        if (stream_filter_feed(&l->filter[stream], data, len, false, &b) >= 0 && b.size > 0) {
                fwrite(b.data, 1, b.size, stream == EXEC_STDOUT ? l->out : stderr);
                fflush(stream == EXEC_STDOUT ? l->out : stderr);
        }
        buffer_done(&b);
}

static void on_done(Execution *e, void *userdata) {
        Local *l = userdata;
        for (int i = 1; i <= 2; i++) {
                Buffer b = {};
                if (stream_filter_feed(&l->filter[i], NULL, 0, true, &b) >= 0 && b.size > 0)
                        fwrite(b.data, 1, b.size, i == EXEC_STDOUT ? l->out : stderr);
                buffer_done(&b);
        }
        sd_event_exit(l->event, 0);
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Local *l = userdata;
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0)
                (void) execution_write_stdin(l->exec, buf, (size_t) n);
        else {
                (void) execution_write_stdin(l->exec, NULL, 0);
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        return 0;
}

int local_run(const char *envelope, FILE *out, int stdin_fd, int *ret_exit_code) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *error = NULL;
        Config config;
        Runtimes rt = {};
        SandboxEngine *engine = NULL;
        Pool *pool = NULL;
        ExecRequest *req = NULL;
        Local l = { .out = out, .stdin_fd = stdin_fd };
        sigset_t mask;
        int devnull = -1, r;

        if (geteuid() != 0) {
                fprintf(stderr, "isol8 run: running locally needs root (the sandbox uses namespaces and cgroups); "
                                "use --host URL to run on a server\n");
                return -EPERM;
        }
        config_init(&config);
        (void) config_find_and_load(&config, NULL, NULL, &error);
        log_set_max_level(LOG_WARNING);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = runtimes_discover(&rt, config.runtime_path);
        if (r >= 0)
                r = sd_event_default(&l.event);
        SandboxEngineConfig ec = { .state_dir = config.sandbox_state_dir, .uid_base = (uint32_t) config.sandbox_uid_base,
                                   .cgroup_root = "/sys/fs/cgroup", .runtimes = &rt };
        if (r >= 0)
                r = sandbox_engine_new(&engine, l.event, &ec);
        PoolConfig pc = { .reuse = false, .clean = 0, .dirty = 0, .sandbox_bytes = config.defaults.sandbox_bytes,
                          .tmp_bytes = config.defaults.tmp_bytes };
        if (r >= 0)
                r = pool_new(&pool, engine, &pc);
        if (r < 0) {
                fprintf(stderr, "isol8 run: cannot start the sandbox engine: %s\n", strerror(-r));
                goto finish;
        }
        SpecPolicy policy = { &config.defaults, &config.limits, config.security_allowed_networks,
                              config.security_allow_client_seccomp_change, &rt };
        if (json_parse_limited(envelope, strlen(envelope), 64, &o) < 0 || exec_request_parse(o, &policy, &req, &error) < 0) {
                fprintf(stderr, "isol8 run: %s\n", error ?: "invalid request");
                r = -EINVAL;
                goto finish;
        }
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ExecContext ctx = { .event = l.event, .engine = engine, .pool = pool, .runtimes = &rt, .devnull_fd = devnull,
                            .max_file_bytes = config.limits.body_bytes };
        ExecutionCallbacks cb = { .on_output = on_output, .on_done = on_done, .interactive_stdin = stdin_fd >= 0 };
        for (int i = 1; i <= 2; i++)
                stream_filter_init(&l.filter[i], req->secret_mask);
        r = execution_start(&ctx, req, NULL, &cb, &l, &l.exec);
        req = NULL;
        if (r < 0)
                goto finish;
        for (int i = 1; i <= 2; i++)
                stream_filter_init(&l.filter[i], execution_request(l.exec)->secret_mask);
        if (stdin_fd >= 0 && sd_event_add_io(l.event, &l.stdin_source, stdin_fd, EPOLLIN, on_stdin, &l) < 0)
                (void) execution_write_stdin(l.exec, NULL, 0);
        r = sd_event_loop(l.event);
        if (r >= 0) {
                const ExecResult *res = execution_result(l.exec);
                if (res->error < 0) {
                        fprintf(stderr, "isol8 run: the sandbox failed: %s\n", strerror(-res->error));
                        r = res->error;
                } else {
                        if (res->timed_out)
                                fprintf(stderr, "\n--- EXECUTION TIMED OUT ---\n");
                        *ret_exit_code = res->exit_code;
                }
        }
finish:
        sd_event_source_disable_unref(l.stdin_source);
        execution_free(l.exec);
        exec_request_free(req);
        for (int i = 1; i <= 2; i++)
                stream_filter_done(&l.filter[i]);
        pool_free(pool);
        sandbox_engine_free(engine);
        runtimes_done(&rt);
        config_done(&config);
        safe_close(devnull);
        sd_event_unref(l.event);
        return r;
}
