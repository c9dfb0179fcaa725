/* SPDX-License-Identifier: ISC */
/*
 * proxy_test.c: how an upstream response head (parsed by
 * http1_parse_response) is framed again for the client and which of its
 * fields pass (gateway/route/proxy.c), and what upstream.c decides from it:
 * whether there is a body, whether the connection is reused.
 */
#include <stdio.h>
#include <string.h>

#include "http/conn.h"
#include "http/http1.h"
#include "route/proxy.h"
#include "route/upstream.h"
#include "tap.h"

static struct http1_hdr hdrs[32];
static char buf[2048];

static int
parse(const char *text, struct http1_resp *p)
{
	snprintf(buf, sizeof(buf), "%s", text);
	memset(p, 0, sizeof(*p));
	p->hp_hdrs = hdrs;
	p->hp_maxhdrs = 32;
	return http1_parse_response(buf, strlen(buf), p);
}

/* The names of p's fields that reach the client, comma-separated. */
static const char *
passing(const struct http1_resp *p)
{
	static char out[512];
	size_t n = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < p->hp_nhdrs; i++)
		if (proxy_field_passes(p, &p->hp_hdrs[i]))
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s",
			    n > 0 ? "," : "", p->hp_hdrs[i].hh_name);
	return out;
}

static void
test_framing(void)
{
	struct http1_resp p;

	ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &p) == 0,
	    "length head parses");
	is_int(proxy_framing(&p, 0), CONN_BODY_LENGTH, "length stays length");
	ok(proxy_sends_length(&p, CONN_BODY_LENGTH, 0),
	    "and its Content-Length is sent");
	is_int(proxy_framing(&p, 1), CONN_BODY_NONE, "no body for HEAD");
	ok(proxy_sends_length(&p, CONN_BODY_NONE, 1),
	    "a HEAD answer keeps the length it announces");

	ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &p) == 0,
	    "empty head parses");
	is_int(proxy_framing(&p, 0), CONN_BODY_NONE, "length 0: no body");
	ok(proxy_sends_length(&p, CONN_BODY_NONE, 0),
	    "and Content-Length: 0 is sent");

	ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &p) ==
	        0,
	    "chunked head parses");
	is_int(proxy_framing(&p, 0), CONN_BODY_STREAM,
	    "chunked streams (chunked again for 1.1)");
	ok(!proxy_sends_length(&p, CONN_BODY_STREAM, 0),
	    "no Content-Length with chunked");

	ok(parse("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", &p) ==
	        0,
	    "close-delimited head parses");
	is_int(proxy_framing(&p, 0), CONN_BODY_STREAM,
	    "delimited by the close: streams");
	ok(!proxy_sends_length(&p, CONN_BODY_STREAM, 0),
	    "no length that was never given");
	is_int(proxy_framing(&p, 1), CONN_BODY_NONE, "nobody wins");

	ok(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n",
	       &p) == 0,
	    "304 head parses");
	is_int(proxy_framing(&p, upstream_nobody(0, p.hp_status)),
	    CONN_BODY_NONE, "304: no body, whatever its length says");
	ok(proxy_sends_length(&p, CONN_BODY_NONE, 1),
	    "304 keeps its Content-Length");
}

static void
test_fields(void)
{
	struct http1_resp p;

	ok(parse("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
	         "Connection: keep-alive, X-Secret\r\nKeep-Alive: "
	         "timeout=5\r\nX-Secret: 1\r\nTransfer-Encoding: chunked\r\n"
	         "Upgrade: h2c\r\nProxy-Connection: x\r\nTE: trailers\r\n"
	         "Trailer: X-T\r\nSet-Cookie: a=1\r\nDate: x\r\n\r\n",
	       &p) == 0,
	    "a head full of hop-by-hop fields parses");
	is_str(passing(&p), "Content-Type,Set-Cookie,Date",
	    "hop-by-hop, framing, and fields Connection names are dropped");
	ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n",
	       &p) == 0,
	    "a plain head parses");
	is_str(passing(&p), "X-A",
	    "the upstream's Content-Length never passes as it is");
}

static void
test_upstream(void)
{
	struct http1_resp p;

	ok(upstream_nobody(1, 200), "HEAD: no body");
	ok(upstream_nobody(0, 204) && upstream_nobody(0, 304),
	    "204 and 304: no body");
	ok(!upstream_nobody(0, 200) && !upstream_nobody(0, 404),
	    "others have one");

	ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &p) == 0 &&
	        upstream_reusable(&p, 0),
	    "a length body: the connection is reused");
	ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &p) ==
	            0 &&
	        upstream_reusable(&p, 0),
	    "a chunked body: reused");
	ok(parse("HTTP/1.1 200 OK\r\n\r\n", &p) == 0 &&
	        !upstream_reusable(&p, 0),
	    "a body delimited by the close: never reused");
	ok(upstream_reusable(&p, 1),
	    "the same head without a body (HEAD): reused");
	ok(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
	         "5\r\n\r\n",
	       &p) == 0 &&
	        !upstream_reusable(&p, 0) && !upstream_reusable(&p, 1),
	    "Connection: close: not reused");
	ok(parse("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", &p) == 0 &&
	        !upstream_reusable(&p, 0),
	    "HTTP/1.0: not reused");
}

int
main(void)
{
	test_framing();
	test_fields();
	test_upstream();
	return done_testing();
}
