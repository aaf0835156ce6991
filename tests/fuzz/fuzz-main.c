/* SPDX-License-Identifier: MIT */
/* Replays a fuzz target without libFuzzer: each file given, then 20000 generated inputs that
 * lean towards valid frame headers. Prints TAP. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
        uint64_t state = 0x9e3779b97f4a7c15ull;
        uint8_t buf[600];
        int n = 0;

        for (int i = 1; i < argc; i++) {
                char *data = NULL;
                size_t size = 0;
                if (read_full_file(argv[i], &data, 1 << 20, &size) < 0) {
                        printf("not ok %d - read %s\n", ++n, argv[i]);
                        continue;
                }
                LLVMFuzzerTestOneInput((const uint8_t *) data, size);
                free(data);
                printf("ok %d - seed %s\n", ++n, argv[i]);
        }
        for (int i = 0; i < 20000; i++) {
                size_t len = 0;
                state ^= state << 13, state ^= state >> 7, state ^= state << 17;
                len = state % sizeof(buf);
                for (size_t j = 0; j < len; j++) {
                        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
                        buf[j] = (uint8_t) state;
                }
                if (len > 2 && (state & 1)) {
                        buf[0] = (uint8_t) (0x80 | (buf[0] & 0x0f));   /* plausible header */
                        buf[1] = (uint8_t) (0x80 | (buf[1] % 130));
                }
                LLVMFuzzerTestOneInput(buf, len);
        }
        printf("ok %d - 20000 generated inputs\n1..%d\n", n + 1, n + 1);
        return 0;
}
