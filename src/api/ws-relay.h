/* SPDX-License-Identifier: MIT */
#pragma once

/* A WebSocket passed on to another server of the cluster (api/ws.c, for a session held there):
 * first the upgrade to that server with the cluster's signature and the messages the client
 * sent so far, then bytes relayed both ways unchanged — the client's frames are masked as a
 * server expects them, the server's are not, as a client expects them — until either side
 * closes. Nothing blocks; each side's backlog is bounded and holds the other side's reading. */

#include <systemd/sd-event.h>

#include "core/resolve.h"
#include "shared/util.h"

typedef struct WsRelay WsRelay;

/* The other server answered the upgrade (error NULL) or could not be had: error says why, for
 * the client; lost is true when it refused the connection (its sessions are gone). */
typedef void (*WsRelayReadyFn)(void *userdata, const char *error, bool lost);
/* The relay is over (either side closed). */
typedef void (*WsRelayEndFn)(void *userdata);

/* head: the request head to send (ending in an empty line); first: frames to send after it. */
int ws_relay_connect(sd_event *event, Resolver *resolver, const char *url, const char *head, const Buffer *first,
                     WsRelayReadyFn ready, void *userdata, WsRelay **ret);
/* After ready(NULL): relays between client_fd (not taken; no other io source may watch it) and
 * the server. pending: the client's bytes not yet passed on. end comes once, from the loop. */
int ws_relay_attach(WsRelay *r, int client_fd, const void *pending, size_t n, WsRelayEndFn end, void *userdata);
WsRelay *ws_relay_free(WsRelay *r);
