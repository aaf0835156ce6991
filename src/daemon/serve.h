/* SPDX-License-Identifier: MIT */
#pragma once

/* `isol8 serve [OPTIONS]`: argv[0] is the verb's name for messages. Returns the exit status. */
int daemon_serve(int argc, char **argv);
