/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/fsio.h"
#include "shared/util.h"

/* File operations inside a sandbox run with the file system ids of its user: what is created
 * belongs to that user (the tmpfs refuses ids its user namespace cannot map), and access is
 * checked exactly as for the sandboxed program, without the daemon's privileges. */
typedef struct FsIds {
        uid_t uid;
        gid_t gid;
} FsIds;

static FsIds fsids_enter(uid_t uid, gid_t gid) {
        FsIds old = { (uid_t) setfsuid((uid_t) -1), (gid_t) setfsgid((gid_t) -1) };
        (void) setfsgid(gid);
        (void) setfsuid(uid);
        return old;
}

static void fsids_leave(FsIds *old) {
        (void) setfsuid(old->uid);
        (void) setfsgid(old->gid);
}

/* Whether openat2() works here: systemd's RestrictSUIDSGID= filter cannot look into its flags
 * and answers ENOSYS, and so may other seccomp filters and old kernels. */
static int openat2_works = -1;

void fsio_use_openat2(bool use) {
        openat2_works = use;
}

/* The same resolution with openat(): one component at a time, never following a symlink
 * (stricter than RESOLVE_BENEATH, which allows links that stay inside) and never leaving the
 * file system of dirfd (a mount point below it). Paths are normalised: no "..", no "/" first. */
static int openat_walk_beneath(int dirfd, const char *path, int flags, mode_t mode) {
        _cleanup_close_ int cur = -EBADF;
        _cleanup_free_ char *copy = NULL;
        struct stat st;
        char *p, *slash;
        dev_t dev;
        int fd;

        if (fstat(dirfd, &st) < 0)
                return -errno;
        dev = st.st_dev;
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        if (copy[0] == '/')
                return -EXDEV;
        cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        for (p = copy; (slash = strchr(p, '/')); p = slash + 1) {
                int next;
                *slash = 0;
                if (!*p || streq(p, "."))
                        continue;
                if (streq(p, ".."))
                        return -EXDEV;
                next = openat(cur, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return errno == ENOTDIR ? -ELOOP : -errno;
                safe_close(cur);
                cur = next;
                if (fstat(cur, &st) < 0)
                        return -errno;
                if (st.st_dev != dev)
                        return -EXDEV;
        }
        if (streq(p, ".."))
                return -EXDEV;
        fd = openat(cur, *p ? p : ".", flags | O_NOFOLLOW | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY), mode);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || st.st_dev != dev) {
                safe_close(fd);
                return -EXDEV;
        }
        return fd;
}

static int openat2_beneath(int dirfd, const char *path, int flags, mode_t mode) {
        struct open_how how = {
                /* openat2 refuses flags that mean nothing with O_PATH */
                .flags = (uint64_t) flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY),
                .mode = (flags & O_CREAT) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        long fd;

        if (openat2_works == 0)
                return openat_walk_beneath(dirfd, path, flags, mode);
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        if (fd < 0 && errno == ENOSYS) {
                openat2_works = 0;
                return openat_walk_beneath(dirfd, path, flags, mode);
        }
        openat2_works = 1;
        return fd < 0 ? -errno : (int) fd;
}

/* Opens the top directory (/sandbox or /tmp) of a normalised path and returns the rest. */
static int open_top(int root_fd, const char *path, const char **ret_rest) {
        const char *rest;
        const char *top;

        if ((rest = startswith(path, "/sandbox")))
                top = "sandbox";
        else if ((rest = startswith(path, "/tmp")))
                top = "tmp";
        else
                return -EINVAL;
        if (*rest != 0 && *rest != '/')
                return -EINVAL;
        while (*rest == '/')
                rest++;
        *ret_rest = rest;
        /* The top directory itself is a mount point in the sandbox: cross onto it only here. */
        return RET_NERRNO(openat(root_fd, top, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

static int mkdir_p_at(int root_fd, const char *path) {
        _cleanup_close_ int dir = -EBADF;
        _cleanup_free_ char *copy = NULL;
        const char *rest;
        char *save = NULL;

        dir = open_top(root_fd, path, &rest);
        if (dir < 0)
                return dir;
        copy = strdup(rest);
        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
                int next;
                if (mkdirat(dir, t, 0755) >= 0)
                        next = openat2_beneath(dir, t, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
                else if (errno == EEXIST)
                        next = openat2_beneath(dir, t, O_PATH | O_DIRECTORY, 0);
                else
                        return -errno;
                if (next < 0)
                        return next;
                safe_close(dir);
                dir = next;
        }
        return 0;
}

static int open_parent(int root_fd, const char *path, bool create, const char **ret_name) {
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int top = -EBADF;
        const char *slash = strrchr(path, '/');
        const char *rest;
        int r;

        if (!slash || !slash[1])
                return -EINVAL;
        parent = strndup(path, (size_t) (slash - path));
        if (!parent)
                return -ENOMEM;
        if (create && !streq(parent, "/sandbox") && !streq(parent, "/tmp")) {
                r = mkdir_p_at(root_fd, parent);
                if (r < 0)
                        return r;
        }
        top = open_top(root_fd, parent, &rest);
        if (top < 0)
                return top;
        *ret_name = slash + 1;
        if (!*rest)
                return TAKE_FD(top);
        return openat2_beneath(top, rest, O_PATH | O_DIRECTORY, 0);
}

static int write_file(int root_fd, const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_close_ int dir = -EBADF, fd = -EBADF;
        const char *name;
        struct stat st;
        int r;

        dir = open_parent(root_fd, path, true, &name);
        if (dir < 0)
                return dir;
        /* O_NOFOLLOW: a planted symlink is refused, not followed; O_NONBLOCK: a FIFO cannot hang us. */
        fd = openat2_beneath(dir, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, mode);
        if (fd == -ENXIO)
                return -EPERM;  /* a FIFO without a reader */
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EPERM;
        if (st.st_nlink > 1)
                return -EPERM;  /* a hard link planted by the program: never write through it */
        /* A new file (the common case) has nothing to cut. */
        if (st.st_size > 0 && ftruncate(fd, 0) < 0)
                return -errno;
        r = loop_write(fd, data, size);
        if (r < 0)
                return r;
        return 0;
}

static int read_file(int root_fd, const char *path, size_t max, void **ret, size_t *ret_size) {
        _cleanup_close_ int dir = -EBADF, fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        const char *name;
        struct stat st;
        size_t done = 0;

        dir = open_parent(root_fd, path, false, &name);
        if (dir < 0)
                return dir;
        fd = openat2_beneath(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EPERM;
        /* A hard link made by the program: one file could be read (and held) many times over. */
        if (st.st_nlink > 1)
                return -EPERM;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        buf[done] = 0;
        *ret_size = done;
        *ret = TAKE_PTR(buf);
        return 0;
}

int sandbox_mkdir_p(int root_fd, const char *path, uid_t uid, gid_t gid) {
        FsIds old = fsids_enter(uid, gid);
        int r = mkdir_p_at(root_fd, path);
        fsids_leave(&old);
        return r;
}

int sandbox_write_file(int root_fd, const char *path, const void *data, size_t size, uid_t uid, gid_t gid, mode_t mode) {
        FsIds old = fsids_enter(uid, gid);
        int r = write_file(root_fd, path, data, size, mode);
        fsids_leave(&old);
        return r;
}

int sandbox_read_file(int root_fd, const char *path, size_t max, uid_t uid, gid_t gid, void **ret, size_t *ret_size) {
        FsIds old = fsids_enter(uid, gid);
        int r = read_file(root_fd, path, max, ret, ret_size);
        fsids_leave(&old);
        return r;
}
