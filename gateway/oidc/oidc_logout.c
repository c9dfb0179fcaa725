/* SPDX-License-Identifier: ISC */
/*
 * oidc_logout.c: /.auth/logout ends the session here (the record is
 * deleted, so a copied cookie stops working) and at the provider
 * (end_session_endpoint with id_token_hint, logout_hint, client_id and
 * post_logout_redirect_uri), and has its refresh token revoked
 * (oidc_revoke.c).  A sign-out another site asked for is not
 * carried out: the person is asked to confirm it.  Without a return path
 * the browser ends on the signed-out page, served here too; with
 * prompt=select_account it signs in again with the account picker.
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

#include "core/config.h"
#include "core/log.h"
#include "http/errpage.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/http_client.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "session/cookie.h"
#include "session/identity.h"
#include "session/session.h"

static void
oidc_logout_param(struct evbuffer *b, const char *name, const char *value)
{
	char *e = httpc_url_escape(value);

	evbuffer_add_printf(b, "&%s=%s", name, e != NULL ? e : "");
	free(e);
}

/*
 * Whether this request to sign out came from this site (or from the
 * person: a typed URL or a bookmark).  Security: without this check any
 * site could end the session here and at the provider with a link
 * (top-level navigations carry the SameSite=Lax cookie) or an auto-posted
 * form.  Sec-Fetch-Site, which a page cannot forge, decides when it is
 * present; otherwise an Origin header must name this site.  A request
 * with neither comes from a script or a browser too old to send them
 * (such browsers do send Origin on a cross-site POST); it is carried out,
 * as refusing it would leave those users no way to sign out.
 */
static int
oidc_logout_same_origin(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	const char *site = request_header(rq, "Sec-Fetch-Site");
	const char *origin = request_header(rq, "Origin");

	if (site != NULL) {
		if (strcmp(site, "same-origin") == 0)
			return 1;
		/* "none": the person typed it or used a bookmark; a POST
		 * is never that. */
		return strcmp(site, "none") == 0 &&
		    strcmp(rq->rq_method, "GET") == 0;
	}
	if (origin != NULL)
		return cfg->cf_public_base != NULL &&
		    strcasecmp(origin, cfg->cf_public_base) == 0;
	return 1;
}

/* Ask the person to confirm with a button that POSTs the same request
 * (the return path already checked, NULL when none was given; `sw` for a
 * switch of account) from this site's own page. */
static void
oidc_logout_confirm(
    struct request_ctx *rq, const char *target, int sw, int status)
{
	const struct config *cfg = rq->rq_cfg;
	char *esc = NULL, *href = NULL;
	int rc;

	if (target != NULL) {
		esc = httpc_url_escape(target);
		if (esc == NULL) {
			errpage_send(rq, 500, "internal", "Out of memory.", 0);
			return;
		}
	}
	rc = asprintf(&href, "%s/logout%s%s%s%s", cfg->cf_auth_prefix,
	    sw ? "?prompt=select_account" : "",
	    esc == NULL ? ""
	        : sw    ? "&"
	                : "?",
	    esc != NULL ? "post_logout_redirect_uri=" : "",
	    esc != NULL ? esc : "");
	free(esc);
	if (rc == -1) {
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	log_info(
	    "logout id=%s result=confirm client=%s", rq->rq_id, rq->rq_peer);
	errpage_send_confirm(rq, status, "logout_confirm",
	    status == 200 ? "Do you want to sign out?"
	                  : "Another site asked to sign you out. Sign out only "
	                    "if you meant to.",
	    "Sign out", href);
	free(href);
}

/*
 * Where the browser lands after sign-out when the request named no
 * return path: the operator's post_logout_redirect_uri, else the
 * signed-out page.  With `absolute` (for the provider) a full URL, which
 * the operator registers at the provider.  New string, or NULL.
 */
static char *
oidc_logout_default_target(const struct config *cfg, int absolute)
{
	char *out = NULL;

	if (cfg->cf_post_logout_redirect_uri != NULL)
		return strdup(cfg->cf_post_logout_redirect_uri);
	if (asprintf(&out, "%s%s/logout/complete",
	        absolute && cfg->cf_public_base != NULL ? cfg->cf_public_base
	                                                : "",
	        cfg->cf_auth_prefix) == -1)
		return NULL;
	return out;
}

/*
 * Switch account: the session here has ended; sign in again with the
 * provider's account picker, back to `target`.  The provider's own session
 * is left alone: the picker is what lets the person choose another
 * account, and a round trip through end_session would need one more
 * registered return URI.
 */
static char *
oidc_logout_switch_url(const struct config *cfg, const char *target)
{
	char *esc = httpc_url_escape(target != NULL ? target : "/"), *out;

	if (esc == NULL)
		return NULL;
	if (asprintf(&out,
	        "%s/login?prompt=select_account&post_login_redirect_uri=%s",
	        cfg->cf_auth_prefix, esc) == -1)
		out = NULL;
	free(esc);
	return out;
}

void
oidc_logout_complete(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	char href[256];
	struct errpage_page pg = {200, "signed_out", "You are signed out",
	    "Your session has ended. Close this window, or sign in again to "
	    "go on.",
	    "Sign in again", href, 0, 0, NULL};

	rq->rq_event = "signed_out";
	if (strcmp(rq->rq_method, "GET") != 0 &&
	    strcmp(rq->rq_method, "HEAD") != 0) {
		errpage_send(rq, 405, "method_not_allowed",
		    "The signed-out page takes GET.", 0);
		return;
	}
	/* Nothing from the request reaches the page: its query (whatever
	 * a provider or another site appends) is ignored, and the link is
	 * a fixed path here. */
	snprintf(href, sizeof(href), "%s/login", cfg->cf_auth_prefix);
	errpage_send_page(rq, &pg);
}

/* The sign-out's parameters from the query: where to end (NULL: the
 * default; borrowed from q or static) and whether to switch account.  q
 * is filled (evhttp_clear_headers). */
static const char *
oidc_logout_params(struct request_ctx *rq, struct evkeyvalq *q, int *sw)
{
	const char *query, *target, *prompt;

	query = strchr(rq->rq_path, '?');
	if (oidc_params_parse(query != NULL ? query + 1 : NULL, q, NULL) == -1)
		TAILQ_INIT(q);
	/* Security: a local path only; anything else is "/".  None given
	 * (NULL) means the default: post_logout_redirect_uri or the
	 * signed-out page. */
	target = evhttp_find_header(q, "post_logout_redirect_uri");
	if (target != NULL)
		target = oidc_return_target(rq, target);
	prompt = evhttp_find_header(q, "prompt");
	*sw = prompt != NULL && strcmp(prompt, "select_account") == 0;
	return target;
}

/* The session is gone (or there was none): clear the cookie and send the
 * browser to the provider's end_session_endpoint, or to where sign-out
 * ends.  The session (rq->rq_session, if any) is still in memory for its
 * id_token_hint. */
static void
oidc_logout_finish(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	struct resp_hdrs *out = request_out(rq);
	struct session *s = rq->rq_session;
	const struct oidc_meta *m;
	struct evkeyvalq q;
	struct evbuffer *loc;
	const char *target, *hint = NULL;
	char *abs = NULL, user[128] = "";
	int sw;

	target = oidc_logout_params(rq, &q, &sw);
	if (s != NULL)
		log_sanitize(
		    user, sizeof(user), identity_user(session_claims(s)));
	cookie_set(out, cfg, cfg->cf_cookie_name, "", 0, COOKIE_LAX);
	loc = evbuffer_new();
	m = oidc_configured(cfg) && !sw
	    ? oidc_provider_meta(rq->rq_gen->wg_provider)
	    : NULL;
	if (loc == NULL)
		goto fail;
	if (sw) {
		abs = oidc_logout_switch_url(cfg, target);
		if (abs == NULL)
			goto fail;
		evbuffer_add_printf(loc, "%s", abs);
	} else if (m != NULL && m->om_end_session_endpoint != NULL) {
		if (target != NULL) {
			if (asprintf(&abs, "%s%s", cfg->cf_public_base,
			        target) == -1)
				abs = NULL;
		} else
			abs = oidc_logout_default_target(cfg, 1);
		evbuffer_add_printf(loc,
		    "%s%cclient_id=", m->om_end_session_endpoint,
		    strchr(m->om_end_session_endpoint, '?') ? '&' : '?');
		{
			char *e = httpc_url_escape(cfg->cf_client_id);

			evbuffer_add_printf(loc, "%s", e != NULL ? e : "");
			free(e);
		}
		/* Both hints: id_token_hint is the standard one (OpenID
		 * Connect RP-Initiated Logout; providers use it to find the
		 * session and to trust post_logout_redirect_uri), and
		 * logout_hint is the one Entra documents, which lets it skip
		 * the account picker; its value must be the ID token's
		 * login_hint claim (an optional claim the app registration
		 * adds), so it is sent only when that claim is there.  A
		 * provider ignores the parameter it does not know. */
		if (s != NULL && s->se_idtoken.len > 0)
			oidc_logout_param(loc, "id_token_hint",
			    (const char *)s->se_idtoken.buf);
		if (s != NULL)
			hint = json_string_value(
			    json_object_get(session_claims(s), "login_hint"));
		if (hint != NULL && hint[0] != '\0')
			oidc_logout_param(loc, "logout_hint", hint);
		if (abs != NULL)
			oidc_logout_param(loc, "post_logout_redirect_uri", abs);
	} else if (target != NULL)
		evbuffer_add_printf(loc, "%s", target);
	else {
		abs = oidc_logout_default_target(cfg, 0);
		if (abs == NULL)
			goto fail;
		evbuffer_add_printf(loc, "%s", abs);
	}
	evbuffer_add(loc, "", 1);
	resp_hdrs_add(out, "Location", (const char *)evbuffer_pullup(loc, -1));
	resp_hdrs_add(out, "Cache-Control", "no-store");
	resp_hdrs_add(out, "Referrer-Policy", "no-referrer");
	log_info("logout id=%s user=\"%s\" provider=%s%s", rq->rq_id, user,
	    m != NULL && m->om_end_session_endpoint != NULL ? "yes" : "no",
	    sw ? " switch_account=yes" : "");
	evbuffer_free(loc);
	free(abs);
	evhttp_clear_headers(&q);
	request_reply(rq, 302, "Found", NULL);
	return;
fail:
	if (loc != NULL)
		evbuffer_free(loc);
	free(abs);
	evhttp_clear_headers(&q);
	errpage_send(rq, 500, "internal", "Out of memory.", 0);
}

/* Security: a sign-out that could not end the session in the store says
 * so, and keeps the cookie, so that trying again can; a "you are signed
 * out" over a record left behind would let a copied cookie work on. */
static void
oidc_logout_deleted(struct request_ctx *rq, enum session_result r)
{
	if (r != SESSION_OK) {
		rq->rq_event = "logout";
		resp_hdrs_add(request_out(rq), "Retry-After", "5");
		errpage_send(rq, 503, "store_unavailable",
		    "You could not be signed out: the session store is "
		    "unreachable. Please try again in a moment.",
		    0);
		return;
	}
	/* The session is gone here: its refresh token goes too, at the
	 * provider, in the background (the browser does not wait). */
	if (rq->rq_session != NULL)
		oidc_revoke_start(rq, &rq->rq_session->se_refresh);
	oidc_logout_finish(rq);
}

static void
oidc_logout_deleted_cb(void *arg, enum session_result r)
{
	struct request_ctx *rq = request_cast(arg);

	rq->rq_store_op = NULL;
	oidc_logout_deleted(rq, r);
}

/* The session is loaded (or not): delete it, then finish. */
static void
oidc_logout_loaded(struct request_ctx *rq)
{
	struct session *s = rq->rq_session;
	enum session_result r;

	if (rq->rq_store_failed) {
		oidc_logout_deleted(rq, SESSION_UNAVAIL);
		return;
	}
	if (s == NULL) {
		oidc_logout_finish(rq);
		return;
	}
	/* The ID token, for id_token_hint, before the record goes. */
	(void)session_open_tokens(s);
	r = session_delete_start(rq->rq_worker->w_reader, s,
	    oidc_logout_deleted_cb, rq, &rq->rq_store_op);
	if (r == SESSION_PENDING) {
		rq->rq_state = RQ_STORE;
		return;
	}
	oidc_logout_deleted(rq, r);
}

void
oidc_logout(struct request_ctx *rq)
{
	struct evkeyvalq q;
	const char *target;
	int sw;

	rq->rq_event = "logout";
	if (strcmp(rq->rq_method, "GET") != 0 &&
	    strcmp(rq->rq_method, "POST") != 0) {
		errpage_send(rq, 405, "method_not_allowed",
		    "Sign-out takes GET or POST.", 0);
		return;
	}
	if (!oidc_logout_same_origin(rq)) {
		/* A cross-site GET is answered with the question; a
		 * cross-site POST is refused, with the same button. */
		target = oidc_logout_params(rq, &q, &sw);
		oidc_logout_confirm(rq, target, sw,
		    strcmp(rq->rq_method, "GET") == 0 ? 200 : 403);
		evhttp_clear_headers(&q);
		return;
	}
	oidc_session_load(rq, oidc_logout_loaded);
}
