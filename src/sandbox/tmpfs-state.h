/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* What a freshly mounted, empty tmpfs looks like (its root directory's metadata and its usage),
 * so that a clean can tell a mount no run touched from one it did, and mount afresh only the
 * latter: each unmount waits for an expedited RCU grace period, which interrupts every CPU. */
typedef struct TmpfsState {
        struct statx root;
        unsigned flags;         /* FS_IOC_GETFLAGS: chattr +A/+d are the owner's to set */
        ssize_t xattr_size;     /* of the list of names: setting one is another way in */
        uint64_t files_used, blocks_used;
        uint64_t probe_ino;     /* the inode number the last probe got (see below) */
        bool valid;
} TmpfsState;

/* Whether this kernel's tmpfs proves every change after a stat: with multigrain timestamps
 * (Linux 6.13) a change made after tmpfs_state_take() always gets a newer ctime, even within
 * the same clock tick; before, a file made and removed in that tick would leave no trace while
 * the inode counter (which the next tenant sees) moved on. */
bool tmpfs_state_reliable(const char *release);

/* Records the state of the tmpfs mounted at where (an absolute path, not followed if a link),
 * and probes its inode counter: an O_TMPFILE file made and closed at once, which gets the next
 * inode number without touching the directory. */
int tmpfs_state_take(const char *where, TmpfsState *ret);

/* True only when the tmpfs at where is exactly as tmpfs_state_take() saw it: same root inode
 * and mode, owner, links, size, times (access, change, modification, birth), attributes and
 * flags, extended attributes and the same inodes and blocks in use, and no inode made since
 * the last probe — a new probe gets the very next number. (An O_TMPFILE file leaves no other
 * trace once closed, but moves the counter the next user's first file would show.) Any doubt
 * is "touched". Untouched, s holds the new probe's number for the next check. */
bool tmpfs_state_untouched(const char *where, TmpfsState *s);
