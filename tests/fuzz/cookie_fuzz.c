/* SPDX-License-Identifier: ISC */
/*
 * cookie_fuzz.c: fuzz target for the Cookie header parser
 * (gateway/cookie.c cookie_get and cookie_foreach).
 *
 * Input: each line is the value of one Cookie request header (several
 * lines give several headers, as a client may send), put in an evkeyvalq
 * among unrelated headers.  The session cookie and the sign-in flow
 * cookies are looked up as the gateway does, with a small and a full-size
 * output buffer, and every cookie is walked.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cookie.h"
#include "fuzz.h"

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
fuzz_cookie_get(struct evkeyvalq *h, const char *name, size_t outsize)
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
	struct fuzz_cookie_seen seen = {0, 0};
	struct evkeyvalq h;
	char *text, *line, *next;

	TAILQ_INIT(&h);
	text = fuzz_strndup(data, size);
	evhttp_add_header(&h, "Host", "gate.example");
	for (line = text; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		/* evhttp itself refuses CR and LF in a value. */
		if (evhttp_add_header(&h,
		        (line - text) % 2 ? "cookie" : "Cookie", line) == -1)
			continue;
	}
	fuzz_cookie_get(&h, "gatehouse", COOKIE_MAX_VALUE + 1);
	fuzz_cookie_get(&h, "gatehouse", 8);
	fuzz_cookie_get(&h, "a", 2);
	(void)cookie_foreach(&h, "gatehouse_flow_", fuzz_cookie_cb, &seen);
	(void)cookie_foreach(&h, "", fuzz_cookie_cb, &seen);
	evhttp_clear_headers(&h);
	free(text);
	return 0;
}
