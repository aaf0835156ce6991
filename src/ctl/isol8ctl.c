/* SPDX-License-Identifier: MIT */
/* isol8ctl: administer an isol8 daemon over D-Bus (org.isol8.Daemon1), in the manner of
 * timedatectl and loginctl. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "bus/errors.h"
#include "shared/json-util.h"
#include "shared/time-util.h"
#include "shared/util.h"

#define BUS_NAME "org.isol8.Daemon1"
#define BUS_PATH "/org/isol8/Daemon1"
#define MANAGER "org.isol8.Daemon1.Manager"
/* How long a call may wait for the daemon (D-Bus activation included) before we say so. */
#define CALL_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* The longest key lifetime the daemon accepts. */
#define TTL_MAX_MS (UINT64_C(10) * 365 * 24 * 3600 * 1000)

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
static bool arg_json_pretty = true;
static bool arg_legend = true;
static const char *arg_tenant = NULL;
static const char *arg_ttl = NULL;
static const char *arg_runtime = NULL;
static const char *arg_packages = NULL;
/* An image's build runs the installers: as long as the daemon lets them take. */
#define BUILD_TIMEOUT_USEC (60 * 60 * USEC_PER_SEC)

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
        else if (streq_ptr(verb, "images"))
                printf("isol8ctl images list                List runtime images\n"
                       "isol8ctl images build NAME --runtime python|node|bun|deno|bash --packages A,B,...\n"
                       "                                    Build an image (waits for the installers)\n"
                       "isol8ctl images remove NAME         Remove an image no run is using\n");
        else if (streq_ptr(verb, "status"))
                printf("isol8ctl status                     Version, executions, queue and sessions\n");
        else if (streq_ptr(verb, "drain"))
                printf("isol8ctl drain                      Stop taking work, let running work finish, then stop\n");
        else if (streq_ptr(verb, "cleanup"))
                printf("isol8ctl cleanup                    Destroy every session and idle sandbox\n");
        else
                printf("isol8ctl [OPTIONS] COMMAND ...\n\n"
                       "Administer the isol8 daemon over D-Bus.\n\n"
                       "Commands:\n"
                       "  status                     Show the daemon's state\n"
                       "  keys list|create|revoke    Manage DB-backed API keys\n"
                       "  sessions list|show|kill    Manage persistent sessions\n"
                       "  images list|build|remove   Manage runtime images\n"
                       "  cleanup                    Destroy every session and idle sandbox\n"
                       "  drain                      Stop taking work; stop once running work is done\n\n"
                       "Options:\n"
                       "  --system                   Talk to the daemon on the system bus (default)\n"
                       "  --user                     ... on the user bus\n"
                       "  --address=ADDRESS          ... on the bus at ADDRESS\n"
                       "  --json[=pretty|short]      JSON output for scripts\n"
                       "  --no-legend                Tables without header and footer\n"
                       "  --no-pager                 Accepted for habit; output is never paged\n"
                       "  --tenant=T                 Tenant for keys list/create\n"
                       "  --ttl=TIMESPAN             Lifetime of a new key: \"3600\" (seconds), \"90s\", \"1h 30m\",\n"
                       "                             \"7d\", \"1w\" (at most 10 years)\n"
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
        (void) sd_bus_set_method_call_timeout(bus, CALL_TIMEOUT_USEC);
        *ret = bus;
        return 0;
}

/* One plain sentence for what went wrong; exit 4 only for "no such key or session". */
static int bus_failure(const sd_bus_error *error, int r) {
        /* By name: sd-bus maps org.freedesktop.DBus.Error.Failed (an internal failure) to EACCES too. */
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED) ||
            (!sd_bus_error_is_set(error) && (r == -EACCES || r == -EPERM))) {
                fprintf(stderr, "isol8ctl: permission denied: run it as root or as a member of the isol8 group.\n");
                return EXIT_DENIED;
        }
        if (sd_bus_error_has_name(error, BUS_ERROR_UNKNOWN_KEY) || sd_bus_error_has_name(error, BUS_ERROR_UNKNOWN_SESSION) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                fprintf(stderr, "isol8ctl: %s\n", error->message ?: "not found");
                return EXIT_NOT_FOUND;
        }
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_SERVICE_UNKNOWN) || sd_bus_error_has_name(error, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
            sd_bus_error_has_name(error, "org.freedesktop.DBus.Error.Spawn.ChildExited") ||
            sd_bus_error_has_name(error, "org.freedesktop.DBus.Error.Spawn.ServiceNotFound") ||
            sd_bus_error_has_name(error, "org.freedesktop.systemd1.UnitFailed")) {
                fprintf(stderr, "isol8ctl: the isol8 daemon is not running (start it: systemctl start isol8.socket; "
                                "why it stopped: journalctl -u isol8.service).\n");
                return EXIT_FAILURE_;
        }
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_NO_REPLY) || sd_bus_error_has_name(error, SD_BUS_ERROR_TIMEOUT) ||
            r == -ETIMEDOUT) {
                fprintf(stderr, "isol8ctl: the isol8 daemon did not answer within %u s (systemctl status isol8.service).\n",
                        (unsigned) (CALL_TIMEOUT_USEC / USEC_PER_SEC));
                return EXIT_FAILURE_;
        }
        fprintf(stderr, "isol8ctl: %s\n", error && error->message ? error->message : strerror(-r));
        return EXIT_FAILURE_;
}

/* A time for a table: local and readable on a terminal, ISO 8601 (UTC) otherwise. */
static const char *iso(uint64_t usec, char buf[static 64]) {
        if (!usec)
                return "-";
        if (isatty(STDOUT_FILENO)) {
                time_t t = (time_t) (usec / USEC_PER_SEC);
                struct tm tm;
                if (localtime_r(&t, &tm) && strftime(buf, 64, "%a %Y-%m-%d %H:%M:%S %Z", &tm) > 0)
                        return buf;
        }
        return format_iso8601(usec, buf);
}

static json_object *iso_json(uint64_t usec) {
        char buf[64];
        return usec ? json_object_new_string(format_iso8601(usec, buf)) : NULL;
}

static void print_json(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, (arg_json_pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
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

/* The Cluster property as JSON (the shape of /queue/status's "cluster.nodes"); NULL when the
 * server has none (one server, or an older one). */
static json_object *cluster_view(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *id, *url, *state;
        uint32_t running, queued, sessions, max;
        uint64_t seen;
        json_object *a;
        int r;

        if (sd_bus_get_property(bus, BUS_NAME, BUS_PATH, MANAGER, "Cluster", &error, &reply, "a(sssuuuut)") < 0 ||
            sd_bus_message_enter_container(reply, 'a', "(sssuuuut)") < 0 || !(a = json_object_new_array()))
                return NULL;
        while ((r = sd_bus_message_read(reply, "(sssuuuut)", &id, &url, &state, &running, &queued, &sessions, &max, &seen)) > 0) {
                json_object *e = json_object_new_object();
                if (!e)
                        break;
                json_add(e, "nodeId", json_object_new_string(id));
                json_add(e, "url", json_object_new_string(url));
                json_add(e, "state", json_object_new_string(state));
                json_add(e, "current", json_object_new_int64(running));
                json_add(e, "max", json_object_new_int64(max));
                json_add(e, "pending", json_object_new_int64(queued));
                json_add(e, "sessions", json_object_new_int64(sessions));
                json_add(e, "lastSeenMs", json_object_new_int64((int64_t) seen));
                json_object_array_add(a, e);
        }
        return a;
}

/* The nodes as a table (the same table as every list here). */
static void print_cluster(json_object *nodes) {
        static const char *const header[] = { "NODE", "STATE", "RUNNING", "QUEUED", "SESSIONS", "URL" };
        size_t n = json_object_array_length(nodes);
        char ***rows = calloc(n, sizeof(char **));

        for (size_t i = 0; rows && i < n; i++) {
                json_object *e = json_object_array_get_idx(nodes, i), *v;
                char running[48], queued[24], sessions[24];
#define STR(k) (json_object_object_get_ex(e, k, &v) ? json_object_get_string(v) : "")
#define NUM(k) (json_object_object_get_ex(e, k, &v) ? json_object_get_int64(v) : 0)
                snprintf(running, sizeof(running), "%" PRId64 "/%" PRId64, NUM("current"), NUM("max"));
                snprintf(queued, sizeof(queued), "%" PRId64, NUM("pending"));
                snprintf(sessions, sizeof(sessions), "%" PRId64, NUM("sessions"));
                rows[i] = calloc(ELEMENTSOF(header), sizeof(char *));
                if (!rows[i] || !(rows[i][0] = strdup(STR("nodeId"))) || !(rows[i][1] = strdup(STR("state"))) ||
                    !(rows[i][2] = strdup(running)) || !(rows[i][3] = strdup(queued)) || !(rows[i][4] = strdup(sessions)) ||
                    !(rows[i][5] = strdup(STR("url")))) {
                        free_rows(rows, rows[i] ? i + 1 : i, ELEMENTSOF(header));
                        return;
                }
#undef STR
#undef NUM
        }
        if (!rows)
                return;
        printf("\n");
        print_table(header, ELEMENTSOF(header), rows, n);
        free_rows(rows, n, ELEMENTSOF(header));
}

static int cmd_status(sd_bus *bus) {
        static const char *const names[] = { "Version", "ActiveExecutions", "QueuedExecutions", "MaxConcurrent", "SessionCount",
                                             "TotalExecutions" };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *o = json_object_new_object();
        char *version = NULL;
        json_object *cluster;
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
        cluster = cluster_view(bus);
        if (arg_json) {
                json_add(o, "version", json_object_new_string(version));
                json_add(o, "activeExecutions", json_object_new_int64(u[0]));
                json_add(o, "queuedExecutions", json_object_new_int64(u[1]));
                json_add(o, "maxConcurrent", json_object_new_int64(u[2]));
                json_add(o, "sessionCount", json_object_new_int64(u[3]));
                json_add(o, "totalExecutions", json_object_new_int64((int64_t) total));
                if (cluster && json_object_array_length(cluster) > 0)
                        json_add(o, "cluster", json_object_get(cluster));
                print_json(o);
        } else {
                printf("          Version: %s\n Executions running: %u of %u\n  Waiting in queue: %u\n          Sessions: %u\n"
                       "  Executions total: %" PRIu64 "\n", version, u[0], u[2], u[1], u[3], total);
                if (cluster && json_object_array_length(cluster) > 0)
                        print_cluster(cluster);
        }
        json_object_put(cluster);
        free(version);
        return EXIT_OK;
}

/* A systemd time span in milliseconds: "3600" (seconds), "90s", "1h 30m", "2d", "1w", "500ms". */
static int parse_ttl(const char *s, uint64_t *ret) {
        static const struct { const char *suffix; uint64_t ms; } units[] = {
                { "ms", 1 }, { "msec", 1 }, { "s", 1000 }, { "sec", 1000 }, { "second", 1000 }, { "seconds", 1000 },
                { "m", 60000 }, { "min", 60000 }, { "minute", 60000 }, { "minutes", 60000 },
                { "h", 3600000 }, { "hr", 3600000 }, { "hour", 3600000 }, { "hours", 3600000 },
                { "d", 86400000 }, { "day", 86400000 }, { "days", 86400000 },
                { "w", 604800000 }, { "week", 604800000 }, { "weeks", 604800000 },
                { "M", 2629800000 }, { "month", 2629800000 }, { "months", 2629800000 },
                { "y", 31557600000 }, { "year", 31557600000 }, { "years", 31557600000 },
        };
        uint64_t total = 0;
        bool any = false;

        while (*s) {
                char *end;
                unsigned long long v;
                size_t ul;
                uint64_t mult = 0;

                s += strspn(s, " ");
                if (!*s)
                        break;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                errno = 0;
                v = strtoull(s, &end, 10);
                if (errno)
                        return -ERANGE;
                s = end + strspn(end, " ");
                ul = strspn(s, "abcdefghijklmnopqrstuvwxyzM");
                if (ul == 0)
                        mult = 1000;   /* a bare number is seconds, as in systemd */
                for (size_t i = 0; i < ELEMENTSOF(units) && !mult; i++)
                        if (strlen(units[i].suffix) == ul && strncmp(s, units[i].suffix, ul) == 0)
                                mult = units[i].ms;
                if (!mult)
                        return -EINVAL;
                s += ul;
                if (v > TTL_MAX_MS / mult || total + v * mult > TTL_MAX_MS)
                        return -ERANGE;
                total += v * mult;
                any = true;
        }
        if (!any || total == 0)
                return -EINVAL;
        *ret = total;
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

                if (arg_ttl && parse_ttl(arg_ttl, &ttl) < 0)
                        return EXIT_USAGE;   /* not reached: checked before connecting */
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
                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "RevokeKey", &error, NULL, "s", argv[1]);
                if (r < 0)
                        return bus_failure(&error, r);
                if (!arg_json)
                        printf("Revoked %s.\n", argv[1]);
                else
                        printf("{\"ok\": true, \"id\": \"%s\"}\n", argv[1]);
                return EXIT_OK;
        }
        return EXIT_USAGE;   /* not reached: checked before connecting */
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
                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "DestroySession", &error, NULL, "s", argv[1]);
                if (r < 0)
                        return bus_failure(&error, r);
                if (!arg_json)
                        printf("Destroyed session %s.\n", argv[1]);
                return EXIT_OK;
        }
        return EXIT_USAGE;   /* not reached: checked before connecting */
}

static int cmd_images(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *call = NULL;
        const char *verb = argc > 0 ? argv[0] : "list";
        int r;

        if (streq(verb, "list")) {
                static const char *const header[] = { "NAME", "RUNTIME", "PACKAGES", "CREATED", "SIZE", "FILES" };
                _cleanup_json_ json_object *a = json_object_new_array();
                const char *name, *runtime, *packages;
                uint64_t created, bytes, files;
                char ***rows = NULL;
                size_t n = 0;

                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "ListImages", &error, &reply, NULL);
                if (r < 0)
                        return bus_failure(&error, r);
                r = sd_bus_message_enter_container(reply, 'a', "(sssttt)");
                while (r >= 0 && (r = sd_bus_message_read(reply, "(sssttt)", &name, &runtime, &packages, &created, &bytes, &files)) > 0) {
                        char b1[64], b2[32], b3[32];
                        json_object *o = json_object_new_object(), *pk = json_object_new_array();
                        _cleanup_free_ char *copy = strdup(packages);
                        for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
                                json_object_array_add(pk, json_object_new_string(t));
                        json_add(o, "name", json_object_new_string(name));
                        json_add(o, "runtime", json_object_new_string(runtime));
                        json_add(o, "packages", pk);
                        json_add(o, "createdAt", iso_json(created));
                        json_add(o, "sizeBytes", json_object_new_int64((int64_t) bytes));
                        json_add(o, "files", json_object_new_int64((int64_t) files));
                        json_object_array_add(a, o);
                        snprintf(b2, sizeof(b2), "%.1f MiB", (double) bytes / (1 << 20));
                        snprintf(b3, sizeof(b3), "%" PRIu64, files);
                        rows = realloc(rows, sizeof(char **) * (n + 1));
                        rows[n] = calloc(6, sizeof(char *));
                        rows[n][0] = strdup(name);
                        rows[n][1] = strdup(runtime);
                        rows[n][2] = strdup(packages);
                        rows[n][3] = strdup(iso(created, b1));
                        rows[n][4] = strdup(b2);
                        rows[n][5] = strdup(b3);
                        n++;
                }
                if (r < 0) {
                        free_rows(rows, n, 6);
                        fprintf(stderr, "isol8ctl: bad answer: %s\n", strerror(-r));
                        return EXIT_FAILURE_;
                }
                if (arg_json)
                        print_json(a);
                else
                        print_table(header, 6, rows, n);
                free_rows(rows, n, 6);
                return EXIT_OK;
        }
        if (streq(verb, "build")) {
                _cleanup_strv_free_ char **packages = NULL;
                _cleanup_free_ char *copy = strdup(arg_packages);
                uint64_t bytes, files;

                for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
                        if (strv_push(&packages, strdup(t)) < 0)
                                return EXIT_FAILURE_;
                r = sd_bus_message_new_method_call(bus, &call, BUS_NAME, BUS_PATH, MANAGER, "BuildImage");
                if (r >= 0)
                        r = sd_bus_message_append(call, "ss", argv[1], arg_runtime);
                if (r >= 0)
                        r = sd_bus_message_append_strv(call, packages);
                if (r < 0)
                        return EXIT_FAILURE_;
                if (!arg_json)
                        fprintf(stderr, "Building %s (%s: %s)...\n", argv[1], arg_runtime, arg_packages);
                r = sd_bus_call(bus, call, BUILD_TIMEOUT_USEC, &error, &reply);
                if (r < 0)
                        return bus_failure(&error, r);
                if (sd_bus_message_read(reply, "tt", &bytes, &files) < 0)
                        return EXIT_FAILURE_;
                if (arg_json)
                        printf("{\"ok\": true, \"name\": \"%s\", \"sizeBytes\": %" PRIu64 ", \"files\": %" PRIu64 "}\n", argv[1],
                               bytes, files);
                else
                        printf("Built %s: %.1f MiB in %" PRIu64 " files.\n", argv[1], (double) bytes / (1 << 20), files);
                return EXIT_OK;
        }
        if (streq(verb, "remove")) {
                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "RemoveImage", &error, NULL, "s", argv[1]);
                if (r < 0)
                        return bus_failure(&error, r);
                if (!arg_json)
                        printf("Removed %s.\n", argv[1]);
                else
                        printf("{\"ok\": true, \"name\": \"%s\"}\n", argv[1]);
                return EXIT_OK;
        }
        return EXIT_USAGE;   /* not reached: checked before connecting */
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

static int usage(const char *fmt, ...) _printf_(1, 2);
static int usage(const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "isol8ctl: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "; see isol8ctl --help\n");
        return EXIT_USAGE;
}

static int verb_status(sd_bus *bus, int argc, char **argv) {
        return cmd_status(bus);
}

static int verb_cleanup(sd_bus *bus, int argc, char **argv) {
        return cmd_cleanup(bus);
}

static int verb_drain(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t running;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, MANAGER, "Drain", &error, &reply, NULL);
        if (r < 0)
                return bus_failure(&error, r);
        if (sd_bus_message_read(reply, "u", &running) < 0)
                return EXIT_FAILURE_;
        if (arg_json)
                printf("{\"ok\": true, \"running\": %u}\n", running);
        else
                printf("Draining: %u run(s) under way will finish, then the server stops.\n", running);
        return EXIT_OK;
}

typedef struct Verb {
        const char *name;
        int (*run)(sd_bus *bus, int argc, char **argv);
} Verb;

static const Verb verbs[] = {
        { "status",   verb_status },
        { "keys",     cmd_keys },
        { "sessions", cmd_sessions },
        { "images",   cmd_images },
        { "cleanup",  verb_cleanup },
        { "drain",    verb_drain },
};

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(name, verbs[i].name))
                        return &verbs[i];
        return NULL;
}

/* Every usage error is found here, before the bus is touched. */
static int check_args(int argc, char **argv) {
        const char *verb = argv[0], *sub = argc > 1 ? argv[1] : NULL;
        uint64_t ttl;

        if (arg_tenant && (!*arg_tenant || arg_tenant[0] == '@' || strlen(arg_tenant) > 128))
                return usage("--tenant must be 1-128 characters, not starting with '@'");
        if (arg_ttl && parse_ttl(arg_ttl, &ttl) < 0)
                return usage("invalid --ttl '%s' (a time span: 3600, 90s, 1h 30m, 7d, 1w; at most 10 years)", arg_ttl);
        if (!find_verb(verb))
                return usage("unknown command '%s'", verb);
        if (streq(verb, "status") || streq(verb, "cleanup") || streq(verb, "drain"))
                return argc == 1 ? 0 : usage("%s takes no arguments", verb);
        if (streq(verb, "keys")) {
                if (!sub || streq(sub, "list"))
                        return argc <= 2 ? 0 : usage("keys list takes no arguments");
                if (streq(sub, "create"))
                        return argc == 3 && *argv[2] ? 0 : usage("keys create needs one NAME");
                if (streq(sub, "revoke"))
                        return argc == 3 ? 0 : usage("keys revoke needs one ID");
                return usage("unknown keys command '%s' (list, create, revoke)", sub);
        }
        if (streq(verb, "sessions")) {
                if (!sub || streq(sub, "list"))
                        return argc <= 2 ? 0 : usage("sessions list takes no arguments");
                if (streq(sub, "show") || streq(sub, "kill"))
                        return argc == 3 ? 0 : usage("sessions show and kill need one ID");
                return usage("unknown sessions command '%s' (list, show, kill)", sub);
        }
        if (streq(verb, "images")) {
                if (!sub || streq(sub, "list"))
                        return argc <= 2 ? 0 : usage("images list takes no arguments");
                if (streq(sub, "remove"))
                        return argc == 3 ? 0 : usage("images remove needs one NAME");
                if (streq(sub, "build")) {
                        if (argc != 3 || !*argv[2])
                                return usage("images build needs one NAME");
                        if (!arg_runtime || !arg_packages || !*arg_packages)
                                return usage("images build needs --runtime and --packages");
                        return 0;
                }
                return usage("unknown images command '%s' (list, build, remove)", sub);
        }
        return usage("unknown command '%s'", verb);
}

int main(int argc, char **argv) {
        enum { ARG_SYSTEM = 0x100, ARG_USER, ARG_ADDRESS, ARG_JSON, ARG_NO_LEGEND, ARG_NO_PAGER, ARG_TENANT, ARG_TTL, ARG_VERSION,
               ARG_RUNTIME, ARG_PACKAGES };
        static const struct option options[] = {
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "user", no_argument, NULL, ARG_USER },
                { "address", required_argument, NULL, ARG_ADDRESS },
                { "json", optional_argument, NULL, ARG_JSON },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "tenant", required_argument, NULL, ARG_TENANT },
                { "ttl", required_argument, NULL, ARG_TTL },
                { "runtime", required_argument, NULL, ARG_RUNTIME },
                { "packages", required_argument, NULL, ARG_PACKAGES },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        sd_bus *bus = NULL;
        bool want_help = false;
        int c, r;

        /* The daemon's errors carry their errno too (bus/errors.c). */
        (void) sd_bus_error_add_map(isol8_bus_error_map);

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_SYSTEM: arg_user = false; arg_address = NULL; break;
                case ARG_USER: arg_user = true; break;
                case ARG_ADDRESS: arg_address = optarg; break;
                case ARG_JSON:
                        arg_json = true;
                        if (optarg && !streq(optarg, "pretty") && !streq(optarg, "short"))
                                return usage("--json takes pretty or short, not '%s'", optarg);
                        arg_json_pretty = !optarg || streq(optarg, "pretty");
                        break;
                case ARG_NO_LEGEND: arg_legend = false; break;
                case ARG_NO_PAGER: break;
                case ARG_TENANT: arg_tenant = optarg; break;
                case ARG_TTL: arg_ttl = optarg; break;
                case ARG_RUNTIME: arg_runtime = optarg; break;
                case ARG_PACKAGES: arg_packages = optarg; break;
                case ARG_VERSION: printf("isol8ctl %s\n", ISOL8_VERSION); return EXIT_OK;
                case 'h': want_help = true; break;
                default:
                        fprintf(stderr, "isol8ctl: see isol8ctl --help\n");
                        return EXIT_USAGE;
                }
        argc -= optind;
        argv += optind;
        if (want_help)
                return help(argc > 0 ? argv[0] : NULL);
        if (argc == 0)
                return help(NULL), EXIT_USAGE;
        r = check_args(argc, argv);
        if (r != 0)
                return r;
        r = connect_bus(&bus);
        if (r < 0)
                return EXIT_FAILURE_;
        r = find_verb(argv[0])->run(bus, argc - 1, argv + 1);
        sd_bus_flush_close_unref(bus);
        return r;
}
