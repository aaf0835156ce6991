/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/egress.h"
#include "sandbox/runtime.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/size.h"
#include "shared/util.h"

typedef enum ConfigType {
        CT_OBJECT,      /* descend */
        CT_BOOL,
        CT_U64,
        CT_DOUBLE,
        CT_STRING,
        CT_SIZE,        /* "512m" or a number of bytes */
        CT_STRV,
        CT_POOL_STRATEGY,
        CT_POOL_SIZE,   /* N or {"clean":N,"dirty":N} */
        CT_RUNTIMES,
        CT_NETWORK,     /* "none", "host" or "filtered" */
        CT_PORTS,       /* an array of port numbers */
        CT_DEPENDENCIES, /* {"python": ["numpy"], ...} */
} ConfigType;

typedef struct ConfigKey {
        const char *path;
        ConfigType type;
        size_t offset;
} ConfigKey;

#define F(field) offsetof(Config, field)

static const ConfigKey config_keys[] = {
        { "maxConcurrent",                  CT_U64,    F(max_concurrent) },
        { "defaults",                       CT_OBJECT, 0 },
        { "defaults.timeoutMs",             CT_U64,    F(defaults.timeout_ms) },
        { "defaults.memoryLimit",           CT_SIZE,   F(defaults.memory_bytes) },
        { "defaults.cpuLimit",              CT_DOUBLE, F(defaults.cpu) },
        { "defaults.pidsLimit",             CT_U64,    F(defaults.pids) },
        { "defaults.maxOutputSize",         CT_U64,    F(defaults.max_output) },
        { "defaults.network",               CT_NETWORK, F(defaults.network) },
        { "defaults.sandboxSize",           CT_SIZE,   F(defaults.sandbox_bytes) },
        { "defaults.tmpSize",               CT_SIZE,   F(defaults.tmp_bytes) },
        { "defaults.readonlyRootFs",        CT_BOOL,   F(defaults.readonly_rootfs) },
        { "limits",                         CT_OBJECT, 0 },
        { "limits.maxTimeoutMs",            CT_U64,    F(limits.timeout_ms) },
        { "limits.maxMemory",               CT_SIZE,   F(limits.memory_bytes) },
        { "limits.maxCpu",                  CT_DOUBLE, F(limits.cpu) },
        { "limits.maxPids",                 CT_U64,    F(limits.pids) },
        { "limits.maxOutputSize",           CT_U64,    F(limits.max_output) },
        { "limits.maxSandboxSize",          CT_SIZE,   F(limits.sandbox_bytes) },
        { "limits.maxTmpSize",              CT_SIZE,   F(limits.tmp_bytes) },
        { "limits.maxBodyBytes",            CT_U64,    F(limits.body_bytes) },
        { "limits.outputBudgetBytes",       CT_U64,    F(output_budget_bytes) },
        { "cleanup",                        CT_OBJECT, 0 },
        { "cleanup.autoPrune",              CT_BOOL,   F(cleanup_auto_prune) },
        { "cleanup.maxContainerAgeMs",      CT_U64,    F(cleanup_max_age_ms) },
        { "cleanup.intervalMs",             CT_U64,    F(cleanup_interval_ms) },
        { "sessions",                       CT_OBJECT, 0 },
        { "sessions.maxTotal",              CT_U64,    F(sessions_max_total) },
        { "sessions.maxPerTenant",          CT_U64,    F(sessions_max_per_tenant) },
        { "poolStrategy",                   CT_POOL_STRATEGY, F(pool_strategy) },
        { "poolSize",                       CT_POOL_SIZE, 0 },
        { "network",                        CT_OBJECT, 0 },
        { "network.whitelist",              CT_STRV,   F(network_whitelist) },
        { "network.blacklist",              CT_STRV,   F(network_blacklist) },
        { "network.allowedAddresses",       CT_STRV,   F(network_allowed_addresses) },
        { "network.allowedPorts",           CT_PORTS,  F(network_allowed_ports) },
        { "network.maxConnections",         CT_U64,    F(network_max_connections) },
        { "network.maxBytes",               CT_SIZE,   F(network_max_bytes) },
        { "network.connectTimeoutMs",       CT_U64,    F(network_connect_timeout_ms) },
        { "remoteCode",                     CT_OBJECT, 0 },
        { "remoteCode.enabled",             CT_BOOL,   F(remote_code_enabled) },
        { "remoteCode.allowedSchemes",      CT_STRV,   F(remote_code_allowed_schemes) },
        { "remoteCode.allowedHosts",        CT_STRV,   F(remote_code_allowed_hosts) },
        { "remoteCode.blockedHosts",        CT_STRV,   F(remote_code_blocked_hosts) },
        { "remoteCode.maxCodeSize",         CT_SIZE,   F(remote_code_max_size) },
        { "remoteCode.fetchTimeoutMs",      CT_U64,    F(remote_code_fetch_timeout_ms) },
        { "remoteCode.requireHash",         CT_BOOL,   F(remote_code_require_hash) },
        { "remoteCode.caFile",              CT_STRING, F(remote_code_ca_file) },
        { "packages",                       CT_OBJECT, 0 },
        { "packages.pypiIndexUrl",          CT_STRING, F(packages_pypi_index_url) },
        { "packages.npmRegistry",           CT_STRING, F(packages_npm_registry) },
        { "packages.debianMirror",          CT_STRING, F(packages_debian_mirror) },
        { "packages.debianSuite",           CT_STRING, F(packages_debian_suite) },
        { "packages.allowedHosts",          CT_STRV,   F(packages_allowed_hosts) },
        { "packages.installTimeoutMs",      CT_U64,    F(packages_install_timeout_ms) },
        { "images",                         CT_OBJECT, 0 },
        { "images.directory",               CT_STRING, F(images_directory) },
        { "images.poolSize",                CT_U64,    F(images_pool_size) },
        { "images.maxSize",                 CT_SIZE,   F(images_max_size) },
        { "images.buildMemoryLimit",        CT_SIZE,   F(images_build_memory) },
        { "agent",                          CT_OBJECT, 0 },
        { "agent.image",                    CT_STRING, F(agent_image) },
        { "drainTimeoutMs",                 CT_U64,    F(drain_timeout_ms) },
        { "cpuLeadMs",                      CT_U64,    F(cpu_lead_ms) },
        { "cpuStartMs",                     CT_U64,    F(cpu_start_ms) },
        { "cluster",                        CT_OBJECT, 0 },
        { "cluster.nodeId",                 CT_STRING, F(cluster_node_id) },
        { "cluster.advertiseUrl",           CT_STRING, F(cluster_advertise_url) },
        { "cluster.secret",                 CT_STRING, F(cluster_secret) },
        { "cluster.connectionString",       CT_STRING, F(cluster_connection_string) },
        { "cluster.heartbeatMs",            CT_U64,    F(cluster_heartbeat_ms) },
        { "cluster.deadAfterMs",            CT_U64,    F(cluster_dead_after_ms) },
        { "cluster.lostSessionTtlMs",       CT_U64,    F(cluster_lost_ttl_ms) },
        { "security",                       CT_OBJECT, 0 },
        { "security.seccomp",               CT_STRING, F(security_seccomp) },
        { "security.allowedNetworks",       CT_STRV,   F(security_allowed_networks) },
        { "security.allowClientSeccompChange", CT_BOOL, F(security_allow_client_seccomp_change) },
        { "audit",                          CT_OBJECT, 0 },
        { "audit.enabled",                  CT_BOOL,   F(audit_enabled) },
        { "audit.destination",              CT_STRING, F(audit_destination) },
        { "audit.logDir",                   CT_STRING, F(audit_log_dir) },
        { "audit.retentionDays",            CT_U64,    F(audit_retention_days) },
        { "audit.includeCode",              CT_BOOL,   F(audit_include_code) },
        { "audit.includeOutput",            CT_BOOL,   F(audit_include_output) },
        { "auth",                           CT_OBJECT, 0 },
        { "auth.enabled",                   CT_BOOL,   F(auth_enabled) },
        { "auth.connectionString",          CT_STRING, F(auth_connection_string) },
        { "auth.defaultTtlMs",              CT_U64,    F(auth_default_ttl_ms) },
        { "auth.cleanupIntervalMs",         CT_U64,    F(auth_cleanup_interval_ms) },
        { "auth.timeoutMs",                 CT_U64,    F(auth_timeout_ms) },
        { "auth.cacheTtlMs",                CT_U64,    F(auth_cache_ttl_ms) },
        { "auth.lastUsedFlushMs",           CT_U64,    F(auth_last_used_flush_ms) },
        { "queue",                          CT_OBJECT, 0 },
        { "queue.maxSize",                  CT_U64,    F(queue_max_size) },
        { "queue.timeoutMs",                CT_U64,    F(queue_timeout_ms) },
        { "queue.maxPerTenant",             CT_U64,    F(queue_max_per_tenant) },
        { "runtimes",                       CT_RUNTIMES, 0 },
        { "dependencies",                   CT_DEPENDENCIES, 0 },
        { "http",                           CT_OBJECT, 0 },
        { "http.connectionTimeoutSec",      CT_U64,    F(http_connection_timeout_sec) },
        { "http.maxConnections",            CT_U64,    F(http_max_connections) },
        { "http.maxConnectionsPerIp",       CT_U64,    F(http_max_connections_per_ip) },
        { "http.requestHeadTimeoutMs",      CT_U64,    F(http_request_head_timeout_ms) },
        { "http.maxHeaderBytes",            CT_U64,    F(http_max_header_bytes) },
        { "http.sseKeepaliveMs",            CT_U64,    F(sse_keepalive_ms) },
        { "idleExitSec",                    CT_U64,    F(idle_exit_sec) },
        { "dbus",                           CT_OBJECT, 0 },
        { "dbus.adminGroup",                CT_STRING, F(dbus_admin_group) },
        { "sandbox",                        CT_OBJECT, 0 },
        { "sandbox.uidBase",                CT_U64,    F(sandbox_uid_base) },
        { "sandbox.stateDir",               CT_STRING, F(sandbox_state_dir) },
};

static char *xstrdup(const char *s) {
        char *p = strdup(s);
        if (!p)
                abort();
        return p;
}

void config_init(Config *c) {
        *c = (Config) {
                .max_concurrent = 10,
                .defaults = {
                        .timeout_ms = 30000,
                        .memory_bytes = UINT64_C(512) << 20,
                        .cpu = 1.0,
                        .pids = 64,
                        .max_output = 1048576,
                        .sandbox_bytes = UINT64_C(512) << 20,
                        .tmp_bytes = UINT64_C(256) << 20,
                        .readonly_rootfs = true,
                        .network = NETWORK_NONE,
                        .seccomp = true,
                },
                .limits = {
                        .timeout_ms = 300000,
                        .memory_bytes = UINT64_C(4) << 30,
                        .cpu = 4,
                        .pids = 1024,
                        .max_output = 16777216,
                        .sandbox_bytes = UINT64_C(2) << 30,
                        .tmp_bytes = UINT64_C(1) << 30,
                        .body_bytes = 10485760,
                },
                .cleanup_auto_prune = true,
                .cleanup_max_age_ms = 3600000,
                .cleanup_interval_ms = 60000,
                .sessions_max_total = 1000,
                .sessions_max_per_tenant = 100,
                .pool_strategy = POOL_FAST,
                .pool_clean = 1,
                .pool_dirty = 1,
                .network_allowed_ports = { 80, 443 },
                .n_network_allowed_ports = 2,
                .network_max_connections = 32,
                .network_max_bytes = UINT64_C(1) << 30,
                .network_connect_timeout_ms = 10000,
                .remote_code_max_size = UINT64_C(10) << 20,
                .packages_pypi_index_url = xstrdup("https://pypi.org/simple/"),
                .packages_npm_registry = xstrdup("https://registry.npmjs.org/"),
                .packages_debian_mirror = xstrdup("http://deb.debian.org/debian"),
                .packages_install_timeout_ms = 120000,
                .images_pool_size = 1,
                .images_max_size = UINT64_C(1) << 30,
                .images_build_memory = UINT64_C(2) << 30,
                .agent_image = xstrdup("agent"),
                .cpu_lead_ms = 100,
                .cpu_start_ms = 15,
                .cluster_heartbeat_ms = 1000,
                .cluster_dead_after_ms = 5000,
                .cluster_lost_ttl_ms = 3600000,
                .remote_code_fetch_timeout_ms = 30000,
                .security_seccomp = xstrdup("strict"),
                .audit_enabled = true,
                .audit_destination = xstrdup("journal"),
                .audit_retention_days = 90,
                .auth_default_ttl_ms = 86400000,
                .auth_cleanup_interval_ms = 3600000,
                .auth_timeout_ms = 3000,
                .auth_cache_ttl_ms = 5000,
                .auth_last_used_flush_ms = 5000,
                .queue_max_size = 100,
                .queue_timeout_ms = 30000,
                .http_connection_timeout_sec = 60,
                .output_budget_bytes = UINT64_C(256) << 20,
                .http_max_connections = 1000,
                .http_max_connections_per_ip = 64,
                .http_request_head_timeout_ms = 10000,
                .http_max_header_bytes = 65536,
                .sse_keepalive_ms = 15000,
                .idle_exit_sec = IDLE_EXIT_DEFAULT,
                .sandbox_uid_base = 1000000,
                /* Under systemd, RuntimeDirectory=isol8 ($RUNTIME_DIRECTORY, its first entry). */
                .sandbox_state_dir = getenv("RUNTIME_DIRECTORY") && *getenv("RUNTIME_DIRECTORY")
                                             ? strndup(getenv("RUNTIME_DIRECTORY"), strcspn(getenv("RUNTIME_DIRECTORY"), ":"))
                                             : xstrdup("/run/isol8"),
        };
        c->security_allowed_networks = calloc(2, sizeof(char *));
        if (!c->security_allowed_networks)
                abort();
        c->security_allowed_networks[0] = xstrdup("none");
        c->remote_code_allowed_schemes = calloc(2, sizeof(char *));
        c->packages_allowed_hosts = calloc(2, sizeof(char *));
        if (!c->remote_code_allowed_schemes || !c->packages_allowed_hosts)
                abort();
        c->remote_code_allowed_schemes[0] = xstrdup("https");
        c->packages_allowed_hosts[0] = xstrdup("files.pythonhosted.org");
}

void config_done(Config *c) {
        strv_free(c->network_whitelist);
        strv_free(c->network_blacklist);
        strv_free(c->network_allowed_addresses);
        strv_free(c->remote_code_allowed_schemes);
        strv_free(c->remote_code_allowed_hosts);
        strv_free(c->remote_code_blocked_hosts);
        free(c->remote_code_ca_file);
        free(c->packages_pypi_index_url);
        free(c->packages_npm_registry);
        free(c->packages_debian_mirror);
        free(c->packages_debian_suite);
        free(c->images_directory);
        free(c->agent_image);
        strv_free(c->packages_allowed_hosts);
        free(c->security_seccomp);
        strv_free(c->security_allowed_networks);
        free(c->audit_destination);
        free(c->audit_log_dir);
        free(c->auth_connection_string);
        free(c->cluster_node_id);
        free(c->cluster_advertise_url);
        if (c->cluster_secret)
                explicit_bzero(c->cluster_secret, strlen(c->cluster_secret));
        free(c->cluster_secret);
        free(c->cluster_connection_string);
        for (size_t i = 0; i < ELEMENTSOF(c->runtime_path); i++)
                free(c->runtime_path[i]);
        for (size_t i = 0; i < ELEMENTSOF(c->dependencies); i++)
                strv_free(c->dependencies[i]);
        free(c->sandbox_state_dir);
        free(c->dbus_admin_group);
        *c = (Config) {};
}

static const ConfigKey *find_key(const char *path) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq(config_keys[i].path, path))
                        return &config_keys[i];
        return NULL;
}

static int fail(char **ret_error, const char *path, const char *what) {
        if (ret_error) {
                if (asprintf(ret_error, "config key '%s' %s", path, what) < 0)
                        *ret_error = NULL;
        }
        return -EINVAL;
}

static int parse_u64(json_object *v, uint64_t *ret) {
        double d;
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                return -EINVAL;
        d = json_object_get_double(v);
        if (d < 0 || d != (double) (uint64_t) d)
                return -EINVAL;
        *ret = (uint64_t) d;
        return 0;
}

static int parse_strv(json_object *v, char ***ret) {
        char **l = NULL;
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return -EINVAL;
        n = json_object_array_length(v);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                if (!json_object_is_type(e, json_type_string)) {
                        strv_free(l);
                        return -EINVAL;
                }
                l[i] = xstrdup(json_object_get_string(e));
        }
        *ret = l;
        return 0;
}

static int load_object(Config *c, json_object *o, const char *prefix, char **ret_error);

static int load_value(Config *c, const ConfigKey *k, json_object *v, const char *path, char **ret_error) {
        void *field = (uint8_t *) c + k->offset;
        int r;

        switch (k->type) {
        case CT_OBJECT:
                if (!json_object_is_type(v, json_type_object))
                        return fail(ret_error, path, "must be an object");
                return load_object(c, v, path, ret_error);
        case CT_BOOL:
                if (!json_object_is_type(v, json_type_boolean))
                        return fail(ret_error, path, "must be true or false");
                *(bool *) field = json_object_get_boolean(v);
                return 0;
        case CT_U64:
                if (parse_u64(v, field) < 0)
                        return fail(ret_error, path, "must be a non-negative integer");
                return 0;
        case CT_DOUBLE:
                if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
                    json_object_get_double(v) <= 0)
                        return fail(ret_error, path, "must be a positive number");
                *(double *) field = json_object_get_double(v);
                return 0;
        case CT_STRING:
                if (!json_object_is_type(v, json_type_string))
                        return fail(ret_error, path, "must be a string");
                free(*(char **) field);
                *(char **) field = xstrdup(json_object_get_string(v));
                return 0;
        case CT_SIZE:
                if (json_object_is_type(v, json_type_string)) {
                        if (parse_size(json_object_get_string(v), field) < 0)
                                return fail(ret_error, path, "must be a size such as \"512m\"");
                        return 0;
                }
                if (parse_u64(v, field) < 0)
                        return fail(ret_error, path, "must be a size such as \"512m\" or a number of bytes");
                return 0;
        case CT_STRV: {
                char **l = NULL;
                r = parse_strv(v, &l);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(ret_error, path, "must be an array of strings");
                strv_free(*(char ***) field);
                *(char ***) field = l;
                return 0;
        }
        case CT_PORTS: {
                size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : SIZE_MAX;
                if (n > CONFIG_PORTS_MAX)
                        return fail(ret_error, path, "must be an array of at most 64 port numbers");
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(v, i);
                        int64_t port = json_object_is_type(e, json_type_int) ? json_object_get_int64(e) : -1;
                        if (port < 1 || port > 65535)
                                return fail(ret_error, path, "must hold port numbers from 1 to 65535");
                        c->network_allowed_ports[i] = (uint64_t) port;
                }
                c->n_network_allowed_ports = n;
                return 0;
        }
        case CT_NETWORK:
                r = json_object_is_type(v, json_type_string) ? network_mode_from_string(json_object_get_string(v)) : -EINVAL;
                if (r < 0)
                        return fail(ret_error, path, "must be \"none\", \"host\" or \"filtered\"");
                *(NetworkMode *) field = (NetworkMode) r;
                return 0;
        case CT_POOL_STRATEGY:
                if (!json_object_is_type(v, json_type_string))
                        return fail(ret_error, path, "must be \"fast\" or \"secure\"");
                if (streq(json_object_get_string(v), "fast"))
                        c->pool_strategy = POOL_FAST;
                else if (streq(json_object_get_string(v), "secure"))
                        c->pool_strategy = POOL_SECURE;
                else
                        return fail(ret_error, path, "must be \"fast\" or \"secure\"");
                return 0;
        case CT_POOL_SIZE:
                if (json_object_is_type(v, json_type_object)) {
                        json_object_object_foreach(v, key, val) {
                                uint64_t *dst = streq(key, "clean") ? &c->pool_clean :
                                                streq(key, "dirty") ? &c->pool_dirty : NULL;
                                _cleanup_free_ char *sub = NULL;
                                if (asprintf(&sub, "%s.%s", path, key) < 0)
                                        return -ENOMEM;
                                if (!dst) {
                                        log_warning("config: ignoring unknown key '%s'", sub);
                                        continue;
                                }
                                if (parse_u64(val, dst) < 0)
                                        return fail(ret_error, sub, "must be a non-negative integer");
                        }
                        return 0;
                }
                if (parse_u64(v, &c->pool_clean) < 0)
                        return fail(ret_error, path, "must be a number or {\"clean\":N,\"dirty\":N}");
                c->pool_dirty = c->pool_clean;
                return 0;
        case CT_RUNTIMES:
                if (!json_object_is_type(v, json_type_object))
                        return fail(ret_error, path, "must be an object");
                json_object_object_foreach(v, name, val) {
                        _cleanup_free_ char *sub = NULL;
                        int id = runtime_from_string(name);
                        json_object *p;

                        if (asprintf(&sub, "%s.%s", path, name) < 0)
                                return -ENOMEM;
                        if (id < 0) {
                                log_warning("config: ignoring unknown runtime '%s'", sub);
                                continue;
                        }
                        if (!json_object_is_type(val, json_type_object))
                                return fail(ret_error, sub, "must be an object such as {\"path\": \"/usr/bin/...\"}");
                        json_object_object_foreach(val, key2, val2) {
                                _cleanup_free_ char *sub2 = NULL;
                                if (asprintf(&sub2, "%s.%s", sub, key2) < 0)
                                        return -ENOMEM;
                                if (!streq(key2, "path")) {
                                        log_warning("config: ignoring unknown key '%s'", sub2);
                                        continue;
                                }
                                p = val2;
                                if (!json_object_is_type(p, json_type_string) || json_object_get_string(p)[0] != '/')
                                        return fail(ret_error, sub2, "must be an absolute path");
                                free(c->runtime_path[id]);
                                c->runtime_path[id] = xstrdup(json_object_get_string(p));
                        }
                }
                return 0;
        case CT_DEPENDENCIES:
                if (!json_object_is_type(v, json_type_object))
                        return fail(ret_error, path, "must be an object such as {\"python\": [\"numpy\"]}");
                json_object_object_foreach(v, dname, dval) {
                        _cleanup_free_ char *sub = NULL;
                        int id = runtime_from_string(dname);
                        char **l = NULL;

                        if (asprintf(&sub, "%s.%s", path, dname) < 0)
                                return -ENOMEM;
                        if (id < 0) {
                                log_warning("config: ignoring unknown runtime '%s'", sub);
                                continue;
                        }
                        r = parse_strv(dval, &l);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return fail(ret_error, sub, "must be an array of package names");
                        strv_free(c->dependencies[id]);
                        c->dependencies[id] = l;
                }
                return 0;
        }
        return -EINVAL;
}

static int load_object(Config *c, json_object *o, const char *prefix, char **ret_error) {
        json_object_object_foreach(o, key, val) {
                _cleanup_free_ char *path = NULL;
                const ConfigKey *k;
                int r;

                if (prefix ? asprintf(&path, "%s.%s", prefix, key) < 0 : !(path = strdup(key)))
                        return -ENOMEM;
                k = find_key(path);
                if (!k) {
                        log_warning("config: ignoring unknown key '%s'", path);
                        continue;
                }
                if (json_object_is_type(val, json_type_null))
                        continue;
                r = load_value(c, k, val, path, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int config_validate(Config *c, char **ret_error) {
        if (c->max_concurrent == 0)
                return fail(ret_error, "maxConcurrent", "must be at least 1");
        if (c->defaults.timeout_ms == 0)
                return fail(ret_error, "defaults.timeoutMs", "must be at least 1");
        if (!streq(c->audit_destination, "journal") && !streq(c->audit_destination, "file") &&
            !streq(c->audit_destination, "stdout"))
                return fail(ret_error, "audit.destination", "must be \"journal\", \"file\" or \"stdout\"");
        if (c->sandbox_uid_base < 65536 || c->sandbox_uid_base > UINT32_MAX / 2)
                return fail(ret_error, "sandbox.uidBase", "must be between 65536 and 2147483647");
        if (c->limits.body_bytes == 0)
                return fail(ret_error, "limits.maxBodyBytes", "must be at least 1");
        if (c->pool_clean > 64 || c->pool_dirty > 64)
                return fail(ret_error, "poolSize", "must be at most 64");
        if (c->network_max_connections == 0)
                return fail(ret_error, "network.maxConnections", "must be at least 1");
        if (c->network_connect_timeout_ms == 0)
                return fail(ret_error, "network.connectTimeoutMs", "must be at least 1");
        if (c->packages_install_timeout_ms == 0)
                return fail(ret_error, "packages.installTimeoutMs", "must be at least 1");
        if (c->images_pool_size > 64)
                return fail(ret_error, "images.poolSize", "must be at most 64");
        if (c->images_max_size < (UINT64_C(1) << 20))
                return fail(ret_error, "images.maxSize", "must be at least 1m");
        if (c->images_build_memory < (UINT64_C(64) << 20))
                return fail(ret_error, "images.buildMemoryLimit", "must be at least 64m");
        if (c->images_directory && c->images_directory[0] != '/')
                return fail(ret_error, "images.directory", "must be an absolute path");
        if (!url_host_port(c->packages_pypi_index_url, NULL, NULL, NULL))
                return fail(ret_error, "packages.pypiIndexUrl", "must be an http:// or https:// URL");
        if (!url_host_port(c->packages_npm_registry, NULL, NULL, NULL))
                return fail(ret_error, "packages.npmRegistry", "must be an http:// or https:// URL");
        if (!url_host_port(c->packages_debian_mirror, NULL, NULL, NULL))
                return fail(ret_error, "packages.debianMirror", "must be an http:// or https:// URL");
        if (c->packages_debian_suite && (!*c->packages_debian_suite ||
                                         strspn(c->packages_debian_suite, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(c->packages_debian_suite)))
                return fail(ret_error, "packages.debianSuite", "must be a suite name such as \"bookworm\"");
        for (char **h = c->packages_allowed_hosts; h && *h; h++)
                if (!egress_host_valid(*h))
                        return fail(ret_error, "packages.allowedHosts", "must hold host names");
        if (c->remote_code_fetch_timeout_ms == 0)
                return fail(ret_error, "remoteCode.fetchTimeoutMs", "must be at least 1");
        if (c->cpu_lead_ms > 60000)
                return fail(ret_error, "cpuLeadMs", "must be at most 60000 (0 turns the oldest-run-first order off)");
        if (c->cpu_start_ms > 60000)
                return fail(ret_error, "cpuStartMs", "must be at most 60000 (0 lets every run start at once)");
        if (!streq(c->security_seccomp, "strict") && !streq(c->security_seccomp, "unconfined"))
                return fail(ret_error, "security.seccomp", "must be \"strict\" or \"unconfined\"");
        /* The server's default for runs that do not say (a request may only tighten it unless
         * security.allowClientSeccompChange). */
        c->defaults.seccomp = streq(c->security_seccomp, "strict");
        if (c->cluster_node_id) {
                const char *url = c->cluster_advertise_url;
                if (!*c->cluster_node_id || strlen(c->cluster_node_id) > 64 ||
                    strspn(c->cluster_node_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(c->cluster_node_id))
                        return fail(ret_error, "cluster.nodeId", "must be 1-64 characters of A-Z a-z 0-9 . _ -");
                if (!url || strncmp(url, "http://", 7) != 0 || !url_host_port(url, NULL, NULL, NULL) || strlen(url) > 256)
                        return fail(ret_error, "cluster.advertiseUrl", "must be this server's http:// URL as the other servers reach it");
                if (!c->cluster_secret || strlen(c->cluster_secret) < 32)
                        return fail(ret_error, "cluster.secret", "must be set, at least 32 characters, the same on every server");
                if (c->cluster_heartbeat_ms < 100 || c->cluster_dead_after_ms < 2 * c->cluster_heartbeat_ms)
                        return fail(ret_error, "cluster.deadAfterMs", "must be at least twice cluster.heartbeatMs (itself at least 100)");
        }
        for (char **s = c->remote_code_allowed_schemes; s && *s; s++)
                if (!streq(*s, "https") && !streq(*s, "http"))
                        return fail(ret_error, "remoteCode.allowedSchemes", "may hold only \"https\" and \"http\"");
        {
                /* The patterns and ranges compile, or the server does not start with them. */
                EgressPolicy p;
                RegexList l;
                int r = egress_policy_init(&p, c->network_whitelist, c->network_blacklist, c->network_allowed_addresses,
                                           c->network_allowed_ports, c->n_network_allowed_ports, ret_error);
                if (r < 0)
                        return r;
                egress_policy_done(&p);
                r = regex_list_compile(c->remote_code_allowed_hosts, "remoteCode.allowedHosts", &l, ret_error);
                if (r < 0)
                        return r;
                regex_list_done(&l);
                r = regex_list_compile(c->remote_code_blocked_hosts, "remoteCode.blockedHosts", &l, ret_error);
                if (r < 0)
                        return r;
                regex_list_done(&l);
        }
        return 0;
}

int config_load_string(Config *c, const char *text, size_t len, char **ret_error) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        r = json_parse_limited(text, len, JSON_DEPTH_MAX, &o);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup("config file is not valid JSON");
                return -EINVAL;
        }
        if (!json_object_is_type(o, json_type_object)) {
                if (ret_error)
                        *ret_error = strdup("config file must hold a JSON object");
                return -EINVAL;
        }
        r = load_object(c, o, NULL, ret_error);
        if (r < 0)
                return r;
        return config_validate(c, ret_error);
}

int config_load_file(Config *c, const char *path, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        r = read_full_file(path, &text, 1 << 20, &size);
        if (r < 0) {
                if (ret_error && asprintf(ret_error, "cannot read config file %s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        r = config_load_string(c, text, size, ret_error);
        if (r < 0 && ret_error && *ret_error) {
                char *m;
                if (asprintf(&m, "%s: %s", path, *ret_error) >= 0) {
                        free(*ret_error);
                        *ret_error = m;
                }
        }
        return r;
}

int config_find_and_load(Config *c, const char *explicit_path, char **ret_path, char **ret_error) {
        _cleanup_free_ char *home = NULL;
        const char *candidates[3];
        size_t n = 0;
        int r;

        if (explicit_path) {
                r = config_load_file(c, explicit_path, ret_error);
                if (r < 0)
                        return r;
                if (ret_path)
                        *ret_path = xstrdup(explicit_path);
                return 1;
        }
        candidates[n++] = "isol8.config.json";
        if (getenv("HOME") && asprintf(&home, "%s/.isol8/config.json", getenv("HOME")) >= 0)
                candidates[n++] = home;
        candidates[n++] = "/etc/isol8/config.json";
        for (size_t i = 0; i < n; i++) {
                if (access(candidates[i], F_OK) < 0)
                        continue;
                r = config_load_file(c, candidates[i], ret_error);
                if (r < 0)
                        return r;
                if (ret_path)
                        *ret_path = xstrdup(candidates[i]);
                return 1;
        }
        return 0;
}
