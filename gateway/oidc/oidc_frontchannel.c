/* SPDX-License-Identifier: ISC */
/*
 * oidc_frontchannel.c: GET /.auth/frontchannel-logout (OpenID Connect
 * Front-Channel Logout 1.0, Entra's "Front-channel logout URL"): the
 * provider's signed-out page loads it in an iframe; with iss and sid the
 * sessions of that sid end, without them the session of the cookie sent
 * (if the browser sends one).  Answers a small page only the provider may
 * frame.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/config.h"
#include "core/log.h"
#include "core/magic.h"
#include "http/errpage.h"
#include "http/request.h"
#include "http/resp_hdrs.h"
#include "http/worker.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "session/cookie.h"
#include "session/session.h"

#define OIDC_FCL_SID_MAX 256
#define OIDC_FCL_ORIGIN_MAX 300

/*
 * The origin (scheme://host[:port]) of url into out, or "" when url is no
 * http(s) URL with a plain host: only such text reaches the CSP header
 * (the metadata comes from the provider, which is input like any other).
 */
static void
oidc_fcl_origin(const char *url, char *out, size_t size)
{
	const char *host, *p;
	size_t n;

	out[0] = '\0';
	if (url == NULL)
		return;
	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return;
	p = host;
	while (isalnum((unsigned char)p[0]) || p[0] == '.' || p[0] == '-' ||
	    p[0] == ':' || p[0] == '[' || p[0] == ']')
		p++;
	if (p == host || (p[0] != '\0' && p[0] != '/' && p[0] != '?'))
		return;
	n = (size_t)(p - url);
	if (n >= size)
		return;
	memcpy(out, url, n);
	out[n] = '\0';
}

/* The page, framed only by the provider's origin(s): its issuer's and its
 * end_session_endpoint's.  Finishes the request. */
static void
oidc_fcl_page(struct request_ctx *rq)
{
	const struct oidc_meta *m = oidc_configured(rq->rq_cfg)
	    ? oidc_provider_meta(rq->rq_gen->wg_provider)
	    : NULL;
	struct resp_hdrs *out = request_out(rq);
	char a[OIDC_FCL_ORIGIN_MAX], b[OIDC_FCL_ORIGIN_MAX];
	char csp[2 * OIDC_FCL_ORIGIN_MAX + 32];
	struct evbuffer *body = evbuffer_new();

	oidc_fcl_origin(m != NULL ? m->om_issuer : NULL, a, sizeof(a));
	oidc_fcl_origin(
	    m != NULL ? m->om_end_session_endpoint : NULL, b, sizeof(b));
	if (strcmp(a, b) == 0)
		b[0] = '\0';
	if (a[0] == '\0' && b[0] == '\0')
		snprintf(csp, sizeof(csp), "frame-ancestors 'none'");
	else
		snprintf(csp, sizeof(csp), "frame-ancestors %s%s%s", a,
		    a[0] != '\0' && b[0] != '\0' ? " " : "", b);
	resp_hdrs_add(out, "Content-Type", "text/html; charset=utf-8");
	resp_hdrs_add(out, "Cache-Control", "no-store");
	resp_hdrs_add(out, "Content-Security-Policy", csp);
	resp_hdrs_add(out, "Referrer-Policy", "no-referrer");
	resp_hdrs_add(out, "X-Content-Type-Options", "nosniff");
	if (body != NULL)
		evbuffer_add_printf(body,
		    "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
		    "<title>Signed out</title></head><body><p>Signed out."
		    "</p></body></html>\n");
	request_reply(rq, 200, "OK", body);
	if (body != NULL)
		evbuffer_free(body);
}

/* The store's answer for a sid: logged; the page either way (the
 * provider does not act on it). */
static void
oidc_fcl_ended(struct request_ctx *rq, enum session_result r, size_t ended)
{
	if (r == SESSION_OK)
		log_info("frontchannel_logout id=%s result=ok by=sid ended=%zu",
		    rq->rq_id, ended);
	else
		log_warnx("frontchannel_logout id=%s result=store_error "
		          "by=sid: the sessions may not have ended",
		    rq->rq_id);
	oidc_fcl_page(rq);
}

#define OIDC_FCL_MAGIC 0x46434c47u /* "FCLG" */

/* A sid's end under way (Redis): the count the store sets, and the call. */
struct oidc_fcl {
	uint32_t fl_magic;
	struct request_ctx *fl_rq;
	size_t fl_ended;
	struct session_op *fl_op;
};

static struct oidc_fcl *
oidc_fcl_cast(void *arg)
{
	return MAGIC_CAST(struct oidc_fcl, fl_magic, OIDC_FCL_MAGIC, arg);
}

static void
oidc_fcl_cleanup(void *arg)
{
	struct oidc_fcl *fl = oidc_fcl_cast(arg);

	session_op_cancel(fl->fl_op);
	fl->fl_op = NULL;
	fl->fl_magic = 0;
	free(fl);
}

static void
oidc_fcl_ended_cb(void *arg, enum session_result r)
{
	struct oidc_fcl *fl = oidc_fcl_cast(arg);

	fl->fl_op = NULL;
	oidc_fcl_ended(fl->fl_rq, r, fl->fl_ended);
}

/* With iss and sid: end the sid's sessions, whoever's browser asks. */
static void
oidc_fcl_by_sid(struct request_ctx *rq, const char *iss, const char *sid)
{
	struct oidc_fcl *fl;
	enum session_result r;

	fl = calloc(1, sizeof(*fl));
	if (fl == NULL) {
		oidc_fcl_ended(rq, SESSION_ERR, 0);
		return;
	}
	fl->fl_magic = OIDC_FCL_MAGIC;
	fl->fl_rq = rq;
	request_cleanup_add(rq, oidc_fcl_cleanup, fl);
	r = session_end_start(rq->rq_worker->w_reader, SESSION_TAG_SID, iss,
	    sid, &fl->fl_ended, oidc_fcl_ended_cb, fl, &fl->fl_op);
	if (r == SESSION_PENDING) {
		rq->rq_state = RQ_STORE;
		return;
	}
	oidc_fcl_ended(rq, r, fl->fl_ended);
}

static void
oidc_fcl_deleted_cb(void *arg, enum session_result r)
{
	struct request_ctx *rq = request_cast(arg);

	rq->rq_store_op = NULL;
	log_info("frontchannel_logout id=%s result=%s by=cookie", rq->rq_id,
	    r == SESSION_OK || r == SESSION_NONE ? "ok" : "store_error");
	oidc_fcl_page(rq);
}

/* Without sid: the cookie's session, if the browser sent one. */
static void
oidc_fcl_loaded(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	enum session_result r;

	if (rq->rq_session == NULL) {
		log_info("frontchannel_logout id=%s result=none by=cookie",
		    rq->rq_id);
		oidc_fcl_page(rq);
		return;
	}
	cookie_set(
	    request_out(rq), cfg, cfg->cf_cookie_name, "", 0, COOKIE_LAX);
	r = session_delete_start(rq->rq_worker->w_reader, rq->rq_session,
	    oidc_fcl_deleted_cb, rq, &rq->rq_store_op);
	if (r == SESSION_PENDING) {
		rq->rq_state = RQ_STORE;
		return;
	}
	oidc_fcl_deleted_cb(rq, r);
}

/*
 * Whether a request without sid is a navigation another site started in
 * the top-level window (a link, a redirect): then it is not carried out.
 * Security: such a navigation carries the SameSite=Lax cookie, so any
 * site could otherwise sign its visitors out here with a link (the
 * provider's iframe is a subresource: Sec-Fetch-Dest iframe).
 */
static int
oidc_fcl_cross_site_navigation(struct request_ctx *rq)
{
	const char *site = request_header(rq, "Sec-Fetch-Site");
	const char *dest = request_header(rq, "Sec-Fetch-Dest");

	return site != NULL && strcmp(site, "cross-site") == 0 &&
	    (dest == NULL || strcmp(dest, "document") == 0);
}

void
oidc_frontchannel_logout(struct request_ctx *rq)
{
	const struct oidc_meta *m;
	struct evkeyvalq q;
	const char *query, *iss, *sid;

	rq->rq_event = "frontchannel_logout";
	if (strcmp(rq->rq_method, "GET") != 0 &&
	    strcmp(rq->rq_method, "HEAD") != 0) {
		resp_hdrs_add(request_out(rq), "Allow", "GET");
		errpage_send(rq, 405, "method_not_allowed",
		    "Front-channel logout takes GET.", 0);
		return;
	}
	if (!oidc_configured(rq->rq_cfg) || rq->rq_worker->w_reader == NULL) {
		oidc_fcl_page(rq);
		return;
	}
	query = strchr(rq->rq_path, '?');
	if (oidc_params_parse(query != NULL ? query + 1 : NULL, &q, NULL) == -1)
		TAILQ_INIT(&q);
	iss = evhttp_find_header(&q, "iss");
	sid = evhttp_find_header(&q, "sid");
	m = oidc_provider_meta(rq->rq_gen->wg_provider);
	if (sid != NULL) {
		/* Security: only the provider's own sid ends anything; a
		 * wrong or missing iss is ignored (nothing ends) so that
		 * another issuer's sid can never name our sessions. */
		if (m == NULL || iss == NULL ||
		    strcmp(iss, m->om_issuer) != 0 || sid[0] == '\0' ||
		    strlen(sid) > OIDC_FCL_SID_MAX) {
			log_info("frontchannel_logout id=%s result=ignored "
			         "reason=\"%s\"",
			    rq->rq_id,
			    m == NULL ? "no provider metadata"
			              : "iss is not the provider's issuer");
			evhttp_clear_headers(&q);
			oidc_fcl_page(rq);
			return;
		}
		oidc_fcl_by_sid(rq, m->om_issuer, sid);
		evhttp_clear_headers(&q);
		return;
	}
	evhttp_clear_headers(&q);
	if (oidc_fcl_cross_site_navigation(rq)) {
		log_info("frontchannel_logout id=%s result=ignored "
		         "reason=\"cross-site navigation without sid\"",
		    rq->rq_id);
		oidc_fcl_page(rq);
		return;
	}
	oidc_session_load(rq, oidc_fcl_loaded);
}
