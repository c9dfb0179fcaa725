/* SPDX-License-Identifier: ISC */
/*
 * redis_conn.h: one hiredis asynchronous connection on a libevent base,
 * kept up: connect (to the address a target hook gives), a handshake
 * (AUTH, SELECT, PING), pipelined commands each with a deadline, and on
 * any failure (connection refused or lost, a command past its deadline, a
 * reply larger than allowed, a protocol error) the connection is dropped,
 * every pending command fails at once, and a new one is tried after a
 * backoff (100 ms doubling to 5 s).  Commands asked for while there is no
 * connection fail at once: nothing waits for a server that is down.
 *
 * Threads: a struct redis_conn belongs to the thread that runs its event
 * base; every call and callback happens there.
 */
#ifndef GATEHOUSE_REDIS_CONN_H
#define GATEHOUSE_REDIS_CONN_H

#include <stddef.h>

struct event_base;
struct redisReply;
struct redis_conn;
struct redis_conn_cmd;
struct secret;

#define REDIS_CONN_BACKOFF_MIN_MS 100
#define REDIS_CONN_BACKOFF_MAX_MS 5000

/*
 * The answer to a command: reply is the server's (borrowed, valid during
 * the call; may be an error reply, REDIS_REPLY_ERROR), or NULL when there
 * is none (the command failed: not sent, timed out, connection lost) with
 * why saying so in words (borrowed; never a password).
 */
typedef void redis_conn_reply_fn(
    void *arg, const struct redisReply *reply, const char *why);

struct redis_conn_params {
	const char *rp_user;              /* AUTH user, or NULL */
	const struct secret *rp_password; /* NULL or empty: no AUTH */
	int rp_db;                        /* SELECT unless 0 */
	int rp_timeout_ms;                /* each command's deadline */
	size_t rp_reply_max; /* most bytes a reply may take in the read
	                        buffer (a larger one drops the connection) */
	int rp_elements_max; /* most elements an array reply may have */
	/*
	 * Where to connect.  Called before each attempt; it answers by
	 * calling redis_conn_connect_to(c, host, port), now or later (a
	 * Sentinel lookup), or redis_conn_target_failed(c, why).
	 */
	void (*rp_target)(void *arg, struct redis_conn *c);
	/* The connection became usable (up 1: handshake done) or stopped
	 * being so (up 0, why in words); only on changes. */
	void (*rp_state)(void *arg, int up, const char *why);
	void *rp_arg;
};

/*
 * A connection on base with params p (copied, the password too).  The
 * first attempt starts at once (its target hook runs from the loop).  New
 * or NULL.
 */
struct redis_conn *redis_conn_new(
    struct event_base *base, const struct redis_conn_params *p);

/* Free c (takes it): the connection is closed and every pending command
 * gets its failure (why "shutting down") first; NULL is a no-op. */
void redis_conn_free(struct redis_conn *c);

/* The target hook's answers (see rp_target). */
void redis_conn_connect_to(struct redis_conn *c, const char *host, int port);
void redis_conn_target_failed(struct redis_conn *c, const char *why);

/*
 * Send a command (argc arguments, binary-safe; copied before the call
 * returns).  Returns 0 when it is on its way: fn(arg, reply, why) runs
 * exactly once later, unless cancelled first, and *cmd (may be NULL) is
 * its handle until then.  Returns -1 when it cannot be sent now (no
 * connection; *why says why): fn is never called.  fn may send commands
 * and cancel others.
 */
int redis_conn_command(struct redis_conn *c, int argc, const char **argv,
    const size_t *argvlen, redis_conn_reply_fn *fn, void *arg,
    struct redis_conn_cmd **cmd, const char **why);

/* Forget cmd's callback: it is never called.  The reply, when it comes,
 * is read and dropped.  Only before the callback ran. */
void redis_conn_cancel(struct redis_conn_cmd *cmd);

/* Overwrite every copy of c's password in text (NUL-terminated) with
 * '*': for a server's words on their way to a log. */
void redis_conn_scrub(const struct redis_conn *c, char *text);

/* Whether c is connected and through its handshake. */
int redis_conn_ready(const struct redis_conn *c);

/* Drop the connection now (every pending command fails with why) and
 * reconnect after the backoff; for a caller that found the server unfit
 * (a Sentinel's switch of masters).  A no-op without a connection. */
void redis_conn_drop(struct redis_conn *c, const char *why);

/* Connect again at once, without the backoff: drop the connection there
 * is (as redis_conn_drop, with why) and ask the target hook now; for an
 * owner that learned a new address (a Sentinel's new master).  A no-op
 * while the target hook's answer is awaited. */
void redis_conn_reconnect(struct redis_conn *c, const char *why);

#endif
