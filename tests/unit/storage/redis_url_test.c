/* SPDX-License-Identifier: ISC */
/*
 * redis_url_test.c: storage/redis_url.c, the redis:// and
 * redis-sentinel:// session_store values; table-driven, with the rule
 * that no error message ever quotes the URL (it may hold a password).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "tap.h"

/* Accepted URLs and what they mean. */
static const struct {
	const char *url;
	int sentinel;
	const char *user;     /* NULL: none */
	const char *password; /* NULL: none */
	const char *hosts;    /* "host:port,host:port" as parsed */
	const char *master;   /* NULL: none */
	int db;
} good[] = {
    {"redis://127.0.0.1:6379", 0, NULL, NULL, "127.0.0.1:6379", NULL, 0},
    {"redis://localhost", 0, NULL, NULL, "localhost:6379", NULL, 0},
    {"REDIS://Redis.Example:7000/", 0, NULL, NULL, "Redis.Example:7000", NULL,
        0},
    {"redis://redis:6379/3", 0, NULL, NULL, "redis:6379", NULL, 3},
    {"redis://:s3cret@redis:6379/0", 0, NULL, "s3cret", "redis:6379", NULL, 0},
    {"redis://gatehouse:s3cret@redis:6379", 0, "gatehouse", "s3cret",
        "redis:6379", NULL, 0},
    {"redis://gatehouse@redis", 0, "gatehouse", NULL, "redis:6379", NULL, 0},
    /* Percent-escapes in the user and password; a raw ':' and '@' in the
     * password (the last '@' ends the user information). */
    {"redis://u%40x:p%2Fa%3As%25s@h:1", 0, "u@x", "p/a:s%s", "h:1", NULL, 0},
    {"redis://u:a:b@c@h:1", 0, "u", "a:b@c", "h:1", NULL, 0},
    {"redis://[::1]:6380/2", 0, NULL, NULL, "::1:6380", NULL, 2},
    {"redis://[2001:db8::7]", 0, NULL, NULL, "2001:db8::7:6379", NULL, 0},
    {"redis-sentinel://s1:26379,s2:26380,[::1]/mymaster", 1, NULL, NULL,
        "s1:26379,s2:26380,::1:26379", "mymaster", 0},
    {"redis-sentinel://s1/mymaster/4", 1, NULL, NULL, "s1:26379", "mymaster",
        4},
    {"redis-sentinel://:pw@s1,s2/my-master.1", 1, NULL, "pw",
        "s1:26379,s2:26379", "my-master.1", 0},
};

/* Refused URLs, and a word the error must contain. */
static const struct {
	const char *url;
	const char *why;
} bad[] = {
    {"rediss://h:6379", "TLS"},
    {"http://h:6379", "not a redis"},
    {"redis://", "host is missing"},
    {"redis://:pw@", "host is missing"},
    {"redis://h:0", "port"},
    {"redis://h:65536", "port"},
    {"redis://h:12x", "port"},
    {"redis://h:", "port"},
    {"redis://h/db", "database number"},
    {"redis://h/1/2", "database number"},
    {"redis://h/99999999999", "database number"},
    {"redis://h?db=1", "query"},
    {"redis://h#x", "query"},
    {"redis://h j:1", "spaces"},
    {"redis://h\r\n:1", "control"},
    {"redis://a,b:1", "one host"},
    {"redis://[::1:6379", "closing"},
    {"redis://[nothex]:1", "IPv6"},
    {"redis://[::1]x", "after an IPv6"},
    {"redis://h_!:1", "letters"},
    {"redis://u:p%2@h", "percent-escape"},
    {"redis://u:p%zz@h", "percent-escape"},
    {"redis://u:p%00@h", "percent-escape"},
    {"redis://u%4@h", "percent-escape"},
    {"redis-sentinel://s1:26379", "master"},
    {"redis-sentinel://s1:26379/", "master"},
    {"redis-sentinel://s1//x", "master"},
    {"redis-sentinel://s1/my master", "spaces"},
    {"redis-sentinel://s1/m$x", "master's name"},
    {"redis-sentinel://s1/m/x", "database number"},
    {"redis-sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/m", "too many"},
    {"redis-sentinel://a,,b/m", "host is missing"},
};

/* The hosts of u as "host:port,host:port". */
static void
hosts_format(const struct redis_url *u, char *out, size_t size)
{
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < u->ru_naddrs && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s:%d",
		    i > 0 ? "," : "", u->ru_addrs[i].ra_host,
		    u->ru_addrs[i].ra_port);
}

static void
test_good(void)
{
	struct redis_url u;
	const char *errstr;
	char hosts[512];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		errstr = NULL;
		if (!ok(redis_url_parse(good[i].url, &u, &errstr) == 0,
		        "parses: %s", good[i].url)) {
			printf("#   %s\n", errstr);
			continue;
		}
		is_int(
		    u.ru_sentinel, good[i].sentinel, "%s: kind", good[i].url);
		is_str(u.ru_user, good[i].user, "%s: user", good[i].url);
		is_str(u.ru_password.len > 0 || u.ru_has_password
		        ? (const char *)u.ru_password.buf
		        : NULL,
		    good[i].password, "%s: password", good[i].url);
		hosts_format(&u, hosts, sizeof(hosts));
		is_str(hosts, good[i].hosts, "%s: hosts", good[i].url);
		is_str(u.ru_master, good[i].master, "%s: master", good[i].url);
		is_int(u.ru_db, good[i].db, "%s: db", good[i].url);
		redis_url_cleanup(&u);
	}
}

static void
test_bad(void)
{
	struct redis_url u;
	const char *errstr;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errstr = NULL;
		ok(redis_url_parse(bad[i].url, &u, &errstr) == -1 &&
		        errstr != NULL && strstr(errstr, bad[i].why) != NULL,
		    "refused: %s (%s)", bad[i].url,
		    errstr != NULL ? errstr : "accepted");
		/* Refused means emptied: nothing to clean up, nothing kept. */
		ok(u.ru_user == NULL && u.ru_addrs == NULL &&
		        u.ru_password.buf == NULL && u.ru_master == NULL,
		    "nothing kept after refusing %s", bad[i].url);
	}
}

/* No message quotes its URL: a password in it must never reach a log or
 * the output of --check. */
static void
test_errors_never_quote(void)
{
	static const char *const urls[] = {
	    "redis://user:hunter2pw@h:99999",
	    "redis://user:hunter2pw@h/notadb",
	    "redis://user:hunter2pw@h?x",
	    "rediss://user:hunter2pw@h",
	    "redis-sentinel://user:hunter2pw@h",
	};
	struct redis_url u;
	const char *errstr;
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		errstr = NULL;
		ok(redis_url_parse(urls[i], &u, &errstr) == -1 &&
		        strstr(errstr, "hunter2") == NULL &&
		        strstr(errstr, "user") == NULL,
		    "error %zu says what, never the value", i);
	}
}

static void
test_is(void)
{
	ok(redis_url_is("redis://h"), "redis:// is Redis");
	ok(redis_url_is("Redis-Sentinel://h/m"), "any case");
	ok(redis_url_is("rediss://h"), "rediss:// too (refused later)");
	ok(!redis_url_is("/var/lib/gatehouse/sessions"), "a path is not");
	ok(!redis_url_is("redis"), "a relative path named redis is not");
	ok(!redis_url_is("./redis://x"), "nor one that only contains it");
}

int
main(void)
{
	test_good();
	test_bad();
	test_errors_never_quote();
	test_is();
	return done_testing();
}
