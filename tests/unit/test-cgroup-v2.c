/* SPDX-License-Identifier: MIT */
/* The v2 backend against a fake cgroupfs tree (plain directories and files). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/cgroup.h"
#include "shared/util.h"
#include "tap.h"

static char root[256];

static char *readf(const char *rel) {
        char p[512], *s = NULL;
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        if (read_full_file(p, &s, 1 << 16, NULL) < 0)
                return NULL;
        return s;
}

static void writef(const char *rel, const char *text) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
                (void) loop_write(fd, text, strlen(text));
                close(fd);
        }
}

static bool exists(const char *rel) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        return access(p, F_OK) == 0;
}

int main(void) {
        CgroupManager *m = NULL;
        Cgroup *cg = NULL;
        CgroupStats st;
        char *s, p[512], locks[256];
        pid_t child;
        int status;

        snprintf(root, sizeof(root), "/tmp/isol8-fake-cgroup-XXXXXX");
        CHECK(mkdtemp(root) != NULL);
        snprintf(locks, sizeof(locks), "%.200s/locks", root);
        snprintf(p, sizeof(p), "%s/system.slice/isol8.service", root);
        CHECK(mkdir_p(p, 0755) == 0);
        writef("system.slice/isol8.service/cgroup.controllers", "cpuset cpu io memory pids\n");

        /* Refuses the root of the hierarchy. */
        CHECK(cgroup_manager_new(&m, root, CGROUP_V2, "0::/\n", 4242, NULL) == -EPERM);

        CHECK(cgroup_self_path("12:pids:/a\n0::/system.slice/isol8.service\n", "", &s) == 0 && strcmp(s, "/system.slice/isol8.service") == 0);
        free(s);
        CHECK(cgroup_self_path("4:memory:/x/y\n3:cpu,cpuacct:/c\n", "cpuacct", &s) == 0 && strcmp(s, "/c") == 0);
        free(s);
        CHECK(cgroup_self_path("4:memory:/x/y\n", "pids", &s) == -ENOENT);

        CHECK(cgroup_manager_new(&m, root, CGROUP_V2, "0::/system.slice/isol8.service\n", 4242, locks) == 0);
        CHECK(m && cgroup_manager_version(m) == CGROUP_V2);
        /* The daemon moved itself to a leaf and delegated controllers below its cgroup. */
        s = readf("system.slice/isol8.service/supervisor/cgroup.procs");
        CHECK(s && strcmp(s, "4242") == 0);
        free(s);
        s = readf("system.slice/isol8.service/cgroup.subtree_control");
        CHECK(s != NULL);
        free(s);
        CHECK(exists("system.slice/isol8.service/isol8/d4242"));

        CHECK(cgroup_create(m, "sb-0-1", &cg) == 0);
        CHECK(exists("system.slice/isol8.service/isol8/d4242/sb-0-1"));
        CHECK(cgroup_set_limits(cg, 64ull << 20, 0.5, 32) == 0);
        s = readf("system.slice/isol8.service/isol8/d4242/sb-0-1/memory.max");
        CHECK_STREQ(s, "67108864");
        free(s);
        s = readf("system.slice/isol8.service/isol8/d4242/sb-0-1/cpu.max");
        CHECK_STREQ(s, "50000 100000");
        free(s);
        s = readf("system.slice/isol8.service/isol8/d4242/sb-0-1/pids.max");
        CHECK_STREQ(s, "32");
        free(s);
        s = readf("system.slice/isol8.service/isol8/d4242/sb-0-1/memory.swap.max");
        CHECK_STREQ(s, "0");
        free(s);
        /* v2 charges socket buffers to memory.current, so memory.max (above) bounds them too:
         * nothing of v1's separate TCP limit is written here. */
        CHECK(!exists("system.slice/isol8.service/isol8/d4242/sb-0-1/memory.kmem.tcp.limit_in_bytes"));
        CHECK(cgroup_set_limits(cg, 0, 0, 0) == 0);
        s = readf("system.slice/isol8.service/isol8/d4242/sb-0-1/memory.max");
        CHECK_STREQ(s, "max");
        free(s);

        CHECK(cgroup_attach(cg, 777) == 0);
        s = readf("system.slice/isol8.service/isol8/d4242/sb-0-1/cgroup.procs");
        CHECK_STREQ(s, "777");
        free(s);

        writef("system.slice/isol8.service/isol8/d4242/sb-0-1/cpu.stat", "usage_usec 1500\nuser_usec 1000\n");
        writef("system.slice/isol8.service/isol8/d4242/sb-0-1/memory.current", "1048576\n");
        writef("system.slice/isol8.service/isol8/d4242/sb-0-1/memory.peak", "2097152\n");
        writef("system.slice/isol8.service/isol8/d4242/sb-0-1/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        writef("system.slice/isol8.service/isol8/d4242/sb-0-1/pids.events", "max 4\n");
        CHECK(cgroup_read_stats(cg, &st) == 0);
        CHECK(st.cpu_usec == 1500 && st.memory_bytes == 1048576 && st.memory_peak_bytes == 2097152);
        CHECK(st.oom_kills == 1 && st.pids_max_events == 4);
        /* CPU time cannot be reset on v2: later reads count from the reset point. */
        cgroup_reset_counters(cg);
        writef("system.slice/isol8.service/isol8/d4242/sb-0-1/cpu.stat", "usage_usec 2000\n");
        CHECK(cgroup_read_stats(cg, &st) == 0 && st.cpu_usec == 500);

        /* Killing the tree: every listed pid but the excepted one gets SIGKILL, with the group frozen. */
        child = fork();
        if (child == 0) {
                pause();
                _exit(0);
        }
        snprintf(p, sizeof(p), "%d\n777777\n", (int) child);
        writef("system.slice/isol8.service/isol8/d4242/sb-0-1/cgroup.procs", p);
        writef("system.slice/isol8.service/isol8/d4242/sb-0-1/cgroup.events", "populated 1\nfrozen 1\n");
        CHECK(cgroup_kill_all(cg, 777777) >= 1);
        CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        s = readf("system.slice/isol8.service/isol8/d4242/sb-0-1/cgroup.freeze");
        CHECK_STREQ(s, "0");  /* thawed again */
        free(s);

        /* Reclaim: a directory of a daemon that is gone is removed; our own stays; one whose
         * daemon holds its lock stays too, whatever its pid (another pid namespace). */
        CHECK(exists("locks/d4242.lock"));
        snprintf(p, sizeof(p), "%s/system.slice/isol8.service/isol8/d999999/sb-1-1", root);
        CHECK(mkdir_p(p, 0755) == 0);
        snprintf(p, sizeof(p), "%s/system.slice/isol8.service/isol8/d1/sb-1-1", root);
        CHECK(mkdir_p(p, 0755) == 0);
        {
                int lock;
                snprintf(p, sizeof(p), "%.200s/d1.lock", locks);
                lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                CHECK(lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0);
                CHECK(cgroup_manager_reclaim(m) == 1);
                CHECK(!exists("system.slice/isol8.service/isol8/d999999"));
                CHECK(exists("system.slice/isol8.service/isol8/d1/sb-1-1"));
                CHECK(exists("system.slice/isol8.service/isol8/d4242/sb-0-1"));
                close(lock);   /* that daemon is gone now */
                CHECK(cgroup_manager_reclaim(m) == 1);
                CHECK(!exists("system.slice/isol8.service/isol8/d1"));
        }

        cgroup_destroy(cg);
        CHECK(!exists("system.slice/isol8.service/isol8/d4242/sb-0-1"));
        cgroup_manager_free(m);
        CHECK(!exists("system.slice/isol8.service/isol8/d4242"));
        CHECK(!exists("locks/d4242.lock"));

        /* Controllers not delegated (a cgroup2 tree without memory and pids for us): refuse to
         * start, rather than answer /health and fail every run. */
        snprintf(p, sizeof(p), "%s/system.slice/isol8.service/isol8/d4343", root);
        CHECK(mkdir_p(p, 0755) == 0);
        writef("system.slice/isol8.service/isol8/d4343/cgroup.controllers", "cpu io\n");
        m = NULL;
        CHECK(cgroup_manager_new(&m, root, CGROUP_V2, "0::/system.slice/isol8.service\n", 4343, NULL) == -EPERM);
        CHECK(m == NULL);
        snprintf(p, sizeof(p), "rm -rf %s", root);
        CHECK(system(p) == 0);
        return tap_done();
}
