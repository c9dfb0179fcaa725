/* SPDX-License-Identifier: ISC */
/*
 * router.c: where each request goes.  Checks the request against the
 * limits, then sends /.auth/... to gatehouse's endpoints (oidc_*.c,
 * endpoints.c, forward_auth.c) and everything else through the route table
 * down the pipeline to the upstream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/errpage.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/groups.h"
#include "oidc/oidc.h"
#include "oidc/token_profile.h"
#include "path.h"
#include "policy.h"
#include "route/bearer.h"
#include "route/easyauth.h"
#include "route/endpoints.h"
#include "route/forward_auth.h"
#include "route/headers.h"
#include "route/proxy.h"
#include "route/router.h"
#include "session/identity.h"
#include "session/session.h"

static void router_allow(struct request_ctx *rq);
static void router_signed_in_continue(struct request_ctx *rq);

/* msal_sample_paths: off, on, or (the default) on when the MSAL sample's
 * .env supplied the configuration. */
#define ROUTER_SAMPLE_AUTO 2

static int
router_parse_sample_paths(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	if (strcmp(value, "auto") == 0) {
		cfg->cf_msal_sample_paths = ROUTER_SAMPLE_AUTO;
		return 0;
	}
	return config_parse_bool(cfg, key, value, line, errstr);
}

static const struct config_key router_keys[] = {
    {"auth_prefix", config_parse_str, offsetof(struct config, cf_auth_prefix),
        "/.auth",
        "Path prefix of gatehouse's own endpoints (login, callback, "
        "logout, me, verify, healthz, readyz).",
        0},
    {"msal_sample_paths", router_parse_sample_paths,
        offsetof(struct config, cf_msal_sample_paths), "auto",
        "on: /login and /logout beside the redirect URI's path (the MSAL "
        "sample's own links) behave as {auth_prefix}/login and "
        "{auth_prefix}/logout; auto: on when the sample's .env supplied "
        "the configuration.",
        0},
};

static int
router_config_check(struct config *cfg, config_report_fn *report, void *arg)
{
	const char *p = cfg->cf_auth_prefix;
	size_t n = strlen(p);

	char *norm = path_normalise_dup(p, 0, NULL);
	int same = norm != NULL && strcmp(norm, p) == 0;

	free(norm);
	/* A prefix that is not in normal form could never match a
	 * normalised request path, or match one it should not. */
	if (!same || p[0] != '/' || n < 2 || p[n - 1] == '/' ||
	    strpbrk(p, " \t?#%;") != NULL) {
		report(arg, 0,
		    "auth_prefix must be a path such as /.auth, without a "
		    "trailing slash");
		return 1;
	}
	return 0;
}

const struct config_module router_config_module = {"router", router_keys,
    sizeof(router_keys) / sizeof(router_keys[0]), router_config_check, NULL};

/* The endpoints by name, in router_endpoint's order. */
static const struct {
	const char *re_name;
	size_t re_len;
	enum router_endpoint re_ep;
} router_endpoints[] = {
    {"/healthz", 8, ROUTER_EP_HEALTHZ},
    {"/readyz", 7, ROUTER_EP_READYZ},
    {"/login", 6, ROUTER_EP_LOGIN},
    /* Easy Auth's sign-in link names its provider; Entra's is "aad". */
    {"/login/aad", 10, ROUTER_EP_LOGIN},
    {"/logout", 7, ROUTER_EP_LOGOUT},
    {"/logout/complete", 16, ROUTER_EP_LOGOUT_COMPLETE},
    {"/callback", 9, ROUTER_EP_CALLBACK},
    {"/me", 3, ROUTER_EP_ME},
    {"/refresh", 8, ROUTER_EP_REFRESH},
    {"/verify", 7, ROUTER_EP_VERIFY},
    {"/frontchannel-logout", 20, ROUTER_EP_FRONTCHANNEL_LOGOUT},
    {"/backchannel-logout", 19, ROUTER_EP_BACKCHANNEL_LOGOUT},
};

enum router_endpoint
router_endpoint_find(const char *sub)
{
	size_t i, n = strcspn(sub, "?");

	for (i = 0; i < sizeof(router_endpoints) / sizeof(router_endpoints[0]);
	     i++)
		if (n == router_endpoints[i].re_len &&
		    strncmp(sub, router_endpoints[i].re_name, n) == 0)
			return router_endpoints[i].re_ep;
	return ROUTER_EP_NONE;
}

const char *
router_endpoint_name(enum router_endpoint ep)
{
	size_t i;

	for (i = 0; i < sizeof(router_endpoints) / sizeof(router_endpoints[0]);
	     i++)
		if (router_endpoints[i].re_ep == ep)
			return router_endpoints[i].re_name;
	return NULL;
}

const char *
router_auth_sub(const char *path, const char *prefix)
{
	size_t plen = strlen(prefix);

	if (strncmp(path, prefix, plen) == 0 &&
	    (path[plen] == '/' || path[plen] == '\0' || path[plen] == '?'))
		return path + plen;
	return NULL;
}

/*
 * The MSAL sample's identity package mounts login and logout beside its
 * redirect URI (REDIRECT_URI .../x/getAToken: /x/login, /x/logout); with
 * msal_sample_paths they are gatehouse's, so an app's links written for
 * the sample keep working.
 */
static enum router_endpoint
router_sample_path(const struct config *cfg, const char *path)
{
	const char *cb = cfg->cf_callback_path, *slash;
	size_t dir;

	if (cb == NULL ||
	    !(cfg->cf_msal_sample_paths == 1 ||
	        (cfg->cf_msal_sample_paths == ROUTER_SAMPLE_AUTO &&
	            cfg->cf_from_dotenv)))
		return ROUTER_EP_NONE;
	slash = strrchr(cb, '/');
	dir = slash != NULL ? (size_t)(slash - cb) : 0;
	if (strncmp(path, cb, dir) != 0)
		return ROUTER_EP_NONE;
	if (strcmp(path + dir, "/login") == 0)
		return ROUTER_EP_LOGIN;
	if (strcmp(path + dir, "/logout") == 0)
		return ROUTER_EP_LOGOUT;
	return ROUTER_EP_NONE;
}

/* /.auth/...: gatehouse's own endpoints.  `sub` is the part after the
 * prefix, query included. */
static void
router_endpoint(struct request_ctx *rq, const char *sub)
{
	rq->rq_event = "endpoint";
	switch (router_endpoint_find(sub)) {
	case ROUTER_EP_HEALTHZ:
		endpoints_healthz(rq);
		break;
	case ROUTER_EP_READYZ:
		endpoints_readyz(rq);
		break;
	case ROUTER_EP_LOGIN:
		oidc_login(rq);
		break;
	case ROUTER_EP_LOGOUT:
		oidc_logout(rq);
		break;
	case ROUTER_EP_LOGOUT_COMPLETE:
		oidc_logout_complete(rq);
		break;
	case ROUTER_EP_CALLBACK:
		oidc_callback(rq);
		break;
	case ROUTER_EP_ME:
		endpoints_me(rq);
		break;
	case ROUTER_EP_FRONTCHANNEL_LOGOUT:
		oidc_frontchannel_logout(rq);
		break;
	case ROUTER_EP_BACKCHANNEL_LOGOUT:
		oidc_backchannel_logout(rq);
		break;
	case ROUTER_EP_REFRESH:
		endpoints_refresh(rq);
		break;
	case ROUTER_EP_VERIFY:
		if (forward_auth_verify(rq) == 0)
			router_route(rq);
		break;
	case ROUTER_EP_NONE:
	default:
		errpage_send(rq, 404, "not_found",
		    "There is no such gatehouse endpoint.", 0);
		break;
	}
}

/* Identity (and, when configured, token) headers, then the upstream.
 * Without token forwarding the session's identity block is sent as it is
 * (headers_upstream_request), with no copy. */
void
router_forward_identity(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	struct session *s = rq->rq_session;

	int opened;

	/* Security: forward-auth's answer goes to whoever may call
	 * /.auth/verify, so the token joins it only when asked for. */
	if (!(cfg->cf_forward_access_token || cfg->cf_forward_id_token) ||
	    (rq->rq_verify && !cfg->cf_forward_auth_tokens)) {
		router_allow(rq);
		return;
	}
	/* Tokens are decrypted only when they are forwarded, and copied
	 * once, into a buffer that request_free cleanses. */
	opened = session_open_tokens(s) == 0;
	rq->rq_upstream_hdrs = identity_tokens(s->se_ident,
	    opened && cfg->cf_forward_access_token ? &s->se_access : NULL,
	    s->se_at_expires, cfg->cf_forward_authorization);
	if (rq->rq_upstream_hdrs != NULL && opened && cfg->cf_forward_id_token)
		(void)easyauth_id_token_add(
		    &rq->rq_upstream_hdrs, &s->se_idtoken);
	if (rq->rq_upstream_hdrs == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	router_allow(rq);
}

/* How often a request waits for its route's profile token: behind other
 * profiles' flights (one per session at a time), then its own. */
#define ROUTER_TOKEN_WAITS 4

static void router_token_resume(struct request_ctx *rq);
static int router_still_signed_in(struct request_ctx *rq);

/* The route forwards profile tp's token (token=NAME) in place of the
 * session's own: Authorization: Bearer and X-MS-TOKEN-AAD-ACCESS-TOKEN,
 * on this route only. */
static void
router_forward_token(struct request_ctx *rq, const struct token_profile *tp)
{
	struct session *s = rq->rq_session;
	const struct session_ptok *t;

	t = session_ptok_get(s, tp->tp_name);
	rq->rq_upstream_hdrs = identity_tokens(s->se_ident,
	    t != NULL ? &t->sp_token : NULL, t != NULL ? t->sp_expires : 0, 1);
	if (rq->rq_upstream_hdrs == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	router_allow(rq);
}

/* The route's profile token: have it (redeemed if need be), then
 * forward; or ask for consent when the provider refused it. */
static void
router_token_continue(struct request_ctx *rq)
{
	const struct token_profile *tp =
	    token_profile_find(rq->rq_cfg, policy_route_token(rq->rq_route));
	const struct session_ptok *t;

	/* Security: forward-auth's answer goes to whoever may call
	 * /.auth/verify, so a token joins it only when asked for; without
	 * forward_auth_tokens there is none to fetch, and no consent to ask
	 * for. */
	if (rq->rq_verify && !rq->rq_cfg->cf_forward_auth_tokens) {
		router_allow(rq);
		return;
	}
	switch (oidc_refresh_token(rq, tp, router_token_resume)) {
	case STEP_AGAIN:
	case STEP_ERROR:
		return;
	case STEP_DECLINED:
		t = session_ptok_get(rq->rq_session, tp->tp_name);
		oidc_token_refused(rq, tp->tp_name,
		    t != NULL && (t->sp_flags & SESSION_PTOK_ASKED));
		return;
	default:
		router_forward_token(rq, tp);
		return;
	}
}

/* After a wait for a flight: the session may have ended, the store may
 * not have answered; else look at the token again, a bounded number of
 * times (the flight may have been another profile's, or failed). */
static void
router_token_resume(struct request_ctx *rq)
{
	if (!router_still_signed_in(rq))
		return;
	if (++rq->rq_token_waits >= ROUTER_TOKEN_WAITS) {
		errpage_send(rq, 502, "token_failed",
		    "An access token this page needs could not be obtained "
		    "from the identity provider. Please try again.",
		    0);
		return;
	}
	router_token_continue(rq);
}

/* Forward a signed-in request: a route with token=NAME sends that
 * profile's token instead of the session's own. */
static void
router_forward_route(struct request_ctx *rq)
{
	if (rq->rq_route != NULL && policy_route_token(rq->rq_route) != NULL) {
		router_token_continue(rq);
		return;
	}
	router_forward_identity(rq);
}

/* After a wait for a refresh: the session may have ended meanwhile, or
 * the store may have failed to say. */
static void
router_signed_in_resume(struct request_ctx *rq)
{
	if (!router_still_signed_in(rq))
		return;
	/* The token matters only when it is forwarded (a revalidation the
	 * provider could not answer keeps the session, token or not). */
	if (rq->rq_cfg->cf_forward_access_token &&
	    rq->rq_session->se_at_expires != 0 &&
	    rq->rq_session->se_at_expires <= time(NULL)) {
		errpage_send(rq, 502, "refresh_failed",
		    "The sign-in could not be renewed with the identity "
		    "provider. Please try again.",
		    0);
		return;
	}
	router_forward_route(rq);
}

/* A route denies: 403 naming the route, never the criteria (so a refusal
 * does not teach what would pass). */
void
router_deny(struct request_ctx *rq, const struct policy_route *route)
{
	struct errpage_page pg = {
	    403, "access_denied", NULL, NULL, NULL, NULL, 0, 0, NULL};
	char msg[256], pat[128];

	rq->rq_event = "deny";
	policy_deny_reason(route,
	    route != NULL && rq->rq_session != NULL &&
	            policy_route_action(route) != POLICY_ACTION_DENY
	        ? session_claims(rq->rq_session)
	        : NULL,
	    NULL, rq->rq_deny, sizeof(rq->rq_deny));
	if (route == NULL) {
		log_info("deny id=%s path=\"%s\" rule=none", rq->rq_id,
		    log_sanitize(pat, sizeof(pat), rq->rq_normpath));
		errpage_send(rq, 403, "access_denied",
		    "No access rule allows this request.", 0);
		return;
	}
	log_info("deny id=%s path=\"%s\" rule=\"%s\" line=%d", rq->rq_id,
	    log_sanitize(msg, sizeof(msg), rq->rq_normpath),
	    log_sanitize(pat, sizeof(pat), policy_route_pattern(route)),
	    policy_route_line(route));
	snprintf(msg, sizeof(msg),
	    "The access rule for %s does not allow this "
	    "request.",
	    policy_route_pattern(route));
	pg.ep_message = msg;
	/* Signed in as someone else than meant: the page offers to sign
	 * out or switch account. */
	if (rq->rq_session != NULL && session_claims(rq->rq_session) != NULL)
		pg.ep_user =
		    identity_display_name(session_claims(rq->rq_session));
	errpage_send_page(rq, &pg);
}

/*
 * Normalise the target (policies/path) into rq_normpath (what routes match)
 * and rq_path (what the upstream receives).  Returns 0, or -1 when a 400
 * (or 500) has been sent.
 */
int
router_normalise(struct request_ctx *rq, const char *uri)
{
	struct gh_error err;

	if (path_target_normalise(uri, &rq->rq_normpath, &rq->rq_path, &err) ==
	    0)
		return 0;
	if (err.ge_code != NULL && strcmp(err.ge_code, "path_nomem") == 0) {
		errpage_send(rq, 500, "internal", "Out of memory.", 1);
		return -1;
	}
	log_info("bad_path id=%s reason=\"%s\"", rq->rq_id, err.ge_msg);
	errpage_send(
	    rq, 400, "bad_path", "The request path cannot be used safely.", 1);
	return -1;
}

/* After groups were read from Graph (or not): evaluate again, with the
 * ids in the session's claims now. */
static void
router_groups_resume(struct request_ctx *rq)
{
	enum policy_verdict v;

	v = policy_eval(rq->rq_route, session_claims(rq->rq_session));
	if (v != POLICY_ALLOW) {
		if (v == POLICY_NEED_GROUPS)
			log_info("deny id=%s reason=\"group overage: the "
			         "groups could not be read from Graph\"",
			    rq->rq_id);
		router_deny(rq, rq->rq_route);
		return;
	}
	router_signed_in_continue(rq);
}

/* After a wait for the store or the provider: 1 when rq still has its
 * session; else 0, answered (a store that could not say is a 503, never
 * "signed out", so no redirect loop to sign-in). */
static int
router_still_signed_in(struct request_ctx *rq)
{
	if (rq->rq_store_failed) {
		oidc_store_unavailable(rq);
		return 0;
	}
	if (rq->rq_session == NULL) {
		oidc_challenge(rq);
		return 0;
	}
	return 1;
}

/* The session is loaded (or not): a route for signed-in users.  A store
 * that could not say is never taken for "signed out": no redirect to
 * sign in (which would only come back here), a 503 instead. */
static void
router_signed_in_loaded(struct request_ctx *rq)
{
	enum policy_verdict v;

	if (!router_still_signed_in(rq))
		return;
	/* "allow authenticated" needs no claims: skip parsing them. */
	v = rq->rq_route == NULL || !policy_route_has_criteria(rq->rq_route)
	    ? POLICY_ALLOW
	    : policy_eval(rq->rq_route, session_claims(rq->rq_session));
	if (v == POLICY_NEED_GROUPS) {
		/* Entra group overage: read the ids from Graph, or deny
		 * saying why; never a silent no. */
		if (groups_fetch(rq, router_groups_resume) == STEP_AGAIN)
			return;
		log_info("deny id=%s reason=\"group overage: the token points "
		         "to its groups instead of listing them; set "
		         "groups_overage = graph to read them\"",
		    rq->rq_id);
		v = POLICY_DENY;
	}
	if (v == POLICY_NEED_LOGIN) {
		oidc_challenge(rq);
		return;
	}
	if (v != POLICY_ALLOW) {
		router_deny(rq, rq->rq_route);
		return;
	}
	router_signed_in_continue(rq);
}

/* The route allows this user: refresh the token if need be, forward. */
static void
router_signed_in_continue(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;

	if (cfg->cf_forward_access_token || cfg->cf_session_revalidate > 0) {
		switch (oidc_refresh_check(rq, router_signed_in_resume)) {
		case STEP_AGAIN:
		case STEP_ERROR:
			return;
		case STEP_DECLINED:
			/* Expired and cannot be refreshed: sign in again. */
			oidc_challenge(rq);
			return;
		default:
			break;
		}
	}
	router_forward_route(rq);
}

/* The request passed its route: to the upstream, or (forward-auth) the
 * verdict back to the front proxy. */
static void
router_allow(struct request_ctx *rq)
{
	if (rq->rq_verify)
		forward_auth_reply(rq, 200);
	else
		(void)proxy_forward(rq);
}

enum policy_action
router_action(const struct config *cfg, const struct policy_route *route)
{
	/* No route lines: everything is proxied, to signed-in users when a
	 * provider is configured, to anyone otherwise. */
	if (route != NULL)
		return policy_route_action(route);
	return oidc_configured(cfg) ? POLICY_ACTION_SIGNED_IN
	                            : POLICY_ACTION_ANONYMOUS;
}

/* Whether a signed-in request on route needs the session's cold part:
 * its claims (criteria to evaluate, and the deny page that names the
 * user) or its tokens (forwarded, a token=NAME profile's, and refreshed).
 * Everything else uses the identity block and the times, which the hot part
 * holds. */
static int
router_needs_cold(const struct config *cfg, const struct policy_route *route)
{
	return cfg->cf_forward_access_token || cfg->cf_forward_id_token ||
	    (route != NULL &&
	        (policy_route_has_criteria(route) ||
	            policy_route_token(route) != NULL));
}

void
router_route(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	const struct policy_table *routes = rq->rq_gen->wg_routes;
	const struct policy_route *route = NULL;

	if (routes != NULL)
		route = policy_match(routes, rq->rq_method, rq->rq_normpath);
	/* Forward-auth keeps its endpoint's label. */
	if (!rq->rq_verify)
		rq->rq_mroute = route != NULL ? policy_route_tag(route)
		    : routes != NULL          ? METRICS_ROUTE_UNMATCHED
		                              : METRICS_ROUTE_DEFAULT;
	if (routes != NULL && route == NULL) {
		router_deny(rq, NULL);
		return;
	}
	rq->rq_route = route;
	rq->rq_route_line = route != NULL ? policy_route_line(route) : 0;
	switch (router_action(cfg, route)) {
	case POLICY_ACTION_ANONYMOUS:
		/* Security: a public page may greet a signed-in user (as Easy
		 * Auth does with "allow unauthenticated requests"), so a valid
		 * session's identity goes along; nothing more: no refresh, no
		 * token, no redirect, and a bad cookie (or a session store
		 * that cannot answer) is just no identity.  The client's own
		 * identity headers are dropped either way. */
		if (route != NULL && policy_route_identity(route))
			oidc_session_load_hot(rq, router_allow);
		else
			router_allow(rq);
		return;
	case POLICY_ACTION_SIGNED_IN:
		if (router_needs_cold(cfg, route))
			oidc_session_load(rq, router_signed_in_loaded);
		else
			oidc_session_load_hot(rq, router_signed_in_loaded);
		return;
	case POLICY_ACTION_BEARER:
		bearer_check(rq);
		return;
	case POLICY_ACTION_DENY:
	default:
		router_deny(rq, route);
		return;
	}
}

/* The parser's refusals, each with its page; the last row is the
 * default.  Only 405 keeps the connection: its head was read whole and
 * nothing of a body is left unread. */
static const struct router_refusal router_refusals[] = {
    {405, "method_not_allowed", "This method is not allowed.", 0},
    {413, "body_too_large",
        "The request body is larger than this gateway accepts.", 1},
    {414, "uri_too_long",
        "The request URI is longer than this gateway accepts.", 1},
    {417, "expectation_failed",
        "Only the 100-continue expectation is supported.", 1},
    {431, "headers_too_large",
        "The request headers are larger than this gateway accepts.", 1},
    {505, "http_version_not_supported",
        "This gateway speaks HTTP versions 1.0 and 1.1 only.", 1},
    {400, "bad_request", "The request is malformed.", 1},
};

const struct router_refusal *
router_refusal_find(int status)
{
	const size_t n = sizeof(router_refusals) / sizeof(router_refusals[0]);
	size_t i;

	for (i = 0; i + 1 < n && router_refusals[i].rr_status != status; i++)
		;
	return &router_refusals[i];
}

static void
router_refuse(struct request_ctx *rq, int status)
{
	const struct http1_req *r = rq->rq_hreq;
	const struct router_refusal *rr = router_refusal_find(status);
	char why[128];

	if (r->hr_why != NULL)
		log_info("refused id=%s client=%s status=%d reason=\"%s\"",
		    rq->rq_id, rq->rq_peer, status,
		    log_sanitize(why, sizeof(why), r->hr_why));
	errpage_send(
	    rq, rr->rr_status, rr->rr_code, rr->rr_message, rr->rr_close);
}

void
router_request(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	const struct http1_req *r = rq->rq_hreq;
	const char *uri = r->hr_target, *sub;
	enum router_endpoint ep;

	headers_request_id(rq);
	if (r->hr_status != 0) {
		router_refuse(rq, r->hr_status);
		return;
	}
	if (!policy_method_valid(rq->rq_method, strlen(rq->rq_method))) {
		router_refuse(rq, 405);
		return;
	}
	/* Only origin-form targets ("/path?query") are served. */
	if (uri[0] != '/') {
		errpage_send(rq, 400, "bad_request",
		    "The request target must be a path.", 1);
		return;
	}
	if (router_normalise(rq, uri) == -1)
		return;
	if ((sub = router_auth_sub(rq->rq_path, cfg->cf_auth_prefix)) != NULL) {
		rq->rq_mroute =
		    METRICS_ROUTE_ENDPOINT + router_endpoint_find(sub);
		router_endpoint(rq, sub);
		return;
	}
	if (cfg->cf_callback_path != NULL &&
	    strcmp(rq->rq_normpath, cfg->cf_callback_path) == 0) {
		rq->rq_mroute = METRICS_ROUTE_ENDPOINT + ROUTER_EP_CALLBACK;
		oidc_callback(rq);
		return;
	}
	if ((ep = router_sample_path(cfg, rq->rq_normpath)) != ROUTER_EP_NONE) {
		rq->rq_mroute = METRICS_ROUTE_ENDPOINT + ep;
		rq->rq_event = "endpoint";
		if (ep == ROUTER_EP_LOGIN)
			oidc_login(rq);
		else
			oidc_logout(rq);
		return;
	}
	router_route(rq);
}
