/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/image-tree.h"
#include "shared/util.h"

#define DEPTH_MAX 64

typedef struct Copy {
        uid_t uid;
        gid_t gid;
        uint64_t max_bytes, max_files;
        ImageTreeStats stats;
} Copy;

/* Reads happen as the sandbox user, writes as root: one thread, its own file-system ids. */
static void as_user(const Copy *c) {
        (void) setfsgid(c->gid);
        (void) setfsuid(c->uid);
}

static void as_root(void) {
        (void) setfsuid(0);
        (void) setfsgid(0);
}

static int copy_file(Copy *c, int sfd, int dst_dirfd, const char *name, mode_t mode) {
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        struct stat st;

        as_user(c);
        in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        as_root();
        if (in < 0)
                return -errno;
        if (fstat(in, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return 0;       /* replaced under us: left out */
        if ((uint64_t) st.st_size > c->max_bytes - MIN(c->stats.bytes, c->max_bytes))
                return -EFBIG;
        out = openat(dst_dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return -errno;
        /* The daemon's umask (UMask=0077 under its unit) must not make the image unreadable. */
        if (fchmod(out, (mode & 0111) ? 0755 : 0644) < 0)
                return -errno;
        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
                if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
                        char buf[65536];
                        n = read(in, buf, sizeof(buf));
                        if (n > 0 && loop_write(out, buf, (size_t) n) < 0)
                                return -errno;
                }
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                c->stats.bytes += (uint64_t) n;
                if (c->stats.bytes > c->max_bytes)
                        return -EFBIG;
        }
        return 0;
}

/* A directory stream of its own over fd (which stays the caller's). */
static int open_dir_stream(int fd, DIR **ret) {
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return -errno;
        *ret = fdopendir(dup_fd);
        if (!*ret) {
                int r = -errno;
                close(dup_fd);
                return r;
        }
        return 0;
}

static int copy_dir(Copy *c, int sfd, int dfd, unsigned depth) {
        struct stat root;
        DIR *d;
        int r = 0;

        if (depth > DEPTH_MAX)
                return -ELOOP;
        if (fstat(sfd, &root) < 0)
                return -errno;
        r = open_dir_stream(sfd, &d);
        if (r < 0)
                return r;
        for (;;) {
                struct dirent *de;
                struct stat st;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        r = errno ? -errno : 0;
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (++c->stats.files > c->max_files) {
                        r = -EFBIG;
                        break;
                }
                as_user(c);
                r = fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
                as_root();
                if (r < 0)
                        break;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int s2 = -EBADF, d2 = -EBADF;
                        if (st.st_dev != root.st_dev)
                                continue;       /* another file system: not the build's files */
                        as_user(c);
                        s2 = openat(sfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        as_root();
                        if (s2 < 0) {
                                r = -errno;
                                break;
                        }
                        if (mkdirat(dfd, de->d_name, 0755) < 0) {
                                r = -errno;
                                break;
                        }
                        d2 = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (d2 < 0 || fchmod(d2, 0755) < 0) {
                                r = -errno;
                                break;
                        }
                        r = copy_dir(c, s2, d2, depth + 1);
                } else if (S_ISREG(st.st_mode))
                        r = copy_file(c, sfd, dfd, de->d_name, st.st_mode);
                else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n;
                        as_user(c);
                        n = readlinkat(sfd, de->d_name, target, sizeof(target) - 1);
                        as_root();
                        if (n < 0) {
                                r = -errno;
                                break;
                        }
                        target[n] = 0;
                        r = symlinkat(target, dfd, de->d_name) < 0 ? -errno : 0;
                }
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

int image_tree_copy(int src_dirfd, const char *src, int dst_dirfd, const char *dst, uid_t uid, gid_t gid,
                    uint64_t max_bytes, uint64_t max_files, ImageTreeStats *ret) {
        _cleanup_close_ int sfd = -EBADF, dfd = -EBADF;
        Copy c = { .uid = uid, .gid = gid, .max_bytes = max_bytes, .max_files = max_files };
        int r;

        as_user(&c);
        sfd = openat(src_dirfd, src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        as_root();
        if (sfd < 0)
                return -errno;
        if (mkdirat(dst_dirfd, dst, 0755) < 0)
                return -errno;
        dfd = openat(dst_dirfd, dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || fchmod(dfd, 0755) < 0)
                return -errno;
        r = copy_dir(&c, sfd, dfd, 0);
        if (ret)
                *ret = c.stats;
        return r;
}

static int remove_below(int dfd, unsigned depth) {
        DIR *d;
        int r;

        if (depth > DEPTH_MAX + 1)
                return -ELOOP;
        r = open_dir_stream(dfd, &d);
        if (r < 0)
                return r;
        for (struct dirent *de; (de = readdir(d));) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (de->d_type == DT_DIR) {
                        _cleanup_close_ int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0) {
                                int k = remove_below(sub, depth + 1);
                                if (k < 0 && r == 0)
                                        r = k;
                        }
                        if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0 && r == 0)
                                r = -errno;
                } else if (unlinkat(dfd, de->d_name, 0) < 0 && r == 0)
                        r = -errno;
        }
        closedir(d);
        return r;
}

int image_tree_remove(int dirfd, const char *name) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r;

        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        r = remove_below(fd, 0);
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && r == 0)
                r = -errno;
        return r;
}
