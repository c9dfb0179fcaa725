/* SPDX-License-Identifier: ISC */
/*
 * redis_conn.c: a hiredis asynchronous connection kept up on a libevent
 * base, with a deadline per command and bounded replies.
 *
 * hiredis 0.14 has no command timeout and reads a reply of any size, so
 * both are added here: a timer per connection watches the oldest command
 * (commands are answered in order, so the oldest has the earliest
 * deadline), and a small libevent adapter of our own (hiredis's
 * adapters/libevent.h, plus a look at the read buffer after each read)
 * drops a connection whose unparsed reply grows past the limit, while
 * the reply-object functions refuse strings and arrays over it before
 * they are built.
 */
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "core/crypto.h"
#include "core/magic.h"
#include "redis_conn.h"

#define REDIS_CONN_MAGIC 0x52434f4eu /* "RCON" */
/* An idle connection is asked a PING this often, so a server that went
 * away without closing it (a host gone, a partition) is noticed within
 * this plus redis_timeout, not at the next request. */
#define REDIS_CONN_PING_MS 5000
#define REDIS_CMD_MAGIC 0x52434d44u /* "RCMD" */

enum redis_conn_state {
	RC_DOWN,       /* no connection; the retry timer is set */
	RC_TARGET,     /* asked the target hook where to connect */
	RC_CONNECTING, /* connecting, or through the handshake */
	RC_READY,      /* the handshake is done */
	RC_CLOSED      /* being freed */
};

struct redis_conn_cmd {
	uint32_t cc_magic;
	TAILQ_ENTRY(redis_conn_cmd) cc_link;
	struct redis_conn *cc_conn;
	redis_conn_reply_fn *cc_fn; /* NULL once cancelled */
	void *cc_arg;
	long long cc_deadline; /* monotonic ms */
};

struct redis_conn {
	uint32_t rc_magic;
	struct event_base *rc_base;
	redisAsyncContext *rc_ac;
	struct event *rc_rev, *rc_wev; /* the adapter's events */
	struct event *rc_fev;          /* the end-of-turn flush (no socket) */
	int rc_flush_queued;           /* rc_fev is active */
	int rc_flushing;        /* inside the flush: a write left over waits */
	struct event *rc_retry; /* next attempt */
	struct event *rc_deadline; /* the oldest command's deadline */
	struct event *rc_ping;     /* the idle check */
	TAILQ_HEAD(redis_conn_cmds, redis_conn_cmd) rc_cmds; /* oldest first */
	enum redis_conn_state rc_state;
	int rc_reported; /* -1 nothing yet, 0 down, 1 up */
	int rc_backoff_ms;
	const char *rc_refused; /* why the reply functions refused a reply */
	char rc_why[200];       /* why the connection went down */
	/* The parameters, copied. */
	char *rc_user;
	struct secret rc_password;
	int rc_db;
	int rc_timeout_ms;
	size_t rc_reply_max;
	int rc_elements_max;
	void (*rc_target)(void *, struct redis_conn *);
	void (*rc_state_fn)(void *, int, const char *);
	void *rc_arg;
	/* hiredis's reply-object functions, and ours around them. */
	const redisReplyObjectFunctions *rc_orig;
	redisReplyObjectFunctions rc_fns;
};

static struct redis_conn *
redis_conn_cast(void *arg)
{
	return MAGIC_CAST(struct redis_conn, rc_magic, REDIS_CONN_MAGIC, arg);
}

static struct redis_conn_cmd *
redis_conn_cmd_cast(void *arg)
{
	return MAGIC_CAST(
	    struct redis_conn_cmd, cc_magic, REDIS_CMD_MAGIC, arg);
}

static long long
redis_conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
redis_conn_report(struct redis_conn *c, int up, const char *why)
{
	if (c->rc_reported == up || c->rc_state == RC_CLOSED)
		return;
	c->rc_reported = up;
	if (c->rc_state_fn != NULL)
		c->rc_state_fn(c->rc_arg, up, why);
}

/*
 * The connection is gone (hiredis frees the context itself, or the caller
 * does right after): say why, and try again after the backoff.  Pending
 * commands get their failure from hiredis (NULL replies) as the context
 * is freed.  Idempotent.
 */
void
redis_conn_scrub(const struct redis_conn *c, char *text)
{
	const struct secret *pw = &c->rc_password;
	char *p;

	/* Security: text from the server (an error reply) may repeat what
	 * we sent it; the password never goes on towards a log. */
	if (pw->len == 0)
		return;
	while ((p = memmem(text, strlen(text), pw->buf, pw->len)) != NULL)
		memset(p, '*', pw->len);
}

/* src into dst (size bytes, cut to fit) with the password scrubbed
 * first, so that a cut never leaves part of it. */
static void
redis_conn_scrub_copy(
    const struct redis_conn *c, char *dst, size_t size, const char *src)
{
	char *copy = strdup(src);

	if (copy == NULL) {
		snprintf(dst, size, "out of memory");
		return;
	}
	redis_conn_scrub(c, copy);
	snprintf(dst, size, "%s", copy);
	free(copy);
}

static void
redis_conn_lost(struct redis_conn *c, const char *why)
{
	struct timeval tv;

	if (c->rc_state == RC_DOWN || c->rc_state == RC_CLOSED)
		return;
	redis_conn_scrub_copy(c, c->rc_why, sizeof(c->rc_why), why);
	c->rc_ac = NULL;
	c->rc_state = RC_DOWN;
	tv.tv_sec = c->rc_backoff_ms / 1000;
	tv.tv_usec = (c->rc_backoff_ms % 1000) * 1000;
	evtimer_add(c->rc_retry, &tv);
	c->rc_backoff_ms = c->rc_backoff_ms * 2 > REDIS_CONN_BACKOFF_MAX_MS
	    ? REDIS_CONN_BACKOFF_MAX_MS
	    : c->rc_backoff_ms * 2;
	redis_conn_report(c, 0, c->rc_why);
}

void
redis_conn_drop(struct redis_conn *c, const char *why)
{
	redisAsyncContext *ac = c->rc_ac;

	if (ac == NULL) {
		if (c->rc_state == RC_TARGET)
			redis_conn_lost(c, why);
		return;
	}
	redis_conn_lost(c, why);
	/* From inside a hiredis callback the free waits until it returns;
	 * either way every pending command hears of it now. */
	redisAsyncFree(ac);
}

void
redis_conn_reconnect(struct redis_conn *c, const char *why)
{
	struct timeval now = {0, 0};

	if (c->rc_state == RC_CONNECTING || c->rc_state == RC_READY)
		redis_conn_drop(c, why);
	if (c->rc_state != RC_DOWN)
		return;
	c->rc_backoff_ms = REDIS_CONN_BACKOFF_MIN_MS;
	evtimer_del(c->rc_retry);
	evtimer_add(c->rc_retry, &now);
}

/* --- the libevent adapter -------------------------------------------- */

static void
redis_conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);
	redisAsyncContext *ac = c->rc_ac;
	redisReader *r;
	char why[96];

	(void)fd;
	(void)what;
	if (ac == NULL)
		return;
	redisAsyncHandleRead(ac);
	if (c->rc_ac != ac)
		return; /* dropped (and freed) meanwhile */
	/* Security: what is left unparsed is one reply still coming in; a
	 * server that sends more than any answer of ours can be is cut off
	 * before it makes us hold it. */
	r = ac->c.reader;
	if (r != NULL && r->len - r->pos > c->rc_reply_max) {
		snprintf(why, sizeof(why),
		    "a reply larger than the limit of %zu bytes",
		    c->rc_reply_max);
		redis_conn_drop(c, why);
	}
}

static void
redis_conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);

	(void)fd;
	(void)what;
	if (c->rc_ac != NULL)
		redisAsyncHandleWrite(c->rc_ac);
}

/* The commands queued during this turn of the loop, written in one go at
 * its end (see redis_conn_add_write). */
static void
redis_conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);

	(void)fd;
	(void)what;
	c->rc_flush_queued = 0;
	if (c->rc_ac == NULL)
		return;
	c->rc_flushing = 1;
	redisAsyncHandleWrite(c->rc_ac);
	c->rc_flushing = 0;
}

/* hiredis asks for reading after every read and every write; the read
 * event is persistent, so once it is in the loop this costs nothing (a
 * one-shot event would be taken out of epoll and put back around each
 * reply: two epoll_ctl calls per reply). */
static void
redis_conn_add_read(void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);

	event_add(c->rc_rev, NULL);
}

static void
redis_conn_del_read(void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);

	event_del(c->rc_rev);
}

/*
 * hiredis asks for writing when a command is queued.  Rather than asking
 * epoll whether the socket is writable (it nearly always is, and the
 * interest costs an epoll_ctl to add and one to remove per batch, plus a
 * turn of the loop), the commands of this turn are flushed at its end by
 * an activated event without a socket, which also lets the commands of
 * every request handled in this turn go out in one write.  Only what the
 * socket did not take then (or a connection still being set up) waits for
 * the socket's write event.
 */
static void
redis_conn_add_write(void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);

	if (c->rc_flushing || c->rc_ac == NULL ||
	    !(c->rc_ac->c.flags & REDIS_CONNECTED)) {
		event_add(c->rc_wev, NULL);
		return;
	}
	if (!c->rc_flush_queued) {
		c->rc_flush_queued = 1;
		event_active(c->rc_fev, EV_TIMEOUT, 0);
	}
}

static void
redis_conn_del_write(void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);

	event_del(c->rc_wev);
}

static void
redis_conn_ev_cleanup(void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);

	if (c->rc_rev != NULL)
		event_free(c->rc_rev);
	if (c->rc_wev != NULL)
		event_free(c->rc_wev);
	if (c->rc_fev != NULL)
		event_free(c->rc_fev);
	c->rc_rev = c->rc_wev = c->rc_fev = NULL;
	c->rc_flush_queued = 0;
}

static int
redis_conn_attach(struct redis_conn *c, redisAsyncContext *ac)
{
	c->rc_rev = event_new(
	    c->rc_base, ac->c.fd, EV_READ | EV_PERSIST, redis_conn_read_cb, c);
	c->rc_wev = event_new(c->rc_base, ac->c.fd, EV_WRITE | EV_PERSIST,
	    redis_conn_write_cb, c);
	c->rc_fev = event_new(c->rc_base, -1, 0, redis_conn_flush_cb, c);
	if (c->rc_rev == NULL || c->rc_wev == NULL || c->rc_fev == NULL) {
		redis_conn_ev_cleanup(c);
		return -1;
	}
	ac->ev.addRead = redis_conn_add_read;
	ac->ev.delRead = redis_conn_del_read;
	ac->ev.addWrite = redis_conn_add_write;
	ac->ev.delWrite = redis_conn_del_write;
	ac->ev.cleanup = redis_conn_ev_cleanup;
	ac->ev.data = c;
	event_add(c->rc_rev, NULL);
	event_add(c->rc_wev, NULL);
	return 0;
}

/* --- bounded replies ------------------------------------------------- */

static void *
redis_conn_create_string(const redisReadTask *task, char *str, size_t len)
{
	struct redis_conn *c = redis_conn_cast(task->privdata);

	if (len > c->rc_reply_max) {
		c->rc_refused = "a reply string larger than the limit";
		return NULL; /* hiredis: a reader error, the connection goes */
	}
	return c->rc_orig->createString(task, str, len);
}

static void *
redis_conn_create_array(const redisReadTask *task, int elements)
{
	struct redis_conn *c = redis_conn_cast(task->privdata);

	/* Security: hiredis 0.14 allocates the element array before any
	 * element arrives, so the count a server names is checked first. */
	if (elements < 0 || elements > c->rc_elements_max) {
		c->rc_refused = "an array reply with more elements than any "
		                "answer of ours has";
		return NULL;
	}
	return c->rc_orig->createArray(task, elements);
}

/* --- commands -------------------------------------------------------- */

static void
redis_conn_deadline_arm(struct redis_conn *c, long long now)
{
	struct redis_conn_cmd *head = TAILQ_FIRST(&c->rc_cmds);
	long long ms;
	struct timeval tv;

	if (head == NULL || evtimer_pending(c->rc_deadline, NULL))
		return;
	ms = head->cc_deadline - now;
	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(c->rc_deadline, &tv);
}

static void
redis_conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);
	struct redis_conn_cmd *head = TAILQ_FIRST(&c->rc_cmds);
	long long now = redis_conn_now_ms();
	char why[96];

	(void)fd;
	(void)what;
	if (head == NULL)
		return;
	if (head->cc_deadline > now) {
		redis_conn_deadline_arm(c, now);
		return;
	}
	snprintf(why, sizeof(why), "no answer within %d ms (redis_timeout)",
	    c->rc_timeout_ms);
	redis_conn_drop(c, why);
}

/* hiredis's callback for each of our commands: reply NULL when the
 * context is being freed (dropped, lost, shutting down). */
static void
redis_conn_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_conn_cmd *cmd = redis_conn_cmd_cast(privdata);
	struct redis_conn *c = cmd->cc_conn;
	redis_conn_reply_fn *fn = cmd->cc_fn;
	void *arg = cmd->cc_arg;
	const char *why = NULL;

	TAILQ_REMOVE(&c->rc_cmds, cmd, cc_link);
	cmd->cc_magic = 0;
	free(cmd);
	if (reply == NULL) {
		/* hiredis ended the connection itself (EOF, a protocol
		 * error, a refused reply): that is news; when we dropped it,
		 * rc_why says why already. */
		if (c->rc_ac == ac)
			redis_conn_lost(c,
			    c->rc_refused != NULL ? c->rc_refused
			        : ac->err != 0    ? ac->errstr
			                          : "the connection closed");
		why = c->rc_state == RC_CLOSED ? "shutting down" : c->rc_why;
	}
	if (fn != NULL)
		fn(arg, reply, why);
}

/* Queue a command on the current context (even during the handshake). */
static int
redis_conn_send(struct redis_conn *c, int argc, const char **argv,
    const size_t *argvlen, redis_conn_reply_fn *fn, void *arg,
    struct redis_conn_cmd **out)
{
	struct redis_conn_cmd *cmd;
	long long now = redis_conn_now_ms();

	cmd = calloc(1, sizeof(*cmd));
	if (cmd == NULL)
		return -1;
	cmd->cc_magic = REDIS_CMD_MAGIC;
	cmd->cc_conn = c;
	cmd->cc_fn = fn;
	cmd->cc_arg = arg;
	cmd->cc_deadline = now + c->rc_timeout_ms;
	if (redisAsyncCommandArgv(c->rc_ac, redis_conn_reply_cb, cmd, argc,
	        argv, argvlen) != REDIS_OK) {
		free(cmd);
		return -1;
	}
	TAILQ_INSERT_TAIL(&c->rc_cmds, cmd, cc_link);
	redis_conn_deadline_arm(c, now);
	if (out != NULL)
		*out = cmd;
	return 0;
}

int
redis_conn_command(struct redis_conn *c, int argc, const char **argv,
    const size_t *argvlen, redis_conn_reply_fn *fn, void *arg,
    struct redis_conn_cmd **cmd, const char **why)
{
	if (c->rc_ac == NULL ||
	    (c->rc_state != RC_CONNECTING && c->rc_state != RC_READY)) {
		*why = c->rc_why[0] != '\0' ? c->rc_why : "not connected yet";
		return -1;
	}
	if (redis_conn_send(c, argc, argv, argvlen, fn, arg, cmd) == -1) {
		*why = "the command could not be queued";
		return -1;
	}
	return 0;
}

void
redis_conn_cancel(struct redis_conn_cmd *cmd)
{
	if (cmd != NULL)
		redis_conn_cmd_cast(cmd)->cc_fn = NULL;
}

int
redis_conn_ready(const struct redis_conn *c)
{
	return c->rc_state == RC_READY;
}

/* --- connecting ------------------------------------------------------ */

/* The handshake's answers: AUTH and SELECT must say OK, PING PONG; the
 * last one makes the connection ready. */
static void
redis_conn_hs_cb(void *arg, const struct redisReply *reply, const char *why)
{
	struct redis_conn *c = redis_conn_cast(arg);
	char buf[200], *text;

	(void)why;
	if (reply == NULL)
		return; /* the connection is gone; rc_why says why */
	if (reply->type == REDIS_REPLY_ERROR) {
		/* The server's own words, scrubbed whole before they are cut
		 * (a hostile server could echo the password). */
		text = strndup(reply->str, reply->len);
		if (text != NULL)
			redis_conn_scrub(c, text);
		snprintf(buf, sizeof(buf),
		    "the server refused the handshake: %.150s",
		    text != NULL ? text : "(out of memory)");
		free(text);
		redis_conn_drop(c, buf);
		return;
	}
	if (reply->type != REDIS_REPLY_STATUS) {
		redis_conn_drop(c,
		    "the server's answer to the handshake is "
		    "not a Redis status");
		return;
	}
	if (strcmp(reply->str, "PONG") != 0)
		return; /* AUTH or SELECT: OK; PING follows */
	c->rc_state = RC_READY;
	c->rc_backoff_ms = REDIS_CONN_BACKOFF_MIN_MS;
	c->rc_why[0] = '\0';
	redis_conn_report(c, 1, NULL);
}

/* AUTH [user] password, SELECT db, PING: pipelined behind nothing, so
 * the commands asked for meanwhile follow them. */
static int
redis_conn_handshake(struct redis_conn *c)
{
	const char *argv[3];
	size_t len[3];
	char db[16];
	int n = 0;

	if (c->rc_password.len > 0) {
		argv[n] = "AUTH";
		len[n++] = 4;
		if (c->rc_user != NULL) {
			argv[n] = c->rc_user;
			len[n] = strlen(c->rc_user);
			n++;
		}
		argv[n] = (const char *)c->rc_password.buf;
		len[n++] = c->rc_password.len;
		if (redis_conn_send(
		        c, n, argv, len, redis_conn_hs_cb, c, NULL) == -1)
			return -1;
	}
	if (c->rc_db != 0) {
		snprintf(db, sizeof(db), "%d", c->rc_db);
		argv[0] = "SELECT";
		len[0] = 6;
		argv[1] = db;
		len[1] = strlen(db);
		if (redis_conn_send(
		        c, 2, argv, len, redis_conn_hs_cb, c, NULL) == -1)
			return -1;
	}
	argv[0] = "PING";
	len[0] = 4;
	return redis_conn_send(c, 1, argv, len, redis_conn_hs_cb, c, NULL);
}

static void
redis_conn_connect_cb(const redisAsyncContext *ac, int status)
{
	struct redis_conn *c = redis_conn_cast(ac->data);

	/* On failure hiredis frees the context after this returns, failing
	 * the handshake (and whatever followed it) with NULL replies. */
	if (status != REDIS_OK && c->rc_ac == ac)
		redis_conn_lost(
		    c, ac->errstr[0] != '\0' ? ac->errstr : "connect failed");
}

static void
redis_conn_disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct redis_conn *c = redis_conn_cast(ac->data);

	(void)status;
	if (c->rc_ac == ac)
		redis_conn_lost(c,
		    ac->err != 0 ? ac->errstr
		                 : "the server closed the "
		                   "connection");
}

void
redis_conn_connect_to(struct redis_conn *c, const char *host, int port)
{
	redisAsyncContext *ac;
	redisReader *r;
	char why[200];

	if (c->rc_state != RC_TARGET)
		return;
	/* XXX hiredis resolves a host name with a blocking getaddrinfo
	 * here, on the worker's thread: an address (or a name in
	 * /etc/hosts) never waits on DNS. */
	ac = redisAsyncConnect(host, port);
	if (ac == NULL) {
		redis_conn_lost(c, "out of memory");
		return;
	}
	if (ac->err != 0) {
		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		redis_conn_lost(c, why);
		return;
	}
	r = ac->c.reader;
	c->rc_orig = r->fn;
	c->rc_fns = *r->fn;
	c->rc_fns.createString = redis_conn_create_string;
	c->rc_fns.createArray = redis_conn_create_array;
	r->fn = &c->rc_fns;
	r->privdata = c;
	c->rc_refused = NULL;
	ac->data = c;
	if (redis_conn_attach(c, ac) == -1) {
		redisAsyncFree(ac);
		redis_conn_lost(c, "out of memory");
		return;
	}
	redisAsyncSetConnectCallback(ac, redis_conn_connect_cb);
	redisAsyncSetDisconnectCallback(ac, redis_conn_disconnect_cb);
	c->rc_ac = ac;
	c->rc_state = RC_CONNECTING;
	if (redis_conn_handshake(c) == -1)
		redis_conn_drop(c, "out of memory");
}

void
redis_conn_target_failed(struct redis_conn *c, const char *why)
{
	if (c->rc_state == RC_TARGET)
		redis_conn_lost(c, why);
}

static void
redis_conn_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);
	const char *argv[1] = {"PING"};
	size_t len[1] = {4};

	(void)fd;
	(void)what;
	/* Busy connections are watched by their commands' deadlines. */
	if (c->rc_state == RC_READY && TAILQ_EMPTY(&c->rc_cmds))
		(void)redis_conn_send(c, 1, argv, len, NULL, NULL, NULL);
}

static void
redis_conn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_conn *c = redis_conn_cast(arg);

	(void)fd;
	(void)what;
	if (c->rc_state != RC_DOWN)
		return;
	c->rc_state = RC_TARGET;
	c->rc_target(c->rc_arg, c);
}

struct redis_conn *
redis_conn_new(struct event_base *base, const struct redis_conn_params *p)
{
	struct redis_conn *c;
	struct timeval now = {0, 0};
	struct timeval ping = {REDIS_CONN_PING_MS / 1000, 0};

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->rc_magic = REDIS_CONN_MAGIC;
	c->rc_base = base;
	TAILQ_INIT(&c->rc_cmds);
	c->rc_state = RC_DOWN;
	c->rc_reported = -1;
	c->rc_backoff_ms = REDIS_CONN_BACKOFF_MIN_MS;
	c->rc_db = p->rp_db;
	c->rc_timeout_ms = p->rp_timeout_ms > 0 ? p->rp_timeout_ms : 1000;
	c->rc_reply_max = p->rp_reply_max;
	c->rc_elements_max = p->rp_elements_max;
	c->rc_target = p->rp_target;
	c->rc_state_fn = p->rp_state;
	c->rc_arg = p->rp_arg;
	if ((p->rp_user != NULL && (c->rc_user = strdup(p->rp_user)) == NULL) ||
	    (p->rp_password != NULL && p->rp_password->len > 0 &&
	        crypto_secret_set(&c->rc_password, p->rp_password->buf,
	            p->rp_password->len) == -1))
		goto fail;
	c->rc_retry = evtimer_new(base, redis_conn_retry_cb, c);
	c->rc_deadline = evtimer_new(base, redis_conn_deadline_cb, c);
	c->rc_ping = event_new(base, -1, EV_PERSIST, redis_conn_ping_cb, c);
	if (c->rc_retry == NULL || c->rc_deadline == NULL || c->rc_ping == NULL)
		goto fail;
	evtimer_add(c->rc_retry, &now);
	evtimer_add(c->rc_ping, &ping);
	return c;
fail:
	redis_conn_free(c);
	return NULL;
}

void
redis_conn_free(struct redis_conn *c)
{
	redisAsyncContext *ac;

	if (c == NULL)
		return;
	c->rc_state = RC_CLOSED;
	ac = c->rc_ac;
	c->rc_ac = NULL;
	if (ac != NULL)
		redisAsyncFree(ac); /* each pending command: "shutting down" */
	if (c->rc_retry != NULL)
		event_free(c->rc_retry);
	if (c->rc_deadline != NULL)
		event_free(c->rc_deadline);
	if (c->rc_ping != NULL)
		event_free(c->rc_ping);
	if (c->rc_user != NULL)
		OPENSSL_cleanse(c->rc_user, strlen(c->rc_user));
	free(c->rc_user);
	crypto_secret_cleanup(&c->rc_password);
	c->rc_magic = 0;
	free(c);
}
