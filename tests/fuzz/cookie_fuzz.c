/* SPDX-License-Identifier: ISC */
/*
 * cookie_fuzz.c: fuzz target for the Cookie header parser
 * (gateway/session/cookie.c cookie_get and cookie_foreach).
 *
 * Input: each line is the value of one Cookie request header (several
 * lines give several headers, as a client may send), written into a
 * request head among unrelated headers and parsed by gateway/http/http1.c, as
 * a client's would be.  The session cookie and the sign-in flow cookies
 * are looked up as the gateway does, with a small and a full-size output
 * buffer, and every cookie is walked.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/http1.h"
#include "session/cookie.h"

struct fuzz_cookie_seen {
	size_t n;
	size_t bytes;
};

static void
fuzz_cookie_cb(const char *name, const char *value, void *arg)
{
	struct fuzz_cookie_seen *s = arg;

	/* Touch every byte, so ASan checks the borrowed strings. */
	s->n++;
	s->bytes += strlen(name) + strlen(value);
}

/* Each call's promises from cookie.h. */
static void
fuzz_cookie_get(const struct http1_req *h, const char *name, size_t outsize)
{
	char *out;
	int rc;

	out = malloc(outsize);
	if (out == NULL)
		abort();
	memset(out, 'X', outsize);
	rc = cookie_get(h, name, out, outsize);
	if (rc < -1 || rc > 1 ||
	    (rc == 1 && (out[0] == '\0' || strnlen(out, outsize) >= outsize)) ||
	    (rc == -1 && out[0] != '\0')) {
		fprintf(stderr, "cookie_get broke its contract (%d)\n", rc);
		abort();
	}
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http1_limits lim = {8192, 1 << 20, 1000, 0};
	static struct http1_hdr hdrs[1001];
	struct fuzz_cookie_seen seen = {0, 0};
	struct http1_req r;
	char *text, *line, *next, *head, *p;
	size_t pos = 0;

	text = fuzz_strndup(data, size);
	head = malloc(size * 2 + 64 + 8 * (size + 1));
	if (head == NULL)
		abort();
	p = head + sprintf(head, "GET / HTTP/1.1\r\nHost: gate.example\r\n");
	for (line = text; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		p += sprintf(p, "%s: %s\r\n",
		    (line - text) % 2 ? "cookie" : "Cookie", line);
	}
	p += sprintf(p, "\r\n");
	memset(&r, 0, sizeof(r));
	r.hr_hdrs = hdrs;
	r.hr_maxhdrs = 1001;
	/* What the parser refuses never reaches the cookie code. */
	if (http1_head_scan(head, p - head, &pos) == p - head &&
	    http1_parse_request(head, p - head, &lim, &r) == 0) {
		fuzz_cookie_get(&r, "gatehouse", COOKIE_MAX_VALUE + 1);
		fuzz_cookie_get(&r, "gatehouse", 8);
		fuzz_cookie_get(&r, "a", 2);
		(void)cookie_foreach(
		    &r, "gatehouse_flow_", fuzz_cookie_cb, &seen);
		(void)cookie_foreach(&r, "", fuzz_cookie_cb, &seen);
	}
	free(head);
	free(text);
	return 0;
}
