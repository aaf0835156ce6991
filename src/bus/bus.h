/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "api/api.h"
#include "shared/macro.h"

/* org.isol8.Daemon1 on the system bus, the user bus or a given address: key and session
 * management for isol8ctl, with the counters as properties. State-changing methods (and
 * ListKeys) are for root and the admin group only: the policy file says so, and the daemon
 * checks the caller's credentials itself. */

#define BUS_NAME "org.isol8.Daemon1"
#define BUS_PATH "/org/isol8/Daemon1"
#define BUS_MANAGER_IFACE "org.isol8.Daemon1.Manager"
#define BUS_SESSION_IFACE "org.isol8.Daemon1.Session"
#define BUS_SESSION_PREFIX "/org/isol8/Daemon1/session"

typedef struct BusService BusService;

/* bus: "system", "user" or a D-Bus address. admin_gid: (gid_t) -1 for none. */
int bus_service_new(BusService **ret, sd_event *event, const char *bus, ApiContext *ctx, gid_t admin_gid);
BusService *bus_service_free(BusService *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusService *, bus_service_free);
void bus_service_session_event(BusService *b, const char *tenant, const char *id, bool created);
/* Prints the introspection XML of the objects, as the running daemon answers it. */
int bus_introspect(FILE *out);
