/* SPDX-License-Identifier: MIT */
/* Files in and out of a session (core/files.c): what the client did wrong is an outcome, and
 * a failure of the sandbox around the file layer is a failure whatever errno it carries (a
 * stray EPERM from a cgroup write is not "refused path", a missing /proc/PID/root is not "no
 * such file"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/manager.h"
#include "fake-provider.h"
#include "tap.h"

static void on_ready(Sandbox *sb, int error, void *userdata) {
        *(SessionUse **) userdata = NULL;
}

static sd_event *loop;

static void on_written(int result, void *userdata) {
        *(int *) userdata = result;
}

/* manager_file_write() and its answer: an Outcome at once, or what comes from the loop. */
static int write_now(Manager *m, const AuthInfo *who, const char *id, const char *path, const char *data, size_t size) {
        int result = INT32_MIN, r;

        r = manager_file_write(m, who, id, path, data, size, on_written, &result, NULL);
        if (r != 0)
                return r;
        while (result == INT32_MIN)
                if (sd_event_run(loop, 1000000) < 0)
                        return -EIO;
        return result;
}

int main(void) {
        AuthInfo alice = { .type = AUTH_APIKEY, .tenant = "alice" }, bob = { .type = AUTH_APIKEY, .tenant = "bob" };
        SessionLimits sl = { .max_total = 10, .max_per_tenant = 10, .max_idle_usec = UINT64_MAX / 2, .sweep_interval_usec = 1000000 };
        PoolConfig pc = { .clean = 0 };
        char dir[] = "/tmp/isol8-test-files-XXXXXX", path[512];
        ExecRequest *req = calloc(1, sizeof(ExecRequest));
        SessionUse *use = NULL, *pending = NULL;
        Manager m = {};
        char *err = NULL, *data = NULL;
        size_t size = 0;
        sd_event *e = NULL;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/sandbox", dir);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof(path), "%s/tmp", dir);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof(path), "%s/sandbox/out", dir);
        CHECK(symlink("/etc/passwd", path) == 0);

        CHECK(sd_event_new(&e) >= 0);
        loop = e;
        fake_init(e);
        fake.root_dir = dir;
        m.event = e;
        m.provider = fake.provider;
        CHECK(pool_new(&m.pool, &m.provider, &pc) == 0);
        CHECK(session_registry_new(&m.sessions, e, &m.provider, m.pool, &sl) == 0);
        req->session_id = strdup("s");
        req->runtime = RUNTIME_PYTHON;
        pending = (SessionUse *) 1;
        CHECK(session_use(m.sessions, &alice, req, on_ready, &pending, &use, &err) == 0);
        fake_event(fake_pending(), SANDBOX_READY, 0);
        run_loop(e);
        CHECK(pending == NULL);
        session_use_done(use);

        /* The good path, and what a client can get wrong (writes answered from the loop). */
        CHECK(write_now(&m, &alice, "s", "a.txt", "hello", 5) == 0);
        CHECK(manager_file_read(&m, &alice, "s", "/sandbox/a.txt", 1024, &data, &size) == 0 && size == 5 &&
              memcmp(data, "hello", 5) == 0);
        free(data);
        CHECK(manager_file_read(&m, &alice, "s", "missing", 1024, &data, &size) == OUTCOME_FILE_NOT_FOUND);
        CHECK(manager_file_read(&m, &alice, "s", "out", 1024, &data, &size) == OUTCOME_PATH_REFUSED);   /* a link out */
        CHECK(write_now(&m, &alice, "s", "out", "x", 1) == OUTCOME_PATH_REFUSED);
        CHECK(write_now(&m, &alice, "s", "../etc/x", "x", 1) == OUTCOME_PATH_REFUSED);
        CHECK(manager_file_read(&m, &alice, "s", "/sandbox/a.txt", 2, &data, &size) == OUTCOME_TOO_BIG);
        CHECK(manager_file_read(&m, &bob, "s", "/sandbox/a.txt", 1024, &data, &size) == OUTCOME_SESSION_NOT_FOUND);
        CHECK(write_now(&m, &alice, "nope", "a.txt", "x", 1) == OUTCOME_SESSION_NOT_FOUND);

        /* The sandbox's init is gone under us: -ENOENT from /proc/PID/root is a failure (500),
         * not "File not found" or "Session not found". */
        fake.root_error = -ENOENT;
        CHECK(manager_file_read(&m, &alice, "s", "/sandbox/a.txt", 1024, &data, &size) == -ENOENT);
        fake.root_error = 0;
        /* The writer could not even start (EIO), or the sandbox went away before it answered
         * (ESRCH): failures, not refused paths or missing files. */
        fake.write_result = -EIO;
        CHECK(write_now(&m, &alice, "s", "b.txt", "x", 1) == -EIO);
        fake.write_result = -ESRCH;
        CHECK(write_now(&m, &alice, "s", "b.txt", "x", 1) == -ESRCH);
        /* The file layer's EPERM (a hard link planted by the program) is a refused path. */
        fake.write_result = -EPERM;
        CHECK(write_now(&m, &alice, "s", "b.txt", "x", 1) == OUTCOME_PATH_REFUSED);
        /* Killed at the session's memory limit: the client's file did not fit. */
        fake.write_result = -ENOMEM;
        CHECK(write_now(&m, &alice, "s", "b.txt", "x", 1) == OUTCOME_MEMORY_LIMIT);
        fake.write_result = 0;
        /* Known not to fit before anything is written: refused at once. */
        fake.memory_available = 3;
        CHECK(manager_file_write(&m, &alice, "s", "b.txt", "four", 4, NULL, NULL, NULL) == OUTCOME_MEMORY_LIMIT);
        CHECK(write_now(&m, &alice, "s", "b.txt", "two", 3) == 0);
        fake.memory_available = UINT64_MAX;

        session_registry_free(m.sessions);
        pool_free(m.pool);
        exec_request_free(req);
        snprintf(path, sizeof(path), "rm -rf '%s'", dir);
        CHECK(system(path) == 0);
        sd_event_unref(e);
        return tap_done();
}
