/* SPDX-License-Identifier: ISC */
/* redis_url.c: redis:// and redis-sentinel:// session_store values. */
#include <arpa/inet.h>

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "redis_url.h"

static const struct {
	const char *scheme;
	int sentinel;
} redis_url_schemes[] = {
    {"redis://", 0},
    {"redis-sentinel://", 1},
};

int
redis_url_is(const char *s)
{
	return strncasecmp(s, "redis://", 8) == 0 ||
	    strncasecmp(s, "rediss://", 9) == 0 ||
	    strncasecmp(s, "redis-sentinel://", 17) == 0;
}

static int
redis_url_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode s[0..n) into a new string (*len bytes, NUL after);
 * NULL on a bad escape, an encoded NUL or no memory. */
static char *
redis_url_decode(const char *s, size_t n, size_t *len)
{
	char *out, *o;
	size_t i;
	int hi, lo;

	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0, o = out; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		hi = lo = -1;
		if (i + 2 < n) {
			hi = redis_url_hex((unsigned char)s[i + 1]);
			lo = redis_url_hex((unsigned char)s[i + 2]);
		}
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			OPENSSL_cleanse(out, n + 1);
			free(out);
			return NULL;
		}
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = '\0';
	*len = (size_t)(o - out);
	return out;
}

/* A port: 1 to 65535, digits only. */
static int
redis_url_port(const char *s, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* One host[:port] or [v6][:port] of s[0..n) into a. */
static int
redis_url_addr(const char *s, size_t n, int defport, struct redis_url_addr *a,
    const char **errstr)
{
	const char *hs, *colon;
	size_t hn, i;
	unsigned char v6[16];

	if (n > 0 && s[0] == '[') {
		colon = memchr(s, ']', n);
		if (colon == NULL) {
			*errstr = "an IPv6 address lacks its closing ']'";
			return -1;
		}
		hs = s + 1;
		hn = (size_t)(colon - hs);
		colon++;
		if (colon < s + n && *colon != ':') {
			*errstr = "unexpected text after an IPv6 address";
			return -1;
		}
		if (colon == s + n)
			colon = NULL;
	} else {
		hs = s;
		colon = memchr(s, ':', n);
		hn = colon != NULL ? (size_t)(colon - s) : n;
	}
	if (hn == 0) {
		*errstr = "a host is missing";
		return -1;
	}
	if (hn > REDIS_URL_HOST_MAX) {
		*errstr = "a host name is too long";
		return -1;
	}
	memcpy(a->ra_host, hs, hn);
	a->ra_host[hn] = '\0';
	if (s[0] == '[') {
		if (inet_pton(AF_INET6, a->ra_host, v6) != 1) {
			*errstr = "a bracketed host is not an IPv6 address";
			return -1;
		}
	} else
		for (i = 0; i < hn; i++)
			if (!isalnum((unsigned char)hs[i]) && hs[i] != '.' &&
			    hs[i] != '-' && hs[i] != '_') {
				*errstr =
				    "a host may hold only letters, digits, "
				    "'.', '-' and '_' (an IPv6 address goes "
				    "in brackets)";
				return -1;
			}
	a->ra_port = defport;
	if (colon != NULL) {
		a->ra_port =
		    redis_url_port(colon + 1, (size_t)(s + n - colon - 1));
		if (a->ra_port == -1) {
			*errstr = "a port must be a number from 1 to 65535";
			return -1;
		}
	}
	return 0;
}

/* A database number: digits only, within int. */
static int
redis_url_db(const char *s, size_t n, int *db)
{
	long long v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > INT_MAX)
		return -1;
	*db = (int)v;
	return 0;
}

/* user[:password] of s[0..n). */
static int
redis_url_userinfo(
    const char *s, size_t n, struct redis_url *u, const char **errstr)
{
	const char *colon = memchr(s, ':', n);
	size_t un = colon != NULL ? (size_t)(colon - s) : n, len;
	char *pw;
	int rc;

	if (un > 0) {
		u->ru_user = redis_url_decode(s, un, &len);
		if (u->ru_user == NULL) {
			*errstr = "the user name has a bad percent-escape";
			return -1;
		}
	}
	if (colon == NULL)
		return 0;
	u->ru_has_password = 1;
	pw = redis_url_decode(colon + 1, (size_t)(s + n - colon - 1), &len);
	if (pw == NULL) {
		*errstr = "the password has a bad percent-escape";
		return -1;
	}
	rc = crypto_secret_set(&u->ru_password, pw, len);
	OPENSSL_cleanse(pw, len);
	free(pw);
	if (rc == -1) {
		*errstr = "out of memory";
		return -1;
	}
	return 0;
}

/* The hosts of s[0..n), comma-separated. */
static int
redis_url_hosts(
    const char *s, size_t n, struct redis_url *u, const char **errstr)
{
	const char *p = s, *end = s + n, *comma;
	int defport = u->ru_sentinel ? REDIS_URL_SENTINEL_PORT : REDIS_URL_PORT;
	size_t count = 1, i;

	for (i = 0; i < n; i++)
		if (s[i] == ',')
			count++;
	if (count > 1 && !u->ru_sentinel) {
		*errstr = "redis:// names one host; several are for "
		          "redis-sentinel://";
		return -1;
	}
	if (count > REDIS_URL_MAX_ADDRS) {
		*errstr = "too many sentinels (at most 16)";
		return -1;
	}
	u->ru_addrs = calloc(count, sizeof(*u->ru_addrs));
	if (u->ru_addrs == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	for (i = 0; i < count; i++) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == NULL)
			comma = end;
		if (redis_url_addr(p, (size_t)(comma - p), defport,
		        &u->ru_addrs[i], errstr) == -1)
			return -1;
		u->ru_naddrs++;
		p = comma + 1;
	}
	return 0;
}

/* The path: "", "/" or "/db" for redis://; "/MASTER[/db]" for a
 * sentinel URL. */
static int
redis_url_path(const char *s, struct redis_url *u, const char **errstr)
{
	const char *slash;
	size_t n, i;

	if (!u->ru_sentinel) {
		if (*s == '\0' || strcmp(s, "/") == 0)
			return 0;
		if (redis_url_db(s + 1, strlen(s + 1), &u->ru_db) == -1) {
			*errstr = "the path must be a database number, as in "
			          "redis://host:6379/0";
			return -1;
		}
		return 0;
	}
	if (*s != '/' || s[1] == '\0' || s[1] == '/') {
		*errstr = "redis-sentinel:// needs the master's name, as in "
		          "redis-sentinel://host:26379/mymaster";
		return -1;
	}
	s++;
	slash = strchr(s, '/');
	n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr("._-", s[i]) == NULL) {
			*errstr = "the master's name may hold only letters, "
			          "digits, '.', '-' and '_'";
			return -1;
		}
	u->ru_master = strndup(s, n);
	if (u->ru_master == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	if (slash != NULL && slash[1] != '\0' &&
	    redis_url_db(slash + 1, strlen(slash + 1), &u->ru_db) == -1) {
		*errstr = "after the master's name only a database number may "
		          "follow, as in /mymaster/0";
		return -1;
	}
	return 0;
}

int
redis_url_parse(const char *s, struct redis_url *u, const char **errstr)
{
	const char *auth, *end, *at;
	size_t i, sl;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "rediss://", 9) == 0) {
		*errstr = "rediss:// (TLS) is not supported: the hiredis this "
		          "build uses has no TLS; use redis:// on a private "
		          "network or a TLS tunnel";
		return -1;
	}
	auth = NULL;
	for (i = 0;
	     i < sizeof(redis_url_schemes) / sizeof(redis_url_schemes[0]);
	     i++) {
		sl = strlen(redis_url_schemes[i].scheme);
		if (strncasecmp(s, redis_url_schemes[i].scheme, sl) == 0) {
			u->ru_sentinel = redis_url_schemes[i].sentinel;
			auth = s + sl;
			break;
		}
	}
	if (auth == NULL) {
		*errstr = "not a redis:// or redis-sentinel:// URL";
		return -1;
	}
	if (strpbrk(auth, "?#") != NULL) {
		*errstr = "a query or fragment (?, #) is not supported; "
		          "percent-encode them in a password";
		goto fail;
	}
	for (i = 0; auth[i] != '\0'; i++)
		if ((unsigned char)auth[i] <= ' ' || auth[i] == 0x7f) {
			*errstr = "spaces and control characters are not "
			          "allowed (percent-encode them in a password)";
			goto fail;
		}
	end = strchr(auth, '/');
	if (end == NULL)
		end = auth + strlen(auth);
	at = NULL;
	for (i = 0; auth + i < end; i++)
		if (auth[i] == '@')
			at = auth + i;
	if (at != NULL) {
		if (redis_url_userinfo(auth, (size_t)(at - auth), u, errstr) ==
		    -1)
			goto fail;
		auth = at + 1;
	}
	if (redis_url_hosts(auth, (size_t)(end - auth), u, errstr) == -1 ||
	    redis_url_path(end, u, errstr) == -1)
		goto fail;
	return 0;
fail:
	redis_url_cleanup(u);
	return -1;
}

void
redis_url_cleanup(struct redis_url *u)
{
	if (u->ru_user != NULL)
		OPENSSL_cleanse(u->ru_user, strlen(u->ru_user));
	free(u->ru_user);
	crypto_secret_cleanup(&u->ru_password);
	free(u->ru_addrs);
	free(u->ru_master);
	memset(u, 0, sizeof(*u));
}
