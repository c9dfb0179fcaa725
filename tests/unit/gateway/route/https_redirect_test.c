/* SPDX-License-Identifier: ISC */
/* https_redirect_test.c: the Location of listen_http_redirect's 308. */
#include <stdlib.h>
#include <string.h>

#include "route/https_redirect.h"
#include "tap.h"

static void
test_good(void)
{
	char buf[256];

	ok(https_redirect_location(
	       "app.example.com", NULL, "/a?b=1", 443, buf, sizeof(buf)) == 0,
	    "a name");
	is_str(buf, "https://app.example.com/a?b=1", "443 left out");
	ok(https_redirect_location(
	       "app.example.com:8080", NULL, "/", 8443, buf, sizeof(buf)) == 0,
	    "the request's port");
	is_str(buf, "https://app.example.com:8443/", "replaced by https's");
	ok(https_redirect_location(
	       "[::1]:80", NULL, "/x", 8443, buf, sizeof(buf)) == 0,
	    "IPv6");
	is_str(buf, "https://[::1]:8443/x", "brackets kept");
	ok(https_redirect_location(
	       NULL, "gw.example", "//x", 443, buf, sizeof(buf)) == 0,
	    "no Host: the fallback");
	is_str(buf, "https://gw.example//x", "a path that starts with //");
}

static void
test_refused(void)
{
	/* Anything that could make the URL name another site, or is not a
	 * request for a path. */
	static const char *const hosts[] = {"evil.com@app", "a/b", "a\\b",
	    "a?b", "a#b", "[::1", "[]", "a:", "a:80x", "a b", "", ":80",
	    "a:80:80"};
	char buf[256];
	size_t i;

	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		ok(https_redirect_location(
		       hosts[i], NULL, "/", 443, buf, sizeof(buf)) == -1,
		    "host \"%s\" refused", hosts[i]);
	ok(https_redirect_location(NULL, NULL, "/", 443, buf, sizeof(buf)) ==
	        -1,
	    "no host at all");
	ok(https_redirect_location("a", NULL, "*", 443, buf, sizeof(buf)) == -1,
	    "asterisk-form");
	ok(https_redirect_location(
	       "a", NULL, "http://b/", 443, buf, sizeof(buf)) == -1,
	    "absolute-form");
	ok(https_redirect_location("a", NULL, "/x", 443, buf, 11) == -1,
	    "too long for the buffer");
}

int
main(void)
{
	test_good();
	test_refused();
	return done_testing();
}
