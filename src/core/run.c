/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/images.h"
#include "core/run.h"
#include "core/session.h"
#include "shared/list.h"
#include "shared/log.h"
#include "shared/stream-filter.h"
#include "shared/time-util.h"
#include "shared/crypto.h"
#include "audit/audit.h"

struct Run {
        Manager *m;
        RunOps ops;
        void *userdata;
        ExecRequest *req;           /* until the execution takes it */
        Execution *exec;
        SessionUse *use;
        Sandbox *session_sb;
        ExecQueueWaiter *waiter;
        CodeFetch *fetch;           /* request.codeUrl, before anything else */
        uint64_t fetch_started;
        bool has_slot;
        bool interactive;
        bool paused;
        bool done;
        bool cancelled;
        int error;
        Outcome outcome;
        char *message;
        sd_event_source *done_source;
        StreamFilter filter[3];
        ExecPhase last_phase;
        AuthInfo who;
        char remote[64];
        Buffer early_stdin;         /* stdin that came before the program started */
        bool early_eof;
        Run *prev, *next;
};


static void emit(Run *s, const RunEvent *ev) {
        if (s->ops.event)
                s->ops.event(s->userdata, ev);
}

static void emit_simple(Run *s, RunEventType type, ExecPhase phase, const char *data, int exit_code) {
        emit(s, &(RunEvent) { .type = type, .phase = phase, .data = data, .size = data ? strlen(data) : 0, .exit_code = exit_code });
}

static void flush_filter(Run *s, ExecStream stream, ExecPhase phase, const char *data, size_t len, bool final) {
        Buffer out = {};
        if (stream_filter_feed(&s->filter[stream], data, len, final, &out) >= 0 && out.size > 0)
                emit(s, &(RunEvent) { .type = RUN_EVENT_OUTPUT, .phase = phase, .stream = stream, .data = out.data, .size = out.size });
        buffer_done(&out);
}

/* The setup script succeeded: its output is complete and, as upstream does, it gets its own
 * exit event before the code's output starts. */
static void on_setup_done(Execution *e, void *userdata) {
        Run *s = userdata;

        flush_filter(s, EXEC_STDOUT, EXEC_PHASE_SETUP, NULL, 0, true);
        flush_filter(s, EXEC_STDERR, EXEC_PHASE_SETUP, NULL, 0, true);
        emit_simple(s, RUN_EVENT_EXIT, EXEC_PHASE_SETUP, NULL, 0);
        s->last_phase = EXEC_PHASE_CODE;
}

static void on_output(Execution *e, ExecStream stream, ExecPhase phase, const char *data, size_t len, void *userdata) {
        Run *s = userdata;

        if (phase != s->last_phase) {
                /* Whatever the setup phase held back belongs to it. */
                flush_filter(s, EXEC_STDOUT, s->last_phase, NULL, 0, true);
                flush_filter(s, EXEC_STDERR, s->last_phase, NULL, 0, true);
                s->last_phase = phase;
        }
        flush_filter(s, stream, phase, data, len, false);
}

static int on_done_defer(sd_event_source *es, void *userdata) {
        Run *s = userdata;
        s->done_source = sd_event_source_disable_unref(s->done_source);
        s->ops.done(s->userdata, s->error, s->outcome, s->message,
                    s->exec && s->error >= 0 && s->outcome == OUTCOME_OK ? execution_result(s->exec) : NULL,
                    s->exec ? execution_request(s->exec) : s->req);   /* may free s */
        return 0;
}

/* error < 0: an internal failure ("Sandbox failure" to the client, logged by the transport
 * that answers); outcome > 0: a documented end. */
static void finish(Run *s, int error, Outcome outcome, const char *message) {
        if (s->done)
                return;
        s->done = true;
        s->error = error;
        s->outcome = outcome;
        if (!message && outcome != OUTCOME_OK)
                message = outcome_message(outcome);
        if (!message && error < 0)
                message = "Sandbox failure";
        if (message && !s->message)
                s->message = strdup(message);
        /* The session may take its next run at once. */
        session_use_done(TAKE_PTR(s->use));
        if (error < 0 || outcome != OUTCOME_OK)
                emit_simple(s, RUN_EVENT_ERROR, s->last_phase, message, 0);
        if (sd_event_add_defer(s->m->event, &s->done_source, on_done_defer, s) >= 0)
                (void) sd_event_source_set_description(s->done_source, "run-done");
}

static void emit_truncated(Run *s, ExecStream stream, uint64_t total, uint64_t max) {
        emit(s, &(RunEvent) { .type = RUN_EVENT_TRUNCATED, .phase = s->last_phase, .stream = stream, .total = total, .max = max });
}

/* One audit record per finished execution, buffered or streamed. */
static void audit_execution(Run *s, const ExecResult *res, const ExecRequest *req) {
        char code_hash[SHA256_HEX_LEN + 1], exit_code[16], duration[24];
        const char *code = req->code ?: req->cmd ?: "";
        const char *user = NULL;
        _cleanup_free_ char *out = NULL, *err = NULL;
        Audit *a = s->m->audit;

        if (!a)
                return;
        sha256_hex(code, strlen(code), code_hash);
        snprintf(exit_code, sizeof(exit_code), "%d", res->exit_code);
        snprintf(duration, sizeof(duration), "%" PRIu64, res->duration_ms);
        user = exec_request_metadata(req, "userId");
        if (audit_include_output(a) && !s->ops.event) {
                out = exec_result_output(res, req, EXEC_STDOUT, NULL);
                err = exec_result_output(res, req, EXEC_STDERR, NULL);
        }
        AuditField f[] = {
                { "ISOL8_EXECUTION_ID", res->execution_id },
                { "ISOL8_SESSION_ID", req->session_id },
                { "ISOL8_KEY_ID", s->who.key_id[0] ? s->who.key_id : NULL },
                { "ISOL8_TENANT", s->who.tenant },
                { "ISOL8_AUTH_TYPE", auth_type_to_string(s->who.type) },
                { "ISOL8_RUNTIME", runtime_to_string(req->runtime) },
                { "ISOL8_EXIT_CODE", exit_code },
                { "ISOL8_DURATION_MS", duration },
                { "ISOL8_CODE_SHA256", code_hash },
                { "ISOL8_CODE_URL", req->code_url },
                { "ISOL8_TIMED_OUT", res->timed_out ? "1" : "0" },
                { "ISOL8_OOM_KILLED", res->oom_killed ? "1" : "0" },
                { "ISOL8_STREAMED", s->ops.event ? "1" : "0" },
                { "ISOL8_REMOTE_ADDR", s->remote[0] ? s->remote : NULL },
                { "ISOL8_USER_ID", user },
                { "ISOL8_CODE", audit_include_code(a) ? code : NULL },
                { "ISOL8_STDOUT", out },
                { "ISOL8_STDERR", err },
        };
        {
                char message[256];
                snprintf(message, sizeof(message), "execution %.8s by tenant %s: %s, exit %d, %" PRIu64 " ms%s%s%s",
                         res->execution_id, s->who.tenant, runtime_to_string(req->runtime), res->exit_code, res->duration_ms,
                         req->session_id ? ", in a session" : "", res->timed_out ? ", timed out" : "",
                         res->oom_killed ? ", out of memory" : "");
                audit_emit(a, AUDIT_MESSAGE_EXECUTION, LOG_INFO, "execution", message, f, ELEMENTSOF(f));
        }
}

/* Every request the proxy of network "filtered" refused is an audit record, whether or not the
 * run asked for networkLogs. */
static void on_network_block(Execution *e, const char *method, const char *host, unsigned port, const char *reason,
                             void *userdata) {
        Run *s = userdata;
        const ExecResult *res = execution_result(e);
        char port_s[8], message[512];

        if (!s->m->audit)
                return;
        snprintf(port_s, sizeof(port_s), "%u", port);
        AuditField f[] = {
                { "ISOL8_EXECUTION_ID", res->execution_id },
                { "ISOL8_SESSION_ID", execution_request(e)->session_id },
                { "ISOL8_KEY_ID", s->who.key_id[0] ? s->who.key_id : NULL },
                { "ISOL8_TENANT", s->who.tenant },
                { "ISOL8_NETWORK_METHOD", method },
                { "ISOL8_NETWORK_HOST", host },
                { "ISOL8_NETWORK_PORT", port_s },
                { "ISOL8_NETWORK_REASON", reason },
        };
        snprintf(message, sizeof(message), "execution %.8s by tenant %s: network request blocked: %s %.253s:%u: %s",
                 res->execution_id, s->who.tenant, method, host, port, reason);
        audit_emit(s->m->audit, AUDIT_MESSAGE_NETWORK_BLOCKED, LOG_WARNING, "network-blocked", message, f, ELEMENTSOF(f));
}

static void on_exec_done(Execution *e, void *userdata) {
        Run *s = userdata;
        const ExecResult *res = execution_result(e);
        const ExecRequest *req = execution_request(e);
        ExecPhase phase = res->setup_failed ? EXEC_PHASE_SETUP : EXEC_PHASE_CODE;

        s->m->total_executions++;
        /* The record before the answer: no result leaves without its record. */
        if (res->error >= 0 && res->refused == OUTCOME_OK)
                audit_execution(s, res, req);
        if (s->ops.event) {
                flush_filter(s, EXEC_STDOUT, s->last_phase, NULL, 0, true);
                flush_filter(s, EXEC_STDERR, s->last_phase, NULL, 0, true);
        }
        if (res->refused != OUTCOME_OK) {
                finish(s, 0, res->refused, NULL);
                return;
        }
        if (res->error < 0) {
                if (res->error == -ECANCELED || res->error == -ESHUTDOWN)
                        finish(s, 0, OUTCOME_CANCELLED, NULL);
                else
                        finish(s, res->error, OUTCOME_OK, NULL);
                return;
        }
        if (res->out_total > req->limits.max_output)
                emit_truncated(s, EXEC_STDOUT, res->out_total, req->limits.max_output);
        if (res->err_total > req->limits.max_output)
                emit_truncated(s, EXEC_STDERR, res->err_total, req->limits.max_output);
        if (res->timed_out)
                emit_simple(s, RUN_EVENT_TIMED_OUT, phase, NULL, 0);
        else if (res->setup_failed)
                emit(s, &(RunEvent) { .type = RUN_EVENT_SETUP_FAILED, .phase = EXEC_PHASE_SETUP, .exit_code = res->exit_code,
                                      .install = res->install_failed });
        emit(s, &(RunEvent) { .type = RUN_EVENT_EXIT, .phase = phase, .exit_code = res->exit_code,
                              .network_log = req->log_network ? res : NULL });
        finish(s, 0, OUTCOME_OK, NULL);
}

/* The image's pool for a run on an image, looked up when the run takes its slot: an image can
 * only be removed while no run holds or waits for one of its sandboxes. */
static int image_context(Run *s, ExecContext *ctx) {
        Image *img;
        int r;

        *ctx = s->m->exec;
        if (!s->req->image)
                return 0;
        img = image_find(s->m, s->req->image);
        if (!img)
                return OUTCOME_IMAGE_NOT_FOUND;
        for (char **v = img->env; v && *v && !s->req->image_env_set; v++)
                if (strv_push(&s->req->image_env, strdup(*v)) < 0)
                        return -ENOMEM;
        s->req->image_env_set = true;
        r = image_pool(s->m, img, &ctx->pool);
        return r < 0 ? r : 0;
}

static void start_exec(Run *s) {
        ExecContext ctx;
        ExecutionCallbacks cb = {
                .on_output = s->ops.event ? on_output : NULL,
                .on_setup_done = s->ops.event ? on_setup_done : NULL,
                .on_done = on_exec_done,
                .on_network_block = on_network_block,
                .interactive_stdin = s->interactive,
        };
        int r;

        s->has_slot = true;
        r = image_context(s, &ctx);
        if (r != 0) {
                finish(s, MIN(r, 0), r > 0 ? (Outcome) r : OUTCOME_OK, NULL);
                return;
        }
        r = execution_start(&ctx, TAKE_PTR(s->req), s->session_sb, &cb, s, &s->exec);
        if (r < 0) {
                finish(s, r, OUTCOME_OK, NULL);
                return;
        }
        /* The filters borrow the secrets from the request, which the execution now owns. */
        for (int i = 1; i <= 2; i++)
                stream_filter_init(&s->filter[i], execution_request(s->exec)->secret_mask);
        s->m->active_executions++;
        if (s->paused)
                execution_pause_output(s->exec, true);
        if (s->early_stdin.size > 0 || s->early_eof) {
                if (s->early_stdin.size > 0)
                        (void) execution_write_stdin(s->exec, s->early_stdin.data, s->early_stdin.size);
                if (s->early_eof)
                        (void) execution_write_stdin(s->exec, NULL, 0);
                buffer_done(&s->early_stdin);
        }
}

static void on_queue(int error, void *userdata) {
        Run *s = userdata;
        s->waiter = NULL;
        if (error == -ETIMEDOUT)
                finish(s, 0, OUTCOME_QUEUE_TIMEOUT, NULL);
        else if (error == -ESHUTDOWN || error == -ECANCELED)
                finish(s, 0, OUTCOME_SHUTTING_DOWN, NULL);
        else if (error < 0)
                finish(s, error, OUTCOME_OK, NULL);
        else
                start_exec(s);
}

/* Returns 0, OUTCOME_QUEUE_FULL or < 0. */
static int take_slot(Run *s) {
        int r = exec_queue_acquire(s->m->queue, s->who.tenant, on_queue, s, &s->waiter);
        if (r == -EBUSY)
                return OUTCOME_QUEUE_FULL;
        if (r > 0)
                start_exec(s);
        return r < 0 ? r : 0;
}

static void on_session_ready(Sandbox *sb, int error, void *userdata) {
        Run *s = userdata;
        int r;

        if (error < 0) {
                s->use = NULL;  /* the session is gone and took the use with it */
                if (error == -ENOENT)
                        finish(s, 0, OUTCOME_SESSION_NOT_FOUND, NULL);
                else
                        finish(s, error, OUTCOME_OK, NULL);
                return;
        }
        s->session_sb = sb;
        r = take_slot(s);
        if (r != 0)
                finish(s, MIN(r, 0), r > 0 ? (Outcome) r : OUTCOME_OK, NULL);
}

/* A session's sandbox or a slot: 0, an Outcome, or < 0. */
static int run_proceed(Run *s, char **ret_message) {
        ExecRequest *req = s->req;
        int r;

        Pool *image_pool_ = NULL;

        /* pi comes from an image: the run's, else the server's agent.image. */
        if (req->runtime == RUNTIME_AGENT && !req->image) {
                if (!image_find(s->m, s->m->config.agent_image))
                        return errorf(ret_message, "runtime agent needs an image holding pi: isol8ctl images build %s --runtime node "
                                      "--packages " AGENT_PACKAGE, s->m->config.agent_image), OUTCOME_INVALID;
                if (!(req->image = strdup(s->m->config.agent_image)))
                        return -ENOMEM;
        }
        if (req->image) {
                Image *img = image_find(s->m, req->image);
                if (!img)
                        return errorf(ret_message, "options.image: no image named \"%s\"", req->image), OUTCOME_IMAGE_NOT_FOUND;
                if (req->runtime == RUNTIME_AGENT && !image_has_agent(img))
                        return errorf(ret_message, "options.image: \"%s\" does not hold pi (" AGENT_PACKAGE ")", img->name),
                               OUTCOME_INVALID;
                if (!image_serves(img->runtime, req->runtime))
                        return errorf(ret_message, "options.image: \"%s\" is an image for %s, not %s", img->name,
                                      runtime_to_string(img->runtime), runtime_to_string(req->runtime)), OUTCOME_INVALID;
                /* A session made by this run takes its sandbox from the image's pool. */
                if (req->session_id && (r = image_pool(s->m, img, &image_pool_)) < 0)
                        return r;
        }
        /* installPackages that an image already holds: the run gets the image, installs nothing. */
        if (req->packages && !req->session_id) {
                Image *img = req->image ? image_find(s->m, req->image) : image_match(s->m, req->runtime, req->packages);
                bool all = img != NULL;
                for (char **p = req->packages; all && *p; p++)
                        all = strv_contains(img->packages, *p);
                if (all) {
                        if (!req->image && !(req->image = strdup(img->name)))
                                return -ENOMEM;
                        req->packages = strv_free_ret(req->packages);
                        if (!req->setup_script)
                                s->last_phase = EXEC_PHASE_CODE;
                }
        }
        if (!req->session_id)
                return take_slot(s);
        r = session_use_on(s->m->sessions, &s->who, s->req, image_pool_, on_session_ready, s, &s->use, ret_message);
        switch (r) {
        case -EBUSY:
                return OUTCOME_SESSION_LIMIT;
        case -ENOENT:
                return OUTCOME_SESSION_NOT_FOUND;
        case -EXDEV:
                return OUTCOME_RUNTIME_SWITCH;
        case -EINVAL:
                return OUTCOME_INVALID;
        default:
                return r;
        }
}

static void on_code_fetched(int error, const char *message, char *data, size_t size, void *userdata) {
        Run *s = userdata;
        _cleanup_free_ char *msg = NULL;
        uint64_t elapsed_ms = (now_usec(CLOCK_MONOTONIC) - s->fetch_started) / USEC_PER_MSEC;
        int r;

        s->fetch = NULL;
        if (error < 0 || message) {
                finish(s, MIN(error, 0), message ? OUTCOME_INVALID : OUTCOME_OK, message);
                return;
        }
        s->req->code = data;
        /* The fetch took its share of the request's time. */
        s->req->limits.timeout_ms = s->req->limits.timeout_ms > elapsed_ms ? s->req->limits.timeout_ms - elapsed_ms : 1;
        r = run_proceed(s, &msg);
        if (r != 0)
                finish(s, MIN(r, 0), r > 0 ? (Outcome) r : OUTCOME_OK, msg);
}

int run_start(Manager *m, const AuthInfo *who, const char *remote_addr, ExecRequest *req, bool interactive,
              const RunOps *ops, void *userdata, Run **ret, char **ret_message) {
        _cleanup_free_ Run *s = NULL;
        int r;

        *ret_message = NULL;
        if (m->shutting_down) {
                exec_request_free(req);
                return OUTCOME_SHUTTING_DOWN;
        }
        if (m->draining) {
                exec_request_free(req);
                return OUTCOME_DRAINING;
        }
        s = calloc(1, sizeof(Run));
        if (!s) {
                exec_request_free(req);
                return -ENOMEM;
        }
        s->m = m;
        s->ops = *ops;
        s->userdata = userdata;
        s->req = req;
        s->interactive = interactive;
        s->who = *who;
        snprintf(s->remote, sizeof(s->remote), "%s", remote_addr ?: "");
        s->last_phase = req->setup_script || req->packages ? EXEC_PHASE_SETUP : EXEC_PHASE_CODE;

        if (req->code_url && !req->code) {
                s->fetch_started = now_usec(CLOCK_MONOTONIC);
                r = m->fetcher ? code_fetch_start(m->fetcher, req->code_url, req->code_hash, req->allow_insecure_code_url,
                                                  req->limits.timeout_ms, on_code_fetched, s, &s->fetch)
                               : -EOPNOTSUPP;
        } else
                r = run_proceed(s, ret_message);
        if (r != 0) {
                exec_request_free(s->req);
                return r;
        }
        LIST_PREPEND(m->runs, s);
        *ret = TAKE_PTR(s);
        return 0;
}

Run *run_free(Run *s) {
        if (!s)
                return NULL;
        LIST_REMOVE(s->m->runs, s);
        exec_queue_cancel(s->waiter);
        code_fetch_cancel(s->fetch);
        session_use_done(s->use);
        if (s->exec) {
                execution_free(s->exec);
                s->m->active_executions--;
        }
        if (s->has_slot)
                exec_queue_release(s->m->queue);
        exec_request_free(s->req);
        sd_event_source_disable_unref(s->done_source);
        for (int i = 1; i <= 2; i++)
                stream_filter_done(&s->filter[i]);
        free(s->message);
        buffer_done(&s->early_stdin);
        free(s);
        return NULL;
}

void run_cancel(Run *s) {
        if (s->done || s->cancelled)
                return;
        s->cancelled = true;
        if (s->exec)
                execution_cancel(s->exec);
        else {
                exec_queue_cancel(TAKE_PTR(s->waiter));
                code_fetch_cancel(TAKE_PTR(s->fetch));
                finish(s, 0, OUTCOME_CANCELLED, NULL);
        }
}

Run *run_next(Run *s) {
        return s->next;
}

int run_stdin(Run *s, const char *data, size_t len, bool eof) {
        int r = 0;
        if (s->done)
                return -ESRCH;
        if (!s->exec) {
                /* Waiting for a slot or a session: keep it (bounded) for when the program starts. */
                if (s->early_stdin.size + len > (1u << 20))
                        return -ENOBUFS;
                if (len > 0 && buffer_append(&s->early_stdin, data, len) < 0)
                        return -ENOMEM;
                s->early_eof = s->early_eof || eof;
                return 0;
        }
        if (len > 0)
                r = execution_write_stdin(s->exec, data, len);
        if (r >= 0 && eof)
                r = execution_write_stdin(s->exec, NULL, 0);
        return r;
}

int run_signal(Run *s, int sig) {
        if (!s->exec || s->done)
                return -ESRCH;
        return execution_signal(s->exec, sig);
}

void run_pause(Run *s, bool pause) {
        if (s->paused == pause)
                return;
        s->paused = pause;
        if (s->exec && !s->done)
                execution_pause_output(s->exec, pause);
}
