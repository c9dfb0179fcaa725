/* SPDX-License-Identifier: ISC */
/*
 * oidc_refresh.c: keep a session's access token fresh.  One refresh per
 * session at a time across all workers (a process-wide table under a
 * mutex): with rotating refresh tokens two parallel refreshes would burn
 * each other (entra.md 7.7), and the newest refresh token must be kept.
 * Requests whose token is still valid go on at once while the refresh runs
 * in the background; requests whose token has expired wait for it.
 *
 * With a store shared by several replicas (Redis) the process's table is
 * not enough: a flight first takes the session's lock in the store (a
 * short SET NX PX with a random owner token).  The winner reads the record
 * again under the lock (so it refreshes with the newest refresh token,
 * and not at all when another replica has just refreshed), asks the
 * provider, saves, then releases the lock.  A flight that finds the lock
 * taken polls the record until it shows the new token (then its waiters
 * read it), or the lock is free again (then it takes it itself: the
 * holder finished without a new token, or died), within a bound.  The
 * lock lives long enough for the holder's whole refresh, so the same
 * refresh token is never sent twice.
 *
 * A token profile's token (token.NAME) is redeemed the same way, with the
 * profile's scopes, by a flight of that profile: one flight per session
 * whatever its profile (the slot and the store's lock are the session's),
 * since every flight spends the same rotating refresh token.  A request
 * waiting for its profile behind another profile's flight tries again
 * once that one has landed.
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
#include "core/crypto.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "http/errpage.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/http_client.h"
#include "oidc/jose.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "oidc/token_profile.h"
#include "session/cookie.h"
#include "session/session.h"

#define OIDC_FLIGHT_MAGIC 0x464c4754u /* "FLGT" */
#define OIDC_SLOTS 256
#define OIDC_POLL_MS 50
#define OIDC_SHARED_POLL_MS 100 /* another replica's refresh: look again */
#define OIDC_SAVE_TRIES 3       /* a save the store could not take */

/* Back-off of revalidation after the provider failed: the first wait,
 * doubled after each failure in a row, up to the last. */
#define OIDC_REVAL_BACKOFF_MIN 30
#define OIDC_REVAL_BACKOFF_MAX 900
#define OIDC_REVAL_SLOTS 1024

/* Which sessions are being refreshed, and by which worker. */
static pthread_mutex_t oidc_slots_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned char key[32];
	const struct worker *owner;
	int used;
} oidc_slots[OIDC_SLOTS];

/*
 * Sessions whose revalidation failed for want of the provider, and when
 * to ask again: direct-mapped on the store key (a collision only lets
 * one of the two sessions ask earlier), under its own mutex, shared by
 * the workers.  A replica keeps its own: each asks at most once per
 * back-off.
 */
static pthread_mutex_t oidc_reval_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned char key[16];
	time_t not_before;
	int fails;
} oidc_reval[OIDC_REVAL_SLOTS];

static size_t
oidc_reval_slot(const unsigned char *key)
{
	return ((size_t)key[0] | (size_t)key[1] << 8) % OIDC_REVAL_SLOTS;
}

/* Whether key's revalidation waits (a back-off after a failure). */
static int
oidc_reval_waits(const unsigned char *key, time_t now)
{
	size_t i = oidc_reval_slot(key);
	int waits;

	pthread_mutex_lock(&oidc_reval_mu);
	waits = memcmp(oidc_reval[i].key, key, 16) == 0 &&
	    now < oidc_reval[i].not_before;
	pthread_mutex_unlock(&oidc_reval_mu);
	return waits;
}

/* The provider failed key's refresh (fail) or answered it (!fail): set
 * the next back-off, or forget it.  Returns the back-off in seconds. */
static int
oidc_reval_note(const unsigned char *key, int fail, time_t now)
{
	size_t i = oidc_reval_slot(key);
	int wait = 0;

	pthread_mutex_lock(&oidc_reval_mu);
	if (memcmp(oidc_reval[i].key, key, 16) != 0) {
		if (!fail)
			goto done;
		memcpy(oidc_reval[i].key, key, 16);
		oidc_reval[i].fails = 0;
	}
	if (!fail) {
		memset(&oidc_reval[i], 0, sizeof(oidc_reval[i]));
		goto done;
	}
	wait = OIDC_REVAL_BACKOFF_MIN
	    << (oidc_reval[i].fails < 5 ? oidc_reval[i].fails : 5);
	if (wait > OIDC_REVAL_BACKOFF_MAX)
		wait = OIDC_REVAL_BACKOFF_MAX;
	if (oidc_reval[i].fails < 5)
		oidc_reval[i].fails++;
	oidc_reval[i].not_before = now + wait;
done:
	pthread_mutex_unlock(&oidc_reval_mu);
	return wait;
}

struct oidc_flight {
	uint32_t of_magic;
	struct worker *of_worker;
	/* The configuration of the request that started it, a reference
	 * (worker.h): its provider, client and store settings. */
	struct worker_gen *of_gen;
	struct session *of_session; /* its own copy */
	struct session_op *of_op;   /* its session store call under way */
	struct httpc_xfer *of_xfer;
	struct oidc_tokens of_tokens; /* the answer, while its ID token is
	                                 checked (maybe after a JWKS fetch) */
	/* The profile it redeems a token for (borrowed from of_gen's
	 * configuration), or NULL: the session's own tokens. */
	const struct token_profile *of_profile;
	int of_refused; /* the provider refused the profile (saved so) */
	struct request_ctx **of_waiters;
	size_t of_nwaiters;
	char of_rid[33];             /* the request that started it */
	struct oidc_flight *of_next; /* the worker's list */
	/* Across replicas (a shared store only). */
	int of_shared;
	int of_locked; /* the store's lock on the session is ours */
	unsigned char of_owner[SESSION_OWNER_LEN];
	int64_t of_seen_at; /* the token expiry its starter saw */
	struct timespec of_start;
	struct event *of_timer; /* a poll, or a save tried again */
	int of_saving;          /* the timer is for a save */
	int of_save_tries;
};

static void oidc_flight_free(struct oidc_flight *f);
static void oidc_flight_lock(struct oidc_flight *f);
static void oidc_flight_save(struct oidc_flight *f);

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

/* How long a replica may hold a session's refresh lock: its whole
 * refresh (reading the record, the token call, a JWKS fetch, the save)
 * with room to spare, so the lock never lapses while its refresh token is
 * in use. */
static int
oidc_lock_ttl_ms(const struct config *cfg)
{
	return 2 * cfg->cf_provider_timeout * 1000 +
	    4 * cfg->cf_redis_timeout_ms + 2000;
}

/* How long a request or a flight waits for a refresh it does not run. */
static double
oidc_wait_ms(const struct config *cfg)
{
	if (session_store_shared())
		return (double)oidc_lock_ttl_ms(cfg) + 1000;
	return (double)cfg->cf_provider_timeout * 1000 + 1000;
}

/* A waiting request's session has been read again (r): go on, with no
 * session when it ended, or saying the store could not answer. */
static void
oidc_waiter_reloaded(struct request_ctx *rq, enum session_result r)
{
	void (*resume)(struct request_ctx *) = rq->rq_resume;

	rq->rq_resume = NULL;
	if (r != SESSION_OK) {
		session_free(rq->rq_session);
		rq->rq_session = NULL;
		if (r == SESSION_UNAVAIL || r == SESSION_ERR)
			rq->rq_store_failed = 1;
	}
	resume(rq);
}

static void
oidc_waiter_reloaded_cb(void *arg, enum session_result r)
{
	struct request_ctx *rq = request_cast(arg);

	rq->rq_store_op = NULL;
	oidc_waiter_reloaded(rq, r);
}

/* What a waiting request does once the flight has landed: read its
 * session again (it ended, or has the new tokens) and go on.  Its cleanup
 * (the session's, registered when it was loaded) cancels the read. */
static void
oidc_waiter_resume(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	enum session_result r = SESSION_NONE;

	if (rq->rq_session != NULL) {
		r = session_reload_start(rq->rq_worker->w_reader,
		    rq->rq_session, time(NULL), cfg, oidc_waiter_reloaded_cb,
		    rq, &rq->rq_store_op);
		if (r == SESSION_PENDING) {
			rq->rq_state = RQ_STORE;
			return;
		}
	}
	oidc_waiter_reloaded(rq, r);
}

static void
oidc_flight_land(struct oidc_flight *f, const char *result)
{
	struct request_ctx **w = f->of_waiters;
	size_t i, n = f->of_nwaiters;
	int fail = strcmp(result, "failed") == 0, wait;

	/* The provider failed (down, 5xx, a timeout): the session is kept,
	 * and its revalidation waits before it asks again; an answer
	 * clears that. */
	wait = fail || strcmp(result, "ok") == 0
	    ? oidc_reval_note(f->of_session->se_key, fail, time(NULL))
	    : 0;
	if (fail)
		log_info("refresh result=%s waiters=%zu revalidate_in=%ds",
		    result, n, wait);
	else
		log_info("refresh result=%s waiters=%zu", result, n);
	metrics_refresh(result);
	oidc_flight_unlink(f);
	session_op_cancel(f->of_op);
	f->of_op = NULL;
	/* Nobody waits for the release: should it fail, the lock expires
	 * by itself. */
	if (f->of_locked)
		(void)session_unlock_start(f->of_worker->w_reader,
		    f->of_session->se_key, f->of_owner, NULL, NULL, &f->of_op);
	if (f->of_gen->wg_provider != NULL)
		oidc_provider_unwait(f->of_gen->wg_provider, f);
	oidc_tokens_cleanup(&f->of_tokens);
	oidc_slot_release(f->of_session->se_key);
	oidc_flight_free(f);
	for (i = 0; i < n; i++)
		oidc_waiter_resume(w[i]);
	free(w);
}

/* The expiry of the token a flight is for, in its copy of the record
 * (with the tokens opened for a profile: 0 when it has none).  A profile
 * refused meanwhile counts as settled: nothing newer will come. */
static int64_t
oidc_flight_expiry(struct oidc_flight *f)
{
	const struct session_ptok *t;

	if (f->of_profile == NULL)
		return f->of_session->se_at_expires;
	t = session_ptok_get(f->of_session, f->of_profile->tp_name);
	if (t == NULL)
		return 0;
	return (t->sp_flags & SESSION_PTOK_REFUSED) ? INT64_MAX : t->sp_expires;
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
	struct worker_gen *g = f->of_gen;
	const struct config *cfg = g->wg_cfg;
	const struct oidc_meta *m = oidc_provider_meta(g->wg_provider);
	struct jose_check chk;
	struct gh_error err;
	json_t *claims = NULL, *old;
	const char *a, *b;
	enum jose_result jr;
	enum oidc_idt rc = IDT_REFUSED;

	if (m == NULL)
		return IDT_UNSURE;
	oidc_id_token_check(&chk, cfg, m);
	jr = jose_verify(f->of_tokens.ot_idtoken,
	    oidc_provider_jwks(g->wg_provider), &chk, &claims, &err);
	if (jr == JOSE_KID_UNKNOWN && !retried) {
		/* The provider rotated its keys: fetch them once, as the
		 * callback does.  Only a key still unknown in a fresh set is
		 * a refusal; a fetch that cannot happen now is not. */
		if (oidc_provider_jwks_refetch(
		        g->wg_provider, oidc_flight_jwks_cb, f) == 0)
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

/* What a save's result says in the refresh's log line. */
static const char *
oidc_flight_saved_result(enum session_result r)
{
	switch (r) {
	case SESSION_OK:
		return "ok";
	case SESSION_FULL:
		return "store_full";
	case SESSION_UNAVAIL:
		return "store_unavailable";
	default:
		return "store_failed";
	}
}

/* The new tokens are stored (r SESSION_OK), or not.  A store that could
 * not be reached is tried again, briefly, while the lock is held: the
 * provider has rotated the refresh token, and the old one is spent. */
static void
oidc_flight_saved(struct oidc_flight *f, enum session_result r)
{
	struct timeval tv = {0, 0};

	if (r == SESSION_UNAVAIL && f->of_timer != NULL &&
	    ++f->of_save_tries < OIDC_SAVE_TRIES) {
		tv.tv_usec = 200 * 1000 * f->of_save_tries;
		f->of_saving = 1;
		evtimer_add(f->of_timer, &tv);
		return;
	}
	/* Deleted while the provider answered (a sign-out, a revoke): the
	 * save did not write it back; the waiters read it as gone. */
	if (r == SESSION_NONE) {
		oidc_flight_land(f, "ended");
		return;
	}
	if (r != SESSION_OK)
		log_warnx("refresh id=%s result=%s reason=\"the new tokens "
		          "could not be stored; the session needs a new "
		          "sign-in when its access token runs out\"",
		    f->of_rid, oidc_flight_saved_result(r));
	oidc_flight_land(f,
	    r == SESSION_OK && f->of_refused ? "refused"
	                                     : oidc_flight_saved_result(r));
}

static void
oidc_flight_saved_cb(void *arg, enum session_result r)
{
	struct oidc_flight *f = oidc_flight_cast(arg);

	f->of_op = NULL;
	oidc_flight_saved(f, r);
}

static void
oidc_flight_save(struct oidc_flight *f)
{
	enum session_result r;

	r = session_save_start(f->of_worker->w_reader, f->of_session,
	    oidc_flight_saved_cb, f, &f->of_op);
	if (r != SESSION_PENDING)
		oidc_flight_saved(f, r);
}

/* Keep the new tokens (and claims) in the store; land once they are. */
static void
oidc_flight_store(struct oidc_flight *f, char *claims)
{
	struct session *s = f->of_session;
	struct oidc_tokens *t = &f->of_tokens;
	enum session_result r = SESSION_ERR;

	if (claims != NULL) {
		(void)session_set_claims(s, claims);
		session_follow_id_token(s, f->of_gen->wg_cfg, claims);
	}
	free(claims);
	/* Rotation: keep the new refresh token when one came. */
	if (session_set_tokens(s, t->ot_access,
	        t->ot_refresh != NULL ? t->ot_refresh
	                              : (const char *)s->se_refresh.buf,
	        t->ot_idtoken != NULL ? t->ot_idtoken
	                              : (const char *)s->se_idtoken.buf,
	        time(NULL) + t->ot_expires_in) == 0) {
		oidc_flight_save(f);
		return;
	}
	oidc_flight_land(f, oidc_flight_saved_result(r));
}

static void
oidc_flight_deleted_cb(void *arg, enum session_result r)
{
	struct oidc_flight *f = oidc_flight_cast(arg);

	(void)r; /* a failure is logged by the session layer */
	f->of_op = NULL;
	oidc_flight_land(f, "ended");
}

/* The provider refused: the session is over; land once it is deleted,
 * so that the waiters read it as gone. */
static void
oidc_flight_end(struct oidc_flight *f)
{
	if (session_delete_start(f->of_worker->w_reader, f->of_session,
	        oidc_flight_deleted_cb, f, &f->of_op) == SESSION_PENDING)
		return;
	oidc_flight_land(f, "ended");
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
			oidc_flight_end(f);
			return;
		case IDT_UNSURE:
			oidc_flight_land(f, "failed");
			return;
		}
	}
	oidc_flight_store(f, claims);
}

/*
 * A profile's answer.  A refusal (consent_required, interaction_required,
 * invalid_grant, ...) concerns this profile only: the session goes on for
 * every other route, and the profile is marked refused, so that its
 * routes ask for consent instead of asking the provider again.  A new
 * refresh token in the answer replaces the session's (rotation).
 */
static void
oidc_flight_profile_done(struct oidc_flight *f, int st, struct gh_error *err)
{
	struct session *s = f->of_session;
	struct oidc_tokens *t = &f->of_tokens;
	const struct session_ptok *old;
	const char *name = f->of_profile->tp_name;
	uint32_t flags;
	long life;

	old = session_ptok_get(s, name);
	flags = old != NULL ? old->sp_flags & SESSION_PTOK_ASKED : 0;
	if (st == 401) {
		log_warnx("refresh id=%s token=%s result=refused reason=\"%s\"",
		    f->of_rid, name, err->ge_msg);
		f->of_refused = 1;
		if (session_set_ptok(
		        s, name, NULL, 0, flags | SESSION_PTOK_REFUSED) == 0)
			oidc_flight_save(f);
		else
			oidc_flight_land(f, "failed");
		return;
	}
	if (st != 0 || t->ot_access == NULL) {
		log_warnx("refresh id=%s token=%s result=failed reason=\"%s\"",
		    f->of_rid, name, st != 0 ? err->ge_msg : "no access_token");
		oidc_flight_land(f, "failed");
		return;
	}
	/* A token without a lifetime is not taken as one that never ends,
	 * nor as one already over (which would refresh on every request). */
	life = t->ot_expires_in > 0 ? t->ot_expires_in : 60;
	if ((t->ot_refresh != NULL &&
	        session_set_refresh(s, t->ot_refresh) == -1) ||
	    session_set_ptok(s, name, t->ot_access, time(NULL) + life, flags) ==
	        -1) {
		oidc_flight_land(f, "failed");
		return;
	}
	oidc_flight_save(f);
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
	if (f->of_profile != NULL) {
		oidc_flight_profile_done(f, st, &err);
		return;
	}
	if (st == 401) {
		oidc_flight_end(f);
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

/* Ask the token endpoint with the refresh token of the flight's copy of
 * the record (read after the slot was taken, so it is the newest one).
 * 0, or -1 (nothing started: no refresh token, or the request could not
 * be made; logged). */
static int
oidc_flight_request(struct oidc_flight *f)
{
	struct evbuffer *form;
	struct gh_error err;
	char *scope;

	if (session_open_tokens(f->of_session) == -1 ||
	    f->of_session->se_refresh.len == 0)
		return -1;
	form = evbuffer_new();
	if (form == NULL)
		return -1;
	httpc_form_add(form, "grant_type", "refresh_token");
	httpc_form_add(
	    form, "refresh_token", (const char *)f->of_session->se_refresh.buf);
	if (f->of_profile != NULL) {
		/* One resource's scopes; offline_access so that a rotating
		 * provider hands the next refresh token. */
		if (asprintf(&scope, "%s offline_access",
		        f->of_profile->tp_scopes) == -1) {
			evbuffer_free(form);
			return -1;
		}
		httpc_form_add(form, "scope", scope);
		free(scope);
	}
	f->of_xfer =
	    oidc_token_request(f->of_gen, form, oidc_flight_done_cb, f, &err);
	evbuffer_free(form);
	if (f->of_xfer == NULL) {
		log_warnx("refresh id=%s result=failed reason=\"%s\"",
		    f->of_rid, err.ge_msg);
		return -1;
	}
	return 0;
}

/* What a store failure on the way says in the refresh's log line. */
static const char *
oidc_flight_store_result(enum session_result r)
{
	return r == SESSION_NONE   ? "ended"
	    : r == SESSION_UNAVAIL ? "store_unavailable"
	                           : "store_failed";
}

/* The record, read again after the slot (and, with a shared store, the
 * lock) was taken: ask the provider, unless another replica has already
 * refreshed since the starter looked (its expiry moved on). */
static void
oidc_flight_reloaded(struct oidc_flight *f, enum session_result r)
{
	if (r != SESSION_OK) {
		oidc_flight_land(f, oidc_flight_store_result(r));
		return;
	}
	/* A profile's flight also looks in one process: a request that
	 * read its record before another flight landed would otherwise
	 * redeem the refresh token again for a token already there. */
	if ((f->of_shared || f->of_profile != NULL) &&
	    oidc_flight_expiry(f) > f->of_seen_at) {
		oidc_flight_land(f, "fresh");
		return;
	}
	if (oidc_flight_request(f) == -1)
		oidc_flight_land(f, "failed");
}

static void
oidc_flight_reloaded_cb(void *arg, enum session_result r)
{
	struct oidc_flight *f = oidc_flight_cast(arg);

	f->of_op = NULL;
	oidc_flight_reloaded(f, r);
}

static void
oidc_flight_reread(struct oidc_flight *f)
{
	const struct config *cfg = f->of_gen->wg_cfg;
	enum session_result r;

	r = session_reload_start(f->of_worker->w_reader, f->of_session,
	    time(NULL), cfg, oidc_flight_reloaded_cb, f, &f->of_op);
	if (r != SESSION_PENDING)
		oidc_flight_reloaded(f, r);
}

/* Another replica holds the lock: look at the record again shortly,
 * within the bound. */
static void
oidc_flight_wait(struct oidc_flight *f)
{
	struct timeval tv = {0, OIDC_SHARED_POLL_MS * 1000};

	if (request_ms_since(&f->of_start) > oidc_wait_ms(f->of_gen->wg_cfg)) {
		log_warnx("refresh id=%s result=failed reason=\"another "
		          "replica's refresh of this session did not end in "
		          "time\"",
		    f->of_rid);
		oidc_flight_land(f, "failed");
		return;
	}
	f->of_saving = 0;
	evtimer_add(f->of_timer, &tv);
}

static void
oidc_flight_locked(struct oidc_flight *f, enum session_result r)
{
	switch (r) {
	case SESSION_OK:
		f->of_locked = 1;
		oidc_flight_reread(f);
		return;
	case SESSION_BUSY:
		oidc_flight_wait(f);
		return;
	default:
		oidc_flight_land(f, oidc_flight_store_result(r));
		return;
	}
}

static void
oidc_flight_locked_cb(void *arg, enum session_result r)
{
	struct oidc_flight *f = oidc_flight_cast(arg);

	f->of_op = NULL;
	oidc_flight_locked(f, r);
}

static void
oidc_flight_lock(struct oidc_flight *f)
{
	enum session_result r;

	r = session_lock_start(f->of_worker->w_reader, f->of_session->se_key,
	    f->of_owner, oidc_lock_ttl_ms(f->of_gen->wg_cfg),
	    oidc_flight_locked_cb, f, &f->of_op);
	if (r != SESSION_PENDING)
		oidc_flight_locked(f, r);
}

/* A poll while another replica refreshes: the record shows its new token
 * (done: the waiters read it), or not yet (try the lock again: free means
 * the holder is gone without one, and this flight refreshes). */
static void
oidc_flight_polled(struct oidc_flight *f, enum session_result r)
{
	if (r != SESSION_OK) {
		oidc_flight_land(f, oidc_flight_store_result(r));
		return;
	}
	if (oidc_flight_expiry(f) > f->of_seen_at) {
		oidc_flight_land(f, "fresh");
		return;
	}
	oidc_flight_lock(f);
}

static void
oidc_flight_polled_cb(void *arg, enum session_result r)
{
	struct oidc_flight *f = oidc_flight_cast(arg);

	f->of_op = NULL;
	oidc_flight_polled(f, r);
}

static void
oidc_flight_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct oidc_flight *f = oidc_flight_cast(arg);
	enum session_result r;

	(void)fd;
	(void)what;
	if (f->of_saving) {
		oidc_flight_save(f);
		return;
	}
	r = session_reload_start(f->of_worker->w_reader, f->of_session,
	    time(NULL), f->of_gen->wg_cfg, oidc_flight_polled_cb, f, &f->of_op);
	if (r != SESSION_PENDING)
		oidc_flight_polled(f, r);
}

static void
oidc_flight_free(struct oidc_flight *f)
{
	session_op_cancel(f->of_op);
	f->of_op = NULL;
	if (f->of_timer != NULL)
		event_free(f->of_timer);
	session_free(f->of_session);
	worker_gen_release(f->of_gen);
	f->of_gen = NULL;
	f->of_magic = 0;
	free(f);
}

/* Why a flight could not start. */
enum oidc_start { START_OK, START_DECLINED, START_STORE, START_FRESH };

/*
 * Start a refresh of rq's session, owned by this worker, into *out:
 * with a shared store, take the store's lock first; then read the record
 * again, then ask the provider (at once with LMDB; once the store has
 * answered with Redis).  START_DECLINED: nothing to refresh with (no
 * record, no refresh token, or it could not start); START_STORE: the
 * store could not be asked.
 */
static enum oidc_start
oidc_flight_start(struct request_ctx *rq, const struct token_profile *tp,
    int64_t seen_at, struct oidc_flight **out)
{
	struct worker *w = rq->rq_worker;
	struct oidc_flight *f;
	enum session_result r;
	enum oidc_start rc = START_DECLINED;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return START_DECLINED;
	f->of_magic = OIDC_FLIGHT_MAGIC;
	f->of_worker = w;
	f->of_gen = worker_gen_hold(rq->rq_gen);
	f->of_profile = tp;
	snprintf(f->of_rid, sizeof(f->of_rid), "%s", rq->rq_id);
	clock_gettime(CLOCK_MONOTONIC, &f->of_start);
	f->of_session = session_new(time(NULL), rq->rq_cfg);
	if (f->of_session == NULL)
		goto fail;
	/* A copy of the record under the same key, tokens opened. */
	memcpy(f->of_session->se_key, rq->rq_session->se_key, 32);
	f->of_shared = session_store_shared();
	f->of_seen_at = seen_at;
	if (f->of_shared) {
		f->of_timer = evtimer_new(w->w_base, oidc_flight_timer_cb, f);
		if (f->of_timer == NULL ||
		    crypto_random(f->of_owner, sizeof(f->of_owner)) == -1)
			goto fail;
		r = session_lock_start(w->w_reader, f->of_session->se_key,
		    f->of_owner, oidc_lock_ttl_ms(rq->rq_cfg),
		    oidc_flight_locked_cb, f, &f->of_op);
	} else
		r = session_reload_start(w->w_reader, f->of_session, time(NULL),
		    rq->rq_cfg, oidc_flight_reloaded_cb, f, &f->of_op);
	/* A store that answers later answered nothing yet, or failed at
	 * once (it is not reachable); LMDB has answered. */
	if (r == SESSION_UNAVAIL || r == SESSION_ERR ||
	    (f->of_shared && r != SESSION_PENDING)) {
		rc = START_STORE;
		goto fail;
	}
	if (r == SESSION_OK && tp != NULL && oidc_flight_expiry(f) > seen_at) {
		/* Another flight stored it since rq read its record. */
		rc = START_FRESH;
		goto fail;
	}
	if (r != SESSION_PENDING &&
	    (r != SESSION_OK || oidc_flight_request(f) == -1))
		goto fail;
	f->of_next = w->w_flights;
	w->w_flights = f;
	*out = f;
	return START_OK;
fail:
	oidc_flight_free(f);
	return rc;
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
	    request_ms_since(&rq->rq_start) < oidc_wait_ms(rq->rq_cfg)) {
		evtimer_add(rq->rq_timer, &tv);
		return;
	}
	oidc_waiter_resume(rq);
}

/* A profile's token cannot be had now for a reason other than the
 * provider's refusal: say so (the session itself is fine). */
static enum step
oidc_refresh_unavailable(struct request_ctx *rq)
{
	rq->rq_event = "refresh";
	errpage_send(rq, 503, "token_unavailable",
	    "An access token this page needs could not be obtained now. "
	    "Please try again in a moment.",
	    0);
	return STEP_ERROR;
}

/*
 * The expiry and lifetime of the token rq needs: the session's own, or
 * profile tp's (0: none yet).  -1 when tp was refused: the caller asks
 * for consent.
 */
static int
oidc_refresh_expiry(struct session *s, const struct token_profile *tp,
    int64_t *exp, int64_t *life)
{
	const struct session_ptok *t;

	if (tp == NULL) {
		*exp = s->se_at_expires;
		*life = s->se_at_lifetime;
		return 0;
	}
	t = session_ptok_get(s, tp->tp_name);
	if (t != NULL && (t->sp_flags & SESSION_PTOK_REFUSED))
		return -1;
	*exp = t != NULL && t->sp_token.len > 0 ? t->sp_expires : 0;
	*life = t != NULL ? t->sp_lifetime : 0;
	return 0;
}

/* What a refresh is for. */
enum oidc_why {
	WHY_FORCE, /* POST /.auth/refresh */
	WHY_TOKEN, /* the forwarded access token (or a profile's token, when
	              one is given) nears its expiry or is missing */
	WHY_CHECK  /* the request path: WHY_TOKEN when forwarding, and
	              revalidation */
};

/* Whether s is due for revalidation now: session_revalidate has passed
 * since its last token grant, and no back-off holds it.  A session with
 * no refresh token cannot be asked (the back-off then spares each
 * request the look at its tokens for a while). */
static int
oidc_reval_due(const struct config *cfg, struct session *s, time_t now)
{
	if (cfg->cf_session_revalidate <= 0 ||
	    now - session_validated(s) < cfg->cf_session_revalidate ||
	    oidc_reval_waits(s->se_key, now))
		return 0;
	/* LMDB reads the tokens lazily: read them now, once per due
	 * session, to know. */
	if (session_has_refresh(s) == -1)
		(void)session_open_tokens(s);
	if (session_has_refresh(s) == 0) {
		log_debug("%s: a session without a refresh token cannot be "
		          "revalidated",
		    __func__);
		(void)oidc_reval_note(s->se_key, 1, now);
		return 0;
	}
	return 1;
}

static enum step
oidc_refresh_run(struct request_ctx *rq, const struct token_profile *tp,
    enum oidc_why why, void (*resume)(struct request_ctx *rq))
{
	const struct config *cfg = rq->rq_cfg;
	struct session *s = rq->rq_session;
	const struct worker *owner = NULL;
	struct oidc_flight *f;
	struct request_ctx **nw;
	time_t now = time(NULL);
	int64_t window, exp, life;
	int expired, due = 0, reval = 0, rc;
	struct timeval tv = {0, OIDC_POLL_MS * 1000};

	if (oidc_refresh_expiry(s, tp, &exp, &life) == -1)
		return STEP_DECLINED;
	/* Refresh within refresh_before of expiry, but never earlier than
	 * half-way through the token's life: a token shorter-lived than
	 * refresh_before would otherwise be refreshed on every request. */
	window = cfg->cf_refresh_before;
	if (life > 0 && window > life / 2)
		window = life / 2;
	/* A profile without a token yet needs one now; the session without
	 * an access token has nothing to keep fresh. */
	if (why == WHY_FORCE)
		due = 1;
	else if (tp != NULL)
		due = exp == 0 || exp - now <= window;
	else if (why == WHY_TOKEN || cfg->cf_forward_access_token)
		due = exp != 0 && exp - now <= window;
	expired = why == WHY_FORCE || (due && exp - now <= 5);
	/* Security: a revalidation holds the request until the provider
	 * has answered, so a user it no longer accepts gets no further
	 * request through; that wait happens once per session_revalidate
	 * (and once per back-off while the provider fails). */
	if (why == WHY_CHECK && tp == NULL && !expired &&
	    oidc_reval_due(cfg, s, now))
		reval = 1;
	if (!due && !reval)
		return STEP_OK;
	if (oidc_provider_meta(rq->rq_gen->wg_provider) == NULL) {
		/* The provider has not been reachable since start: the
		 * session is kept (only a refusal ends it), and the token is
		 * used while it lasts. */
		if (!expired)
			return STEP_OK;
		rq->rq_event = "refresh";
		metrics_refresh("provider_unavailable");
		log_info(
		    "refresh id=%s result=provider_unavailable", rq->rq_id);
		errpage_send(rq, 503, "provider_unavailable",
		    "The identity provider is unreachable, so the sign-in "
		    "cannot be renewed now. Please try again in a minute.",
		    0);
		return STEP_ERROR;
	}
	/* Nothing to refresh with: known now when the whole record is in
	 * hand (Redis reads it at once), else the flight's read finds out.
	 * For a profile the tokens are open already: a session without a
	 * refresh token gets its token through a sign-in. */
	if (session_has_refresh(s) == 0)
		return expired ? STEP_DECLINED : STEP_OK;
	if (reval)
		log_info("refresh id=%s revalidate: %llds since the last "
		         "token grant",
		    rq->rq_id, (long long)(now - session_validated(s)));
	rc = oidc_slot_take(s->se_key, rq->rq_worker, &owner);
	if (rc == -1) {
		if (!expired)
			return STEP_OK;
		return tp != NULL ? oidc_refresh_unavailable(rq)
		                  : STEP_DECLINED;
	}
	if (rc == 0) {
		switch (oidc_flight_start(rq, tp, exp, &f)) {
		case START_OK:
			break;
		case START_FRESH:
			/* rq's copy is older than the record: read it again
			 * (the poll below finds the slot free). */
			oidc_slot_release(s->se_key);
			f = NULL;
			expired = 1;
			break;
		case START_STORE:
			oidc_slot_release(s->se_key);
			if (!expired)
				return STEP_OK;
			oidc_store_unavailable(rq);
			return STEP_ERROR;
		case START_DECLINED:
		default:
			oidc_slot_release(s->se_key);
			/* No refresh token or provider: use what we have
			 * while it lasts. */
			if (!expired)
				return STEP_OK;
			return tp != NULL ? oidc_refresh_unavailable(rq)
			                  : STEP_DECLINED;
		}
		if (f != NULL)
			log_info("refresh id=%s%s%s started", rq->rq_id,
			    tp != NULL ? " token=" : "",
			    tp != NULL ? tp->tp_name : "");
	} else
		f = owner == rq->rq_worker
		    ? oidc_flight_find(rq->rq_worker, s->se_key)
		    : NULL;
	if (!expired && !reval)
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
	/* A request that waits again (its profile after another's flight)
	 * keeps its timer. */
	if (rq->rq_timer == NULL)
		rq->rq_timer =
		    evtimer_new(rq->rq_worker->w_base, oidc_poll_cb, rq);
	if (rq->rq_timer == NULL)
		return STEP_DECLINED;
	evtimer_add(rq->rq_timer, &tv);
	return STEP_AGAIN;
}

enum step
oidc_refresh_ensure(
    struct request_ctx *rq, int force, void (*resume)(struct request_ctx *rq))
{
	return oidc_refresh_run(
	    rq, NULL, force ? WHY_FORCE : WHY_TOKEN, resume);
}

enum step
oidc_refresh_token(struct request_ctx *rq, const struct token_profile *tp,
    void (*resume)(struct request_ctx *rq))
{
	return oidc_refresh_run(rq, tp, WHY_TOKEN, resume);
}

enum step
oidc_refresh_check(
    struct request_ctx *rq, void (*resume)(struct request_ctx *rq))
{
	return oidc_refresh_run(rq, NULL, WHY_CHECK, resume);
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
		if (f->of_gen->wg_provider != NULL)
			oidc_provider_unwait(f->of_gen->wg_provider, f);
		oidc_tokens_cleanup(&f->of_tokens);
		oidc_slot_release(f->of_session->se_key);
		free(f->of_waiters);
		oidc_flight_free(f);
	}
}
