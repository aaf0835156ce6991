/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "core/manager.h"
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

/* bus: "system", "user" or a D-Bus address. admin_group: the group whose members may manage
 * keys and sessions besides root (NULL: root only). Registers with the manager as a transport
 * (session signals). */
int bus_service_new(BusService **ret, Manager *m, const char *bus, const char *admin_group);
BusService *bus_service_free(BusService *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusService *, bus_service_free);
/* Prints the introspection XML of the objects, as the running daemon answers it. */
int bus_introspect(FILE *out);

/* Outcomes as D-Bus errors: one table (bus/outcome-bus.c). r < 0 is an internal failure,
 * logged once and answered org.freedesktop.DBus.Error.Failed. */
const char *bus_outcome_error_name(Outcome o);
int bus_set_outcome(sd_bus_error *error, int r, const char *message);
int bus_reply_outcome(sd_bus_message *m, int r, const char *message);
