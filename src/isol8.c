/* SPDX-License-Identifier: MIT */
/* The isol8 program: the client commands and `serve` (which execs isol8d), by a table of verbs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"
#include "shared/macro.h"
#include "shared/util.h"

typedef struct Verb {
        const char *name;
        const char *prog;        /* how getopt and messages name it: "isol8 run: ..." */
        int (*run)(int argc, char **argv);
} Verb;

/* The server is a program of its own (isol8d, in the libexec directory): exec'd in place, so
 * the service keeps this process (its pid, its sockets, its notify access) and none of the
 * client's libraries. */
static int serve(int argc, char **argv) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = own_program_path("isol8d", &path);
        if (r >= 0) {
                execv(path, argv);
                r = -errno;
        }
        fprintf(stderr, "isol8 serve: cannot start %s: %s\n", path ?: "isol8d", strerror(-r));
        return 1;
}

/* Runtime images are the daemon's (they live in its state directory, built by its engine):
 * `isol8 image build|list|remove ...` is `isol8ctl images ...`, over D-Bus. */
static int image(int argc, char **argv) {
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ char **args = calloc((size_t) argc + 2, sizeof(char *));
        int r;

        if (!args)
                return 1;
        args[0] = (char *) "isol8ctl";
        args[1] = (char *) "images";
        for (int i = 1; i < argc; i++)
                args[i + 1] = argv[i];
        r = own_program_path("isol8ctl", &path);
        if (r >= 0) {
                execv(path, args);
                r = -errno;
        }
        fprintf(stderr, "isol8 image: cannot start %s: %s\n", path ?: "isol8ctl", strerror(-r));
        return 1;
}

static const Verb verbs[] = {
        { "serve",   "isol8 serve",   serve },
        { "run",     "isol8 run",     cli_run },
        { "login",   "isol8 login",   cli_login },
        { "logout",  "isol8 logout",  cli_logout },
        { "session", "isol8 session", cli_session },
        { "health",  "isol8 health",  cli_health },
        { "image",   "isol8 image",   image },
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
               "  isol8 image build NAME --runtime python|node|bun --packages A,B | list | remove NAME\n"
               "                            Runtime images of the local daemon (isol8ctl images ...)\n"
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
                fprintf(stderr, "isol8: a command is needed (serve, run, login, logout, session, health, image); see isol8 --help\n");
        else
                fprintf(stderr, "isol8: unknown command '%s'; see isol8 --help\n", argv[1]);
        return 2;
}
