/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "shared/websocket.h"
#include "shared/crypto.h"

ssize_t ws_parse_frame(uint8_t *buf, size_t len, size_t max_payload, WsFrame *ret) {
        size_t need = 2, plen;
        uint8_t op;
        bool masked;

        if (len < 2)
                return 0;
        if (buf[0] & 0x70)
                return -EPROTO;              /* RSV bits without a negotiated extension */
        op = buf[0] & 0x0f;
        if (!(op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG)))
                return -EPROTO;
        masked = buf[1] & 0x80;
        plen = buf[1] & 0x7f;
        if (plen == 126) {
                need += 2;
                if (len < need)
                        return 0;
                plen = ((size_t) buf[2] << 8) | buf[3];
                if (plen < 126)
                        return -EPROTO;
        } else if (plen == 127) {
                uint64_t v = 0;
                need += 8;
                if (len < need)
                        return 0;
                for (int i = 0; i < 8; i++)
                        v = (v << 8) | buf[2 + i];
                if (v >> 63 || v < 65536)
                        return -EPROTO;
                if (v > max_payload)
                        return -EMSGSIZE;
                plen = (size_t) v;
        }
        if (op >= WS_OP_CLOSE && (plen > 125 || !(buf[0] & 0x80)))
                return -EPROTO;              /* control frames: short and never fragmented */
        if (plen > max_payload)
                return -EMSGSIZE;
        if (masked)
                need += 4;
        if (len < need || len - need < plen)
                return 0;
        ret->fin = buf[0] & 0x80;
        ret->opcode = op;
        ret->masked = masked;
        ret->payload = buf + need;
        ret->length = plen;
        if (masked) {
                const uint8_t *key = buf + need - 4;
                for (size_t i = 0; i < plen; i++)
                        ret->payload[i] ^= key[i & 3];
        }
        return (ssize_t) (need + plen);
}

int ws_append_frame(Buffer *out, uint8_t opcode, const void *payload, size_t len) {
        uint8_t h[10];
        size_t hl;
        int r;

        h[0] = 0x80 | (opcode & 0x0f);
        if (len < 126) {
                h[1] = (uint8_t) len;
                hl = 2;
        } else if (len <= 0xffff) {
                h[1] = 126;
                h[2] = (uint8_t) (len >> 8);
                h[3] = (uint8_t) len;
                hl = 4;
        } else {
                h[1] = 127;
                for (int i = 0; i < 8; i++)
                        h[2 + i] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
                hl = 10;
        }
        r = buffer_append(out, h, hl);
        if (r < 0)
                return r;
        return buffer_append(out, payload, len);
}

int ws_append_client_frame(Buffer *out, uint8_t opcode, const void *payload, size_t len) {
        uint8_t key[4];
        size_t start = out->size;
        int r;

        r = random_bytes(key, sizeof(key));
        if (r < 0)
                return r;
        r = ws_append_frame(out, opcode, payload, len);
        if (r < 0)
                return r;
        /* Set the mask bit, insert the key after the length, and mask the payload. */
        {
                uint8_t *f = (uint8_t *) out->data + start;
                size_t hl = (f[1] & 0x7f) == 126 ? 4 : (f[1] & 0x7f) == 127 ? 10 : 2;
                r = buffer_append(out, key, 4);   /* make room */
                if (r < 0)
                        return r;
                f = (uint8_t *) out->data + start;
                memmove(f + hl + 4, f + hl, len);
                memcpy(f + hl, key, 4);
                f[1] |= 0x80;
                for (size_t i = 0; i < len; i++)
                        f[hl + 4 + i] ^= key[i & 3];
        }
        return 0;
}

int ws_append_close(Buffer *out, uint16_t code, const char *reason) {
        uint8_t p[125];
        size_t rl = reason ? MIN(strlen(reason), sizeof(p) - 2) : 0;
        p[0] = (uint8_t) (code >> 8);
        p[1] = (uint8_t) code;
        if (rl)
                memcpy(p + 2, reason, rl);
        return ws_append_frame(out, WS_OP_CLOSE, p, 2 + rl);
}

int ws_accept_key(const char *key, char ret[29]) {
        static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        char buf[128];
        uint8_t sha[20];
        char *b64;
        size_t kl = strlen(key);

        if (kl == 0 || kl > 64)
                return -EINVAL;
        memcpy(buf, key, kl);
        memcpy(buf + kl, guid, sizeof(guid) - 1);
        sha1_raw(buf, kl + sizeof(guid) - 1, sha);
        b64 = base64_encode(sha, sizeof(sha));
        if (!b64)
                return -ENOMEM;
        memcpy(ret, b64, 29);
        free(b64);
        return 0;
}

int ws_message_feed(WsMessage *msg, const WsFrame *f, size_t max) {
        int r;

        if (f->opcode == WS_OP_CONTINUATION) {
                if (msg->opcode == 0)
                        return -EPROTO;
        } else {
                if (msg->opcode != 0)
                        return -EPROTO;
                msg->opcode = f->opcode;
        }
        if (msg->data.size + f->length > max)
                return -EMSGSIZE;
        r = buffer_append(&msg->data, f->payload, f->length);
        if (r < 0)
                return r;
        if (msg->data.data == NULL && (r = buffer_append(&msg->data, "", 0)) < 0)
                return r;
        return f->fin ? 1 : 0;
}

void ws_message_reset(WsMessage *msg) {
        buffer_done(&msg->data);
        msg->opcode = 0;
}
