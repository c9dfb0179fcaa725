/* SPDX-License-Identifier: ISC */
/*
 * forward_auth.h: /.auth/verify, for a front proxy (nginx auth_request,
 * Traefik ForwardAuth, Envoy ext_authz over HTTP) that asks "may this
 * request through, and who is it?" without sending the body.
 */
#ifndef GATEHOUSE_FORWARD_AUTH_H
#define GATEHOUSE_FORWARD_AUTH_H

struct request_ctx;

/*
 * Answer for the request named by X-Forwarded-Method, X-Forwarded-Uri (or
 * X-Original-URI) and X-Forwarded-Host, believed only from
 * trusted_proxies: 200 with the identity headers, 401 with X-Auth-Redirect
 * (the sign-in URL) when not signed in, 403 when a route denies.
 * Worker thread; sends the reply now or later.
 */
void forward_auth_verify(struct request_ctx *rq);

/* The 200 of a verified request: identity headers as response headers. */
void forward_auth_reply(struct request_ctx *rq, int status);

#endif
