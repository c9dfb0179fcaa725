/* SPDX-License-Identifier: ISC */
/*
 * redis_sentinel.c: finding the Redis master through Sentinel: rounds of
 * SENTINEL get-master-addr-by-name, and one +switch-master subscription.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/crypto.h"
#include "core/error.h"
#include "core/log.h"
#include "core/magic.h"
#include "redis_link.h"
#include "redis_sentinel.h"

#define RS_MAGIC 0x5253544eu /* "RSTN" */

#define RS_BACKOFF_MIN_MS 100
#define RS_BACKOFF_MAX_MS 5000
#define RS_PING_MS 5000
/* What a sentinel may send in one reply: the longest that is useful is a
 * +switch-master message, a name and two addresses. */
#define RS_MAX_REPLY 4096
#define RS_MAX_OBJECTS 8
#define RS_CHANNEL "+switch-master"
#define RS_TIMEOUT_MAX_MS 60000
/* "[" IPv6 "]:" port, or a sentinel's host and port, for log lines */
#define RS_ADDR_LEN (REDIS_SENTINEL_HOST_MAX + 8)

struct rs_node {
	struct redis_hostport sn_addr;
	/* per activity (enum rs_doing): its last failure was logged, and
	 * no success came since */
	int sn_failing[2];
};

/* Steps of one connection: AUTH's answer first (when there is a
 * password), then the command that is the point of it. */
enum rs_step {
	RS_IDLE,        /* no connection */
	RS_AUTH,        /* waiting for AUTH's +OK */
	RS_ASKING,      /* waiting for the master's address */
	RS_SUBSCRIBING, /* waiting for SUBSCRIBE's confirmation */
	RS_SUBSCRIBED   /* following +switch-master */
};

/* What was being done with a sentinel, for its state and log lines. */
enum rs_doing {
	RS_DOING_ASK, /* asking for the master */
	RS_DOING_SUB  /* following +switch-master */
};

static const char *const rs_doing_names[] = {
    "asking for the master",
    "following " RS_CHANNEL,
};

struct redis_sentinel {
	unsigned rs_magic;
	struct event_base *rs_base;
	struct evdns_base *rs_dns; /* NULL when every host is an IP literal */
	struct rs_node *rs_nodes;
	size_t rs_n;
	char rs_name[REDIS_SENTINEL_NAME_MAX + 1];
	size_t rs_namelen;
	char *rs_user;
	struct secret rs_password; /* buf NULL: no AUTH */
	int rs_timeout_ms;
	redis_sentinel_master_fn *rs_fn;
	void *rs_arg;

	/* the master as last told to rs_fn; port 0 until the first */
	char rs_host[INET6_ADDRSTRLEN];
	int rs_port;
	int rs_unreachable; /* a whole round failed, none answered since */

	/* the round of questions */
	struct redis_link *rs_ask;
	enum rs_step rs_ask_step;
	size_t rs_ask_idx;   /* the sentinel being asked */
	size_t rs_ask_tries; /* sentinels asked in this round */
	int rs_ask_again;    /* a refresh came while the round ran */
	int rs_ask_stale;    /* a switch came while the round ran */
	int rs_ask_backoff_ms;
	struct event *rs_ask_timer; /* the next round */
	size_t rs_preferred;        /* the last sentinel that answered */

	/* the subscription */
	struct redis_link *rs_sub;
	enum rs_step rs_sub_step;
	size_t rs_sub_idx;
	int rs_sub_backoff_ms;
	struct event *rs_sub_timer; /* reconnect, or the next PING */

	int rs_in_fn; /* inside rs_fn */
	int rs_freed; /* redis_sentinel_free was called inside rs_fn */
};

static struct redis_sentinel *
rs_cast(void *arg)
{
	return MAGIC_CAST(struct redis_sentinel, rs_magic, RS_MAGIC, arg);
}

/* --- checking what a sentinel says (pure functions) ------------------- */

/* A port as a sentinel sends it: 1 to 5 decimal digits, 1..65535;
 * returns it, or -1. */
static int
rs_parse_port(const char *s, size_t len)
{
	int port = 0;
	size_t i;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		port = port * 10 + (s[i] - '0');
	}
	return port >= 1 && port <= 65535 ? port : -1;
}

/*
 * Copy an IP literal (len bytes of s, maybe not NUL-terminated) into out
 * (INET6_ADDRSTRLEN bytes).  0, or -1 with why set when it is anything
 * else: a name, junk, an embedded NUL, the unspecified address.
 */
static int
rs_check_host(
    const char *s, size_t len, char out[INET6_ADDRSTRLEN], const char **why)
{
	unsigned char bin[sizeof(struct in6_addr)];
	static const unsigned char zero[sizeof(struct in6_addr)];

	if (len == 0 || len >= INET6_ADDRSTRLEN || memchr(s, '\0', len)) {
		*why = "a host that is not an IP address";
		return -1;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	if (inet_pton(AF_INET, out, bin) == 1) {
		if (memcmp(bin, zero, 4) == 0)
			goto unspecified;
		return 0;
	}
	if (inet_pton(AF_INET6, out, bin) == 1) {
		if (memcmp(bin, zero, 16) == 0)
			goto unspecified;
		return 0;
	}
	*why = "a host that is not an IP address (sentinels must announce "
	       "IP addresses)";
	return -1;
unspecified:
	*why = "the unspecified address as host";
	return -1;
}

/* What a reply is, in words, for an error line. */
static void
rs_describe(const redisReply *r, char *buf, size_t size)
{
	switch (r->type) {
	case REDIS_REPLY_ERROR:
		snprintf(buf, size, "an error: %.*s",
		    (int)(r->len > 160 ? 160 : r->len), r->str);
		break;
	case REDIS_REPLY_STATUS:
		snprintf(buf, size, "a status line");
		break;
	case REDIS_REPLY_STRING:
		snprintf(buf, size, "a string");
		break;
	case REDIS_REPLY_INTEGER:
		snprintf(buf, size, "an integer");
		break;
	case REDIS_REPLY_NIL:
		snprintf(buf, size, "nil");
		break;
	case REDIS_REPLY_ARRAY:
		snprintf(buf, size, "an array of %zu", r->elements);
		break;
	default:
		snprintf(buf, size, "a reply of type %d", r->type);
		break;
	}
}

static int
rs_is_str(const redisReply *r, const char *s)
{
	size_t n = strlen(s);

	return r->type == REDIS_REPLY_STRING && r->len == n &&
	    memcmp(r->str, s, n) == 0;
}

/* AUTH's answer: +OK, else -1 with why (what came instead). */
static int
rs_check_auth(const redisReply *r, char *why, size_t whysize)
{
	char what[200];

	if (r->type == REDIS_REPLY_STATUS && r->len == 2 &&
	    memcmp(r->str, "OK", 2) == 0)
		return 0;
	rs_describe(r, what, sizeof(what));
	snprintf(why, whysize, "AUTH answered %s", what);
	return -1;
}

/*
 * The answer to SENTINEL get-master-addr-by-name: an array of two bulk
 * strings, an IP literal and a port.  0 with host and *port set, or -1
 * with why.
 */
static int
rs_parse_master(const redisReply *r, char host[INET6_ADDRSTRLEN], int *port,
    char *why, size_t whysize)
{
	const char *bad;
	char what[200];

	if (r->type == REDIS_REPLY_NIL ||
	    (r->type == REDIS_REPLY_ARRAY && r->elements == 0)) {
		snprintf(why, whysize, "knows no master by that name");
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		rs_describe(r, what, sizeof(what));
		snprintf(why, whysize,
		    "answered %s instead of a host and a port", what);
		return -1;
	}
	if (rs_check_host(r->element[0]->str, r->element[0]->len, host, &bad) ==
	    -1) {
		snprintf(why, whysize, "answered %s", bad);
		return -1;
	}
	*port = rs_parse_port(r->element[1]->str, r->element[1]->len);
	if (*port == -1) {
		snprintf(why, whysize, "answered a port that is not 1..65535");
		return -1;
	}
	return 0;
}

/*
 * A +switch-master message: "<name> <old host> <old port> <new host> <new
 * port>".  Returns 1 with host and *port set when it is about our master
 * and valid, 0 when it is about another master, -1 with why when it is
 * malformed.
 */
static int
rs_parse_switch(const char *name, size_t namelen, const char *p, size_t len,
    char host[INET6_ADDRSTRLEN], int *port, char *why, size_t whysize)
{
	const char *field[4], *end = p + len, *q, *bad;
	size_t flen[4], i;
	char old[INET6_ADDRSTRLEN];

	if (len <= namelen || memcmp(p, name, namelen) != 0 ||
	    p[namelen] != ' ')
		return 0;
	q = p + namelen + 1;
	for (i = 0; i < 4; i++) {
		const char *sp = memchr(q, ' ', (size_t)(end - q));

		if (i < 3 && sp == NULL)
			goto malformed;
		if (i == 3 && sp != NULL)
			goto malformed;
		field[i] = q;
		flen[i] = (size_t)((sp != NULL ? sp : end) - q);
		q = sp != NULL ? sp + 1 : end;
	}
	if (rs_check_host(field[0], flen[0], old, &bad) == -1 ||
	    rs_parse_port(field[1], flen[1]) == -1)
		goto malformed;
	if (rs_check_host(field[2], flen[2], host, &bad) == -1) {
		snprintf(why, whysize, "a +switch-master message with %s", bad);
		return -1;
	}
	*port = rs_parse_port(field[3], flen[3]);
	if (*port == -1) {
		snprintf(why, whysize,
		    "a +switch-master message with a port that is not "
		    "1..65535");
		return -1;
	}
	return 1;
malformed:
	snprintf(why, whysize, "a malformed +switch-master message");
	return -1;
}

/* --- state, logging, the owner's callback ----------------------------- */

static const char *
rs_fmt_addr(char *buf, size_t size, const char *host, int port)
{
	if (strchr(host, ':') != NULL)
		snprintf(buf, size, "[%s]:%d", host, port);
	else
		snprintf(buf, size, "%s:%d", host, port);
	return buf;
}

static const char *
rs_node_addr(
    const struct redis_sentinel *rs, size_t idx, char *buf, size_t size)
{
	const struct redis_hostport *a = &rs->rs_nodes[idx].sn_addr;

	return rs_fmt_addr(buf, size, a->host, a->port);
}

/* One warning when a sentinel starts failing at something, then debug
 * lines only until it succeeds at it again (one info line). */
static void
rs_node_failed(
    struct redis_sentinel *rs, size_t idx, enum rs_doing doing, const char *why)
{
	char addr[RS_ADDR_LEN], clean[256];
	int *failing = &rs->rs_nodes[idx].sn_failing[doing];

	log_sanitize(clean, sizeof(clean), why);
	rs_node_addr(rs, idx, addr, sizeof(addr));
	if (*failing) {
		log_debug("sentinel %s (master \"%s\"): %s: %s", addr,
		    rs->rs_name, rs_doing_names[doing], clean);
		return;
	}
	*failing = 1;
	log_warnx("redis sentinel %s (master \"%s\"): %s: %s", addr,
	    rs->rs_name, rs_doing_names[doing], clean);
}

static void
rs_node_ok(struct redis_sentinel *rs, size_t idx, enum rs_doing doing)
{
	char addr[RS_ADDR_LEN];
	int *failing = &rs->rs_nodes[idx].sn_failing[doing];

	if (!*failing)
		return;
	*failing = 0;
	log_info("redis sentinel %s (master \"%s\"): %s works again",
	    rs_node_addr(rs, idx, addr, sizeof(addr)), rs->rs_name,
	    rs_doing_names[doing]);
}

static void
rs_destroy(struct redis_sentinel *rs)
{
	redis_link_free(rs->rs_ask);
	redis_link_free(rs->rs_sub);
	if (rs->rs_ask_timer != NULL)
		event_free(rs->rs_ask_timer);
	if (rs->rs_sub_timer != NULL)
		event_free(rs->rs_sub_timer);
	/* After the links.  A link freed while its name was being looked
	 * up is held by libevent until the lookup ends; failing the lookups
	 * (1) ends them on the loop's next turn without touching the freed
	 * base (0 would leave them to time out against it). */
	if (rs->rs_dns != NULL)
		evdns_base_free(rs->rs_dns, 1);
	crypto_secret_cleanup(&rs->rs_password);
	free(rs->rs_user);
	free(rs->rs_nodes);
	rs->rs_magic = 0;
	free(rs);
}

/*
 * Tell the owner about a new master address.  Always the last thing its
 * caller does (the owner may free rs inside rs_fn, which then happens
 * here, once rs_fn returns).
 */
static void
rs_announce(struct redis_sentinel *rs, const char *host, int port, size_t from,
    const char *how)
{
	char now[RS_ADDR_LEN], was[RS_ADDR_LEN], node[RS_ADDR_LEN];

	if (rs->rs_port == port && strcmp(rs->rs_host, host) == 0) {
		log_debug("master \"%s\" still at %s (%s)", rs->rs_name,
		    rs_fmt_addr(now, sizeof(now), host, port), how);
		return;
	}
	if (rs->rs_port == 0)
		snprintf(was, sizeof(was), "unknown");
	else
		rs_fmt_addr(was, sizeof(was), rs->rs_host, rs->rs_port);
	log_info("redis sentinel: master \"%s\" is at %s (was %s), from "
	         "sentinel %s by %s",
	    rs->rs_name, rs_fmt_addr(now, sizeof(now), host, port), was,
	    rs_node_addr(rs, from, node, sizeof(node)), how);
	snprintf(rs->rs_host, sizeof(rs->rs_host), "%s", host);
	rs->rs_port = port;
	rs->rs_in_fn = 1;
	rs->rs_fn(rs->rs_arg, rs->rs_host, rs->rs_port);
	rs->rs_in_fn = 0;
	if (rs->rs_freed)
		rs_destroy(rs);
}

static void
rs_timer_in(struct event *ev, int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

static int
rs_backoff_next(int ms)
{
	return ms >= RS_BACKOFF_MAX_MS / 2 ? RS_BACKOFF_MAX_MS : ms * 2;
}

static struct redis_link *
rs_link_new(struct redis_sentinel *rs, size_t idx, redis_link_reply_fn *rfn,
    redis_link_error_fn *efn)
{
	struct redis_link_cfg lc;

	lc.lc_host = rs->rs_nodes[idx].sn_addr.host;
	lc.lc_port = rs->rs_nodes[idx].sn_addr.port;
	lc.lc_timeout_ms = rs->rs_timeout_ms;
	lc.lc_max_reply = RS_MAX_REPLY;
	lc.lc_max_objects = RS_MAX_OBJECTS;
	lc.lc_reply_fn = rfn;
	lc.lc_error_fn = efn;
	lc.lc_arg = rs;
	return redis_link_new(rs->rs_base, rs->rs_dns, &lc);
}

/* AUTH [user] password when a password is set.  0, 1 (sent), or -1. */
static int
rs_send_auth(struct redis_sentinel *rs, struct redis_link *l)
{
	const char *argv[3];
	size_t len[3];
	int argc = 0;

	if (rs->rs_password.buf == NULL)
		return 0;
	argv[argc] = "AUTH";
	len[argc++] = 4;
	if (rs->rs_user != NULL) {
		argv[argc] = rs->rs_user;
		len[argc++] = strlen(rs->rs_user);
	}
	argv[argc] = (const char *)rs->rs_password.buf;
	len[argc++] = rs->rs_password.len;
	return redis_link_command(l, argc, argv, len) == 0 ? 1 : -1;
}

/* --- rounds of questions ---------------------------------------------- */

static void rs_ask_node(struct redis_sentinel *);

static void
rs_ask_failed(struct redis_sentinel *rs, const char *why)
{
	rs_node_failed(rs, rs->rs_ask_idx, RS_DOING_ASK, why);
	redis_link_free(rs->rs_ask);
	rs->rs_ask = NULL;
	rs->rs_ask_step = RS_IDLE;
	if (++rs->rs_ask_tries < rs->rs_n) {
		rs->rs_ask_idx = (rs->rs_ask_idx + 1) % rs->rs_n;
		rs_ask_node(rs);
		return;
	}
	if (!rs->rs_unreachable) {
		rs->rs_unreachable = 1;
		log_warnx("redis sentinel: none of the %zu sentinels named "
		          "master \"%s\"; asking again with backoff",
		    rs->rs_n, rs->rs_name);
	}
	/* The retry asks anyway: a refresh meanwhile needs no extra round. */
	rs->rs_ask_again = 0;
	rs_timer_in(rs->rs_ask_timer, rs->rs_ask_backoff_ms);
	rs->rs_ask_backoff_ms = rs_backoff_next(rs->rs_ask_backoff_ms);
}

static void
rs_ask_succeeded(struct redis_sentinel *rs, const char *host, int port)
{
	char addr[RS_ADDR_LEN];
	size_t idx = rs->rs_ask_idx;

	rs_node_ok(rs, idx, RS_DOING_ASK);
	redis_link_free(rs->rs_ask);
	rs->rs_ask = NULL;
	rs->rs_ask_step = RS_IDLE;
	rs->rs_preferred = idx;
	rs->rs_ask_backoff_ms = RS_BACKOFF_MIN_MS;
	if (rs->rs_unreachable) {
		rs->rs_unreachable = 0;
		log_info("redis sentinel: sentinel %s names master \"%s\" "
		         "again",
		    rs_node_addr(rs, idx, addr, sizeof(addr)), rs->rs_name);
	}
	if (rs->rs_ask_again) {
		rs->rs_ask_again = 0;
		rs_timer_in(rs->rs_ask_timer, 0);
	}
	if (rs->rs_ask_stale) {
		/* Sent before a +switch-master we have already followed:
		 * the round asked again (rs_ask_again) says what is true. */
		log_debug("an answer from before a switch, not used");
		return;
	}
	rs_announce(rs, host, port, idx, "asking");
}

static enum redis_link_kind
rs_ask_reply_cb(void *arg, const struct redisReply *r)
{
	struct redis_sentinel *rs = rs_cast(arg);
	char host[INET6_ADDRSTRLEN], why[256];
	int port;

	if (rs->rs_ask_step == RS_AUTH) {
		if (rs_check_auth(r, why, sizeof(why)) == -1)
			rs_ask_failed(rs, why);
		else
			rs->rs_ask_step = RS_ASKING;
		return REDIS_LINK_ANSWER;
	}
	if (rs_parse_master(r, host, &port, why, sizeof(why)) == -1)
		rs_ask_failed(rs, why);
	else
		rs_ask_succeeded(rs, host, port);
	return REDIS_LINK_ANSWER;
}

static void
rs_ask_error_cb(void *arg, const char *why)
{
	rs_ask_failed(rs_cast(arg), why);
}

/* Ask the sentinel rs_ask_idx; a failure moves on to the next. */
static void
rs_ask_node(struct redis_sentinel *rs)
{
	const char *argv[3] = {
	    "SENTINEL", "get-master-addr-by-name", rs->rs_name};
	size_t len[3] = {8, 23, rs->rs_namelen};
	int auth;

	rs->rs_ask =
	    rs_link_new(rs, rs->rs_ask_idx, rs_ask_reply_cb, rs_ask_error_cb);
	if (rs->rs_ask == NULL) {
		rs_ask_failed(rs, "out of memory");
		return;
	}
	auth = rs_send_auth(rs, rs->rs_ask);
	if (auth == -1 || redis_link_command(rs->rs_ask, 3, argv, len) == -1) {
		rs_ask_failed(rs, "out of memory");
		return;
	}
	rs->rs_ask_step = auth ? RS_AUTH : RS_ASKING;
}

static void
rs_ask_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_sentinel *rs = rs_cast(arg);

	(void)fd;
	(void)what;
	if (rs->rs_ask != NULL)
		return;
	rs->rs_ask_tries = 0;
	rs->rs_ask_stale = 0;
	rs->rs_ask_idx = rs->rs_preferred;
	rs_ask_node(rs);
}

/* A new round soon, or one more after the running one; none while a
 * round waits on its backoff (the owner may call this on every failed
 * reconnect). */
static void
rs_ask_request(struct redis_sentinel *rs)
{
	if (rs->rs_ask != NULL)
		rs->rs_ask_again = 1;
	else if (!evtimer_pending(rs->rs_ask_timer, NULL))
		rs_timer_in(rs->rs_ask_timer, 0);
}

/* --- the subscription ------------------------------------------------- */

static void
rs_sub_lost(struct redis_sentinel *rs, const char *why)
{
	rs_node_failed(rs, rs->rs_sub_idx, RS_DOING_SUB, why);
	redis_link_free(rs->rs_sub);
	rs->rs_sub = NULL;
	rs->rs_sub_step = RS_IDLE;
	rs->rs_sub_idx = (rs->rs_sub_idx + 1) % rs->rs_n;
	rs_timer_in(rs->rs_sub_timer, rs->rs_sub_backoff_ms);
	rs->rs_sub_backoff_ms = rs_backoff_next(rs->rs_sub_backoff_ms);
}

static void
rs_sub_confirmed(struct redis_sentinel *rs)
{
	char addr[RS_ADDR_LEN];

	rs_node_ok(rs, rs->rs_sub_idx, RS_DOING_SUB);
	rs->rs_sub_step = RS_SUBSCRIBED;
	rs->rs_sub_backoff_ms = RS_BACKOFF_MIN_MS;
	log_debug("following " RS_CHANNEL " on sentinel %s",
	    rs_node_addr(rs, rs->rs_sub_idx, addr, sizeof(addr)));
	rs_timer_in(rs->rs_sub_timer, RS_PING_MS);
	/* A switch may have happened while no subscription was up. */
	rs_ask_request(rs);
}

/* A message on the subscribed connection.  Returns its kind. */
static enum redis_link_kind
rs_sub_message(struct redis_sentinel *rs, const redisReply *r)
{
	char host[INET6_ADDRSTRLEN], why[256], what[200];
	const redisReply *payload;
	int port, rc;

	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    rs_is_str(r->element[0], "pong"))
		return REDIS_LINK_ANSWER;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    !rs_is_str(r->element[0], "message") ||
	    !rs_is_str(r->element[1], RS_CHANNEL) ||
	    r->element[2]->type != REDIS_REPLY_STRING) {
		rs_describe(r, what, sizeof(what));
		snprintf(
		    why, sizeof(why), "sent %s instead of a message", what);
		rs_sub_lost(rs, why);
		return REDIS_LINK_PUSH;
	}
	payload = r->element[2];
	rc = rs_parse_switch(rs->rs_name, rs->rs_namelen, payload->str,
	    payload->len, host, &port, why, sizeof(why));
	if (rc == -1) {
		rs_sub_lost(rs, why);
		return REDIS_LINK_PUSH;
	}
	if (rc == 0) {
		log_debug("a switch of another master, ignored");
		return REDIS_LINK_PUSH;
	}
	if (rs->rs_ask != NULL) {
		/* The round under way may bring an answer given before this
		 * switch; it must not undo it. */
		rs->rs_ask_stale = 1;
		rs->rs_ask_again = 1;
	}
	rs_announce(rs, host, port, rs->rs_sub_idx, RS_CHANNEL);
	return REDIS_LINK_PUSH;
}

static enum redis_link_kind
rs_sub_reply_cb(void *arg, const struct redisReply *r)
{
	struct redis_sentinel *rs = rs_cast(arg);
	char why[256], what[200];

	switch (rs->rs_sub_step) {
	case RS_AUTH:
		if (rs_check_auth(r, why, sizeof(why)) == -1)
			rs_sub_lost(rs, why);
		else
			rs->rs_sub_step = RS_SUBSCRIBING;
		return REDIS_LINK_ANSWER;
	case RS_SUBSCRIBING:
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
		    rs_is_str(r->element[0], "subscribe") &&
		    rs_is_str(r->element[1], RS_CHANNEL) &&
		    r->element[2]->type == REDIS_REPLY_INTEGER &&
		    r->element[2]->integer == 1) {
			rs_sub_confirmed(rs);
			return REDIS_LINK_ANSWER;
		}
		rs_describe(r, what, sizeof(what));
		snprintf(why, sizeof(why),
		    "SUBSCRIBE answered %s instead of its confirmation", what);
		rs_sub_lost(rs, why);
		return REDIS_LINK_ANSWER;
	case RS_SUBSCRIBED:
		return rs_sub_message(rs, r);
	default:
		return REDIS_LINK_ANSWER; /* the link is being freed */
	}
}

static void
rs_sub_error_cb(void *arg, const char *why)
{
	rs_sub_lost(rs_cast(arg), why);
}

static void
rs_sub_connect(struct redis_sentinel *rs)
{
	const char *argv[2] = {"SUBSCRIBE", RS_CHANNEL};
	size_t len[2] = {9, sizeof(RS_CHANNEL) - 1};
	int auth;

	rs->rs_sub =
	    rs_link_new(rs, rs->rs_sub_idx, rs_sub_reply_cb, rs_sub_error_cb);
	if (rs->rs_sub == NULL) {
		rs_sub_lost(rs, "out of memory");
		return;
	}
	auth = rs_send_auth(rs, rs->rs_sub);
	if (auth == -1 || redis_link_command(rs->rs_sub, 2, argv, len) == -1) {
		rs_sub_lost(rs, "out of memory");
		return;
	}
	rs->rs_sub_step = auth ? RS_AUTH : RS_SUBSCRIBING;
}

/* Reconnect after the backoff, or PING a live subscription: a sentinel
 * that vanished without closing (a partition, a stopped process) then
 * fails the link's deadline instead of leaving us deaf to switches. */
static void
rs_sub_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_sentinel *rs = rs_cast(arg);
	const char *argv[1] = {"PING"};
	size_t len[1] = {4};

	(void)fd;
	(void)what;
	if (rs->rs_sub == NULL) {
		rs_sub_connect(rs);
		return;
	}
	if (rs->rs_sub_step != RS_SUBSCRIBED)
		return; /* still subscribing: the link's deadline runs */
	if (redis_link_command(rs->rs_sub, 1, argv, len) == -1) {
		rs_sub_lost(rs, "out of memory");
		return;
	}
	rs_timer_in(rs->rs_sub_timer, RS_PING_MS);
}

/* --- the interface ---------------------------------------------------- */

static int
rs_is_ip(const char *host)
{
	unsigned char bin[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, bin) == 1 ||
	    inet_pton(AF_INET6, host, bin) == 1;
}

static int
rs_check_cfg(const struct redis_sentinel_cfg *cfg, struct gh_error *err)
{
	const char *s;
	size_t i, len;

	if (cfg->sc_n == 0 || cfg->sc_n > REDIS_SENTINEL_MAX) {
		gh_error_set(err, "sentinel_count",
		    "redis sentinel: %zu sentinels given, 1 to %d allowed",
		    cfg->sc_n, REDIS_SENTINEL_MAX);
		return -1;
	}
	for (i = 0; i < cfg->sc_n; i++) {
		const struct redis_hostport *a = &cfg->sc_sentinels[i];

		len = strnlen(a->host, sizeof(a->host));
		if (len == 0 || len == sizeof(a->host) || a->port < 1 ||
		    a->port > 65535) {
			gh_error_set(err, "sentinel_addr",
			    "redis sentinel: sentinel %zu has no host or a "
			    "port outside 1..65535",
			    i + 1);
			return -1;
		}
	}
	s = cfg->sc_master_name;
	len = s == NULL ? 0 : strlen(s);
	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			break;
	if (len == 0 || len > REDIS_SENTINEL_NAME_MAX || i < len) {
		gh_error_set(err, "sentinel_master",
		    "redis sentinel: the master name must be 1 to %d printable "
		    "characters without spaces",
		    REDIS_SENTINEL_NAME_MAX);
		return -1;
	}
	if (cfg->sc_user != NULL && cfg->sc_password == NULL) {
		gh_error_set(err, "sentinel_user",
		    "redis sentinel: a user name needs a password");
		return -1;
	}
	if (cfg->sc_timeout_ms < 1 || cfg->sc_timeout_ms > RS_TIMEOUT_MAX_MS) {
		gh_error_set(err, "sentinel_timeout",
		    "redis sentinel: timeout %d ms is outside 1..%d",
		    cfg->sc_timeout_ms, RS_TIMEOUT_MAX_MS);
		return -1;
	}
	return 0;
}

struct redis_sentinel *
redis_sentinel_new(struct event_base *base,
    const struct redis_sentinel_cfg *cfg, redis_sentinel_master_fn *fn,
    void *arg, struct gh_error *err)
{
	struct redis_sentinel *rs;
	size_t i;
	int names = 0;

	if (rs_check_cfg(cfg, err) == -1)
		return NULL;
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		goto nomem;
	rs->rs_magic = RS_MAGIC;
	rs->rs_base = base;
	rs->rs_fn = fn;
	rs->rs_arg = arg;
	rs->rs_timeout_ms = cfg->sc_timeout_ms;
	rs->rs_namelen = strlen(cfg->sc_master_name);
	memcpy(rs->rs_name, cfg->sc_master_name, rs->rs_namelen + 1);
	rs->rs_ask_backoff_ms = RS_BACKOFF_MIN_MS;
	rs->rs_sub_backoff_ms = RS_BACKOFF_MIN_MS;
	rs->rs_nodes = calloc(cfg->sc_n, sizeof(*rs->rs_nodes));
	if (rs->rs_nodes == NULL)
		goto nomem;
	rs->rs_n = cfg->sc_n;
	for (i = 0; i < cfg->sc_n; i++) {
		rs->rs_nodes[i].sn_addr = cfg->sc_sentinels[i];
		names |= !rs_is_ip(rs->rs_nodes[i].sn_addr.host);
	}
	if (cfg->sc_user != NULL) {
		rs->rs_user = strdup(cfg->sc_user);
		if (rs->rs_user == NULL)
			goto nomem;
	}
	if (cfg->sc_password != NULL &&
	    crypto_secret_set(&rs->rs_password, cfg->sc_password,
	        strlen(cfg->sc_password)) == -1)
		goto nomem;
	rs->rs_ask_timer = evtimer_new(base, rs_ask_timer_cb, rs);
	rs->rs_sub_timer = evtimer_new(base, rs_sub_timer_cb, rs);
	if (rs->rs_ask_timer == NULL || rs->rs_sub_timer == NULL)
		goto nomem;
	if (names) {
		/* Only idle DNS sockets: they must not keep a loop alive. */
		rs->rs_dns = evdns_base_new(base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS |
		        EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (rs->rs_dns == NULL) {
			gh_error_set(err, "sentinel_dns",
			    "redis sentinel: cannot set up name resolution");
			goto fail;
		}
	}
	rs_timer_in(rs->rs_ask_timer, 0);
	rs_timer_in(rs->rs_sub_timer, 0);
	return rs;
nomem:
	gh_error_set(err, "nomem", "redis sentinel: out of memory");
fail:
	if (rs != NULL)
		rs_destroy(rs);
	return NULL;
}

void
redis_sentinel_refresh(struct redis_sentinel *rs)
{
	if (rs->rs_freed)
		return;
	rs_ask_request(rs);
}

void
redis_sentinel_free(struct redis_sentinel *rs)
{
	if (rs == NULL)
		return;
	if (!rs->rs_in_fn) {
		rs_destroy(rs);
		return;
	}
	/* Inside rs_fn: rs_announce finishes the job when it returns.  Until
	 * then nothing may start again. */
	rs->rs_freed = 1;
	redis_link_free(rs->rs_ask);
	rs->rs_ask = NULL;
	redis_link_free(rs->rs_sub);
	rs->rs_sub = NULL;
	evtimer_del(rs->rs_ask_timer);
	evtimer_del(rs->rs_sub_timer);
}
