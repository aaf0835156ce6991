/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdio.h>

/* Runs one execution envelope on this machine with the sandbox engine (root only), streaming
 * its output to out and stderr; stdin_fd (or -1) feeds the program. */
int local_run(const char *envelope, FILE *out, int stdin_fd, int *ret_exit_code);
