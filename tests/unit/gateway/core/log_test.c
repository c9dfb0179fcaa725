/* SPDX-License-Identifier: ISC */
/* log_test.c: the text access line: fields, sanitising, rounding, cuts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/log_json.h"
#include "tap.h"

/* The line without its time stamp (24 characters and a space). */
static const char *
body(const char *line)
{
	return strlen(line) > 25 ? line + 25 : "";
}

static void
test_fields(void)
{
	struct log_access_rec r;
	char buf[1024];
	size_t n;

	memset(&r, 0, sizeof(r));
	r.la_id = "0a1b";
	r.la_action = "proxy";
	r.la_client = "127.0.0.1";
	r.la_method = "GET";
	r.la_path = "/p\"\n\xff";
	r.la_status = 200;
	r.la_bytes = 18446744073709551615ULL;
	r.la_user = "user1@contoso.com";
	r.la_route = "/p/*";
	r.la_route_line = 7;
	r.la_deny = "";
	r.la_up_ms = 1.25;
	r.la_ms = 2.96;
	n = log_text_access(buf, sizeof(buf), &r);
	buf[n] = '\0';
	ok(n > 25 && buf[4] == '-' && buf[10] == 'T' && buf[19] == '.' &&
	        buf[23] == 'Z' && buf[24] == ' ',
	    "starts with an RFC 3339 time in milliseconds");
	is_str(body(buf),
	    "access id=0a1b event=proxy client=127.0.0.1 method=GET "
	    "path=\"/p???\" status=200 bytes=18446744073709551615 "
	    "user=\"user1@contoso.com\" route=7 up_ms=1.3 ms=3.0\n",
	    "every field; the path's quote, newline and byte replaced");
	r.la_user = NULL;
	r.la_route_line = 0;
	r.la_up_ms = -1;
	r.la_deny = "role:Admin\"x";
	r.la_ms = 0.04;
	r.la_status = 403;
	r.la_bytes = 0;
	n = log_text_access(buf, sizeof(buf), &r);
	buf[n] = '\0';
	is_str(body(buf),
	    "access id=0a1b event=proxy client=127.0.0.1 method=GET "
	    "path=\"/p???\" status=403 bytes=0 deny=role:Admin?x ms=0.0\n",
	    "optional fields left out; deny sanitised");
}

/* Against printf's %.1f on many values: the same text. */
static void
test_rounding(void)
{
	struct log_access_rec r;
	char buf[512], want[64];
	const char *ms;
	int bad = 0, k;
	double v;

	memset(&r, 0, sizeof(r));
	r.la_up_ms = -1;
	srand(3);
	for (k = 0; k < 20000; k++) {
		/* Away from the exact halves, where binary fractions decide. */
		v = (double)(rand() % 10000000) / 1000.0 + 0.0003;
		r.la_ms = v;
		buf[log_text_access(buf, sizeof(buf), &r)] = '\0';
		snprintf(want, sizeof(want), " ms=%.1f\n", v);
		ms = strstr(buf, " ms=");
		if (ms == NULL || strcmp(ms, want) != 0)
			bad++;
	}
	is_int(bad, 0, "ms as printf's %%.1f gives it");
}

/* A line too long for the buffer is cut, still one line. */
static void
test_cut(void)
{
	struct log_access_rec r;
	char path[3000], buf[300];
	size_t n, size;
	int bad = 0;

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	memset(&r, 0, sizeof(r));
	r.la_path = path;
	r.la_up_ms = -1;
	for (size = 64; size <= sizeof(buf); size++) {
		memset(buf, 'Z', sizeof(buf));
		n = log_text_access(buf, size, &r);
		if (n > size || buf[n - 1] != '\n' ||
		    memchr(buf, '\n', n - 1) != NULL ||
		    (size < sizeof(buf) && buf[size] != 'Z'))
			bad++;
	}
	is_int(bad, 0, "cut to every size from 64: one line, in bounds");
}

int
main(void)
{
	test_fields();
	test_rounding();
	test_cut();
	return done_testing();
}
