/* SPDX-License-Identifier: MIT */
/* isol8ctl: administer an isol8 daemon over D-Bus (org.isol8.Daemon1), in the manner of
 * timedatectl and loginctl. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "shared/json-util.h"
#include "shared/time-util.h"
#include "shared/util.h"

#define BUS_NAME "org.isol8.Daemon1"
#define BUS_PATH "/org/isol8/Daemon1"
#define MANAGER "org.isol8.Daemon1.Manager"

enum {
        EXIT_OK = 0,
        EXIT_FAILURE_ = 1,
        EXIT_USAGE = 2,
        EXIT_DENIED = 3,
        EXIT_NOT_FOUND = 4,
};

static const char *arg_address = NULL;
static bool arg_user = false;
static bool arg_json = false;
static bool arg_legend = true;
static const char *arg_tenant = NULL;
static const char *arg_ttl = NULL;

static int help(const char *verb) {
        if (streq_ptr(verb, "keys"))
                printf("isol8ctl keys list [--tenant T]     List DB-backed API keys\n"
                       "isol8ctl keys create NAME [--tenant T] [--ttl 1h]\n"
                       "                                    Create a key (shown once)\n"
                       "isol8ctl keys revoke ID             Revoke a key\n");
        else if (streq_ptr(verb, "sessions"))
                printf("isol8ctl sessions list              List persistent sessions\n"
                       "isol8ctl sessions show ID           Show one session\n"
                       "isol8ctl sessions kill ID           Destroy a session and what runs in it\n");
        else if (streq_ptr(verb, "status"))
                printf("isol8ctl status                     Version, executions, queue and sessions\n");
        else if (streq_ptr(verb, "cleanup"))
                printf("isol8ctl cleanup                    Destroy every session and idle sandbox\n");
        else
                printf("isol8ctl [OPTIONS] COMMAND ...\n\n"
                       "Administer the isol8 daemon over D-Bus.\n\n"
                       "Commands:\n"
                       "  status                     Show the daemon's state\n"
                       "  keys list|create|revoke    Manage DB-backed API keys\n"
                       "  sessions list|show|kill    Manage persistent sessions\n"
                       "  cleanup                    Destroy every session and idle sandbox\n\n"
                       "Options:\n"
                       "  --system                   Talk to the daemon on the system bus (default)\n"
                       "  --user                     ... on the user bus\n"
                       "  --address=ADDRESS          ... on the bus at ADDRESS\n"
                       "  --json                     JSON output for scripts\n"
                       "  --no-legend                Tables without header\n"
                       "  --tenant=T                 Tenant for keys list/create\n"
                       "  --ttl=DURATION             Lifetime of a new key (e.g. 90s, 30m, 1h, 7d)\n"
                       "  -h, --help                 Show this help (also: isol8ctl COMMAND --help)\n\n"
                       "Exit status: 0 success, 1 failure, 2 bad usage, 3 access denied, 4 not found.\n");
        return EXIT_OK;
}

static int connect_bus(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        if (arg_address) {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, arg_address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else if (arg_user)
                r = sd_bus_open_user(&bus);
        else
                r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "isol8ctl: cannot connect to the bus: %s\n", strerror(-r));
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static int bus_failure(const sd_bus_error *error, int r) {
        fprintf(stderr, "isol8ctl: %s\n", error && error->message ? error->message : strerror(-r));
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED))
                return EXIT_DENIED;
        if (sd_bus_error_has_name(error, "org.isol8.Daemon1.Error.UnknownKey") ||
            sd_bus_error_has_name(error, "org.isol8.Daemon1.Error.UnknownSession") ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return EXIT_NOT_FOUND;
        return EXIT_FAILURE_;
}

static const char *iso(uint64_t usec, char buf[static 64]) {
        return usec ? format_iso8601(usec, buf) : "-";
}

static json_object *iso_json(uint64_t usec) {
        char buf[64];
        return usec ? json_object_new_string(format_iso8601(usec, buf)) : NULL;
}

static void print_json(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* A table: widths from the data, header unless --no-legend. */
static void print_table(const char *const *header, size_t n_cols, char ***rows, size_t n_rows) {
        size_t w[16] = {};
        for (size_t c = 0; c < n_cols; c++)
                w[c] = arg_legend ? strlen(header[c]) : 0;
        for (size_t r = 0; r < n_rows; r++)
                for (size_t c = 0; c < n_cols; c++)
                        w[c] = MAX(w[c], strlen(rows[r][c]));
        if (arg_legend) {
                for (size_t c = 0; c < n_cols; c++)
                        printf("%-*s%s", (int) w[c], header[c], c + 1 < n_cols ? "  " : "\n");
        }
        for (size_t r = 0; r < n_rows; r++)
                for (size_t c = 0; c < n_cols; c++)
                        printf("%-*s%s", (int) w[c], rows[r][c], c + 1 < n_cols ? "  " : "\n");
        if (arg_legend)
                printf("\n%zu %s listed.\n", n_rows, n_rows == 1 ? "entry" : "entries");
}

static void free_rows(char ***rows, size_t n, size_t cols) {
        for (size_t r = 0; r < n; r++) {
                for (size_t c = 0; c < cols; c++)
                        free(rows[r][c]);
                free(rows[r]);
        }
        free(rows);
}

static int cmd_status(sd_bus *bus) {
        static const char *const names[] = { "Version", "ActiveExecutions", "QueuedExecutions", "MaxConcurrent", "SessionCount",
                                             "TotalExecutions" };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *o = json_object_new_object();
        char *version = NULL;
        uint32_t u[4];
        uint64_t total;
        int r;

        r = sd_bus_get_property_string(bus, BUS_NAME, BUS_PATH, MANAGER, names[0], &error, &version);
        if (r < 0)
                return bus_failure(&error, r);
        for (int i = 0; i < 4; i++) {
                r = sd_bus_get_property_trivial(bus, BUS_NAME, BUS_PATH, MANAGER, names[1 + i], &error, 'u', &u[i]);
                if (r < 0) {
                        free(version);
                        return bus_failure(&error, r);
                }
        }
        r = sd_bus_get_property_trivial(bus, BUS_NAME, BUS_PATH, MANAGER, names[5], &error, 't', &total);
        if (r < 0) {
                free(version);
                return bus_failure(&error, r);
        }
        if (arg_json) {
                json_add(o, "version", json_object_new_string(version));
                json_add(o, "activeExecutions", json_object_new_int64(u[0]));
                json_add(o, "queuedExecutions", json_object_new_int64(u[1]));
                json_add(o, "maxConcurrent", json_object_new_int64(u[2]));
                json_add(o, "sessionCount", json_object_new_int64(u[3]));
                json_add(o, "totalExecutions", json_object_new_int64((int64_t) total));
                print_json(o);
        } else
                printf("          Version: %s\n Executions running: %u of %u\n  Waiting in queue: %u\n          Sessions: %u\n"
                       "  Executions total: %" PRIu64 "\n", version, u[0], u[2], u[1], u[3], total);
        free(version);
        return EXIT_OK;
}

static int parse_ttl(const char *s, uint64_t *ret) {
        char *end;
        double v = strtod(s, &end);
        double mult = 1;
        if (end == s || v <= 0)
                return -EINVAL;
        if (streq(end, "") || streq(end, "ms"))
                mult = 1;
        else if (streq(end, "s"))
                mult = 1000;
        else if (streq(end, "m") || streq(end, "min"))
                mult = 60000;
        else if (streq(end, "h"))
                mult = 3600000;
        else if (streq(end, "d"))
                mult = 86400000;
        else
                return -EINVAL;
        *ret = (uint64_t) (v * mult);
        return 0;
}

static int cmd_keys(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *verb = argc > 0 ? argv[0] : "list";
        int r;

        if (streq(verb, "list")) {
                static const char *const header[] = { "ID", "NAME", "PREFIX", "TENANT", "CREATED", "EXPIRES", "LAST USED", "REVOKED" };
                _cleanup_json_ json_object *a = json_object_new_array();
                const char *id, *name, *prefix, *tenant;
                uint64_t created, expires, used;
                char ***rows = NULL;
                size_t n = 0;
                int revoked;

                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "ListKeys", &error, &reply, "s", arg_tenant ?: "");
                if (r < 0)
                        return bus_failure(&error, r);
                r = sd_bus_message_enter_container(reply, 'a', "(sssstttb)");
                while (r >= 0 && (r = sd_bus_message_read(reply, "(sssstttb)", &id, &name, &prefix, &tenant, &created, &expires, &used,
                                                          &revoked)) > 0) {
                        char b1[64], b2[64], b3[64];
                        json_object *o = json_object_new_object();
                        json_add(o, "id", json_object_new_string(id));
                        json_add(o, "name", json_object_new_string(name));
                        json_add(o, "keyPrefix", json_object_new_string(prefix));
                        json_add(o, "tenantId", json_object_new_string(tenant));
                        json_add(o, "createdAt", iso_json(created));
                        json_add(o, "expiresAt", iso_json(expires));
                        json_add(o, "lastUsedAt", iso_json(used));
                        json_add(o, "revoked", json_object_new_boolean(revoked));
                        json_object_array_add(a, o);
                        rows = realloc(rows, sizeof(char **) * (n + 1));
                        rows[n] = calloc(8, sizeof(char *));
                        rows[n][0] = strdup(id);
                        rows[n][1] = strdup(name);
                        rows[n][2] = strdup(prefix);
                        rows[n][3] = strdup(tenant);
                        rows[n][4] = strdup(iso(created, b1));
                        rows[n][5] = strdup(iso(expires, b2));
                        rows[n][6] = strdup(iso(used, b3));
                        rows[n][7] = strdup(revoked ? "yes" : "no");
                        n++;
                }
                if (r < 0) {
                        free_rows(rows, n, 8);
                        fprintf(stderr, "isol8ctl: bad answer: %s\n", strerror(-r));
                        return EXIT_FAILURE_;
                }
                if (arg_json)
                        print_json(a);
                else
                        print_table(header, 8, rows, n);
                free_rows(rows, n, 8);
                return EXIT_OK;
        }
        if (streq(verb, "create")) {
                const char *id, *key, *prefix;
                uint64_t expires, ttl = 0;

                if (argc < 2) {
                        fprintf(stderr, "isol8ctl: keys create needs a NAME\n");
                        return EXIT_USAGE;
                }
                if (arg_ttl && parse_ttl(arg_ttl, &ttl) < 0) {
                        fprintf(stderr, "isol8ctl: invalid --ttl: %s\n", arg_ttl);
                        return EXIT_USAGE;
                }
                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "CreateKey", &error, &reply, "sst", argv[1],
                                       arg_tenant ?: "default", ttl);
                if (r < 0)
                        return bus_failure(&error, r);
                r = sd_bus_message_read(reply, "ssst", &id, &key, &prefix, &expires);
                if (r < 0)
                        return EXIT_FAILURE_;
                if (arg_json) {
                        _cleanup_json_ json_object *o = json_object_new_object();
                        json_add(o, "id", json_object_new_string(id));
                        json_add(o, "key", json_object_new_string(key));
                        json_add(o, "name", json_object_new_string(argv[1]));
                        json_add(o, "keyPrefix", json_object_new_string(prefix));
                        json_add(o, "tenantId", json_object_new_string(arg_tenant ?: "default"));
                        json_add(o, "expiresAt", iso_json(expires));
                        print_json(o);
                } else {
                        char b[64];
                        printf("     Key: %s\n      ID: %s\n  Tenant: %s\n Expires: %s\n\nThe key is shown only now.\n", key, id,
                               arg_tenant ?: "default", iso(expires, b));
                }
                return EXIT_OK;
        }
        if (streq(verb, "revoke")) {
                if (argc < 2) {
                        fprintf(stderr, "isol8ctl: keys revoke needs an ID\n");
                        return EXIT_USAGE;
                }
                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "RevokeKey", &error, NULL, "s", argv[1]);
                if (r < 0)
                        return bus_failure(&error, r);
                if (!arg_json)
                        printf("Revoked %s.\n", argv[1]);
                else
                        printf("{\"ok\": true, \"id\": \"%s\"}\n", argv[1]);
                return EXIT_OK;
        }
        fprintf(stderr, "isol8ctl: unknown keys command '%s' (list, create, revoke)\n", verb);
        return EXIT_USAGE;
}

static json_object *session_json(const char *id, const char *tenant, const char *runtime, int active, uint64_t created,
                                 uint64_t last, uint32_t executions) {
        json_object *o = json_object_new_object();
        json_add(o, "id", json_object_new_string(id));
        json_add(o, "tenantId", json_object_new_string(tenant));
        json_add(o, "runtime", json_object_new_string(runtime));
        json_add(o, "isActive", json_object_new_boolean(active));
        json_add(o, "createdAt", iso_json(created));
        json_add(o, "lastAccessedAt", iso_json(last));
        json_add(o, "executions", json_object_new_int64(executions));
        return o;
}

static int cmd_sessions(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *verb = argc > 0 ? argv[0] : "list";
        int r;

        if (streq(verb, "list") || streq(verb, "show")) {
                static const char *const header[] = { "ID", "TENANT", "RUNTIME", "ACTIVE", "CREATED", "LAST ACCESSED", "RUNS" };
                _cleanup_json_ json_object *a = json_object_new_array();
                const char *id, *tenant, *runtime, *path;
                uint64_t created, last;
                uint32_t runs;
                char ***rows = NULL;
                size_t n = 0;
                int active;
                bool found = false;

                if (streq(verb, "show") && argc < 2) {
                        fprintf(stderr, "isol8ctl: sessions show needs an ID\n");
                        return EXIT_USAGE;
                }
                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "ListSessions", &error, &reply, NULL);
                if (r < 0)
                        return bus_failure(&error, r);
                r = sd_bus_message_enter_container(reply, 'a', "(sssbttuo)");
                while (r >= 0 && (r = sd_bus_message_read(reply, "(sssbttuo)", &id, &tenant, &runtime, &active, &created, &last, &runs,
                                                          &path)) > 0) {
                        char b1[64], b2[64], num[16];
                        if (streq(verb, "show")) {
                                if (!streq(id, argv[1]))
                                        continue;
                                found = true;
                                if (arg_json) {
                                        _cleanup_json_ json_object *o = session_json(id, tenant, runtime, active, created, last, runs);
                                        print_json(o);
                                } else
                                        printf("            Id: %s\n        Object: %s\n        Tenant: %s\n       Runtime: %s\n"
                                               "        Active: %s\n       Created: %s\nLast accessed: %s\n    Executions: %u\n",
                                               id, path, tenant, runtime, active ? "yes" : "no", iso(created, b1), iso(last, b2), runs);
                                continue;
                        }
                        json_object_array_add(a, session_json(id, tenant, runtime, active, created, last, runs));
                        rows = realloc(rows, sizeof(char **) * (n + 1));
                        rows[n] = calloc(7, sizeof(char *));
                        snprintf(num, sizeof(num), "%u", runs);
                        rows[n][0] = strdup(id);
                        rows[n][1] = strdup(tenant);
                        rows[n][2] = strdup(runtime);
                        rows[n][3] = strdup(active ? "yes" : "no");
                        rows[n][4] = strdup(iso(created, b1));
                        rows[n][5] = strdup(iso(last, b2));
                        rows[n][6] = strdup(num);
                        n++;
                }
                if (streq(verb, "show")) {
                        if (!found) {
                                fprintf(stderr, "isol8ctl: no session %s\n", argv[1]);
                                return EXIT_NOT_FOUND;
                        }
                        return EXIT_OK;
                }
                if (arg_json)
                        print_json(a);
                else
                        print_table(header, 7, rows, n);
                free_rows(rows, n, 7);
                return EXIT_OK;
        }
        if (streq(verb, "kill")) {
                if (argc < 2) {
                        fprintf(stderr, "isol8ctl: sessions kill needs an ID\n");
                        return EXIT_USAGE;
                }
                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "DestroySession", &error, NULL, "s", argv[1]);
                if (r < 0)
                        return bus_failure(&error, r);
                if (!arg_json)
                        printf("Destroyed session %s.\n", argv[1]);
                return EXIT_OK;
        }
        fprintf(stderr, "isol8ctl: unknown sessions command '%s' (list, show, kill)\n", verb);
        return EXIT_USAGE;
}

static int cmd_cleanup(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t sessions, sandboxes;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "Cleanup", &error, &reply, NULL);
        if (r < 0)
                return bus_failure(&error, r);
        if (sd_bus_message_read(reply, "uu", &sessions, &sandboxes) < 0)
                return EXIT_FAILURE_;
        if (arg_json)
                printf("{\"sessions\": %u, \"sandboxes\": %u}\n", sessions, sandboxes);
        else
                printf("Destroyed %u session(s) and %u idle sandbox(es).\n", sessions, sandboxes);
        return EXIT_OK;
}

int main(int argc, char **argv) {
        enum { ARG_SYSTEM = 0x100, ARG_USER, ARG_ADDRESS, ARG_JSON, ARG_NO_LEGEND, ARG_TENANT, ARG_TTL, ARG_VERSION };
        static const struct option options[] = {
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "user", no_argument, NULL, ARG_USER },
                { "address", required_argument, NULL, ARG_ADDRESS },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "tenant", required_argument, NULL, ARG_TENANT },
                { "ttl", required_argument, NULL, ARG_TTL },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        sd_bus *bus = NULL;
        bool want_help = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_SYSTEM: arg_user = false; arg_address = NULL; break;
                case ARG_USER: arg_user = true; break;
                case ARG_ADDRESS: arg_address = optarg; break;
                case ARG_JSON: arg_json = true; break;
                case ARG_NO_LEGEND: arg_legend = false; break;
                case ARG_TENANT: arg_tenant = optarg; break;
                case ARG_TTL: arg_ttl = optarg; break;
                case ARG_VERSION: printf("isol8ctl %s\n", ISOL8_VERSION); return EXIT_OK;
                case 'h': want_help = true; break;
                default: return EXIT_USAGE;
                }
        argc -= optind;
        argv += optind;
        if (want_help)
                return help(argc > 0 ? argv[0] : NULL);
        if (argc == 0)
                return help(NULL), EXIT_USAGE;
        if (!streq(argv[0], "status") && !streq(argv[0], "keys") && !streq(argv[0], "sessions") && !streq(argv[0], "cleanup")) {
                fprintf(stderr, "isol8ctl: unknown command '%s'; see isol8ctl --help\n", argv[0]);
                return EXIT_USAGE;
        }
        r = connect_bus(&bus);
        if (r < 0)
                return EXIT_FAILURE_;
        if (streq(argv[0], "status"))
                r = cmd_status(bus);
        else if (streq(argv[0], "keys"))
                r = cmd_keys(bus, argc - 1, argv + 1);
        else if (streq(argv[0], "sessions"))
                r = cmd_sessions(bus, argc - 1, argv + 1);
        else
                r = cmd_cleanup(bus);
        sd_bus_flush_close_unref(bus);
        return r;
}
