/* SPDX-License-Identifier: MIT */
/* isol8 run without --host: a Manager with no transports on this machine, so that a local run
 * is validated, limited and audited exactly as a run on a server. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/render.h"
#include "api/request.h"
#include "client/local.h"
#include "core/manager.h"
#include "core/run.h"
#include "shared/json-util.h"
#include "shared/log.h"

typedef struct Local {
        sd_event *event;
        FILE *out;
        Run *run;
        sd_event_source *stdin_source;
        int error;
        Outcome outcome;
        char *message;
        int exit_code;
} Local;

static void on_event(void *userdata, const RunEvent *ev) {
        Local *l = userdata;
        char buf[160];

        switch (ev->type) {
        case RUN_EVENT_OUTPUT:
                fwrite(ev->data, 1, ev->size, ev->stream == EXEC_STDOUT ? l->out : stderr);
                fflush(ev->stream == EXEC_STDOUT ? l->out : stderr);
                break;
        case RUN_EVENT_TRUNCATED:
        case RUN_EVENT_TIMED_OUT:
        case RUN_EVENT_SETUP_FAILED:
                fprintf(stderr, "%s\n", api_event_marker_line(ev, buf, sizeof(buf)));
                break;
        default:
                break;
        }
}

static void on_done(void *userdata, int error, Outcome outcome, const char *message, const ExecResult *res,
                    const ExecRequest *req) {
        Local *l = userdata;

        l->error = error;
        l->outcome = outcome;
        l->message = message ? strdup(message) : NULL;
        if (res)
                l->exit_code = res->exit_code;
        (void) sd_event_exit(l->event, 0);
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Local *l = userdata;
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n > 0)
                (void) run_stdin(l->run, buf, (size_t) n, false);
        else {
                (void) run_stdin(l->run, NULL, 0, true);
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        return 0;
}

int local_run(const char *envelope, FILE *out, int stdin_fd, int *ret_exit_code) {
        static const RunOps ops = { .event = on_event, .done = on_done };
        static const AuthInfo local_user = { .type = AUTH_NONE, .tenant = "@local" };
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *error = NULL;
        ExecRequest *req = NULL;
        Local l = { .out = out };
        Config config;
        sigset_t mask;
        int r;

        if (geteuid() != 0) {
                fprintf(stderr, "isol8 run: running locally needs root (the sandbox uses namespaces and cgroups); "
                                "use --host URL to run on a server\n");
                return -EPERM;
        }
        config_init(&config);
        (void) config_find_and_load(&config, NULL, NULL, &error);
        free(error);
        error = NULL;
        log_set_max_level(LOG_WARNING);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_new(&event);
        if (r >= 0)
                r = manager_new(&m, event, &config, &(ManagerOptions) { .serve = false });
        config_done(&config);
        if (r < 0) {
                fprintf(stderr, "isol8 run: cannot start the sandbox engine: %s\n", strerror(-r));
                return r;
        }
        l.event = event;
        if (json_parse_limited(envelope, strlen(envelope), 64, &o) < 0 || api_request_parse(o, &m->policy, &req, &error) < 0) {
                fprintf(stderr, "isol8 run: %s\n", error ?: "invalid request");
                return -EINVAL;
        }
        free(error);
        error = NULL;
        r = run_start(m, &local_user, NULL, req, stdin_fd >= 0, &ops, &l, &l.run, &error);
        if (r != 0) {
                fprintf(stderr, "isol8 run: %s\n", r < 0 ? strerror(-r) : error ?: outcome_message((Outcome) r));
                return r < 0 ? r : -EINVAL;
        }
        if (stdin_fd >= 0 && sd_event_add_io(event, &l.stdin_source, stdin_fd, EPOLLIN, on_stdin, &l) < 0)
                (void) run_stdin(l.run, NULL, 0, true);
        r = sd_event_loop(event);
        sd_event_source_disable_unref(l.stdin_source);
        run_free(l.run);
        if (r >= 0 && (l.error < 0 || l.outcome != OUTCOME_OK)) {
                fprintf(stderr, "isol8 run: %s\n", l.error < 0 ? "the sandbox failed" : l.message ?: outcome_message(l.outcome));
                r = l.error < 0 ? l.error : -EINVAL;
        } else if (r >= 0)
                *ret_exit_code = l.exit_code;
        free(l.message);
        return r;
}
