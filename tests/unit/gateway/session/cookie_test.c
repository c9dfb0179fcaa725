/* SPDX-License-Identifier: ISC */
/* cookie_test.c: reading Cookie headers and writing Set-Cookie. */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "hdrs.h"
#include "http/resp_hdrs.h"
#include "session/cookie.h"
#include "tap.h"

static void
count_cb(const char *name, const char *value, void *arg)
{
	int *n = arg;

	(void)name;
	(void)value;
	(*n)++;
}

int
main(void)
{
	struct test_hdrs h;
	struct resp_hdrs out;
	struct config cfg;
	char v[64];
	const char *sc;
	int n = 0;

	test_hdrs_init(&h);
	test_hdrs_add(&h, "Cookie", "a=1; gatehouse=abc; b=2");
	test_hdrs_add(&h, "Cookie", "gh_flow_1=x;gh_flow_2=y");
	is_int(cookie_get(&h.th_req, "gatehouse", v, sizeof(v)), 1, "found");
	is_str(v, "abc", "value");
	is_int(cookie_get(&h.th_req, "b", v, sizeof(v)), 1, "last in a header");
	is_str(v, "2", "value b");
	is_int(cookie_get(&h.th_req, "gh_flow_2", v, sizeof(v)), 1,
	    "second header");
	is_int(cookie_get(&h.th_req, "nope", v, sizeof(v)), 0, "absent");
	is_int(cookie_get(&h.th_req, "gatehous", v, sizeof(v)), 0,
	    "no prefix match");
	is_int(cookie_foreach(&h.th_req, "gh_flow_", count_cb, &n), 2,
	    "two flows");
	is_int(n, 2, "callback twice");
	test_hdrs_init(&h);

	test_hdrs_add(&h, "Cookie", "gatehouse=one; gatehouse=two");
	is_int(cookie_get(&h.th_req, "gatehouse", v, sizeof(v)), -1,
	    "repeated cookie refused");
	test_hdrs_init(&h);
	test_hdrs_add(&h, "Cookie", "gatehouse=");
	is_int(cookie_get(&h.th_req, "gatehouse", v, sizeof(v)), -1,
	    "empty refused");
	test_hdrs_init(&h);
	test_hdrs_add(&h, "Cookie",
	    "gatehouse=0123456789012345678901234567890123456789012345678901234"
	    "5678901234567890");
	is_int(cookie_get(&h.th_req, "gatehouse", v, sizeof(v)), -1,
	    "oversized refused");
	test_hdrs_init(&h);
	test_hdrs_add(&h, "Cookie", "junk;;; =x; gatehouse = spaced ");
	is_int(cookie_get(&h.th_req, "gatehouse", v, sizeof(v)), 0,
	    "a name with a space is another name");
	test_hdrs_init(&h);

	memset(&cfg, 0, sizeof(cfg));
	resp_hdrs_init(&out);
	cookie_set(&out, &cfg, "gatehouse", "val", 3600, COOKIE_LAX);
	sc = resp_hdrs_get(&out, "Set-Cookie");
	is_str(sc,
	    "gatehouse=val; Path=/; HttpOnly; Max-Age=3600; "
	    "SameSite=Lax",
	    "lax session cookie over http");
	resp_hdrs_cleanup(&out);
	cfg.cf_public_https = 1;
	cfg.cf_cookie_domain = "example.com";
	cookie_set(&out, &cfg, "gatehouse", "val", 0, COOKIE_LAX);
	sc = resp_hdrs_get(&out, "Set-Cookie");
	ok(strstr(sc, "Max-Age=0") != NULL && strstr(sc, "; Secure") &&
	        strstr(sc, "Domain=example.com") && strstr(sc, "gatehouse=;"),
	    "delete over https with domain: %s", sc);
	resp_hdrs_cleanup(&out);
	cfg.cf_public_https = 0;
	cfg.cf_cookie_domain = NULL;
	cookie_set(&out, &cfg, "f", "v", 600, COOKIE_NONE);
	sc = resp_hdrs_get(&out, "Set-Cookie");
	ok(strstr(sc, "SameSite=None; Secure") != NULL,
	    "SameSite=None always Secure");
	resp_hdrs_cleanup(&out);
	return done_testing();
}
