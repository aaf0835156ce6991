/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* File transfer into and out of a sandbox from the host side. root_fd is the sandbox's root
 * (sandbox_open_root()); paths are normalised sandbox paths ("/sandbox/a/b"). Resolution never
 * leaves the directory (/sandbox or /tmp): symlinks pointing out, magic links and mount
 * crossings are refused with -EXDEV/-ELOOP; anything but a regular file, and a file with more
 * than one hard link, is -EPERM. Access is
 * checked as for the sandbox user (uid/gid: its host ids). */

int sandbox_write_file(int root_fd, const char *path, const void *data, size_t size, uid_t uid, gid_t gid, mode_t mode);
int sandbox_read_file(int root_fd, const char *path, size_t max, uid_t uid, gid_t gid, void **ret, size_t *ret_size);
int sandbox_mkdir_p(int root_fd, const char *path, uid_t uid, gid_t gid);

/* openat2() is used while it works; on ENOSYS (systemd's RestrictSUIDSGID= filter, old kernels)
 * the same rules are kept by a component-by-component openat(O_NOFOLLOW) walk. Tests force
 * either way with this. */
void fsio_use_openat2(bool use);
