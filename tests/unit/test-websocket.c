/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/websocket.h"
#include "shared/stream-filter.h"
#include "tap.h"

static size_t client_frame(uint8_t *out, uint8_t first, const uint8_t *payload, size_t len, bool mask) {
        static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
        size_t n = 0;
        out[n++] = first;
        if (len < 126)
                out[n++] = (uint8_t) len | (mask ? 0x80 : 0);
        else if (len <= 0xffff) {
                out[n++] = 126 | (mask ? 0x80 : 0);
                out[n++] = (uint8_t) (len >> 8);
                out[n++] = (uint8_t) len;
        } else {
                out[n++] = 127 | (mask ? 0x80 : 0);
                for (int i = 0; i < 8; i++)
                        out[n++] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
        }
        if (mask) {
                memcpy(out + n, key, 4);
                n += 4;
        }
        for (size_t i = 0; i < len; i++)
                out[n + i] = payload[i] ^ (mask ? key[i & 3] : 0);
        return n + len;
}

static void check_length(size_t len) {
        uint8_t *payload = malloc(len + 1), *buf = malloc(len + 16);
        WsFrame f;
        size_t n;
        for (size_t i = 0; i < len; i++)
                payload[i] = (uint8_t) (i * 7);
        n = client_frame(buf, 0x81, payload, len, true);
        CHECK(ws_parse_frame(buf, n, 1 << 20, &f) == (ssize_t) n && f.length == len && f.fin && f.masked &&
              memcmp(f.payload, payload, len) == 0);
        /* every truncation asks for more */
        n = client_frame(buf, 0x81, payload, len, true);
        CHECK(ws_parse_frame(buf, n - 1, 1 << 20, &f) == 0);
        CHECK(ws_parse_frame(buf, 1, 1 << 20, &f) == 0);
        free(payload);
        free(buf);
}

int main(void) {
        uint8_t buf[256], big[16];
        WsFrame f;
        WsMessage m = {};
        Buffer out = {};
        char accept[29];

        /* RFC 6455's own example */
        CHECK(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", accept) == 0);
        CHECK_STREQ(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

        /* "Hello", masked, from RFC 6455 5.7 */
        {
                uint8_t hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
                CHECK(ws_parse_frame(hello, sizeof(hello), 1024, &f) == (ssize_t) sizeof(hello));
                CHECK(f.opcode == WS_OP_TEXT && f.length == 5 && memcmp(f.payload, "Hello", 5) == 0);
        }

        check_length(0);
        check_length(125);
        check_length(126);
        check_length(127);
        check_length(65535);
        check_length(65536);

        /* limits */
        {
                size_t n = client_frame(buf, 0x81, (const uint8_t *) "abcdef", 6, true);
                CHECK(ws_parse_frame(buf, n, 5, &f) == -EMSGSIZE);
                /* a 64-bit length far over the limit is refused from the header alone */
                memcpy(big, (uint8_t[]) { 0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0 }, 10);
                CHECK(ws_parse_frame(big, 10, 1 << 20, &f) == -EMSGSIZE);
                memcpy(big, (uint8_t[]) { 0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 10);
                CHECK(ws_parse_frame(big, 10, 1 << 20, &f) == -EPROTO);   /* top bit set */
                memcpy(big, (uint8_t[]) { 0x81, 0xfe, 0, 10 }, 4);
                CHECK(ws_parse_frame(big, 4, 1 << 20, &f) == -EPROTO);    /* non-minimal 16-bit length */
                memcpy(big, (uint8_t[]) { 0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 100 }, 10);
                CHECK(ws_parse_frame(big, 10, 1 << 20, &f) == -EPROTO);   /* non-minimal 64-bit length */
        }
        /* protocol violations */
        {
                size_t n = client_frame(buf, 0xc1, (const uint8_t *) "x", 1, true);   /* RSV1 */
                CHECK(ws_parse_frame(buf, n, 1024, &f) == -EPROTO);
                n = client_frame(buf, 0x83, (const uint8_t *) "x", 1, true);          /* reserved opcode */
                CHECK(ws_parse_frame(buf, n, 1024, &f) == -EPROTO);
                n = client_frame(buf, 0x09, (const uint8_t *) "x", 1, true);          /* fragmented ping */
                CHECK(ws_parse_frame(buf, n, 1024, &f) == -EPROTO);
                memset(buf + 100, 'p', 126);
                n = client_frame(buf, 0x89, buf + 100, 126, true);                    /* ping over 125 */
                CHECK(ws_parse_frame(buf, n, 1024, &f) == -EPROTO);
                n = client_frame(buf, 0x81, (const uint8_t *) "ok", 2, false);        /* unmasked is parsed, flagged */
                CHECK(ws_parse_frame(buf, n, 1024, &f) == (ssize_t) n && !f.masked);
        }
        /* fragmentation */
        {
                size_t n1 = client_frame(buf, 0x01, (const uint8_t *) "Hel", 3, true);
                size_t n2 = client_frame(buf + n1, 0x00, (const uint8_t *) "lo ", 3, true);
                size_t n3 = client_frame(buf + n1 + n2, 0x89, (const uint8_t *) "", 0, true);   /* ping in between */
                size_t n4 = client_frame(buf + n1 + n2 + n3, 0x80, (const uint8_t *) "you", 3, true);
                ssize_t k;
                size_t off = 0;
                int got = 0, pings = 0;
                while (off < n1 + n2 + n3 + n4 && (k = ws_parse_frame(buf + off, n1 + n2 + n3 + n4 - off, 1024, &f)) > 0) {
                        off += (size_t) k;
                        if (f.opcode == WS_OP_PING) {
                                pings++;
                                continue;
                        }
                        got = ws_message_feed(&m, &f, 1024);
                }
                CHECK(got == 1 && pings == 1 && m.opcode == WS_OP_TEXT && m.data.size == 9 && memcmp(m.data.data, "Hello you", 9) == 0);
                ws_message_reset(&m);
                n1 = client_frame(buf, 0x80, (const uint8_t *) "x", 1, true);   /* continuation without a start */
                CHECK(ws_parse_frame(buf, n1, 1024, &f) > 0 && ws_message_feed(&m, &f, 1024) == -EPROTO);
                ws_message_reset(&m);
                n1 = client_frame(buf, 0x01, (const uint8_t *) "abc", 3, true);
                CHECK(ws_parse_frame(buf, n1, 1024, &f) > 0 && ws_message_feed(&m, &f, 4) == 0);
                n1 = client_frame(buf, 0x80, (const uint8_t *) "de", 2, true);
                CHECK(ws_parse_frame(buf, n1, 1024, &f) > 0 && ws_message_feed(&m, &f, 4) == -EMSGSIZE);
                ws_message_reset(&m);
        }
        /* server frames */
        CHECK(ws_append_frame(&out, WS_OP_TEXT, "hi", 2) == 0 && out.size == 4 && (uint8_t) out.data[0] == 0x81 && out.data[1] == 2);
        buffer_done(&out);
        {
                char *p = calloc(1, 70000);
                CHECK(ws_append_frame(&out, WS_OP_BINARY, p, 300) == 0 && out.size == 304 && (uint8_t) out.data[1] == 126);
                buffer_done(&out);
                CHECK(ws_append_frame(&out, WS_OP_BINARY, p, 70000) == 0 && out.size == 70010 && (uint8_t) out.data[1] == 127);
                buffer_done(&out);
                free(p);
        }
        CHECK(ws_append_close(&out, 1003, "Invalid JSON message") == 0 && (uint8_t) out.data[0] == 0x88 &&
              (uint8_t) out.data[2] == 0x03 && (uint8_t) out.data[3] == 0xeb);
        buffer_done(&out);

        /* the streaming filter: secrets and UTF-8 split across chunks */
        {
                char *secrets[] = { (char *) "hunter2", NULL };
                StreamFilter sf;
                const char *chunks[] = { "pw=hun", "te", "r2!", " \xc3", "\xa9", " end hun" };
                SecretMask *mask = NULL;
                CHECK(secret_mask_new(secrets, &mask) == 0);
                stream_filter_init(&sf, mask);
                for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
                        CHECK(stream_filter_feed(&sf, chunks[i], strlen(chunks[i]), false, &out) == 0);
                CHECK(stream_filter_feed(&sf, NULL, 0, true, &out) == 0);
                CHECK_STREQ(out.data, "pw=***! \xc3\xa9 end hun");
                buffer_done(&out);
                stream_filter_done(&sf);
                secret_mask_free(mask);
                stream_filter_init(&sf, NULL);
                CHECK(stream_filter_feed(&sf, "ok\xff", 3, false, &out) == 0);
                CHECK_STREQ(out.data, "ok\xef\xbf\xbd");
                buffer_done(&out);
                stream_filter_done(&sf);
        }
        return tap_done();
}
