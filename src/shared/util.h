/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "shared/macro.h"

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}
static inline bool isempty(const char *s) {
        return !s || !*s;
}
const char *startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);

/* A growable byte buffer with a hard cap. */
typedef struct Buffer {
        char *data;
        size_t size;
        size_t allocated;
} Buffer;

int buffer_append(Buffer *b, const void *p, size_t n);
int buffer_printf(Buffer *b, const char *fmt, ...) _printf_(2, 3);
void buffer_done(Buffer *b);
char *buffer_steal_string(Buffer *b); /* NUL-terminated, leaves buffer empty */

int safe_atou64(const char *s, uint64_t *ret);
int parse_port(const char *s, uint16_t *ret);

int read_full_file(const char *path, char **ret, size_t max, size_t *ret_size);
int write_string_file(const char *path, const char *s);
int write_string_file_at(int dirfd, const char *path, const char *s);
int read_one_line_file_at(int dirfd, const char *path, char **ret);
int fd_nonblock(int fd, bool nonblock);
int fd_cloexec(int fd, bool cloexec);
int loop_write(int fd, const void *buf, size_t n);
int mkdir_p(const char *path, mode_t mode);

char *strv_join(char **l, const char *sep);
void strv_free(char **l);
static inline char **strv_free_ret(char **l) {
        strv_free(l);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free_ret);
#define _cleanup_strv_free_ _cleanup_(strv_free_retp)
size_t strv_length(char * const *l);
int strv_push(char ***l, char *value); /* takes value */
bool strv_contains(char * const *l, const char *s);
/* Where a program of isol8's own is: next to the running executable (a build tree, or the
 * libexec directory itself), else in the libexec directory it was built for. */
int own_program_path(const char *name, char **ret);
/* A refusal's message for the client: formats into *ret_error (NULL if out of memory) and
 * returns -EINVAL, so that "return errorf(ret_error, ...);" ends a parser. */
int errorf(char **ret_error, const char *fmt, ...) _printf_(2, 3);

/* Parses leading decimal digits, stopping at the first non-digit. */
int safe_atou64_prefix(const char *s, uint64_t *ret);

#include <dirent.h>
static inline void closedirp_helper(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Replaces invalid UTF-8 sequences with U+FFFD so the text can be embedded in JSON. */
char *utf8_sanitize(const char *s, size_t len, size_t *ret_len);
/* Replaces every occurrence of each needle with "***". */
