/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "http/http.h"
#include "sandbox/queue.h"
#include "sandbox/run.h"
#include "sandbox/spec.h"

/* What the route handlers may use; filled by the daemon, which owns every part. */
typedef struct ApiContext {
        sd_event *event;
        ExecContext exec;
        SpecPolicy policy;
        ExecQueue *queue;
        uint64_t sse_keepalive_usec;
        bool shutting_down;
        uint64_t total_executions;
        unsigned active_executions;
        /* Requests with work outstanding, so shutdown can cancel them. */
        struct ApiCall *calls;
        struct StreamRun *streams;
} ApiContext;

const Route *api_routes(size_t *ret_n);

/* Cancels every outstanding execution (shutdown); their replies follow from the loop. */
void api_cancel_all(ApiContext *ctx);
unsigned api_n_calls(ApiContext *ctx);
/* Streamed runs (SSE and WebSocket) under way. */
void api_cancel_streams(ApiContext *ctx);
unsigned api_n_streams(ApiContext *ctx);

int api_health(HttpRequest *r, void *userdata);
int api_execute(HttpRequest *r, void *userdata);
int api_queue_status(HttpRequest *r, void *userdata);
int api_execute_stream(HttpRequest *r, void *userdata);
int api_execute_ws(HttpRequest *r, void *userdata);
