/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "sandbox/runtime.h"
#include "tap.h"

static int load(Config *c, const char *text, char **err) {
        *err = NULL;
        return config_load_string(c, text, strlen(text), err);
}

static bool err_names(const char *err, const char *key) {
        return err && strstr(err, key);
}

int main(void) {
        Config c;
        char *err = NULL;

        config_init(&c);
        CHECK(c.max_concurrent == 10);
        CHECK(c.defaults.timeout_ms == 30000);
        CHECK(c.defaults.memory_bytes == 512ull << 20);
        CHECK(c.defaults.cpu == 1.0);
        CHECK(c.defaults.network == NETWORK_NONE);
        CHECK(c.defaults.sandbox_bytes == 512ull << 20 && c.defaults.tmp_bytes == 256ull << 20);
        CHECK(c.defaults.readonly_rootfs);
        CHECK(c.cleanup_auto_prune && c.cleanup_max_age_ms == 3600000);
        CHECK(c.pool_strategy == POOL_FAST && c.pool_clean == 1 && c.pool_dirty == 1);
        CHECK(c.queue_max_size == 100 && c.queue_timeout_ms == 30000);
        CHECK(c.limits.timeout_ms == 300000 && c.limits.memory_bytes == 4ull << 30 && c.limits.body_bytes == 10485760);
        CHECK(c.auth_default_ttl_ms == 86400000 && c.auth_cleanup_interval_ms == 3600000);
        CHECK(c.audit_retention_days == 90 && strcmp(c.audit_destination, "journal") == 0);

        CHECK(load(&c, "{\"maxConcurrent\": 3, \"defaults\": {\"timeoutMs\": 5000, \"memoryLimit\": \"1g\", \"cpuLimit\": 0.5},"
                       " \"poolStrategy\": \"secure\", \"poolSize\": 4, \"queue\": {\"maxSize\": 7},"
                       " \"limits\": {\"maxMemory\": \"8g\", \"maxBodyBytes\": 1000},"
                       " \"runtimes\": {\"python\": {\"path\": \"/opt/py/bin/python3\"}},"
                       " \"network\": {\"whitelist\": [\"^a\\\\.com$\"]}, \"security\": {\"allowedNetworks\": [\"none\", \"host\"]}}",
                  &err) == 0);
        CHECK(c.max_concurrent == 3 && c.defaults.timeout_ms == 5000 && c.defaults.memory_bytes == 1ull << 30);
        CHECK(c.defaults.cpu == 0.5);
        CHECK(c.pool_strategy == POOL_SECURE && c.pool_clean == 4 && c.pool_dirty == 4);
        CHECK(c.queue_max_size == 7 && c.queue_timeout_ms == 30000);
        CHECK(c.limits.memory_bytes == 8ull << 30 && c.limits.body_bytes == 1000);
        CHECK(c.runtime_path[RUNTIME_PYTHON] && strcmp(c.runtime_path[RUNTIME_PYTHON], "/opt/py/bin/python3") == 0);
        CHECK(c.network_whitelist && strcmp(c.network_whitelist[0], "^a\\.com$") == 0);
        CHECK(c.security_allowed_networks && strcmp(c.security_allowed_networks[1], "host") == 0);
        CHECK(load(&c, "{\"poolSize\": {\"clean\": 2, \"dirty\": 5}}", &err) == 0 && c.pool_clean == 2 && c.pool_dirty == 5);

        /* Unknown keys are warnings, not errors. */
        CHECK(load(&c, "{\"somethingNew\": 1, \"defaults\": {\"alsoNew\": true}}", &err) == 0);

        /* Wrong types stop start-up with a message naming the key. */
        CHECK(load(&c, "{\"maxConcurrent\": \"ten\"}", &err) == -EINVAL && err_names(err, "maxConcurrent"));
        free(err);
        CHECK(load(&c, "{\"defaults\": {\"timeoutMs\": -5}}", &err) == -EINVAL && err_names(err, "defaults.timeoutMs"));
        free(err);
        CHECK(load(&c, "{\"defaults\": {\"memoryLimit\": \"huge\"}}", &err) == -EINVAL && err_names(err, "defaults.memoryLimit"));
        free(err);
        CHECK(load(&c, "{\"defaults\": 5}", &err) == -EINVAL && err_names(err, "defaults"));
        free(err);
        CHECK(load(&c, "{\"cleanup\": {\"autoPrune\": \"yes\"}}", &err) == -EINVAL && err_names(err, "cleanup.autoPrune"));
        free(err);
        CHECK(load(&c, "{\"poolStrategy\": \"turbo\"}", &err) == -EINVAL && err_names(err, "poolStrategy"));
        free(err);
        CHECK(load(&c, "{\"network\": {\"whitelist\": [1]}}", &err) == -EINVAL && err_names(err, "network.whitelist"));
        free(err);
        CHECK(load(&c, "{\"runtimes\": {\"node\": {\"path\": \"relative\"}}}", &err) == -EINVAL && err_names(err, "runtimes.node.path"));
        free(err);
        CHECK(load(&c, "{\"defaults\": {\"network\": \"internet\"}}", &err) == -EINVAL && err_names(err, "defaults.network"));
        free(err);
        CHECK(load(&c, "{\"maxConcurrent\": 0}", &err) == -EINVAL && err_names(err, "maxConcurrent"));
        free(err);
        CHECK(load(&c, "{not json", &err) == -EINVAL && err && strstr(err, "JSON"));
        free(err);
        CHECK(load(&c, "[1,2]", &err) == -EINVAL);
        free(err);

        /* The oldest run's lead on the CPU: 100 ms unless set; 0 turns it off. */
        config_done(&c);
        config_init(&c);
        CHECK(c.cpu_lead_ms == 100);
        CHECK(load(&c, "{\"cpuLeadMs\": 0}", &err) == 0 && c.cpu_lead_ms == 0);
        CHECK(load(&c, "{}", &err) == 0 && c.cpu_start_ms == 15);
        CHECK(load(&c, "{\"cpuStartMs\": 0}", &err) == 0 && c.cpu_start_ms == 0);
        CHECK(load(&c, "{\"cpuStartMs\": 300}", &err) == 0 && c.cpu_start_ms == 300);
        CHECK(load(&c, "{\"cpuStartMs\": 60001}", &err) == -EINVAL && err_names(err, "cpuStartMs"));
        free(err);
        CHECK(load(&c, "{\"cpuStartMs\": -1}", &err) == -EINVAL && err_names(err, "cpuStartMs"));
        free(err);
        CHECK(load(&c, "{\"cpuLeadMs\": 60001}", &err) == -EINVAL && err_names(err, "cpuLeadMs"));
        free(err);
        CHECK(load(&c, "{\"cpuLeadMs\": \"fast\"}", &err) == -EINVAL && err_names(err, "cpuLeadMs"));
        free(err);
        config_done(&c);
        config_init(&c);

        /* security.seccomp is the runs' default: strict unless the operator says unconfined. */
        CHECK(load(&c, "{}", &err) == 0 && c.defaults.seccomp);
        CHECK(load(&c, "{\"security\": {\"seccomp\": \"unconfined\"}}", &err) == 0 && !c.defaults.seccomp);
        CHECK(load(&c, "{\"security\": {\"seccomp\": \"strict\"}}", &err) == 0 && c.defaults.seccomp);
        CHECK(load(&c, "{\"security\": {\"seccomp\": \"off\"}}", &err) == -EINVAL && err_names(err, "security.seccomp"));
        free(err);
        config_done(&c);
        config_init(&c);

        /* Several servers as one: off by default; on, every key it needs is checked at load. */
        config_done(&c);
        config_init(&c);
        CHECK(!c.cluster_node_id && c.cluster_heartbeat_ms == 1000 && c.cluster_dead_after_ms == 5000 &&
              c.cluster_lost_ttl_ms == 3600000);
        {
                static const char *const bad[][2] = {
                        { "{\"cluster\": {\"nodeId\": \"a b\", \"advertiseUrl\": \"http://10.0.0.1:3000\", \"secret\": \"0123456789abcdef0123456789abcdef\"}}", "cluster.nodeId" },
                        { "{\"cluster\": {\"nodeId\": \"\", \"advertiseUrl\": \"http://10.0.0.1:3000\", \"secret\": \"0123456789abcdef0123456789abcdef\"}}", "cluster.nodeId" },
                        { "{\"cluster\": {\"nodeId\": \"n1\", \"secret\": \"0123456789abcdef0123456789abcdef\"}}", "cluster.advertiseUrl" },
                        { "{\"cluster\": {\"nodeId\": \"n1\", \"advertiseUrl\": \"https://10.0.0.1\", \"secret\": \"0123456789abcdef0123456789abcdef\"}}", "cluster.advertiseUrl" },
                        { "{\"cluster\": {\"nodeId\": \"n1\", \"advertiseUrl\": \"http://u:p@10.0.0.1\", \"secret\": \"0123456789abcdef0123456789abcdef\"}}", "cluster.advertiseUrl" },
                        { "{\"cluster\": {\"nodeId\": \"n1\", \"advertiseUrl\": \"http://10.0.0.1:3000\", \"secret\": \"short\"}}", "cluster.secret" },
                        { "{\"cluster\": {\"nodeId\": \"n1\", \"advertiseUrl\": \"http://10.0.0.1:3000\"}}", "cluster.secret" },
                        { "{\"cluster\": {\"nodeId\": \"n1\", \"advertiseUrl\": \"http://10.0.0.1:3000\", \"secret\": \"0123456789abcdef0123456789abcdef\", \"heartbeatMs\": 1000, \"deadAfterMs\": 1500}}", "cluster.deadAfterMs" },
                        { "{\"cluster\": {\"nodeId\": 5}}", "cluster.nodeId" },
                };
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        Config b;
                        config_init(&b);
                        CHECK(load(&b, bad[i][0], &err) == -EINVAL && err_names(err, bad[i][1]));
                        free(err);
                        config_done(&b);
                }
        }
        CHECK(load(&c, "{\"cluster\": {\"nodeId\": \"isol8-1.eu_west\", \"advertiseUrl\": \"http://10.0.0.11:3000\","
                       " \"secret\": \"0123456789abcdef0123456789abcdef\", \"heartbeatMs\": 500, \"deadAfterMs\": 2000,"
                       " \"lostSessionTtlMs\": 60000, \"connectionString\": \"postgres://db/isol8\"}}", &err) == 0);
        CHECK(c.cluster_node_id && strcmp(c.cluster_node_id, "isol8-1.eu_west") == 0);
        CHECK(strcmp(c.cluster_advertise_url, "http://10.0.0.11:3000") == 0 && strcmp(c.cluster_connection_string, "postgres://db/isol8") == 0);
        CHECK(c.cluster_heartbeat_ms == 500 && c.cluster_dead_after_ms == 2000 && c.cluster_lost_ttl_ms == 60000);

        config_done(&c);
        return tap_done();
}
