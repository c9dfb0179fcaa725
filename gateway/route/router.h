/* SPDX-License-Identifier: ISC */
/*
 * router.h: where each request goes.  /.auth/... goes to gatehouse's own
 * endpoints, everything else down the proxy pipeline.
 */
#ifndef GATEHOUSE_ROUTER_H
#define GATEHOUSE_ROUTER_H

#include <stddef.h>

#include "core/config.h"
#include "policy.h"

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module router_config_module;

struct request_ctx;

/*
 * Match rq (rq_method, rq_normpath) against the worker's route table and
 * act on the route: proxy, challenge, check a bearer token, or deny; in
 * forward-auth mode (rq_verify) answer the verdict instead of proxying.
 * Sends the reply (now or later); rq is not to be touched afterwards.
 */
void router_route(struct request_ctx *rq);

/* Normalise a request target into rq_normpath and rq_path; 0, or -1 when a
 * 400 has been sent. */
int router_normalise(struct request_ctx *rq, const char *uri);

/* 403 naming the route (or none). */
void router_deny(struct request_ctx *rq, const struct policy_route *route);

/* Identity (and token) headers for rq's session, then allow. */
void router_forward_identity(struct request_ctx *rq);

/*
 * A new request (from request_start): the parser's refusals, the limits,
 * then gatehouse's endpoints or the route table.  Sends the reply (now or
 * later); rq is not to be touched afterwards.  Worker thread.
 */
void router_request(struct request_ctx *rq);

/*
 * The decisions router_request makes on the request's data (router.c uses
 * them; unit tests drive them directly).
 */

/* gatehouse's own endpoints, under auth_prefix. */
enum router_endpoint {
	ROUTER_EP_NONE, /* no such endpoint: 404 */
	ROUTER_EP_HEALTHZ,
	ROUTER_EP_READYZ,
	ROUTER_EP_LOGIN,
	ROUTER_EP_LOGOUT,
	ROUTER_EP_LOGOUT_COMPLETE, /* the signed-out page */
	ROUTER_EP_CALLBACK,
	ROUTER_EP_ME,
	ROUTER_EP_REFRESH,
	ROUTER_EP_VERIFY,
	ROUTER_EP_FRONTCHANNEL_LOGOUT,
	ROUTER_EP_BACKCHANNEL_LOGOUT,
};

/* The path of endpoint ep under auth_prefix ("/login"; borrowed, static),
 * or NULL for ROUTER_EP_NONE and numbers past the last endpoint. */
const char *router_endpoint_name(enum router_endpoint ep);

/* The part of path after auth_prefix (borrowed, query included) when the
 * path is the prefix itself or under it; NULL when it is not (a path that
 * only starts with the same letters, such as /.authx, is not). */
const char *router_auth_sub(const char *path, const char *prefix);

/* The endpoint that sub (router_auth_sub's answer) names; its query is
 * ignored, the name must match whole. */
enum router_endpoint router_endpoint_find(const char *sub);

/* What is done with a request that matched route (NULL: the table has no
 * route lines): the route's action, or without routes, sign-in when a
 * provider is configured and anyone may pass when not. */
enum policy_action router_action(
    const struct config *cfg, const struct policy_route *route);

/* The page for a refusal of the parser or the method rule: its status
 * (an unknown status is answered as 400), code, message, and whether the
 * connection closes after it. */
struct router_refusal {
	int rr_status;
	const char *rr_code;
	const char *rr_message;
	int rr_close;
};
const struct router_refusal *router_refusal_find(int status);

#endif
