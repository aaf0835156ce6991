/* SPDX-License-Identifier: MIT */
/* isol8 serve: its arguments, the master key, the configuration, the listening socket; then
 * a Server (daemon/server.c) runs until stopped. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "daemon/listen.h"
#include "daemon/serve.h"
#include "daemon/server.h"
#include "bus/bus.h"
#include "shared/log.h"
#include "shared/util.h"


static void help_serve(void) {
        printf("isol8 serve [OPTIONS]\n\n"
               "Serve the isol8 HTTP API (see isol8-serve(8)).\n\n"
               "Options:\n"
               "  -p, --port N              Port to listen on (else $ISOL8_PORT, $PORT, 3000; 0: any free\n"
               "                            port); ignored under socket activation\n"
               "      --host ADDR           Address to bind (default 0.0.0.0)\n"
               "  -k, --key KEY             Master API key (else $ISOL8_API_KEY, the credential api-key,\n"
               "                            /etc/isol8/api-key); required\n"
               "  -c, --config PATH         Config file (else ./isol8.config.json,\n"
               "                            ~/.isol8/config.json, /etc/isol8/config.json)\n"
               "      --auth-db [CONN]      DB-backed API keys (SQLite path, postgres://, mysql://)\n"
               "      --bus system|user|ADDRESS|none\n"
               "                            D-Bus to register org.isol8.Daemon1 on (default:\n"
               "                            the system bus when there is one)\n"
               "      --bus-introspect      Print the D-Bus introspection XML and exit\n"
               "  -v, --verbose             Debug logging\n"
               "  -h, --help                Show this help\n");
}

/* A credential systemd passed in $CREDENTIALS_DIRECTORY (LoadCredential=), trailing newline cut.
 * -ENXIO: no credentials directory; -ENOENT: no such credential. */
static int read_credential(const char *name, char **ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        size_t size;
        int r;

        if (isempty(dir))
                return -ENXIO;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        r = read_full_file(path, &text, 4096, &size);
        if (r < 0)
                return r;
        text[strcspn(text, "\r\n")] = 0;
        *ret = TAKE_PTR(text);
        return 0;
}

#define API_KEY_FILE "/etc/isol8/api-key"

/* The key file: its first line. Readable by others than root is refused (-EPERM). */
static int read_key_file(const char *path, char **ret) {
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t size;
        int r;

        if (stat(path, &st) < 0)
                return -errno;
        if (st.st_mode & 0077) {
                fprintf(stderr, "isol8 serve: %s is readable by other users than its owner: chmod 0600 it\n", path);
                return -EPERM;
        }
        r = read_full_file(path, &text, 4096, &size);
        if (r < 0)
                return r;
        text[strcspn(text, "\r\n")] = 0;
        *ret = TAKE_PTR(text);
        return 0;
}

int daemon_serve(int argc, char **argv) {
        enum { ARG_AUTH_DB = 0x100, ARG_BUS, ARG_HOST, ARG_BUS_INTROSPECT };
        static const struct option options[] = {
                { "port", required_argument, NULL, 'p' },
                { "key", required_argument, NULL, 'k' },
                { "config", required_argument, NULL, 'c' },
                { "auth-db", optional_argument, NULL, ARG_AUTH_DB },
                { "bus", required_argument, NULL, ARG_BUS },
                { "bus-introspect", no_argument, NULL, ARG_BUS_INTROSPECT },
                { "host", required_argument, NULL, ARG_HOST },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(server_freep) Server *server = NULL;
        _cleanup_free_ char *config_path = NULL, *error = NULL;
        const char *port_flag = NULL, *key = NULL, *config_flag = NULL, *auth_db = NULL, *host = "0.0.0.0";
        const char *port_source = NULL;
        bool auth_db_set = false;
        _cleanup_free_ char *credential_key = NULL;
        const char *bus = NULL;
        Config config;
        ServerOptions so = { .listen_fd = -EBADF };
        sigset_t mask;
        uint16_t port;
        int c, r, fd = -EBADF;

        while ((c = getopt_long(argc, argv, "p:k:c:vh", options, NULL)) >= 0) {
                switch (c) {
                case 'p': port_flag = optarg; break;
                case 'k': key = optarg; break;
                case 'c': config_flag = optarg; break;
                case ARG_AUTH_DB:
                        auth_db_set = true;
                        if (optarg)
                                auth_db = optarg;
                        else if (optind < argc && argv[optind][0] != '-')
                                auth_db = argv[optind++];
                        break;
                case ARG_BUS:
                        bus = optarg;
                        break;
                case ARG_BUS_INTROSPECT:
                        return bus_introspect(stdout) < 0 ? 1 : 0;
                case ARG_HOST: host = optarg; break;
                case 'v': log_set_max_level(LOG_DEBUG); break;
                case 'h': help_serve(); return 0;
                default:
                        fprintf(stderr, "isol8 serve: see isol8 serve --help\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "isol8 serve: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }

        if (!key)
                key = getenv("ISOL8_API_KEY");
        if (isempty(key)) {
                /* A credential (LoadCredential=api-key:... in a drop-in), else the key file. */
                r = read_credential("api-key", &credential_key);
                if (r == -ENOENT || r == -ENXIO)
                        r = read_key_file(API_KEY_FILE, &credential_key);
                if (r < 0 && r != -ENOENT) {
                        fprintf(stderr, "isol8 serve: cannot read the master key: %s\n", strerror(-r));
                        return 1;
                }
                key = credential_key;
        }
        if (isempty(key)) {
                fprintf(stderr, "isol8 serve: a master key is required: create " API_KEY_FILE " (mode 0600, one "
                                "line), or set ISOL8_API_KEY, or pass --key KEY.\n");
                return 1;
        }

        config_init(&config);
        r = config_find_and_load(&config, config_flag, &config_path, &error);
        if (r < 0) {
                fprintf(stderr, "isol8 serve: %s\n", error ?: strerror(-r));
                config_done(&config);
                return 1;
        }
        if (config_path)
                log_info("Loaded configuration from %s", config_path);
        if (auth_db_set) {
                config.auth_enabled = true;
                if (auth_db) {
                        free(config.auth_connection_string);
                        config.auth_connection_string = strdup(auth_db);
                }
        }

        r = listen_choose_port(port_flag, &port, &port_source);
        if (r < 0) {
                fprintf(stderr, "isol8 serve: invalid port in %s\n", port_source);
                config_done(&config);
                return 1;
        }

        /* sd-event of this libsystemd does not block the signals it watches. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = listen_socket_activated(&fd);
        if (r < 0) {
                config_done(&config);
                return 1;
        }
        if (r > 0) {
                so.activated = true;
                (void) listen_socket_port(fd, &port);
        } else {
                r = listen_socket_bind(host, port, isatty(STDIN_FILENO) && isatty(STDERR_FILENO), &fd, &port);
                if (r < 0) {
                        config_done(&config);
                        return 1;
                }
        }
        so.listen_fd = fd;
        so.port = port;
        so.master_key = key;
        so.bus = bus;
        so.config_path = config_flag;

        r = server_new(&server, &config, &so);
        config_done(&config);
        if (r < 0) {
                log_error_errno(r, "Failed to start: %m");
                return 1;
        }
        r = server_run(server);
        return r < 0 ? 1 : 0;
}
