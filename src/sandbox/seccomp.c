/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/seccomp.h"
#include "shared/log.h"
#include "shared/util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

/* Calls a sandboxed program never needs and that widen the kernel's attack surface. This holds
 * the original's deny list and adds io_uring, the new mount API, and more. */
static const char *const deny_eperm[] = {
        "acct", "add_key", "bpf", "chroot", "clock_adjtime", "clock_settime", "create_module",
        "delete_module", "fanotify_init", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
        "get_kernel_syms", "get_mempolicy", "init_module", "io_uring_enter", "io_uring_register",
        "io_uring_setup", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
        "lookup_dcookie", "mbind", "migrate_pages", "mount", "mount_setattr", "move_mount",
        "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
        "perf_event_open", "pivot_root", "process_madvise", "process_vm_readv", "process_vm_writev",
        "ptrace", "query_module", "quotactl", "quotactl_fd", "reboot", "request_key",
        "set_mempolicy", "setdomainname", "sethostname", "setns", "settimeofday", "stime",
        "swapoff", "swapon", "sysfs", "_sysctl", "syslog", "umount", "umount2", "unshare",
        "uselib", "userfaultfd", "ustat", "vhangup", "vm86", "vm86old", "pidfd_getfd",
        "fanotify_mark", "kexec_file_load", "memfd_secret", "landlock_create_ruleset",
        "lsm_set_self_attr", "map_shadow_stack",
        /* inotify on the host's /usr bind would show which files other tenants' runs open; the
         * filter cannot tell a path inside the sandbox's own tmpfs apart, so no watches at all. */
        "inotify_init", "inotify_init1", "inotify_add_watch",
};

/* Calls refused (EPERM) when one argument's bits match: (argument & mask) == value. */
static const struct {
        const char *name;
        unsigned arg;
        uint64_t mask, value;
} deny_masked[] = {
        /* new namespaces through clone() */
        { "clone", 0, CLONE_NEWNS, CLONE_NEWNS },
        { "clone", 0, CLONE_NEWUSER, CLONE_NEWUSER },
        { "clone", 0, CLONE_NEWPID, CLONE_NEWPID },
        { "clone", 0, CLONE_NEWNET, CLONE_NEWNET },
        { "clone", 0, CLONE_NEWIPC, CLONE_NEWIPC },
        { "clone", 0, CLONE_NEWUTS, CLONE_NEWUTS },
        { "clone", 0, CLONE_NEWCGROUP, CLONE_NEWCGROUP },
        { "clone", 0, CLONE_NEWTIME, CLONE_NEWTIME },
        /* raw and packet-style sockets on the IP families */
        { "socket", 1, 0xf, SOCK_RAW },
        { "socket", 1, 0xf, SOCK_PACKET },
        /* RLIMIT_CORE stays 1 (sandbox/init.c says why): setrlimit() cannot lower it (prlimit64()
         * below). The resource is an unsigned int: the upper half of the register does not count. */
        { "setrlimit", 0, 0xffffffffu, RLIMIT_CORE },
        /* Huge pages come from the host's pool (pages reserved for a database, or with
         * overcommit_hugepages plain memory), which cgroup v1, and v2 without the
         * memory_hugetlb_accounting mount option, does not charge to the sandbox's memory limit;
         * anonymous MAP_HUGETLB and MFD_HUGETLB ask no permission at all. Refused, so a program
         * falls back to ordinary pages as it does on a host without a pool. */
        { "mmap", 3, MAP_HUGETLB, MAP_HUGETLB },
        { "memfd_create", 1, MFD_HUGETLB, MFD_HUGETLB },
        { "shmget", 2, SHM_HUGETLB, SHM_HUGETLB },
        /* terminal injection */
        { "ioctl", 1, 0xffffffffu, TIOCSTI },
        { "ioctl", 1, 0xffffffffu, TIOCLINUX },
};

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                    const struct scmp_arg_cmp *args) {
        int nr = seccomp_syscall_resolve_name(name);
        int r;

        if (nr == __NR_SCMP_ERROR)
                return 0; /* unknown to this libseccomp / architecture: nothing to filter */
        r = seccomp_rule_add_array(ctx, action, nr, n, args);
        if (r < 0 && r != -EEXIST)
                return log_error_errno(r, "seccomp: cannot add rule for %s: %m", name);
        return 0;
}

int seccomp_program_build(SeccompProgram *ret) {
        scmp_filter_ctx ctx;
        static const int allowed_families[] = { AF_UNIX, AF_INET, AF_INET6 };
        char *buf = NULL;
        size_t size = 0;
        int r;

        /* Foreign ABIs (i386 via int 0x80, x32) are not in the filter and kill the process. */
        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                goto finish;
        /* A binary tree on the syscall number instead of a linear list: fewer instructions run
         * per syscall, and per syscall number when the kernel builds its cache at load. */
        (void) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

        for (size_t i = 0; i < ELEMENTSOF(deny_eperm); i++) {
                r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), deny_eperm[i], 0, NULL);
                if (r < 0)
                        goto finish;
        }

        /* clone3 hides its flags in memory: make libc fall back to clone(), whose flags are
         * checked (deny_masked). */
        r = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
        if (r < 0)
                goto finish;

        /* Linux AIO contexts count against fs.aio-max-nr, one number for the whole host that no
         * cgroup bounds: a program could take all of it from the host's databases (InnoDB asks
         * for its contexts at start). ENOSYS, as on a kernel without AIO, so that libaio users
         * fall back to threads. */
        r = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "io_setup", 0, NULL);
        if (r < 0)
                goto finish;

        /* Only unix and IP sockets; no netlink, packet, vsock, bluetooth, ... */
        {
                /* socket(domain): every family above the highest allowed one with a single
                 * comparison, and each gap below it with one. A short program loads faster
                 * (the kernel emulates it for every syscall number to build its cache). */
                int top = 0;
                for (size_t i = 0; i < ELEMENTSOF(allowed_families); i++)
                        top = MAX(top, allowed_families[i]);
                for (int fam = 0; fam < top; fam++) {
                        bool ok = false;
                        struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, (uint64_t) fam);
                        for (size_t i = 0; i < ELEMENTSOF(allowed_families); i++)
                                if (allowed_families[i] == fam)
                                        ok = true;
                        if (ok)
                                continue;
                        r = add_rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &a);
                        if (r < 0)
                                goto finish;
                }
                struct scmp_arg_cmp big = SCMP_A0(SCMP_CMP_GT, (uint64_t) top);
                r = add_rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &big);
                if (r < 0)
                        goto finish;
        }

        for (size_t i = 0; i < ELEMENTSOF(deny_masked); i++) {
                struct scmp_arg_cmp a = { .arg = deny_masked[i].arg, .op = SCMP_CMP_MASKED_EQ,
                                          .datum_a = deny_masked[i].mask, .datum_b = deny_masked[i].value };
                r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), deny_masked[i].name, 1, &a);
                if (r < 0)
                        goto finish;
        }

        /* prlimit64() may read RLIMIT_CORE but not set it (setrlimit(): deny_masked). */
        {
                struct scmp_arg_cmp b[] = { SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, RLIMIT_CORE), SCMP_A2(SCMP_CMP_NE, 0) };
                r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "prlimit64", 2, b);
                if (r < 0)
                        goto finish;
        }

        {
                _cleanup_close_ int fd = memfd_create("isol8-seccomp", MFD_CLOEXEC);
                off_t len;

                if (fd < 0) {
                        r = -errno;
                        goto finish;
                }
                r = seccomp_export_bpf(ctx, fd);
                if (r < 0)
                        goto finish;
                len = lseek(fd, 0, SEEK_END);
                buf = len > 0 ? malloc((size_t) len) : NULL;
                if (!buf || pread(fd, buf, (size_t) len, 0) != len) {
                        r = -EIO;
                        goto finish;
                }
                size = (size_t) len;
        }
        ret->prog.len = (unsigned short) (size / sizeof(struct sock_filter));
        ret->prog.filter = (struct sock_filter *) TAKE_PTR(buf);
        r = 0;
finish:
        free(buf);
        seccomp_release(ctx);
        return r;
}

void seccomp_program_done(SeccompProgram *p) {
        free(p->prog.filter);
        p->prog.filter = NULL;
        p->prog.len = 0;
}
