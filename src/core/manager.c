/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/images.h"
#include "core/manager.h"
#include "core/run.h"
#include "shared/log.h"
#include "shared/time-util.h"

#define DRAIN_TIMEOUT_USEC (10 * USEC_PER_SEC)

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->sig_term);
        sd_event_source_disable_unref(m->sig_int);
        sd_event_source_disable_unref(m->sig_hup);
        sd_event_source_disable_unref(m->idle_timer);
        sd_event_source_disable_unref(m->drain_timer);
        while (m->runs)
                run_free(m->runs);
        session_registry_free(m->sessions);
        cluster_free(m->cluster);
        images_free(m);
        keystore_free(m->keys);
        failure_limit_free(m->auth_failures);
        audit_free(m->audit);
        pool_free(m->pool);
        cpu_order_free(m->cpu_order);
        exec_queue_free(m->queue);
        sandbox_engine_free(m->engine);
        fetcher_free(m->fetcher);
        strv_free(m->packages.host_patterns);
        free(m->packages.debian_suite);
        free(m->packages.pypi_host);
        free(m->packages.npm_cli);
        regex_list_done(&m->fetch_policy.allowed_hosts);
        regex_list_done(&m->fetch_policy.blocked_hosts);
        resolver_free(m->resolver);
        egress_policy_done(&m->egress);
        runtimes_done(&m->runtimes);
        config_done(&m->config);
        free(m->config_path);
        if (m->master_key)
                explicit_bzero(m->master_key, strlen(m->master_key));
        free(m->master_key);
        safe_close(m->devnull_fd);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_add_transport(Manager *m, const TransportOps *ops, void *userdata) {
        if (m->n_transports >= MANAGER_TRANSPORTS_MAX)
                return -E2BIG;
        m->transports[m->n_transports].ops = ops;
        m->transports[m->n_transports++].userdata = userdata;
        return 0;
}

void manager_remove_transport(Manager *m, void *userdata) {
        for (unsigned i = 0; i < m->n_transports; i++)
                if (m->transports[i].userdata == userdata) {
                        m->transports[i] = m->transports[--m->n_transports];
                        return;
                }
}

/* The cores the daemon (and so its sandboxes) may run on: one leading run each. */
static unsigned usable_cpus(void) {
        cpu_set_t set;
        long n;

        if (sched_getaffinity(0, sizeof(set), &set) >= 0 && CPU_COUNT(&set) > 0)
                return (unsigned) CPU_COUNT(&set);
        n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

static unsigned transports_sum(Manager *m, bool connections) {
        unsigned n = 0;
        for (unsigned i = 0; i < m->n_transports; i++) {
                unsigned (*f)(void *) = connections ? m->transports[i].ops->n_connections : m->transports[i].ops->n_requests;
                if (f)
                        n += f(m->transports[i].userdata);
        }
        return n;
}

static void on_session_event(const char *id, const char *tenant, bool created, const char *reason, void *userdata) {
        Manager *m = userdata;
        AuditField f[] = {
                { "ISOL8_SESSION_ID", id },
                { "ISOL8_TENANT", tenant },
                { "ISOL8_REASON", reason },
        };
        char message[256];

        if (created)
                snprintf(message, sizeof(message), "session %s of tenant %s created", id, tenant);
        else
                snprintf(message, sizeof(message), "session %s of tenant %s destroyed (%s)", id, tenant, reason ?: "?");
        audit_emit(m->audit, created ? AUDIT_MESSAGE_SESSION_NEW : AUDIT_MESSAGE_SESSION_GONE, LOG_INFO,
                   created ? "session-created" : "session-destroyed", message, f, ELEMENTSOF(f));
        for (unsigned i = 0; i < m->n_transports; i++)
                if (m->transports[i].ops->session_event)
                        m->transports[i].ops->session_event(m->transports[i].userdata, tenant, id, created);
        /* The directory: a session ended by the server's stop stays (lost) for the others to say so. */
        if (m->cluster) {
                if (created)
                        cluster_session_created(m->cluster, id, tenant);
                else if (!streq_ptr(reason, "shutdown"))
                        cluster_session_removed(m->cluster, id, tenant);
        }
}

static void cluster_load(void *userdata, ClusterLoad *ret) {
        Manager *m = userdata;
        *ret = (ClusterLoad) {
                .running = exec_queue_running(m->queue),
                .queued = exec_queue_pending(m->queue),
                .sessions = session_count(m->sessions),
                .max_concurrent = exec_queue_max(m->queue),
        };
}

static int manager_open_cluster(Manager *m) {
        ClusterConfig cc = {
                .node_id = m->config.cluster_node_id,
                .advertise_url = m->config.cluster_advertise_url,
                .connection_string = m->config.cluster_connection_string ?: m->config.auth_connection_string,
                .heartbeat_usec = m->config.cluster_heartbeat_ms * USEC_PER_MSEC,
                .dead_after_usec = m->config.cluster_dead_after_ms * USEC_PER_MSEC,
                .lost_ttl_usec = m->config.cluster_lost_ttl_ms * USEC_PER_MSEC,
                .timeout_usec = m->config.auth_timeout_ms * USEC_PER_MSEC,
        };
        if (!cc.connection_string)
                return log_error_errno(-EINVAL, "cluster.nodeId is set but no database is named for the session directory "
                                       "(cluster.connectionString, or auth.connectionString / --auth-db).");
        return cluster_new(&m->cluster, m->event, &cc, cluster_load, m);
}

unsigned manager_n_runs(Manager *m) {
        unsigned n = 0;
        for (Run *r = m->runs; r; r = run_next(r))
                n++;
        return n;
}

static int on_drain_check(sd_event_source *es, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        /* The directory is told this node is gone (bounded by the deadline) before the loop ends. */
        if ((manager_n_runs(m) == 0 && transports_sum(m, false) == 0 && !(m->cluster && cluster_leave_pending(m->cluster))) ||
            now_usec(CLOCK_MONOTONIC) >= m->drain_deadline)
                return sd_event_exit(m->event, 0);
        return sd_event_source_set_time_relative(es, 20 * USEC_PER_MSEC) < 0 ? 0 :
               sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

int manager_begin_stop(Manager *m) {
        int r;

        if (m->shutting_down)
                return 0;
        m->shutting_down = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        if (m->keys)
                keystore_flush(m->keys);
        if (m->cluster)
                cluster_leave(m->cluster);
        for (unsigned i = 0; i < m->n_transports; i++)
                if (m->transports[i].ops->quiesce)
                        m->transports[i].ops->quiesce(m->transports[i].userdata);
        for (Run *run = m->runs; run; run = run_next(run))
                run_cancel(run);
        m->drain_deadline = now_usec(CLOCK_MONOTONIC) + DRAIN_TIMEOUT_USEC;
        r = sd_event_add_time_relative(m->event, &m->drain_timer, CLOCK_MONOTONIC, 0, 1000, on_drain_check, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->drain_timer, "drain");
        return 0;
}

static int on_drained_check(sd_event_source *es, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->shutting_down)
                return 0;
        if (manager_n_runs(m) == 0 || now_usec(CLOCK_MONOTONIC) >= m->drain_deadline) {
                if (manager_n_runs(m) > 0)
                        log_warning("Drain: %u run(s) still under way after the bound; cancelling them.", manager_n_runs(m));
                else
                        log_info("Drain: all running work finished; stopping.");
                m->drain_timer = sd_event_source_disable_unref(m->drain_timer);
                return manager_begin_stop(m);
        }
        return sd_event_source_set_time_relative(es, 20 * USEC_PER_MSEC) < 0 ? 0 :
               sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

int manager_drain(Manager *m, const char *via) {
        uint64_t timeout_ms = m->config.drain_timeout_ms ?: 30000;
        int r;

        if (m->shutting_down || m->draining)
                return 0;
        m->draining = true;
        if (m->cluster)
                cluster_set_draining(m->cluster);
        log_info("Draining (asked over %s): no new work; %u run(s) under way may finish within %" PRIu64 " ms.", via ?: "?",
                 manager_n_runs(m), timeout_ms);
        (void) sd_notify(false, "STATUS=Draining");
        m->drain_deadline = now_usec(CLOCK_MONOTONIC) + timeout_ms * USEC_PER_MSEC;
        r = sd_event_add_time_relative(m->event, &m->drain_timer, CLOCK_MONOTONIC, 0, 1000, on_drained_check, m);
        if (r < 0)
                return manager_begin_stop(m);
        (void) sd_event_source_set_description(m->drain_timer, "drain-wait");
        return 0;
}

static int on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (m->shutting_down)
                return 0;
        /* With drainTimeoutMs, SIGTERM lets running work finish first (a second one stops at once). */
        if (si->ssi_signo == SIGTERM && m->config.drain_timeout_ms > 0 && !m->draining) {
                log_info("Received SIGTERM, draining.");
                return manager_drain(m, "SIGTERM");
        }
        log_info("Received %s, stopping: no new connections, cancelling running executions.",
                 si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        return manager_begin_stop(m);
}

/* SIGHUP (systemctl reload): the configuration's limits and defaults are read again and the
 * key cache is dropped; runs under way keep what they started with. Everything else (ports,
 * pool, database, bus) needs a restart. */
static int on_reload(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *path = NULL, *error = NULL;
        Config fresh = {};
        int r;

        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading\nMONOTONIC_USEC=%" PRIu64, now_usec(CLOCK_MONOTONIC));
        config_init(&fresh);
        r = config_find_and_load(&fresh, m->config_path, &path, &error);
        if (r < 0)
                log_error("Reload failed, keeping the configuration in use: %s", error ?: strerror(-r));
        else {
                m->config.defaults = fresh.defaults;
                /* The body limit stays: the HTTP server took it at start. */
                fresh.limits.body_bytes = m->config.limits.body_bytes;
                m->config.limits = fresh.limits;
                m->config.output_budget_bytes = fresh.output_budget_bytes;
                m->exec.output_budget = fresh.output_budget_bytes;
                if (m->keys)
                        keystore_drop_cache(m->keys);
                log_info("Reloaded the configuration%s%s: limits and defaults, key cache dropped.", path ? " from " : "",
                         path ?: "");
        }
        config_done(&fresh);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Listening on port %u", m->port);
        return 0;
}

/* Under socket activation the listening socket stays with systemd, which starts us again on
 * the next connection: after idle_exit_usec without a connection, a run or a session, exit. */
static int on_idle_check(sd_event_source *es, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool idle = transports_sum(m, true) == 0 && manager_n_runs(m) == 0 && session_count(m->sessions) == 0 &&
                    exec_queue_pending(m->queue) == 0;

        if (m->shutting_down)
                return 0;
        if (!idle)
                m->idle_since = 0;
        else if (m->idle_since == 0)
                m->idle_since = now;
        else if (now - m->idle_since >= m->idle_exit_usec) {
                log_info("Idle for %" PRIu64 " s: exiting (systemd starts the service again on the next connection).",
                         m->idle_exit_usec / USEC_PER_SEC);
                return manager_begin_stop(m);
        }
        (void) sd_event_source_set_time_relative(es, MAX(m->idle_exit_usec / 4, USEC_PER_SEC));
        return sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

static int manager_open_keystore(Manager *m) {
        _cleanup_free_ char *def = NULL;
        const char *conn = m->config.auth_connection_string;
        KeyStoreConfig kc = {
                .timeout_usec = m->config.auth_timeout_ms * USEC_PER_MSEC,
                .cache_usec = m->config.auth_cache_ttl_ms * USEC_PER_MSEC,
                .purge_interval_usec = MAX(m->config.auth_cleanup_interval_ms, (uint64_t) 1000) * USEC_PER_MSEC,
                .touch_interval_usec = MAX(m->config.auth_last_used_flush_ms, (uint64_t) 50) * USEC_PER_MSEC,
        };
        int r;

        if (isempty(conn)) {
                /* Under systemd the state directory (StateDirectory=isol8); else ~/.isol8. */
                const char *state = getenv("STATE_DIRECTORY");
                if (!isempty(state) ? asprintf(&def, "%.*s/auth.db", (int) strcspn(state, ":"), state) < 0
                                    : asprintf(&def, "%s/.isol8/auth.db", getenv("HOME") ?: "/root") < 0)
                        return -ENOMEM;
                conn = def;
        }
        r = keystore_new(&m->keys, m->event, conn, &kc);
        if (r < 0)
                return log_error_errno(r, "Cannot open the key store: %m");
        log_info("DB-backed API keys in %s", keystore_describe(m->keys));
        return 0;
}

static int manager_open_audit(Manager *m) {
        AuditConfig ac = {
                .enabled = true,
                .destination = streq(m->config.audit_destination, "file") ? AUDIT_FILE :
                               streq(m->config.audit_destination, "stdout") ? AUDIT_STDOUT : AUDIT_JOURNAL,
                .log_dir = m->config.audit_log_dir,
                .retention_days = (unsigned) m->config.audit_retention_days,
                .include_code = m->config.audit_include_code,
                .include_output = m->config.audit_include_output,
        };
        return audit_new(&m->audit, &ac);
}

static int manager_connect_signals(Manager *m, const ManagerOptions *opts) {
        int r;

        r = sd_event_add_signal(m->event, &m->sig_term, SIGTERM, on_signal, m);
        if (r < 0)
                return r;
        r = sd_event_add_signal(m->event, &m->sig_int, SIGINT, on_signal, m);
        if (r < 0)
                return r;
        r = sd_event_add_signal(m->event, &m->sig_hup, SIGHUP, on_reload, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->sig_term, "sigterm");
        (void) sd_event_source_set_description(m->sig_int, "sigint");
        (void) sd_event_source_set_description(m->sig_hup, "sighup-reload");

        if (m->config.idle_exit_sec == IDLE_EXIT_DEFAULT)
                m->idle_exit_usec = opts->activated ? IDLE_EXIT_ACTIVATED_SEC * USEC_PER_SEC : 0;
        else
                m->idle_exit_usec = m->config.idle_exit_sec * USEC_PER_SEC;
        if (m->idle_exit_usec > 0) {
                log_info("Exiting after %" PRIu64 " s without connections, runs or sessions (idleExitSec).",
                         m->idle_exit_usec / USEC_PER_SEC);
                r = sd_event_add_time_relative(m->event, &m->idle_timer, CLOCK_MONOTONIC,
                                               MAX(m->idle_exit_usec / 4, USEC_PER_SEC), USEC_PER_SEC / 2, on_idle_check, m);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(m->idle_timer, "idle-exit");
        }
        return 0;
}

/* Each sandbox keeps its cgroup counter files open (sandbox/cgroup-backend.h) and each client
 * is a socket: a server with a full pool, many sessions and connections needs more than the
 * 1024 descriptors a service starts with. The hard limit is ours to use (systemd's default is
 * 524288); nothing here uses select(). */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = MIN(rl.rlim_max, (rlim_t) 65536);
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug_errno(errno, "Cannot raise the file descriptor limit: %m");
}

/* "^host$" with the host's dots escaped. */
static int push_host_pattern(char ***l, const char *host) {
        Buffer b = {};
        int r = buffer_append(&b, "^", 1);
        for (const char *c = host; r >= 0 && *c; c++)
                r = strchr(".+*?()[]{}|^$\\", *c) ? buffer_printf(&b, "\\%c", *c) : buffer_append(&b, c, 1);
        if (r >= 0)
                r = buffer_append(&b, "$", 1);
        if (r < 0 || strv_push(l, buffer_steal_string(&b)) < 0) {
                buffer_done(&b);
                return -ENOMEM;
        }
        return 0;
}

/* packages.*: the installers' only destinations, and npm's script (run with node). */
static int manager_packages_init(Manager *m) {
        PackagesPolicy *p = &m->packages;
        _cleanup_free_ char *npm_host = NULL, *deb_host = NULL;
        struct utsname u;
        int r;

        *p = (PackagesPolicy) {
                .pypi_index_url = m->config.packages_pypi_index_url,
                .npm_registry = m->config.packages_npm_registry,
                .debian_mirror = m->config.packages_debian_mirror,
                .install_timeout_ms = m->config.packages_install_timeout_ms,
        };
        /* Debian's name for the machine (the suite and the installer are looked up by the first
         * bash image's build, not at every start). */
        p->debian_arch = uname(&u) >= 0 && streq(u.machine, "aarch64") ? "arm64" : "amd64";
        /* Checked when the configuration was loaded. */
        if (!url_host_port(p->pypi_index_url, &p->pypi_host, NULL, &p->pypi_http) ||
            !url_host_port(p->npm_registry, &npm_host, NULL, NULL))
                return -EINVAL;
        p->pypi_http = !p->pypi_http;
        if (!url_host_port(p->debian_mirror, &deb_host, NULL, NULL))
                return -EINVAL;
        r = push_host_pattern(&p->host_patterns, p->pypi_host);
        if (r >= 0)
                r = push_host_pattern(&p->host_patterns, npm_host);
        if (r >= 0)
                r = push_host_pattern(&p->host_patterns, deb_host);
        for (char **h = m->config.packages_allowed_hosts; r >= 0 && h && *h; h++)
                r = push_host_pattern(&p->host_patterns, *h);
        if (r < 0)
                return r;
        static const char *const npm[] = { "/usr/local/bin/npm", "/usr/bin/npm" };
        for (size_t i = 0; i < ELEMENTSOF(npm) && !p->npm_cli; i++)
                p->npm_cli = realpath(npm[i], NULL);
        return 0;
}

int manager_new(Manager **ret, sd_event *event, Config *config, const ManagerOptions *opts) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->devnull_fd = -EBADF;
        m->config = *config;
        *config = (Config) {};
        m->event = sd_event_ref(event);
        m->serve = opts->serve;
        if (m->serve)
                raise_fd_limit();
        m->port = opts->port;
        if (opts->master_key && !(m->master_key = strdup(opts->master_key)))
                return -ENOMEM;
        if (opts->config_path && !(m->config_path = strdup(opts->config_path)))
                return -ENOMEM;

        r = runtimes_discover(&m->runtimes, m->config.runtime_path);
        if (r < 0)
                return r;
        if (m->serve && !m->runtimes.path[RUNTIME_BASH])
                log_warning("bash was not found: request.cmd and setupScript will be refused.");

        m->devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (m->devnull_fd < 0)
                return -errno;

        SandboxEngineConfig ec = {
                .state_dir = m->config.sandbox_state_dir,
                .uid_base = (uint32_t) m->config.sandbox_uid_base,
                .cgroup_root = "/sys/fs/cgroup",
                .runtimes = &m->runtimes,
        };
        /* The engine says what failed (which cgroup, which file); nothing to add here. */
        r = sandbox_engine_new(&m->engine, m->event, &ec);
        if (r < 0)
                return r;

        /* A local run builds the one sandbox it needs: no warm pool, no reuse. */
        PoolConfig pc = {
                .reuse = m->serve && m->config.pool_strategy == POOL_FAST,
                .clean = m->serve ? (unsigned) m->config.pool_clean : 0,
                .dirty = m->serve ? (unsigned) m->config.pool_dirty : 0,
                /* Following demand up to every slot busy, plus the headroom the pool adds. */
                .max_warm = m->serve ? (unsigned) m->config.max_concurrent + 2 : 0,
                .sandbox_bytes = m->config.defaults.sandbox_bytes,
                .tmp_bytes = m->config.defaults.tmp_bytes,
        };
        sandbox_provider_init_engine(&m->provider, m->engine);
        r = pool_new(&m->pool, &m->provider, &pc);
        if (r < 0)
                return r;
        if (m->serve && m->config.cpu_lead_ms > 0) {
                unsigned cpus = usable_cpus();
                r = cpu_order_new(m->event, m->config.cpu_lead_ms * USEC_PER_MSEC, cpus,
                                  m->config.cpu_start_ms * USEC_PER_MSEC, CPU_STARTS(cpus), &m->cpu_order);
                if (r < 0)
                        return r;
        }
        r = images_load(m);
        if (r < 0)
                return r;
        r = exec_queue_new(&m->queue, m->event, (unsigned) m->config.max_concurrent, (unsigned) m->config.queue_max_size,
                           (unsigned) m->config.queue_max_per_tenant, m->config.queue_timeout_ms);
        if (r < 0)
                return r;

        if (m->config.audit_enabled) {
                r = manager_open_audit(m);
                if (r < 0)
                        return r;
        } else
                log_notice("audit: off (audit.enabled is false): runs and key changes leave no record");
        r = failure_limit_new(&m->auth_failures, m->event, m->audit);
        if (r < 0)
                return r;

        SessionLimits sl = {
                .max_total = (unsigned) m->config.sessions_max_total,
                .max_per_tenant = (unsigned) m->config.sessions_max_per_tenant,
                .auto_prune = m->config.cleanup_auto_prune,
                .max_idle_usec = m->config.cleanup_max_age_ms * USEC_PER_MSEC,
                .sweep_interval_usec = MAX(m->config.cleanup_interval_ms, (uint64_t) 10) * USEC_PER_MSEC,
        };
        r = session_registry_new(&m->sessions, m->event, &m->provider, m->pool, &sl);
        if (r < 0)
                return r;
        session_registry_set_event_handler(m->sessions, on_session_event, m);

        if (m->serve && m->config.auth_enabled) {
                r = manager_open_keystore(m);
                if (r < 0)
                        return r;
        }
        if (m->serve && m->config.cluster_node_id) {
                r = manager_open_cluster(m);
                if (r < 0)
                        return log_error_errno(r, "Cannot open the cluster's session directory: %m");
        }

        /* Checked when the configuration was loaded: this compiles. */
        r = egress_policy_init(&m->egress, m->config.network_whitelist, m->config.network_blacklist,
                               m->config.network_allowed_addresses, m->config.network_allowed_ports,
                               m->config.n_network_allowed_ports, NULL);
        if (r < 0)
                return r;
        m->egress.max_connections = m->config.network_max_connections;
        m->egress.max_bytes = m->config.network_max_bytes;
        m->egress.connect_timeout_ms = m->config.network_connect_timeout_ms;
        r = resolver_new(m->event, &m->resolver);
        if (r < 0)
                return r;
        if (m->config.remote_code_enabled) {
                m->fetch_policy = (FetchPolicy) {
                        .allowed_schemes = m->config.remote_code_allowed_schemes,
                        .max_size = m->config.remote_code_max_size,
                        .timeout_ms = m->config.remote_code_fetch_timeout_ms,
                        .require_hash = m->config.remote_code_require_hash,
                        .ca_file = m->config.remote_code_ca_file,
                        .egress = &m->egress,
                };
                r = regex_list_compile(m->config.remote_code_allowed_hosts, "remoteCode.allowedHosts",
                                       &m->fetch_policy.allowed_hosts, NULL);
                if (r >= 0)
                        r = regex_list_compile(m->config.remote_code_blocked_hosts, "remoteCode.blockedHosts",
                                               &m->fetch_policy.blocked_hosts, NULL);
                if (r >= 0)
                        r = fetcher_new(m->event, m->resolver, &m->fetch_policy, &m->fetcher);
                if (r < 0)
                        return r;
        }

        r = manager_packages_init(m);
        if (r < 0)
                return r;

        m->exec = (ExecContext) {
                .packages = &m->packages,
                .egress = &m->egress,
                .resolver = m->resolver,
                .event = m->event,
                .engine = m->engine,
                .pool = m->pool,
                .cpu_order = m->cpu_order,
                .runtimes = &m->runtimes,
                .devnull_fd = m->devnull_fd,
                .max_file_bytes = m->config.limits.body_bytes,
                .output_held = &m->output_held,
                .output_budget = m->config.output_budget_bytes,
        };
        m->policy = (SpecPolicy) {
                .fetcher = m->fetcher,
                .defaults = &m->config.defaults,
                .maximums = &m->config.limits,
                .allowed_networks = m->config.security_allowed_networks,
                .allow_seccomp_change = m->config.security_allow_client_seccomp_change,
                .runtimes = &m->runtimes,
        };

        if (m->serve) {
                r = manager_connect_signals(m, opts);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_startup(Manager *m) {
        pool_replenish(m->pool);
        if (m->serve)
                images_prebuild(m);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Listening on port %u", m->port);
        return 0;
}

void manager_auth_failure(Manager *m, const char *remote, const char *reason, const char *method, const char *path) {
        failure_limit_record(m->auth_failures, remote, reason, method, path);
}

int manager_session_destroy(Manager *m, const AuthInfo *who, const char *id) {
        /* Idempotent: an unknown id (or another tenant's) answers the same and changes nothing. */
        if (!id || !session_id_valid(id))
                return OUTCOME_SESSION_NOT_FOUND;
        return session_destroy(m->sessions, who, id) > 0 ? 0 : OUTCOME_SESSION_NOT_FOUND;
}

void manager_cleanup(Manager *m, CleanupCounts *ret) {
        ret->sessions = session_destroy_all(m->sessions, "cleanup");
        ret->sandboxes = pool_flush(m->pool);
        log_info("cleanup: destroyed %u session(s) and %u idle sandbox(es)", ret->sessions, ret->sandboxes);
        pool_replenish(m->pool);
}

void manager_status(Manager *m, ManagerStatus *ret) {
        *ret = (ManagerStatus) {
                .active = exec_queue_running(m->queue),
                .queued = exec_queue_pending(m->queue),
                .max_concurrent = exec_queue_max(m->queue),
                .max_queue = exec_queue_max_size(m->queue),
                .queue_timeout_ms = exec_queue_timeout_ms(m->queue),
                .sessions = session_count(m->sessions),
                .total_executions = m->total_executions,
                .pool_ready = pool_n_ready(m->pool),
                .pool_total = pool_n_total(m->pool),
                .shutting_down = m->shutting_down,
        };
        pool_stats(m->pool, &ret->pool);
}
