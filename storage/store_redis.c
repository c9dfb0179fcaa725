/* SPDX-License-Identifier: ISC */
/*
 * store_redis.c: the session store in Redis, for several gatehouse
 * replicas sharing their sessions.  Each worker has one connection
 * (redis_conn.c) on its own event base; every call is asynchronous.
 *
 * A record is a hash at "gatehouse:s:<32 hex digits of the key>" with the
 * fields "h" (hot part) and "c" (cold part), as the caller sealed them,
 * expiring at the record's expiry (EXPIREAT): Redis drops ended records
 * itself, so there is no sweep.  A put is one Lua script (both parts and
 * the expiry at once, so no reader sees half a record); put_hot is one
 * too, which writes only when the record still exists (a record deleted
 * meanwhile, by a sign-out on another replica, stays deleted).  A get
 * asks for both parts when STORE_COLD is set (HMGET), else the hot part
 * (HGET).
 *
 * A lock (for one refresh at a time across replicas) is a plain key,
 * "gatehouse:l:<the same hex>", set with NX and PX to the owner's random
 * token, and released by a Lua compare-and-delete.
 *
 * Sentinel (redis-sentinel://): each worker's reader owns a watcher
 * (redis_sentinel.c) on its event base, and its connection goes to the
 * master the watcher last named.  A new master (a +switch-master, or a
 * round of questions after a failure) makes the connection start again
 * at once, without the backoff; a failed connection or a -READONLY
 * answer (a master demoted to replica) asks the watcher again.  A call
 * that failed because the connection did (not sent, or lost on the way;
 * a lock only when it was not sent, as it may have been taken) waits
 * for the next connection, at most STORE_REDIS_PARK_FACTOR x
 * redis_timeout, and is sent once more; when the outage is older than
 * that, calls fail at once, as on plain Redis.  A put (sign-in, refresh)
 * is followed by WAIT 1, so that it is on a replica before it is
 * acknowledged when that takes a moment (at most a quarter of
 * redis_timeout, capped at STORE_REDIS_WAIT_MAX_MS; past it the put
 * still succeeds, with a rate-limited warning).
 *
 * Tags (provider logout): a set per tag, "gatehouse:t:s:<hex of the sid
 * tag>" or "gatehouse:t:u:<hex of the sub tag>", of the hex keys of the
 * records filed under it, written by the same script as the record and
 * expiring with the latest of them.  Cleaned lazily: a record that ends
 * (sign-out, expiry) stays a member until its set expires or is ended,
 * and ending a set deletes the members that still exist and the set.
 * Once: "gatehouse:j:<hex>", set with NX and an expiry.
 *
 * Limits: a part may be at most STORE_REDIS_PART_MAX (64 KiB) both ways:
 * a put of a larger one is refused (STORE_ERR, logged), a reply with a
 * larger one fails that call (STORE_ERR, logged) and one that would not
 * fit in twice that drops the connection before it is read whole.
 */
#include <sys/queue.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/crypto.h"
#include "core/error.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "redis_conn.h"
#include "redis_sentinel.h"
#include "redis_url.h"
#include "store.h"

#define STORE_REDIS_PART_MAX (64 * 1024)
/* The read buffer may hold one whole answer: two parts and framing. */
#define STORE_REDIS_REPLY_MAX (2 * STORE_REDIS_PART_MAX + 1024)
#define STORE_REDIS_ELEMENTS_MAX 8
#define STORE_REDIS_PREFIX "gatehouse:s:"
#define STORE_REDIS_LOCK_PREFIX "gatehouse:l:" /* the same length */
#define STORE_REDIS_ONCE_PREFIX "gatehouse:j:" /* the same length */
#define STORE_REDIS_TAG_SID "gatehouse:t:s:"
#define STORE_REDIS_TAG_SUB "gatehouse:t:u:" /* the same length */
#define STORE_REDIS_TAGBUF (sizeof(STORE_REDIS_TAG_SID) + 2 * STORE_TAG_LEN)
#define STORE_REDIS_KEYBUF (sizeof(STORE_REDIS_PREFIX) + 2 * STORE_KEY_LEN)
#define STORE_REDIS_LOG_EVERY 10 /* seconds between per-call error lines */
/* Sentinel: how long (in redis_timeouts) a failed call may wait for the
 * next connection, and the longest WAIT for a replica after a put. */
#define STORE_REDIS_PARK_FACTOR 2
#define STORE_REDIS_WAIT_MAX_MS 250

#define STORE_REDIS_READER_MAGIC 0x52445244u /* "RDRD" */
#define STORE_REDIS_OP_MAGIC 0x52444f50u     /* "RDOP" */

/* Both parts and the expiry in one step. */
static const char store_redis_put_lua[] =
    "redis.call('HSET', KEYS[1], 'h', ARGV[1], 'c', ARGV[2]) "
    "redis.call('EXPIREAT', KEYS[1], ARGV[3]) "
    "return 1";
/* A whole record over one that is still there; never a new record. */
static const char store_redis_replace_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], 'h', ARGV[1], 'c', ARGV[2]) "
    "redis.call('EXPIREAT', KEYS[1], ARGV[3]) "
    "return 1";
/* The hot part of a record that is still there; never a new record. */
static const char store_redis_put_hot_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], 'h', ARGV[1]) "
    "return 1";
/* A record and its tags in one step: each tag's set gets the record's
 * hex key (ARGV[4]) and keeps the latest expiry of its members (ARGV[5]
 * is now, so the script needs no clock of its own).  ARGV[6] "1": only
 * over a record that is still there (0, nothing written, when not). */
static const char store_redis_put_tagged_lua[] =
    "if ARGV[6] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then "
    "return 0 end "
    "redis.call('HSET', KEYS[1], 'h', ARGV[1], 'c', ARGV[2]) "
    "redis.call('EXPIREAT', KEYS[1], ARGV[3]) "
    "for i = 2, #KEYS do "
    "redis.call('SADD', KEYS[i], ARGV[4]) "
    "if redis.call('TTL', KEYS[i]) < tonumber(ARGV[3]) - tonumber(ARGV[5]) "
    "then redis.call('EXPIREAT', KEYS[i], ARGV[3]) end "
    "end "
    "return 1";
/* End every record filed under a tag: the members are record keys by
 * hex, which the script names itself (ARGV[1] is the records' prefix),
 * so it suits one Redis server (or a Sentinel's master), not a Cluster.
 * Returns how many records existed and went. */
static const char store_redis_end_tagged_lua[] =
    "local n = 0 "
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "if string.match(id, '^[0-9a-f]+$') then "
    "n = n + redis.call('DEL', ARGV[1] .. id) end "
    "end "
    "redis.call('DEL', KEYS[1]) "
    "return n";
/* Release a lock only if it is still the owner's: one that expired and
 * was taken by another owner since is left alone. */
static const char store_redis_unlock_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) end "
    "return 0";

/* The process's handle. */
struct store_redis {
	struct redis_url sr_url;
	struct secret sr_password; /* from redis_password_file or the URL */
	int sr_timeout_ms;
	char sr_addr[REDIS_URL_HOST_MAX + 32]; /* for log lines */
	/* Sentinel: the sentinels' own password (their requirepass). */
	struct secret sr_sentinel_password;
	int sr_park_ms; /* how long a failed call waits for a connection */
	/* Shared by the workers (atomics): how many readers are not ready,
	 * whether store_unavailable was said (and store_recovered not yet),
	 * whether the store was ever ready. */
	int sr_down;
	int sr_logged_down;
	int sr_was_ready;
};

TAILQ_HEAD(store_redis_parked, store_op);

/* A worker's: its connection, and with Sentinel its watcher. */
struct store_redis_reader {
	uint32_t rr_magic;
	struct store_redis *rr_h;
	struct redis_conn *rr_conn;
	int rr_down;             /* counted in sr_down */
	long long rr_down_since; /* monotonic ms: when it last went down */
	int rr_closing;          /* being freed: nothing waits any more */
	struct redis_sentinel *rr_watch; /* Sentinel: the watcher */
	char rr_host[INET6_ADDRSTRLEN];  /* the master it named, */
	int rr_port;                     /* 0 until it names one */
	int rr_pending; /* the connection waits for the watcher's answer */
	int rr_failed;  /* the connection failed since it was last ready */
	struct event *rr_wait_ev; /* how long the connection waits for it */
	struct store_redis_parked rr_parked; /* calls waiting to be resent */
	struct event *rr_park_ev; /* the oldest parked call's deadline */
};

enum store_redis_kind {
	SR_GET,
	SR_PUT,
	SR_PUT_HOT,
	SR_DEL,
	SR_LOCK,
	SR_UNLOCK,
	SR_PUT_TAGGED,
	SR_END_TAGGED,
	SR_ONCE,
};

struct store_op {
	uint32_t so_magic;
	struct store_redis_reader *so_rd;
	enum store_redis_kind so_kind;
	int so_flags;
	store_get_fn *so_fn;
	store_done_fn *so_done;
	void *so_arg;
	struct redis_conn_cmd *so_cmd;
	/* Sentinel: the command kept to be sent again, once. */
	int so_argc;
	const char **so_argv; /* one block with the lengths and bytes */
	size_t *so_argvlen;
	int so_resent; /* sent again already: no third time */
	int so_sent;   /* reached the connection (its effect is unknown) */
	int so_parked; /* in rr_parked */
	long long so_deadline; /* monotonic ms, while parked */
	TAILQ_ENTRY(store_op) so_park;
	size_t *so_count; /* end_tagged: how many records went */
	int so_waiting;   /* the put is done; WAIT's answer is awaited */
	int so_rc;        /* the put's result, while WAIT runs */
};

static struct store_redis_reader *
store_redis_reader_cast(void *arg)
{
	return MAGIC_CAST(
	    struct store_redis_reader, rr_magic, STORE_REDIS_READER_MAGIC, arg);
}

static struct store_op *
store_redis_op_cast(void *arg)
{
	return MAGIC_CAST(struct store_op, so_magic, STORE_REDIS_OP_MAGIC, arg);
}

/* len bytes of p in lower-case hex after prefix, into out. */
static void
store_redis_hex(
    const char *prefix, const unsigned char *p, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = strlen(prefix);

	memcpy(out, prefix, n);
	for (i = 0; i < len; i++) {
		out[n + 2 * i] = hex[p[i] >> 4];
		out[n + 2 * i + 1] = hex[p[i] & 0xf];
	}
	out[n + 2 * len] = '\0';
}

static void
store_redis_key(const unsigned char *key, char out[STORE_REDIS_KEYBUF])
{
	store_redis_hex(STORE_REDIS_PREFIX, key, STORE_KEY_LEN, out);
}

static long long
store_redis_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void store_redis_finish(struct store_op *op, int rc);
static redis_conn_reply_fn store_redis_reply_cb;

/* --- calls waiting for the next connection (Sentinel) ---------------- */

static void
store_redis_park_arm(struct store_redis_reader *rd)
{
	struct store_op *op = TAILQ_FIRST(&rd->rr_parked);
	long long ms;
	struct timeval tv;

	evtimer_del(rd->rr_park_ev);
	if (op == NULL)
		return;
	ms = op->so_deadline - store_redis_now_ms();
	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(rd->rr_park_ev, &tv);
}

static void
store_redis_unpark(struct store_op *op)
{
	struct store_redis_reader *rd = op->so_rd;

	TAILQ_REMOVE(&rd->rr_parked, op, so_park);
	op->so_parked = 0;
	store_redis_park_arm(rd);
}

/*
 * Whether op, whose connection failed, may wait for the next one and be
 * sent again: with Sentinel only (a failover is a wait worth making),
 * once, not while closing, and not when the outage is older than the
 * wait (then the store is down, not switching: fail at once).  A lock
 * that reached the server is never sent again: it may have been taken.
 */
static int
store_redis_may_park(struct store_op *op)
{
	struct store_redis_reader *rd = op->so_rd;
	struct store_redis *h = rd->rr_h;

	if (!h->sr_url.ru_sentinel || rd->rr_closing || op->so_resent ||
	    op->so_argv == NULL)
		return 0;
	if ((op->so_kind == SR_LOCK || op->so_kind == SR_ONCE) && op->so_sent)
		return 0;
	return !rd->rr_down ||
	    store_redis_now_ms() - rd->rr_down_since < h->sr_park_ms;
}

static void
store_redis_park(struct store_op *op)
{
	struct store_redis_reader *rd = op->so_rd;

	op->so_cmd = NULL;
	op->so_parked = 1;
	op->so_deadline = store_redis_now_ms() + rd->rr_h->sr_park_ms;
	/* Every call waits as long: the list stays in deadline order. */
	TAILQ_INSERT_TAIL(&rd->rr_parked, op, so_park);
	if (TAILQ_FIRST(&rd->rr_parked) == op)
		store_redis_park_arm(rd);
}

/* Calls that waited their time for a connection: unavailable. */
static void
store_redis_park_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_redis_reader *rd = store_redis_reader_cast(arg);
	struct store_op *op;
	long long now = store_redis_now_ms();

	(void)fd;
	(void)what;
	while ((op = TAILQ_FIRST(&rd->rr_parked)) != NULL &&
	    op->so_deadline <= now) {
		store_redis_unpark(op);
		store_redis_finish(op, STORE_UNAVAIL);
	}
	store_redis_park_arm(rd);
}

/* The connection is back: every waiting call is sent once more.  Only
 * those there now (a callback may park or cancel others meanwhile). */
static void
store_redis_resend_parked(struct store_redis_reader *rd)
{
	struct store_op *op;
	const char *why;
	size_t n = 0;

	TAILQ_FOREACH(op, &rd->rr_parked, so_park)
	n++;
	while (n-- > 0 && (op = TAILQ_FIRST(&rd->rr_parked)) != NULL) {
		store_redis_unpark(op);
		op->so_resent = 1;
		op->so_sent = 1;
		if (redis_conn_command(rd->rr_conn, op->so_argc, op->so_argv,
		        op->so_argvlen, store_redis_reply_cb, op, &op->so_cmd,
		        &why) == -1)
			store_redis_finish(op, STORE_UNAVAIL);
	}
}

/* --- availability: one line per change, for the whole process ------- */

static void
store_redis_state_cb(void *arg, int up, const char *why)
{
	struct store_redis_reader *rd = store_redis_reader_cast(arg);
	struct store_redis *h = rd->rr_h;
	char reason[200];

	if (up) {
		rd->rr_failed = 0;
		if (!TAILQ_EMPTY(&rd->rr_parked))
			store_redis_resend_parked(rd);
		if (!rd->rr_down)
			return;
		rd->rr_down = 0;
		if (__atomic_sub_fetch(&h->sr_down, 1, __ATOMIC_ACQ_REL) != 0)
			return;
		/* Every worker is up: said once, "recovered" after a
		 * store_unavailable line, else (the first time) "ready". */
		if (__atomic_exchange_n(
		        &h->sr_logged_down, 0, __ATOMIC_ACQ_REL) == 1)
			log_info("store_recovered backend=redis addr=%s",
			    h->sr_addr);
		else if (__atomic_exchange_n(
		             &h->sr_was_ready, 1, __ATOMIC_ACQ_REL) == 0)
			log_info(
			    "store_ready backend=redis addr=%s", h->sr_addr);
		return;
	}
	rd->rr_failed = 1;
	/* The master may have moved: the sentinels are asked again now
	 * (merged with a round under way), not after the backoff. */
	if (rd->rr_watch != NULL)
		redis_sentinel_refresh(rd->rr_watch);
	if (!rd->rr_down) {
		rd->rr_down = 1;
		rd->rr_down_since = store_redis_now_ms();
		__atomic_add_fetch(&h->sr_down, 1, __ATOMIC_ACQ_REL);
	}
	/* A server's words, or the system's: never the password. */
	if (__atomic_exchange_n(&h->sr_logged_down, 1, __ATOMIC_ACQ_REL) == 0)
		log_warnx("store_unavailable backend=redis addr=%s "
		          "reason=\"%s\"",
		    h->sr_addr,
		    log_sanitize(
		        reason, sizeof(reason), why != NULL ? why : "unknown"));
}

/*
 * Where a worker's connection goes: for redis:// the URL's one host and
 * port; with Sentinel the master the watcher last named, after asking it
 * again when the last connection failed.  Until the watcher has named
 * one the connection waits (store_redis_master gives it the answer), at
 * most redis_timeout, then fails (one store_unavailable line) and tries
 * again after the backoff.
 */
static void
store_redis_target(void *arg, struct redis_conn *c)
{
	struct store_redis_reader *rd = store_redis_reader_cast(arg);
	const struct redis_url_addr *a = &rd->rr_h->sr_url.ru_addrs[0];
	struct timeval tv;

	if (rd->rr_watch == NULL) {
		redis_conn_connect_to(c, a->ra_host, a->ra_port);
		return;
	}
	if (rd->rr_failed)
		redis_sentinel_refresh(rd->rr_watch);
	if (rd->rr_port != 0) {
		redis_conn_connect_to(c, rd->rr_host, rd->rr_port);
		return;
	}
	rd->rr_pending = 1;
	tv.tv_sec = rd->rr_h->sr_timeout_ms / 1000;
	tv.tv_usec = (rd->rr_h->sr_timeout_ms % 1000) * 1000;
	evtimer_add(rd->rr_wait_ev, &tv);
}

/* No sentinel named the master in time. */
static void
store_redis_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_redis_reader *rd = store_redis_reader_cast(arg);
	char why[REDIS_SENTINEL_NAME_MAX + 64];

	(void)fd;
	(void)what;
	if (!rd->rr_pending)
		return;
	rd->rr_pending = 0;
	snprintf(why, sizeof(why), "no sentinel has named the master %s",
	    rd->rr_h->sr_url.ru_master);
	redis_conn_target_failed(rd->rr_conn, why);
}

/* The watcher's news: the master is at host:port (a new address). */
static void
store_redis_master(void *arg, const char *host, int port)
{
	struct store_redis_reader *rd = store_redis_reader_cast(arg);

	snprintf(rd->rr_host, sizeof(rd->rr_host), "%s", host);
	rd->rr_port = port;
	if (rd->rr_pending) {
		rd->rr_pending = 0;
		evtimer_del(rd->rr_wait_ev);
		redis_conn_connect_to(rd->rr_conn, rd->rr_host, rd->rr_port);
		return;
	}
	/* Connected to the old master, or waiting out a backoff: go to the
	 * new one now.  Calls on the old connection wait for the new. */
	redis_conn_reconnect(rd->rr_conn, "the master moved");
}

/* --- open and close ------------------------------------------------- */

static void
store_redis_close(void *arg)
{
	struct store_redis *h = arg;

	if (h == NULL)
		return;
	redis_url_cleanup(&h->sr_url);
	crypto_secret_cleanup(&h->sr_password);
	crypto_secret_cleanup(&h->sr_sentinel_password);
	free(h);
}

static void *
store_redis_open(
    const char *url, const struct store_options *opt, struct gh_error *err)
{
	struct store_redis *h;
	const struct secret *pw;
	const struct redis_url_addr *a;
	const char *errstr;

	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		gh_error_set(err, "store_open", "out of memory");
		return NULL;
	}
	if (redis_url_parse(url, &h->sr_url, &errstr) == -1) {
		gh_error_set(err, "store_url", "session_store: %s", errstr);
		goto fail;
	}
	if (h->sr_url.ru_sentinel && opt->so_sentinel_password != NULL &&
	    opt->so_sentinel_password->len > 0 &&
	    crypto_secret_set(&h->sr_sentinel_password,
	        opt->so_sentinel_password->buf,
	        opt->so_sentinel_password->len) == -1) {
		gh_error_set(err, "store_open", "out of memory");
		goto fail;
	}
	pw = opt->so_password != NULL && opt->so_password->len > 0
	    ? opt->so_password
	    : &h->sr_url.ru_password;
	if (pw->len > 0 &&
	    crypto_secret_set(&h->sr_password, pw->buf, pw->len) == -1) {
		gh_error_set(err, "store_open", "out of memory");
		goto fail;
	}
	if (h->sr_url.ru_user != NULL && h->sr_password.len == 0) {
		gh_error_set(err, "store_url",
		    "session_store: a Redis user needs a password (in the URL "
		    "or redis_password_file)");
		goto fail;
	}
	h->sr_timeout_ms = opt->so_timeout_ms > 0 ? opt->so_timeout_ms : 1000;
	h->sr_park_ms = STORE_REDIS_PARK_FACTOR * h->sr_timeout_ms;
	a = &h->sr_url.ru_addrs[0];
	if (h->sr_url.ru_sentinel)
		snprintf(h->sr_addr, sizeof(h->sr_addr), "sentinel:%s/%d",
		    h->sr_url.ru_master, h->sr_url.ru_db);
	else
		snprintf(h->sr_addr, sizeof(h->sr_addr), "%s%s%s:%d/%d",
		    strchr(a->ra_host, ':') != NULL ? "[" : "", a->ra_host,
		    strchr(a->ra_host, ':') != NULL ? "]" : "", a->ra_port,
		    h->sr_url.ru_db);
	return h;
fail:
	store_redis_close(h);
	return NULL;
}

static void store_redis_reader_free(void *arg, void *r);

/* A reader's Sentinel watcher and its timers. 0, or -1 (logged). */
static int
store_redis_watch_new(struct store_redis_reader *rd, struct event_base *base)
{
	struct store_redis *h = rd->rr_h;
	struct redis_hostport hp[REDIS_URL_MAX_ADDRS];
	struct redis_sentinel_cfg cfg;
	struct gh_error err;
	size_t i;

	rd->rr_wait_ev = evtimer_new(base, store_redis_wait_cb, rd);
	rd->rr_park_ev = evtimer_new(base, store_redis_park_cb, rd);
	if (rd->rr_wait_ev == NULL || rd->rr_park_ev == NULL)
		return -1;
	memset(hp, 0, sizeof(hp));
	for (i = 0; i < h->sr_url.ru_naddrs && i < REDIS_URL_MAX_ADDRS; i++) {
		snprintf(hp[i].host, sizeof(hp[i].host), "%s",
		    h->sr_url.ru_addrs[i].ra_host);
		hp[i].port = h->sr_url.ru_addrs[i].ra_port;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.sc_sentinels = hp;
	cfg.sc_n = i;
	cfg.sc_master_name = h->sr_url.ru_master;
	cfg.sc_password = h->sr_sentinel_password.len > 0
	    ? (const char *)h->sr_sentinel_password.buf
	    : NULL;
	cfg.sc_timeout_ms = h->sr_timeout_ms;
	memset(&err, 0, sizeof(err));
	rd->rr_watch =
	    redis_sentinel_new(base, &cfg, store_redis_master, rd, &err);
	if (rd->rr_watch == NULL) {
		log_warnx("store_error backend=redis op=sentinel reason=\"%s\"",
		    err.ge_msg);
		return -1;
	}
	return 0;
}

static void *
store_redis_reader_new(void *arg, struct event_base *base)
{
	struct store_redis *h = arg;
	struct store_redis_reader *rd;
	struct redis_conn_params p;

	if (base == NULL)
		return NULL; /* every call needs the worker's event loop */
	rd = calloc(1, sizeof(*rd));
	if (rd == NULL)
		return NULL;
	rd->rr_magic = STORE_REDIS_READER_MAGIC;
	rd->rr_h = h;
	TAILQ_INIT(&rd->rr_parked);
	/* Not ready until its handshake is through. */
	rd->rr_down = 1;
	rd->rr_down_since = store_redis_now_ms();
	__atomic_add_fetch(&h->sr_down, 1, __ATOMIC_ACQ_REL);
	if (h->sr_url.ru_sentinel && store_redis_watch_new(rd, base) == -1) {
		store_redis_reader_free(h, rd);
		return NULL;
	}
	memset(&p, 0, sizeof(p));
	p.rp_user = h->sr_url.ru_user;
	p.rp_password = &h->sr_password;
	p.rp_db = h->sr_url.ru_db;
	p.rp_timeout_ms = h->sr_timeout_ms;
	p.rp_reply_max = STORE_REDIS_REPLY_MAX;
	p.rp_elements_max = STORE_REDIS_ELEMENTS_MAX;
	p.rp_target = store_redis_target;
	p.rp_state = store_redis_state_cb;
	p.rp_arg = rd;
	rd->rr_conn = redis_conn_new(base, &p);
	if (rd->rr_conn == NULL) {
		store_redis_reader_free(h, rd);
		return NULL;
	}
	return rd;
}

static void
store_redis_reader_free(void *arg, void *r)
{
	struct store_redis *h = arg;
	struct store_redis_reader *rd;
	struct store_op *op;

	if (r == NULL)
		return;
	rd = store_redis_reader_cast(r);
	/* Nothing waits for a connection from here on: the connection's
	 * calls and the waiting ones fail now. */
	rd->rr_closing = 1;
	redis_sentinel_free(rd->rr_watch);
	rd->rr_watch = NULL;
	redis_conn_free(rd->rr_conn);
	while ((op = TAILQ_FIRST(&rd->rr_parked)) != NULL) {
		TAILQ_REMOVE(&rd->rr_parked, op, so_park);
		op->so_parked = 0;
		store_redis_finish(op, STORE_UNAVAIL);
	}
	if (rd->rr_wait_ev != NULL)
		event_free(rd->rr_wait_ev);
	if (rd->rr_park_ev != NULL)
		event_free(rd->rr_park_ev);
	if (rd->rr_down)
		__atomic_sub_fetch(&h->sr_down, 1, __ATOMIC_ACQ_REL);
	rd->rr_magic = 0;
	free(rd);
}

static int
store_redis_ready(void *arg, void *r)
{
	struct store_redis *h = arg;

	(void)r;
	return __atomic_load_n(&h->sr_down, __ATOMIC_ACQUIRE) == 0;
}

static int
store_redis_sweep(void *h, time_t now, size_t max, size_t *deleted)
{
	(void)h;
	(void)now;
	(void)max;
	*deleted = 0; /* Redis expires records itself (EXPIREAT) */
	return STORE_OK;
}

/* --- replies --------------------------------------------------------- */

/* A call's failure that is not the connection's: one line per 10 s per
 * worker, with how many were held back. */
static void
store_redis_log_error(
    struct store_redis_reader *rd, const char *what, const char *why)
{
	static __thread struct log_limit limit;
	unsigned missed;
	char buf[200], *copy;

	if (!log_limit_pass(&limit, STORE_REDIS_LOG_EVERY, &missed))
		return;
	/* Scrubbed whole, before sanitising and cutting can hide a copy of
	 * the password from the scrub. */
	copy = strdup(why);
	if (copy != NULL)
		redis_conn_scrub(rd->rr_conn, copy);
	log_sanitize(buf, sizeof(buf), copy != NULL ? copy : "out of memory");
	free(copy);
	log_warnx("store_error backend=redis op=%s reason=\"%s\" "
	          "suppressed=%u",
	    what, buf, missed);
}

/* An error reply: the server cannot serve now (it is loading, read-only,
 * a replica, or wants AUTH again), or the call itself failed. */
static int
store_redis_error_result(
    struct store_redis_reader *rd, const redisReply *r, const char *what)
{
	static const char *const unavail[] = {"LOADING", "NOAUTH", "READONLY",
	    "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN"};
	size_t i, n;

	for (i = 0; i < sizeof(unavail) / sizeof(unavail[0]); i++) {
		n = strlen(unavail[i]);
		if (r->len >= n && strncmp(r->str, unavail[i], n) == 0)
			return STORE_UNAVAIL;
	}
	store_redis_log_error(rd, what, r->str);
	return STORE_ERR;
}

/* One field of a get's answer: a string of at most the part limit, or
 * nil (*p NULL).  0, or -1 (logged). */
static int
store_redis_part(struct store_redis_reader *rd, const redisReply *r,
    const unsigned char **p, size_t *len)
{
	char why[96];

	*p = NULL;
	*len = 0;
	if (r->type == REDIS_REPLY_NIL)
		return 0;
	if (r->type != REDIS_REPLY_STRING) {
		store_redis_log_error(
		    rd, "get", "a record field is not a string");
		return -1;
	}
	if (r->len > STORE_REDIS_PART_MAX) {
		snprintf(why, sizeof(why),
		    "a record part of %zu bytes is over the limit of %d",
		    (size_t)r->len, STORE_REDIS_PART_MAX);
		store_redis_log_error(rd, "get", why);
		return -1;
	}
	*p = (const unsigned char *)r->str;
	*len = r->len;
	return 0;
}

static int
store_redis_get_result(struct store_op *op, const redisReply *r)
{
	const unsigned char *hot, *cold = NULL;
	size_t hotlen, coldlen = 0;

	if (op->so_flags & STORE_COLD) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			store_redis_log_error(op->so_rd, "get",
			    "HMGET's answer is not "
			    "two fields");
			return STORE_ERR;
		}
		if (store_redis_part(op->so_rd, r->element[0], &hot, &hotlen) ==
		        -1 ||
		    store_redis_part(
		        op->so_rd, r->element[1], &cold, &coldlen) == -1)
			return STORE_ERR;
		if (hot == NULL || cold == NULL)
			return STORE_NOTFOUND;
	} else {
		if (store_redis_part(op->so_rd, r, &hot, &hotlen) == -1)
			return STORE_ERR;
		if (hot == NULL)
			return STORE_NOTFOUND;
	}
	return op->so_fn(op->so_arg, hot, hotlen, cold, coldlen) == 0
	    ? STORE_OK
	    : STORE_ERR;
}

/* The integer answer of put, put_hot and del: >0 done, 0 no record. */
static int
store_redis_int_result(
    struct store_redis_reader *rd, const redisReply *r, const char *what)
{
	if (r->type != REDIS_REPLY_INTEGER) {
		store_redis_log_error(rd, what, "the answer is not an integer");
		return STORE_ERR;
	}
	return r->integer > 0 ? STORE_OK : STORE_NOTFOUND;
}

static const char *const store_redis_kind_names[] = {"get", "put", "put_hot",
    "del", "lock", "unlock", "put_tagged", "end_tagged", "once"};
static const enum metrics_store_op store_redis_kind_metrics[] = {
    METRICS_STORE_GET, METRICS_STORE_PUT, METRICS_STORE_PUT_HOT,
    METRICS_STORE_DELETE, METRICS_STORE_LOCK, METRICS_STORE_UNLOCK,
    METRICS_STORE_PUT, METRICS_STORE_DELETE, METRICS_STORE_LOCK};

/* end_tagged's answer: how many records went (0 is no failure). */
static int
store_redis_count_result(struct store_op *op, const redisReply *r)
{
	if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
		store_redis_log_error(
		    op->so_rd, "end_tagged", "the answer is not a count");
		return STORE_ERR;
	}
	*op->so_count = (size_t)r->integer;
	return STORE_OK;
}

/* SET NX's answer: OK (taken) or nil (another owner holds it). */
static int
store_redis_lock_result(struct store_redis_reader *rd, const redisReply *r)
{
	if (r->type == REDIS_REPLY_NIL)
		return STORE_BUSY;
	if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
		return STORE_OK;
	store_redis_log_error(rd, "lock", "SET NX answered neither OK nor nil");
	return STORE_ERR;
}

/* The end of a call: counted, freed, then its caller told. */
static void
store_redis_finish(struct store_op *op, int rc)
{
	store_done_fn *done = op->so_done;
	void *darg = op->so_arg;

	metrics_store_op(store_redis_kind_metrics[op->so_kind], rc);
	op->so_magic = 0;
	free(op->so_argv);
	free(op);
	if (done != NULL)
		done(darg, rc);
}

/* WAIT's answer after a put: the put stands either way (the master has
 * it); a put that no replica had in time is said, rate-limited. */
static void
store_redis_wait_result(struct store_op *op, const redisReply *r)
{
	if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1)
		return;
	store_redis_log_error(op->so_rd, "put",
	    r == NULL ? "WAIT got no answer: the session may not be on a "
	                "replica yet"
	        : r->type == REDIS_REPLY_INTEGER
	        ? "no replica acknowledged the session within the WAIT "
	          "timeout"
	        : "WAIT's answer is not an integer");
}

/* Sentinel: after a put, WAIT 1 (see the top of the file).  0 when it
 * is on its way; -1 when it could not be sent. */
static int
store_redis_send_wait(struct store_op *op, int rc)
{
	struct store_redis_reader *rd = op->so_rd;
	char ms[16];
	const char *argv[3], *why;
	size_t len[3];
	int wait_ms = rd->rr_h->sr_timeout_ms / 4;

	if (wait_ms > STORE_REDIS_WAIT_MAX_MS)
		wait_ms = STORE_REDIS_WAIT_MAX_MS;
	if (wait_ms < 1)
		wait_ms = 1;
	snprintf(ms, sizeof(ms), "%d", wait_ms);
	argv[0] = "WAIT";
	argv[1] = "1";
	argv[2] = ms;
	len[0] = 4;
	len[1] = 1;
	len[2] = strlen(ms);
	op->so_waiting = 1;
	op->so_rc = rc;
	return redis_conn_command(rd->rr_conn, 3, argv, len,
	    store_redis_reply_cb, op, &op->so_cmd, &why);
}

/* Whether an error reply says that this server is no master (any more):
 * a script's write gets the same words after its own prefix. */
static int
store_redis_readonly(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && r->str != NULL &&
	    strstr(r->str, "READONLY") != NULL;
}

static void
store_redis_reply_cb(void *arg, const redisReply *r, const char *why)
{
	struct store_op *op = store_redis_op_cast(arg);
	struct store_redis_reader *rd = op->so_rd;
	const char *what = store_redis_kind_names[op->so_kind];
	int rc, readonly;

	(void)why; /* the connection's state line says it, once */
	op->so_cmd = NULL;
	if (op->so_waiting) {
		store_redis_wait_result(op, r);
		store_redis_finish(op, op->so_rc);
		return;
	}
	readonly = r != NULL && store_redis_readonly(r);
	if (readonly && rd->rr_watch != NULL) {
		/* A demoted master: ask the sentinels, leave it; every call
		 * on it, this one too, waits for the next connection. */
		redis_sentinel_refresh(rd->rr_watch);
		if (store_redis_may_park(op)) {
			store_redis_park(op);
			op = NULL;
		}
		redis_conn_drop(rd->rr_conn,
		    "the server is a replica now "
		    "(READONLY)");
		if (op == NULL)
			return;
	}
	if (r == NULL && store_redis_may_park(op)) {
		store_redis_park(op);
		return;
	}
	if (r == NULL)
		rc = STORE_UNAVAIL;
	else if (r->type == REDIS_REPLY_ERROR)
		rc = store_redis_error_result(rd, r, what);
	else if (op->so_kind == SR_GET)
		rc = store_redis_get_result(op, r);
	else if (op->so_kind == SR_LOCK || op->so_kind == SR_ONCE)
		rc = store_redis_lock_result(rd, r);
	else if (op->so_kind == SR_END_TAGGED)
		rc = store_redis_count_result(op, r);
	else
		rc = store_redis_int_result(rd, r, what);
	if (rc == STORE_OK &&
	    (op->so_kind == SR_PUT || op->so_kind == SR_PUT_TAGGED) &&
	    rd->rr_watch != NULL && store_redis_send_wait(op, rc) == 0)
		return;
	store_redis_finish(op, rc);
}

/* Sentinel: keep a copy of the command, to send it again.  0 or -1. */
static int
store_redis_keep(
    struct store_op *op, int argc, const char **argv, const size_t *len)
{
	size_t total = 0, off;
	char *p;
	int i;

	for (i = 0; i < argc; i++)
		total += len[i];
	p = malloc(argc * (sizeof(char *) + sizeof(size_t)) + total + 1);
	if (p == NULL)
		return -1;
	op->so_argv = (const char **)(void *)p;
	op->so_argvlen = (size_t *)(void *)(p + argc * sizeof(char *));
	off = argc * (sizeof(char *) + sizeof(size_t));
	for (i = 0; i < argc; i++) {
		if (len[i] > 0)
			memcpy(p + off, argv[i], len[i]);
		op->so_argv[i] = p + off;
		op->so_argvlen[i] = len[i];
		off += len[i];
	}
	op->so_argc = argc;
	return 0;
}

/* Send argv for op (taken: freed here when it cannot be sent, unless it
 * waits for the next connection, with Sentinel). */
static int
store_redis_send(struct store_redis_reader *rd, struct store_op *op, int argc,
    const char **argv, const size_t *len, struct store_op **out)
{
	const char *why;

	if (rd->rr_watch != NULL &&
	    store_redis_keep(op, argc, argv, len) == -1) {
		op->so_magic = 0;
		free(op);
		return STORE_ERR;
	}
	if (redis_conn_command(rd->rr_conn, argc, argv, len,
	        store_redis_reply_cb, op, &op->so_cmd, &why) == -1) {
		if (!store_redis_may_park(op)) {
			op->so_magic = 0;
			free(op->so_argv);
			free(op);
			return STORE_UNAVAIL;
		}
		store_redis_park(op);
	} else
		op->so_sent = 1;
	if (out != NULL)
		*out = op;
	return STORE_PENDING;
}

static struct store_op *
store_redis_op_new(struct store_redis_reader *rd, enum store_redis_kind kind,
    store_done_fn *done, void *arg)
{
	struct store_op *op;

	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->so_magic = STORE_REDIS_OP_MAGIC;
	op->so_rd = rd;
	op->so_kind = kind;
	op->so_done = done;
	op->so_arg = arg;
	return op;
}

/* --- the calls ------------------------------------------------------- */

static int
store_redis_async_get(void *h, void *r, const unsigned char *key, time_t now,
    int flags, store_get_fn *fn, store_done_fn *done, void *arg,
    struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF];
	const char *argv[4];
	size_t len[4];
	struct store_op *op;

	(void)h;
	(void)now; /* Redis has dropped an ended record already */
	op = store_redis_op_new(rd, SR_GET, done, arg);
	if (op == NULL)
		return STORE_ERR;
	op->so_flags = flags;
	op->so_fn = fn;
	store_redis_key(key, k);
	argv[0] = (flags & STORE_COLD) ? "HMGET" : "HGET";
	argv[1] = k;
	argv[2] = "h";
	argv[3] = "c";
	len[0] = strlen(argv[0]);
	len[1] = strlen(k);
	len[2] = len[3] = 1;
	return store_redis_send(
	    rd, op, (flags & STORE_COLD) ? 4 : 3, argv, len, out);
}

static int
store_redis_too_large(size_t hotlen, size_t coldlen)
{
	if (hotlen <= STORE_REDIS_PART_MAX && coldlen <= STORE_REDIS_PART_MAX)
		return 0;
	log_warnx("store_error backend=redis op=put reason=\"a record part "
	          "of %zu bytes is over the limit of %d\"",
	    hotlen > coldlen ? hotlen : coldlen, STORE_REDIS_PART_MAX);
	return 1;
}

static int store_redis_put_script(struct store_redis_reader *rd,
    const char *script, size_t scriptlen, const unsigned char *key,
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen, store_done_fn *done, void *arg, struct store_op **out);

static int
store_redis_async_put(void *h, void *r, const unsigned char *key, time_t expiry,
    const void *hot, size_t hotlen, const void *cold, size_t coldlen,
    store_done_fn *done, void *arg, struct store_op **out)
{
	(void)h;
	return store_redis_put_script(store_redis_reader_cast(r),
	    store_redis_put_lua, sizeof(store_redis_put_lua) - 1, key, expiry,
	    hot, hotlen, cold, coldlen, done, arg, out);
}

/* A put whose script answers 0 (STORE_NOTFOUND) for a deleted record. */
static int
store_redis_async_replace(void *h, void *r, const unsigned char *key,
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen, store_done_fn *done, void *arg, struct store_op **out)
{
	(void)h;
	return store_redis_put_script(store_redis_reader_cast(r),
	    store_redis_replace_lua, sizeof(store_redis_replace_lua) - 1, key,
	    expiry, hot, hotlen, cold, coldlen, done, arg, out);
}

static int
store_redis_put_script(struct store_redis_reader *rd, const char *script,
    size_t scriptlen, const unsigned char *key, time_t expiry, const void *hot,
    size_t hotlen, const void *cold, size_t coldlen, store_done_fn *done,
    void *arg, struct store_op **out)
{
	char k[STORE_REDIS_KEYBUF], exp[24];
	const char *argv[7];
	size_t len[7];
	struct store_op *op;

	if (store_redis_too_large(hotlen, coldlen))
		return STORE_ERR;
	op = store_redis_op_new(rd, SR_PUT, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_key(key, k);
	snprintf(exp, sizeof(exp), "%lld", (long long)expiry);
	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = "1";
	argv[3] = k;
	argv[4] = hot;
	argv[5] = cold;
	argv[6] = exp;
	len[0] = 4;
	len[1] = scriptlen;
	len[2] = 1;
	len[3] = strlen(k);
	len[4] = hotlen;
	len[5] = coldlen;
	len[6] = strlen(exp);
	/* An empty part has no pointer to give: any will do for 0 bytes. */
	if (hot == NULL)
		argv[4] = "";
	if (cold == NULL)
		argv[5] = "";
	return store_redis_send(rd, op, 7, argv, len, out);
}

static int
store_redis_async_put_hot(void *h, void *r, const unsigned char *key,
    const void *hot, size_t hotlen, store_done_fn *done, void *arg,
    struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF];
	const char *argv[5];
	size_t len[5];
	struct store_op *op;

	(void)h;
	if (store_redis_too_large(hotlen, 0))
		return STORE_ERR;
	op = store_redis_op_new(rd, SR_PUT_HOT, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_key(key, k);
	argv[0] = "EVAL";
	argv[1] = store_redis_put_hot_lua;
	argv[2] = "1";
	argv[3] = k;
	argv[4] = hot != NULL ? hot : "";
	len[0] = 4;
	len[1] = sizeof(store_redis_put_hot_lua) - 1;
	len[2] = 1;
	len[3] = strlen(k);
	len[4] = hotlen;
	return store_redis_send(rd, op, 5, argv, len, out);
}

static int
store_redis_async_del(void *h, void *r, const unsigned char *key,
    store_done_fn *done, void *arg, struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF];
	const char *argv[2];
	size_t len[2];
	struct store_op *op;

	(void)h;
	op = store_redis_op_new(rd, SR_DEL, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_key(key, k);
	argv[0] = "DEL";
	argv[1] = k;
	len[0] = 3;
	len[1] = strlen(k);
	return store_redis_send(rd, op, 2, argv, len, out);
}

static int
store_redis_async_lock(void *h, void *r, const unsigned char *key,
    const unsigned char *owner, int ttl_ms, store_done_fn *done, void *arg,
    struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF], who[2 * STORE_OWNER_LEN + 1], ttl[16];
	const char *argv[6];
	size_t len[6];
	struct store_op *op;

	(void)h;
	op = store_redis_op_new(rd, SR_LOCK, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_hex(STORE_REDIS_LOCK_PREFIX, key, STORE_KEY_LEN, k);
	store_redis_hex("", owner, STORE_OWNER_LEN, who);
	snprintf(ttl, sizeof(ttl), "%d", ttl_ms > 0 ? ttl_ms : 1);
	argv[0] = "SET";
	argv[1] = k;
	argv[2] = who;
	argv[3] = "NX";
	argv[4] = "PX";
	argv[5] = ttl;
	len[0] = 3;
	len[1] = strlen(k);
	len[2] = strlen(who);
	len[3] = len[4] = 2;
	len[5] = strlen(ttl);
	return store_redis_send(rd, op, 6, argv, len, out);
}

/* Send op as EVAL of script (scriptlen bytes) with one key and one
 * argument, both strings. */
static int
store_redis_eval1(struct store_redis_reader *rd, struct store_op *op,
    const char *script, size_t scriptlen, const char *key, const char *arg1,
    struct store_op **out)
{
	const char *argv[5] = {"EVAL", script, "1", key, arg1};
	size_t len[5] = {4, scriptlen, 1, strlen(key), strlen(arg1)};

	return store_redis_send(rd, op, 5, argv, len, out);
}

static int
store_redis_async_unlock(void *h, void *r, const unsigned char *key,
    const unsigned char *owner, store_done_fn *done, void *arg,
    struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF], who[2 * STORE_OWNER_LEN + 1];
	struct store_op *op;

	(void)h;
	op = store_redis_op_new(rd, SR_UNLOCK, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_hex(STORE_REDIS_LOCK_PREFIX, key, STORE_KEY_LEN, k);
	store_redis_hex("", owner, STORE_OWNER_LEN, who);
	return store_redis_eval1(rd, op, store_redis_unlock_lua,
	    sizeof(store_redis_unlock_lua) - 1, k, who, out);
}

static int
store_redis_async_put_tagged(void *h, void *r, const unsigned char *key,
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen, const struct store_tags *tags, int existing,
    store_done_fn *done, void *arg, struct store_op **out)
{
	static const char *const prefix[STORE_TAG_KINDS] = {
	    STORE_REDIS_TAG_SID, STORE_REDIS_TAG_SUB};
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF], exp[24], now[24], id[2 * STORE_KEY_LEN + 1];
	char tk[STORE_TAG_KINDS][STORE_REDIS_TAGBUF];
	/* EVAL, the script, the key count, the keys, six arguments. */
	const char *argv[10 + STORE_TAG_KINDS];
	size_t len[10 + STORE_TAG_KINDS];
	struct store_op *op;
	int i, nkeys = 1, argc;

	(void)h;
	if (store_redis_too_large(hotlen, coldlen))
		return STORE_ERR;
	op = store_redis_op_new(rd, SR_PUT_TAGGED, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_key(key, k);
	store_redis_hex("", key, STORE_KEY_LEN, id);
	snprintf(exp, sizeof(exp), "%lld", (long long)expiry);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	argv[0] = "EVAL";
	argv[1] = store_redis_put_tagged_lua;
	argv[3] = k;
	for (i = 0; i < STORE_TAG_KINDS; i++) {
		if (!tags->stg_have[i])
			continue;
		store_redis_hex(
		    prefix[i], tags->stg_tag[i], STORE_TAG_LEN, tk[i]);
		argv[3 + nkeys++] = tk[i];
	}
	argc = 3 + nkeys;
	argv[2] = nkeys == 1 ? "1" : nkeys == 2 ? "2" : "3";
	argv[argc] = hot != NULL ? hot : "";
	len[argc++] = hotlen;
	argv[argc] = cold != NULL ? cold : "";
	len[argc++] = coldlen;
	argv[argc] = exp;
	len[argc++] = strlen(exp);
	argv[argc] = id;
	len[argc++] = strlen(id);
	argv[argc] = now;
	len[argc++] = strlen(now);
	argv[argc] = existing ? "1" : "0";
	len[argc++] = 1;
	len[0] = 4;
	len[1] = sizeof(store_redis_put_tagged_lua) - 1;
	len[2] = 1;
	for (i = 3; i < 3 + nkeys; i++)
		len[i] = strlen(argv[i]);
	return store_redis_send(rd, op, argc, argv, len, out);
}

static int
store_redis_async_end_tagged(void *h, void *r, enum store_tag_kind kind,
    const unsigned char *tag, size_t *ended, store_done_fn *done, void *arg,
    struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char tk[STORE_REDIS_TAGBUF];
	struct store_op *op;

	(void)h;
	if ((int)kind < 0 || kind >= STORE_TAG_KINDS)
		return STORE_ERR;
	op = store_redis_op_new(rd, SR_END_TAGGED, done, arg);
	if (op == NULL)
		return STORE_ERR;
	op->so_count = ended;
	store_redis_hex(
	    kind == STORE_TAG_SID ? STORE_REDIS_TAG_SID : STORE_REDIS_TAG_SUB,
	    tag, STORE_TAG_LEN, tk);
	return store_redis_eval1(rd, op, store_redis_end_tagged_lua,
	    sizeof(store_redis_end_tagged_lua) - 1, tk, STORE_REDIS_PREFIX,
	    out);
}

static int
store_redis_async_once(void *h, void *r, const unsigned char *key,
    time_t expiry, store_done_fn *done, void *arg, struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF], ttl[24];
	const char *argv[6];
	size_t len[6];
	struct store_op *op;
	long long left = (long long)expiry - (long long)time(NULL);

	(void)h;
	op = store_redis_op_new(rd, SR_ONCE, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_hex(STORE_REDIS_ONCE_PREFIX, key, STORE_KEY_LEN, k);
	snprintf(ttl, sizeof(ttl), "%lld", left > 0 ? left : 1);
	argv[0] = "SET";
	argv[1] = k;
	argv[2] = "1";
	argv[3] = "NX";
	argv[4] = "EX";
	argv[5] = ttl;
	len[0] = 3;
	len[1] = strlen(k);
	len[2] = 1;
	len[3] = len[4] = 2;
	len[5] = strlen(ttl);
	return store_redis_send(rd, op, 6, argv, len, out);
}

static void
store_redis_op_cancel(void *h, void *r, struct store_op *op)
{
	(void)h;
	(void)r;
	op = store_redis_op_cast(op);
	if (op->so_parked)
		store_redis_unpark(op);
	else
		redis_conn_cancel(op->so_cmd);
	op->so_magic = 0;
	free(op->so_argv);
	free(op);
}

/* --- the admin command's walk (store_scan) ---------------------------
 *
 * The command line runs no event loop, so it talks to Redis over one
 * synchronous hiredis connection of its own, each command bounded by
 * redis_timeout.  Every answer is checked before use, as on the async
 * path: a server can make the walk fail, never make it read out of
 * bounds. */

#define STORE_REDIS_SCAN_COUNT "1000"  /* keys SCAN looks at per call */
#define STORE_REDIS_SCAN_DEL_BATCH 256 /* keys per DEL */

/* The keys SCAN returned, made unique before the records are read. */
struct store_redis_scan_keys {
	unsigned char (*sk_keys)[STORE_KEY_LEN];
	size_t sk_n, sk_cap;
};

/* A synchronous connection to host:port, handshaken with `pw` (and
 * `user`) and SELECT db (db < 0: none).  NULL with err set. */
static redisContext *
store_redis_sync_connect(const struct store_redis *h, const char *host,
    int port, const char *user, const struct secret *pw, int db,
    struct gh_error *err)
{
	struct timeval tv;
	redisContext *c;
	redisReply *r;
	const char *argv[3];
	size_t len[3];
	char dbs[16];
	int argc = 0;

	tv.tv_sec = h->sr_timeout_ms / 1000;
	tv.tv_usec = (h->sr_timeout_ms % 1000) * 1000;
	c = redisConnectWithTimeout(host, port, tv);
	if (c == NULL || c->err != 0) {
		gh_error_set(err, "store_unavailable",
		    "cannot reach Redis at %s port %d: %s", host, port,
		    c != NULL ? c->errstr : "out of memory");
		goto fail;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK) {
		gh_error_set(err, "store_unavailable", "cannot set a timeout");
		goto fail;
	}
	if (pw != NULL && pw->len > 0) {
		argv[argc] = "AUTH";
		len[argc++] = 4;
		if (user != NULL) {
			argv[argc] = user;
			len[argc++] = strlen(user);
		}
		argv[argc] = (const char *)pw->buf;
		len[argc++] = pw->len;
		r = redisCommandArgv(c, argc, argv, len);
		/* The answer's words are not quoted: never near a password. */
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			gh_error_set(err, "store_unavailable",
			    "Redis at %s port %d refused the password%s", host,
			    port, r == NULL ? " (no answer)" : "");
			freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	if (db > 0) {
		snprintf(dbs, sizeof(dbs), "%d", db);
		r = redisCommand(c, "SELECT %s", dbs);
		if (r == NULL || r->type != REDIS_REPLY_STATUS) {
			gh_error_set(err, "store_unavailable",
			    "Redis at %s port %d: SELECT %d failed", host, port,
			    db);
			freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	return c;
fail:
	if (c != NULL)
		redisFree(c);
	return NULL;
}

/* Sentinel: the master's address, from the first sentinel that names
 * one.  0, or -1 with err set. */
static int
store_redis_sync_master(const struct store_redis *h, char *host,
    size_t hostsize, int *port, struct gh_error *err)
{
	const struct redis_url_addr *a;
	redisContext *c;
	redisReply *r;
	const char *argv[3];
	size_t len[3], i;
	char *end;
	long p;

	gh_error_set(err, "store_unavailable",
	    "no sentinel named the master %s", h->sr_url.ru_master);
	for (i = 0; i < h->sr_url.ru_naddrs; i++) {
		a = &h->sr_url.ru_addrs[i];
		c = store_redis_sync_connect(h, a->ra_host, a->ra_port, NULL,
		    &h->sr_sentinel_password, -1, err);
		if (c == NULL)
			continue;
		argv[0] = "SENTINEL";
		argv[1] = "get-master-addr-by-name";
		argv[2] = h->sr_url.ru_master;
		len[0] = 8;
		len[1] = strlen(argv[1]);
		len[2] = strlen(argv[2]);
		r = redisCommandArgv(c, 3, argv, len);
		redisFree(c);
		if (r != NULL && r->type == REDIS_REPLY_ARRAY &&
		    r->elements == 2 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    r->element[0]->len > 0 && r->element[0]->len < hostsize &&
		    r->element[1]->len < 8) {
			memcpy(host, r->element[0]->str, r->element[0]->len);
			host[r->element[0]->len] = '\0';
			p = strtol(r->element[1]->str, &end, 10);
			if (*end == '\0' && p > 0 && p < 65536 &&
			    strlen(host) == r->element[0]->len) {
				*port = (int)p;
				freeReplyObject(r);
				return 0;
			}
		}
		gh_error_set(err, "store_unavailable",
		    "sentinel %s port %d did not name the master %s",
		    a->ra_host, a->ra_port, h->sr_url.ru_master);
		freeReplyObject(r);
	}
	return -1;
}

static int
store_redis_hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Take one of SCAN's keys, if it is a session key of ours (the prefix,
 * then exactly 32 lower-case hex digits).  0, or -1 (out of memory). */
static int
store_redis_scan_add(struct store_redis_scan_keys *sk, const redisReply *r)
{
	const size_t plen = sizeof(STORE_REDIS_PREFIX) - 1;
	unsigned char key[STORE_KEY_LEN], (*keys)[STORE_KEY_LEN];
	size_t i, cap;
	int hi, lo;

	if (r->type != REDIS_REPLY_STRING ||
	    r->len != plen + 2 * STORE_KEY_LEN ||
	    memcmp(r->str, STORE_REDIS_PREFIX, plen) != 0)
		return 0;
	for (i = 0; i < STORE_KEY_LEN; i++) {
		hi = store_redis_hexval((unsigned char)r->str[plen + 2 * i]);
		lo =
		    store_redis_hexval((unsigned char)r->str[plen + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	if (sk->sk_n == sk->sk_cap) {
		cap = sk->sk_cap == 0 ? 256 : 2 * sk->sk_cap;
		keys = reallocarray(sk->sk_keys, cap, sizeof(*keys));
		if (keys == NULL)
			return -1;
		sk->sk_keys = keys;
		sk->sk_cap = cap;
	}
	memcpy(sk->sk_keys[sk->sk_n++], key, STORE_KEY_LEN);
	return 0;
}

static int
store_redis_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_KEY_LEN);
}

/* An error reply's words, cut and made printable, into err. */
static int
store_redis_sync_error(const redisContext *c, const redisReply *r,
    const char *what, struct gh_error *err)
{
	char buf[160];

	if (r == NULL) {
		gh_error_set(err, "store_unavailable",
		    "Redis stopped answering during %s: %s", what,
		    c->errstr[0] != '\0' ? c->errstr : "no answer");
		return STORE_UNAVAIL;
	}
	gh_error_set(err, "store_scan", "Redis: %s: %s", what,
	    r->type == REDIS_REPLY_ERROR
	        ? log_sanitize(buf, sizeof(buf), r->str)
	        : "an answer of the wrong type");
	return STORE_ERR;
}

/* Every session key, by SCAN ... MATCH prefix*, sorted and unique. */
static int
store_redis_scan_keys(
    redisContext *c, struct store_redis_scan_keys *sk, struct gh_error *err)
{
	char cursor[32] = "0";
	redisReply *r;
	size_t i, j;
	int rc;

	do {
		r = redisCommand(c, "SCAN %s MATCH %s* COUNT %s", cursor,
		    STORE_REDIS_PREFIX, STORE_REDIS_SCAN_COUNT);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
		    r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			rc = store_redis_sync_error(c, r, "SCAN", err);
			freeReplyObject(r);
			return rc;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len);
		cursor[r->element[0]->len] = '\0';
		for (i = 0; i < r->element[1]->elements; i++)
			if (store_redis_scan_add(
			        sk, r->element[1]->element[i]) == -1) {
				freeReplyObject(r);
				gh_error_set(
				    err, "store_scan", "out of memory");
				return STORE_ERR;
			}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	if (sk->sk_n == 0)
		return STORE_OK;
	qsort(sk->sk_keys, sk->sk_n, STORE_KEY_LEN, store_redis_key_cmp);
	for (i = 1, j = 1; i < sk->sk_n; i++)
		if (memcmp(sk->sk_keys[i], sk->sk_keys[j - 1], STORE_KEY_LEN) !=
		    0)
			memmove(
			    sk->sk_keys[j++], sk->sk_keys[i], STORE_KEY_LEN);
	sk->sk_n = j;
	return STORE_OK;
}

/* DEL the n keys of dels (their names) in one command: one round trip
 * (and one AOF write) for many records, not one each. */
static int
store_redis_scan_flush(redisContext *c, char (*dels)[STORE_REDIS_KEYBUF],
    size_t n, size_t *deleted, struct gh_error *err)
{
	const char *argv[1 + STORE_REDIS_SCAN_DEL_BATCH];
	size_t len[1 + STORE_REDIS_SCAN_DEL_BATCH], i;
	redisReply *d;
	int rc = STORE_OK;

	if (n == 0)
		return STORE_OK;
	argv[0] = "DEL";
	len[0] = 3;
	for (i = 0; i < n; i++) {
		argv[1 + i] = dels[i];
		len[1 + i] = strlen(dels[i]);
	}
	d = redisCommandArgv(c, (int)(n + 1), argv, len);
	if (d == NULL || d->type != REDIS_REPLY_INTEGER || d->integer < 0)
		rc = store_redis_sync_error(c, d, "DEL", err);
	else /* those still there: one gone meanwhile does not count */
		*deleted += (size_t)d->integer;
	freeReplyObject(d);
	return rc;
}

/* One record: HMGET its parts, hand them to fn, and add its name to
 * dels (*ndels of them) when fn asks for it to go. */
static int
store_redis_scan_one(redisContext *c, const unsigned char *key,
    store_scan_fn *fn, void *arg, char (*dels)[STORE_REDIS_KEYBUF],
    size_t *ndels, struct gh_error *err)
{
	char k[STORE_REDIS_KEYBUF];
	redisReply *r;
	const redisReply *hot, *cold;
	int verdict, rc = STORE_OK;

	store_redis_key(key, k);
	r = redisCommand(c, "HMGET %s h c", k);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		rc = store_redis_sync_error(c, r, "HMGET", err);
		goto done;
	}
	hot = r->element[0];
	cold = r->element[1];
	/* Gone since SCAN (nil), or not a record of ours: skipped. */
	if (hot->type != REDIS_REPLY_STRING ||
	    cold->type != REDIS_REPLY_STRING ||
	    hot->len > STORE_REDIS_PART_MAX || cold->len > STORE_REDIS_PART_MAX)
		goto done;
	verdict = fn(arg, key, (const unsigned char *)hot->str, hot->len,
	    (const unsigned char *)cold->str, cold->len);
	if (verdict == -1) {
		rc = STORE_ERR;
		goto done;
	}
	if (verdict == STORE_SCAN_DELETE)
		memcpy(dels[(*ndels)++], k, sizeof(k));
done:
	freeReplyObject(r);
	return rc;
}

static int
store_redis_scan(void *arg, time_t now, store_scan_fn *fn, void *fnarg,
    size_t *deleted, struct gh_error *err)
{
	struct store_redis *h = arg;
	struct store_redis_scan_keys sk = {NULL, 0, 0};
	char host[REDIS_URL_HOST_MAX + 1];
	char dels[STORE_REDIS_SCAN_DEL_BATCH][STORE_REDIS_KEYBUF];
	redisContext *c = NULL;
	size_t i, ndels = 0;
	int port, rc;

	(void)now; /* Redis has dropped ended records itself */
	*deleted = 0;
	if (h->sr_url.ru_sentinel) {
		if (store_redis_sync_master(
		        h, host, sizeof(host), &port, err) == -1)
			return STORE_UNAVAIL;
	} else {
		snprintf(
		    host, sizeof(host), "%s", h->sr_url.ru_addrs[0].ra_host);
		port = h->sr_url.ru_addrs[0].ra_port;
	}
	c = store_redis_sync_connect(h, host, port, h->sr_url.ru_user,
	    &h->sr_password, h->sr_url.ru_db, err);
	if (c == NULL)
		return STORE_UNAVAIL;
	rc = store_redis_scan_keys(c, &sk, err);
	for (i = 0; rc == STORE_OK && i < sk.sk_n; i++) {
		rc = store_redis_scan_one(
		    c, sk.sk_keys[i], fn, fnarg, dels, &ndels, err);
		/* A walk that failed deletes no more. */
		if (rc == STORE_OK &&
		    (ndels == STORE_REDIS_SCAN_DEL_BATCH || i + 1 == sk.sk_n)) {
			rc = store_redis_scan_flush(
			    c, dels, ndels, deleted, err);
			ndels = 0;
		}
	}
	redisFree(c);
	free(sk.sk_keys);
	return rc;
}

const struct store_backend store_redis_backend = {
    .name = "redis",
    .shared = 1,
    .open = store_redis_open,
    .close = store_redis_close,
    .sweep = store_redis_sweep,
    .reader_new = store_redis_reader_new,
    .reader_free = store_redis_reader_free,
    .async_get = store_redis_async_get,
    .async_put = store_redis_async_put,
    .async_replace = store_redis_async_replace,
    .async_put_hot = store_redis_async_put_hot,
    .async_del = store_redis_async_del,
    .async_lock = store_redis_async_lock,
    .async_unlock = store_redis_async_unlock,
    .op_cancel = store_redis_op_cancel,
    .ready = store_redis_ready,
    .async_put_tagged = store_redis_async_put_tagged,
    .async_end_tagged = store_redis_async_end_tagged,
    .async_once = store_redis_async_once,
    .scan = store_redis_scan,
};
