/* SPDX-License-Identifier: MIT */
#pragma once

#include <systemd/sd-event.h>

#include "audit/audit.h"

/* Authentication failures, audited without letting a flood of them flood the journal: the
 * first AUTH_FAILURES_PER_SEC of each second are records of their own (the path cut to 256
 * bytes); the rest are counted per remote address and summed up once a second ("412 failures
 * from 127.0.0.1 in the last second"). */
#define AUTH_FAILURES_PER_SEC 10
#define AUTH_FAILURE_PATH_MAX 256

typedef struct FailureLimit FailureLimit;

int failure_limit_new(FailureLimit **ret, sd_event *event, Audit *audit);
FailureLimit *failure_limit_free(FailureLimit *f);
void failure_limit_record(FailureLimit *f, const char *remote, const char *reason, const char *method, const char *path);
