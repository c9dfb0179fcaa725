/* SPDX-License-Identifier: ISC */
/*
 * endpoints.c: gatehouse's own small endpoints under the auth prefix:
 * /.auth/me (who is signed in; easyauth.c's shape with me_format =
 * easyauth), /.auth/refresh (refresh the tokens now),
 * /.auth/healthz (liveness) and /.auth/readyz (readiness).  Sign-in and
 * sign-out are oidc_*.c's, /.auth/verify forward_auth.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "core/config.h"
#include "core/log.h"
#include "http/errpage.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/oidc.h"
#include "route/easyauth.h"
#include "route/endpoints.h"
#include "session/identity.h"
#include "session/session.h"

void
endpoints_healthz(struct request_ctx *rq)
{
	struct resp_hdrs *out = request_out(rq);
	struct evbuffer *body = evbuffer_new();

	rq->rq_event = "healthz";
	resp_hdrs_add(out, "Content-Type", "application/json");
	resp_hdrs_add(out, "Cache-Control", "no-store");
	if (body != NULL)
		evbuffer_add_printf(body, "{\"status\":\"ok\"}\n");
	request_reply(rq, 200, "OK", body);
	evbuffer_free(body);
}

void
endpoints_readyz(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	struct resp_hdrs *out = request_out(rq);
	struct evbuffer *body = evbuffer_new();
	char why[160], reason[256];
	char *text = NULL;
	json_t *doc;
	int provider = 1, store = 1;

	rq->rq_event = "readyz";
	why[0] = reason[0] = '\0';
	if (oidc_configured(cfg)) {
		provider = oidc_provider_ready(
		    rq->rq_gen->wg_provider, why, sizeof(why));
		store = session_store_ready(rq->rq_worker->w_reader);
	}
	/* Which part is not ready, in words a person reads in `kubectl
	 * describe`; the log says the details (URLs, the system's words). */
	snprintf(reason, sizeof(reason), "%s%s%s", why,
	    !store && !provider ? "; " : "",
	    store ? "" : "session_store: not answering");
	doc = json_pack("{s:s, s:s, s:s}", "status",
	    provider && store ? "ready" : "unavailable", "provider",
	    !oidc_configured(cfg) ? "none"
	        : provider        ? "ok"
	                          : "unavailable",
	    "session_store", store ? "ok" : "unavailable");
	if (doc != NULL && !(provider && store))
		json_object_set_new(doc, "reason", json_string(reason));
	if (doc != NULL)
		text = json_dumps(doc, JSON_COMPACT);
	resp_hdrs_add(out, "Content-Type", "application/json");
	resp_hdrs_add(out, "Cache-Control", "no-store");
	if (body != NULL && text != NULL)
		evbuffer_add_printf(body, "%s\n", text);
	free(text);
	json_decref(doc);
	if (provider && store)
		request_reply(rq, 200, "OK", body);
	else
		request_reply(rq, 503, "Service Unavailable", body);
	evbuffer_free(body);
}

static void
endpoints_json_reply(struct request_ctx *rq, int status, json_t *doc)
{
	struct resp_hdrs *out = request_out(rq);
	struct evbuffer *body = evbuffer_new();
	char *text = json_dumps(doc, JSON_INDENT(2));

	resp_hdrs_add(out, "Content-Type", "application/json");
	resp_hdrs_add(out, "Cache-Control", "no-store");
	if (body != NULL && text != NULL) {
		evbuffer_add_printf(body, "%s\n", text);
		OPENSSL_cleanse(text, strlen(text));
	}
	free(text);
	request_reply(rq, status, status == 200 ? "OK" : "Error", body);
	evbuffer_free(body);
}

/* gatehouse's own shape of /.auth/me: one object, the claims as they
 * are.  A new reference, or NULL. */
static json_t *
endpoints_me_doc(const struct config *cfg, struct session *s)
{
	json_t *doc;
	char exp[32], at[32];

	identity_iso_time(s->se_expires, exp, sizeof(exp));
	doc = json_pack("{s:s,s:s,s:O?,s:s}", "provider_name", "aad", "user_id",
	    identity_user(session_claims(s)), "user_claims", session_claims(s),
	    "session_expires_on", exp);
	if (doc != NULL && s->se_at_expires != 0) {
		identity_iso_time(s->se_at_expires, at, sizeof(at));
		json_object_set_new(doc, "expires_on", json_string(at));
	}
	if (doc != NULL && cfg->cf_me_includes_tokens &&
	    session_open_tokens(s) == 0 && s->se_access.len > 0)
		json_object_set_new(doc, "access_token",
		    json_stringn(
		        (const char *)s->se_access.buf, s->se_access.len));
	return doc;
}

static void
endpoints_me_loaded(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	struct session *s;
	json_t *doc;

	if (rq->rq_store_failed) {
		oidc_store_unavailable(rq);
		return;
	}
	/* Signed out: 401 in either shape, as Easy Auth answers too. */
	if (rq->rq_session == NULL) {
		resp_hdrs_add(request_out(rq), "WWW-Authenticate",
		    "Bearer realm=\"gatehouse\"");
		errpage_send(rq, 401, "unauthenticated", "Not signed in.", 0);
		return;
	}
	s = rq->rq_session;
	/* A session whose claims cannot be read (its cold part lost) is no
	 * session to show. */
	if (session_claims(s) == NULL) {
		errpage_send(rq, 401, "unauthenticated", "Not signed in.", 0);
		return;
	}
	doc = cfg->cf_me_format == EASYAUTH_ME_EASYAUTH
	    ? easyauth_me_doc(s, cfg->cf_me_includes_tokens)
	    : endpoints_me_doc(cfg, s);
	if (doc == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	endpoints_json_reply(rq, 200, doc);
	json_decref(doc);
}

void
endpoints_me(struct request_ctx *rq)
{
	rq->rq_event = "me";
	oidc_session_load(rq, endpoints_me_loaded);
}

static void
endpoints_refresh_done(struct request_ctx *rq)
{
	json_t *doc;
	char at[32];

	if (rq->rq_store_failed) {
		oidc_store_unavailable(rq);
		return;
	}
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
	identity_iso_time(rq->rq_session->se_at_expires, at, sizeof(at));
	doc = json_pack("{s:s}", "expires_on", at);
	endpoints_json_reply(rq, 200, doc);
	json_decref(doc);
}

static void
endpoints_refresh_loaded(struct request_ctx *rq)
{
	if (rq->rq_store_failed) {
		oidc_store_unavailable(rq);
		return;
	}
	if (rq->rq_session == NULL) {
		errpage_send(rq, 401, "unauthenticated", "Not signed in.", 0);
		return;
	}
	switch (oidc_refresh_ensure(rq, 1, endpoints_refresh_done)) {
	case STEP_AGAIN:
		return;
	case STEP_ERROR:
		return;
	default:
		errpage_send(rq, 502, "refresh_failed",
		    "The tokens could not be refreshed.", 0);
	}
}

void
endpoints_refresh(struct request_ctx *rq)
{
	rq->rq_event = "refresh";
	/* GET as Easy Auth's clients send it, from this site's own pages
	 * only (easyauth.c says why and how that is told). */
	if (strcmp(rq->rq_method, "GET") == 0) {
		if (!easyauth_refresh_get_allowed(rq)) {
			log_info("refresh id=%s result=refused reason=\"GET "
			         "not from this site\" client=%s",
			    rq->rq_id, rq->rq_peer);
			errpage_send(rq, 403, "cross_site_refresh",
			    "A refresh by GET must come from this site's own "
			    "pages; use POST otherwise.",
			    0);
			return;
		}
	} else if (strcmp(rq->rq_method, "POST") != 0) {
		errpage_send(rq, 405, "method_not_allowed",
		    "Use POST (or GET from this site's pages) to refresh.", 0);
		return;
	}
	oidc_session_load(rq, endpoints_refresh_loaded);
}
