/* SPDX-License-Identifier: ISC */
/* oidc_int.h: what the oidc_*.c files share; nothing else includes it. */
#ifndef GATEHOUSE_OIDC_INT_H
#define GATEHOUSE_OIDC_INT_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "core/config.h"
#include "core/error.h"
#include "http/request.h"
#include "oidc/http_client.h"
#include "oidc/oidc.h"

struct evbuffer;
struct evkeyvalq;
struct worker;

#define OIDC_FLOW_TTL 600 /* a sign-in must come back within 10 minutes */
#define OIDC_STATE_LEN 43 /* base64url of 32 random bytes */

/* One sign-in in progress: what /.auth/login keeps in its flow cookie. */
struct oidc_flow {
	char of_state[OIDC_STATE_LEN + 1];
	char of_nonce[OIDC_STATE_LEN + 1];
	char of_verifier[OIDC_STATE_LEN + 1];
	char *of_target; /* where to go afterwards (a safe local path) */
	/* the token profile whose consent this sign-in asks (token.NAME;
	 * new), or NULL */
	char *of_profile;
	time_t of_created;
	char of_cookie[96]; /* the flow cookie's name */
};

void oidc_flow_free(struct oidc_flow *f);

/* The flow cookie name for a state: <cookie_name>_flow_<time><hash>. */
void oidc_flow_cookie_name(const struct config *cfg, const char *state,
    time_t created, char *out, size_t size);

/* Read the flow for `state` from the request's cookies; new or NULL. */
struct oidc_flow *oidc_flow_find(struct request_ctx *rq, const char *state);

/* f as the flow cookie's value: sealed with the cookie key, bound to its
 * state.  A new string (base64url) or NULL. */
char *oidc_flow_seal(const struct oidc_flow *f);

/* Expire (into `out`) the oldest flow cookies of rq's browser so that a
 * new one keeps them within max_pending_logins. */
void oidc_flow_cap(struct request_ctx *rq, struct resp_hdrs *out);

/*
 * Remember a sign-in `state` as used (single use) until `until`, in memory
 * shared by the workers; returns 1 if it was already used, 0 if now
 * recorded, -1 on error.  Any thread.
 */
int oidc_flow_state_consume(const char *state, time_t now, time_t until);

void oidc_meta_cleanup(struct oidc_meta *m);

/* The checks every token the provider signs like an ID token passes (a
 * sign-in's, a refresh's, a logout token): m's issuer, algorithms and
 * tenant, this client as audience, the clock skew, now.  chk is zeroed
 * first; callers add their own rules. */
struct jose_check;
void oidc_id_token_check(struct jose_check *chk, const struct config *cfg,
    const struct oidc_meta *m);

/*
 * Check a discovery document (body, len) against the configuration: JSON,
 * the members gatehouse needs, the issuer rules for oidc_issuer and for an
 * Entra authority, https endpoints.  Fills m (cleaned up first; the caller
 * calls oidc_meta_cleanup) and returns NULL, or returns what is wrong (a
 * static sentence) with m left empty.
 */
const char *oidc_discovery_check(const struct config *cfg, const char *body,
    size_t len, struct oidc_meta *m);

/*
 * Fetch the discovery document and its JWKS once, on a private event loop
 * (oidc_probe.c), with the checks of a running fetch: 0 with *m filled
 * (cleanup with oidc_meta_cleanup) and *keys new, or -1 with err saying
 * what stands in the way, in words.  Blocks the calling thread.
 */
struct jwks;
int oidc_probe_fetch(const struct config *cfg, struct oidc_meta *m,
    struct jwks **keys, struct gh_error *err);
int oidc_issuer_equal(const char *a, const char *b);
int oidc_config_loopback(const struct config *cfg);
void oidc_provider_unwait(struct oidc_provider *op, void *arg);

/*
 * While the first fetch is still under way, call done(arg, ok) when it
 * ends (ok: the provider is usable).  Returns 0, or -1 when the provider's
 * state is already known (nothing to wait for).
 */
int oidc_provider_wait(
    struct oidc_provider *op, void (*done)(void *arg, int ok), void *arg);

/*
 * Parse an application/x-www-form-urlencoded string (a query or a form
 * body) into `out` (evhttp key/value list; decoded).  Returns 0, or -1 when
 * it is malformed or a name in `unique` (NULL-terminated) appears twice;
 * with `unique` set (the strict callback mode) an encoded NUL is
 * malformed too.
 */
int oidc_params_parse(
    const char *s, struct evkeyvalq *out, const char *const *unique);

/*
 * The return URL t (may be NULL) when it is a safe local path and not one
 * of gatehouse's own endpoints; the path it names when it is an absolute
 * URL of this gateway's own origin (cf_public_base, or `origin`, the
 * request's own, may be NULL), checked the same way; else NULL.
 * Borrowed from t.  Pure.
 */
const char *oidc_target_check(
    const struct config *cfg, const char *origin, const char *t);

/* oidc_target_check(cfg, NULL, t), or "/" when it refuses t. */
const char *oidc_target_or_root(const struct config *cfg, const char *t);

/* oidc_target_check with rq's own origin, or "/" when it refuses t (with
 * a rate-limited log line, never the URL's query). */
const char *oidc_return_target(struct request_ctx *rq, const char *t);

/* Seconds between two log lines of one kind a client can cause at will
 * (per worker; the count held back is in the next). */
#define OIDC_LOG_EVERY 10

/* The longest token gatehouse keeps or forwards from a token answer. */
#define OIDC_TOKEN_MAX (16 * 1024)

/* Token endpoint response, parsed. */
struct oidc_tokens {
	char *ot_access;
	char *ot_refresh;
	char *ot_idtoken;
	long ot_expires_in;
	long ot_aadsts; /* a refusal's AADSTS number (error_codes), or 0 */
};

void oidc_tokens_cleanup(struct oidc_tokens *t);

/*
 * Turn a token endpoint answer into tokens.  Returns 0; or the HTTP status
 * for the person (401 the provider refused, 502 garbage or the client's
 * own credentials refused (*code "invalid_client"), 504 timeout) with
 * *code and a message for the log in err (a refusal's AADSTS number,
 * trace_id and correlation_id when the answer has them).  Garbage includes a
 * token that could split a header or a URL it is later put in: access_token
 * must be an RFC 6750 b64token, refresh_token RFC 6749 VSCHARs, id_token
 * base64url parts and dots, each at most OIDC_TOKEN_MAX bytes.
 */
int oidc_tokens_parse(const struct httpc_result *res, struct oidc_tokens *t,
    const char **code, struct gh_error *err);

/*
 * Check the ID token's at_hash (when it has one) against the access token
 * of the same answer.  idtoken and claims: what jose_verify accepted.
 * 0, or -1 with err set.
 */
int oidc_tokens_at_hash_check(
    const struct oidc_tokens *t, const json_t *claims, struct gh_error *err);

/* token_endpoint_auth_methods_supported (borrowed; may be NULL) as
 * OIDC_TAM_* bits; 0 when absent, not an array or empty. */
unsigned int oidc_token_auth_parse(const json_t *v);

/*
 * Start a token endpoint POST with the client's credentials added, in the
 * way chosen by token_auth_method, the certificate (a new client assertion
 * per call) and the provider's metadata.  Returns the
 * transfer, or NULL with err set (no usable method: the message says
 * which; or the request could not start).
 */
struct httpc_xfer *oidc_token_request(struct worker_gen *g,
    struct evbuffer *form, httpc_done_fn *done, void *arg,
    struct gh_error *err);
/* The same with the configuration, metadata and client given (the
 * --check --online probe has no worker). */
struct httpc_xfer *oidc_token_send(const struct config *cfg,
    const struct oidc_meta *m, struct httpc *h, struct evbuffer *form,
    httpc_done_fn *done, void *arg, struct gh_error *err);

/* The same client authentication on a POST to another endpoint of the
 * provider (url, borrowed; the revocation endpoint).  The client
 * assertion still names the token endpoint as its audience: RFC 7523
 * lets it name the authorization server, and providers take their
 * token endpoint's URL for that. */
struct httpc_xfer *oidc_client_post(const struct config *cfg,
    const struct oidc_meta *m, struct httpc *h, const char *url,
    struct evbuffer *form, httpc_done_fn *done, void *arg,
    struct gh_error *err);

/*
 * Revoke refresh token `token` (borrowed; RFC 7009) at the provider's
 * revocation_endpoint, in the background: nothing waits for it, its
 * failure is logged (never the token), and the transfer belongs to the
 * worker (oidc_revoke_shutdown_worker drops what is left when it stops).
 * A no-op when the provider lists no revocation endpoint or token is
 * empty.  rq: for its worker, generation and id (borrowed for the call
 * only).  The worker's thread.
 */
struct secret;
void oidc_revoke_start(struct request_ctx *rq, const struct secret *token);

/* Let go of rq's session and cancel its session store call under way:
 * the request's cleanup of whoever hangs either on it (oidc_login.c). */
void oidc_session_cleanup(void *arg);

#endif
