/* SPDX-License-Identifier: MIT */
/* The isol8 program: the server (serve) and the client commands, by a table of verbs. */
#include <stdio.h>
#include <string.h>

#include "client/cli.h"
#include "daemon/serve.h"
#include "shared/macro.h"
#include "shared/util.h"

typedef struct Verb {
        const char *name;
        const char *prog;        /* how getopt and messages name it: "isol8 run: ..." */
        int (*run)(int argc, char **argv);
} Verb;

static const Verb verbs[] = {
        { "serve",   "isol8 serve",   daemon_serve },
        { "run",     "isol8 run",     cli_run },
        { "login",   "isol8 login",   cli_login },
        { "logout",  "isol8 logout",  cli_logout },
        { "session", "isol8 session", cli_session },
        { "health",  "isol8 health",  cli_health },
};

static void help(void) {
        printf("isol8 %s — run untrusted code in Linux-namespace sandboxes\n\n"
               "Usage:\n"
               "  isol8 serve [OPTIONS]     Start the HTTP server (see isol8 serve --help)\n"
               "  isol8 run [FILE] [...]    Run code (on a server with --host, else locally; see isol8 run --help)\n"
               "  isol8 login --host URL --key MASTER [--name N] [--ttl MS]\n"
               "                            Store a short-lived key for a server (~/.isol8/credentials.json)\n"
               "  isol8 logout [--host URL] Forget stored keys\n"
               "  isol8 session list|stop ID --host URL\n"
               "  isol8 health [--host URL]\n"
               "  isol8 --version\n",
               ISOL8_VERSION);
}

int main(int argc, char **argv) {
        for (size_t i = 0; argc >= 2 && i < ELEMENTSOF(verbs); i++)
                if (streq(argv[1], verbs[i].name)) {
                        argv[1] = (char *) verbs[i].prog;
                        return verbs[i].run(argc - 1, argv + 1);
                }
        if (argc >= 2 && (streq(argv[1], "--version") || streq(argv[1], "version"))) {
                printf("isol8 %s\n", ISOL8_VERSION);
                return 0;
        }
        if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help"))) {
                help();
                return 0;
        }
        if (argc < 2)
                fprintf(stderr, "isol8: a command is needed (serve, run, login, logout, session, health); see isol8 --help\n");
        else
                fprintf(stderr, "isol8: unknown command '%s'; see isol8 --help\n", argv[1]);
        return 2;
}
