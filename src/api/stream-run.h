/* SPDX-License-Identifier: MIT */
#pragma once

#include "api/api.h"

/* A streamed execution, shared by SSE and WebSocket: takes an execution slot, runs the request
 * and turns its output into event objects ({"type","data","phase"}) for a transport. */

typedef struct StreamRun StreamRun;

typedef struct StreamSinkOps {
        /* One event, as JSON text. */
        void (*event)(void *userdata, const char *json, size_t len);
        /* The run is over and every event was given; the run may be freed now. */
        void (*done)(void *userdata);
} StreamSinkOps;

/* Takes req. -EBUSY: the queue is full (nothing started). */
int stream_run_start(ApiContext *ctx, ExecRequest *req, bool interactive, const StreamSinkOps *ops, void *userdata,
                     StreamRun **ret);
StreamRun *stream_run_free(StreamRun *s);
/* The client went away: end the run and free its sandbox; done follows. */
void stream_run_cancel(StreamRun *s);
int stream_run_stdin(StreamRun *s, const char *data, size_t len, bool eof);
int stream_run_signal(StreamRun *s, int sig);
void stream_run_pause(StreamRun *s, bool pause);
bool stream_run_is_done(StreamRun *s);
