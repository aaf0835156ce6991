/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/render.h"
#include "shared/crypto.h"
#include "shared/json-util.h"
#include "shared/time-util.h"

#define MARKER_TIMED_OUT "EXECUTION TIMED OUT"
#define MARKER_TIMED_OUT_LINE "\n--- " MARKER_TIMED_OUT " ---"

static int marker_truncated(char *buf, size_t size, uint64_t total, uint64_t max) {
        return snprintf(buf, size, "\n\n--- OUTPUT TRUNCATED (%" PRIu64 " bytes, limit: %" PRIu64 ") ---", total, max);
}

static int marker_setup_failed(char *buf, size_t size, const char *sep, int exit_code, bool install) {
        return snprintf(buf, size, install ? "%sPackage installation failed (exit code %d)" : "%sSetup script failed (exit code %d)",
                        sep, exit_code);
}

static void trim_trailing_ws(Buffer *b) {
        while (b->size > 0 && strchr(" \t\r\n\v\f", b->data[b->size - 1]))
                b->data[--b->size] = 0;
}

char *api_result_text(const ExecResult *res, const ExecRequest *req, ExecStream stream) {
        uint64_t total = stream == EXEC_STDOUT ? res->out_total : res->err_total;
        _cleanup_free_ char *clean = NULL;
        char marker[160];
        Buffer b = {};
        size_t len;
        int r;

        clean = exec_result_output(res, req, stream, &len);
        if (!clean)
                return NULL;
        /* The cap holds for the text as JSON carries it: a control byte is six bytes there. */
        size_t keep = json_escaped_prefix(clean, len, req->limits.max_output);
        if (keep < len) {
                len = keep;
                total = MAX(total, (uint64_t) req->limits.max_output + 1);
        }
        r = buffer_append(&b, clean, len);
        trim_trailing_ws(&b);
        if (r >= 0 && total > req->limits.max_output) {
                marker_truncated(marker, sizeof(marker), total, req->limits.max_output);
                r = buffer_append(&b, marker, strlen(marker));
        }
        if (r >= 0 && stream == EXEC_STDERR && res->timed_out)
                r = buffer_append(&b, MARKER_TIMED_OUT_LINE, strlen(MARKER_TIMED_OUT_LINE));
        if (r >= 0 && stream == EXEC_STDERR && res->setup_failed) {
                marker_setup_failed(marker, sizeof(marker), b.size > 0 ? "\n" : "", res->exit_code, res->install_failed);
                r = buffer_append(&b, marker, strlen(marker));
        }
        if (r < 0) {
                buffer_done(&b);
                return NULL;
        }
        return buffer_steal_string(&b);
}

/* A number with two decimals, printed as such (not 86.579999999999998). */
static json_object *json_double2(double d) {
        char buf[64];
        long long v;

        if (!isfinite(d) || fabs(d) >= 1e15) {
                snprintf(buf, sizeof(buf), "%.2f", d);
                return json_object_new_double_s(strtod(buf, NULL), buf);
        }
        /* In hundredths, without printf's floating-point path (three per result). */
        v = llround(d * 100.0);
        snprintf(buf, sizeof(buf), "%s%lld.%02lld", v < 0 ? "-" : "", llabs(v) / 100, llabs(v) % 100);
        return json_object_new_double_s((double) v / 100.0, buf);
}

static json_object *files_json(const ExecResult *res) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        for (size_t i = 0; i < res->n_files; i++) {
                _cleanup_free_ char *b64 = base64_encode(res->files[i].data, res->files[i].size);
                if (!b64) {
                        json_object_put(o);
                        return NULL;
                }
                json_object_object_add(o, res->files[i].path, json_object_new_string(b64));
        }
        return o;
}

/* upstream's shape: {timestamp, method, host, path (null for CONNECT), action, durationMs} */
static json_object *network_logs_json(const ExecResult *res) {
        json_object *a = json_object_new_array();
        char ts[64];

        for (size_t i = 0; a && i < res->n_net_log; i++) {
                const ProxyLogEntry *l = &res->net_log[i];
                json_object *e = json_object_new_object();
                if (!e || json_object_array_add(a, e) < 0) {
                        json_object_put(e);
                        json_object_put(a);
                        return NULL;
                }
                json_add(e, "timestamp", json_object_new_string(format_iso8601(l->timestamp_usec, ts)));
                json_add(e, "method", json_object_new_string(l->method));
                json_add(e, "host", json_object_new_string(l->host ?: ""));
                json_add(e, "path", l->path ? json_object_new_string(l->path) : NULL);
                json_add(e, "action", json_object_new_string(l->allowed ? "ALLOW" : "BLOCK"));
                json_add(e, "durationMs", json_object_new_int64((int64_t) l->duration_ms));
        }
        return a;
}

json_object *api_result_json(const ExecResult *res, const ExecRequest *req) {
        _cleanup_free_ char *out = api_result_text(res, req, EXEC_STDOUT);
        _cleanup_free_ char *err = api_result_text(res, req, EXEC_STDERR);
        json_object *o = json_object_new_object(), *ru = json_object_new_object();
        char ts[64];

        if (!o || !ru || !out || !err) {
                json_object_put(o);
                json_object_put(ru);
                return NULL;
        }
        json_add(o, "stdout", json_object_new_string(out));
        json_add(o, "stderr", json_object_new_string(err));
        json_add(o, "exitCode", json_object_new_int(res->exit_code));
        json_add(o, "durationMs", json_object_new_int64((int64_t) res->duration_ms));
        json_add(o, "truncated", json_object_new_boolean(res->truncated));
        json_add(o, "executionId", json_object_new_string(res->execution_id));
        json_add(o, "runtime", json_object_new_string(runtime_to_string(req->runtime)));
        json_add(o, "timestamp", json_object_new_string(format_iso8601(res->started_realtime_usec, ts)));
        json_add(o, "containerId", json_object_new_string(res->container_id));
        if (res->files)
                json_add(o, "files", files_json(res));
        json_add(ru, "cpuPercent", json_double2(res->cpu_percent));
        json_add(ru, "memoryMB", json_double2(res->memory_mb));
        json_add(ru, "peakMemoryMB", json_double2(res->peak_memory_mb));
        json_add(ru, "networkBytesIn", json_object_new_int64((int64_t) res->net_in));
        json_add(ru, "networkBytesOut", json_object_new_int64((int64_t) res->net_out));
        json_add(o, "resourceUsage", ru);
        json_add(o, "timedOut", json_object_new_boolean(res->timed_out));
        json_add(o, "oomKilled", json_object_new_boolean(res->oom_killed));
        json_add(o, "pidsLimitHit", json_object_new_boolean(res->pids_limited));
        if (res->signal > 0)
                json_add(o, "signal", json_object_new_string(sigabbrev_np(res->signal) ?: "?"));
        if (req->log_network)
                json_add(o, "networkLogs", network_logs_json(res));
        return o;
}

const char *api_phase_name(ExecPhase p) {
        return p == EXEC_PHASE_SETUP ? "setup" : "code";
}

const char *api_event_type(const RunEvent *ev) {
        switch (ev->type) {
        case RUN_EVENT_OUTPUT:
        case RUN_EVENT_TRUNCATED:
                return ev->stream == EXEC_STDOUT ? "stdout" : "stderr";
        case RUN_EVENT_EXIT:
                return "exit";
        default:
                return "error";
        }
}

/* The text of an event's "data": ev->data itself (output and errors, NUL-terminated) or the
 * marker written into buf. */
static const char *event_data(const RunEvent *ev, char *buf, size_t size) {
        switch (ev->type) {
        case RUN_EVENT_OUTPUT:
        case RUN_EVENT_ERROR:
                return ev->data ?: "";
        case RUN_EVENT_TRUNCATED:
                marker_truncated(buf, size, ev->total, ev->max);
                return buf;
        case RUN_EVENT_TIMED_OUT:
                return MARKER_TIMED_OUT;
        case RUN_EVENT_SETUP_FAILED:
                marker_setup_failed(buf, size, "", ev->exit_code, ev->install);
                return buf;
        case RUN_EVENT_EXIT:
                snprintf(buf, size, "%d", ev->exit_code);
                return buf;
        default:
                return "";
        }
}

const char *api_event_marker_line(const RunEvent *ev, char *buf, size_t size) {
        switch (ev->type) {
        case RUN_EVENT_TRUNCATED:
                marker_truncated(buf, size, ev->total, ev->max);
                return buf;
        case RUN_EVENT_TIMED_OUT:
                return MARKER_TIMED_OUT_LINE;
        case RUN_EVENT_SETUP_FAILED:
                marker_setup_failed(buf, size, "\n", ev->exit_code, ev->install);
                return buf;
        default:
                return NULL;
        }
}

json_object *api_event_object(const RunEvent *ev) {
        json_object *o = json_object_new_object();
        char buf[160];

        if (!o)
                return NULL;
        if (json_add(o, "type", json_object_new_string(api_event_type(ev))) < 0 ||
            json_add(o, "data", json_object_new_string(event_data(ev, buf, sizeof(buf)))) < 0 ||
            json_add(o, "phase", json_object_new_string(api_phase_name(ev->phase))) < 0 ||
            (ev->network_log && json_add(o, "networkLogs", network_logs_json(ev->network_log)) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

const char *api_event_text(json_object *o, size_t *ret_len) {
        return json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, ret_len);
}
