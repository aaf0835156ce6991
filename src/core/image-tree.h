/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* The file trees of runtime images on the host: taken out of a build's sandbox, and removed.
 * Both run in a child process of the daemon (core/images.c), never on the event loop. */

typedef struct ImageTreeStats {
        uint64_t bytes;
        uint64_t files;
} ImageTreeStats;

/* Copies the directory src (a name below src_dirfd, as the sandbox user uid/gid may read it:
 * the file-system ids are that user's while reading) to a new directory dst below dst_dirfd,
 * as root. Nothing is followed: directories are entered with O_NOFOLLOW and only on the same
 * file system, symbolic links are copied as links, regular files as new files owned by root
 * with their mode narrowed to 0755/0644 (no set-id, no write but the owner's), anything else is
 * left out. More than max_bytes or max_files is -EFBIG; deeper than 64 levels, -ELOOP. */
int image_tree_copy(int src_dirfd, const char *src, int dst_dirfd, const char *dst, uid_t uid, gid_t gid,
                    uint64_t max_bytes, uint64_t max_files, ImageTreeStats *ret);

/* Removes the tree at name below dirfd, without following links. */
int image_tree_remove(int dirfd, const char *name);
