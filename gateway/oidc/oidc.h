/* SPDX-License-Identifier: ISC */
/*
 * oidc.h: the public face of the OpenID Connect flows.  The provider's
 * discovery document and JWKS are fetched once for the whole process and
 * shared by every worker; each worker reads them through its own struct
 * oidc_provider handle.  The endpoints park the request while the provider
 * answers (STEP_AGAIN).  Worker thread only, except the config functions
 * (main thread).
 */
#ifndef GATEHOUSE_OIDC_H
#define GATEHOUSE_OIDC_H

#include <stddef.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "http/request.h"

struct event_base;
struct jwks;
struct session;
struct token_profile;
struct worker;

#define OIDC_RESPONSE_QUERY 0
#define OIDC_RESPONSE_FORM_POST 1
#define OIDC_AUTH_POST 0
#define OIDC_AUTH_BASIC 1
#define OIDC_AUTH_AUTO 2 /* chosen from the certificate or the metadata */
#define OIDC_AUTH_PRIVATE_KEY_JWT 3 /* a client assertion (client_cert.h) */

/* token_endpoint_auth_methods_supported as bits (struct oidc_meta). */
#define OIDC_TAM_LISTED 0x01 /* the member is there (else: basic only) */
#define OIDC_TAM_BASIC 0x02
#define OIDC_TAM_POST 0x04
#define OIDC_TAM_PRIVATE_KEY_JWT 0x08
#define OIDC_TAM_NONE 0x10

/* Its configuration keys (config_modules.c lists it); the cross-key check
 * also derives cf_public_base, cf_callback_path, cf_discovery_url and
 * cf_api_audiences, and reads the certificate credential into
 * cf_client_cert, which its free hook releases. */
extern const struct config_module oidc_config_module;

/* Whether a provider is configured at all. */
int oidc_configured(const struct config *cfg);

/*
 * --check --online (oidc_probe.c): fetch the discovery document and the
 * JWKS once, with the running gateway's client and checks.  0 with a
 * one-line summary (issuer, number of keys) in summary; or -1 with err
 * saying in words what is wrong (name not found, no connection, TLS, HTTP
 * status, not JSON, the issuer rules, no usable key).  Main thread, after
 * httpc_global_init and before any worker: it runs its own event loop
 * until the fetches end (at most provider_timeout each).
 */
int oidc_probe(
    const struct config *cfg, char *summary, size_t size, struct gh_error *err);

/* --- provider metadata (oidc_discovery.c) ---------------------------- */

enum oidc_state {
	OIDC_UNKNOWN, /* never fetched yet */
	OIDC_READY,   /* discovery and JWKS in hand */
	OIDC_FAILED,  /* the last attempt failed; retrying with backoff */
};

struct oidc_meta {
	char *om_issuer;
	char *om_authorization_endpoint;
	char *om_token_endpoint;
	char *om_jwks_uri;
	char *om_end_session_endpoint; /* NULL when the provider has none */
	char *om_revocation_endpoint;  /* RFC 7009; NULL when none */
	int om_iss_param;              /* RFC 9207 iss in the response */
	unsigned int om_token_auth;    /* OIDC_TAM_* bits */
	/* The tenant GUID an Entra-shaped issuer names ("" for none): ID
	 * tokens' tid must equal it when they have one, and must have one
	 * when om_tid_required (the provider is recognised as Entra). */
	char om_tid[40];
	int om_tid_required;
	/* The ID-token algorithms accepted: those of
	 * id_token_signing_alg_values_supported that are asymmetric (RS*,
	 * PS*, ES*; never none or HS*), static strings; 0 means RS256 only,
	 * the default when the provider lists none of them. */
	const char *om_algs[9];
	size_t om_nalgs;
};

/*
 * A provider as the process knows it (struct oidc_source): the copy of
 * its metadata and keys every worker's handle shares, and the state of
 * its fetches.  oidc_source_new makes an empty one (the first fetch starts
 * once worker 0's loop runs); oidc_source_prefetch fills it at once, on the
 * calling thread (a private event loop, at most provider_timeout per
 * fetch), with the same checks as a running fetch: a SIGHUP that changes
 * the provider calls it before the swap, and keeps the old configuration
 * when it fails (0, or -1 with err saying why in words).
 * oidc_source_hold takes a reference (returns src), oidc_source_release
 * drops one (NULL is a no-op); handles hold their own.  oidc_source_same says
 * whether two configurations name the same provider (the same fetch and
 * checks). Main thread, but release: any thread.
 */
struct oidc_source;
struct oidc_source *oidc_source_new(void);
int oidc_source_prefetch(
    struct oidc_source *src, const struct config *cfg, struct gh_error *err);
struct oidc_source *oidc_source_hold(struct oidc_source *src);
void oidc_source_release(struct oidc_source *src);
int oidc_source_same(const struct config *a, const struct config *b);

/*
 * Worker w's handle on src for the configuration cfg (borrowed; it must
 * outlive the handle), with the copy src has now.  The handle made with
 * `timer` (worker 0's current one) runs the timed fetches and keeps the
 * copy fresh; the others take each new copy when told
 * (oidc_provider_notify).  Returns new or NULL.  oidc_provider_retire:
 * a newer handle replaces it, it stops running the timed fetches.
 * oidc_provider_free drops the handle (NULL is a no-op); one cut short
 * in a fetch tells the other handles, so that the timed fetches go on.
 * On w's thread once its loop runs (before, on the main thread).
 */
struct oidc_provider *oidc_provider_new(struct worker *w,
    struct oidc_source *src, const struct config *cfg, int timer);
void oidc_provider_retire(struct oidc_provider *op);
void oidc_provider_free(struct oidc_provider *op);

/*
 * How the end of a fetch reaches every worker, which then calls
 * oidc_provider_notify on its own thread.  Set once by whoever runs the
 * workers; main thread, before they start.
 */
void oidc_provider_set_announce(void (*announce)(void));

/*
 * A fetch for the process has ended: take the current copy, wake the
 * waiters it concerns.  On the worker's thread, from its mail pipe.
 */
void oidc_provider_notify(struct oidc_provider *op);

/* The metadata or NULL when the provider is not usable.  Borrowed and
 * valid until the next event-loop turn: a request that waits for I/O reads
 * it again when it resumes, it does not keep the pointer. */
const struct oidc_meta *oidc_provider_meta(struct oidc_provider *op);
const struct jwks *oidc_provider_jwks(struct oidc_provider *op);
enum oidc_state oidc_provider_state(struct oidc_provider *op);
/* Whether the provider has never been usable because it says the
 * configured tenant does not exist (not that it is unreachable). */
int oidc_provider_no_tenant(struct oidc_provider *op);

/*
 * Readiness (/.auth/readyz): 1 when every worker holds the metadata and
 * keys and the process's last fetch of them worked.  0 otherwise, with
 * why (size bytes, truncated) saying which in a short phrase that names
 * the step and the kind of failure, never a URL.  Any worker's thread.
 */
int oidc_provider_ready(struct oidc_provider *op, char *why, size_t size);

/*
 * A token named a kid the JWKS lacks: refetch the JWKS unless that was done
 * in the last minute (by any worker; a refetch already running is joined
 * instead).  done(arg, 1) runs once a new set is in hand,
 * done(arg, 0) when nothing was fetched (rate-limited or failed).  Returns
 * 0 (done will be called later) or -1 (it will not).
 */
int oidc_provider_jwks_refetch(
    struct oidc_provider *op, void (*done)(void *arg, int fresh), void *arg);

/* --- the endpoints ------------------------------------------------------ */

/* /.auth/login (oidc_login.c).  Sends the reply; rq is gone after. */
void oidc_login(struct request_ctx *rq);

/*
 * Whether `target` is a safe place to send the browser after sign-in or
 * sign-out: a path on this site only (no scheme, no host, no "//", no
 * backslash, no control character, in raw or percent-encoded form).
 */
int oidc_redirect_safe(const char *target);

/* The redirect_uri's path: /.auth/callback or the sample's own path. */
void oidc_callback(struct request_ctx *rq);

/* /.auth/logout (oidc_logout.c). */
void oidc_logout(struct request_ctx *rq);

/* GET /.auth/logout/complete: the signed-out page, the default end of a
 * sign-out (and the post-logout URI registered at the provider).  It
 * reflects nothing from the request.  Finishes the request. */
void oidc_logout_complete(struct request_ctx *rq);

/* GET /.auth/frontchannel-logout?iss=..&sid=.. (oidc_frontchannel.c):
 * ends the sid's sessions (iss must be the provider's issuer; another is
 * ignored), or without sid the cookie's session; answers a no-store page
 * only the provider's origin may frame.  Finishes the request. */
void oidc_frontchannel_logout(struct request_ctx *rq);

/* POST /.auth/backchannel-logout (oidc_backchannel.c): verifies the
 * form's logout_token and ends every session of its sid, or of its sub;
 * 200, or 400 with a JSON error (405 for another method).  Finishes the
 * request. */
void oidc_backchannel_logout(struct request_ctx *rq);

/*
 * Make sure rq's session has an access token that is not about to expire
 * (within refresh_before).  STEP_OK: nothing to do or done; STEP_AGAIN:
 * a refresh is running and `resume(rq)` will be called when it ends
 * (check rq->rq_store_failed, then rq->rq_session again: NULL means the
 * session ended); STEP_ERROR: a response has been sent.  Single flight
 * per session across workers.
 */
enum step oidc_refresh_ensure(
    struct request_ctx *rq, int force, void (*resume)(struct request_ctx *rq));

/*
 * The same for the token of profile tp (token_profile.h) on rq's route:
 * redeemed with the session's refresh token when it is missing or near
 * expiry, one flight per session at a time.  STEP_OK: the session's
 * token of tp is good (session_ptok_get); STEP_AGAIN: resume(rq) runs
 * once a flight has landed (then look again: it may have been another
 * profile's, or refused, or failed); STEP_DECLINED: the provider refused
 * tp for this session, or there is no refresh token (oidc_token_refused);
 * STEP_ERROR: a response has been sent.
 */
enum step oidc_refresh_token(struct request_ctx *rq,
    const struct token_profile *tp, void (*resume)(struct request_ctx *rq));

/*
 * The signed-in request path's check: oidc_refresh_ensure's refresh near
 * expiry when the access token is forwarded (forward_access_token), and
 * revalidation (session_revalidate): once that long has passed since the
 * session's last token grant, the request waits for a refresh, which
 * ends the session when the provider refuses it (rq->rq_session is then
 * NULL on resume) and keeps it when the provider fails (then the
 * session is not asked again for a while: a back-off per session, so a
 * provider that is down sees no retry storm).  A session without a
 * refresh token cannot be revalidated and goes on.  Verdicts as for
 * oidc_refresh_ensure; STEP_DECLINED only for a forwarded token that has
 * expired and cannot be refreshed.
 */
enum step oidc_refresh_check(
    struct request_ctx *rq, void (*resume)(struct request_ctx *rq));

/* Take a request that is going away off the refresh it waits for. */
void oidc_refresh_forget(struct request_ctx *rq);

/* Drop the revocations a stopped worker still had under way (each is
 * logged as not known to have reached the provider).  Main thread,
 * after the worker's loop has ended. */
void oidc_revoke_shutdown_worker(struct worker *w);

/* Drop the refreshes a stopped worker still owned.  Main thread, after the
 * worker's loop has ended. */
void oidc_refresh_shutdown_worker(struct worker *w);

/* Let go of what the oidc steps hung on the request arg (flow, tokens,
 * waits): its cleanup (request_cleanup_add), registered by each step
 * when it hangs one. */
void oidc_request_cleanup(void *arg);

/*
 * Load rq's session from its session cookie into rq->rq_session, then
 * call next(rq): at once when the store answered at once (LMDB), else
 * once it has (Redis; rq waits meanwhile in RQ_STORE, and its cleanup
 * cancels the call).  Then rq->rq_session is the session (NULL: none, or
 * no provider is configured), and rq->rq_store_failed says the store
 * could not answer: never "signed out"; a route that needs the session
 * answers oidc_store_unavailable, an anonymous one goes on without
 * identity (oidc_login.c).
 */
void oidc_session_load(
    struct request_ctx *rq, void (*next)(struct request_ctx *));

/* oidc_session_load for a request that uses only the session's identity
 * block and times, never its claims or tokens: with a store across the
 * network the cold part is not fetched (see session_load_hot_start). */
void oidc_session_load_hot(
    struct request_ctx *rq, void (*next)(struct request_ctx *));

/* The 503 page for a request whose session the store could not give
 * (oidc_login.c).  Finishes the request. */
void oidc_store_unavailable(struct request_ctx *rq);

/* Send the browser to sign in, or a 401 to an API client (oidc_login.c). */
void oidc_challenge(struct request_ctx *rq);

/*
 * A route's token profile `name` cannot be had for rq's session: the
 * provider refused its refresh (consent missing, interaction required) or
 * there is no refresh token.  A browser navigating is sent to sign in
 * again with the profile's scopes added (incremental consent), once:
 * `asked` (the session's sign-in asked for them already) gives a 403
 * page instead; an API client gets 401 with WWW-Authenticate:
 * Bearer error="insufficient_scope" naming the scopes.  Finishes the
 * request (oidc_login.c).
 */
void oidc_token_refused(struct request_ctx *rq, const char *name, int asked);

/* offline_access = auto: asked for only when a feature will refresh. */
#define OIDC_OFFLINE_AUTO 2

/* Whether the sign-in asks for offline_access (a refresh token). */
int oidc_wants_refresh_token(const struct config *cfg);

#endif
