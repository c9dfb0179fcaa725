/* SPDX-License-Identifier: ISC */
/*
 * router.h: the evhttp generic callback.  /.auth/... goes to gatehouse's
 * own endpoints, everything else down the proxy pipeline.
 */
#ifndef GATEHOUSE_ROUTER_H
#define GATEHOUSE_ROUTER_H

#include <stddef.h>

#include <event2/http.h>

#include "config.h"

struct evhttp_request;

extern const struct config_key router_keys[];
extern const size_t router_nkeys;

int router_config_check(
    struct config *cfg, config_report_fn *report, void *arg);

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

/* The name of an evhttp method, or NULL. */
const char *router_method_name(enum evhttp_cmd_type cmd);

/* The evhttp gencb; arg is the struct worker.  Worker thread. */
void router_request_cb(struct evhttp_request *req, void *arg);

#endif
