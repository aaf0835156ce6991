/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/util.h"

static int log_max_level = LOG_INFO;
static int log_on_tty = -1;

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_internal(int level, int error, const char *fmt, ...) {
        int saved = errno;
        if (error < 0)
                error = -error;
        if (level <= log_max_level) {
                char buf[2048];
                va_list ap;

                errno = error;
                va_start(ap, fmt);
                vsnprintf(buf, sizeof(buf), fmt, ap);
                va_end(ap);
                /* "<N>" tells journald the priority; a person at a terminal has no use for it. */
                if (log_on_tty < 0)
                        log_on_tty = isatty(STDERR_FILENO);
                if (log_on_tty)
                        fprintf(stderr, "%s\n", buf);
                else
                        fprintf(stderr, "<%d>%s\n", level, buf);
        }
        errno = saved;
        return -error;
}

const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int buffer_append(Buffer *b, const void *p, size_t n) {
        if (n == 0)
                return 0;
        if (b->size + n + 1 > b->allocated) {
                size_t want = MAX(b->allocated * 2, b->size + n + 1);
                char *d = realloc(b->data, MAX(want, (size_t) 64));
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->allocated = MAX(want, (size_t) 64);
        }
        memcpy(b->data + b->size, p, n);
        b->size += n;
        b->data[b->size] = 0;
        return 0;
}

int buffer_printf(Buffer *b, const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return buffer_append(b, s, (size_t) n);
}

void buffer_done(Buffer *b) {
        free(b->data);
        *b = (Buffer) {};
}

char *buffer_steal_string(Buffer *b) {
        char *s = b->data ?: strdup("");
        *b = (Buffer) {};
        return s;
}

int safe_atou64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (isempty(s) || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno)
                return -errno;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_port(const char *s, uint16_t *ret) {
        uint64_t v = 0;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > 65535)
                return -ERANGE;
        *ret = (uint16_t) v;
        return 0;
}

int read_full_file(const char *path, char **ret, size_t max, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        Buffer b = {};
        char tmp[16384];

        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n = read(fd, tmp, sizeof(tmp));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        buffer_done(&b);
                        return -errno;
                }
                if (n == 0)
                        break;
                if (b.size + (size_t) n > max) {
                        buffer_done(&b);
                        return -EFBIG;
                }
                if (buffer_append(&b, tmp, n) < 0) {
                        buffer_done(&b);
                        return -ENOMEM;
                }
        }
        if (ret_size)
                *ret_size = b.size;
        *ret = buffer_steal_string(&b);
        return *ret ? 0 : -ENOMEM;
}

int write_string_file_at(int dirfd, const char *path, const char *s) {
        _cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        return loop_write(fd, s, strlen(s));
}

int write_string_file(const char *path, const char *s) {
        return write_string_file_at(AT_FDCWD, path, s);
}

int read_one_line_file_at(int dirfd, const char *path, char **ret) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char buf[4096];
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int fd_nonblock(int fd, bool nonblock) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        flags = nonblock ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        return RET_NERRNO(fcntl(fd, F_SETFL, flags));
}

int fd_cloexec(int fd, bool cloexec) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
                return -errno;
        flags = cloexec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        return RET_NERRNO(fcntl(fd, F_SETFD, flags));
}

int loop_write(int fd, const void *buf, size_t n) {
        const char *p = buf;
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

size_t strv_length(char * const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

void strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
}

int strv_push(char ***l, char *value) {
        size_t n = strv_length(*l);
        char **c;

        if (!value)
                return -ENOMEM;
        c = realloc(*l, sizeof(char *) * (n + 2));
        if (!c) {
                free(value);
                return -ENOMEM;
        }
        c[n] = value;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

char *strv_join(char **l, const char *sep) {
        Buffer b = {};
        for (char **i = l; i && *i; i++) {
                if (i != l && buffer_append(&b, sep, strlen(sep)) < 0)
                        goto fail;
                if (buffer_append(&b, *i, strlen(*i)) < 0)
                        goto fail;
        }
        return buffer_steal_string(&b);
fail:
        buffer_done(&b);
        return NULL;
}

int safe_atou64_prefix(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        const char *p = s;
        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        *ret = v;
        return 0;
}

static size_t utf8_valid_len(const unsigned char *s, size_t n) {
        unsigned char c = s[0];
        size_t need;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                need = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                need = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                need = 4, cp = c & 0x07;
        else
                return 0;
        if (n < need)
                return 0;
        for (size_t i = 1; i < need; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return need;
}

char *utf8_sanitize(const char *s, size_t len, size_t *ret_len) {
        Buffer b = {};
        size_t i = 0;

        while (i < len) {
                size_t k = utf8_valid_len((const unsigned char *) s + i, len - i);
                int r;
                if (k == 0) {
                        r = buffer_append(&b, "\xef\xbf\xbd", 3);
                        k = 1;
                } else if (k == 1 && s[i] == 0)
                        r = buffer_append(&b, "\xef\xbf\xbd", 3); /* NUL cannot travel in our strings */
                else
                        r = buffer_append(&b, s + i, k);
                if (r < 0) {
                        buffer_done(&b);
                        return NULL;
                }
                i += k;
        }
        if (ret_len)
                *ret_len = b.size;
        return buffer_steal_string(&b);
}


bool strv_contains(char * const *l, const char *s) {
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

int errorf(char **ret_error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return -EINVAL;
}

int own_program_path(const char *name, char **ret) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash, *p = NULL;

        if (n > 0) {
                self[n] = 0;
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        if (asprintf(&p, "%s/%s", self, name) < 0)
                                return -ENOMEM;
                        if (access(p, X_OK) >= 0) {
                                *ret = p;
                                return 0;
                        }
                        free(p);
                }
        }
        if (asprintf(&p, "%s/%s", ISOL8_LIBEXECDIR, name) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}
