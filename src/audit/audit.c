/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

/* Where sd_journal_sendv() sends (a fixed path of systemd's). */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

struct Audit {
        AuditConfig config;
        char *log_dir;
        int fd;                 /* file destination: today's file */
        char day[16];
};

int audit_new(Audit **ret, const AuditConfig *config) {
        Audit *a = calloc(1, sizeof(Audit));
        int r;

        if (!a)
                return -ENOMEM;
        a->config = *config;
        a->fd = -EBADF;
        if (config->enabled && config->destination == AUDIT_JOURNAL && access(JOURNAL_SOCKET, F_OK) < 0)
                /* sd_journal_sendv() drops what it cannot send there without a word. */
                log_warning_errno(errno, "audit: no journald here (%s: %m): the audit records are lost; "
                                  "set audit.destination to \"file\" or \"stdout\"", JOURNAL_SOCKET);
        if (config->enabled && config->destination == AUDIT_FILE) {
                a->log_dir = strdup(config->log_dir ?: "/var/log/isol8");
                if (!a->log_dir) {
                        free(a);
                        return -ENOMEM;
                }
                r = mkdir_p(a->log_dir, 0750);
                if (r < 0) {
                        log_error_errno(r, "audit: cannot create %s: %m", a->log_dir);
                        audit_free(a);
                        return r;
                }
        }
        *ret = a;
        return 0;
}

Audit *audit_free(Audit *a) {
        if (!a)
                return NULL;
        safe_close(a->fd);
        free(a->log_dir);
        free(a);
        return NULL;
}

bool audit_include_code(Audit *a) {
        return a && a->config.include_code;
}

bool audit_include_output(Audit *a) {
        return a && a->config.include_output;
}

static void prune_old_files(Audit *a) {
        _cleanup_(closedirp_helper) DIR *d = opendir(a->log_dir);
        time_t cutoff = time(NULL) - (time_t) a->config.retention_days * 86400;
        struct dirent *de;

        if (!d || a->config.retention_days == 0)
                return;
        while ((de = readdir(d))) {
                struct stat st;
                if (!startswith(de->d_name, "audit-") || !endswith(de->d_name, ".jsonl"))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) >= 0 && st.st_mtime < cutoff)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
}

/* One file a day (audit-YYYY-MM-DD.jsonl); files older than retentionDays are removed. */
static int file_fd(Audit *a) {
        char day[16], path[4096];
        time_t t = time(NULL);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(day, sizeof(day), "%Y-%m-%d", &tm);
        if (a->fd >= 0 && streq(day, a->day))
                return a->fd;
        a->fd = safe_close(a->fd);
        snprintf(path, sizeof(path), "%s/audit-%s.jsonl", a->log_dir, day);
        a->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (a->fd < 0)
                return -errno;
        memcpy(a->day, day, sizeof(day));
        prune_old_files(a);
        return a->fd;
}

void audit_emit(Audit *a, const char *message_id, int priority, const char *event, const char *message,
                const AuditField *fields, size_t n_fields) {
        if (!a || !a->config.enabled)
                return;

        if (a->config.destination == AUDIT_JOURNAL) {
                struct iovec iov[64];
                char *bufs[64];
                size_t n = 0, nb = 0;
                char prio[16];

                snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
#define ADD_STATIC(s) (iov[n++] = (struct iovec) { (void *) (s), strlen(s) })
                ADD_STATIC(prio);
                ADD_STATIC("SYSLOG_IDENTIFIER=isol8");
                if (asprintf(&bufs[nb], "MESSAGE_ID=%s", message_id) >= 0) {
                        iov[n++] = (struct iovec) { bufs[nb], strlen(bufs[nb]) };
                        nb++;
                }
                if (asprintf(&bufs[nb], "MESSAGE=%s", message) >= 0) {
                        iov[n++] = (struct iovec) { bufs[nb], strlen(bufs[nb]) };
                        nb++;
                }
                if (asprintf(&bufs[nb], "ISOL8_EVENT=%s", event) >= 0) {
                        iov[n++] = (struct iovec) { bufs[nb], strlen(bufs[nb]) };
                        nb++;
                }
                for (size_t i = 0; i < n_fields && n < ELEMENTSOF(iov) && nb < ELEMENTSOF(bufs); i++) {
                        if (!fields[i].value)
                                continue;
                        /* "NAME=value" as one field; sd_journal_sendv sends values with newlines
                         * in the binary-safe form, so the value can never start a new field. */
                        if (asprintf(&bufs[nb], "%s=%s", fields[i].name, fields[i].value) < 0)
                                continue;
                        iov[n++] = (struct iovec) { bufs[nb], strlen(bufs[nb]) };
                        nb++;
                }
#undef ADD_STATIC
                int r = sd_journal_sendv(iov, (int) n);
                if (r < 0)
                        log_warning_errno(r, "audit: cannot write to the journal: %m");
                for (size_t i = 0; i < nb; i++)
                        free(bufs[i]);
                return;
        }

        {
                json_object *o = json_object_new_object();
                char ts[64];
                const char *line;
                size_t len;
                int fd;

                if (!o)
                        return;
                json_add(o, "timestamp", json_object_new_string(format_iso8601(now_usec(CLOCK_REALTIME), ts)));
                json_add(o, "event", json_object_new_string(event));
                json_add(o, "messageId", json_object_new_string(message_id));
                json_add(o, "message", json_object_new_string(message));
                for (size_t i = 0; i < n_fields; i++)
                        if (fields[i].value)
                                json_add(o, fields[i].name, json_object_new_string(fields[i].value));
                line = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
                fd = a->config.destination == AUDIT_STDOUT ? STDOUT_FILENO : file_fd(a);
                if (line && fd >= 0) {
                        struct iovec v[2] = { { (void *) line, len }, { (void *) "\n", 1 } };
                        if (writev(fd, v, 2) < 0)
                                log_warning_errno(errno, "audit: cannot write the audit record: %m");
                }
                json_object_put(o);
        }
}
