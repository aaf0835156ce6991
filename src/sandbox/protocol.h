/* SPDX-License-Identifier: MIT */
#pragma once

/* Messages between the daemon and a sandbox's init over a SOCK_SEQPACKET pair. Internal to
 * src/sandbox/. */

#include <stdbool.h>
#include <stdint.h>

#include "sandbox/seccomp.h"

typedef enum InitMessageType {
        INIT_MSG_READY = 1,    /* init -> daemon: value 0, or -errno with text */
        INIT_MSG_RUN,          /* daemon -> init: fds [spec memfd, stdin, stdout, stderr], or the
                                * spec after the message (up to RUN_SPEC_INLINE_MAX bytes) and
                                * fds [stdin, stdout, stderr] */
        INIT_MSG_STARTED,      /* init -> daemon: value = pid in the sandbox; with a proxy port,
                                * fds [listening socket on 127.0.0.1:port] */
        INIT_MSG_EXITED,       /* init -> daemon: value = wait status */
        INIT_MSG_KILL,         /* daemon -> init: kill every process but init */
        INIT_MSG_SIGNAL,       /* daemon -> init: value = signal for the main process */
        INIT_MSG_CLEAN,        /* daemon -> init: sizes of fresh /sandbox and /tmp */
        INIT_MSG_CLEANED,      /* init -> daemon */
        INIT_MSG_WRITE,        /* daemon -> init: value = number of RunSpecWrite entries, fds [memfd of them] */
        INIT_MSG_WRITTEN,      /* init -> daemon: value 0 or -errno */
} InitMessageType;

typedef struct InitMessage {
        uint32_t type;
        int32_t value;
        uint64_t a;
        uint64_t b;
        char text[200];
} InitMessage;

/* A spec up to this size travels in the RUN message itself: no memfd to make, write, map and
 * close on the path of every run. */
#define RUN_SPEC_INLINE_MAX (16 * 1024)

/* Header of the run spec (in the RUN message, or a memfd); followed by argc + envc
 * NUL-terminated strings. */
typedef struct RunSpecHeader {
        uint32_t argc;
        uint32_t envc;
        uint64_t fsize_limit;
        uint64_t sandbox_bytes;
        uint64_t tmp_bytes;
        uint32_t readonly_rootfs;
        uint32_t seccomp;
        uint32_t proxy_port;    /* != 0: listen on 127.0.0.1:port for the daemon's proxy */
        uint32_t n_writes;      /* RunSpecWrite entries after the strings */
        char cwd[1024];
} RunSpecHeader;

/* Files (and directories) written into the sandbox before the program starts (or on
 * INIT_MSG_WRITE), by the init with the sandbox user's file system ids: it is in the sandbox's
 * cgroup already, so what it writes is charged there and no process has to be moved into the
 * cgroup. Each is followed by its NUL-terminated path and its data. A failure before a run
 * answers STARTED with value -errno and a = INIT_STARTED_FILES_FAILED. */
typedef struct RunSpecWrite {
        uint32_t dir;           /* 1: mkdir -p the path; 0: a file with size bytes */
        uint32_t path_size;     /* with the NUL */
        uint64_t size;
} RunSpecWrite;

#define INIT_STARTED_FILES_FAILED 1

typedef struct InitParams {
        int sock;                   /* control socket */
        int sync_fd;                /* one byte comes once the daemon has set the id maps and cgroup */
        const char *root_dir;       /* empty directory to build the root in */
        const char *const *bind_dirs; /* extra read-only directories (runtimes outside /usr) */
        uint64_t sandbox_bytes;
        uint64_t tmp_bytes;
        bool share_network;
        const SeccompProgram *seccomp;
        const char *image_target;   /* where the image's layer (INIT_FD_IMAGE) goes, or NULL */
} InitParams;

/* The descriptors isol8-sandbox-init starts with (see init-main.c). */
#define INIT_FD_SOCKET 3
#define INIT_FD_SECCOMP 4
#define INIT_FD_SYNC 5
/* A runtime image's layer: a detached, read-only mount (open_tree()) the init moves into place,
 * or /dev/null when the sandbox has no image. */
#define INIT_FD_IMAGE 6

/* The init's work, in the isol8-sandbox-init program; never returns. */
_Noreturn void sandbox_init_main(const InitParams *p);
