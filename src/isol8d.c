/* SPDX-License-Identifier: MIT */
/* isol8d: the server, as `isol8 serve` execs it (argv[0] is "isol8 serve" then). */
#include <sys/prctl.h>

#include "daemon/serve.h"

int main(int argc, char **argv) {
        /* Messages and getopt say "isol8 serve", and ps, pgrep and the cgroup reclaim (which
         * looks for live daemons by name) see "isol8", however it was started. */
        argv[0] = (char *) "isol8 serve";
        (void) prctl(PR_SET_NAME, "isol8");
        return daemon_serve(argc, argv);
}
