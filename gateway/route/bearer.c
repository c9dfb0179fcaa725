/* SPDX-License-Identifier: ISC */
/* bearer.c: access tokens on API routes (RFC 6750). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "core/config.h"
#include "core/log.h"
#include "http/errpage.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/jose.h"
#include "oidc/oidc.h"
#include "policy.h"
#include "route/bearer.h"
#include "route/forward_auth.h"
#include "route/proxy.h"
#include "session/identity.h"

#define BEARER_MAX 16384

static void bearer_verify(struct request_ctx *rq, int retried);
static void bearer_log_user(struct request_ctx *rq, const json_t *claims);

static void
bearer_refuse(
    struct request_ctx *rq, int status, const char *error, const char *why)
{
	struct resp_hdrs *out = request_out(rq);
	char hdr[256], buf[200];

	rq->rq_event = "bearer";
	if (error == NULL)
		snprintf(hdr, sizeof(hdr), "Bearer realm=\"gatehouse\"");
	else
		snprintf(hdr, sizeof(hdr),
		    "Bearer realm=\"gatehouse\", "
		    "error=\"%s\"",
		    error);
	resp_hdrs_add(out, "WWW-Authenticate", hdr);
	log_info("bearer id=%s result=%s reason=\"%s\"", rq->rq_id,
	    error != NULL ? error : "missing",
	    log_sanitize(buf, sizeof(buf), why));
	/* An API answer: JSON whatever the Accept header says. */
	rq->rq_json = 1;
	errpage_send(rq, status,
	    status == 401 ? (error ? "invalid_token" : "unauthenticated")
	                  : "insufficient_scope",
	    status == 401 ? "A valid bearer token is required."
	                  : "The token does not grant access to this route.",
	    0);
}

static const char *
bearer_token(struct request_ctx *rq)
{
	const char *a = request_header(rq, "Authorization");

	if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
		return NULL;
	a += 7;
	while (*a == ' ')
		a++;
	return *a != '\0' && strlen(a) <= BEARER_MAX ? a : NULL;
}

static void
bearer_jwks_cb(void *arg, int fresh)
{
	struct request_ctx *rq = request_cast(arg);

	if (!fresh) {
		bearer_refuse(rq, 401, "invalid_token", "kid_unknown");
		return;
	}
	bearer_verify(rq, 1);
}

static void
bearer_verify(struct request_ctx *rq, int retried)
{
	const struct config *cfg = rq->rq_cfg;
	struct oidc_provider *op = rq->rq_gen->wg_provider;
	const struct oidc_meta *m = oidc_provider_meta(op);
	struct jose_check chk;
	struct gh_error err;
	json_t *claims = NULL;
	enum jose_result jr;
	enum policy_verdict v;
	const char *tok = bearer_token(rq);
	char why[300];

	if (m == NULL) {
		errpage_send(rq, 503, "provider_unavailable",
		    "The identity provider is unreachable, so tokens cannot "
		    "be checked right now.",
		    0);
		return;
	}
	memset(&chk, 0, sizeof(chk));
	chk.jc_issuer = m->om_issuer;
	chk.jc_audiences = (const char *const *)cfg->cf_api_audiences;
	chk.jc_naudiences = (size_t)cfg->cf_napi_audiences;
	chk.jc_client_id = NULL; /* azp is the calling client */
	chk.jc_now = time(NULL);
	chk.jc_skew = cfg->cf_clock_skew;
	jr = jose_verify(tok, oidc_provider_jwks(op), &chk, &claims, &err);
	if (jr == JOSE_KID_UNKNOWN && !retried &&
	    oidc_provider_jwks_refetch(op, bearer_jwks_cb, rq) == 0)
		return;
	/* Security: a valid signature from the provider is not enough: an
	 * ID token (or any other JWT it signs) is not an access token. */
	if (jr == JOSE_OK && jose_access_token_check(tok, claims, &err) == -1) {
		json_decref(claims);
		claims = NULL;
		jr = JOSE_INVALID;
	}
	if (jr != JOSE_OK) {
		snprintf(why, sizeof(why), "%s: %s",
		    err.ge_code != NULL ? err.ge_code : "invalid", err.ge_msg);
		bearer_refuse(rq, 401, "invalid_token", why);
		return;
	}
	bearer_log_user(rq, claims);
	v = policy_eval(rq->rq_route, claims);
	if (v != POLICY_ALLOW) {
		policy_deny_reason(rq->rq_route, claims, NULL, rq->rq_deny,
		    sizeof(rq->rq_deny));
		json_decref(claims);
		bearer_refuse(rq, 403, "insufficient_scope",
		    "the token's claims fail the route's criteria");
		return;
	}
	rq->rq_upstream_hdrs =
	    identity_block(claims, cfg->cf_trust_unverified_email);
	json_decref(claims);
	if (rq->rq_upstream_hdrs == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	rq->rq_event = "bearer";
	if (rq->rq_verify)
		forward_auth_reply(rq, 200);
	else
		(void)proxy_forward(rq);
}

/* Who the token is for, for the access line (log_user), as for a
 * session: its sub, or its user name when so configured. */
static void
bearer_log_user(struct request_ctx *rq, const json_t *claims)
{
	const char *v = NULL;

	switch (rq->rq_cfg->cf_log_user) {
	case CONFIG_LOG_USER_SUB:
		v = json_string_value(json_object_get(claims, "sub"));
		break;
	case CONFIG_LOG_USER_NAME:
		v = identity_user(claims);
		break;
	default:
		break;
	}
	snprintf(rq->rq_user, sizeof(rq->rq_user), "%s", v != NULL ? v : "");
}

void
bearer_check(struct request_ctx *rq)
{
	if (bearer_token(rq) == NULL) {
		bearer_refuse(rq, 401, NULL, "no bearer token");
		return;
	}
	bearer_verify(rq, 0);
}
