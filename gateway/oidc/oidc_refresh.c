/* SPDX-License-Identifier: ISC */
/*
 * oidc_refresh.c: keep a session's access token fresh.  One refresh per
 * session at a time across all workers (a process-wide table under a
 * mutex): with rotating refresh tokens two parallel refreshes would burn
 * each other (entra.md 7.7), and the newest refresh token must be kept.
 * Requests whose token is still valid go on at once while the refresh runs
 * in the background; requests whose token has expired wait for it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "core/config.h"
#include "core/log.h"
#include "core/magic.h"
#include "http/errpage.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/http_client.h"
#include "oidc/jose.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "session/cookie.h"
#include "session/session.h"

#define OIDC_FLIGHT_MAGIC 0x464c4754u /* "FLGT" */
#define OIDC_SLOTS 256
#define OIDC_POLL_MS 50

/* Which sessions are being refreshed, and by which worker. */
static pthread_mutex_t oidc_slots_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned char key[32];
	const struct worker *owner;
	int used;
} oidc_slots[OIDC_SLOTS];

struct oidc_flight {
	uint32_t of_magic;
	struct worker *of_worker;
	struct session *of_session; /* its own copy */
	struct httpc_xfer *of_xfer;
	struct oidc_tokens of_tokens; /* the answer, while its ID token is
	                                 checked (maybe after a JWKS fetch) */
	struct request_ctx **of_waiters;
	size_t of_nwaiters;
	struct oidc_flight *of_next; /* the worker's list */
};

static int
oidc_slot_take(const unsigned char *key, const struct worker *w,
    const struct worker **owner)
{
	int i, free_i = -1, rc = 0;

	pthread_mutex_lock(&oidc_slots_mu);
	for (i = 0; i < OIDC_SLOTS; i++) {
		if (oidc_slots[i].used &&
		    memcmp(oidc_slots[i].key, key, 32) == 0) {
			*owner = oidc_slots[i].owner;
			rc = 1;
			goto done;
		}
		if (!oidc_slots[i].used && free_i == -1)
			free_i = i;
	}
	if (free_i == -1) {
		rc = -1;
		goto done;
	}
	memcpy(oidc_slots[free_i].key, key, 32);
	oidc_slots[free_i].owner = w;
	oidc_slots[free_i].used = 1;
	*owner = w;
done:
	pthread_mutex_unlock(&oidc_slots_mu);
	return rc; /* 0: taken by us; 1: someone has it; -1: table full */
}

static void
oidc_slot_release(const unsigned char *key)
{
	int i;

	pthread_mutex_lock(&oidc_slots_mu);
	for (i = 0; i < OIDC_SLOTS; i++)
		if (oidc_slots[i].used &&
		    memcmp(oidc_slots[i].key, key, 32) == 0)
			oidc_slots[i].used = 0;
	pthread_mutex_unlock(&oidc_slots_mu);
}

static int
oidc_slot_busy(const unsigned char *key)
{
	int i, busy = 0;

	pthread_mutex_lock(&oidc_slots_mu);
	for (i = 0; i < OIDC_SLOTS && !busy; i++)
		busy = oidc_slots[i].used &&
		    memcmp(oidc_slots[i].key, key, 32) == 0;
	pthread_mutex_unlock(&oidc_slots_mu);
	return busy;
}

static struct oidc_flight *
oidc_flight_find(struct worker *w, const unsigned char *key)
{
	struct oidc_flight *f;

	for (f = w->w_flights; f != NULL; f = f->of_next)
		if (memcmp(f->of_session->se_key, key, 32) == 0)
			return f;
	return NULL;
}

static void
oidc_flight_unlink(struct oidc_flight *f)
{
	struct oidc_flight **pp;

	for (pp = &f->of_worker->w_flights; *pp != NULL; pp = &(*pp)->of_next)
		if (*pp == f) {
			*pp = f->of_next;
			break;
		}
}

/* What a waiting request does once the flight has landed: reload its
 * session (NULL if it ended) and go on. */
static void
oidc_waiter_resume(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	void (*resume)(struct request_ctx *) = rq->rq_resume;

	rq->rq_resume = NULL;
	if (rq->rq_session != NULL &&
	    session_reload(rq->rq_worker->w_reader, rq->rq_session, time(NULL),
	        cfg) != SESSION_OK) {
		session_free(rq->rq_session);
		rq->rq_session = NULL;
	}
	resume(rq);
}

static void
oidc_flight_land(struct oidc_flight *f, const char *result)
{
	struct request_ctx **w = f->of_waiters;
	size_t i, n = f->of_nwaiters;

	log_info("refresh result=%s waiters=%zu", result, n);
	oidc_flight_unlink(f);
	if (f->of_worker->w_provider != NULL)
		oidc_provider_unwait(f->of_worker->w_provider, f);
	oidc_tokens_cleanup(&f->of_tokens);
	oidc_slot_release(f->of_session->se_key);
	session_free(f->of_session);
	f->of_magic = 0;
	free(f);
	for (i = 0; i < n; i++)
		oidc_waiter_resume(w[i]);
	free(w);
}

/* What the check of a refresh's ID token found. */
enum oidc_idt {
	IDT_OK,      /* verified, same user */
	IDT_AGAIN,   /* its key is unknown: parked until the JWKS is fetched */
	IDT_REFUSED, /* invalid, or another user: the session is over */
	IDT_UNSURE,  /* could not be checked now (no metadata, or its key
	                could not be fetched): not a refusal */
};

static void oidc_flight_verify(struct oidc_flight *f, int retried);

static struct oidc_flight *
oidc_flight_cast(void *arg)
{
	return MAGIC_CAST(struct oidc_flight, of_magic, OIDC_FLIGHT_MAGIC, arg);
}

/* The JWKS refetch an unknown kid asked for has ended. */
static void
oidc_flight_jwks_cb(void *arg, int fresh)
{
	struct oidc_flight *f = oidc_flight_cast(arg);

	if (!fresh) {
		log_warnx("refresh result=failed reason=\"the ID token's key "
		          "could not be fetched\"");
		oidc_flight_land(f, "failed");
		return;
	}
	oidc_flight_verify(f, 1);
}

/* The refresh's ID token must be the same user from the same issuer for
 * the same client (OIDC Core 12.2). */
static enum oidc_idt
oidc_refresh_idtoken_check(
    struct oidc_flight *f, int retried, char **claims_json)
{
	struct worker *w = f->of_worker;
	const struct config *cfg = w->w_cfg;
	const struct oidc_meta *m = oidc_provider_meta(w->w_provider);
	const char *aud[1] = {cfg->cf_client_id};
	struct jose_check chk;
	struct gh_error err;
	json_t *claims = NULL, *old;
	const char *a, *b;
	enum jose_result jr;
	enum oidc_idt rc = IDT_REFUSED;

	if (m == NULL)
		return IDT_UNSURE;
	memset(&chk, 0, sizeof(chk));
	chk.jc_issuer = m->om_issuer;
	chk.jc_audiences = aud;
	chk.jc_naudiences = 1;
	chk.jc_client_id = cfg->cf_client_id;
	chk.jc_tid = m->om_tid[0] != '\0' ? m->om_tid : NULL;
	chk.jc_tid_required = m->om_tid_required;
	chk.jc_now = time(NULL);
	chk.jc_skew = cfg->cf_clock_skew;
	jr = jose_verify(f->of_tokens.ot_idtoken,
	    oidc_provider_jwks(w->w_provider), &chk, &claims, &err);
	if (jr == JOSE_KID_UNKNOWN && !retried) {
		/* The provider rotated its keys: fetch them once, as the
		 * callback does.  Only a key still unknown in a fresh set is
		 * a refusal; a fetch that cannot happen now is not. */
		if (oidc_provider_jwks_refetch(
		        w->w_provider, oidc_flight_jwks_cb, f) == 0)
			return IDT_AGAIN;
		log_warnx("refresh result=failed reason=\"%s\" (the key set "
		          "was fetched less than a minute ago)",
		    err.ge_msg);
		return IDT_UNSURE;
	}
	/* Security: a new ID token that names another access token (at_hash)
	 * vouches for none of this answer. */
	if (jr == JOSE_OK &&
	    oidc_tokens_at_hash_check(&f->of_tokens, claims, &err) == -1)
		jr = JOSE_INVALID;
	if (jr != JOSE_OK) {
		log_warnx("refresh result=invalid_id_token reason=\"%s\"",
		    err.ge_msg);
		json_decref(claims);
		return IDT_REFUSED;
	}
	old = session_claims(f->of_session);
	a = json_string_value(json_object_get(claims, "sub"));
	b = json_string_value(json_object_get(old, "sub"));
	if (a == NULL || b == NULL || strcmp(a, b) != 0) {
		log_warnx("refresh result=invalid_id_token reason=\"sub "
		          "changed\"");
		goto done;
	}
	*claims_json = json_dumps(claims, JSON_COMPACT);
	rc = *claims_json != NULL ? IDT_OK : IDT_UNSURE;
done:
	json_decref(claims);
	return rc;
}

/* Keep the new tokens (and claims) in the store. */
static void
oidc_flight_store(struct oidc_flight *f, char *claims)
{
	struct session *s = f->of_session;
	struct oidc_tokens *t = &f->of_tokens;
	enum session_result r = SESSION_ERR;

	if (claims != NULL)
		(void)session_set_claims(s, claims);
	free(claims);
	/* Rotation: keep the new refresh token when one came. */
	if (session_set_tokens(s, t->ot_access,
	        t->ot_refresh != NULL ? t->ot_refresh
	                              : (const char *)s->se_refresh.buf,
	        t->ot_idtoken != NULL ? t->ot_idtoken
	                              : (const char *)s->se_idtoken.buf,
	        time(NULL) + t->ot_expires_in) == 0)
		r = session_save(s);
	oidc_flight_land(f,
	    r == SESSION_OK
	        ? "ok"
	        : (r == SESSION_FULL ? "store_full" : "store_failed"));
}

static void
oidc_flight_verify(struct oidc_flight *f, int retried)
{
	char *claims = NULL;

	if (f->of_tokens.ot_idtoken != NULL) {
		switch (oidc_refresh_idtoken_check(f, retried, &claims)) {
		case IDT_OK:
			break;
		case IDT_AGAIN:
			return;
		case IDT_REFUSED:
			session_delete(f->of_session);
			oidc_flight_land(f, "ended");
			return;
		case IDT_UNSURE:
			oidc_flight_land(f, "failed");
			return;
		}
	}
	oidc_flight_store(f, claims);
}

/*
 * The token endpoint answered.  Only a refusal (invalid_grant and the
 * like) ends the session; a transport failure, a timeout or a broken
 * answer leaves it as it was, so the next request tries again.
 */
static void
oidc_flight_done_cb(const struct httpc_result *res, void *arg)
{
	struct oidc_flight *f = oidc_flight_cast(arg);
	struct gh_error err;
	const char *code;
	int st;

	f->of_xfer = NULL;
	st = oidc_tokens_parse(res, &f->of_tokens, &code, &err);
	if (st == 401) {
		session_delete(f->of_session);
		oidc_flight_land(f, "ended");
		return;
	}
	if (st != 0 || f->of_tokens.ot_access == NULL) {
		log_warnx("refresh result=failed reason=\"%s\"",
		    st != 0 ? err.ge_msg : "no access_token");
		oidc_flight_land(f, "failed");
		return;
	}
	oidc_flight_verify(f, 0);
}

/* Start a refresh of rq's session, owned by this worker. */
static struct oidc_flight *
oidc_flight_start(struct request_ctx *rq)
{
	struct worker *w = rq->rq_worker;
	struct oidc_flight *f;
	struct evbuffer *form;
	struct gh_error err;

	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->of_magic = OIDC_FLIGHT_MAGIC;
	f->of_worker = w;
	f->of_session = session_new(time(NULL), w->w_cfg);
	if (f->of_session == NULL)
		goto fail;
	/* A copy of the record under the same key, tokens opened. */
	memcpy(f->of_session->se_key, rq->rq_session->se_key, 32);
	if (session_reload(w->w_reader, f->of_session, time(NULL), w->w_cfg) !=
	        SESSION_OK ||
	    session_open_tokens(f->of_session) == -1 ||
	    f->of_session->se_refresh.len == 0)
		goto fail;
	form = evbuffer_new();
	if (form == NULL)
		goto fail;
	httpc_form_add(form, "grant_type", "refresh_token");
	httpc_form_add(
	    form, "refresh_token", (const char *)f->of_session->se_refresh.buf);
	f->of_xfer = oidc_token_request(rq, form, oidc_flight_done_cb, f, &err);
	evbuffer_free(form);
	if (f->of_xfer == NULL) {
		log_warnx("refresh id=%s result=failed reason=\"%s\"",
		    rq->rq_id, err.ge_msg);
		goto fail;
	}
	f->of_next = w->w_flights;
	w->w_flights = f;
	return f;
fail:
	session_free(f->of_session);
	free(f);
	return NULL;
}

/* The request's cleanup for its poll timer. */
static void
oidc_refresh_timer_cleanup(void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	if (rq->rq_timer != NULL)
		event_free(rq->rq_timer);
	rq->rq_timer = NULL;
}

static void
oidc_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	struct timeval tv = {0, OIDC_POLL_MS * 1000};

	(void)fd;
	(void)what;
	if (oidc_slot_busy(rq->rq_session->se_key) &&
	    request_ms_since(&rq->rq_start) <
	        (double)rq->rq_worker->w_cfg->cf_provider_timeout * 1000 +
	            1000) {
		evtimer_add(rq->rq_timer, &tv);
		return;
	}
	oidc_waiter_resume(rq);
}

enum step
oidc_refresh_ensure(
    struct request_ctx *rq, int force, void (*resume)(struct request_ctx *rq))
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	struct session *s = rq->rq_session;
	const struct worker *owner = NULL;
	struct oidc_flight *f;
	struct request_ctx **nw;
	time_t now = time(NULL);
	int64_t window;
	int expired, rc;
	struct timeval tv = {0, OIDC_POLL_MS * 1000};

	/* Refresh within refresh_before of expiry, but never earlier than
	 * half-way through the token's life: a token shorter-lived than
	 * refresh_before would otherwise be refreshed on every request. */
	window = cfg->cf_refresh_before;
	if (s->se_at_lifetime > 0 && window > s->se_at_lifetime / 2)
		window = s->se_at_lifetime / 2;
	if (!force &&
	    (s->se_at_expires == 0 || s->se_at_expires - now > window))
		return STEP_OK;
	expired = force || s->se_at_expires - now <= 5;
	if (oidc_provider_meta(rq->rq_worker->w_provider) == NULL) {
		/* The provider has not been reachable since start: the
		 * session is kept (only a refusal ends it), and the token is
		 * used while it lasts. */
		if (!expired)
			return STEP_OK;
		rq->rq_event = "refresh";
		log_info(
		    "refresh id=%s result=provider_unavailable", rq->rq_id);
		errpage_send(rq, 503, "provider_unavailable",
		    "The identity provider is unreachable, so the sign-in "
		    "cannot be renewed now. Please try again in a minute.",
		    0);
		return STEP_ERROR;
	}
	rc = oidc_slot_take(s->se_key, rq->rq_worker, &owner);
	if (rc == -1)
		return expired ? STEP_DECLINED : STEP_OK;
	if (rc == 0) {
		f = oidc_flight_start(rq);
		if (f == NULL) {
			oidc_slot_release(s->se_key);
			/* No refresh token or provider: use what we have
			 * while it lasts. */
			return expired ? STEP_DECLINED : STEP_OK;
		}
		log_info("refresh id=%s started", rq->rq_id);
	} else
		f = owner == rq->rq_worker
		    ? oidc_flight_find(rq->rq_worker, s->se_key)
		    : NULL;
	if (!expired)
		return STEP_OK; /* the current token is still good */
	rq->rq_resume = resume;
	rq->rq_state = RQ_PROVIDER;
	if (f != NULL) {
		request_cleanup_add(rq, oidc_request_cleanup, rq);
		nw = reallocarray(
		    f->of_waiters, f->of_nwaiters + 1, sizeof(*nw));
		if (nw == NULL)
			return STEP_DECLINED;
		f->of_waiters = nw;
		nw[f->of_nwaiters++] = rq;
		return STEP_AGAIN;
	}
	/* Another worker is refreshing: look again shortly. */
	request_cleanup_add(rq, oidc_refresh_timer_cleanup, rq);
	rq->rq_timer = evtimer_new(rq->rq_worker->w_base, oidc_poll_cb, rq);
	if (rq->rq_timer == NULL)
		return STEP_DECLINED;
	evtimer_add(rq->rq_timer, &tv);
	return STEP_AGAIN;
}

void
oidc_refresh_forget(struct request_ctx *rq)
{
	struct oidc_flight *f;
	size_t i;

	/* A waiting request went away: take it off its flight. */
	for (f = rq->rq_worker->w_flights; f != NULL; f = f->of_next)
		for (i = 0; i < f->of_nwaiters; i++)
			if (f->of_waiters[i] == rq) {
				f->of_waiters[i] =
				    f->of_waiters[--f->of_nwaiters];
				i--;
			}
}

void
oidc_refresh_shutdown_worker(struct worker *w)
{
	struct oidc_flight *f;

	while ((f = w->w_flights) != NULL) {
		w->w_flights = f->of_next;
		if (f->of_xfer != NULL)
			httpc_cancel(f->of_xfer);
		if (w->w_provider != NULL)
			oidc_provider_unwait(w->w_provider, f);
		oidc_tokens_cleanup(&f->of_tokens);
		oidc_slot_release(f->of_session->se_key);
		session_free(f->of_session);
		free(f->of_waiters);
		free(f);
	}
}
