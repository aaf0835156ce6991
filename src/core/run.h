/* SPDX-License-Identifier: MIT */
#pragma once

#include "core/manager.h"

/* One execution as a client asked for it, buffered or streamed: a turn in the session (if
 * any), an execution slot, the run, its audit record, and the outcome. A streaming transport
 * gets the run's events as they happen (RunEvent); the end comes to done(). Rendering events
 * and results for a wire is the transport's business (api/render.c). */

typedef enum RunEventType {
        RUN_EVENT_OUTPUT,       /* stream, data: output as the program writes it (secrets masked) */
        RUN_EVENT_TRUNCATED,    /* stream, total, max: output past the limit was dropped */
        RUN_EVENT_TIMED_OUT,
        RUN_EVENT_SETUP_FAILED, /* exit_code */
        RUN_EVENT_EXIT,         /* exit_code (phase setup: the setup script succeeded) */
        RUN_EVENT_ERROR,        /* data: the run could not go on (message) */
} RunEventType;

typedef struct RunEvent {
        RunEventType type;
        ExecPhase phase;
        ExecStream stream;
        const char *data;
        size_t size;
        int exit_code;
        uint64_t total;
        uint64_t max;
        bool install;               /* RUN_EVENT_SETUP_FAILED: it was request.installPackages */
        /* The final exit of a run that asked for options.logNetwork: its networkLogs. */
        const ExecResult *network_log;
} RunEvent;

typedef struct RunOps {
        /* Streaming transports only (NULL for buffered runs). */
        void (*event)(void *userdata, const RunEvent *ev);
        /* The run is over. error < 0: an internal failure; outcome > 0: it never ran or ended
         * early for a documented reason (message says why; streaming runs already got an error
         * event); otherwise res holds the result. The run may be freed from here. */
        void (*done)(void *userdata, int error, Outcome outcome, const char *message, const ExecResult *res,
                     const ExecRequest *req);
} RunOps;

/* Takes req. Returns 0 (done() follows), an Outcome refused at once (queue full, session limit,
 * runtime switch, unknown session, bad session id, shutting down; *ret_message may say more),
 * or < 0. */
int run_start(Manager *m, const AuthInfo *who, const char *remote_addr, ExecRequest *req, bool interactive,
              const RunOps *ops, void *userdata, Run **ret, char **ret_message);
Run *run_free(Run *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Run *, run_free);
/* The client went away or the server stops: end the run; done() follows. */
void run_cancel(Run *r);
int run_stdin(Run *r, const char *data, size_t len, bool eof);
int run_signal(Run *r, int sig);
void run_pause(Run *r, bool pause);
Run *run_next(Run *r);
