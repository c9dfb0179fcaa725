/* SPDX-License-Identifier: ISC */
/*
 * forward_auth.h: /.auth/verify, for a front proxy (nginx auth_request,
 * Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz over HTTP) that
 * asks "may this request through, and who is it?" without sending the
 * body.
 */
#ifndef GATEHOUSE_FORWARD_AUTH_H
#define GATEHOUSE_FORWARD_AUTH_H

#include <stddef.h>

#include "core/config.h"

struct gh_error;
struct http1_hdr;
struct request_ctx;

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module forward_auth_config_module;

/* The request a front proxy names, as forward-auth judges it. */
struct forward_auth_target {
	const char *ft_method; /* borrowed from the headers or own_method */
	char *ft_normpath;     /* new: the normalised path routes match */
	char *ft_path;         /* new: normalised path and query as sent */
};

/*
 * Read the request named by the header fields hdrs[0..nhdrs) (borrowed)
 * of a verify request whose own method is own_method (borrowed):
 *   - the method: X-Forwarded-Method, or own_method without it; taken as
 *     proxy mode takes a request line's (policy_method_valid), else 400;
 *     CONNECT and TRACE are 405 as in proxy mode;
 *   - the target: X-Forwarded-Uri or X-Original-URI, which must agree
 *     when both are present (400 otherwise: one of them is the client's),
 *     an origin-form "/path?query", normalised by path_target_normalise
 *     (400 when it cannot be);
 *   - any of the three repeated with different values: 400.
 * Pure: no request context, no I/O; any thread.  Returns 0 with t filled
 * (release with forward_auth_target_cleanup), or the status to answer
 * (400, 405, or 500 when out of memory) with err set and t empty.
 */
int forward_auth_target_parse(const struct http1_hdr *hdrs, int nhdrs,
    const char *own_method, struct forward_auth_target *t,
    struct gh_error *err);

/* Free what t owns; t is left empty.  t must not be NULL. */
void forward_auth_target_cleanup(struct forward_auth_target *t);

/*
 * Take up a verify request: when the peer is in both trusted_proxies and
 * forward_auth_peers, put the request named by the headers
 * (forward_auth_target_parse) in rq (rq_method, rq_path, rq_normpath, and
 * rq_verify set) and return 0; the caller then routes it, and the route's
 * outcome is answered as forward-auth answers (forward_auth_reply: 200
 * with the identity headers, the access token too only with
 * forward_auth_tokens; 401 with X-Auth-Redirect when not signed in; 403
 * when a route denies).  Otherwise the answer (403, 400, 405 for CONNECT
 * and TRACE, 500) has been sent and -1 is returned.  The caller routes, so
 * that this module does not call back up into the router.  Worker thread.
 */
int forward_auth_verify(struct request_ctx *rq);

/* The 200 of a verified request: identity headers as response headers. */
void forward_auth_reply(struct request_ctx *rq, int status);

#endif
