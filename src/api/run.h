/* SPDX-License-Identifier: MIT */
#pragma once

#include "api/api.h"

/* One execution as the routes see it, buffered or streamed: take a turn in the session (if
 * any), an execution slot, run, and report. Events ({"type","data","phase"} JSON) go to a
 * streaming transport as the program writes; the end comes to done(). */

typedef struct ApiRun ApiRun;

typedef struct ApiRunOps {
        /* Streaming transports only (NULL for buffered runs): one event as JSON text. */
        void (*event)(void *userdata, const char *json, size_t len);
        /* The run is over. error < 0 when it never ran or the engine failed (message says why;
         * streaming runs already got an error event); otherwise res holds the outcome. The
         * run may be freed from here. */
        void (*done)(void *userdata, int error, const char *message, const ExecResult *res, const ExecRequest *req);
} ApiRunOps;

/* Takes req. Synchronous refusals: -EBUSY queue full, -EUSERS session limit, -EXDEV runtime
 * switch, -ENOENT unknown session, -EINVAL bad session id; *ret_error has the message. */
int api_run_start(ApiContext *ctx, const AuthInfo *who, const char *remote_addr, ExecRequest *req, bool interactive,
                  const ApiRunOps *ops, void *userdata, ApiRun **ret, char **ret_error);
ApiRun *api_run_free(ApiRun *r);
/* The client went away or the server stops: end the run; done follows. */
void api_run_cancel(ApiRun *r);
int api_run_stdin(ApiRun *r, const char *data, size_t len, bool eof);
int api_run_signal(ApiRun *r, int sig);
void api_run_pause(ApiRun *r, bool pause);

/* Maps a refusal to its HTTP status. */
unsigned api_run_error_status(int error);
