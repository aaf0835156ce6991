/* SPDX-License-Identifier: MIT */
#pragma once

#include <systemd/sd-bus.h>

/* The D-Bus errors of org.isol8.Daemon1, shared by the daemon (bus/bus.c) and isol8ctl. The
 * map gives each its errno, so a client's sd-bus call returns a meaningful one. */
#define BUS_ERROR_INVALID          "org.isol8.Daemon1.Error.InvalidArgument"
#define BUS_ERROR_UNKNOWN_KEY      "org.isol8.Daemon1.Error.UnknownKey"
#define BUS_ERROR_UNKNOWN_SESSION  "org.isol8.Daemon1.Error.UnknownSession"
#define BUS_ERROR_AUTH_DB_OFF      "org.isol8.Daemon1.Error.AuthDatabaseOff"
#define BUS_ERROR_UNAVAILABLE      "org.isol8.Daemon1.Error.Unavailable"
#define BUS_ERROR_LIMIT            "org.isol8.Daemon1.Error.LimitReached"
#define BUS_ERROR_FILE             "org.isol8.Daemon1.Error.FileRefused"
#define BUS_ERROR_UNKNOWN_IMAGE    "org.isol8.Daemon1.Error.UnknownImage"
#define BUS_ERROR_IMAGE            "org.isol8.Daemon1.Error.ImageRefused"

extern const sd_bus_error_map isol8_bus_error_map[];
