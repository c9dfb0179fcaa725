/* SPDX-License-Identifier: ISC */
/*
 * callback_fuzz.c: fuzz target for the sign-in callback's parameter parser
 * (gateway/oidc/oidc_login.c oidc_params_parse, as /.auth/callback uses it for
 * the query and the form_post body) and the return-path check
 * (oidc_redirect_safe, oidc_target_or_root).
 *
 * Input: the query string or form body (up to its first NUL, as the
 * gateway sees it).  It is parsed with and without the callback's
 * must-be-unique names; every decoded value, and the whole input (the
 * redirect corpus holds raw return paths), is put through the return-path
 * check, and what oidc_target_or_root keeps must not lead back to
 * "/.auth" in any decoding.  Seeds: tests/corpus/callback and
 * tests/corpus/redirect.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/config.h"
#include "core/crypto.h"
#include "fuzz.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"

/* The same list as oidc_callback.c's oidc_callback_unique. */
static const char *const fuzz_callback_unique[] = {
    "state", "code", "error", "error_description", "iss", NULL};

static struct config fuzz_cfg;

/* Whether buf (len bytes) begins with "/.auth" as a whole segment, in
 * any case. */
static int
fuzz_is_auth(const unsigned char *buf, size_t len)
{
	static const char prefix[] = "/.auth";
	size_t i, n = sizeof(prefix) - 1;

	if (len < n)
		return 0;
	for (i = 0; i < n; i++)
		if ((buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] + 32 : buf[i]) !=
		    prefix[i])
			return 0;
	return len == n || buf[n] == '/' || buf[n] == '?' || buf[n] == '#' ||
	    buf[n] == ';';
}

/*
 * The oracle's own view of a target: every percent-decoding of it (kept
 * with its length, so an encoded NUL cannot end the check early) must be
 * a path on this site without control characters or backslashes, and,
 * when `ours` is set, not one under gatehouse's own "/.auth".
 */
static int
fuzz_redirect_levels_ok(const char *t, int ours)
{
	unsigned char buf[2][2048];
	size_t len, i, o;
	int level, cur = 0, hi, lo, more;

	len = strlen(t);
	if (len >= sizeof(buf[0]))
		return 1; /* oidc_redirect_safe refuses these itself */
	memcpy(buf[0], t, len);
	for (level = 0; level < 5; level++) {
		if (len < 1 || buf[cur][0] != '/' ||
		    (len > 1 && (buf[cur][1] == '/' || buf[cur][1] == '\\')))
			return 0;
		if (ours && fuzz_is_auth(buf[cur], len))
			return 0;
		more = 0;
		for (i = 0; i < len; i++) {
			if (buf[cur][i] < 0x20 || buf[cur][i] == 0x7f ||
			    buf[cur][i] == '\\')
				return 0;
			if (buf[cur][i] == '%')
				more = 1;
		}
		if (!more)
			return 1;
		for (i = 0, o = 0; i < len; i++) {
			hi = i + 2 < len ? crypto_hex_value(buf[cur][i + 1])
			                 : -1;
			lo = hi < 0 ? -1 : crypto_hex_value(buf[cur][i + 2]);
			if (buf[cur][i] == '%' && hi >= 0 && lo >= 0) {
				buf[!cur][o++] = (unsigned char)(hi * 16 + lo);
				i += 2;
			} else
				buf[!cur][o++] = buf[cur][i];
		}
		len = o;
		cur = !cur;
	}
	return 1;
}

/* Abort when a target called safe could leave this site (oidc.h). */
static void
fuzz_redirect_check(const char *t)
{
	const char *r;

	r = oidc_target_or_root(&fuzz_cfg, t);
	if (!oidc_redirect_safe(t)) {
		if (strcmp(r, "/") != 0)
			goto broken;
		return;
	}
	if (!fuzz_redirect_levels_ok(t, 0))
		goto broken;
	if (strcmp(r, "/") != 0 && !fuzz_redirect_levels_ok(r, 1))
		goto broken;
	return;
broken:
	fprintf(stderr, "oidc_redirect_safe passed an unsafe target\n");
	abort();
}

static void
fuzz_callback_parse(const char *s, const char *const *unique)
{
	struct evkeyvalq q;
	struct evkeyval *h;

	TAILQ_INIT(&q);
	if (oidc_params_parse(s, &q, unique) == 0) {
		TAILQ_FOREACH(h, &q, next)
		fuzz_redirect_check(h->value);
		(void)evhttp_find_header(&q, "state");
		(void)evhttp_find_header(&q, "code");
	}
	/* On -1 the list may hold what was parsed before the problem;
	 * the callers clear it either way. */
	evhttp_clear_headers(&q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	fuzz_cfg.cf_auth_prefix = (char *)"/.auth";
	s = fuzz_strndup(data, size);
	fuzz_callback_parse(s, fuzz_callback_unique);
	fuzz_callback_parse(s, NULL);
	fuzz_redirect_check(s);
	free(s);
	return 0;
}
