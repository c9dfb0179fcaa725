/* SPDX-License-Identifier: ISC */
/* cookie.c: the Cookie header in, Set-Cookie out. */
#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "http/http1.h"
#include "http/resp_hdrs.h"
#include "session/cookie.h"

static int cookie_parse_name(struct config *, const struct config_key *,
    const char *, int, const char **);
static int cookie_parse_domain(struct config *, const struct config_key *,
    const char *, int, const char **);
static void cookie_config_free(struct config *);

/* Sorted by name: looked up with bsearch. */
static const struct config_key cookie_keys[] = {
    {"cookie_domain", cookie_parse_domain, 0, NULL,
        "Domain attribute of the session cookie (to share it with "
        "subdomains); host-only by default.",
        0},
    {"cookie_name", cookie_parse_name, offsetof(struct config, cf_cookie_name),
        "gatehouse",
        "Name of the session cookie (sign-in flow cookies add a "
        "suffix).",
        0},
};
const struct config_module cookie_config_module = {"cookie", cookie_keys,
    sizeof(cookie_keys) / sizeof(cookie_keys[0]), NULL, cookie_config_free};

static int
cookie_parse_name(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)line;
	if (!http1_is_token(value, strlen(value)) || strlen(value) > 64) {
		*errstr = "expected a cookie name (letters, digits, - _ .)";
		return -1;
	}
	return config_parse_str(cfg, key, value, line, errstr);
}

static int
cookie_parse_domain(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	const char *p;

	(void)line;
	(void)key;
	for (p = value; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.') {
			*errstr = "expected a domain name such as example.com";
			return -1;
		}
	free(cfg->cf_cookie_domain);
	cfg->cf_cookie_domain = strdup(value);
	return 0;
}

/* Both keys have their own parsers, so their strings are freed here. */
static void
cookie_config_free(struct config *cfg)
{
	free(cfg->cf_cookie_name);
	free(cfg->cf_cookie_domain);
}

/*
 * Walk every Cookie header's pairs; fn returns non-zero to stop.  Pairs
 * without '=' are skipped.  Lengths are passed, the strings are not
 * terminated.
 */
static void
cookie_walk(const struct http1_req *in,
    int (*fn)(const char *n, size_t nl, const char *v, size_t vl, void *),
    void *arg)
{
	const struct http1_hdr *h;
	const char *p, *e, *eq, *ve;
	int i;

	for (i = 0; i < in->hr_nhdrs; i++) {
		h = &in->hr_hdrs[i];
		if (h->hh_nlen != 6 || strcasecmp(h->hh_name, "Cookie") != 0)
			continue;
		for (p = h->hh_value; *p != '\0'; p = *e == ';' ? e + 1 : e) {
			while (*p == ' ' || *p == '\t')
				p++;
			e = p + strcspn(p, ";");
			eq = memchr(p, '=', e - p);
			if (eq == NULL)
				continue;
			ve = e;
			while (ve > eq + 1 && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (fn(p, eq - p, eq + 1, ve - eq - 1, arg))
				return;
		}
	}
}

struct cookie_find {
	const char *name;
	char *out;
	size_t outsize;
	int found;
	int bad;
};

static int
cookie_find_cb(const char *n, size_t nl, const char *v, size_t vl, void *arg)
{
	struct cookie_find *cf = arg;

	if (nl != strlen(cf->name) || memcmp(n, cf->name, nl) != 0)
		return 0;
	/* Twice is a forgery attempt (cookie tossing from a sibling
	 * domain) or a mess; either way, not a session. */
	if (cf->found || vl == 0 || vl >= cf->outsize) {
		cf->bad = 1;
		return 1;
	}
	memcpy(cf->out, v, vl);
	cf->out[vl] = '\0';
	cf->found = 1;
	return 0;
}

int
cookie_get(
    const struct http1_req *in, const char *name, char *out, size_t outsize)
{
	struct cookie_find cf = {name, out, outsize, 0, 0};

	cookie_walk(in, cookie_find_cb, &cf);
	if (cf.bad) {
		out[0] = '\0';
		return -1;
	}
	return cf.found;
}

struct cookie_each {
	const char *prefix;
	void (*fn)(const char *, const char *, void *);
	void *arg;
	int n;
};

static int
cookie_each_cb(const char *n, size_t nl, const char *v, size_t vl, void *arg)
{
	struct cookie_each *ce = arg;
	size_t pl = strlen(ce->prefix);
	char name[128], value[COOKIE_MAX_VALUE];

	if (nl < pl || memcmp(n, ce->prefix, pl) != 0 || nl >= sizeof(name) ||
	    vl >= sizeof(value))
		return 0;
	memcpy(name, n, nl);
	name[nl] = '\0';
	memcpy(value, v, vl);
	value[vl] = '\0';
	ce->n++;
	ce->fn(name, value, ce->arg);
	return 0;
}

int
cookie_foreach(const struct http1_req *in, const char *prefix,
    void (*fn)(const char *name, const char *value, void *arg), void *arg)
{
	struct cookie_each ce = {prefix, fn, arg, 0};

	cookie_walk(in, cookie_each_cb, &ce);
	return ce.n;
}

void
cookie_set(struct resp_hdrs *out, const struct config *cfg, const char *name,
    const char *value, int max_age, int samesite)
{
	char buf[COOKIE_MAX_VALUE + 512], age[64] = "";
	int secure = cfg->cf_public_https || samesite == COOKIE_NONE;

	if (max_age == 0)
		snprintf(age, sizeof(age),
		    "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
	else if (max_age > 0)
		snprintf(age, sizeof(age), "; Max-Age=%d", max_age);
	snprintf(buf, sizeof(buf), "%s=%s; Path=/; HttpOnly%s%s%s%s%s", name,
	    max_age == 0 ? "" : value, age,
	    samesite == COOKIE_NONE ? "; SameSite=None" : "; SameSite=Lax",
	    secure ? "; Secure" : "",
	    cfg->cf_cookie_domain != NULL ? "; Domain=" : "",
	    cfg->cf_cookie_domain != NULL ? cfg->cf_cookie_domain : "");
	resp_hdrs_add(out, "Set-Cookie", buf);
}
