/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"
#include "shared/macro.h"

typedef enum PoolStrategy {
        POOL_FAST,
        POOL_SECURE,
} PoolStrategy;

#define IDLE_EXIT_DEFAULT UINT64_MAX
#define IDLE_EXIT_ACTIVATED_SEC 300

#define CONFIG_PORTS_MAX 64

typedef struct Config {
        uint64_t max_concurrent;
        Limits defaults;                /* defaults.*: what a run gets unless it asks */
        Limits limits;                  /* limits.*: the most a run may ask for */
        bool cleanup_auto_prune;
        uint64_t cleanup_max_age_ms;
        uint64_t cleanup_interval_ms;
        uint64_t sessions_max_total;
        uint64_t sessions_max_per_tenant;
        PoolStrategy pool_strategy;
        uint64_t pool_clean;
        uint64_t pool_dirty;
        char **network_whitelist;
        char **network_blacklist;
        char **network_allowed_addresses;   /* CIDR ranges a name may resolve to despite being special */
        uint64_t network_allowed_ports[CONFIG_PORTS_MAX];
        size_t n_network_allowed_ports;
        uint64_t network_max_connections;   /* at once, per run */
        uint64_t network_max_bytes;         /* per run, both directions */
        uint64_t network_connect_timeout_ms;
        bool remote_code_enabled;
        char **remote_code_allowed_schemes;
        char **remote_code_allowed_hosts;
        char **remote_code_blocked_hosts;
        uint64_t remote_code_max_size;
        uint64_t remote_code_fetch_timeout_ms;
        bool remote_code_require_hash;
        char *remote_code_ca_file;          /* CA bundle for https code URLs; NULL: the system's */
        char *packages_pypi_index_url;      /* request.installPackages for python */
        char *packages_npm_registry;        /* ... for node, bun, deno */
        char *packages_debian_mirror;       /* bash images: Debian packages from this mirror ... */
        char *packages_debian_suite;        /* ... of this suite (NULL: the host's own) */
        char **packages_allowed_hosts;      /* more hosts the installers may reach (where an index keeps its files) */
        uint64_t packages_install_timeout_ms;
        char *images_directory;             /* runtime images; NULL: $STATE_DIRECTORY/images or ~/.isol8/images */
        uint64_t images_pool_size;          /* warm sandboxes kept per image in use */
        uint64_t images_max_size;           /* the most an image's layer may hold */
        uint64_t images_build_memory;       /* memory limit of an image's build */
        char *agent_image;                  /* runtime agent: the image holding pi when a run names none */
        char *cluster_node_id;              /* several servers as one (core/cluster.h); NULL: one server */
        char *cluster_advertise_url;        /* this server's URL as the others reach it */
        char *cluster_secret;               /* authenticates forwarded requests between servers */
        char *cluster_connection_string;    /* the session directory; NULL: auth.connectionString */
        uint64_t cluster_heartbeat_ms;
        uint64_t cluster_dead_after_ms;     /* a node silent this long is dead: its sessions are lost */
        uint64_t cluster_lost_ttl_ms;       /* lost sessions answer 410 this long */
        uint64_t drain_timeout_ms;          /* SIGTERM drains (running work finishes) this long; 0: cancels at once */
        uint64_t cpu_lead_ms;               /* the oldest run's lead on the CPU (core/cpu-order.h); 0: none */
        uint64_t cpu_start_ms;              /* how long a run counts as starting (core/cpu-order.h); 0: no pacing */
        char *security_seccomp;
        char **security_allowed_networks;
        bool security_allow_client_seccomp_change;
        bool audit_enabled;
        char *audit_destination;
        char *audit_log_dir;
        uint64_t audit_retention_days;
        bool audit_include_code;
        bool audit_include_output;
        bool auth_enabled;
        char *auth_connection_string;
        uint64_t auth_default_ttl_ms;
        uint64_t auth_cleanup_interval_ms;
        uint64_t auth_timeout_ms;
        uint64_t auth_cache_ttl_ms;
        uint64_t auth_last_used_flush_ms;
        uint64_t queue_max_size;
        uint64_t queue_max_per_tenant;
        uint64_t queue_timeout_ms;
        char *runtime_path[8];          /* indexed by RuntimeId; NULL = search the host */
        char **dependencies[8];         /* upstream's "dependencies": packages per runtime, built as images */
        /* http */
        uint64_t http_connection_timeout_sec;
        uint64_t output_budget_bytes;
        uint64_t idle_exit_sec;         /* 0: never; IDLE_EXIT_DEFAULT: 300 under socket activation, else never */
        uint64_t http_max_connections;
        uint64_t http_max_connections_per_ip;
        uint64_t http_request_head_timeout_ms;
        uint64_t http_max_header_bytes;
        uint64_t sse_keepalive_ms;
        /* sandbox engine */
        uint64_t sandbox_uid_base;
        char *sandbox_state_dir;
        char *dbus_admin_group;
} Config;

void config_init(Config *c);
void config_done(Config *c);
/* Loads a JSON config text over the defaults already in c. On a malformed file or a wrong
 * type, returns -EINVAL and a message naming the key in *ret_error. Unknown keys are warned. */
int config_load_string(Config *c, const char *text, size_t len, char **ret_error);
int config_load_file(Config *c, const char *path, char **ret_error);
/* The lookup order of API.md: explicit path, ./isol8.config.json, ~/.isol8/config.json,
 * /etc/isol8/config.json. Returns 0 when none exists (defaults stay), 1 when one was loaded. */
int config_find_and_load(Config *c, const char *explicit_path, char **ret_path, char **ret_error);
