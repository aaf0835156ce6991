/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>

#include "core/request.h"

/* Parses the envelope {"request":{...},"options":{...},"sessionId":...}. On a client error
 * returns -EINVAL with a message for the 400 in *ret_error. */
int api_request_parse(json_object *envelope, const SpecPolicy *policy, ExecRequest **ret, char **ret_error);
