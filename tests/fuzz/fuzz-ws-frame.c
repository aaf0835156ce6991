/* SPDX-License-Identifier: MIT */
/* Fuzz target for the WebSocket frame parser and message reassembly. Built with libFuzzer when
 * the compiler is clang (-Dfuzz=true); otherwise fuzz-main.c replays it over seeds and a
 * deterministic stream of random inputs as a unit test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/websocket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *buf = malloc(size + 1);
        WsMessage msg = {};
        size_t off = 0;

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        while (off < size) {
                WsFrame f;
                ssize_t k = ws_parse_frame(buf + off, size - off, 4096, &f);
                if (k <= 0)
                        break;
                if ((size_t) k > size - off)
                        abort();
                if (f.payload < buf + off || f.payload + f.length > buf + off + k)
                        abort();
                off += (size_t) k;
                if (f.opcode < WS_OP_CLOSE && ws_message_feed(&msg, &f, 8192) != 0)
                        ws_message_reset(&msg);
        }
        ws_message_reset(&msg);
        free(buf);
        return 0;
}
