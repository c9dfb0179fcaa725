/* SPDX-License-Identifier: ISC */
/*
 * http_client_test.c: gateway/oidc/http_client.c against an in-process evhttp
 * server on 127.0.0.1 running on the same event_base, so a blocked loop
 * would show as a failure.  Each phase runs the loop until its expected
 * callbacks have fired, with a safety timeout that fails the test.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "oidc/http_client.h"
#include "tap.h"

static struct event_base *base;
static struct httpc *hc;
static int port;
static int pending;    /* callbacks the running phase still expects */
static int in_request; /* set around every httpc_request */
static int reentered;  /* a done callback ran inside httpc_request */
static int seq;        /* completion order */
static struct timespec t0;

/* ---- the test server ---- */

struct slow {
	struct event *ev;
	struct evhttp_request *req;
	LIST_ENTRY(slow) entry;
};
static LIST_HEAD(, slow) slows = LIST_HEAD_INITIALIZER(slows);

static void
reply(struct evhttp_request *req, int code, const char *ct, const char *body,
    size_t len)
{
	struct evbuffer *b = evbuffer_new();

	if (ct != NULL)
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "Content-Type", ct);
	evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, "X", b);
	evbuffer_free(b);
}

static void
srv_ok_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	reply(req, 200, "application/json", "{\"ok\":true}", 11);
}

static void
srv_peer_cb(struct evhttp_request *req, void *arg)
{
	char *addr, buf[32];
	ev_uint16_t p = 0;

	(void)arg;
	evhttp_connection_get_peer(
	    evhttp_request_get_connection(req), &addr, &p);
	snprintf(buf, sizeof(buf), "%u", (unsigned)p);
	reply(req, 200, "text/plain", buf, strlen(buf));
}

static void
srv_echo_cb(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	struct evkeyvalq q;
	const char *ct, *acc, *qv;
	char *raw, *out;
	size_t n = evbuffer_get_length(body);

	(void)arg;
	raw = calloc(1, n + 1);
	evbuffer_copyout(body, raw, n);
	ct = evhttp_find_header(in, "Content-Type");
	acc = evhttp_find_header(in, "Accept");
	TAILQ_INIT(&q);
	evhttp_parse_query_str(raw, &q);
	qv = evhttp_find_header(&q, "q");
	if (asprintf(&out, "%s\n%s\n%s\n%s\n%s",
	        evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST"
	                                                           : "OTHER",
	        ct != NULL ? ct : "-", acc != NULL ? acc : "-",
	        qv != NULL ? qv : "-", raw) == -1)
		abort();
	reply(req, 200, "text/plain", out, strlen(out));
	evhttp_clear_headers(&q);
	free(out);
	free(raw);
}

static void
srv_slow_fire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct slow *s = arg;

	(void)fd;
	(void)what;
	reply(s->req, 200, "text/plain", "slow", 4);
	LIST_REMOVE(s, entry);
	event_free(s->ev);
	free(s);
}

/* Replies after 2 s from a timer: the loop is never blocked. */
static void
srv_slow_cb(struct evhttp_request *req, void *arg)
{
	struct timeval tv = {2, 0};
	struct slow *s = calloc(1, sizeof(*s));

	(void)arg;
	s->req = req;
	s->ev = evtimer_new(base, srv_slow_fire_cb, s);
	evtimer_add(s->ev, &tv);
	LIST_INSERT_HEAD(&slows, s, entry);
}

static void
srv_big_cb(struct evhttp_request *req, void *arg)
{
	size_t n = 5 * 1024 * 1024;
	char *big = malloc(n);

	(void)arg;
	memset(big, 'x', n);
	reply(req, 200, "application/octet-stream", big, n);
	free(big);
}

/* 5 MiB chunked: no Content-Length, so only the write callback can stop
 * it. */
static void
srv_bigchunked_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();
	char chunk[65536];
	int i;

	(void)arg;
	memset(chunk, 'y', sizeof(chunk));
	evhttp_send_reply_start(req, 200, "OK");
	for (i = 0; i < 80; i++) {
		evbuffer_add(b, chunk, sizeof(chunk));
		evhttp_send_reply_chunk(req, b);
	}
	evhttp_send_reply_end(req);
	evbuffer_free(b);
}

static void
srv_redirect_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Location", "/ok");
	reply(req, 302, "text/plain", "moved", 5);
}

static void
srv_503_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	reply(req, 503, "application/json", "{\"error\":\"down\"}", 16);
}

static void
srv_cleanup(void)
{
	struct slow *s;

	/* A reply frees a request whose client has gone, and queues one
	 * evhttp_free then frees with its connection. */
	while ((s = LIST_FIRST(&slows)) != NULL) {
		LIST_REMOVE(s, entry);
		event_free(s->ev);
		reply(s->req, 503, NULL, "", 0);
		free(s);
	}
}

/* ---- phases and results ---- */

struct rec {
	int called;
	int order;
	double at; /* seconds since t0 */
	enum httpc_status st;
	long code;
	char *body;
	size_t len;
	char *ct;
	int has_err;
	struct httpc_xfer *cancel; /* cancelled from this callback */
	struct httpc *free_h;      /* freed from this callback */
	struct rec *chain;         /* started from this callback */
	const char *chain_path;
};

static double
since_t0(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0.tv_sec) +
	    (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
}

static void
safety_cb(evutil_socket_t fd, short what, void *arg)
{
	int *timed_out = arg;

	(void)fd;
	(void)what;
	*timed_out = 1;
	event_base_loopexit(base, NULL);
}

/* Run the loop until `pending` reaches 0; 0, or -1 on the safety timeout. */
static int
run_phase(double safety_s)
{
	struct timeval tv;
	struct event *ev;
	int timed_out = 0;

	tv.tv_sec = (long)safety_s;
	tv.tv_usec = (long)((safety_s - (double)tv.tv_sec) * 1e6);
	ev = evtimer_new(base, safety_cb, &timed_out);
	evtimer_add(ev, &tv);
	if (pending > 0)
		event_base_dispatch(base);
	event_free(ev);
	return timed_out ? -1 : 0;
}

static void
one_done(void)
{
	if (--pending == 0)
		event_base_loopexit(base, NULL);
}

static struct httpc_xfer *start(struct httpc *, struct rec *, const char *,
    const char *, const char *, long);

static void
rec_done_cb(const struct httpc_result *res, void *arg)
{
	struct rec *r = arg;

	if (in_request)
		reentered = 1;
	r->called++;
	r->order = ++seq;
	r->at = since_t0();
	r->st = res->hr_status;
	r->code = res->hr_code;
	r->body = malloc(res->hr_len + 1);
	memcpy(r->body, res->hr_body, res->hr_len + 1);
	r->len = res->hr_len;
	r->ct =
	    res->hr_content_type != NULL ? strdup(res->hr_content_type) : NULL;
	r->has_err = res->hr_error != NULL;
	if (r->cancel != NULL)
		httpc_cancel(r->cancel);
	if (r->chain != NULL)
		start(hc, r->chain, "GET", r->chain_path, NULL, 0);
	if (r->free_h != NULL)
		httpc_free(r->free_h);
	one_done();
}

static void
rec_clear(struct rec *r)
{
	free(r->body);
	free(r->ct);
	memset(r, 0, sizeof(*r));
}

static struct httpc_xfer *
start_url(struct httpc *h, struct rec *r, const char *method, const char *url,
    const char *body, long timeout_ms)
{
	static const char *const hdrs[] = {"Accept: application/json", NULL};
	struct httpc_req req;
	struct httpc_xfer *x;
	struct gh_error err;

	memset(&req, 0, sizeof(req));
	req.hq_method = method;
	req.hq_url = url;
	req.hq_body = body;
	req.hq_body_len = body != NULL ? strlen(body) : 0;
	req.hq_headers = hdrs;
	req.hq_timeout_ms = timeout_ms;
	in_request = 1;
	x = httpc_request(h, &req, rec_done_cb, r, &err);
	in_request = 0;
	if (x == NULL)
		printf("# httpc_request: %s\n", err.ge_msg);
	return x;
}

static struct httpc_xfer *
start(struct httpc *h, struct rec *r, const char *method, const char *path,
    const char *body, long timeout_ms)
{
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	return start_url(h, r, method, url, body, timeout_ms);
}

/* ---- the cases ---- */

static void
test_escape(void)
{
	struct evbuffer *b = evbuffer_new();
	char *s;
	size_t n;

	s = httpc_url_escape("a b&c=d/\xc3\xa9~");
	is_str(s, "a%20b%26c%3Dd%2F%C3%A9~", "url escape");
	free(s);
	s = httpc_form_escape("a b&c=d/\xc3\xa9~*");
	is_str(s, "a+b%26c%3Dd%2F%C3%A9%7E*", "form escape");
	free(s);
	ok(httpc_form_add(b, "q", "a b&c=d/\xc3\xa9") == 0 &&
	        httpc_form_add(b, "x y", NULL) == 0,
	    "form add");
	n = evbuffer_get_length(b);
	s = calloc(1, n + 1);
	evbuffer_remove(b, s, n);
	is_str(s, "q=a+b%26c%3Dd%2F%C3%A9&x+y=", "form add result");
	free(s);
	evbuffer_free(b);
}

static void
test_get_ok(void)
{
	struct rec r = {0}, r2 = {0}, r3 = {0};

	pending = 1;
	ok(start(hc, &r, "GET", "/ok", NULL, 0) != NULL, "GET /ok started");
	ok(r.called == 0, "done not called from inside httpc_request");
	ok(run_phase(5) == 0, "GET phase finished in time");
	/* /peer twice, the second started from the first's callback: the
	 * same client port both times means the connection was reused. */
	pending = 2;
	r2.chain = &r3;
	r2.chain_path = "/peer";
	ok(start(hc, &r2, "GET", "/peer", NULL, 0) != NULL, "GET /peer");
	ok(run_phase(5) == 0, "chained GET phase finished in time");
	is_int(r.called, 1, "GET done called once");
	is_int(r.st, HTTPC_OK, "GET status ok");
	is_int(r.code, 200, "GET code 200");
	is_str(r.body, "{\"ok\":true}", "GET body");
	is_int(r.len, 11, "GET body length");
	is_str(r.ct, "application/json", "GET content type");
	ok(!r.has_err, "no error text on success");
	is_int(r3.st, HTTPC_OK, "chained request from a callback");
	ok(r2.body != NULL && r3.body != NULL && r2.body[0] != '\0' &&
	        strcmp(r2.body, r3.body) == 0,
	    "connection reused (client port %s then %s)",
	    r2.body ? r2.body : "?", r3.body ? r3.body : "?");
	rec_clear(&r);
	rec_clear(&r2);
	rec_clear(&r3);
}

static void
test_post(void)
{
	struct evbuffer *b = evbuffer_new();
	struct rec r = {0};
	char *body;
	size_t n;

	httpc_form_add(b, "q", "a b&c=d/\xc3\xa9");
	httpc_form_add(b, "x", "1");
	n = evbuffer_get_length(b);
	body = calloc(1, n + 1);
	evbuffer_remove(b, body, n);
	evbuffer_free(b);
	pending = 1;
	ok(start(hc, &r, "POST", "/echo", body, 0) != NULL, "POST started");
	free(body); /* the request was copied */
	ok(run_phase(5) == 0, "POST phase finished in time");
	is_int(r.st, HTTPC_OK, "POST status ok");
	is_str(r.body,
	    "POST\napplication/x-www-form-urlencoded\napplication/json\n"
	    "a b&c=d/\xc3\xa9\nq=a+b%26c%3Dd%2F%C3%A9&x=1",
	    "POST method, content type, Accept, decoded value and raw body");
	rec_clear(&r);
}

static void
test_timeout_parallel(void)
{
	struct rec slow = {0}, fast = {0};
	double started;

	pending = 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	start(hc, &slow, "GET", "/slow", NULL, 300);
	start(hc, &fast, "GET", "/ok", NULL, 0);
	started = since_t0();
	ok(run_phase(5) == 0, "timeout phase finished in time");
	is_int(slow.st, HTTPC_TIMEOUT, "/slow with 300 ms gives timeout");
	ok(slow.has_err, "timeout has an error text");
	ok(slow.at - started > 0.25 && slow.at - started < 1.5,
	    "timeout after about 300 ms (%.3f s)", slow.at - started);
	is_int(fast.st, HTTPC_OK, "parallel /ok ok");
	ok(fast.order < slow.order, "parallel /ok completed first");
	ok(fast.at < 0.25, "parallel /ok not held up (%.3f s)", fast.at);
	rec_clear(&slow);
	rec_clear(&fast);
}

static void
test_errors(void)
{
	struct rec big = {0}, chunked = {0}, redir = {0}, down = {0};
	struct rec refused = {0}, tls = {0}, ftp = {0}, file = {0};
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	char url[128];
	int fd;

	/* A port nobody listens on. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &slen);
	close(fd);

	pending = 8;
	start(hc, &big, "GET", "/big", NULL, 0);
	start(hc, &chunked, "GET", "/bigchunked", NULL, 0);
	start(hc, &redir, "GET", "/redirect", NULL, 0);
	start(hc, &down, "GET", "/status/503", NULL, 0);
	snprintf(
	    url, sizeof(url), "http://127.0.0.1:%d/ok", ntohs(sin.sin_port));
	start_url(hc, &refused, "GET", url, NULL, 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", port);
	start_url(hc, &tls, "GET", url, NULL, 0);
	snprintf(url, sizeof(url), "ftp://127.0.0.1:%d/", port);
	start_url(hc, &ftp, "GET", url, NULL, 0);
	start_url(hc, &file, "GET", "file:///etc/passwd", NULL, 0);
	ok(run_phase(10) == 0, "error phase finished in time");
	is_int(big.st, HTTPC_TOO_LARGE, "5 MiB with Content-Length too large");
	is_int(big.len, 0, "no body on too large");
	is_int(chunked.st, HTTPC_TOO_LARGE, "5 MiB chunked too large");
	is_int(redir.st, HTTPC_OK, "redirect is a response");
	is_int(redir.code, 302, "redirect not followed");
	is_str(redir.body, "moved", "redirect body");
	is_int(down.st, HTTPC_OK, "503 is a response");
	is_int(down.code, 503, "503 code");
	is_str(down.body, "{\"error\":\"down\"}", "503 body");
	is_int(refused.st, HTTPC_CONNECT, "closed port gives connect error");
	ok(refused.has_err, "connect error has a text");
	ok(tls.st == HTTPC_TLS || tls.st == HTTPC_CONNECT,
	    "https to plain http fails (%s)", httpc_status_str(tls.st));
	is_int(ftp.st, HTTPC_ERROR, "ftp refused");
	is_int(file.st, HTTPC_ERROR, "file refused");
	is_int(file.len, 0, "nothing read from file://");
	rec_clear(&big);
	rec_clear(&chunked);
	rec_clear(&redir);
	rec_clear(&down);
	rec_clear(&refused);
	rec_clear(&tls);
	rec_clear(&ftp);
	rec_clear(&file);
}

static void
test_small_limit(void)
{
	struct httpc_options opt = {0};
	struct httpc *h;
	struct rec r = {0};

	opt.ho_max_response_size = 10; /* /ok has 11 bytes */
	h = httpc_new(base, &opt, NULL);
	ok(h != NULL, "httpc_new with a small limit");
	pending = 1;
	start(h, &r, "GET", "/ok", NULL, 0);
	ok(run_phase(5) == 0, "small limit phase finished in time");
	is_int(r.st, HTTPC_TOO_LARGE, "11 bytes over a 10-byte limit");
	httpc_free(h);
	rec_clear(&r);
}

static void
phase_end_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	one_done();
}

/* Count one more `pending` after `s` seconds. */
static struct event *
phase_end_after(double s)
{
	struct timeval tv;
	struct event *ev;

	tv.tv_sec = (long)s;
	tv.tv_usec = (long)((s - (double)tv.tv_sec) * 1e6);
	ev = evtimer_new(base, phase_end_cb, NULL);
	evtimer_add(ev, &tv);
	return ev;
}

static void
test_cancel(void)
{
	struct rec a = {0}, b = {0}, trigger = {0};
	struct httpc_xfer *xa, *xb;
	struct event *end;

	/* Both /slow would time out at 500 ms and call done if still there. */
	pending = 2; /* trigger + the end timer */
	xa = start(hc, &a, "GET", "/slow", NULL, 500);
	xb = start(hc, &b, "GET", "/slow", NULL, 500);
	ok(xa != NULL && xb != NULL, "two /slow started");
	httpc_cancel(xa);
	trigger.cancel = xb; /* cancelled from another's done callback */
	start(hc, &trigger, "GET", "/ok", NULL, 0);
	httpc_cancel(NULL);
	end = phase_end_after(0.9);
	ok(run_phase(5) == 0, "cancel phase finished in time");
	event_free(end);
	is_int(trigger.st, HTTPC_OK, "trigger ok");
	is_int(a.called, 0, "cancelled at once: done never called");
	is_int(b.called, 0, "cancelled from a callback: done never called");
	rec_clear(&a);
	rec_clear(&b);
	rec_clear(&trigger);
}

static void
test_many(void)
{
	struct rec r[50];
	char body[32], want[128];
	int i, good = 0, started = 0;

	memset(r, 0, sizeof(r));
	pending = 50;
	for (i = 0; i < 50; i++) {
		snprintf(body, sizeof(body), "q=%d", i);
		if (start(hc, &r[i], "POST", "/echo", body, 0) != NULL)
			started++;
	}
	is_int(started, 50, "50 requests started");
	ok(run_phase(10) == 0, "50 concurrent requests finished in time");
	for (i = 0; i < 50; i++) {
		snprintf(want, sizeof(want),
		    "POST\napplication/x-www-form-urlencoded\napplication/json"
		    "\n%d\nq=%d",
		    i, i);
		if (r[i].called == 1 && r[i].st == HTTPC_OK &&
		    strcmp(r[i].body, want) == 0)
			good++;
		rec_clear(&r[i]);
	}
	is_int(good, 50, "50 concurrent requests each got their own answer");
}

static void
test_free_pending(void)
{
	struct rec s[3], fast = {0}, other = {0};
	struct httpc *h;
	struct event *end;
	int i;

	/* Freed from outside: with transfers connected and waiting. */
	memset(s, 0, sizeof(s));
	h = httpc_new(base, NULL, NULL);
	ok(h != NULL, "httpc_new with defaults");
	for (i = 0; i < 3; i++)
		start(h, &s[i], "GET", "/slow", NULL, 0);
	pending = 1;
	end = phase_end_after(0.2);
	ok(run_phase(5) == 0, "free phase 1 finished in time");
	event_free(end);
	httpc_free(h);
	h = NULL;

	/* Freed from inside a done callback, with another one pending. */
	h = httpc_new(base, NULL, NULL);
	start(h, &other, "GET", "/slow", NULL, 400);
	fast.free_h = h;
	start(h, &fast, "GET", "/ok", NULL, 0);
	pending = 2; /* fast + the end timer */
	end = phase_end_after(0.7);
	ok(run_phase(5) == 0, "free phase 2 finished in time");
	event_free(end);
	is_int(fast.called, 1, "the callback that freed the client ran");
	for (i = 0; i < 3; i++)
		is_int(s[i].called, 0, "dropped transfer %d not called", i);
	is_int(other.called, 0, "transfer dropped from a callback not called");
	rec_clear(&fast);
	httpc_free(NULL);
}

static void
test_bad_requests(void)
{
	struct httpc_req req;
	struct gh_error err;
	struct rec r = {0};

	memset(&req, 0, sizeof(req));
	req.hq_method = "DELETE";
	req.hq_url = "http://127.0.0.1:1/";
	memset(&err, 0, sizeof(err));
	ok(httpc_request(hc, &req, rec_done_cb, &r, &err) == NULL,
	    "unsupported method refused at once");
	is_str(err.ge_code, "httpc_method", "error code says why");
	req.hq_method = "GET";
	req.hq_url = NULL;
	ok(httpc_request(hc, &req, rec_done_cb, &r, &err) == NULL,
	    "missing URL refused at once");
	ok(httpc_new(NULL, NULL, &err) == NULL, "httpc_new needs a base");
	is_int(r.called, 0, "no callback for immediate failures");
}

int
main(void)
{
	struct evhttp *srv;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	struct gh_error err;

	ok(httpc_global_init() == 0, "global init");
	base = event_base_new();
	srv = evhttp_new(base);
	evhttp_set_cb(srv, "/ok", srv_ok_cb, NULL);
	evhttp_set_cb(srv, "/peer", srv_peer_cb, NULL);
	evhttp_set_cb(srv, "/echo", srv_echo_cb, NULL);
	evhttp_set_cb(srv, "/slow", srv_slow_cb, NULL);
	evhttp_set_cb(srv, "/big", srv_big_cb, NULL);
	evhttp_set_cb(srv, "/bigchunked", srv_bigchunked_cb, NULL);
	evhttp_set_cb(srv, "/redirect", srv_redirect_cb, NULL);
	evhttp_set_cb(srv, "/status/503", srv_503_cb, NULL);
	bs = evhttp_bind_socket_with_handle(srv, "127.0.0.1", 0);
	ok(bs != NULL, "test server bound");
	if (bs == NULL)
		return done_testing();
	getsockname(
	    evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen);
	port = ntohs(sin.sin_port);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	hc = httpc_new(base, NULL, &err);
	ok(hc != NULL, "httpc_new");
	if (hc == NULL)
		return done_testing();

	test_escape();
	test_get_ok();
	test_post();
	test_timeout_parallel();
	test_errors();
	test_small_limit();
	test_cancel();
	test_many();
	test_free_pending();
	test_bad_requests();
	ok(!reentered, "no done callback ran inside httpc_request");

	httpc_free(hc);
	hc = NULL;
	srv_cleanup();
	evhttp_free(srv);
	event_base_free(base);
	httpc_global_cleanup();
	return done_testing();
}
