/* SPDX-License-Identifier: MIT */
/* isol8-sandbox-init: the program every sandbox's init runs. The daemon clones a child into new
 * namespaces and that child at once execs this file, with an empty environment and only these
 * descriptors, so nothing of the daemon (its memory, argv, environment or fds) reaches a
 * sandbox:
 *   0-2 /dev/null
 *   3  control socket (SOCK_SEQPACKET) to the daemon
 *   4  memfd with the sandbox's seccomp program (raw struct sock_filter array)
 *   5  sync pipe: one byte once the daemon has written the id maps and set the cgroup
 * It starts with all capabilities of its user namespace as ambient ones (its uid there is not
 * mapped yet); once synced it becomes that namespace's root and drops the ambient set.
 * Arguments: --root DIR --sandbox-bytes N --tmp-bytes N [--share-network] [--bind DIR]... */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/protocol.h"
#include "shared/util.h"

#define BIND_DIRS_MAX 32

static int load_seccomp(int fd, SeccompProgram *ret) {
        struct stat st;
        struct sock_filter *f;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size == 0) {
                *ret = (SeccompProgram) {};
                return 0;
        }
        if (st.st_size % sizeof(struct sock_filter) != 0 || st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -EINVAL;
        f = malloc((size_t) st.st_size);
        if (!f)
                return -ENOMEM;
        if (pread(fd, f, (size_t) st.st_size, 0) != st.st_size) {
                free(f);
                return -EIO;
        }
        ret->prog.filter = f;
        ret->prog.len = (unsigned short) (st.st_size / sizeof(struct sock_filter));
        return 0;
}

int main(int argc, char *argv[]) {
        const char *bind_dirs[BIND_DIRS_MAX + 1] = {};
        size_t n_bind = 0;
        SeccompProgram seccomp = {};
        InitParams p = {
                .sock = INIT_FD_SOCKET,
                .sync_fd = INIT_FD_SYNC,
                .bind_dirs = bind_dirs,
                .seccomp = &seccomp,
        };

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                int r = 0;
                if (streq(a, "--share-network")) {
                        p.share_network = true;
                        continue;
                }
                if (!v) {
                        fprintf(stderr, "isol8-sandbox-init: %s needs a value\n", a);
                        return 2;
                }
                i++;
                if (streq(a, "--root"))
                        p.root_dir = v;
                else if (streq(a, "--sandbox-bytes"))
                        r = safe_atou64(v, &p.sandbox_bytes);
                else if (streq(a, "--tmp-bytes"))
                        r = safe_atou64(v, &p.tmp_bytes);
                else if (streq(a, "--image") && v[0] == '/' && !strstr(v, ".."))
                        p.image_target = v;
                else if (streq(a, "--bind") && n_bind < BIND_DIRS_MAX)
                        bind_dirs[n_bind++] = v;
                else
                        r = -EINVAL;
                if (r < 0) {
                        fprintf(stderr, "isol8-sandbox-init: bad argument %s %s\n", a, v);
                        return 2;
                }
        }
        if (!p.root_dir || !p.sandbox_bytes || !p.tmp_bytes) {
                fprintf(stderr, "isol8-sandbox-init: started by hand? It is run by isol8 serve for each sandbox.\n");
                return 2;
        }
        if (load_seccomp(INIT_FD_SECCOMP, &seccomp) < 0) {
                fprintf(stderr, "isol8-sandbox-init: cannot read the seccomp program\n");
                return 1;
        }
        close(INIT_FD_SECCOMP);
        sandbox_init_main(&p);
}
