/* SPDX-License-Identifier: MIT */
/* Files in and out of a session's sandbox (POST/GET /file). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/manager.h"
#include "sandbox/fsio.h"
#include "shared/log.h"

/* The normalised path, and a session the caller may see with a live sandbox (the access is
 * marked). 0 or an Outcome. */
static int file_target(Manager *m, const AuthInfo *who, const char *id, const char *path, char **ret_path, Session **ret) {
        Session *s;

        if (sandbox_path_normalize(path, true, ret_path) < 0)
                return OUTCOME_PATH_REFUSED;
        if (!id || !session_id_valid(id) || session_lookup(m->sessions, who, id, &s) < 0 || !session_sandbox(s))
                return OUTCOME_SESSION_NOT_FOUND;
        session_touch(s);
        *ret = s;
        return 0;
}

struct ManagerFileCall {
        const SandboxProvider *provider;
        Sandbox *sb;
        ManagerFileFn cb;
        void *userdata;
};

static void on_written(int result, void *userdata) {
        ManagerFileCall *c = userdata;
        int r;

        /* The memory limit; a sandbox that went away is a failure, never a file outcome; the
         * file layer's own errnos are outcomes. */
        if (result == -ENOMEM)
                r = OUTCOME_MEMORY_LIMIT;
        else if (result == -ESRCH)
                r = -ESRCH;
        else
                r = outcome_file_result(result);
        if (c->cb)
                c->cb(r, c->userdata);
        free(c);
}

int manager_file_write(Manager *m, const AuthInfo *who, const char *session_id, const char *path, const void *data,
                       size_t size, ManagerFileFn cb, void *userdata, ManagerFileCall **ret_call) {
        _cleanup_free_ char *norm = NULL;
        ManagerFileCall *c;
        Session *s;
        int r;

        r = file_target(m, who, session_id, path, &norm, &s);
        if (r != 0)
                return r;
        if (!m->provider.ops->memory_fits(session_sandbox(s), size))
                return OUTCOME_MEMORY_LIMIT;
        c = calloc(1, sizeof(ManagerFileCall));
        if (!c)
                return -ENOMEM;
        *c = (ManagerFileCall) { &m->provider, session_sandbox(s), cb, userdata };
        /* Written by the sandbox's init, in its cgroup: the file counts against the session's
         * memory limit. One write at a time per session. */
        r = m->provider.ops->write(c->sb, &(SandboxWrite) { .path = norm, .data = data, .size = size }, 1, on_written, c);
        if (r < 0) {
                free(c);
                return r == -EBUSY ? OUTCOME_QUEUE_FULL : r;
        }
        if (ret_call)
                *ret_call = c;
        return 0;
}

void manager_file_call_cancel(ManagerFileCall *c) {
        if (c)
                c->cb = NULL;
}

int manager_file_read(Manager *m, const AuthInfo *who, const char *session_id, const char *path, size_t max, char **ret,
                      size_t *ret_size) {
        _cleanup_free_ char *norm = NULL, *masked = NULL;
        _cleanup_free_ void *data = NULL;
        _cleanup_close_ int root = -EBADF;
        const SecretMask *mask;
        Session *s;
        size_t size;
        uid_t uid;
        int r;

        r = file_target(m, who, session_id, path, &norm, &s);
        if (r != 0)
                return r;
        /* A sandbox that cannot be opened is a failure (its init died under us), never "no
         * such file". */
        root = m->provider.ops->open_root(session_sandbox(s));
        if (root < 0)
                return root;
        uid = m->provider.ops->host_uid(session_sandbox(s));
        r = sandbox_read_file(root, norm, max, uid, uid, &data, &size);
        if (r < 0)
                return outcome_file_result(r);
        mask = session_secret_mask(s);
        if (mask) {
                size_t consumed;
                masked = secret_mask_apply(mask, data, size, true, &size, &consumed);
                if (!masked)
                        return -ENOMEM;
                *ret = TAKE_PTR(masked);
        } else
                *ret = TAKE_PTR(data);
        *ret_size = size;
        return 0;
}
