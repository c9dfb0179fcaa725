/* SPDX-License-Identifier: ISC */
/*
 * oidc_callback.c: the redirect URI.  Check what came back (state bound to
 * this browser's flow cookie and used once, the provider's error, RFC 9207
 * iss), redeem the code with the PKCE verifier, verify the ID token, and
 * only then create a session under a new id.  Every failure leaves no
 * session behind and shows a page that says what happened.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/conn.h"
#include "http/errpage.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/aadsts.h"
#include "oidc/http_client.h"
#include "oidc/jose.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "session/cookie.h"
#include "session/identity.h"
#include "session/session.h"

static const char *const oidc_callback_unique[] = {
    "state", "code", "error", "error_description", "iss", NULL};

static void oidc_callback_verify(struct request_ctx *rq, int retried);

void
oidc_request_cleanup(void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	if (rq->rq_gen->wg_provider != NULL)
		oidc_provider_unwait(rq->rq_gen->wg_provider, rq);
	oidc_refresh_forget(rq);
	oidc_flow_free(rq->rq_flow);
	rq->rq_flow = NULL;
	if (rq->rq_tokens != NULL) {
		oidc_tokens_cleanup(rq->rq_tokens);
		free(rq->rq_tokens);
	}
	rq->rq_tokens = NULL;
}

/* The request's cleanup for its token request in flight. */
static void
oidc_callback_xfer_cleanup(void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	httpc_cancel(rq->rq_xfer);
	rq->rq_xfer = NULL;
}

static void
oidc_fail(struct request_ctx *rq, int status, const char *code, const char *why,
    const char *message)
{
	char buf[300];

	rq->rq_event = "callback";
	metrics_signin_failed(code);
	log_info("callback id=%s result=%s reason=\"%s\"", rq->rq_id, code,
	    log_sanitize(buf, sizeof(buf), why));
	errpage_send(rq, status, code, message, 0);
}

/* Unknown, expired or replayed state: start again once, then say so. */
static void
oidc_callback_restart(struct request_ctx *rq, const char *why)
{
	const struct config *cfg = rq->rq_cfg;
	struct resp_hdrs *out = request_out(rq);
	char name[96], val[8], loc[128], buf[128];

	snprintf(name, sizeof(name), "%s_retry", cfg->cf_cookie_name);
	rq->rq_event = "callback";
	metrics_signin_failed("state_invalid");
	if (cookie_get(rq->rq_hreq, name, val, sizeof(val)) != 0) {
		cookie_set(out, cfg, name, "", 0, COOKIE_LAX);
		log_info("callback id=%s result=state_invalid reason=\"%s\" "
		         "restart=no",
		    rq->rq_id, log_sanitize(buf, sizeof(buf), why));
		errpage_send_action(rq, 401, "state_invalid",
		    "This sign-in could not be completed: it was already used, "
		    "has expired, or was started in another browser.",
		    "Sign in again", "/");
		return;
	}
	log_info("callback id=%s result=state_invalid reason=\"%s\" "
	         "restart=yes",
	    rq->rq_id, log_sanitize(buf, sizeof(buf), why));
	cookie_set(out, cfg, name, "1", 120, COOKIE_LAX);
	snprintf(loc, sizeof(loc), "%s/login?post_login_redirect_uri=%%2F",
	    cfg->cf_auth_prefix);
	resp_hdrs_add(out, "Location", loc);
	resp_hdrs_add(out, "Cache-Control", "no-store");
	request_reply(rq, 302, "Found", NULL);
}

/* "Reference for support: AADSTS65001, trace ID ..., ...": only digits
 * and hex ids, safe on a page; "" when there is none. */
static void
oidc_aadsts_support(const struct aadsts_ref *r, char *buf, size_t size)
{
	buf[0] = '\0';
	if (r->ar_code == 0 && r->ar_trace[0] == '\0')
		return;
	snprintf(buf, size, " Reference for support: AADSTS%ld%s%s%s%s%s%s.",
	    r->ar_code, r->ar_trace[0] != '\0' ? ", trace ID " : "",
	    r->ar_trace, r->ar_corr[0] != '\0' ? ", correlation ID " : "",
	    r->ar_corr, r->ar_time[0] != '\0' ? ", time " : "", r->ar_time);
}

/*
 * The page for an AADSTS number gatehouse has words for: what happened and
 * who does what next, with the reference; never the provider's
 * description (it may name the user, and only the number is explained).
 */
static void
oidc_aadsts_page(struct request_ctx *rq, const struct aadsts_entry *e,
    const struct aadsts_ref *r, const char *code, const char *href)
{
	struct errpage_page pg = {e->ae_status, code, e->ae_heading, NULL,
	    "Try again", href, 0, 0, NULL};
	char msg[900], sup[200];

	oidc_aadsts_support(r, sup, sizeof(sup));
	snprintf(msg, sizeof(msg), "%s%s", e->ae_message, sup);
	pg.ep_message = msg;
	errpage_send_page(rq, &pg);
}

/*
 * The provider sent error= instead of a code.  Entra's description starts
 * with its AADSTS number and ends with the ids its support asks for: the
 * log line keeps those and drops the words between them (they may name
 * the user); the page explains the numbers gatehouse knows.  Another
 * provider's description is logged (cut) and shown escaped, as before.
 */
static void
oidc_callback_error(struct request_ctx *rq, struct evkeyvalq *q)
{
	const struct config *cfg = rq->rq_cfg;
	const char *e = evhttp_find_header(q, "error");
	const char *d = evhttp_find_header(q, "error_description");
	const char *state = evhttp_find_header(q, "state");
	const struct aadsts_entry *ent;
	struct aadsts_ref ref;
	struct oidc_flow *f = NULL;
	struct errpage_page pg = {
	    401, "provider_error", NULL, NULL, "Try again", NULL, 0, 0, NULL};
	char msg[900], href[600], eb[64], db[512], refs[200], sup[200];
	char *esc = NULL;
	int cancel, entra;

	if (state != NULL && strlen(state) == OIDC_STATE_LEN)
		f = oidc_flow_find(rq, state);
	if (f != NULL)
		cookie_set(request_out(rq), cfg, f->of_cookie, "", 0,
		    cfg->cf_response_mode == OIDC_RESPONSE_FORM_POST
		        ? COOKIE_NONE
		        : COOKIE_LAX);
	aadsts_ref_from_text(d, &ref);
	entra = ref.ar_code != 0;
	ent = entra ? aadsts_find(ref.ar_code) : NULL;
	cancel = ent != NULL ? ent->ae_code == 65004
	                     : strcmp(e, "access_denied") == 0;
	log_sanitize(eb, sizeof(eb), e);
	log_sanitize(db, sizeof(db), d != NULL && !entra ? d : "");
	aadsts_ref_format(&ref, refs, sizeof(refs));
	rq->rq_event = "callback";
	/* The provider's own code is not a label: only whether it is the
	 * person's cancel. */
	metrics_signin_failed(cancel ? "cancelled" : "provider_error");
	if (entra)
		log_info(
		    "callback id=%s result=provider_error error=\"%s\"%s%s%s",
		    rq->rq_id, eb, ent != NULL ? " explained=" : "",
		    ent != NULL ? ent->ae_label : "", refs);
	else
		log_info("callback id=%s result=provider_error error=\"%s\" "
		         "description=\"%.200s\"",
		    rq->rq_id, eb, db);
	esc = httpc_url_escape(f != NULL ? f->of_target : "/");
	snprintf(href, sizeof(href), "%s/login?post_login_redirect_uri=%s",
	    cfg->cf_auth_prefix, esc != NULL ? esc : "%2F");
	free(esc);
	oidc_flow_free(f);
	if (ent != NULL) {
		oidc_aadsts_page(rq, ent, &ref, ent->ae_label, href);
		return;
	}
	oidc_aadsts_support(&ref, sup, sizeof(sup));
	if (cancel)
		snprintf(msg, sizeof(msg),
		    "Sign-in was cancelled or refused (access_denied)%s%s%s",
		    d != NULL && !entra ? ": " : ".",
		    d != NULL && !entra ? db : "", sup);
	else
		snprintf(msg, sizeof(msg),
		    "The identity provider reported an error (%s)%s%s%s", eb,
		    d != NULL && !entra ? ": " : ".",
		    d != NULL && !entra ? db : "", sup);
	/* errpage escapes the text: the description is never markup.  A
	 * cancel is the person's own choice, not a failure: the heading says
	 * so. */
	pg.ep_heading = cancel ? "Sign-in was cancelled" : "Sign-in failed";
	pg.ep_message = msg;
	pg.ep_href = href;
	errpage_send_page(rq, &pg);
}

static void
oidc_callback_token_cb(const struct httpc_result *res, void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	const struct config *cfg = rq->rq_cfg;
	const struct aadsts_entry *ent;
	struct oidc_tokens t;
	struct gh_error err;
	const char *code;
	char buf[300];
	int st;

	rq->rq_xfer = NULL;
	st = oidc_tokens_parse(res, &t, &code, &err);
	if (st != 0 && t.ot_aadsts != 0 &&
	    (ent = aadsts_find(t.ot_aadsts)) != NULL) {
		/* The log line names the refusal with its ids (err); the
		 * page says what the number means and who acts. */
		struct aadsts_ref ref;
		char loc[64];

		memset(&ref, 0, sizeof(ref));
		ref.ar_code = t.ot_aadsts;
		rq->rq_event = "callback";
		metrics_signin_failed(code);
		log_info("callback id=%s result=%s reason=\"%s\" explained=%s",
		    rq->rq_id, code, log_sanitize(buf, sizeof(buf), err.ge_msg),
		    ent->ae_label);
		snprintf(loc, sizeof(loc), "%s/login", cfg->cf_auth_prefix);
		oidc_aadsts_page(rq, ent, &ref, code, loc);
		return;
	}
	if (st != 0) {
		oidc_fail(rq, st, code, err.ge_msg,
		    st == 504 ? "The identity provider did not answer in time. "
		                "Please try again."
		        : strcmp(code, "invalid_client") == 0
		        ? "Signing in is not possible: the identity provider "
		          "refused this site's client credentials (its secret "
		          "or certificate). Please tell the site's "
		          "administrator."
		        : st == 401
		        ? "The identity provider refused to complete the "
		          "sign-in. Please sign in again."
		        : res->hr_status != HTTPC_OK
		        ? "The identity provider could not be reached. "
		          "Please try again later."
		        : "The identity provider sent an invalid answer. "
		          "Please try again later.");
		return;
	}
	if (t.ot_idtoken == NULL) {
		oidc_tokens_cleanup(&t);
		oidc_fail(rq, 502, "provider_error",
		    "no id_token in the answer",
		    "The identity provider sent an invalid answer. Please try "
		    "again later.");
		return;
	}
	request_cleanup_add(rq, oidc_request_cleanup, rq);
	rq->rq_tokens = malloc(sizeof(*rq->rq_tokens));
	if (rq->rq_tokens == NULL) {
		oidc_tokens_cleanup(&t);
		metrics_signin_failed("internal");
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	*rq->rq_tokens = t;
	oidc_callback_verify(rq, 0);
}

static void
oidc_callback_jwks_cb(void *arg, int fresh)
{
	struct request_ctx *rq = request_cast(arg);

	if (!fresh) {
		oidc_fail(rq, 401, "invalid_id_token",
		    "kid_unknown: the ID token names a key the provider does "
		    "not publish",
		    "The sign-in could not be verified. Please sign in again.");
		return;
	}
	oidc_callback_verify(rq, 1);
}

/*
 * The session is in the store (r SESSION_OK) or not: set its cookie and
 * send the browser on, or say why not.  The record is committed (and,
 * with Redis, acknowledged) before its cookie leaves, so a restart, or
 * the next request reaching another replica, finds it.
 */
static void
oidc_callback_saved(struct request_ctx *rq, enum session_result r)
{
	const struct config *cfg = rq->rq_cfg;
	struct resp_hdrs *out = request_out(rq);
	struct session *s = rq->rq_session;
	char retry[96], user[128];

	if (r != SESSION_OK) {
		oidc_fail(rq, 503, "store_unavailable",
		    r == SESSION_FULL          ? "session store is full (see "
		                                 "session_map_size)"
		        : r == SESSION_UNAVAIL ? "session store unreachable"
		                               : "session store write failed",
		    r == SESSION_FULL
		        ? "Signing in is temporarily unavailable: the session "
		          "store cannot take new sessions. Existing sessions "
		          "keep working."
		        : "Signing in is temporarily unavailable: the session "
		          "store cannot be written. Please try again in a "
		          "moment.");
		return;
	}
	cookie_set(out, cfg, cfg->cf_cookie_name, s->se_cookie,
	    cfg->cf_session_lifetime, COOKIE_LAX);
	cookie_set(out, cfg, rq->rq_flow->of_cookie, "", 0,
	    cfg->cf_response_mode == OIDC_RESPONSE_FORM_POST ? COOKIE_NONE
	                                                     : COOKIE_LAX);
	snprintf(retry, sizeof(retry), "%s_retry", cfg->cf_cookie_name);
	if (cookie_get(rq->rq_hreq, retry, user, sizeof(user)) != 0)
		cookie_set(out, cfg, retry, "", 0, COOKIE_LAX);
	resp_hdrs_add(out, "Location", rq->rq_flow->of_target);
	resp_hdrs_add(out, "Cache-Control", "no-store");
	rq->rq_event = "callback";
	metrics_signin_completed();
	log_info("callback id=%s result=ok user=\"%s\"", rq->rq_id,
	    log_sanitize(user, sizeof(user), identity_user(session_claims(s))));
	request_reply(rq, 302, "Found", NULL);
}

static void
oidc_callback_saved_cb(void *arg, enum session_result r)
{
	struct request_ctx *rq = request_cast(arg);

	rq->rq_store_op = NULL;
	oidc_callback_saved(rq, r);
}

/* A sign-in that asked consent for a profile's scopes too redeems its
 * code for the sign-in's own scopes only: Entra gives a token for one
 * resource at a time, and the session's access token stays the default
 * one.  The profile's token comes from the refresh token. */
static void
oidc_callback_scope(struct evbuffer *form, const struct config *cfg)
{
	char *scope;

	if (asprintf(&scope, "openid profile%s%s%s",
	        oidc_wants_refresh_token(cfg) ? " offline_access" : "",
	        cfg->cf_scopes[0] != '\0' ? " " : "", cfg->cf_scopes) == -1)
		return;
	httpc_form_add(form, "scope", scope);
	free(scope);
}

/* The session: a new id (never the one the browser had: no fixation). */
static void
oidc_callback_finish(struct request_ctx *rq, json_t *claims)
{
	const struct config *cfg = rq->rq_cfg;
	struct oidc_tokens *t = rq->rq_tokens;
	struct session *s;
	char *json = NULL;
	time_t now = time(NULL);
	enum session_result r;

	s = session_new(now, cfg);
	json = json_dumps(claims, JSON_COMPACT);
	if (s == NULL || json == NULL ||
	    session_set_claims_parsed(s, json, claims) == -1 ||
	    session_set_tokens(s, t->ot_access, t->ot_refresh, t->ot_idtoken,
	        t->ot_access != NULL ? now + t->ot_expires_in : 0) == -1 ||
	    (rq->rq_flow->of_profile != NULL &&
	        session_set_ptok(s, rq->rq_flow->of_profile, NULL, 0,
	            SESSION_PTOK_ASKED) == -1)) {
		free(json);
		session_free(s);
		metrics_signin_failed("internal");
		errpage_send(rq, 500, "internal",
		    "The session could not be "
		    "created.",
		    0);
		return;
	}
	session_follow_id_token(s, cfg, json);
	free(json);
	/* The request holds it from here: its cleanup frees it and cancels
	 * the save if the browser goes away meanwhile. */
	request_cleanup_add(rq, oidc_session_cleanup, rq);
	session_free(rq->rq_session);
	rq->rq_session = s;
	r = session_save_start(rq->rq_worker->w_reader, s,
	    oidc_callback_saved_cb, rq, &rq->rq_store_op);
	if (r == SESSION_PENDING) {
		rq->rq_state = RQ_STORE;
		return;
	}
	oidc_callback_saved(rq, r);
}

static void
oidc_callback_verify(struct request_ctx *rq, int retried)
{
	const struct config *cfg = rq->rq_cfg;
	struct oidc_provider *op = rq->rq_gen->wg_provider;
	const struct oidc_meta *m = oidc_provider_meta(op);
	struct jose_check chk;
	struct gh_error err;
	json_t *claims = NULL;
	enum jose_result jr;
	char why[300];

	if (m == NULL) {
		oidc_fail(rq, 503, "provider_unavailable", "no metadata",
		    "The identity provider is unreachable. Please try again "
		    "in a minute.");
		return;
	}
	oidc_id_token_check(&chk, cfg, m);
	chk.jc_nonce = rq->rq_flow->of_nonce;
	chk.jc_require_iat = 1;
	jr = jose_verify(rq->rq_tokens->ot_idtoken, oidc_provider_jwks(op),
	    &chk, &claims, &err);
	if (jr == JOSE_KID_UNKNOWN && !retried &&
	    oidc_provider_jwks_refetch(op, oidc_callback_jwks_cb, rq) == 0)
		return; /* parked until the new key set is in */
	/* Security: the ID token vouches for the access token it names by
	 * at_hash; a swapped access token is refused like a bad ID token. */
	if (jr == JOSE_OK &&
	    oidc_tokens_at_hash_check(rq->rq_tokens, claims, &err) == -1)
		jr = JOSE_INVALID;
	if (jr != JOSE_OK) {
		json_decref(claims);
		snprintf(why, sizeof(why), "%s: %s",
		    err.ge_code != NULL ? err.ge_code : "invalid", err.ge_msg);
		oidc_fail(rq, 401, "invalid_id_token", why,
		    err.ge_code != NULL && strncmp(err.ge_code, "tid_", 4) == 0
		        ? "The sign-in was refused: the identity provider's "
		          "answer names another directory (tenant) than the "
		          "one this site trusts. Please tell the site's "
		          "administrator."
		        : "The sign-in could not be verified. Please sign in "
		          "again.");
		return;
	}
	oidc_callback_finish(rq, claims);
	json_decref(claims);
}

/* GET with the query, or POST with a form body (response_mode=form_post). */
static int
oidc_callback_params(struct request_ctx *rq, struct evkeyvalq *q)
{
	struct evbuffer *in = request_body(rq);
	const char *query, *ct;
	char *body;
	size_t len;
	int rc;

	TAILQ_INIT(q);
	if (strcmp(rq->rq_method, "POST") == 0) {
		/* A form_post answer is a few KiB; one still streaming in
		 * (over 64 KiB) is not one. */
		if (conn_body_more(rq->rq_conn))
			return -1;
		ct = request_header(rq, "Content-Type");
		len = in != NULL ? evbuffer_get_length(in) : 0;
		if (ct == NULL ||
		    strncasecmp(ct, "application/x-www-form-urlencoded", 33) !=
		        0 ||
		    len > 64 * 1024)
			return -1;
		body = malloc(len + 1);
		if (body == NULL)
			return -1;
		if (len > 0)
			evbuffer_copyout(in, body, len);
		body[len] = '\0';
		rc = strlen(body) == len
		    ? oidc_params_parse(body, q, oidc_callback_unique)
		    : -1;
		OPENSSL_cleanse(body, len);
		free(body);
		return rc;
	}
	query = strchr(rq->rq_path, '?');
	return oidc_params_parse(
	    query != NULL ? query + 1 : NULL, q, oidc_callback_unique);
}

void
oidc_callback(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	const struct oidc_meta *m;
	struct evkeyvalq q;
	struct evbuffer *form = NULL;
	struct gh_error err;
	const char *state, *code, *iss;
	int used;

	rq->rq_event = "callback";
	/* Security: every answer here (the redirect onward, a restart, an
	 * error page) must not pass this URL, with the code and state in
	 * it, as the Referer of the next request. */
	resp_hdrs_add(request_out(rq), "Referrer-Policy", "no-referrer");
	if (strcmp(rq->rq_method, "GET") != 0 &&
	    strcmp(rq->rq_method, "POST") != 0) {
		errpage_send(rq, 405, "method_not_allowed",
		    "The sign-in callback takes GET or POST.", 0);
		return;
	}
	/* A form_post answer comes as a body, read now that the request is
	 * known to be a callback (a few KiB; 64 KiB at most). */
	if (strcmp(rq->rq_method, "POST") == 0 &&
	    request_body_read(
	        rq, 64 * 1024, oidc_callback, errpage_body_failed) == 1)
		return;
	if (oidc_callback_params(rq, &q) == -1) {
		evhttp_clear_headers(&q);
		oidc_fail(rq, 400, "bad_callback",
		    "malformed or repeated "
		    "parameters",
		    "The sign-in response is malformed.");
		return;
	}
	if (evhttp_find_header(&q, "error") != NULL) {
		oidc_callback_error(rq, &q);
		evhttp_clear_headers(&q);
		return;
	}
	state = evhttp_find_header(&q, "state");
	code = evhttp_find_header(&q, "code");
	iss = evhttp_find_header(&q, "iss");
	if (state == NULL || code == NULL || state[0] == '\0' ||
	    code[0] == '\0' || strlen(code) > 8192) {
		evhttp_clear_headers(&q);
		oidc_fail(rq, 400, "bad_callback", "state or code missing",
		    "The sign-in response is incomplete.");
		return;
	}
	m = oidc_provider_meta(rq->rq_gen->wg_provider);
	if (m == NULL) {
		evhttp_clear_headers(&q);
		oidc_fail(rq, 503, "provider_unavailable", "no metadata",
		    "The identity provider is unreachable. Please try again "
		    "in a minute.");
		return;
	}
	/* RFC 9207: the response names its issuer; a mix-up attack sends
	 * another provider's response here. */
	if ((iss != NULL && !oidc_issuer_equal(iss, m->om_issuer)) ||
	    (iss == NULL && m->om_iss_param)) {
		evhttp_clear_headers(&q);
		oidc_fail(rq, 401, "iss_mismatch",
		    "authorization response iss is missing or differs",
		    "The sign-in response came from an unexpected identity "
		    "provider.");
		return;
	}
	request_cleanup_add(rq, oidc_request_cleanup, rq);
	rq->rq_flow =
	    strlen(state) == OIDC_STATE_LEN ? oidc_flow_find(rq, state) : NULL;
	if (rq->rq_flow == NULL) {
		evhttp_clear_headers(&q);
		oidc_callback_restart(rq, "unknown or expired state");
		return;
	}
	used = oidc_flow_state_consume(
	    state, time(NULL), rq->rq_flow->of_created + OIDC_FLOW_TTL);
	if (used != 0) {
		evhttp_clear_headers(&q);
		if (used == 1)
			oidc_callback_restart(rq, "state already used");
		else
			oidc_fail(rq, 503, "store_unavailable",
			    "state store failed",
			    "Signing in is temporarily unavailable.");
		return;
	}
	form = evbuffer_new();
	if (form == NULL) {
		evhttp_clear_headers(&q);
		metrics_signin_failed("internal");
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	httpc_form_add(form, "grant_type", "authorization_code");
	httpc_form_add(form, "code", code);
	httpc_form_add(form, "redirect_uri", cfg->cf_redirect_uri);
	httpc_form_add(form, "code_verifier", rq->rq_flow->of_verifier);
	if (rq->rq_flow->of_profile != NULL)
		oidc_callback_scope(form, cfg);
	evhttp_clear_headers(&q);
	rq->rq_state = RQ_PROVIDER;
	request_cleanup_add(rq, oidc_callback_xfer_cleanup, rq);
	rq->rq_xfer = oidc_token_request(
	    rq->rq_gen, form, oidc_callback_token_cb, rq, &err);
	evbuffer_free(form);
	if (rq->rq_xfer != NULL)
		return;
	if (err.ge_code != NULL &&
	    strcmp(err.ge_code, "token_auth_unsupported") == 0)
		oidc_fail(rq, 502, err.ge_code, err.ge_msg,
		    "Signing in is not possible: gatehouse is not set up to "
		    "authenticate in a way the identity provider accepts "
		    "(token_auth_method). Please tell the site's "
		    "administrator.");
	else
		oidc_fail(rq, 502, "provider_error",
		    "token request could not start",
		    "The identity provider could not be reached. Please try "
		    "again later.");
}

void
oidc_id_token_check(
    struct jose_check *chk, const struct config *cfg, const struct oidc_meta *m)
{
	memset(chk, 0, sizeof(*chk));
	chk->jc_issuer = m->om_issuer;
	chk->jc_audiences = (const char *const *)&cfg->cf_client_id;
	chk->jc_naudiences = 1;
	chk->jc_client_id = cfg->cf_client_id;
	chk->jc_tid = m->om_tid[0] != '\0' ? m->om_tid : NULL;
	chk->jc_tid_required = m->om_tid_required;
	chk->jc_algs = m->om_algs;
	chk->jc_nalgs = m->om_nalgs;
	chk->jc_now = time(NULL);
	chk->jc_skew = cfg->cf_clock_skew;
}
