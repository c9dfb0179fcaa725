/* SPDX-License-Identifier: ISC */
/*
 * conn_test.c: the decisions of gateway/http/conn.c that need no socket:
 * empty lines before a request, the 414/431 limits of a head still
 * arriving, what follows a parsed head (heads from http1_parse_request),
 * whether an unread body lets the connection go on, and the framing of a
 * response (status line, the fields it writes itself, Content-Length,
 * Connection).
 */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "http/conn.h"
#include "http/http1.h"
#include "tap.h"

static struct http1_hdr hdrs[32];
static char head[4096];

/* Parse text as a request head (copied to head); http1_parse_request's
 * result, r filled in. */
static int
parse(const char *text, struct http1_req *r)
{
	struct http1_limits lim = {8192, 8192, 32, 1000};

	snprintf(head, sizeof(head), "%s", text);
	memset(r, 0, sizeof(*r));
	r->hr_hdrs = hdrs;
	r->hr_maxhdrs = 32;
	return http1_parse_request(head, strlen(head), &lim, r);
}

static void
test_skip_empty(void)
{
	int empty = 0;

	is_int(conn_skip_empty("GET / HTTP/1.1\r\n", 16, &empty), 0,
	    "no empty line: nothing skipped");
	is_int(conn_skip_empty("\r\n\r\nGET", 7, &empty), 4,
	    "two empty lines skipped");
	is_int(empty, 2, "and counted");
	is_int(conn_skip_empty("\r\n\r\n\r\nGET", 9, &empty), 4,
	    "at most four empty lines before one request");
	is_int(empty, 4, "the count stops at four");
	empty = 0;
	is_int(conn_skip_empty("\r", 1, &empty), 0, "a lone CR waits");
	is_int(conn_skip_empty("\n\n", 2, &empty), 0,
	    "bare LFs are not empty lines");
}

static void
test_head_limit(void)
{
	struct config cfg;
	char line[400];

	memset(&cfg, 0, sizeof(cfg));
	cfg.cf_max_request_line = 100;
	cfg.cf_max_header_size = 200;
	is_int(conn_max_head(&cfg), 100 + 200 + 1024,
	    "max head: both limits and 1024 of slack");
	is_int(conn_head_limit("GET / HTTP/1.1\r\nHost: a\r\n", 25, 100, 1324),
	    0, "a short head may go on");
	memset(line, 'a', sizeof(line));
	memcpy(line, "GET /", 5);
	is_int(conn_head_limit(line, 140, 100, 1324), 0,
	    "a line of max_request_line + 40 bytes, no LF yet: may go on");
	is_int(conn_head_limit(line, 141, 100, 1324), 414,
	    "one byte more, no LF yet: 414 at once");
	memcpy(line + 130, "\r\n", 2);
	is_int(conn_head_limit(line, 400, 100, 1324), 0,
	    "a line that ended in time: judged on the head's size");
	is_int(conn_head_limit(line, 400, 100, 399), 431,
	    "a head over maxhead: 431");
	is_int(conn_head_limit(line, 399, 100, 399), 0,
	    "a head of exactly maxhead: may go on");
}

static void
test_head_next(void)
{
	struct http1_req r;

	ok(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r) == 0 &&
	        conn_head_next(&r) == CONN_NEXT_ANSWER,
	    "GET without a body: served at once");
	ok(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
	       &r) == 0 &&
	        conn_head_next(&r) == CONN_NEXT_BODY,
	    "POST with a length: served, its body held");
	ok(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
	         "chunked\r\n\r\n",
	       &r) == 0 &&
	        conn_head_next(&r) == CONN_NEXT_BODY,
	    "chunked POST: served, its body held");
	ok(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	       &r) == 0 &&
	        conn_head_next(&r) == CONN_NEXT_ANSWER,
	    "Content-Length 0: no body to hold");
	ok(parse("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", &r) == 0 &&
	        r.hr_status == 405 && conn_head_next(&r) == CONN_NEXT_ANSWER,
	    "TRACE without a body: refused, the connection kept");
	ok(parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: x\r\nContent-Length: "
	         "5\r\n\r\n",
	       &r) == 0 &&
	        r.hr_status == 417 &&
	        conn_head_next(&r) == CONN_NEXT_ANSWER_CLOSE,
	    "417 with a body unread: refused, then closed");
	ok(parse("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n",
	       &r) == 0 &&
	        r.hr_status == 413 &&
	        conn_head_next(&r) == CONN_NEXT_ANSWER_CLOSE,
	    "413: the body is never read, the connection closes");
	ok(parse("GET / HTTP/1.1\r\n\r\n", &r) == -1 && r.hr_status == 400,
	    "1.1 without Host: malformed (conn refuses and closes)");
}

static void
test_body_rest(void)
{
	struct http1_chunked ch;
	struct http1_req r;
	const char *chunked = "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	size_t n = 99;

	memset(&ch, 0, sizeof(ch));
	memset(&r, 0, sizeof(r));
	r.hr_length = 10;
	ok(conn_body_rest(&r, 10, &ch, "0123456789GET", 13, 1000, &n) == 1 &&
	        n == 10,
	    "the rest of a length body is in: skip it, go on");
	ok(conn_body_rest(&r, 10, &ch, "01234", 5, 1000, &n) == 0,
	    "half of it in: the connection cannot go on");
	ok(conn_body_rest(&r, 0, &ch, "", 0, 1000, &n) == 1 && n == 0,
	    "nothing left of it: go on");
	r.hr_length = 0;
	r.hr_chunked = 1;
	ok(conn_body_rest(&r, 0, &ch, chunked, strlen(chunked), 1000, &n) ==
	            1 &&
	        n == 15,
	    "a whole chunked body in: skip its 15 bytes");
	ok(ch.hc_state == 0 && ch.hc_total == 0,
	    "the caller's decoder state is left as it was");
	ok(conn_body_rest(&r, 0, &ch, chunked, 10, 1000, &n) == 0,
	    "a chunked body not all in: close");
	ok(conn_body_rest(&r, 0, &ch, "zz\r\n", 4, 1000, &n) == 0,
	    "a malformed chunked body: close");
	ok(conn_body_rest(&r, 0, &ch, chunked, strlen(chunked), 3, &n) == 0,
	    "a chunked body over the limit: close");
}

static void
test_response_framing(void)
{
	char line[CONN_STATUS_LINE_MAX], reason[300];
	size_t n;

	n = conn_status_line_fmt(line, 200, "OK");
	ok(n == 17 && memcmp(line, "HTTP/1.1 200 OK\r\n", 17) == 0,
	    "status line");
	n = conn_status_line_fmt(line, 404, "");
	ok(n == 21 && memcmp(line, "HTTP/1.1 404 Status\r\n", n) == 0,
	    "an empty reason becomes Status");
	n = conn_status_line_fmt(line, 99, "Odd");
	ok(n == 21 && memcmp(line, "HTTP/1.1 099 Status\r\n", n) == 0,
	    "a status under 100: reason Status");
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	n = conn_status_line_fmt(line, 502, reason);
	ok(n == 21 && memcmp(line, "HTTP/1.1 502 Status\r\n", n) == 0,
	    "a reason too long for the line: Status");
	reason[CONN_STATUS_LINE_MAX - 16] = '\0';
	n = conn_status_line_fmt(line, 502, reason);
	is_int(n, CONN_STATUS_LINE_MAX - 1, "the longest reason kept fits");

	ok(conn_field_own("Connection") && conn_field_own("content-length") &&
	        conn_field_own("TRANSFER-ENCODING") && conn_field_own("Date"),
	    "framing fields and Date are the connection's own");
	ok(!conn_field_own("Content-Type") && !conn_field_own("Set-Cookie") &&
	        !conn_field_own("Keep-Alive") && !conn_field_own("Dates"),
	    "other fields pass");

	ok(conn_status_has_length(200) && conn_status_has_length(404) &&
	        conn_status_has_length(302),
	    "a complete response states its length");
	ok(!conn_status_has_length(204) && !conn_status_has_length(304) &&
	        !conn_status_has_length(100),
	    "204, 304 and 1xx carry no Content-Length");

	is_str(conn_connection_field(1, 1), "Connection: close\r\n",
	    "closing: Connection: close");
	is_str(conn_connection_field(1, 0), "Connection: close\r\n",
	    "closing a 1.0 client: Connection: close");
	is_str(conn_connection_field(0, 0), "Connection: keep-alive\r\n",
	    "kept for 1.0: said so");
	is_str(conn_connection_field(0, 1), "", "kept for 1.1: nothing said");
}

int
main(void)
{
	test_skip_empty();
	test_head_limit();
	test_head_next();
	test_body_rest();
	test_response_framing();
	return done_testing();
}
