/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/util.h"

/* RFC 6455 framing, written by hand (Debian's libmicrohttpd has no WebSocket helper). */

enum {
        WS_OP_CONTINUATION = 0x0,
        WS_OP_TEXT = 0x1,
        WS_OP_BINARY = 0x2,
        WS_OP_CLOSE = 0x8,
        WS_OP_PING = 0x9,
        WS_OP_PONG = 0xa,
};

enum {
        WS_CLOSE_NORMAL = 1000,
        WS_CLOSE_GOING_AWAY = 1001,
        WS_CLOSE_PROTOCOL_ERROR = 1002,
        WS_CLOSE_UNSUPPORTED = 1003,
        WS_CLOSE_INVALID_DATA = 1007,
        WS_CLOSE_POLICY = 1008,
        WS_CLOSE_TOO_BIG = 1009,
        WS_CLOSE_INTERNAL = 1011,
        WS_CLOSE_TRY_AGAIN = 1013,
};

typedef struct WsFrame {
        bool fin;
        uint8_t opcode;
        bool masked;
        uint8_t *payload;     /* points into the parsed buffer, unmasked in place */
        size_t length;
} WsFrame;

/* Parses one frame at the start of buf. Returns the bytes it takes (> 0), 0 when more bytes
 * are needed, -EPROTO for a protocol violation (reserved bits, bad opcode, fragmented or
 * oversized control frame, non-minimal length), -EMSGSIZE when the payload exceeds max_payload. */
ssize_t ws_parse_frame(uint8_t *buf, size_t len, size_t max_payload, WsFrame *ret);
/* Appends an unmasked server frame. */
int ws_append_frame(Buffer *out, uint8_t opcode, const void *payload, size_t len);
int ws_append_close(Buffer *out, uint16_t code, const char *reason);
/* A client frame: masked with a random key, as RFC 6455 requires of clients. */
int ws_append_client_frame(Buffer *out, uint8_t opcode, const void *payload, size_t len);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key. */
int ws_accept_key(const char *key, char ret[29]);

/* Reassembles fragmented messages. */
typedef struct WsMessage {
        Buffer data;
        uint8_t opcode;       /* of the first frame; 0 when no message is open */
} WsMessage;

/* Feeds a data frame. Returns 1 when msg holds a complete message, 0 when more fragments are
 * expected, -EPROTO on a continuation without a start (or a new start inside a message),
 * -EMSGSIZE when the message exceeds max. */
int ws_message_feed(WsMessage *msg, const WsFrame *f, size_t max);
void ws_message_reset(WsMessage *msg);
