/* SPDX-License-Identifier: MIT */
#pragma once

#include "core/config.h"
#include "shared/macro.h"

typedef struct Server Server;

typedef struct ServerOptions {
        const char *master_key;
        int listen_fd;              /* taken */
        uint16_t port;
        bool activated;
        const char *bus;            /* "system", "user", an address, "none"; NULL: system, if there is one */
        const char *config_path;    /* --config, read again on SIGHUP; NULL: the usual places */
} ServerOptions;

/* Takes the config. */
int server_new(Server **ret, Config *config, const ServerOptions *opts);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);
/* Runs until SIGTERM/SIGINT and a drain; returns 0 on a clean stop. */
int server_run(Server *s);
