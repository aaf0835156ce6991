/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>

#include "core/execution.h"
#include "core/run.h"

/* The wire format of results and events, in one place: /execute's JSON, the events of SSE and
 * WebSocket, and the text the local CLI prints, with API.md's output markers. */

/* Output text of a stream as API.md gives it: the kept output (secrets masked, invalid UTF-8
 * replaced), capped as JSON carries it, trailing whitespace trimmed, and the truncation,
 * timeout and setup-failure markers appended. */
char *api_result_text(const ExecResult *res, const ExecRequest *req, ExecStream stream);
/* The ExecutionResult object of API.md. */
json_object *api_result_json(const ExecResult *res, const ExecRequest *req);
/* One {"type","data","phase"} event (json_object_put() it), and its text, which lives as long
 * as the object: no copies on the way to the socket. */
json_object *api_event_object(const RunEvent *ev);
const char *api_event_text(json_object *o, size_t *ret_len);
/* A marker event (truncated, timed out, setup failed) as the line the buffered result's stderr
 * carries, for a terminal (the local CLI); NULL for other events. buf: at least 160 bytes. */
const char *api_event_marker_line(const RunEvent *ev, char *buf, size_t size);
const char *api_event_type(const RunEvent *ev);
const char *api_phase_name(ExecPhase p);
