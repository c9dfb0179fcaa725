/* SPDX-License-Identifier: ISC */
/*
 * redis_link.h: one connection to a Redis server or sentinel on a libevent
 * event_base: commands out, replies in (parsed by hiredis's reply reader),
 * a deadline on the connect and on every awaited answer, and limits on
 * what the other side may send.
 *
 * Why not hiredis's async API (redisAsyncContext): in hiredis 0.14 a
 * server can abort the whole process through it.  async.c asserts that a
 * reply arriving with no command waiting for it comes on a subscribed
 * connection, and that a reply on a subscribed connection is an array of
 * at least two strings (so "+OK\r\n+OK\r\n" in answer to one command, or
 * "*1\r\n$9\r\nsubscribe\r\n" in answer to a SUBSCRIBE, ends gatehouse
 * with SIGABRT).  It also has no timeouts, and buffers a bulk string of
 * whatever length the server announces.  Here whatever the server sends
 * can only make the link fail, with a reason in words.
 *
 * A link is made connecting and is never reconnected: when it fails, its
 * owner frees it and makes another (with whatever backoff it wants).
 *
 * Threads: a link belongs to the thread running its event_base; every
 * function below is called from that thread (or before its loop runs).
 */
#ifndef GATEHOUSE_REDIS_LINK_H
#define GATEHOUSE_REDIS_LINK_H

#include <stddef.h>

struct event_base;
struct evdns_base;
struct redisReply;
struct redis_link;

/* What a reply was, as its owner's reply callback says. */
enum redis_link_kind {
	REDIS_LINK_ANSWER, /* the answer to the oldest command awaiting one */
	REDIS_LINK_PUSH    /* a message the server sent on its own (pub/sub) */
};

/*
 * Called for each complete reply, in order, from the event loop.  reply is
 * borrowed: valid only during the call.  The owner inspects it (trusting
 * nothing of it: types, sizes, contents) and says what it was; only an
 * ANSWER counts against the commands awaiting one.  The callback may send
 * commands and may free the link (no further callback then comes).
 */
typedef enum redis_link_kind redis_link_reply_fn(
    void *arg, const struct redisReply *reply);

/*
 * Called once when the link fails: connect refused or timed out, the name
 * not resolved, no answer within the timeout, the connection closed or
 * reset, a protocol error, a reply over the limits.  why is a one-line
 * reason (borrowed, valid during the call; it may quote what the server
 * sent, so pass it through log_sanitize before logging).  No reply
 * callback comes after it.  The owner must still free the link, and may
 * do so inside this callback.
 */
typedef void redis_link_error_fn(void *arg, const char *why);

/* What to connect to and the limits; borrowed by redis_link_new only. */
struct redis_link_cfg {
	const char *lc_host;   /* an IP literal, or a name resolved with dns */
	int lc_port;           /* 1..65535 */
	int lc_timeout_ms;     /* > 0: connect, and each awaited answer */
	size_t lc_max_reply;   /* bytes of one reply still incomplete */
	size_t lc_max_objects; /* strings, integers, nils, arrays in a reply */
	redis_link_reply_fn *lc_reply_fn;
	redis_link_error_fn *lc_error_fn;
	void *lc_arg;
};

/*
 * Start connecting to cfg->lc_host:lc_port on base.  dns (borrowed; must
 * outlive the link) resolves a name without blocking; with an IP literal
 * it is not asked.  A name that resolves to several addresses is tried at
 * its first only.  Returns a new link (redis_link_free), or NULL when out
 * of memory.  Every failure, even an immediate one, reaches lc_error_fn
 * from the event loop, never from inside this call.
 */
struct redis_link *redis_link_new(struct event_base *base,
    struct evdns_base *dns, const struct redis_link_cfg *cfg);

/*
 * Queue one command of argc arguments (argv[i], argvlen[i] bytes; all
 * borrowed, copied), sent as soon as the link is connected; it awaits an
 * answer (and its deadline runs from the moment the link is connected or
 * the previous answer came).  The copy is cleansed when written or
 * dropped, so a password in AUTH does not linger in freed memory.
 * Returns 0, or -1 when the link has failed or memory ran out.
 */
int redis_link_command(
    struct redis_link *l, int argc, const char **argv, const size_t *argvlen);

/*
 * Close and free l (takes it); NULL is a no-op.  Safe inside its own
 * callbacks (the link then goes when the callback returns), and after its
 * loop has stopped: everything goes at once, except the socket of a link
 * whose host name is still being looked up, which libevent releases when
 * the lookup ends (on a later turn of the loop, if there is one).
 */
void redis_link_free(struct redis_link *l);

#endif
