/* SPDX-License-Identifier: ISC */
/* http1_test.c: gateway/http/http1.c, the strict HTTP/1.1 parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http/http1.h"
#include "tap.h"

static const struct http1_limits lim = {64, 512, 8, 1000};

/* Parse a whole head; returns the parse result, -2 if the scan refused,
 * -3 if the head is incomplete.  r holds the outcome. */
static int
parse(const char *text, struct http1_req *r, struct http1_hdr *hdrs)
{
	static char buf[4096];
	size_t len = strlen(text), pos = 0;
	ssize_t hl;

	memcpy(buf, text, len);
	hl = http1_head_scan(buf, len, &pos);
	if (hl == -1)
		return -2;
	if (hl == 0)
		return -3;
	memset(r, 0, sizeof(*r));
	r->hr_hdrs = hdrs;
	r->hr_maxhdrs = 9;
	return http1_parse_request(buf, (size_t)hl, &lim, r);
}

struct req_case {
	const char *name;
	const char *head;
	int rc;     /* parse result (see parse) */
	int status; /* hr_status */
};

static const struct req_case req_cases[] = {
    {"plain GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0},
    {"HTTP/1.0 needs no Host", "GET / HTTP/1.0\r\n\r\n", 0, 0},
    {"1.1 without Host", "GET / HTTP/1.1\r\n\r\n", -1, 400},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -1, 400},
    {"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -1, 400},
    {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", -1, 400},
    {"bare LF ends the head", "GET / HTTP/1.1\nHost: a\n\n", -2, 0},
    {"bare LF inside", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", -2, 0},
    {"bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", -1,
        400},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", -1, 400},
    {"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", -1,
        400},
    {"tab before colon", "GET / HTTP/1.1\r\nHost: a\r\nX\t: a\r\n\r\n", -1,
        400},
    {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n", -1, 400},
    {"no colon", "GET / HTTP/1.1\r\nHost: a\r\nXa\r\n\r\n", -1, 400},
    {"NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\001b\r\n\r\n", -1,
        400},
    {"DEL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\177\r\n\r\n", -1,
        400},
    {"obs-text is allowed", "GET / HTTP/1.1\r\nHost: a\r\nX: \xe9t\xe9\r\n\r\n",
        0, 0},
    {"two spaces in the request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -1,
        400},
    {"no version", "GET /\r\nHost: a\r\n\r\n", -1, 400},
    {"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", -1, 400},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -1, 505},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", -1, 505},
    {"a control character in the target",
        "GET /a\001 HTTP/1.1\r\nHost: a\r\n\r\n", -1, 400},
    {"a method that is not a token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -1,
        400},
    {"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 405},
    {"TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 405},
    {"an extension method", "PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0},
    {"target too long",
        "GET /0123456789012345678901234567890123456789012345678901234567890"
        "123456789 HTTP/1.1\r\nHost: a\r\n\r\n",
        0, 414},
    {"too many fields",
        "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n"
        "F: 1\r\nG: 1\r\nH: 1\r\n\r\n",
        0, 431},
    {"Content-Length",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 0, 0},
    {"Content-Length too large",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", 0, 413},
    {"Content-Length signed",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", -1, 400},
    {"Content-Length list",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", -1, 400},
    {"Content-Length twice",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: "
        "5\r\n\r\n",
        -1, 400},
    {"Content-Length hex",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", -1, 400},
    {"Content-Length empty",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -1, 400},
    {"Content-Length 19 digits",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n"
        "\r\n",
        -1, 400},
    {"chunked",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
        0},
    {"CHUNKED in capitals",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 0,
        0},
    {"gzip, chunked",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, "
        "chunked\r\n\r\n",
        -1, 400},
    {"chunked twice",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        -1, 400},
    {"chunked with a parameter",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
        -1, 400},
    {"chunked in HTTP/1.0",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -1, 400},
    {"both framings",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
        "chunked\r\n\r\n",
        -1, 400},
    {"Expect: 100-continue",
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: "
        "1\r\n\r\n",
        0, 0},
    {"another expectation",
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 0, 417},
    {"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", -3, 0},
    {"two Authorization",
        "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\n"
        "authorization: Bearer b\r\n\r\n",
        -1, 400},
    {"two Proxy-Authorization",
        "GET / HTTP/1.1\r\nHost: a\r\nProxy-Authorization: a\r\n"
        "Proxy-Authorization: a\r\n\r\n",
        -1, 400},
    {"two Content-Type",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n\r\n",
        -1, 400},
    {"two X-Forwarded-Uri",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Uri: /a\r\n"
        "X-FORWARDED-URI: /b\r\n\r\n",
        -1, 400},
    {"two X-Original-URI",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Original-URI: /a\r\n"
        "X-Original-URI: /a\r\n\r\n",
        -1, 400},
    {"two X-Forwarded-Method",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Method: GET\r\n"
        "X-Forwarded-Method: MKCOL\r\n\r\n",
        -1, 400},
    {"two X-Forwarded-Host",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Host: a\r\n"
        "X-Forwarded-Host: b\r\n\r\n",
        -1, 400},
    {"two X-Forwarded-Proto",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Proto: http\r\n\r\n",
        -1, 400},
    {"X-Forwarded-Uri and X-Original-URI once each",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Uri: /a\r\n"
        "X-Original-URI: /a\r\n\r\n",
        0, 0},
    {"Cookie may repeat",
        "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n", 0,
        0},
    {"X-Forwarded-For may repeat",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n"
        "X-Forwarded-For: 5.6.7.8\r\n\r\n",
        0, 0},
};

static void
test_requests(void)
{
	struct http1_hdr hdrs[9];
	struct http1_req r;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		rc = parse(req_cases[i].head, &r, hdrs);
		is_int(rc, req_cases[i].rc, "%s: result", req_cases[i].name);
		if (rc >= -1)
			is_int(r.hr_status, req_cases[i].status, "%s: status",
			    req_cases[i].name);
	}
}

static void
test_fields(void)
{
	struct http1_hdr hdrs[9];
	struct http1_req r;

	is_int(
	    parse(
	        "POST /p?q=1 HTTP/1.1\r\nHost: gate:8080\r\nX-A:   v  \t\r\n"
	        "Connection: keep-alive, close\r\nContent-Length: 007\r\n\r\n",
	        &r, hdrs),
	    0, "a full head parses");
	is_str(r.hr_method, "POST", "method");
	is_str(r.hr_target, "/p?q=1", "target");
	is_int(r.hr_minor, 1, "minor version");
	is_str(r.hr_host, "gate:8080", "Host");
	is_int(r.hr_nhdrs, 4, "four fields");
	is_str(r.hr_hdrs[1].hh_name, "X-A", "name kept as sent");
	is_str(r.hr_hdrs[1].hh_value, "v", "value without its OWS");
	is_int(r.hr_hdrs[1].hh_vlen, 1, "value length");
	is_int(r.hr_length, 7, "leading zeros are decimal");
	ok(r.hr_close, "close found in a Connection list");
	is_int(
	    parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r, hdrs),
	    0, "1.0 keep-alive");
	ok(!r.hr_close, "1.0 with keep-alive stays open");
	is_int(parse("GET / HTTP/1.0\r\n\r\n", &r, hdrs), 0, "1.0");
	ok(r.hr_close, "1.0 closes by default");
	is_int(parse("GET / HTTP/1.0\r\nConnection: close\r\n"
	             "Connection: keep-alive\r\n\r\n",
	           &r, hdrs),
	    0, "1.0, close then keep-alive");
	ok(r.hr_close, "a close in any Connection line wins");
	is_int(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
	             "Connection: close\r\n\r\n",
	           &r, hdrs),
	    0, "1.0, keep-alive then close");
	ok(r.hr_close, "whatever the order");
	is_int(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a\r\n"
	             "Connection: close, x-b\r\n\r\n",
	           &r, hdrs),
	    0, "1.1, two Connection lines");
	ok(r.hr_close, "close in the second line");
	ok(http1_connection_has(r.hr_hdrs, r.hr_nhdrs, "X-A"),
	    "option of the first line");
	ok(http1_connection_has(r.hr_hdrs, r.hr_nhdrs, "x-b"),
	    "option of the second line");
	ok(!http1_connection_has(r.hr_hdrs, r.hr_nhdrs, "Host"),
	    "a field not named");
	is_int(parse("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", &r, hdrs),
	    0, "an empty value");
	is_str(r.hr_hdrs[1].hh_value, "", "is empty");
}

static void
test_scan_resumes(void)
{
	const char *head = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next";
	size_t pos = 0, i;
	ssize_t hl = 0;

	/* Fed a byte at a time, the end is found once, at the same place. */
	for (i = 1; i <= strlen(head) && hl == 0; i++)
		hl = http1_head_scan(head, i, &pos);
	is_int(hl, 27, "head length found incrementally");
	pos = 0;
	is_int(
	    http1_head_scan("GET / HTTP/1.1\r\nHo", 18, &pos), 0, "incomplete");
	is_int(pos, 16, "resumes at the incomplete line");
}

/* Decode a chunked body given in pieces of `step` bytes. */
static int
chunked(const char *body, size_t step, char *out, size_t outsize, int *status)
{
	struct http1_chunked c;
	struct evbuffer *b = evbuffer_new();
	size_t len = strlen(body), have = 0, used = 0;
	ssize_t n;
	int done = 0;

	memset(&c, 0, sizeof(c));
	*status = 0;
	while (!done) {
		have = have + step > len ? len : have + step;
		n = http1_chunked_decode(
		    &c, body + used, have - used, b, 100, &done, status);
		if (n == -1) {
			evbuffer_free(b);
			return -1;
		}
		used += (size_t)n;
		if (!done && have == len) {
			evbuffer_free(b);
			return -3; /* incomplete */
		}
	}
	n = evbuffer_remove(b, out, outsize - 1);
	out[n < 0 ? 0 : n] = '\0';
	evbuffer_free(b);
	return (int)used;
}

struct chunk_case {
	const char *name;
	const char *body;
	int rc; /* bytes used, -1 refused, -3 incomplete */
	int status;
	const char *data;
};

static const struct chunk_case chunk_cases[] = {
    {"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT", 26, 0,
        "hello world"},
    {"hex sizes", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", 35, 0,
        "01234567890123456789"},
    {"an extension", "5;name=value\r\nhello\r\n0\r\n\r\n", 26, 0, "hello"},
    {"white space before an extension", "5 ;x\r\nhello\r\n0\r\n\r\n", 18, 0,
        "hello"},
    {"trailers are dropped", "5\r\nhello\r\n0\r\nX-A: b\r\n\r\n", 23, 0,
        "hello"},
    {"+5", "+5\r\nhello\r\n0\r\n\r\n", -1, 400, NULL},
    {"-0", "-0\r\n\r\n", -1, 400, NULL},
    {"0x5", "0x5\r\nhello\r\n0\r\n\r\n", -1, 400, NULL},
    {"leading space", " 5\r\nhello\r\n0\r\n\r\n", -1, 400, NULL},
    {"trailing space without an extension", "5 \r\nhello\r\n0\r\n\r\n", -1, 400,
        NULL},
    {"bare LF after the size", "5\nhello\r\n0\r\n\r\n", -1, 400, NULL},
    {"bare LF after the data", "5\r\nhello\n0\r\n\r\n", -1, 400, NULL},
    {"data longer than its size", "3\r\nhello\r\n0\r\n\r\n", -1, 400, NULL},
    {"no size", "\r\nhello\r\n0\r\n\r\n", -1, 400, NULL},
    {"size overflow", "1ffffffffffffffff\r\nx\r\n0\r\n\r\n", -1, 400, NULL},
    {"over max_body", "65\r\n", -1, 413, NULL},
    {"a bad trailer name", "0\r\nX A: b\r\n\r\n", -1, 400, NULL},
    {"a control character in an extension", "5;\001\r\nhello\r\n0\r\n\r\n", -1,
        400, NULL},
    {"no last chunk", "5\r\nhello\r\n", -3, 0, NULL},
};

static void
test_chunked(void)
{
	char out[256];
	size_t i, step;
	int rc, status;

	for (i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++)
		for (step = 1; step <= 64; step *= 4) {
			rc = chunked(chunk_cases[i].body, step, out,
			    sizeof(out), &status);
			is_int(rc, chunk_cases[i].rc, "%s (pieces of %zu)",
			    chunk_cases[i].name, step);
			if (rc == -1)
				is_int(status, chunk_cases[i].status,
				    "%s: status", chunk_cases[i].name);
			if (rc >= 0 && chunk_cases[i].data != NULL)
				is_str(out, chunk_cases[i].data, "%s: data",
				    chunk_cases[i].name);
		}
}

static int
resp(const char *text, struct http1_resp *p)
{
	static char buf[2048];
	static struct http1_hdr hdrs[8];

	snprintf(buf, sizeof(buf), "%s", text);
	memset(p, 0, sizeof(*p));
	p->hp_hdrs = hdrs;
	p->hp_maxhdrs = 8;
	return http1_parse_response(buf, strlen(buf), p);
}

static void
test_responses(void)
{
	struct http1_resp p;

	is_int(
	    resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &p), 0, "200");
	is_int(p.hp_status, 200, "status");
	is_int(p.hp_length, 5, "length");
	is_str(p.hp_reason, "OK", "reason");
	is_int(resp("HTTP/1.1 204\r\n\r\n", &p), 0, "no reason phrase");
	is_str(p.hp_reason, "", "empty reason");
	is_int(resp("HTTP/1.0 200 OK\r\n\r\n", &p), 0, "1.0");
	ok(p.hp_close, "1.0 closes");
	is_int(
	    resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &p),
	    0, "chunked");
	ok(p.hp_chunked && p.hp_length == -1, "chunked, no length");
	is_int(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5"
	            "\r\n\r\n",
	           &p),
	    0, "equal lengths twice");
	is_int(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6"
	            "\r\n\r\n",
	           &p),
	    -1, "different lengths");
	is_int(
	    resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: "
	         "chunked\r\n\r\n",
	        &p),
	    -1, "both framings");
	is_int(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &p),
	    -1, "a coding but chunked");
	is_int(
	    resp("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", &p), -1, "obs-fold");
	is_int(resp("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", &p), -1,
	    "space before colon");
	is_int(resp("HTTP/1.1 20 OK\r\n\r\n", &p), -1, "two-digit status");
	is_int(resp("HTTP/1.1 600 OK\r\n\r\n", &p), -1, "status 600");
	is_int(resp("HTTP/2 200 OK\r\n\r\n", &p), -1, "HTTP/2");
	is_int(
	    resp("HTTP/1.1 200 OK\r\nConnection: close\r\nDate: x\r\n\r\n", &p),
	    0, "close and date");
	ok(p.hp_close && p.hp_has_date, "seen");
	is_int(
	    resp("HTTP/1.1 200 OK\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n"
	         "F: 1\r\nG: 1\r\nH: 1\r\nI: 1\r\n\r\n",
	        &p),
	    -1, "more fields than room");
}

static void
test_tokens(void)
{
	ok(http1_is_token("X-Forwarded-User", 16), "a header name");
	ok(!http1_is_token("X Forwarded", 11), "a space");
	ok(!http1_is_token("", 0), "empty");
	ok(!http1_is_token("a\0b", 3), "a NUL");
	ok(!http1_is_token("a:b", 3), "a colon");
	ok(http1_list_has("keep-alive, Close", "close"), "in a list");
	ok(!http1_list_has("closed", "close"), "not a prefix");
}

int
main(void)
{
	test_requests();
	test_fields();
	test_scan_resumes();
	test_chunked();
	test_responses();
	test_tokens();
	return done_testing();
}
