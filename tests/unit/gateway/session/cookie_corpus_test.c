/* SPDX-License-Identifier: ISC */
/*
 * cookie_corpus_test.c: the defined outcome of every file in
 * tests/corpus/cookie.  Each line of a file is one Cookie header, as
 * tests/fuzz/cookie_fuzz.c builds them; the session cookie "gatehouse" is
 * looked up as the gateway does, and the sign-in flow cookies counted.  A
 * corpus file without a row fails.  Run from the repository root.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "hdrs.h"
#include "session/cookie.h"
#include "tap.h"

#define CORPUS "tests/corpus/cookie"

/*
 * rc: cookie_get's result (1 found, 0 absent, -1 refused); value: what it
 * must find (NULL: check the length only); len: the value's length; flows:
 * how many gatehouse_flow_ cookies cookie_foreach hands over.
 */
static const struct {
	const char *file;
	int rc;
	const char *value;
	size_t len;
	int flows;
} expect[] = {
    {"baseline-session", 1, "AbC-123_x", 9, 0},
    {"comma-separated", 1, "abc, other=1", 12, 0},
    {"control-chars", 1, "a\001b\177c", 5, 0},
    {"cookie-header-lower-case", 1, "abc", 3, 0},
    {"crlf-injection", 0, NULL, 0, 0},
    {"empty-header", 0, NULL, 0, 0},
    {"empty-name", 1, "x", 1, 0},
    {"empty-value", -1, NULL, 0, 0},
    {"empty-value-then-valid", -1, NULL, 0, 0},
    {"equals-in-value", 1, "a=b==", 5, 0},
    {"flow-cookies-many", 0, NULL, 0, 60},
    {"flow-empty-value", 0, NULL, 0, 1},
    {"flow-name-too-long", 0, NULL, 0, 1},
    {"flow-value-too-long", 0, NULL, 0, 0},
    {"huge-value", -1, NULL, 0, 0},
    {"leading-space-name", 1, "abc", 3, 0},
    {"many-cookies", 1, "last", 4, 0},
    {"no-equals", 0, NULL, 0, 0},
    {"no-equals-then-valid", 1, "abc", 3, 0},
    {"nul-in-value", 1, "ab", 2, 0},
    {"percent-encoded-name", 0, NULL, 0, 0},
    {"prefix-collision", 1, "3", 1, 1},
    {"quoted-value", 1, "\"abc\"", 5, 0},
    {"repeated-name", -1, NULL, 0, 0},
    {"repeated-name-same-value", -1, NULL, 0, 0},
    {"repeated-name-two-headers", -1, NULL, 0, 0},
    {"semicolon-only", 0, NULL, 0, 0},
    {"space-after-equals", 1, " abc", 4, 0},
    {"space-before-equals", 0, NULL, 0, 0},
    {"tab-separated", 1, "abc", 3, 0},
    {"trailing-space-value", 1, "abc", 3, 0},
    {"unicode-name", 1, "ok", 2, 0},
    {"upper-case-name", 0, NULL, 0, 0},
    {"value-at-limit", 1, NULL, 4096, 0},
    {"value-over-limit", -1, NULL, 0, 0},
    {"whitespace-only", 0, NULL, 0, 0},
};

static void
count_cb(const char *name, const char *value, void *arg)
{
	(void)name;
	(void)value;
	(*(int *)arg)++;
}

/* The file's lines as Cookie headers (pointing into buf). */
static void
load(char *buf, struct test_hdrs *h)
{
	char *line, *next;

	test_hdrs_init(h);
	for (line = buf; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		(void)test_hdrs_add(
		    h, (line - buf) % 2 ? "cookie" : "Cookie", line);
	}
}

static void
check_file(const char *name, char *buf, size_t len, void *arg)
{
	char out[COOKIE_MAX_VALUE + 1];
	static struct test_hdrs h;
	size_t i, rows = sizeof(expect) / sizeof(expect[0]);
	int rc, flows;

	(void)len;
	(void)arg;
	i = TEST_CORPUS_ROW(expect, name);
	if (!ok(i < rows, "%s has an expected outcome", name))
		return;
	load(buf, &h);
	rc = cookie_get(&h.th_req, "gatehouse", out, sizeof(out));
	is_int(rc, expect[i].rc, "%s: cookie_get", name);
	if (rc == 1 && expect[i].value != NULL)
		ok(strlen(out) == expect[i].len &&
		        strcmp(out, expect[i].value) == 0,
		    "%s: value", name);
	else if (rc == 1)
		is_int(strlen(out), expect[i].len, "%s: length", name);
	else
		is_str(out, rc == -1 ? "" : out, "%s: nothing half-read", name);
	flows = 0;
	(void)cookie_foreach(&h.th_req, "gatehouse_flow_", count_cb, &flows);
	is_int(flows, expect[i].flows, "%s: flow cookies", name);
}

int
main(void)
{
	test_corpus_table(
	    CORPUS, check_file, NULL, sizeof(expect) / sizeof(expect[0]));
	return done_testing();
}
