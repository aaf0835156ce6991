/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

typedef enum RuntimeId {
        RUNTIME_PYTHON,
        RUNTIME_NODE,
        RUNTIME_BUN,
        RUNTIME_DENO,
        RUNTIME_BASH,
        RUNTIME_AGENT,      /* the pi coding agent (node, from a runtime image); the code is its prompt */
        _RUNTIME_MAX,
} RuntimeId;

typedef struct RuntimeInfo {
        const char *name;
        const char *const *candidates;   /* host paths tried in order */
        const char *const *inline_args;  /* argv after the interpreter, then the code */
        const char *const *file_args;    /* argv after the interpreter, then the file */
        const char *extension;           /* default extension of the program file */
} RuntimeInfo;

typedef struct Runtimes {
        char *path[_RUNTIME_MAX];        /* resolved interpreter, NULL when this host lacks it */
        char *extra_dir[_RUNTIME_MAX];   /* a directory outside /usr to bind into sandboxes */
} Runtimes;

const RuntimeInfo *runtime_info(RuntimeId id);
int runtime_from_string(const char *s);
const char *runtime_to_string(RuntimeId id);

/* Finds interpreters on the host; configured paths (indexed by RuntimeId) win. */
int runtimes_discover(Runtimes *rt, char *const *configured);
void runtimes_done(Runtimes *rt);
/* "python, node, bash": what this host has, for the 400 message. */
char *runtimes_available_list(const Runtimes *rt);
