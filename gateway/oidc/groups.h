/* SPDX-License-Identifier: ISC */
/*
 * groups.h: Entra's group overage.  When a user is in too many groups the
 * ID token carries a reference (_claim_names) instead of "groups"; a
 * group: criterion must not then silently fail.  With groups_overage =
 * graph the ids are read from Microsoft Graph with the session's token and
 * kept in the session; otherwise the route denies with a log line.
 */
#ifndef GATEHOUSE_GROUPS_H
#define GATEHOUSE_GROUPS_H

#include <stddef.h>

#include "core/config.h"
#include "http/request.h"

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module groups_config_module;

#define GROUPS_OVERAGE_OFF 0
#define GROUPS_OVERAGE_GRAPH 1

/*
 * Fetch the signed-in user's group ids from Graph
 * (POST {graph_endpoint}/me/getMemberGroups) with the session's access
 * token, store them in the session's claims, and call resume(rq).
 * STEP_AGAIN when the call is under way; STEP_DECLINED when it cannot be
 * made (no token, off): the caller denies.  Worker thread.
 */
enum step groups_fetch(
    struct request_ctx *rq, void (*resume)(struct request_ctx *rq));

#endif
