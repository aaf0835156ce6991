/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

/* isol8ctl talks to the daemon over D-Bus (org.isol8.Daemon1); the bus interface is not part of
 * this build yet, so every verb says so plainly. */
int main(int argc, char **argv) {
        if (argc >= 2 && (strcmp(argv[1], "--version") == 0)) {
                printf("isol8ctl %s\n", ISOL8_VERSION);
                return 0;
        }
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                printf("isol8ctl %s — administer an isol8 daemon over D-Bus\n"
                       "Usage: isol8ctl [--version] [--help]\n", ISOL8_VERSION);
                return 0;
        }
        fprintf(stderr, "isol8ctl: the D-Bus control interface is not available in this build yet.\n");
        return 1;
}
