/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The listening socket: from socket activation (sd_listen_fds_with_names, the fd named "http"
 * or the first one), else bound here. On a busy port, a terminal is asked for another one and
 * anything else gets a free port picked automatically. */
int listen_socket_activated(int *ret_fd);
int listen_socket_bind(const char *address, uint16_t port, bool interactive, int *ret_fd, uint16_t *ret_port);
int listen_socket_port(int fd, uint16_t *ret_port);
/* --port > ISOL8_PORT > PORT > 3000; -EINVAL names the bad source in *ret_source. */
int listen_choose_port(const char *flag, uint16_t *ret, const char **ret_source);
