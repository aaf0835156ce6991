/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon/listen.h"
#include "shared/log.h"
#include "shared/util.h"

int listen_socket_activated(int *ret_fd) {
        char **names = NULL;
        int n, fd = -EBADF;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to get sockets from the service manager: %m");
        if (n == 0) {
                strv_free(names);
                return 0;
        }
        for (int i = 0; i < n; i++)
                if (names && names[i] && streq(names[i], "http") && sd_is_socket(SD_LISTEN_FDS_START + i, 0, SOCK_STREAM, 1) > 0) {
                        fd = SD_LISTEN_FDS_START + i;
                        break;
                }
        if (fd < 0)
                for (int i = 0; i < n; i++)
                        if (sd_is_socket(SD_LISTEN_FDS_START + i, 0, SOCK_STREAM, 1) > 0) {
                                fd = SD_LISTEN_FDS_START + i;
                                break;
                        }
        /* Sockets we do not use must not leak into anything. */
        for (int i = 0; i < n; i++)
                if (SD_LISTEN_FDS_START + i != fd)
                        close(SD_LISTEN_FDS_START + i);
        strv_free(names);
        if (fd < 0)
                return log_error_errno(EBADF, "Socket activation passed no listening stream socket.");
        (void) fd_cloexec(fd, true);
        *ret_fd = fd;
        return 1;
}

static int bind_one(const char *address, uint16_t port, int *ret_fd) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t len;
        int fd, one = 1;

        if (inet_pton(AF_INET, address, &sa.in.sin_addr) == 1) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(port);
                len = sizeof(sa.in);
        } else if (inet_pton(AF_INET6, address, &sa.in6.sin6_addr) == 1) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(port);
                len = sizeof(sa.in6);
        } else
                return -EINVAL;
        fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, &sa.sa, len) < 0 || listen(fd, SOMAXCONN) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int listen_socket_port(int fd, uint16_t *ret_port) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return -errno;
        if (ss.ss_family == AF_INET)
                *ret_port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
                *ret_port = ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
        else
                return -EAFNOSUPPORT;
        return 0;
}

int listen_socket_bind(const char *address, uint16_t port, bool interactive, int *ret_fd, uint16_t *ret_port) {
        int fd, r;

        r = bind_one(address, port, &fd);
        if (r == -EINVAL)
                return log_error_errno(r, "Invalid listen address: %s", address);
        while (r == -EADDRINUSE && interactive) {
                char line[64];
                int free_fd;
                uint16_t suggestion = 0, chosen;

                if (bind_one(address, 0, &free_fd) >= 0) {
                        (void) listen_socket_port(free_fd, &suggestion);
                        close(free_fd);
                }
                fprintf(stderr, "Port %u is already in use. Enter another port [%u]: ", port, suggestion);
                fflush(stderr);
                if (!fgets(line, sizeof(line), stdin))
                        return log_error_errno(EADDRINUSE, "Port %u is already in use.", port);
                line[strcspn(line, "\r\n")] = 0;
                if (isempty(line))
                        chosen = suggestion;
                else if (parse_port(line, &chosen) < 0 || chosen == 0) {
                        fprintf(stderr, "Not a port number: %s\n", line);
                        continue;
                }
                port = chosen;
                r = bind_one(address, port, &fd);
        }
        if (r == -EADDRINUSE)
                return log_error_errno(r, "Port %u is already in use (pass --port 0 for any free port).", port);
        if (r >= 0 && port == 0)
                (void) listen_socket_port(fd, &port);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s:%u: %m", address, port);
        *ret_fd = fd;
        *ret_port = port;
        return 0;
}

int listen_choose_port(const char *flag, uint16_t *ret, const char **ret_source) {
        static const char *const envs[] = { "ISOL8_PORT", "PORT" };
        const char *v = flag, *src = "--port";

        for (size_t i = 0; !v && i < ELEMENTSOF(envs); i++) {
                v = getenv(envs[i]);
                src = envs[i];
                if (isempty(v))
                        v = NULL;
        }
        if (!v) {
                *ret = 3000;
                return 0;
        }
        if (parse_port(v, ret) < 0) {
                *ret_source = src;
                return -EINVAL;
        }
        return 0;
}
