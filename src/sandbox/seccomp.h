/* SPDX-License-Identifier: MIT */
#pragma once

#include <linux/filter.h>

/* The sandbox's seccomp filter, compiled once at start-up into a BPF program that a sandboxed
 * child installs with one prctl() right before execve(). */
typedef struct SeccompProgram {
        struct sock_fprog prog;
} SeccompProgram;

int seccomp_program_build(SeccompProgram *ret);
void seccomp_program_done(SeccompProgram *p);
/* Installs the program in the calling process (no_new_privs must be set). */
int seccomp_program_install(const SeccompProgram *p);
