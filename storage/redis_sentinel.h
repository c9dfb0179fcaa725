/* SPDX-License-Identifier: ISC */
/*
 * redis_sentinel.h: where the Redis master is, as Redis Sentinel says.
 * Asks the sentinels in turn (SENTINEL get-master-addr-by-name; the first
 * valid answer wins), follows +switch-master on one subscription
 * connection to a sentinel, and tells its owner each time the master's
 * address is learned or changes.
 *
 * Behaviour:
 *   - a round asks each sentinel once, starting with the last one that
 *     answered; a sentinel that is down, slow (no answer within the
 *     timeout) or answers nonsense is skipped with one warning line
 *     (when it starts failing at asking, or at following, not per round;
 *     one info line when it works again); when none answers,
 *     one warning says so and rounds are retried with backoff (100 ms
 *     doubling to 5 s) until one does, which one info line says;
 *   - the subscription goes to one sentinel at a time, AUTH'd when a
 *     password is set, kept alive with a PING every 5 s (an answer is due
 *     within the timeout); when it is lost it moves to the next sentinel
 *     after a backoff (100 ms doubling to 5 s, reset once subscribed), and
 *     each time it is (re)established a new round asks again, since a
 *     switch may have been missed meanwhile; an answer that a round
 *     brings after a +switch-master was followed is not used (it may
 *     predate the switch): the round is asked again;
 *   - each new master address is logged on one info line.
 *
 * Security: every reply is hostile until checked: types, sizes (a reply is
 * at most 4 KiB and 8 parts, see redis_link.h), the master name, and the
 * address: the host must be an IPv4 or IPv6 literal (not 0.0.0.0 or ::)
 * and the port a plain decimal 1..65535.  A host name is refused, because
 * connecting to it would need a DNS lookup the caller's hiredis connect
 * makes blocking, and would let a sentinel point the gateway anywhere by
 * name; sentinels must announce IP addresses (announce-hostnames no, the
 * default).  The password is sent only in AUTH and never logged; its
 * copies are cleansed when freed.
 *
 * The module does not send ROLE to the master it names: that takes the
 * master's credentials, which belong to the data connection.  Its owner
 * checks the master it connects to (ROLE, or a -READONLY answer to a
 * write) and calls redis_sentinel_refresh when the master is not one.
 *
 * Threads: a struct redis_sentinel lives on one event_base; every call
 * below is made from the thread that runs that event_base (or before its
 * loop runs), and the callback comes on that thread.  One per worker.
 */
#ifndef GATEHOUSE_REDIS_SENTINEL_H
#define GATEHOUSE_REDIS_SENTINEL_H

#include <stddef.h>

struct event_base;
struct gh_error;
struct redis_sentinel;

#define REDIS_SENTINEL_MAX 16       /* sentinels in one list */
#define REDIS_SENTINEL_HOST_MAX 256 /* bytes of a host, with its NUL */
#define REDIS_SENTINEL_NAME_MAX 255 /* bytes of a master name */

/* A sentinel's address: an IP literal or a host name, and a port. */
struct redis_hostport {
	char host[REDIS_SENTINEL_HOST_MAX];
	int port;
};

/*
 * Called with the master's address each time it is learned (the first
 * answer) or changes (a round's answer or a +switch-master message naming
 * another address), never twice in a row with the same address.  host is
 * a NUL-terminated IP literal, borrowed for the call; port is 1..65535.
 * Always from the event loop, never from inside redis_sentinel_new or
 * redis_sentinel_refresh.  The callback may call redis_sentinel_refresh,
 * and may free the struct redis_sentinel (it then goes when the callback
 * returns, and nothing more is called).
 */
typedef void redis_sentinel_master_fn(void *arg, const char *host, int port);

/* The settings of one watcher; borrowed by redis_sentinel_new only (every
 * string is copied). */
struct redis_sentinel_cfg {
	const struct redis_hostport *sc_sentinels; /* 1..REDIS_SENTINEL_MAX */
	size_t sc_n;
	const char *sc_master_name; /* printable ASCII, no space, 1..255 */
	/* AUTH on the sentinels (their own requirepass, which is not the
	 * master's): NULL password = no AUTH; a user needs a password. */
	const char *sc_user;
	const char *sc_password;
	int sc_timeout_ms; /* 1..60000: connect, and each answer */
};

/*
 * A new watcher on base (borrowed; must outlive it) that starts asking at
 * once (from the event loop) and calls fn(arg, host, port) as described
 * above.  Returns the watcher (redis_sentinel_free), or NULL with err set:
 * a bad setting (named), or no memory.  Host names of sentinels are
 * resolved without blocking (evdns, /etc/resolv.conf and /etc/hosts read
 * once here), again at each connection.
 */
struct redis_sentinel *redis_sentinel_new(struct event_base *base,
    const struct redis_sentinel_cfg *cfg, redis_sentinel_master_fn *fn,
    void *arg, struct gh_error *err);

/*
 * Ask the sentinels again now, from the event loop: call it when the data
 * connection to the master failed, or the master said it is not one
 * (ROLE, -READONLY).  Calls while a round runs are merged into one more
 * round after it, so calling it on every failed reconnect is cheap.  fn
 * comes only if the answer names another address.
 */
void redis_sentinel_refresh(struct redis_sentinel *rs);

/*
 * Close every connection and free rs (takes it); NULL is a no-op.  fn is
 * not called from it.  Safe inside fn, and after the loop has stopped (a
 * worker's teardown): all is released at once, except what belongs to a
 * sentinel's host name still being looked up, which needs one more turn
 * of the loop (see redis_link_free).
 */
void redis_sentinel_free(struct redis_sentinel *rs);

#endif
