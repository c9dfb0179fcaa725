/* SPDX-License-Identifier: ISC */
/*
 * oidc_backchannel.c: POST /.auth/backchannel-logout (OpenID Connect
 * Back-Channel Logout 1.0): the provider posts a logout token, a JWT
 * verified like an ID token (jose_verify, the provider's keys and algs)
 * plus its own rules, and every session of its sid (or of its sub) ends,
 * on every worker and every replica sharing the store.
 */
#include <sys/queue.h>

#include <stdint.h>
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
#include "core/error.h"
#include "core/log.h"
#include "core/magic.h"
#include "http/request.h"
#include "http/resp_hdrs.h"
#include "http/worker.h"
#include "oidc/jose.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "session/session.h"

/* A logout token is one JWT (JOSE_MAX_JWT at most) in a form: anything
 * larger is not one, and is refused before it is held whole. */
#define OIDC_BCL_BODY_MAX (32 * 1024)
#define OIDC_BCL_EVENT "http://schemas.openid.net/event/backchannel-logout"
#define OIDC_BCL_VALUE_MAX 256     /* sid, sub and jti: longer is refused */
#define OIDC_BCL_MAGIC 0x42434c47u /* "BCLG" */

/* One logout token being acted on (the request's, freed with it). */
struct oidc_bcl {
	uint32_t bl_magic;
	struct request_ctx *bl_rq;
	json_t *bl_claims;                 /* the verified payload (new) */
	struct session_op *bl_op;          /* store call under way */
	struct oidc_provider *bl_provider; /* waited on for keys */
	size_t bl_ended; /* sessions ended (set by the store) */
};

static struct oidc_bcl *
oidc_bcl_cast(void *arg)
{
	return MAGIC_CAST(struct oidc_bcl, bl_magic, OIDC_BCL_MAGIC, arg);
}

static void
oidc_bcl_cleanup(void *arg)
{
	struct oidc_bcl *bl = oidc_bcl_cast(arg);

	if (bl->bl_provider != NULL)
		oidc_provider_unwait(bl->bl_provider, bl);
	session_op_cancel(bl->bl_op);
	bl->bl_op = NULL;
	json_decref(bl->bl_claims);
	bl->bl_claims = NULL;
	bl->bl_magic = 0;
	free(bl);
}

/*
 * The answer to the provider: 200 with an empty body, or 400 with the
 * JSON error the specification names (description: fixed words, never
 * anything from the token).  Both no-store.  Finishes the request.
 */
static void
oidc_bcl_reply(struct request_ctx *rq, int status, const char *why)
{
	struct resp_hdrs *out = request_out(rq);
	struct evbuffer *body = NULL;

	resp_hdrs_add(out, "Cache-Control", "no-store");
	if (status != 200) {
		log_info(
		    "backchannel_logout id=%s result=refused reason=\"%s\" "
		    "client=%s",
		    rq->rq_id, why, rq->rq_peer);
		body = evbuffer_new();
		resp_hdrs_add(out, "Content-Type", "application/json");
		if (status == 405)
			resp_hdrs_add(out, "Allow", "POST");
		if (body != NULL)
			evbuffer_add_printf(body,
			    "{\"error\":\"%s\",\"error_description\":\"%s\"}\n",
			    status == 503 ? "temporarily_unavailable"
			                  : "invalid_request",
			    why);
	}
	request_reply(rq, status,
	    status == 200       ? "OK"
	        : status == 405 ? "Method Not Allowed"
	        : status == 503 ? "Service Unavailable"
	                        : "Bad Request",
	    body);
	if (body != NULL)
		evbuffer_free(body);
}

static void
oidc_bcl_body_failed(struct request_ctx *rq, int status)
{
	if (status == 503) {
		resp_hdrs_add(request_out(rq), "Retry-After", "5");
		oidc_bcl_reply(rq, 503, "the gateway is busy");
		return;
	}
	rq->rq_close = 1; /* the rest of the body is not read */
	oidc_bcl_reply(rq, 400,
	    status == 413 ? "the request body is too large"
	                  : "the request body is malformed");
}

/* The ends of the steps below. */
static void
oidc_bcl_ended(struct oidc_bcl *bl, enum session_result r)
{
	struct request_ctx *rq = bl->bl_rq;

	if (r != SESSION_OK) {
		/* The jti is spent: the provider's retry of this token is
		 * refused as a replay (see SECURITY.md). */
		resp_hdrs_add(request_out(rq), "Retry-After", "5");
		oidc_bcl_reply(rq, 503, "the session store is unavailable");
		return;
	}
	log_info("backchannel_logout id=%s result=ok by=%s ended=%zu "
	         "client=%s",
	    rq->rq_id,
	    jose_claim_get(bl->bl_claims, "sid") != NULL ? "sid" : "sub",
	    bl->bl_ended, rq->rq_peer);
	oidc_bcl_reply(rq, 200, NULL);
}

static void
oidc_bcl_ended_cb(void *arg, enum session_result r)
{
	struct oidc_bcl *bl = oidc_bcl_cast(arg);

	bl->bl_op = NULL;
	oidc_bcl_ended(bl, r);
}

/* The jti is new: end the sessions.  Both sid and sub: the sid names the
 * session, so only its sessions end (the specification's reading). */
static void
oidc_bcl_once(struct oidc_bcl *bl, enum session_result r)
{
	struct request_ctx *rq = bl->bl_rq;
	const char *iss = jose_claim_get(bl->bl_claims, "iss");
	const char *sid = jose_claim_get(bl->bl_claims, "sid");
	const char *sub = jose_claim_get(bl->bl_claims, "sub");

	if (r == SESSION_BUSY) {
		oidc_bcl_reply(rq, 400, "the logout token was used before");
		return;
	}
	if (r != SESSION_OK) {
		resp_hdrs_add(request_out(rq), "Retry-After", "5");
		oidc_bcl_reply(rq, 503, "the session store is unavailable");
		return;
	}
	r = session_end_start(rq->rq_worker->w_reader,
	    sid != NULL ? SESSION_TAG_SID : SESSION_TAG_SUB, iss,
	    sid != NULL ? sid : sub, &bl->bl_ended, oidc_bcl_ended_cb, bl,
	    &bl->bl_op);
	if (r == SESSION_PENDING) {
		rq->rq_state = RQ_STORE;
		return;
	}
	oidc_bcl_ended(bl, r);
}

static void
oidc_bcl_once_cb(void *arg, enum session_result r)
{
	struct oidc_bcl *bl = oidc_bcl_cast(arg);

	bl->bl_op = NULL;
	oidc_bcl_once(bl, r);
}

/* A string claim that, when present, must be a non-empty string of at
 * most OIDC_BCL_VALUE_MAX bytes: 0 (absent or good) or -1. */
static int
oidc_bcl_value(const json_t *claims, const char *name)
{
	json_t *v = json_object_get(claims, name);
	size_t n;

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return -1;
	n = json_string_length(v);
	return n > 0 && n <= OIDC_BCL_VALUE_MAX ? 0 : -1;
}

/*
 * The rules of a logout token beyond an ID token's (Back-Channel Logout
 * 1.0, 2.4 and 2.6): NULL when claims pass, else why not.  Security: an
 * ID token of this client, validly signed, must never pass for a logout
 * token: it has a nonce and no events, so it is refused here.
 */
static const char *
oidc_bcl_rules(const json_t *claims)
{
	json_t *events = json_object_get(claims, "events");

	if (!json_is_object(events))
		return "the logout token has no events claim";
	if (!json_is_object(json_object_get(events, OIDC_BCL_EVENT)))
		return "the logout token's events lack the back-channel logout "
		       "event";
	if (json_object_get(claims, "nonce") != NULL)
		return "the logout token has a nonce";
	if (oidc_bcl_value(claims, "sid") == -1 ||
	    oidc_bcl_value(claims, "sub") == -1)
		return "the logout token's sid or sub is not a short string";
	if (json_object_get(claims, "sid") == NULL &&
	    json_object_get(claims, "sub") == NULL)
		return "the logout token has neither sid nor sub";
	if (json_object_get(claims, "jti") == NULL ||
	    oidc_bcl_value(claims, "jti") == -1)
		return "the logout token has no usable jti";
	return NULL;
}

/*
 * How long the jti must be remembered: as long as the token could pass,
 * its exp (or, without one, its iat plus the age allowed) plus the skew.
 */
static time_t
oidc_bcl_keep_until(const json_t *claims, const struct config *cfg)
{
	json_t *exp = json_object_get(claims, "exp");
	json_t *iat = json_object_get(claims, "iat");
	double t = json_is_number(iat) ? json_number_value(iat) : 0;

	t += cfg->cf_clock_skew + 1;
	if (json_is_number(exp) && json_number_value(exp) > t)
		t = json_number_value(exp);
	t += cfg->cf_clock_skew;
	if (t > (double)INT64_MAX / 2)
		t = (double)INT64_MAX / 2;
	return (time_t)t;
}

static void oidc_bcl_verify(struct oidc_bcl *bl, const char *tok, int retried);

/* The logout token of the form (borrowed from q), or NULL. */
static const char *
oidc_bcl_token(struct request_ctx *rq, struct evkeyvalq *q)
{
	static const char *const unique[] = {"logout_token", NULL};
	struct evbuffer *in = request_body(rq);
	size_t len = in != NULL ? evbuffer_get_length(in) : 0;
	char *body;
	int rc;

	TAILQ_INIT(q);
	body = malloc(len + 1);
	if (body == NULL)
		return NULL;
	if (len > 0)
		evbuffer_copyout(in, body, len);
	body[len] = '\0';
	rc = strlen(body) == len ? oidc_params_parse(body, q, unique) : -1;
	OPENSSL_cleanse(body, len);
	free(body);
	if (rc == -1)
		return NULL;
	return evhttp_find_header(q, "logout_token");
}

static void
oidc_bcl_jwks_cb(void *arg, int fresh)
{
	struct oidc_bcl *bl = oidc_bcl_cast(arg);
	struct request_ctx *rq = bl->bl_rq;
	struct evkeyvalq q;
	const char *tok;

	bl->bl_provider = NULL;
	if (!fresh) {
		oidc_bcl_reply(
		    rq, 400, "the logout token is signed with an unknown key");
		return;
	}
	tok = oidc_bcl_token(rq, &q);
	if (tok == NULL)
		oidc_bcl_reply(rq, 400, "the logout_token field is missing");
	else
		oidc_bcl_verify(bl, tok, 1);
	evhttp_clear_headers(&q);
}

static void
oidc_bcl_verify(struct oidc_bcl *bl, const char *tok, int retried)
{
	struct request_ctx *rq = bl->bl_rq;
	const struct config *cfg = rq->rq_cfg;
	struct oidc_provider *op = rq->rq_gen->wg_provider;
	const struct oidc_meta *m = oidc_provider_meta(op);
	const char *why;
	struct jose_check chk;
	struct gh_error err;
	enum jose_result jr;
	enum session_result r;
	char what[600];
	int n;

	if (m == NULL) {
		resp_hdrs_add(request_out(rq), "Retry-After", "5");
		oidc_bcl_reply(rq, 503, "the identity provider is unreachable");
		return;
	}
	memset(&err, 0, sizeof(err));
	oidc_id_token_check(&chk, cfg, m);
	/* iat within the clock skew of now, either way (the least age
	 * jose takes is 1 s, added to the skew). */
	chk.jc_require_iat = 1;
	chk.jc_max_iat_age = 1;
	chk.jc_exp_optional = 1;
	chk.jc_sub_optional = 1;
	jr = jose_verify(
	    tok, oidc_provider_jwks(op), &chk, &bl->bl_claims, &err);
	if (jr == JOSE_KID_UNKNOWN && !retried &&
	    oidc_provider_jwks_refetch(op, oidc_bcl_jwks_cb, bl) == 0) {
		bl->bl_provider = op;
		return; /* parked until the new key set is in */
	}
	if (jr != JOSE_OK) {
		oidc_bcl_reply(rq, 400,
		    err.ge_code != NULL ? err.ge_code : "invalid logout token");
		return;
	}
	why = oidc_bcl_rules(bl->bl_claims);
	if (why != NULL) {
		oidc_bcl_reply(rq, 400, why);
		return;
	}
	/* Replay: each jti once, for as long as the token could pass,
	 * recorded in the store so that replicas sharing it agree. */
	n = snprintf(what, sizeof(what), "bcl-jti %s %s", m->om_issuer,
	    jose_claim_get(bl->bl_claims, "jti"));
	if (n < 0 || (size_t)n >= sizeof(what)) {
		oidc_bcl_reply(
		    rq, 400, "the logout token's issuer is too long");
		return;
	}
	r = session_once_start(rq->rq_worker->w_reader, what, (size_t)n,
	    oidc_bcl_keep_until(bl->bl_claims, cfg), oidc_bcl_once_cb, bl,
	    &bl->bl_op);
	if (r == SESSION_PENDING) {
		rq->rq_state = RQ_STORE;
		return;
	}
	oidc_bcl_once(bl, r);
}

void
oidc_backchannel_logout(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	struct oidc_bcl *bl;
	struct evkeyvalq q;
	const char *ct, *tok;

	rq->rq_event = "backchannel_logout";
	if (strcmp(rq->rq_method, "POST") != 0) {
		oidc_bcl_reply(rq, 405, "back-channel logout takes POST");
		return;
	}
	if (!oidc_configured(cfg) || rq->rq_worker->w_reader == NULL) {
		oidc_bcl_reply(rq, 400, "sign-in is not configured here");
		return;
	}
	ct = request_header(rq, "Content-Type");
	if (ct == NULL ||
	    strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    (ct[33] != '\0' && ct[33] != ';' && ct[33] != ' ')) {
		rq->rq_close = 1;
		oidc_bcl_reply(rq, 400,
		    "the body must be application/x-www-form-urlencoded");
		return;
	}
	if (request_body_read(rq, OIDC_BCL_BODY_MAX, oidc_backchannel_logout,
	        oidc_bcl_body_failed) == 1)
		return;
	tok = oidc_bcl_token(rq, &q);
	if (tok == NULL || tok[0] == '\0') {
		evhttp_clear_headers(&q);
		oidc_bcl_reply(rq, 400, "the logout_token field is missing");
		return;
	}
	bl = calloc(1, sizeof(*bl));
	if (bl == NULL) {
		evhttp_clear_headers(&q);
		oidc_bcl_reply(rq, 503, "out of memory");
		return;
	}
	bl->bl_magic = OIDC_BCL_MAGIC;
	bl->bl_rq = rq;
	request_cleanup_add(rq, oidc_bcl_cleanup, bl);
	oidc_bcl_verify(bl, tok, 0);
	evhttp_clear_headers(&q);
}
