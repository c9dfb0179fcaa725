/* SPDX-License-Identifier: ISC */
/* metrics_test.c: counting, summing the threads' blocks, the exposition. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/metrics.h"
#include "tap.h"

/* The exposition as a NUL-terminated string (new). */
static char *
scrape(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	metrics_format(b, 42, "1.2.3-test");
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

/* 1 if text has the whole line `line`. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p++;
	}
	return 0;
}

static int
name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    c == ':' || (!first && c >= '0' && c <= '9');
}

/* A strict reading of one sample line: name{label="value",...} number. */
static int
sample_ok(const char *p)
{
	char *end;

	if (!name_char(*p++, 1))
		return 0;
	while (name_char(*p, 0))
		p++;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			if (!name_char(*p++, 1))
				return 0;
			while (name_char(*p, 0))
				p++;
			if (*p++ != '=' || *p++ != '"')
				return 0;
			while (*p != '"') {
				if (*p == '\0' || *p == '\n')
					return 0;
				if (*p == '\\') {
					p++;
					if (*p != '\\' && *p != '"' &&
					    *p != 'n')
						return 0;
				}
				p++;
			}
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return 0;
		}
		p++;
	}
	if (*p++ != ' ')
		return 0;
	strtod(p, &end);
	return end != p && *end == '\n';
}

static int
exposition_ok(const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		if (strncmp(p, "# HELP ", 7) != 0 &&
		    strncmp(p, "# TYPE ", 7) != 0 && !sample_ok(p))
			return 0;
		p = strchr(p, '\n');
		if (p == NULL)
			return 0;
		p++;
	}
	return 1;
}

static void
test_label_escape(void)
{
	struct evbuffer *b = evbuffer_new();
	char out[64];
	size_t n;

	metrics_label_escape(b, "a\"b\\c\nd \xc3\xa9 \xff!");
	n = evbuffer_remove(b, out, sizeof(out) - 1);
	out[n] = '\0';
	is_str(out, "a\\\"b\\\\c\\nd \xc3\xa9 \xef\xbf\xbd!",
	    "quote, backslash, newline escaped; UTF-8 kept; a bad byte is "
	    "U+FFFD");
	evbuffer_free(b);
}

static void
test_counting(void)
{
	char *s;
	int a, b;

	metrics_cleanup();
	metrics_route_set(METRICS_ROUTE_ENDPOINT + 1, "/.auth/healthz");
	metrics_route_set(METRICS_ROUTE_ENDPOINT + 1, "/changed");
	a = metrics_route_intern("/a/*");
	b = metrics_route_intern("/b\"x");
	is_int(metrics_route_intern("/a/*"), a, "a pattern is interned once");
	ok(a >= METRICS_ROUTE_FIRST && b == a + 1,
	    "patterns after the "
	    "reserved ids");
	is_str(metrics_route_name(METRICS_ROUTE_ENDPOINT + 1), "/.auth/healthz",
	    "an endpoint label is set once");
	is_str(metrics_route_name(METRICS_ROUTE_ENDPOINT + 9),
	    "unknown_endpoint", "an unnamed endpoint");
	is_str(metrics_route_name(-5), "other", "a bad id");

	metrics_request_done(a, "GET", 200, 0.3, -1);
	metrics_request_done(a, "GET", 204, 2.0, 1.0);
	metrics_request_done(b, "BREW", 503, 3000.0, 2999.0);
	metrics_request_done(METRICS_ROUTE_ENDPOINT + 1, "HEAD", 0, 0, -1);
	metrics_request_done(METRICS_ROUTE_UNMATCHED, "POST", 403, 0.1, -1);
	metrics_conn_add(1);
	metrics_conn_add(1);
	metrics_conn_add(1);
	metrics_inflight_add(1);
	metrics_signin_started();
	metrics_signin_completed();
	metrics_signin_failed("state_invalid");
	metrics_signin_failed("some text a provider made up");
	metrics_refresh("ok");
	metrics_provider_fetch("jwks", "ok");
	metrics_provider_fetch("token", "refused");
	metrics_upstream_error("connection refused");
	metrics_upstream_error("closed before answering");
	metrics_upstream_error("malformed chunked body");
	metrics_store_op(METRICS_STORE_GET, 1);
	metrics_store_op(METRICS_STORE_PUT, 99);

	s = scrape();
	ok(exposition_ok(s), "every line is HELP, TYPE or a sample");
	ok(has_line(s, "# TYPE gatehouse_requests_total counter"), "TYPE");
	ok(has_line(s, "gatehouse_build_info{version=\"1.2.3-test\"} 1"),
	    "build info");
	ok(has_line(s,
	       "gatehouse_requests_total{route=\"/a/*\",method=\"GET\","
	       "status=\"2xx\"} 2"),
	    "two GETs on /a/*");
	ok(has_line(s,
	       "gatehouse_requests_total{route=\"/b\\\"x\",method=\"other\","
	       "status=\"5xx\"} 1"),
	    "an unknown method is other; the label escaped");
	ok(has_line(s,
	       "gatehouse_requests_total{route=\"/.auth/healthz\","
	       "method=\"HEAD\",status=\"5xx\"} 1"),
	    "no status counts as 5xx");
	ok(has_line(s,
	       "gatehouse_requests_total{route=\"unmatched\",method=\"POST\","
	       "status=\"4xx\"} 1"),
	    "unmatched");
	ok(strstr(s, "status=\"3xx\"") == NULL, "zero series left out");
	ok(has_line(
	       s, "gatehouse_request_duration_seconds_bucket{le=\"0.0005\"} 3"),
	    "0.1 and 0.3 ms (and 0) in the first bucket... ");
	ok(has_line(
	       s, "gatehouse_request_duration_seconds_bucket{le=\"0.0025\"} 4"),
	    "...2 ms by 2.5 ms, cumulative");
	ok(has_line(
	       s, "gatehouse_request_duration_seconds_bucket{le=\"2.5\"} 4"),
	    "3 s not below 2.5 s");
	ok(has_line(
	       s, "gatehouse_request_duration_seconds_bucket{le=\"+Inf\"} 5"),
	    "+Inf has them all");
	ok(has_line(s, "gatehouse_request_duration_seconds_count 5"),
	    "count is +Inf");
	ok(has_line(s, "gatehouse_request_duration_seconds_sum 3.002400"),
	    "sum in seconds");
	ok(has_line(s, "gatehouse_upstream_duration_seconds_count 2"),
	    "upstream histogram only where there was one");
	ok(has_line(s, "gatehouse_connections{state=\"active\"} 1") &&
	        has_line(s, "gatehouse_connections{state=\"idle\"} 2"),
	    "active and idle connections");
	ok(has_line(s, "gatehouse_signins_started_total 1") &&
	        has_line(s, "gatehouse_signins_completed_total 1"),
	    "sign-ins started and completed");
	ok(has_line(
	       s, "gatehouse_signins_failed_total{reason=\"state_invalid\"} 1"),
	    "a failed sign-in by reason");
	ok(has_line(s, "gatehouse_signins_failed_total{reason=\"other\"} 1") &&
	        strstr(s, "made up") == NULL,
	    "a reason outside the set is other, its text nowhere");
	ok(has_line(s, "gatehouse_refreshes_total{result=\"ok\"} 1"),
	    "refresh");
	ok(has_line(s,
	       "gatehouse_provider_fetches_total{what=\"token\","
	       "result=\"refused\"} 1") &&
	        has_line(s,
	            "gatehouse_provider_fetches_total{what=\"jwks\","
	            "result=\"ok\"} 1"),
	    "provider fetches");
	ok(strstr(s, "what=\"other\"") == NULL,
	    "a catch-all with nothing in it is left out");
	ok(has_line(s, "gatehouse_upstream_errors_total{kind=\"refused\"} 1") &&
	        has_line(
	            s, "gatehouse_upstream_errors_total{kind=\"closed\"} 1") &&
	        has_line(s,
	            "gatehouse_upstream_errors_total{kind=\"bad_response\"} "
	            "1"),
	    "upstream errors by kind");
	ok(has_line(s,
	       "gatehouse_session_store_operations_total{op=\"get\","
	       "result=\"not_found\"} 1") &&
	        has_line(s,
	            "gatehouse_session_store_operations_total{op=\"put\","
	            "result=\"error\"} 1"),
	    "store operations; an unknown result is an error");
	ok(has_line(s, "gatehouse_sessions 42"), "sessions gauge");
	free(s);
}

static void *
thread_main(void *arg)
{
	int i, id = (int)(long)arg;

	metrics_thread_attach(id);
	for (i = 0; i < 10000; i++)
		metrics_request_done(METRICS_ROUTE_DEFAULT, "PUT", 201, 1, -1);
	return NULL;
}

static void
test_threads(void)
{
	pthread_t t[4];
	char *s;
	long i;

	metrics_cleanup();
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, thread_main, (void *)i);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	s = scrape();
	ok(has_line(s,
	       "gatehouse_requests_total{route=\"default\",method=\"PUT\","
	       "status=\"2xx\"} 40000"),
	    "four threads' blocks summed at the scrape");
	free(s);
}

static void
test_route_cap(void)
{
	char label[32];
	int i, id = 0;

	metrics_cleanup();
	for (i = 0; i < METRICS_ROUTES_MAX; i++) {
		snprintf(label, sizeof(label), "/r%d", i);
		id = metrics_route_intern(label);
	}
	is_int(id, METRICS_ROUTE_OTHER, "past the table's room: other");
	is_int(metrics_route_intern("/r0"), METRICS_ROUTE_FIRST,
	    "those in keep their ids");
	metrics_cleanup();
}

int
main(void)
{
	test_label_escape();
	test_counting();
	test_threads();
	test_route_cap();
	return done_testing();
}
