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

typedef struct FileWrite {
        const SandboxProvider *provider;
        Sandbox *sb;
        const char *path;
        const void *data;
        size_t size;
} FileWrite;

/* In the charged child: 0, an Outcome for what the file layer refuses, or < 0. */
static int file_write_charged(void *userdata) {
        FileWrite *f = userdata;
        _cleanup_close_ int root = f->provider->ops->open_root(f->sb);
        uid_t uid = f->provider->ops->host_uid(f->sb);

        if (root < 0)
                return root;
        return outcome_file_result(sandbox_write_file(root, f->path, f->data, f->size, uid, uid, 0644));
}

int manager_file_write(Manager *m, const AuthInfo *who, const char *session_id, const char *path, const void *data,
                       size_t size) {
        _cleanup_free_ char *norm = NULL;
        Session *s;
        int r;

        r = file_target(m, who, session_id, path, &norm, &s);
        if (r != 0)
                return r;
        /* Written from the sandbox's cgroup: the file counts against the session's memory limit. */
        r = m->provider.ops->charged_call(session_sandbox(s), file_write_charged,
                                          &(FileWrite) { &m->provider, session_sandbox(s), norm, data, size });
        if (r == -ENOMEM)
                return OUTCOME_MEMORY_LIMIT;
        return r;
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
