/* SPDX-License-Identifier: MIT */
#pragma once

#include <linux/filter.h>

/* The sandbox's seccomp filter, compiled once at start-up into a BPF program. The daemon hands
 * it to each sandbox's init in a sealed memfd; init installs it in each program it starts with
 * one prctl() right before execve(). */
typedef struct SeccompProgram {
        struct sock_fprog prog;
} SeccompProgram;

int seccomp_program_build(SeccompProgram *ret);
void seccomp_program_done(SeccompProgram *p);
