/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/fsio.h"
#include "core/execution.h"
#include "core/images.h"
#include "shared/crypto.h"
#include "shared/log.h"
#include "shared/time-util.h"

#define INLINE_CODE_MAX (64 * 1024)
#define KILL_GRACE_USEC (3 * USEC_PER_SEC)
#define DRAIN_GRACE_USEC (2 * USEC_PER_SEC)
/* How long output may wait for a slow reader once the program has ended: then what is left in
 * the pipes is dropped and the run ends, so that its slot is free whatever the client does. */
#define OUTPUT_STALL_MAX_USEC (10 * USEC_PER_SEC)

typedef enum ExecState {
        STATE_ACQUIRING,
        STATE_RUNNING,
        STATE_DONE,
} ExecState;

struct Execution {
        ExecContext ctx;
        ExecRequest *req;
        ExecutionCallbacks cb;
        void *userdata;
        ExecState state;
        ExecPhase phase;

        Sandbox *sb;
        CpuOrderEntry cpu_entry;
        bool sb_from_pool;
        bool sb_dedicated;
        PoolRequest *pool_req;

        int out_fd[3];              /* [1] stdout, [2] stderr read ends */
        sd_event_source *out_source[3];
        int stdin_fd;
        sd_event_source *stdin_source;
        Buffer stdin_buf;
        size_t stdin_off;
        bool stdin_close_when_drained;
        bool stdin_opened;          /* the program's stdin pipe was made (the code phase started) */

        sd_event_source *timeout_source;
        sd_event_source *grace_source;
        sd_event_source *done_source;
        bool started;
        bool exited;
        uint64_t exited_usec;
        uint64_t output_held;       /* what this run counts in *ctx.output_held */
        int wait_status;
        uint64_t phase_start_usec;
        uint64_t base_oom;
        uint64_t base_pids;
        bool kill_sent;
        bool output_paused;
        bool discard_output;

        Proxy *proxy;               /* network "filtered" */
        SandboxWrite *writes;       /* for the init to write before the first phase starts */
        size_t n_writes;
        char *main_path;            /* /sandbox/main<ext>, when the program goes in a file */

        ExecResult result;
};

static void execution_finish(Execution *e);
static void arm_grace(Execution *e, uint64_t usec);
static void phase_check_complete(Execution *e);

const ExecResult *execution_result(Execution *e) {
        return &e->result;
}

const ExecRequest *execution_request(Execution *e) {
        return e->req;
}

bool execution_is_done(Execution *e) {
        return e->state == STATE_DONE;
}

static void close_stream(Execution *e, int i) {
        e->out_source[i] = sd_event_source_disable_unref(e->out_source[i]);
        e->out_fd[i] = safe_close(e->out_fd[i]);
}

static void close_stdin(Execution *e) {
        e->stdin_source = sd_event_source_disable_unref(e->stdin_source);
        e->stdin_fd = safe_close(e->stdin_fd);
        buffer_done(&e->stdin_buf);
        e->stdin_off = 0;
}

static void release_sandbox(Execution *e) {
        Sandbox *sb = TAKE_PTR(e->sb);
        if (!sb)
                return;
        if (e->ctx.cpu_order)
                cpu_order_remove(e->ctx.cpu_order, &e->cpu_entry);
        sandbox_set_handler(sb, NULL, NULL);
        if (e->sb_from_pool)
                pool_release(e->ctx.pool, sb);
        else if (e->sb_dedicated)
                sandbox_free(sb);
}

Execution *execution_free(Execution *e) {
        if (!e)
                return NULL;
        if (e->pool_req)
                pool_request_cancel(e->pool_req);
        if (e->sb && e->state == STATE_RUNNING)
                (void) sandbox_kill(e->sb);
        release_sandbox(e);
        for (int i = 1; i <= 2; i++)
                close_stream(e, i);
        close_stdin(e);
        sd_event_source_disable_unref(e->timeout_source);
        sd_event_source_disable_unref(e->grace_source);
        sd_event_source_disable_unref(e->done_source);
        buffer_done(&e->result.out);
        buffer_done(&e->result.err);
        if (e->ctx.output_held)
                *e->ctx.output_held -= e->output_held;
        for (size_t i = 0; i < e->result.n_files; i++)
                free(e->result.files[i].data);
        free(e->result.files);
        proxy_free(e->proxy);
        free(e->writes);
        free(e->main_path);
        for (size_t i = 0; i < e->result.n_net_log; i++) {
                free(e->result.net_log[i].host);
                free(e->result.net_log[i].path);
        }
        free(e->result.net_log);
        exec_request_free(e->req);
        free(e);
        return NULL;
}

static int on_done_defer(sd_event_source *s, void *userdata) {
        Execution *e = userdata;
        e->done_source = sd_event_source_disable_unref(e->done_source);
        if (e->cb.on_done)
                e->cb.on_done(e, e->userdata);  /* may free e */
        return 0;
}

static void fail(Execution *e, int error) {
        if (e->state == STATE_DONE)
                return;
        e->result.error = error;
        if (e->sb && e->state == STATE_RUNNING && e->started && !e->exited)
                (void) sandbox_kill(e->sb);
        execution_finish(e);
}

static void handle_output(Execution *e, int stream, const char *buf, size_t n) {
        ExecResult *res = &e->result;
        Buffer *b = stream == EXEC_STDOUT ? &res->out : &res->err;
        uint64_t *total = stream == EXEC_STDOUT ? &res->out_total : &res->err_total;
        uint64_t *kept = stream == EXEC_STDOUT ? &res->out_kept : &res->err_kept;
        uint64_t max = e->req->limits.max_output;
        size_t keep = 0;

        *total += n;
        if (e->discard_output)
                return;  /* cancelled: drain the pipes, keep nothing */
        if (*kept < max)
                keep = (size_t) MIN((uint64_t) n, max - *kept);
        if (keep < n)
                res->truncated = true;
        if (keep > 0 && !e->cb.on_output && e->ctx.output_held) {
                uint64_t room = *e->ctx.output_held < e->ctx.output_budget ? e->ctx.output_budget - *e->ctx.output_held : 0;
                if (keep > room) {
                        keep = (size_t) room;
                        res->truncated = true;
                        *total = MAX(*total, max + 1);   /* reported as truncated */
                }
        }
        if (keep == 0)
                return;
        *kept += keep;
        if (e->cb.on_output) {
                /* Streamed: the transport has it; nothing is kept here. */
                e->cb.on_output(e, (ExecStream) stream, e->phase == EXEC_PHASE_INSTALL ? EXEC_PHASE_SETUP : e->phase, buf,
                                keep, e->userdata);
                return;
        }
        if (buffer_append(b, buf, keep) >= 0 && e->ctx.output_held) {
                *e->ctx.output_held += keep;
                e->output_held += keep;
        }
}

static int on_output_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Execution *e = userdata;
        int stream = fd == e->out_fd[1] ? 1 : 2;
        char buf[65536];

        /* A bounded number of reads per wake-up keeps one chatty program from starving the
         * loop; the source is level-triggered, so the rest comes on the next iteration. */
        for (int i = 0; i < 16; i++) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        break;  /* treat a read error like EOF */
                }
                if (n == 0)
                        break;
                handle_output(e, stream, buf, (size_t) n);
                if (e->state == STATE_DONE)
                        return 0;
                if (i == 15)
                        return 0;
        }
        close_stream(e, stream);
        phase_check_complete(e);
        return 0;
}

static int on_stdin_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Execution *e = userdata;

        while (e->stdin_off < e->stdin_buf.size) {
                ssize_t n = write(fd, e->stdin_buf.data + e->stdin_off, e->stdin_buf.size - e->stdin_off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        /* The program closed its stdin: nothing more to deliver. */
                        close_stdin(e);
                        return 0;
                }
                e->stdin_off += (size_t) n;
        }
        buffer_done(&e->stdin_buf);
        e->stdin_off = 0;
        if (e->stdin_close_when_drained)
                close_stdin(e);
        else
                (void) sd_event_source_set_enabled(e->stdin_source, SD_EVENT_OFF);
        return 0;
}

int execution_write_stdin(Execution *e, const char *data, size_t len) {
        int r;
        if (e->stdin_fd < 0) {
                /* Live stdin before the program's stdin exists (the run waits for a sandbox, for
                 * its turn to start, or in its install or setup phase): kept for it, in order. */
                if (e->stdin_opened || e->state == STATE_DONE || !e->cb.interactive_stdin)
                        return -EPIPE;
                if (len == 0) {
                        e->stdin_close_when_drained = true;
                        return 0;
                }
                if (e->stdin_buf.size + len > (16u << 20))
                        return -ENOBUFS;
                return buffer_append(&e->stdin_buf, data, len);
        }
        if (len == 0) {
                e->stdin_close_when_drained = true;
                if (e->stdin_buf.size == e->stdin_off)
                        close_stdin(e);
                return 0;
        }
        if (e->stdin_buf.size - e->stdin_off + len > (16u << 20))
                return -ENOBUFS;
        r = buffer_append(&e->stdin_buf, data, len);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(e->stdin_source, SD_EVENT_ON);
}

void execution_pause_output(Execution *e, bool pause) {
        e->output_paused = pause;
        for (int i = 1; i <= 2; i++)
                if (e->out_source[i])
                        (void) sd_event_source_set_enabled(e->out_source[i], pause ? SD_EVENT_OFF : SD_EVENT_ON);
}

int execution_signal(Execution *e, int sig) {
        /* No need to wait for STARTED: init handles its messages in order, so the signal
         * reaches the program the RUN message started. */
        if (e->state != STATE_RUNNING || !e->sb || e->exited)
                return -ESRCH;
        return sandbox_signal(e->sb, sig);
}

static int on_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        Execution *e = userdata;

        e->grace_source = sd_event_source_disable_unref(e->grace_source);
        if (e->exited && e->output_paused && !e->discard_output &&
            now_usec(CLOCK_MONOTONIC) < e->exited_usec + OUTPUT_STALL_MAX_USEC) {
                /* Output waits in the pipes for a slow reader: not stuck, just slow (for a while). */
                arm_grace(e, DRAIN_GRACE_USEC);
                return 0;
        }
        if (!e->exited) {
                /* The sandbox does not answer: give up on it. */
                log_warning("execution %s: sandbox %s did not report the end of the program; discarding it",
                            e->result.execution_id, e->sb ? sandbox_id(e->sb) : "?");
                e->exited = true;
                e->wait_status = SIGKILL;
                if (e->sb && e->sb_from_pool) {
                        Sandbox *sb = TAKE_PTR(e->sb);
                        sandbox_free(sb);
                }
        }
        for (int i = 1; i <= 2; i++)
                close_stream(e, i);
        phase_check_complete(e);
        return 0;
}

static void arm_grace(Execution *e, uint64_t usec) {
        e->grace_source = sd_event_source_disable_unref(e->grace_source);
        (void) sd_event_add_time_relative(e->ctx.event, &e->grace_source, CLOCK_MONOTONIC, usec, 10000, on_grace, e);
        (void) sd_event_source_set_description(e->grace_source, "run-grace");
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Execution *e = userdata;

        e->timeout_source = sd_event_source_disable_unref(e->timeout_source);
        if (e->exited || !e->sb)
                return 0;
        e->result.timed_out = true;
        e->kill_sent = true;
        (void) sandbox_kill(e->sb);
        arm_grace(e, KILL_GRACE_USEC);
        return 0;
}

static int make_pipe(int p[2]) {
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        return fd_nonblock(p[0], true);
}

static char *env_entry(const char *k, const char *v) {
        char *s;
        return asprintf(&s, "%s=%s", k, v) < 0 ? NULL : s;
}

/* The daemon's proxy serves a phase with network "filtered", and every package install. */
static bool wants_proxy(const Execution *e, ExecPhase phase) {
        return e->req->limits.network == NETWORK_FILTERED || phase == EXEC_PHASE_INSTALL;
}

static int build_env(Execution *e, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        static const char *const base[][2] = {
                { "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
                { "HOME", "/sandbox" },
                { "TMPDIR", "/tmp" },
                { "LANG", "C.UTF-8" },
                { "USER", "sandbox" },
                { "HOSTNAME", "sandbox" },
                { "PYTHONUNBUFFERED", "1" },
                { "PYTHONDONTWRITEBYTECODE", "1" },
                { "NO_COLOR", "1" },
                { "DENO_DIR", "/tmp/.deno" },
                { "DENO_NO_UPDATE_CHECK", "1" },
                { "BUN_INSTALL_CACHE_DIR", "/tmp/.bun" },
        };
        static const char *const proxy[][2] = {
                { "HTTP_PROXY", "http://127.0.0.1:8118" },
                { "HTTPS_PROXY", "http://127.0.0.1:8118" },
                { "http_proxy", "http://127.0.0.1:8118" },
                { "https_proxy", "http://127.0.0.1:8118" },
                { "NO_PROXY", "localhost,127.0.0.1" },
                { "no_proxy", "localhost,127.0.0.1" },
        };
        _Static_assert(PROXY_PORT == 8118, "the proxy variables name the port");
        for (size_t i = 0; i < ELEMENTSOF(base); i++) {
                bool replaced = false;
                /* An image's variable replaces the default of the same name (getenv() takes the first). */
                for (char **v = e->req->image_env; v && *v && !replaced; v++)
                        replaced = startswith(*v, base[i][0]) && (*v)[strlen(base[i][0])] == '=';
                if (!replaced && strv_push(&env, env_entry(base[i][0], base[i][1])) < 0)
                        return -ENOMEM;
        }
        /* Deno takes npm packages from the registry the server names (at install and when the
         * code imports them from its cache, its own or an image's: the cache is per registry). */
        if ((e->req->packages || (e->req->image && e->req->runtime == RUNTIME_DENO)) && e->ctx.packages &&
            strv_push(&env, env_entry("NPM_CONFIG_REGISTRY", e->ctx.packages->npm_registry)) < 0)
                return -ENOMEM;
        for (char **v = e->req->image_env; v && *v; v++)
                if (strv_push(&env, strdup(*v)) < 0)
                        return -ENOMEM;
        /* pi: no update checks or telemetry at start; its settings live in /sandbox/.pi. */
        if (e->req->runtime == RUNTIME_AGENT &&
            (strv_push(&env, env_entry("PI_OFFLINE", "1")) < 0 || strv_push(&env, env_entry("PI_TELEMETRY", "0")) < 0))
                return -ENOMEM;
        /* Package installs go through the proxy whatever the run's own network. */
        if (wants_proxy(e, e->phase))
                for (size_t i = 0; i < ELEMENTSOF(proxy); i++)
                        if (strv_push(&env, env_entry(proxy[i][0], proxy[i][1])) < 0)
                                return -ENOMEM;
        for (char **s = e->req->env; s && *s; s++)
                if (strv_push(&env, strdup(*s)) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(env);
        return 0;
}

/* Python always runs from /sandbox/main.py, as upstream does, so that __file__ is defined. */
static bool use_inline(const ExecRequest *req) {
        if (req->runtime == RUNTIME_AGENT)
                return true;    /* the prompt is an argument of pi; request.files are written as usual */
        return req->code && req->runtime != RUNTIME_PYTHON && req->n_files == 0 && !req->stdin_data &&
               strlen(req->code) < INLINE_CODE_MAX;
}

/* The installer for the runtime, as upstream's engine runs them, never through a shell; the
 * package specs were checked (no option among them). */
static int install_argv(Execution *e, char ***ret) {
        const PackagesPolicy *p = e->ctx.packages;
        const ExecRequest *req = e->req;
        _cleanup_strv_free_ char **argv = NULL;
        int r = 0;

#define PUSH(s) do { if (r >= 0 && strv_push(&argv, strdup(s)) < 0) r = -ENOMEM; } while (0)
        switch (req->runtime) {
        case RUNTIME_PYTHON:
                PUSH(e->ctx.runtimes->path[RUNTIME_PYTHON]);
                PUSH("-m"); PUSH("pip"); PUSH("install"); PUSH("--user"); PUSH("--no-cache-dir");
                PUSH("--disable-pip-version-check"); PUSH("--no-input"); PUSH("--index-url"); PUSH(p->pypi_index_url);
                /* PEP 668 guards the system's site-packages; --user writes only under /sandbox. */
                PUSH("--break-system-packages");
                if (p->pypi_http) {
                        PUSH("--trusted-host");
                        PUSH(p->pypi_host);
                }
                PUSH("--");
                break;
        case RUNTIME_NODE:
                if (!p->npm_cli)
                        return -ENOENT;
                PUSH(e->ctx.runtimes->path[RUNTIME_NODE]);
                PUSH(p->npm_cli);
                PUSH("install"); PUSH("--prefix"); PUSH("/sandbox"); PUSH("--registry"); PUSH(p->npm_registry);
                PUSH("--no-audit"); PUSH("--no-fund"); PUSH("--no-update-notifier"); PUSH("--cache"); PUSH("/tmp/.npm");
                PUSH("--");
                break;
        case RUNTIME_BUN:
                PUSH(e->ctx.runtimes->path[RUNTIME_BUN]);
                PUSH("add"); PUSH("--cwd"); PUSH("/sandbox"); PUSH("--registry"); PUSH(p->npm_registry);
                break;
        case RUNTIME_DENO:
                PUSH(e->ctx.runtimes->path[RUNTIME_DENO]);
                PUSH("cache"); PUSH("--quiet");
                break;
        case RUNTIME_BASH:
                /* Only an image's build installs for bash: Debian packages, unpacked (core/images.c
                 * gives the run the installer and the host's package list as files). */
                if (!e->ctx.runtimes->path[RUNTIME_PYTHON])
                        return -ENOENT;
                PUSH(e->ctx.runtimes->path[RUNTIME_PYTHON]);
                PUSH(DEB_UNPACK_PATH); PUSH(p->debian_mirror); PUSH(p->debian_suite); PUSH(p->debian_arch);
                PUSH(DEB_HOST_PACKAGES_PATH); PUSH("/sandbox/.debroot");
                break;
        default:
                return -EINVAL;
        }
        for (char **s = req->packages; s && *s; s++) {
                if (req->runtime == RUNTIME_DENO) {
                        char *spec;
                        if (asprintf(&spec, "npm:%s", *s) < 0 || strv_push(&argv, spec) < 0)
                                r = -ENOMEM;
                } else
                        PUSH(*s);
        }
#undef PUSH
        if (r < 0)
                return r;
        *ret = TAKE_PTR(argv);
        return 0;
}

static int build_argv(Execution *e, char ***ret) {
        const ExecRequest *req = e->req;
        const RuntimeInfo *info = runtime_info(req->runtime);
        _cleanup_strv_free_ char **argv = NULL;

        if (e->phase == EXEC_PHASE_INSTALL)
                return install_argv(e, ret);

        if (e->phase == EXEC_PHASE_SETUP || req->cmd) {
                if (strv_push(&argv, strdup(e->ctx.runtimes->path[RUNTIME_BASH])) < 0 ||
                    strv_push(&argv, strdup("-c")) < 0 ||
                    strv_push(&argv, strdup(e->phase == EXEC_PHASE_SETUP ? req->setup_script : req->cmd)) < 0)
                        return -ENOMEM;
        } else if (req->runtime == RUNTIME_AGENT) {
                /* As upstream runs it: pi --no-session --append-system-prompt <notice> <flags> -p <prompt> */
                static const char notice[] =
                        "You are running inside an isol8 sandbox: a Linux namespace sandbox with its own file system "
                        "(work in /sandbox; /tmp is scratch), limited CPU, memory and time, and network only through "
                        "an HTTP proxy to the hosts the server allows. Nothing you do here outlives the run.";
                if (strv_push(&argv, strdup(e->ctx.runtimes->path[RUNTIME_AGENT])) < 0 || strv_push(&argv, strdup(AGENT_CLI)) < 0 ||
                    strv_push(&argv, strdup("--no-session")) < 0 || strv_push(&argv, strdup("--append-system-prompt")) < 0 ||
                    strv_push(&argv, strdup(notice)) < 0)
                        return -ENOMEM;
                for (char **f = req->agent_flags; f && *f; f++)
                        if (strv_push(&argv, strdup(*f)) < 0)
                                return -ENOMEM;
                if (strv_push(&argv, strdup("-p")) < 0 || strv_push(&argv, strdup(req->code)) < 0)
                        return -ENOMEM;
        } else {
                if (strv_push(&argv, strdup(e->ctx.runtimes->path[req->runtime])) < 0)
                        return -ENOMEM;
                if (use_inline(req)) {
                        for (const char *const *a = info->inline_args; *a; a++)
                                if (strv_push(&argv, strdup(*a)) < 0)
                                        return -ENOMEM;
                        if (strv_push(&argv, strdup(req->code)) < 0)
                                return -ENOMEM;
                } else {
                        for (const char *const *a = info->file_args; *a; a++)
                                if (strv_push(&argv, strdup(*a)) < 0)
                                        return -ENOMEM;
                        char *path;
                        if (asprintf(&path, "/sandbox/main%s", req->extension) < 0 || strv_push(&argv, path) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(argv);
        return 0;
}

static int start_phase(Execution *e, ExecPhase phase) {
        _cleanup_strv_free_ char **argv = NULL, **envp = NULL;
        int out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF }, in[2] = { -EBADF, -EBADF };
        const Limits *l = &e->req->limits;
        RunSpec spec;
        int r;

        e->phase = phase;
        e->started = e->exited = e->kill_sent = false;
        r = build_argv(e, &argv);
        if (r < 0)
                return r;
        r = build_env(e, &envp);
        if (r < 0)
                return r;
        spec = (RunSpec) {
                .argv = argv,
                .envp = envp,
                .cwd = phase != EXEC_PHASE_CODE ? "/sandbox" : e->req->workdir,
                .fsize_limit = MAX(l->sandbox_bytes, l->tmp_bytes) + (UINT64_C(1) << 20), /* ENOSPC comes first */
                .sandbox_bytes = l->sandbox_bytes,
                .tmp_bytes = l->tmp_bytes,
                .readonly_rootfs = l->readonly_rootfs,
                .seccomp = l->seccomp,
                /* One proxy for the run: the setup script's phase opens it, the code's keeps it. */
                .proxy_port = wants_proxy(e, phase) && !e->proxy ? PROXY_PORT : 0,
                /* The request's files go with the first phase. */
                .writes = e->writes,
                .n_writes = e->n_writes,
        };
        e->n_writes = 0;

        if ((r = make_pipe(out)) < 0 || (r = make_pipe(err)) < 0)
                goto fail;
        /* Stdin: a pipe for the streaming routes and for request.stdin, else /dev/null. */
        if (phase == EXEC_PHASE_CODE && (e->req->stdin_data || e->cb.interactive_stdin)) {
                if (pipe2(in, O_CLOEXEC) < 0) {
                        r = -errno;
                        goto fail;
                }
                r = fd_nonblock(in[1], true);
                if (r < 0)
                        goto fail;
        }
        r = sandbox_run(e->sb, &spec, in[0] >= 0 ? in[0] : e->ctx.devnull_fd, out[1], err[1]);
        if (r < 0)
                goto fail;
        out[1] = safe_close(out[1]);
        err[1] = safe_close(err[1]);
        in[0] = safe_close(in[0]);
        e->out_fd[1] = out[0];
        e->out_fd[2] = err[0];
        r = sd_event_add_io(e->ctx.event, &e->out_source[1], out[0], EPOLLIN, on_output_ready, e);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(e->out_source[1], "run-stdout");
        r = sd_event_add_io(e->ctx.event, &e->out_source[2], err[0], EPOLLIN, on_output_ready, e);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(e->out_source[2], "run-stderr");
        if (e->output_paused)
                execution_pause_output(e, true);
        if (in[1] >= 0) {
                e->stdin_fd = in[1];
                r = sd_event_add_io(e->ctx.event, &e->stdin_source, in[1], EPOLLOUT, on_stdin_ready, e);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(e->stdin_source, "run-stdin");
                (void) sd_event_source_set_enabled(e->stdin_source, SD_EVENT_OFF);
                /* request.stdin first, then the live input that came before the program. */
                Buffer early = e->stdin_buf;
                bool early_eof = e->stdin_close_when_drained;
                e->stdin_buf = (Buffer) {};
                e->stdin_close_when_drained = false;
                e->stdin_opened = true;
                r = 0;
                if (e->req->stdin_data) {
                        r = execution_write_stdin(e, e->req->stdin_data, e->req->stdin_size);
                        if (r >= 0 && !e->cb.interactive_stdin)
                                r = execution_write_stdin(e, NULL, 0);
                }
                if (r >= 0 && early.size > 0)
                        r = execution_write_stdin(e, early.data, early.size);
                if (r >= 0 && early_eof)
                        r = execution_write_stdin(e, NULL, 0);
                buffer_done(&early);
                if (r < 0)
                        return r;
        }
        e->phase_start_usec = now_usec(CLOCK_MONOTONIC);
        e->timeout_source = sd_event_source_disable_unref(e->timeout_source);
        r = sd_event_add_time_relative(e->ctx.event, &e->timeout_source, CLOCK_MONOTONIC,
                                       (phase == EXEC_PHASE_INSTALL ? e->ctx.packages->install_timeout_ms : l->timeout_ms) *
                                               USEC_PER_MSEC,
                                       1000, on_timeout, e);
        (void) sd_event_source_set_description(e->timeout_source, "run-timeout");
        return r;
fail:
        safe_close(out[0]);
        safe_close(out[1]);
        safe_close(err[0]);
        safe_close(err[1]);
        safe_close(in[0]);
        safe_close(in[1]);
        return r;
}

static int exit_code_of(int status, int *ret_signal) {
        *ret_signal = 0;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) {
                *ret_signal = WTERMSIG(status);
                return 128 + WTERMSIG(status);
        }
        return 128 + SIGKILL;
}

static void phase_check_complete(Execution *e) {
        int code, sig;

        if (e->state != STATE_RUNNING || !e->exited || e->out_fd[1] >= 0 || e->out_fd[2] >= 0)
                return;
        e->timeout_source = sd_event_source_disable_unref(e->timeout_source);
        e->grace_source = sd_event_source_disable_unref(e->grace_source);
        /* An install or setup phase had no stdin: live input kept for the program stays. */
        if (e->stdin_opened)
                close_stdin(e);
        code = exit_code_of(e->wait_status, &sig);

        if ((e->phase == EXEC_PHASE_SETUP || e->phase == EXEC_PHASE_INSTALL) && !e->result.timed_out && code == 0) {
                ExecPhase next = e->phase == EXEC_PHASE_INSTALL && e->req->setup_script ? EXEC_PHASE_SETUP : EXEC_PHASE_CODE;
                int r;
                /* The install's proxy goes with it; the program gets its own network. */
                if (e->phase == EXEC_PHASE_INSTALL)
                        e->proxy = proxy_free(e->proxy);
                if (e->cb.on_setup_done)
                        e->cb.on_setup_done(e, e->userdata);
                r = start_phase(e, next);
                if (r < 0)
                        fail(e, r);
                return;
        }
        e->result.exit_code = code;
        e->result.signal = sig;
        e->result.setup_failed = e->phase == EXEC_PHASE_SETUP || e->phase == EXEC_PHASE_INSTALL;
        e->result.install_failed = e->phase == EXEC_PHASE_INSTALL;
        e->result.duration_ms = (now_usec(CLOCK_MONOTONIC) - e->phase_start_usec) / USEC_PER_MSEC;
        execution_finish(e);
}

static void on_proxy_block(const char *method, const char *host, unsigned port, const char *reason, void *userdata) {
        Execution *e = userdata;
        if (e->cb.on_network_block)
                e->cb.on_network_block(e, method, host, port, reason, e->userdata);
}

static int start_proxy(Execution *e) {
        bool install = e->phase == EXEC_PHASE_INSTALL;
        ProxyConfig pc = {
                .policy = e->ctx.egress,
                /* An install reaches the package indexes and nothing else; its requests are not
                 * the program's, so they are not in its networkLogs (refusals are audited). */
                .log = e->req->log_network && !install,
                .own_rules_only = install,
                .on_block = on_proxy_block,
                .userdata = e,
        };
        int fd, r;

        if (!e->ctx.egress || !e->ctx.resolver || (install && !e->ctx.packages))
                return -EOPNOTSUPP;
        fd = sandbox_take_proxy_fd(e->sb);
        if (fd < 0)
                return fd;
        /* Checked when the request was made (or at start-up): they compile. */
        r = regex_list_compile(install ? e->ctx.packages->host_patterns : e->req->net_whitelist, "whitelist",
                               &pc.whitelist, NULL);
        if (r >= 0 && !install)
                r = regex_list_compile(e->req->net_blacklist, "blacklist", &pc.blacklist, NULL);
        if (r < 0) {
                safe_close(fd);
                regex_list_done(&pc.whitelist);
                return r;
        }
        return proxy_new(e->ctx.event, e->ctx.resolver, &pc, fd, &e->proxy);
}

/* The program is gone (wait_status as waitpid() gives it), and with it every process of the
 * run: the pipes reach EOF promptly. */
static void program_ended(Execution *e, int wait_status) {
        e->exited = true;
        e->exited_usec = now_usec(CLOCK_MONOTONIC);
        e->wait_status = wait_status;
        arm_grace(e, DRAIN_GRACE_USEC);
        phase_check_complete(e);
}

static void on_sandbox_event(Sandbox *sb, SandboxEvent ev, int value, void *userdata) {
        Execution *e = userdata;

        if (e->state != STATE_RUNNING) {
                /* Waiting for its turn to start: only its sandbox's end concerns it. */
                if (ev == SANDBOX_DIED)
                        fail(e, -ESRCH);
                return;
        }
        switch (ev) {
        case SANDBOX_STARTED:
                if (value < 0) {
                        fail(e, value);
                        return;
                }
                e->started = true;
                if (wants_proxy(e, e->phase) && !e->proxy) {
                        int r = start_proxy(e);
                        if (r < 0) {
                                log_warning_errno(r, "execution %s: cannot start the network proxy: %m", e->result.execution_id);
                                fail(e, r);
                        }
                }
                return;
        case SANDBOX_EXITED:
                /* Its program is over: the run no longer takes one of the starts. */
                if (e->ctx.cpu_order)
                        cpu_order_program_ended(e->ctx.cpu_order, &e->cpu_entry);
                program_ended(e, value);
                return;
        case SANDBOX_WRITE_FAILED: {
                /* -ENOMEM: the files did not fit the memory limit. */
                int r = value == -ENOMEM && e->req->n_files > 0 ? (int) OUTCOME_TOO_BIG : outcome_file_result(value);
                log_debug_errno(value, "execution %s: cannot write the request's files: %m", e->result.execution_id);
                if (r > 0) {
                        e->result.refused = (Outcome) r;
                        fail(e, 0);
                } else
                        fail(e, r);
                return;
        }
        case SANDBOX_DIED:
                program_ended(e, SIGKILL);
                return;
        default:
                return;
        }
}

/* The program file alone, written by the daemon into the sandbox's root: 0, an Outcome, or < 0. */
static int write_program_file(Execution *e) {
        _cleanup_close_ int root = -EBADF;
        _cleanup_free_ char *p = NULL;
        uid_t uid = sandbox_host_uid(e->sb);

        root = sandbox_open_root(e->sb);
        if (root < 0)
                return root;
        if (asprintf(&p, "/sandbox/main%s", e->req->extension) < 0)
                return -ENOMEM;
        return outcome_file_result(sandbox_write_file(root, p, e->req->code, strlen(e->req->code), uid, uid, 0644));
}

/* What the init writes before the first phase: the working directory, request.files, the
 * program file (0, OUTCOME_TOO_BIG, or < 0). The init is in the sandbox's cgroup already, so
 * the files count against the sandbox's memory limit without moving a process into the cgroup
 * (which waits for an RCU grace period: 15 ms here). */
static int plan_writes(Execution *e) {
        const ExecRequest *req = e->req;
        uint64_t total = req->code ? strlen(req->code) : 0;
        size_t n = 0;

        for (size_t i = 0; i < req->n_files; i++)
                total += req->files[i].size;
        /* In a session's sandbox files may already fill the memory: refuse what cannot fit
         * before the OOM killer has to choose. */
        if (!sandbox_memory_fits(e->sb, total))
                return OUTCOME_TOO_BIG;

        e->writes = calloc(req->n_files + 2, sizeof(SandboxWrite));
        if (!e->writes)
                return -ENOMEM;
        if (!streq(req->workdir, "/sandbox"))
                e->writes[n++] = (SandboxWrite) { .path = req->workdir, .dir = true };
        for (size_t i = 0; i < req->n_files; i++)
                e->writes[n++] = (SandboxWrite) { .path = req->files[i].path, .data = req->files[i].content,
                                                  .size = req->files[i].size };
        if (req->code && !use_inline(req)) {
                if (asprintf(&e->main_path, "/sandbox/main%s", req->extension) < 0)
                        return -ENOMEM;
                e->writes[n++] = (SandboxWrite) { .path = e->main_path, .data = req->code, .size = strlen(req->code) };
        }
        e->n_writes = n;
        return 0;
}

static int write_request_files(Execution *e) {
        const ExecRequest *req = e->req;

        /* Nothing to write: no files, no program file (cmd, or inline code), the default workdir. */
        if (req->n_files == 0 && (!req->code || use_inline(req)) && streq(req->workdir, "/sandbox"))
                return 0;
        /* A lone small program file is written directly: charging it to the sandbox's memory
         * would not change anything worth a round trip. */
        if (req->n_files == 0 && req->code && strlen(req->code) <= INLINE_CODE_MAX && streq(req->workdir, "/sandbox"))
                return write_program_file(e);
        return plan_writes(e);
}

static void start_run(void *userdata);

static void sandbox_acquired(Execution *e) {
        int r;

        /* Still STATE_ACQUIRING until its turn to start: a cancel ends it there, a signal finds
         * no program, and no kill is sent to a program that is not there yet. */
        sandbox_set_handler(e->sb, on_sandbox_event, e);
        snprintf(e->result.container_id, sizeof(e->result.container_id), "%s", sandbox_id(e->sb));
        /* The init process counts against the pids limit too. */
        r = cgroup_set_limits(sandbox_cgroup(e->sb), e->req->limits.memory_bytes, e->req->limits.cpu, e->req->limits.pids + 1);
        if (r < 0) {
                fail(e, r);
                return;
        }
        cgroup_reset_counters(sandbox_cgroup(e->sb));
        if (e->ctx.cpu_order && cpu_order_add(e->ctx.cpu_order, &e->cpu_entry, sandbox_cgroup(e->sb), start_run, e) == 0)
                return;
        start_run(e);
}

/* The run's turn to start (core/cpu-order.h): its files, then its first phase. */
static void start_run(void *userdata) {
        Execution *e = userdata;
        int r;

        e->state = STATE_RUNNING;
        /* Event counters only move while a program runs: the last run's final figures are
         * this run's baseline, so nothing needs reading here. */
        cgroup_event_baseline(sandbox_cgroup(e->sb), &e->base_oom, &e->base_pids);
        r = write_request_files(e);
        if (r == -ENOMEM && e->req->n_files > 0)
                r = OUTCOME_TOO_BIG;
        if (r > 0) {
                e->result.refused = (Outcome) r;
                fail(e, 0);
                return;
        }
        if (r < 0) {
                fail(e, r);
                return;
        }
        e->result.started_realtime_usec = now_usec(CLOCK_REALTIME);
        r = start_phase(e, e->req->packages ? EXEC_PHASE_INSTALL : e->req->setup_script ? EXEC_PHASE_SETUP : EXEC_PHASE_CODE);
        if (r < 0)
                fail(e, r);
}

static void on_pool_sandbox(Sandbox *sb, int error, void *userdata) {
        Execution *e = userdata;
        e->pool_req = NULL;
        if (error < 0) {
                fail(e, error);
                return;
        }
        e->sb = sb;
        e->sb_from_pool = true;
        sandbox_acquired(e);
}

static void on_dedicated_event(Sandbox *sb, SandboxEvent ev, int value, void *userdata) {
        Execution *e = userdata;
        if (ev == SANDBOX_READY && value >= 0) {
                sandbox_acquired(e);
                return;
        }
        if (ev == SANDBOX_READY || ev == SANDBOX_DIED)
                fail(e, value < 0 ? value : -ESRCH);
}

static void collect_files(Execution *e) {
        _cleanup_close_ int root = -EBADF;
        size_t n = 0;

        if (!e->req->output_paths || !e->sb)
                return;
        root = sandbox_open_root(e->sb);
        if (root < 0)
                return;
        for (char **p = e->req->output_paths; *p; p++)
                n++;
        e->result.files = calloc(MAX(n, (size_t) 1), sizeof(ExecOutputFile));
        if (!e->result.files)
                return;
        /* All the files together are held to what one may be: the answer's size is bounded. */
        uint64_t budget = e->ctx.max_file_bytes / 4 * 3;
        for (char **p = e->req->output_paths; *p; p++) {
                _cleanup_free_ void *data = NULL;
                char *masked = NULL;
                size_t size;
                uid_t uid = sandbox_host_uid(e->sb);
                int r = sandbox_read_file(root, *p, budget, uid, uid, &data, &size);
                if (r < 0) {
                        /* Missing, refused (a link out, a hard link, a FIFO, a device) or over the
                         * budget left: skipped. */
                        log_debug_errno(r, "execution %s: output path %s skipped: %m", e->result.execution_id, *p);
                        continue;
                }
                budget -= size;
                if (e->req->secret_mask) {
                        size_t consumed;
                        masked = secret_mask_apply(e->req->secret_mask, data, size, true, &size, &consumed);
                        if (!masked)
                                continue;
                        free(data);
                        data = masked;
                }
                ExecOutputFile *f = &e->result.files[e->result.n_files];
                f->path = *p;
                f->data = TAKE_PTR(data);
                f->size = size;
                e->result.n_files++;
        }
}

static void execution_finish(Execution *e) {
        ExecResult *res = &e->result;

        if (e->state == STATE_DONE)
                return;
        e->timeout_source = sd_event_source_disable_unref(e->timeout_source);
        e->grace_source = sd_event_source_disable_unref(e->grace_source);
        for (int i = 1; i <= 2; i++)
                close_stream(e, i);
        close_stdin(e);
        if (e->pool_req) {
                pool_request_cancel(e->pool_req);
                e->pool_req = NULL;
        }
        if (e->sb && e->state == STATE_RUNNING) {
                CgroupStats st;
                if (cgroup_read_stats(sandbox_cgroup(e->sb), &st) >= 0) {
                        uint64_t wall = MAX(res->duration_ms, (uint64_t) 1) * 1000;
                        res->oom_killed = st.oom_kills > e->base_oom;
                        res->pids_limited = st.pids_max_events > e->base_pids;
                        res->cpu_percent = (double) st.cpu_usec * 100.0 / (double) wall;
                        res->memory_mb = (double) st.memory_bytes / (1024.0 * 1024.0);
                        res->peak_memory_mb = (double) st.memory_peak_bytes / (1024.0 * 1024.0);
                }
                /* With network "none" there is only loopback, which is not counted; with
                 * "filtered" what went through the proxy. */
                if (e->req->limits.network == NETWORK_HOST)
                        sandbox_net_bytes(e->sb, &res->net_in, &res->net_out);
                if (res->error == 0 && !res->setup_failed)
                        collect_files(e);
        }
        if (e->proxy) {
                /* Its tunnels end with the run. */
                const ProxyLogEntry *log;
                size_t n;
                proxy_bytes(e->proxy, &res->net_in, &res->net_out);
                log = proxy_log(e->proxy, &n);
                if (n > 0 && (res->net_log = calloc(n, sizeof(ProxyLogEntry)))) {
                        for (size_t i = 0; i < n; i++) {
                                res->net_log[i] = log[i];
                                res->net_log[i].host = strdup(log[i].host ?: "");
                                res->net_log[i].path = log[i].path ? strdup(log[i].path) : NULL;
                        }
                        res->n_net_log = n;
                }
                e->proxy = proxy_free(e->proxy);
        }
        release_sandbox(e);
        e->state = STATE_DONE;
        (void) sd_event_add_defer(e->ctx.event, &e->done_source, on_done_defer, e);
        (void) sd_event_source_set_description(e->done_source, "execution-done");
}

void execution_cancel(Execution *e) {
        if (e->state == STATE_DONE)
                return;
        e->result.cancelled = true;
        /* Nobody reads the output any more: drain it so the run can end. */
        e->discard_output = true;
        execution_pause_output(e, false);
        if (e->state == STATE_ACQUIRING) {
                fail(e, -ECANCELED);
                return;
        }
        if (e->sb && !e->exited) {
                e->kill_sent = true;
                (void) sandbox_kill(e->sb);
                arm_grace(e, KILL_GRACE_USEC);
        }
}

int execution_start(const ExecContext *ctx, ExecRequest *req, Sandbox *sb, const ExecutionCallbacks *cb,
                    void *userdata, Execution **ret) {
        Execution *e;
        int r;

        e = calloc(1, sizeof(Execution));
        if (!e) {
                exec_request_free(req);
                return -ENOMEM;
        }
        e->ctx = *ctx;
        e->req = req;
        e->cb = *cb;
        e->userdata = userdata;
        e->state = STATE_ACQUIRING;
        e->out_fd[0] = e->out_fd[1] = e->out_fd[2] = -EBADF;
        e->stdin_fd = -EBADF;
        r = uuid4(e->result.execution_id);
        if (r < 0) {
                execution_free(e);
                return r;
        }
        *ret = e;

        if (sb) {
                e->sb = sb;
                sandbox_acquired(e);
                return 0;
        }
        if (req->limits.network == NETWORK_HOST) {
                SandboxOptions o = { .share_network = true, .sandbox_bytes = req->limits.sandbox_bytes, .tmp_bytes = req->limits.tmp_bytes };
                r = sandbox_new(ctx->engine, &o, on_dedicated_event, e, &e->sb);
                if (r < 0) {
                        fail(e, r);
                        return 0;
                }
                e->sb_dedicated = true;
                return 0;
        }
        r = pool_acquire(ctx->pool, on_pool_sandbox, e, &sb, &e->pool_req);
        if (r < 0) {
                fail(e, r);
                return 0;
        }
        if (r > 0) {
                e->sb = sb;
                e->sb_from_pool = true;
                sandbox_acquired(e);
        }
        return 0;
}


char *exec_result_output(const ExecResult *res, const ExecRequest *req, ExecStream stream, size_t *ret_len) {
        const Buffer *raw = stream == EXEC_STDOUT ? &res->out : &res->err;
        _cleanup_free_ char *masked = NULL;
        size_t len = raw->size, dummy;
        const char *src = raw->data ?: "";

        if (req->secret_mask) {
                size_t consumed;
                masked = secret_mask_apply(req->secret_mask, src, len, true, &len, &consumed);
                if (!masked)
                        return NULL;
                src = masked;
        }
        return utf8_sanitize(src, len, ret_len ?: &dummy);
}
