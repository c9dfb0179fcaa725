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
 * Limits: a part may be at most STORE_REDIS_PART_MAX (64 KiB) both ways:
 * a put of a larger one is refused (STORE_ERR, logged), a reply with a
 * larger one fails that call (STORE_ERR, logged) and one that would not
 * fit in twice that drops the connection before it is read whole.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/crypto.h"
#include "core/error.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "redis_conn.h"
#include "redis_url.h"
#include "store.h"

#define STORE_REDIS_PART_MAX (64 * 1024)
/* The read buffer may hold one whole answer: two parts and framing. */
#define STORE_REDIS_REPLY_MAX (2 * STORE_REDIS_PART_MAX + 1024)
#define STORE_REDIS_ELEMENTS_MAX 8
#define STORE_REDIS_PREFIX "gatehouse:s:"
#define STORE_REDIS_LOCK_PREFIX "gatehouse:l:" /* the same length */
#define STORE_REDIS_KEYBUF (sizeof(STORE_REDIS_PREFIX) + 2 * STORE_KEY_LEN)
#define STORE_REDIS_LOG_EVERY 10 /* seconds between per-call error lines */

#define STORE_REDIS_READER_MAGIC 0x52445244u /* "RDRD" */
#define STORE_REDIS_OP_MAGIC 0x52444f50u     /* "RDOP" */

/* Both parts and the expiry in one step. */
static const char store_redis_put_lua[] =
    "redis.call('HSET', KEYS[1], 'h', ARGV[1], 'c', ARGV[2]) "
    "redis.call('EXPIREAT', KEYS[1], ARGV[3]) "
    "return 1";
/* The hot part of a record that is still there; never a new record. */
static const char store_redis_put_hot_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], 'h', ARGV[1]) "
    "return 1";
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
	/* Shared by the workers (atomics): how many readers are not ready,
	 * whether store_unavailable was said (and store_recovered not yet),
	 * whether the store was ever ready. */
	int sr_down;
	int sr_logged_down;
	int sr_was_ready;
};

/* A worker's: its connection. */
struct store_redis_reader {
	uint32_t rr_magic;
	struct store_redis *rr_h;
	struct redis_conn *rr_conn;
	int rr_down; /* counted in sr_down */
};

enum store_redis_kind {
	SR_GET,
	SR_PUT,
	SR_PUT_HOT,
	SR_DEL,
	SR_LOCK,
	SR_UNLOCK,
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

/* --- availability: one line per change, for the whole process ------- */

static void
store_redis_state_cb(void *arg, int up, const char *why)
{
	struct store_redis_reader *rd = store_redis_reader_cast(arg);
	struct store_redis *h = rd->rr_h;
	char reason[200];

	if (up) {
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
	if (!rd->rr_down) {
		rd->rr_down = 1;
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
 * Where a worker's connection goes.  This is the hook a Sentinel lookup
 * takes over (ask the sentinels for the master's address, then answer
 * with redis_conn_connect_to, or redis_conn_target_failed); for redis://
 * it is the URL's one host and port.
 */
static void
store_redis_target(void *arg, struct redis_conn *c)
{
	struct store_redis_reader *rd = store_redis_reader_cast(arg);
	const struct redis_url_addr *a = &rd->rr_h->sr_url.ru_addrs[0];

	redis_conn_connect_to(c, a->ra_host, a->ra_port);
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
	if (h->sr_url.ru_sentinel) {
		gh_error_set(err, "store_url",
		    "session_store: Sentinel support is not available in "
		    "this build");
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
	a = &h->sr_url.ru_addrs[0];
	snprintf(h->sr_addr, sizeof(h->sr_addr), "%s%s%s:%d/%d",
	    strchr(a->ra_host, ':') != NULL ? "[" : "", a->ra_host,
	    strchr(a->ra_host, ':') != NULL ? "]" : "", a->ra_port,
	    h->sr_url.ru_db);
	return h;
fail:
	store_redis_close(h);
	return NULL;
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
	/* Not ready until its handshake is through. */
	rd->rr_down = 1;
	__atomic_add_fetch(&h->sr_down, 1, __ATOMIC_ACQ_REL);
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
		__atomic_sub_fetch(&h->sr_down, 1, __ATOMIC_ACQ_REL);
		free(rd);
		return NULL;
	}
	return rd;
}

static void
store_redis_reader_free(void *arg, void *r)
{
	struct store_redis *h = arg;
	struct store_redis_reader *rd;

	if (r == NULL)
		return;
	rd = store_redis_reader_cast(r);
	redis_conn_free(rd->rr_conn);
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

static const char *const store_redis_kind_names[] = {
    "get", "put", "put_hot", "del", "lock", "unlock"};
static const enum metrics_store_op store_redis_kind_metrics[] = {
    METRICS_STORE_GET, METRICS_STORE_PUT, METRICS_STORE_PUT_HOT,
    METRICS_STORE_DELETE, METRICS_STORE_LOCK, METRICS_STORE_UNLOCK};

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

static void
store_redis_reply_cb(void *arg, const redisReply *r, const char *why)
{
	struct store_op *op = store_redis_op_cast(arg);
	const char *what = store_redis_kind_names[op->so_kind];
	store_done_fn *done;
	void *darg;
	int rc;

	(void)why; /* the connection's state line says it, once */
	if (r == NULL)
		rc = STORE_UNAVAIL;
	else if (r->type == REDIS_REPLY_ERROR)
		rc = store_redis_error_result(op->so_rd, r, what);
	else if (op->so_kind == SR_GET)
		rc = store_redis_get_result(op, r);
	else if (op->so_kind == SR_LOCK)
		rc = store_redis_lock_result(op->so_rd, r);
	else
		rc = store_redis_int_result(op->so_rd, r, what);
	metrics_store_op(store_redis_kind_metrics[op->so_kind], rc);
	done = op->so_done;
	darg = op->so_arg;
	op->so_magic = 0;
	free(op);
	if (done != NULL)
		done(darg, rc);
}

/* Send argv for op (taken: freed here when it cannot be sent). */
static int
store_redis_send(struct store_redis_reader *rd, struct store_op *op, int argc,
    const char **argv, const size_t *len, struct store_op **out)
{
	const char *why;

	if (redis_conn_command(rd->rr_conn, argc, argv, len,
	        store_redis_reply_cb, op, &op->so_cmd, &why) == -1) {
		op->so_magic = 0;
		free(op);
		return STORE_UNAVAIL;
	}
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

static int
store_redis_async_put(void *h, void *r, const unsigned char *key, time_t expiry,
    const void *hot, size_t hotlen, const void *cold, size_t coldlen,
    store_done_fn *done, void *arg, struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF], exp[24];
	const char *argv[7];
	size_t len[7];
	struct store_op *op;

	(void)h;
	if (store_redis_too_large(hotlen, coldlen))
		return STORE_ERR;
	op = store_redis_op_new(rd, SR_PUT, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_key(key, k);
	snprintf(exp, sizeof(exp), "%lld", (long long)expiry);
	argv[0] = "EVAL";
	argv[1] = store_redis_put_lua;
	argv[2] = "1";
	argv[3] = k;
	argv[4] = hot;
	argv[5] = cold;
	argv[6] = exp;
	len[0] = 4;
	len[1] = sizeof(store_redis_put_lua) - 1;
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

static int
store_redis_async_unlock(void *h, void *r, const unsigned char *key,
    const unsigned char *owner, store_done_fn *done, void *arg,
    struct store_op **out)
{
	struct store_redis_reader *rd = store_redis_reader_cast(r);
	char k[STORE_REDIS_KEYBUF], who[2 * STORE_OWNER_LEN + 1];
	const char *argv[5];
	size_t len[5];
	struct store_op *op;

	(void)h;
	op = store_redis_op_new(rd, SR_UNLOCK, done, arg);
	if (op == NULL)
		return STORE_ERR;
	store_redis_hex(STORE_REDIS_LOCK_PREFIX, key, STORE_KEY_LEN, k);
	store_redis_hex("", owner, STORE_OWNER_LEN, who);
	argv[0] = "EVAL";
	argv[1] = store_redis_unlock_lua;
	argv[2] = "1";
	argv[3] = k;
	argv[4] = who;
	len[0] = 4;
	len[1] = sizeof(store_redis_unlock_lua) - 1;
	len[2] = 1;
	len[3] = strlen(k);
	len[4] = strlen(who);
	return store_redis_send(rd, op, 5, argv, len, out);
}

static void
store_redis_op_cancel(void *h, void *r, struct store_op *op)
{
	(void)h;
	(void)r;
	op = store_redis_op_cast(op);
	redis_conn_cancel(op->so_cmd);
	op->so_magic = 0;
	free(op);
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
    .async_put_hot = store_redis_async_put_hot,
    .async_del = store_redis_async_del,
    .async_lock = store_redis_async_lock,
    .async_unlock = store_redis_async_unlock,
    .op_cancel = store_redis_op_cancel,
    .ready = store_redis_ready,
};
