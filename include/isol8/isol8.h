/* SPDX-License-Identifier: MIT */
/* libisol8: a client for the isol8 HTTP API (libcurl). Streaming runs use the WebSocket route
 * and fall back to Server-Sent Events when the server, or a proxy in between, does not upgrade.
 * Functions return 0 or a negative errno; isol8_client_error() describes the last failure. */
#ifndef ISOL8_ISOL8_H
#define ISOL8_ISOL8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct isol8_client isol8_client;

typedef struct isol8_result {
        int exit_code;
        char *stdout_text;
        char *stderr_text;
        bool truncated;
        bool timed_out;
        char *execution_id;
        long duration_ms;
        char *json;          /* the whole answer */
} isol8_result;

typedef enum isol8_transport {
        ISOL8_TRANSPORT_AUTO,       /* WebSocket, falling back to SSE */
        ISOL8_TRANSPORT_WEBSOCKET,
        ISOL8_TRANSPORT_SSE,
} isol8_transport;

typedef struct isol8_stream_callbacks {
        /* type: "stdout", "stderr", "error" or "exit"; phase may be NULL. */
        void (*on_event)(const char *type, const char *data, const char *phase, void *userdata);
        /* WebSocket only: called when the client may send stdin (isol8_stream_send_stdin). */
        int stdin_fd;               /* forwarded to the program while it runs; -1: none */
} isol8_stream_callbacks;

int isol8_client_new(isol8_client **ret, const char *url, const char *key);
void isol8_client_free(isol8_client *c);
void isol8_client_set_timeout(isol8_client *c, long connect_ms);
void isol8_client_set_transport(isol8_client *c, isol8_transport t);
/* The transport the last streamed run used. */
isol8_transport isol8_client_last_transport(isol8_client *c);
const char *isol8_client_error(isol8_client *c);
/* HTTP status of the last answer (0 if none). */
long isol8_client_status(isol8_client *c);

int isol8_health(isol8_client *c, char **ret_version);
/* envelope: {"request": {...}, "options"?: {...}, "sessionId"?: "..."} as JSON text. */
int isol8_execute(isol8_client *c, const char *envelope, isol8_result **ret);
int isol8_execute_stream(isol8_client *c, const char *envelope, const isol8_stream_callbacks *cb, void *userdata,
                         int *ret_exit_code);
void isol8_result_free(isol8_result *r);

int isol8_file_put(isol8_client *c, const char *session_id, const char *path, const void *data, size_t size);
int isol8_file_get(isol8_client *c, const char *session_id, const char *path, void **ret, size_t *ret_size);
int isol8_sessions(isol8_client *c, char **ret_json);
int isol8_session_delete(isol8_client *c, const char *session_id);
/* POST /auth/login with the master key: a short-lived key. */
int isol8_login(isol8_client *c, const char *name, uint64_t ttl_ms, char **ret_token, char **ret_expires, char **ret_key_id);

#ifdef __cplusplus
}
#endif
#endif
