/* SPDX-License-Identifier: ISC */
/*
 * router.c: the evhttp generic callback.  Checks the request against the
 * limits, then sends /.auth/... to gatehouse's endpoints and everything else
 * down the pipeline to the upstream.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "config.h"
#include "errpage.h"
#include "headers.h"
#include "bearer.h"
#include "cookie.h"
#include "forward_auth.h"
#include "groups.h"
#include "log.h"
#include "oidc.h"
#include "session.h"
#include "path.h"
#include "policy.h"
#include "proxy.h"
#include "request.h"
#include "router.h"
#include "server.h"

static void router_allow(struct request_ctx *rq);
static void router_signed_in(struct request_ctx *rq);
static void router_signed_in_continue(struct request_ctx *rq);

const struct config_key router_keys[] = {
    {"auth_prefix", config_parse_str, offsetof(struct config, cf_auth_prefix),
        "/.auth",
        "Path prefix of gatehouse's own endpoints (login, callback, "
        "logout, me, verify, healthz).",
        0},
};
const size_t router_nkeys = sizeof(router_keys) / sizeof(router_keys[0]);

int
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

const char *
router_method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return NULL;
	}
}

static void
router_healthz(struct request_ctx *rq)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(rq->rq_req);
	struct evbuffer *body = evbuffer_new();

	rq->rq_event = "healthz";
	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (body != NULL)
		evbuffer_add_printf(body, "{\"status\":\"ok\"}\n");
	request_reply(rq, 200, "OK", body);
	evbuffer_free(body);
}

/* Load rq's session from its cookie into rq->rq_session; 0 if none. */
static int
router_session(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	char cookie[COOKIE_MAX_VALUE];

	if (!oidc_configured(cfg) ||
	    cookie_get(evhttp_request_get_input_headers(rq->rq_req),
	        cfg->cf_cookie_name, cookie, sizeof(cookie)) != 1)
		return 0;
	return session_load(rq->rq_worker->w_reader, cookie, time(NULL), cfg,
	           &rq->rq_session) == SESSION_OK;
}

static void
router_json_reply(struct request_ctx *rq, int status, json_t *doc)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(rq->rq_req);
	struct evbuffer *body = evbuffer_new();
	char *text = json_dumps(doc, JSON_INDENT(2));

	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (body != NULL && text != NULL) {
		evbuffer_add_printf(body, "%s\n", text);
		OPENSSL_cleanse(text, strlen(text));
	}
	free(text);
	request_reply(rq, status, status == 200 ? "OK" : "Error", body);
	evbuffer_free(body);
}

static void
router_iso_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* /.auth/me: who is signed in. */
static void
router_me(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	struct session *s;
	json_t *doc;
	char exp[32], at[32];

	rq->rq_event = "me";
	if (!router_session(rq)) {
		evhttp_add_header(evhttp_request_get_output_headers(rq->rq_req),
		    "WWW-Authenticate", "Bearer realm=\"gatehouse\"");
		errpage_send(rq, 401, "unauthenticated", "Not signed in.", 0);
		return;
	}
	s = rq->rq_session;
	router_iso_time(s->se_expires, exp, sizeof(exp));
	doc = json_pack("{s:s,s:s,s:O?,s:s}", "provider_name", "aad", "user_id",
	    headers_identity_user(session_claims(s)), "user_claims",
	    session_claims(s), "session_expires_on", exp);
	if (doc != NULL && s->se_at_expires != 0) {
		router_iso_time(s->se_at_expires, at, sizeof(at));
		json_object_set_new(doc, "expires_on", json_string(at));
	}
	if (doc != NULL && cfg->cf_me_includes_tokens &&
	    session_open_tokens(s) == 0 && s->se_access.len > 0)
		json_object_set_new(doc, "access_token",
		    json_stringn(
		        (const char *)s->se_access.buf, s->se_access.len));
	if (doc == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	router_json_reply(rq, 200, doc);
	json_decref(doc);
}

static void
router_refresh_done(struct request_ctx *rq)
{
	json_t *doc;
	char at[32];

	if (rq->rq_session == NULL) {
		errpage_send(rq, 401, "unauthenticated",
		    "The session has ended; sign in again.", 0);
		return;
	}
	if (rq->rq_session->se_at_expires <= time(NULL)) {
		errpage_send(rq, 502, "refresh_failed",
		    "The tokens could not be refreshed.", 0);
		return;
	}
	router_iso_time(rq->rq_session->se_at_expires, at, sizeof(at));
	doc = json_pack("{s:s}", "expires_on", at);
	router_json_reply(rq, 200, doc);
	json_decref(doc);
}

/* POST /.auth/refresh: refresh the tokens now. */
static void
router_refresh(struct request_ctx *rq)
{
	rq->rq_event = "refresh";
	if (strcmp(rq->rq_method, "POST") != 0) {
		errpage_send(
		    rq, 405, "method_not_allowed", "Use POST to refresh.", 0);
		return;
	}
	if (!router_session(rq)) {
		errpage_send(rq, 401, "unauthenticated", "Not signed in.", 0);
		return;
	}
	switch (oidc_refresh_ensure(rq, 1, router_refresh_done)) {
	case STEP_AGAIN:
		return;
	case STEP_ERROR:
		return;
	default:
		errpage_send(rq, 502, "refresh_failed",
		    "The tokens could not be refreshed.", 0);
	}
}

/* /.auth/...: gatehouse's own endpoints.  `sub` is the part after the
 * prefix, query included. */
static void
router_endpoint(struct request_ctx *rq, const char *sub)
{
	size_t n = strcspn(sub, "?");

	rq->rq_event = "endpoint";
	if (n == 8 && strncmp(sub, "/healthz", 8) == 0)
		router_healthz(rq);
	else if (n == 6 && strncmp(sub, "/login", 6) == 0)
		oidc_login(rq);
	else if (n == 7 && strncmp(sub, "/logout", 7) == 0)
		oidc_logout(rq);
	else if (n == 9 && strncmp(sub, "/callback", 9) == 0)
		oidc_callback(rq);
	else if (n == 3 && strncmp(sub, "/me", 3) == 0)
		router_me(rq);
	else if (n == 8 && strncmp(sub, "/refresh", 8) == 0)
		router_refresh(rq);
	else if (n == 7 && strncmp(sub, "/verify", 7) == 0)
		forward_auth_verify(rq);
	else
		errpage_send(rq, 404, "not_found",
		    "There is no such gatehouse endpoint.", 0);
}

static void
router_iso_header(struct evbuffer *b, const char *name, int64_t t)
{
	char at[32];

	router_iso_time(t, at, sizeof(at));
	evbuffer_add_printf(b, "%s: %s\r\n", name, at);
}

/* Identity (and, when configured, token) headers, then the upstream. */
void
router_forward_identity(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	struct session *s = rq->rq_session;
	struct evbuffer *b;
	size_t n;

	b = evbuffer_new();
	if (b == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	evbuffer_add_printf(b, "%s", s->se_ident);
	/* Tokens are decrypted only when they are forwarded. */
	if (cfg->cf_forward_access_token && session_open_tokens(s) == 0 &&
	    s->se_access.len > 0) {
		evbuffer_add_printf(b, "X-MS-TOKEN-AAD-ACCESS-TOKEN: ");
		evbuffer_add(b, s->se_access.buf, s->se_access.len);
		evbuffer_add(b, "\r\n", 2);
		router_iso_header(
		    b, "X-MS-TOKEN-AAD-EXPIRES-ON", s->se_at_expires);
		if (cfg->cf_forward_authorization) {
			evbuffer_add_printf(b, "Authorization: Bearer ");
			evbuffer_add(b, s->se_access.buf, s->se_access.len);
			evbuffer_add(b, "\r\n", 2);
		}
	}
	n = evbuffer_get_length(b);
	rq->rq_upstream_hdrs = malloc(n + 1);
	if (rq->rq_upstream_hdrs != NULL) {
		evbuffer_remove(b, rq->rq_upstream_hdrs, n);
		rq->rq_upstream_hdrs[n] = '\0';
	}
	evbuffer_free(b);
	if (rq->rq_upstream_hdrs == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	router_allow(rq);
}

/* After a wait for a refresh: the session may have ended meanwhile. */
static void
router_signed_in_resume(struct request_ctx *rq)
{
	if (rq->rq_session == NULL) {
		oidc_challenge(rq);
		return;
	}
	if (rq->rq_session->se_at_expires != 0 &&
	    rq->rq_session->se_at_expires <= time(NULL)) {
		errpage_send(rq, 502, "refresh_failed",
		    "The sign-in could not be renewed with the identity "
		    "provider. Please try again.",
		    0);
		return;
	}
	router_forward_identity(rq);
}

/* A route denies: 403 naming the route, never the criteria (so a refusal
 * does not teach what would pass). */
void
router_deny(struct request_ctx *rq, const struct policy_route *route)
{
	char msg[256], pat[128];

	rq->rq_event = "deny";
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
	errpage_send(rq, 403, "access_denied", msg, 0);
}

/*
 * Split the target into path and query, normalise the path (policies/path)
 * and keep both: rq_normpath is what routes match, rq_path (normalised
 * path plus the query as sent) is what the upstream receives, so the check
 * and the use cannot disagree.  Returns 0, or -1 when a 400 has been sent.
 */
int
router_normalise(struct request_ctx *rq, const char *uri)
{
	const char *q = strchr(uri, '?');
	struct gh_error err;
	char *raw;

	raw = strndup(uri, q != NULL ? (size_t)(q - uri) : strlen(uri));
	if (raw == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 1);
		return -1;
	}
	rq->rq_normpath = path_normalise_dup(raw, 0, &err);
	free(raw);
	if (rq->rq_normpath == NULL) {
		log_info("bad_path id=%s reason=\"%s\"", rq->rq_id, err.ge_msg);
		errpage_send(rq, 400, "bad_path",
		    "The request path cannot be used safely.", 1);
		return -1;
	}
	if (asprintf(&rq->rq_path, "%s%s", rq->rq_normpath,
	        q != NULL ? q : "") == -1) {
		rq->rq_path = NULL;
		errpage_send(rq, 500, "internal", "Out of memory.", 1);
		return -1;
	}
	return 0;
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

static void
router_signed_in(struct request_ctx *rq)
{
	enum policy_verdict v;

	if (!router_session(rq)) {
		oidc_challenge(rq);
		return;
	}
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
	const struct config *cfg = rq->rq_worker->w_cfg;

	if (cfg->cf_forward_access_token) {
		switch (oidc_refresh_ensure(rq, 0, router_signed_in_resume)) {
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
	router_forward_identity(rq);
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

void
router_route(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	const struct policy_table *routes = rq->rq_worker->w_routes;
	const struct policy_route *route = NULL;

	if (routes != NULL) {
		route = policy_match(routes, rq->rq_method, rq->rq_normpath);
		if (route == NULL) {
			router_deny(rq, NULL);
			return;
		}
	}
	rq->rq_route = route;
	/* No route lines: everything is proxied, to signed-in users when a
	 * provider is configured, to anyone otherwise. */
	switch (route != NULL          ? policy_route_action(route)
	        : oidc_configured(cfg) ? POLICY_ACTION_SIGNED_IN
	                               : POLICY_ACTION_ANONYMOUS) {
	case POLICY_ACTION_ANONYMOUS:
		router_allow(rq);
		return;
	case POLICY_ACTION_SIGNED_IN:
		router_signed_in(rq);
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

void
router_request_cb(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const struct config *cfg;
	struct request_ctx *rq;
	const char *uri;
	size_t plen;
	int st;

	if (w == NULL || w->w_magic != WORKER_MAGIC)
		abort();
	cfg = w->w_cfg;
	rq = request_new(w, req);
	if (rq == NULL)
		return;
	if (cfg->cf_idle_timeout != cfg->cf_header_timeout)
		evhttp_connection_set_timeout(
		    rq->rq_evcon, cfg->cf_idle_timeout);
	rq->rq_peer_trusted = headers_peer_trusted(cfg, rq->rq_peer);
	headers_request_id(rq);
	rq->rq_method = router_method_name(evhttp_request_get_command(req));
	uri = evhttp_request_get_uri(req);
	if (rq->rq_method == NULL) {
		rq->rq_method = "OTHER";
		errpage_send(rq, 405, "method_not_allowed",
		    "This method is not allowed.", 0);
		return;
	}
	if (strlen(uri) > cfg->cf_max_request_line) {
		errpage_send(rq, 414, "uri_too_long",
		    "The request URI is longer than this gateway accepts.", 1);
		return;
	}
	st = headers_check_limits(cfg, evhttp_request_get_input_headers(req));
	if (st != 0) {
		errpage_send(rq, st,
		    st == 431 ? "headers_too_large" : "bad_request",
		    st == 431 ? "The request headers are larger than this "
		                "gateway accepts."
		              : "The request headers are malformed.",
		    1);
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
	plen = strlen(cfg->cf_auth_prefix);
	if (strncmp(rq->rq_path, cfg->cf_auth_prefix, plen) == 0 &&
	    (rq->rq_path[plen] == '/' || rq->rq_path[plen] == '\0' ||
	        rq->rq_path[plen] == '?')) {
		router_endpoint(rq, rq->rq_path + plen);
		return;
	}
	if (cfg->cf_callback_path != NULL &&
	    strcmp(rq->rq_normpath, cfg->cf_callback_path) == 0) {
		oidc_callback(rq);
		return;
	}
	router_route(rq);
}
