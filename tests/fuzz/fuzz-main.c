/* SPDX-License-Identifier: MIT */
/* Replays a fuzz target without libFuzzer, as a unit test: each seed given, then 20000 inputs
 * made by mutating the seeds (bytes flipped, inserted, removed, runs duplicated, cut short)
 * with a fixed random sequence, so that a failure always comes back. Prints TAP. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEEDS_MAX 256
#define INPUT_MAX 4096

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint64_t next(void) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
}

/* One mutation of buf (len bytes, room for INPUT_MAX); returns the new length. (MIN() evaluates
 * its arguments twice: next() is never called inside it.) */
static size_t mutate(uint8_t *buf, size_t len) {
        size_t pos = len ? next() % len : 0;

        switch (next() % 6) {
        case 0:         /* flip a bit */
                if (len)
                        buf[pos] ^= (uint8_t) (1u << (next() % 8));
                return len;
        case 1:         /* an interesting byte */
                if (len)
                        buf[pos] = (uint8_t) "\0\xff\x7f\x80{}[]\",:\\0123456789-e."[next() % 23];
                return len;
        case 2:         /* insert a byte */
                if (len >= INPUT_MAX)
                        return len;
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = (uint8_t) next();
                return len + 1;
        case 3:         /* remove a run */
                if (len) {
                        size_t want = (size_t) (next() % 8) + 1, n = MIN(want, len - pos);
                        memmove(buf + pos, buf + pos + n, len - pos - n);
                        return len - n;
                }
                return len;
        case 4: {       /* duplicate a run */
                size_t want = (size_t) (next() % 16) + 1, n = MIN(want, len - pos);
                if (len + n > INPUT_MAX)
                        return len;
                memmove(buf + pos + n, buf + pos, len - pos);
                return len + n;
        }
        default:        /* cut short */
                return pos;
        }
}

int main(int argc, char **argv) {
        char *seeds[SEEDS_MAX];
        size_t sizes[SEEDS_MAX];
        uint8_t *buf = malloc(INPUT_MAX + 16);
        int n = 0, n_seeds = 0;

        if (!buf)
                return 1;
        for (int i = 1; i < argc && n_seeds < SEEDS_MAX; i++) {
                char *data = NULL;
                size_t size = 0;
                if (read_full_file(argv[i], &data, INPUT_MAX, &size) < 0) {
                        printf("not ok %d - read %s\n", ++n, argv[i]);
                        continue;
                }
                LLVMFuzzerTestOneInput((const uint8_t *) data, size);
                printf("ok %d - seed %s\n", ++n, argv[i]);
                seeds[n_seeds] = data;
                sizes[n_seeds++] = size;
        }
        for (int i = 0; i < 20000; i++) {
                size_t len = 0;
                if (n_seeds > 0) {
                        int s = (int) (next() % (uint64_t) n_seeds);
                        len = MIN(sizes[s], (size_t) INPUT_MAX);
                        memcpy(buf, seeds[s], len);
                } else
                        for (; len < 64; len++)
                                buf[len] = (uint8_t) next();
                for (uint64_t m = next() % 4 + 1; m > 0; m--)
                        len = mutate(buf, len);
                LLVMFuzzerTestOneInput(buf, len);
        }
        printf("ok %d - 20000 mutated inputs\n1..%d\n", n + 1, n + 1);
        for (int i = 0; i < n_seeds; i++)
                free(seeds[i]);
        free(buf);
        return 0;
}
