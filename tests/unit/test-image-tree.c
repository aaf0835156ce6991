/* SPDX-License-Identifier: MIT */
/* The copy of a build's tree out of its sandbox and its removal (core/image-tree.c): what a
 * hostile install script could leave (links out, set-id bits, a FIFO, a tree too large or too
 * deep) never reaches the image or makes the daemon follow it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/image-tree.h"
#include "tap.h"

static void write_file(const char *dir, const char *name, const char *text, mode_t mode) {
        char p[512];
        int fd;
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t) strlen(text));
        close(fd);
        CHECK(chmod(p, mode) == 0);
}

static mode_t mode_of(const char *dir, const char *name) {
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        return lstat(p, &st) < 0 ? (mode_t) -1 : st.st_mode;
}

int main(void) {
        char dir[] = "/tmp/isol8-test-image-tree-XXXXXX";
        char src[128], dst[128], p[512], target[512];
        ImageTreeStats st = {};
        mode_t old_umask;
        int sfd, dfd;
        ssize_t n;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(src, sizeof(src), "%s/src", dir);
        snprintf(dst, sizeof(dst), "%s/dst", dir);
        CHECK(mkdir(src, 0700) == 0 && mkdir(dst, 0700) == 0);
        snprintf(p, sizeof(p), "%s/pkg", src);
        CHECK(mkdir(p, 0700) == 0);
        write_file(src, "pkg/mod.py", "ANSWER = 42\n", 0600);
        write_file(src, "pkg/tool", "#!/bin/sh\n", 04777);              /* set-uid, world-writable */
        snprintf(p, sizeof(p), "%s/pkg/passwd", src);
        CHECK(symlink("/etc/passwd", p) == 0);                           /* a link out: kept as a link */
        snprintf(p, sizeof(p), "%s/pkg/fifo", src);
        CHECK(mkfifo(p, 0644) == 0);                                      /* left out */
        snprintf(p, sizeof(p), "%s/escape", src);
        CHECK(symlink("/etc", p) == 0);                                   /* a directory link: not entered */

        sfd = open(dir, O_PATH | O_DIRECTORY);
        dfd = open(dst, O_PATH | O_DIRECTORY);
        CHECK(sfd >= 0 && dfd >= 0);
        old_umask = umask(0077);   /* the daemon's under its unit */
        CHECK(image_tree_copy(sfd, "src", dfd, "layer", 0, 0, 1 << 20, 100, &st) == 0);
        umask(old_umask);
        snprintf(p, sizeof(p), "%s/layer", dst);
        CHECK((mode_of(p, "") & 07777) == 0755);
        CHECK((mode_of(p, "pkg") & 07777) == 0755);
        CHECK((mode_of(p, "pkg/mod.py") & 07777) == 0644);
        CHECK((mode_of(p, "pkg/tool") & 07777) == 0755);                 /* no set-id, no write for others */
        CHECK(S_ISLNK(mode_of(p, "pkg/passwd")));
        {
                char link[256];
                snprintf(target, sizeof(target), "%s/layer/pkg/passwd", dst);
                n = readlink(target, link, sizeof(link) - 1);
                CHECK(n == 11 && memcmp(link, "/etc/passwd", 11) == 0);
        }
        CHECK(mode_of(p, "pkg/fifo") == (mode_t) -1);
        CHECK(S_ISLNK(mode_of(p, "escape")));                             /* the link, not /etc's files */
        CHECK(st.bytes == strlen("ANSWER = 42\n") + strlen("#!/bin/sh\n"));
        CHECK(st.files == 6);

        /* bounds: bytes, files, an existing destination */
        CHECK(image_tree_copy(sfd, "src", dfd, "small", 0, 0, 4, 100, &st) == -EFBIG);
        CHECK(image_tree_copy(sfd, "src", dfd, "few", 0, 0, 1 << 20, 2, &st) == -EFBIG);
        CHECK(image_tree_copy(sfd, "src", dfd, "layer", 0, 0, 1 << 20, 100, &st) == -EEXIST);
        /* the source itself a link: refused */
        CHECK(image_tree_copy(sfd, "src/escape", dfd, "x", 0, 0, 1 << 20, 100, &st) < 0);

        /* depth: 70 nested directories are more than a tree may have */
        {
                char deep[4096];
                snprintf(deep, sizeof(deep), "%s/deep", dir);
                CHECK(mkdir(deep, 0755) == 0);
                for (int i = 0; i < 70; i++) {
                        strncat(deep, "/d", sizeof(deep) - strlen(deep) - 1);
                        CHECK(mkdir(deep, 0755) == 0);
                }
                CHECK(image_tree_copy(sfd, "deep", dfd, "deep", 0, 0, 1 << 20, 1000, &st) == -ELOOP);
        }

        /* removal: the whole tree, links removed not followed */
        CHECK(image_tree_remove(dfd, "layer") == 0);
        CHECK(mode_of(dst, "layer") == (mode_t) -1);
        CHECK(access("/etc/passwd", F_OK) == 0);
        CHECK(image_tree_remove(dfd, "gone") == 0);

        close(sfd);
        close(dfd);
        {
                char cmd[300];
                snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
                CHECK(system(cmd) == 0);
        }
        return tap_done();
}
