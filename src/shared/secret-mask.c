/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/secret-mask.h"
#include "shared/util.h"

/* A trie node; children are a sibling list (the alphabet is sparse and patterns are few). */
typedef struct Node {
        uint32_t child;         /* first child, 0: none (node 0 is the root, never a child) */
        uint32_t sibling;
        uint32_t fail;          /* longest proper suffix that is in the trie */
        uint32_t out;           /* nearest node on the fail chain (itself included) ending a secret, 0: none */
        uint32_t depth;
        uint32_t terminal;      /* length of the secret ending here, 0: none */
        uint8_t byte;
} Node;

struct SecretMask {
        Node *nodes;
        size_t n_nodes;
        size_t max_len;
};

static uint32_t child_of(const SecretMask *m, uint32_t n, uint8_t b) {
        for (uint32_t c = m->nodes[n].child; c; c = m->nodes[c].sibling)
                if (m->nodes[c].byte == b)
                        return c;
        return 0;
}

/* The automaton's transition, following fail links as needed. */
static uint32_t step(const SecretMask *m, uint32_t n, uint8_t b) {
        for (;;) {
                uint32_t c = child_of(m, n, b);
                if (c)
                        return c;
                if (n == 0)
                        return 0;
                n = m->nodes[n].fail;
        }
}

SecretMask *secret_mask_free(SecretMask *m) {
        if (m) {
                free(m->nodes);
                free(m);
        }
        return NULL;
}

int secret_mask_new(char *const *secrets, SecretMask **ret) {
        _cleanup_(secret_mask_freep) SecretMask *m = NULL;
        _cleanup_free_ uint32_t *queue = NULL;
        size_t total = 1, head = 0, tail = 0;

        *ret = NULL;
        for (char *const *s = secrets; s && *s; s++)
                total += strlen(*s);
        if (total == 1)
                return 0;
        if (total > UINT32_MAX / 2)
                return -E2BIG;
        m = calloc(1, sizeof(SecretMask));
        if (!m)
                return -ENOMEM;
        m->nodes = calloc(total, sizeof(Node));
        queue = calloc(total, sizeof(uint32_t));
        if (!m->nodes || !queue)
                return -ENOMEM;
        m->n_nodes = 1;
        for (char *const *s = secrets; *s; s++) {
                size_t l = strlen(*s);
                uint32_t n = 0;
                for (size_t i = 0; i < l; i++) {
                        uint8_t b = (uint8_t) (*s)[i];
                        uint32_t c = child_of(m, n, b);
                        if (!c) {
                                c = (uint32_t) m->n_nodes++;
                                m->nodes[c] = (Node) { .sibling = m->nodes[n].child, .byte = b, .depth = (uint32_t) i + 1 };
                                m->nodes[n].child = c;
                        }
                        n = c;
                }
                if (l > 0)
                        m->nodes[n].terminal = (uint32_t) l;
                m->max_len = MAX(m->max_len, l);
        }
        /* Breadth first: fail and output links. */
        for (uint32_t c = m->nodes[0].child; c; c = m->nodes[c].sibling)
                queue[tail++] = c;
        while (head < tail) {
                uint32_t n = queue[head++];
                Node *nd = &m->nodes[n];
                nd->out = nd->terminal ? n : m->nodes[nd->fail].out;
                for (uint32_t c = nd->child; c; c = m->nodes[c].sibling) {
                        uint32_t f = nd->fail;
                        uint32_t t = 0;
                        for (;;) {
                                t = child_of(m, f, m->nodes[c].byte);
                                if (t || f == 0)
                                        break;
                                f = m->nodes[f].fail;
                        }
                        m->nodes[c].fail = t;
                        queue[tail++] = c;
                }
        }
        *ret = TAKE_PTR(m);
        return 0;
}

char *secret_mask_apply(const SecretMask *m, const char *s, size_t len, bool final, size_t *ret_len, size_t *ret_consumed) {
        _cleanup_free_ uint32_t *longest = NULL;   /* longest secret starting at each position */
        Buffer b = {};
        uint32_t state = 0;
        size_t stop, i = 0;

        longest = calloc(len + 1, sizeof(uint32_t));
        if (!longest)
                return NULL;
        for (size_t e = 0; e < len; e++) {
                state = step(m, state, (uint8_t) s[e]);
                for (uint32_t o = m->nodes[state].out; o; o = m->nodes[m->nodes[o].fail].out) {
                        uint32_t l = m->nodes[o].terminal;
                        size_t start = e + 1 - l;
                        longest[start] = MAX(longest[start], l);
                }
        }
        /* A tail that may still grow into a secret waits for more input (final: nothing waits). */
        stop = final ? len : len - m->nodes[state].depth;
        while (i < stop) {
                if (longest[i]) {
                        if (buffer_append(&b, "***", 3) < 0)
                                goto fail;
                        i += longest[i];
                        continue;
                }
                size_t j = i + 1;
                while (j < stop && !longest[j])
                        j++;
                if (buffer_append(&b, s + i, j - i) < 0)
                        goto fail;
                i = j;
        }
        if (buffer_append(&b, "", 0) < 0)
                goto fail;
        *ret_len = b.size;
        *ret_consumed = i;
        return buffer_steal_string(&b);
fail:
        buffer_done(&b);
        return NULL;
}
