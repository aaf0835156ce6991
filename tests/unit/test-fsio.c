/* SPDX-License-Identifier: MIT */
/* Files into and out of a sandbox, with openat2() and with the openat() walk that replaces it
 * where a seccomp filter (systemd's RestrictSUIDSGID=) answers ENOSYS: the same rules both ways. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/fsio.h"
#include "tap.h"

static void check_rules(int root, const char *how) {
        void *data = NULL;
        size_t size = 0;

        printf("# %s\n", how);
        CHECK(sandbox_write_file(root, "/sandbox/a/b/c.txt", "hello", 5, 0, 0, 0644) == 0);
        CHECK(sandbox_read_file(root, "/sandbox/a/b/c.txt", 1 << 20, 0, 0, &data, &size) == 0);
        CHECK(size == 5 && memcmp(data, "hello", 5) == 0);
        free(data);
        /* A file written again with less is cut to it (a new one is not truncated first). */
        CHECK(sandbox_write_file(root, "/sandbox/a/b/c.txt", "hey", 3, 0, 0, 0644) == 0);
        CHECK(sandbox_read_file(root, "/sandbox/a/b/c.txt", 1 << 20, 0, 0, &data, &size) == 0);
        CHECK(size == 3 && memcmp(data, "hey", 3) == 0);
        free(data);
        CHECK(sandbox_write_file(root, "/tmp/name..with..dots", "x", 1, 0, 0, 0644) == 0);
        CHECK(sandbox_read_file(root, "/sandbox/a/b/c.txt", 2, 0, 0, &data, &size) == -EFBIG);

        /* links planted by the program: never followed out, in any component */
        CHECK(sandbox_write_file(root, "/sandbox/out/x", "x", 1, 0, 0, 0644) < 0);
        CHECK(sandbox_read_file(root, "/sandbox/out/passwd", 1 << 20, 0, 0, &data, &size) < 0);
        CHECK(sandbox_read_file(root, "/sandbox/file-link", 1 << 20, 0, 0, &data, &size) < 0);
        CHECK(sandbox_write_file(root, "/sandbox/file-link", "x", 1, 0, 0, 0644) < 0);
        CHECK(sandbox_mkdir_p(root, "/sandbox/out/deeper", 0, 0) < 0);
        /* a hard link, a FIFO */
        CHECK(sandbox_read_file(root, "/sandbox/hard", 1 << 20, 0, 0, &data, &size) == -EPERM);
        CHECK(sandbox_read_file(root, "/sandbox/fifo", 1 << 20, 0, 0, &data, &size) == -EPERM);
        CHECK(sandbox_read_file(root, "/sandbox/missing", 1 << 20, 0, 0, &data, &size) == -ENOENT);
}

int main(void) {
        char dir[] = "/tmp/isol8-test-fsio-XXXXXX";
        char path[256];
        int root;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/sandbox", dir);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof(path), "%s/tmp", dir);
        CHECK(mkdir(path, 01777) == 0);
        snprintf(path, sizeof(path), "%s/sandbox/out", dir);
        CHECK(symlink("/etc", path) == 0);
        snprintf(path, sizeof(path), "%s/sandbox/file-link", dir);
        CHECK(symlink("/etc/hostname", path) == 0);
        snprintf(path, sizeof(path), "%s/sandbox/fifo", dir);
        CHECK(mkfifo(path, 0644) == 0);
        snprintf(path, sizeof(path), "%s/sandbox/hard", dir);
        {
                char other[256];
                int fd = open(path, O_WRONLY | O_CREAT, 0644);
                CHECK(fd >= 0);
                close(fd);
                snprintf(other, sizeof(other), "%s/sandbox/hard2", dir);
                CHECK(link(path, other) == 0);
        }
        root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        CHECK(root >= 0);

        fsio_use_openat2(true);
        check_rules(root, "openat2()");
        fsio_use_openat2(false);
        check_rules(root, "openat() walk");

        close(root);
        {
                char cmd[300];
                snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
                CHECK(system(cmd) == 0);
        }
        return tap_done();
}
