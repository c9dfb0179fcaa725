/* SPDX-License-Identifier: ISC */
/*
 * router.h: where each request goes.  /.auth/... goes to gatehouse's own
 * endpoints, everything else down the proxy pipeline.
 */
#ifndef GATEHOUSE_ROUTER_H
#define GATEHOUSE_ROUTER_H

#include <stddef.h>

#include "core/config.h"

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module router_config_module;

struct request_ctx;
struct policy_route;

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

#endif
