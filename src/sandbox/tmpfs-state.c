/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "sandbox/tmpfs-state.h"

#define STATE_MASK (STATX_BASIC_STATS | STATX_BTIME)

bool tmpfs_state_reliable(const char *release) {
        unsigned major = 0, minor = 0;

        if (!release || sscanf(release, "%u.%u", &major, &minor) != 2)
                return false;
        return major > 6 || (major == 6 && minor >= 13);
}

/* The inode number a new file gets now (O_TMPFILE: no name, gone at close). */
static int probe_ino(const char *where, uint64_t *ret) {
        struct stat st;
        int fd = open(where, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        int r = 0;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                r = -errno;
        close(fd);
        if (r < 0)
                return r;
        *ret = (uint64_t) st.st_ino;
        return 0;
}

int tmpfs_state_take(const char *where, TmpfsState *ret) {
        struct statfs sf;
        int fd, r = 0;

        *ret = (TmpfsState) {};
        fd = open(where, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATE_MASK, &ret->root) < 0 ||
            fstatfs(fd, &sf) < 0 || ioctl(fd, FS_IOC_GETFLAGS, &ret->flags) < 0)
                r = -errno;
        close(fd);
        if (r < 0)
                return r;
        ret->xattr_size = llistxattr(where, NULL, 0);
        if (ret->xattr_size < 0)
                return -errno;
        ret->files_used = (uint64_t) (sf.f_files - sf.f_ffree);
        ret->blocks_used = (uint64_t) (sf.f_blocks - sf.f_bfree);
        r = probe_ino(where, &ret->probe_ino);
        if (r < 0)
                return r;
        ret->valid = true;
        return 0;
}

static bool same_time(const struct statx_timestamp *a, const struct statx_timestamp *b) {
        return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

bool tmpfs_state_untouched(const char *where, TmpfsState *s) {
        const struct statx *a = &s->root;
        TmpfsState now;
        const struct statx *b = &now.root;

        if (!s->valid || tmpfs_state_take(where, &now) < 0)
                return false;
        if ((a->stx_mask & STATE_MASK) != STATE_MASK || (b->stx_mask & STATE_MASK) != STATE_MASK)
                return false;
        if (a->stx_ino != b->stx_ino || a->stx_dev_major != b->stx_dev_major || a->stx_dev_minor != b->stx_dev_minor ||
            a->stx_mode != b->stx_mode || a->stx_uid != b->stx_uid || a->stx_gid != b->stx_gid ||
            a->stx_nlink != b->stx_nlink || a->stx_size != b->stx_size || a->stx_blocks != b->stx_blocks ||
            a->stx_attributes != b->stx_attributes)
                return false;
        if (!same_time(&a->stx_atime, &b->stx_atime) || !same_time(&a->stx_mtime, &b->stx_mtime) ||
            !same_time(&a->stx_ctime, &b->stx_ctime) || !same_time(&a->stx_btime, &b->stx_btime))
                return false;
        /* (Setting an extended attribute or ACL changes ctime too: the size is a second look.) */
        if (s->flags != now.flags || s->files_used != now.files_used || s->blocks_used != now.blocks_used ||
            s->xattr_size != now.xattr_size)
                return false;
        /* The take above probed again: exactly one inode since the last probe, its own. */
        if (now.probe_ino != s->probe_ino + 1)
                return false;
        s->probe_ino = now.probe_ino;
        return true;
}
