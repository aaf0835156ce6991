/* SPDX-License-Identifier: MIT */
/* isol8 serve: a Manager with its transports (HTTP, and D-Bus when there is a bus). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "bus/bus.h"
#include "core/manager.h"
#include "daemon/server.h"
#include "shared/log.h"

struct Server {
        sd_event *event;
        Manager *manager;
        ApiContext *api;
        BusService *bus;
        uint16_t port;
};

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        /* The transports first: they hold requests that point into the manager. */
        api_free(s->api);
        bus_service_free(s->bus);
        manager_free(s->manager);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int server_new(Server **ret, Config *config, const ServerOptions *opts) {
        _cleanup_(server_freep) Server *s = NULL;
        _cleanup_close_ int listen_fd = opts->listen_fd;
        const char *admin_group;
        int r;

        s = calloc(1, sizeof(Server));
        if (!s)
                return -ENOMEM;
        s->port = opts->port;
        /* Not sd_event_default(): a default loop checks its thread with a gettid() syscall on
         * every iteration, a dozen per run. */
        r = sd_event_new(&s->event);
        if (r < 0)
                return r;
        (void) sd_event_set_watchdog(s->event, true);

        admin_group = config->dbus_admin_group;
        ManagerOptions mo = {
                .master_key = opts->master_key,
                .serve = true,
                .activated = opts->activated,
                .config_path = opts->config_path,
                .port = opts->port,
        };
        r = manager_new(&s->manager, s->event, config, &mo);
        if (r < 0)
                return r;
        admin_group = s->manager->config.dbus_admin_group;

        r = api_new(&s->api, s->manager, TAKE_FD(listen_fd));
        if (r < 0)
                return r;

        if (!streq_ptr(opts->bus, "none")) {
                r = bus_service_new(&s->bus, s->manager, opts->bus ?: "system", admin_group ?: "isol8");
                if (r < 0) {
                        if (opts->bus)
                                return r;
                        log_notice("No system bus: running without the D-Bus interface (isol8ctl will not reach this server).");
                }
        }
        *ret = TAKE_PTR(s);
        return 0;
}

int server_run(Server *s) {
        int r;

        printf("isol8 server v%s listening on http://localhost:%u\n", ISOL8_VERSION, s->port);
        fflush(stdout);
        r = manager_startup(s->manager);
        if (r < 0)
                return r;
        r = sd_event_loop(s->event);
        log_info("Stopped.");
        return r;
}
