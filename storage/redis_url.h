/* SPDX-License-Identifier: ISC */
/*
 * redis_url.h: the session_store values that name a Redis store, parsed:
 *   redis://[user[:password]@]host[:port][/db]
 *   redis-sentinel://[user[:password]@]host[:port][,host[:port]...]/MASTER[/db]
 * host is a name, an IPv4 address or an IPv6 address in brackets; port
 * defaults to 6379 (redis://) or 26379 (a sentinel); db to 0.  User and
 * password are percent-decoded.  No query, fragment or TLS (rediss://):
 * the hiredis this builds on (0.14) has no TLS.
 *
 * The password is a secret: errors never quote the URL, and a struct
 * redis_url keeps it in a struct secret.  Pure functions, any thread.
 */
#ifndef GATEHOUSE_REDIS_URL_H
#define GATEHOUSE_REDIS_URL_H

#include <stddef.h>

#include "core/crypto.h"

#define REDIS_URL_PORT 6379
#define REDIS_URL_SENTINEL_PORT 26379
#define REDIS_URL_MAX_ADDRS 16 /* sentinels in one URL */
#define REDIS_URL_HOST_MAX 255

struct redis_url_addr {
	char ra_host[REDIS_URL_HOST_MAX + 1]; /* without IPv6 brackets */
	int ra_port;
};

struct redis_url {
	int ru_sentinel;                 /* redis-sentinel:// */
	char *ru_user;                   /* new; NULL when the URL names none */
	struct secret ru_password;       /* len 0 when the URL has none */
	int ru_has_password;             /* a ':' followed the user (even "") */
	struct redis_url_addr *ru_addrs; /* new: the server, or the sentinels */
	size_t ru_naddrs;
	char *ru_master; /* new: the master's name (sentinel only), else NULL */
	int ru_db;
};

/* Whether s is meant as a Redis URL (its scheme is redis, rediss or
 * redis-sentinel, in any case): a session_store value that is not a
 * path. */
int redis_url_is(const char *s);

/*
 * Parse s into u (zeroed first).  Returns 0, or -1 with *errstr set to a
 * static message that never quotes s (it may hold a password) and u left
 * empty.  The caller calls redis_url_cleanup(u) after a 0.
 */
int redis_url_parse(const char *s, struct redis_url *u, const char **errstr);

/* Free what u holds (the password is cleansed); u may be empty. */
void redis_url_cleanup(struct redis_url *u);

#endif
