/* SPDX-License-Identifier: ISC */
/* resp_hdrs_test.c: the header fields of responses gatehouse builds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/resp_hdrs.h"
#include "tap.h"

static void
test_add_get(void)
{
	struct resp_hdrs h;

	memset(&h, 0, sizeof(h)); /* zeroed is empty, as calloc leaves it */
	is_str(resp_hdrs_get(&h, "Location"), NULL, "empty: no field");
	is_int(resp_hdrs_remove(&h, "Location"), 0, "empty: nothing removed");
	resp_hdrs_cleanup(&h);

	resp_hdrs_init(&h);
	is_int(resp_hdrs_add(&h, "Location", "/a"), 0, "add");
	is_int(resp_hdrs_add(&h, "Set-Cookie", "a=1"), 0, "add a cookie");
	is_int(resp_hdrs_add(&h, "Set-Cookie", "b=2"), 0, "add another");
	is_int(resp_hdrs_add(&h, "X-Empty", ""), 0, "an empty value");
	is_int((long long)h.rh_n, 4, "four fields");
	is_str(resp_hdrs_get(&h, "location"), "/a", "get is case-insensitive");
	is_str(resp_hdrs_get(&h, "Set-Cookie"), "a=1", "get: the first");
	is_str(resp_hdrs_get(&h, "X-Empty"), "", "empty value kept");
	is_str(h.rh_v[2].rh_value, "b=2", "order of adding kept");
	is_int((long long)h.rh_v[0].rh_nlen, 8, "name length");
	is_int((long long)h.rh_v[0].rh_vlen, 2, "value length");
	resp_hdrs_cleanup(&h);
	is_int((long long)h.rh_n, 0, "cleanup empties");
	is_int(resp_hdrs_add(&h, "A", "1"), 0, "usable after cleanup");
	resp_hdrs_cleanup(&h);
}

static void
test_refused(void)
{
	static const char *bad_values[] = {"a\r\nSet-Cookie: x=1", "a\rb",
	    "a\nb", "\r\n", "a\r\n b" /* obs-fold */};
	static const char *bad_names[] = {"", "Bad Name", "Bad:Name",
	    "Bad\r\nName", "X-\x01", "X-\x7f", "\xc3\xa9", "(x)"};
	struct resp_hdrs h;
	size_t i;

	resp_hdrs_init(&h);
	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
		is_int(resp_hdrs_add(&h, "Location", bad_values[i]), -1,
		    "value with CR or LF refused (%zu)", i);
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		is_int(resp_hdrs_add(&h, bad_names[i], "v"), -1,
		    "name that is not a token refused (%zu)", i);
	is_int(resp_hdrs_addn(&h, "X-A", "ab\0cd", 5), -1,
	    "value with NUL refused");
	is_int((long long)h.rh_n, 0, "nothing refused was stored");
	is_str(resp_hdrs_get(&h, "Location"), NULL, "no half field");
	is_int(resp_hdrs_add(&h, "X-Tchar!#$%&'*+-.^_`|~09az", "v"), 0,
	    "every tchar allowed in a name");
	is_int(resp_hdrs_add(&h, "X-V", "tab\there, \x01, \x7f, \xc3\xa9"), 0,
	    "other octets allowed in a value");
	resp_hdrs_cleanup(&h);
}

static void
test_addn(void)
{
	const char *line = "alice@example.org\r\nX-Next: 1\r\n";
	struct resp_hdrs h;

	resp_hdrs_init(&h);
	is_int(resp_hdrs_addn(&h, "X-Forwarded-Email", line, 17), 0,
	    "addn: a value cut from a buffer");
	is_str(resp_hdrs_get(&h, "X-Forwarded-Email"), "alice@example.org",
	    "addn: the cut only, NUL-terminated");
	is_int(resp_hdrs_addn(&h, "X-Forwarded-Email", line, 19), -1,
	    "addn: the CRLF after it refused");
	is_int(resp_hdrs_addn(&h, "X-Zero", line, 0), 0, "addn: empty");
	is_str(resp_hdrs_get(&h, "X-Zero"), "", "addn: empty value");
	resp_hdrs_cleanup(&h);
}

static void
test_set_remove(void)
{
	struct resp_hdrs h;
	int i;

	resp_hdrs_init(&h);
	resp_hdrs_add(&h, "Referrer-Policy", "origin");
	resp_hdrs_add(&h, "Set-Cookie", "a=1");
	resp_hdrs_add(&h, "referrer-policy", "unsafe-url");
	resp_hdrs_add(&h, "Location", "/x");
	is_int(resp_hdrs_set(&h, "Referrer-Policy", "no-referrer"), 0, "set");
	is_int((long long)h.rh_n, 3, "set: every old field gone, one added");
	is_str(h.rh_v[2].rh_name, "Referrer-Policy", "set: appended last");
	is_str(resp_hdrs_get(&h, "Referrer-Policy"), "no-referrer",
	    "set: the new value");
	is_str(h.rh_v[0].rh_value, "a=1", "set: the others kept in order");
	is_str(h.rh_v[1].rh_value, "/x", "set: the others kept in order");
	is_int(resp_hdrs_set(&h, "Location", "/y\r\nX: 1"), -1,
	    "set: refused value");
	is_str(resp_hdrs_get(&h, "Location"), NULL,
	    "set: refused, the old field is gone all the same");
	is_int((long long)resp_hdrs_remove(&h, "SET-COOKIE"), 1, "remove");
	is_int((long long)h.rh_n, 1, "one left");
	resp_hdrs_cleanup(&h);

	/* Growth past the first allocation keeps every field. */
	resp_hdrs_init(&h);
	for (i = 0; i < 100; i++) {
		char v[16];

		snprintf(v, sizeof(v), "%d", i);
		resp_hdrs_add(&h, i % 2 ? "X-Odd" : "X-Even", v);
	}
	is_int((long long)h.rh_n, 100, "100 fields");
	is_str(h.rh_v[99].rh_value, "99", "the last one intact");
	is_int((long long)resp_hdrs_remove(&h, "x-odd"), 50, "remove all 50");
	is_str(h.rh_v[49].rh_value, "98", "the rest compacted in order");
	resp_hdrs_cleanup(&h);
}

int
main(void)
{
	test_add_get();
	test_refused();
	test_addn();
	test_set_remove();
	return done_testing();
}
