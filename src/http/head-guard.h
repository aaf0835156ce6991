/* SPDX-License-Identifier: MIT */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

/* Connections that have not yet sent a complete request head (slowloris): each gets a deadline,
 * and when too many wait at once the oldest is dropped, so that a flood of slow connections
 * cannot keep new clients (/health, authenticated ones) out. Dropping is a shutdown() of the
 * socket, which libmicrohttpd then sees as a closed connection. */
typedef struct HeadGuard HeadGuard;
typedef struct HeadGuardConn HeadGuardConn;

int head_guard_new(HeadGuard **ret, sd_event *event, uint64_t deadline_usec, unsigned max_waiting,
                   void (*kick)(void *userdata), void *userdata);
HeadGuard *head_guard_free(HeadGuard *g);

/* MHD_OPTION_NOTIFY_CONNECTION's callback (cls: the guard). */
void head_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe);
/* A request head arrived on c / a request on c ended and the next head is awaited. */
void head_guard_head_done(HeadGuard *g, struct MHD_Connection *c);
void head_guard_await_head(HeadGuard *g, struct MHD_Connection *c);
unsigned head_guard_n_waiting(HeadGuard *g);
