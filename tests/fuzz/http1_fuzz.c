/* SPDX-License-Identifier: ISC */
/*
 * http1_fuzz.c: fuzz target for gateway/http/http1.c, the HTTP/1.1 parser both
 * sides of the gateway use.
 *
 * Input: the bytes a client sends on one connection.  They are read the
 * way conn.c reads them: the head is found (fed in two pieces, at a split
 * point taken from the input, to exercise the resumable scan), parsed in
 * place, and then the body is decoded by its framing, chunked bodies in
 * pieces too; whatever follows is parsed as the next request.  The same
 * bytes are also parsed as an upstream's response head.  Every promise of
 * http1.h is checked: lengths within the input, pointers inside the buffer
 * and NUL-terminated there, no field stored beyond the array.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "fuzz.h"
#include "http/http1.h"

#define FUZZ_MAXHDRS 16

static void
fuzz_http1_fail(const char *what)
{
	fprintf(stderr, "http1 broke its contract: %s\n", what);
	abort();
}

static void
fuzz_http1_inside(const char *p, const char *buf, size_t len)
{
	if (p == NULL)
		return;
	if (p < buf || p >= buf + len)
		fuzz_http1_fail("a pointer outside the buffer");
	if (memchr(p, '\0', buf + len - p) == NULL)
		fuzz_http1_fail("a string not terminated in the buffer");
}

/* One request at buf[0..len); returns the bytes it used, 0 to stop. */
static size_t
fuzz_http1_request(char *buf, size_t len, size_t split)
{
	static const struct http1_limits lim = {256, 2048, 12, 4096};
	struct http1_hdr hdrs[FUZZ_MAXHDRS];
	struct http1_chunked c;
	struct http1_req r;
	struct evbuffer *body;
	size_t pos = 0, used, step;
	ssize_t hl, n;
	int i, done, status;

	if (split > len)
		split = len;
	hl = http1_head_scan(buf, split, &pos);
	if (hl == 0)
		hl = http1_head_scan(buf, len, &pos);
	if (hl <= 0)
		return 0;
	if ((size_t)hl > len || hl < 2)
		fuzz_http1_fail("head length");
	memset(&r, 0, sizeof(r));
	r.hr_hdrs = hdrs;
	r.hr_maxhdrs = 13;
	if (http1_parse_request(buf, (size_t)hl, &lim, &r) == -1) {
		if (r.hr_status != 400 && r.hr_status != 505)
			fuzz_http1_fail("refusal status");
		return 0;
	}
	if (r.hr_nhdrs > r.hr_maxhdrs || r.hr_method == NULL ||
	    r.hr_target == NULL)
		fuzz_http1_fail("request fields");
	fuzz_http1_inside(r.hr_method, buf, (size_t)hl);
	fuzz_http1_inside(r.hr_target, buf, (size_t)hl);
	fuzz_http1_inside(r.hr_host, buf, (size_t)hl);
	for (i = 0; i < r.hr_nhdrs; i++) {
		fuzz_http1_inside(hdrs[i].hh_name, buf, (size_t)hl);
		fuzz_http1_inside(hdrs[i].hh_value, buf, (size_t)hl);
		if (strlen(hdrs[i].hh_name) != hdrs[i].hh_nlen ||
		    strlen(hdrs[i].hh_value) != hdrs[i].hh_vlen ||
		    !http1_is_token(hdrs[i].hh_name, hdrs[i].hh_nlen))
			fuzz_http1_fail("a field");
	}
	if (r.hr_chunked && r.hr_length != 0)
		fuzz_http1_fail("two framings accepted");
	if (r.hr_status != 0)
		return 0; /* answered without its body; the connection closes */
	used = (size_t)hl;
	if (!r.hr_chunked)
		return r.hr_length <= (int64_t)(len - used)
		    ? used + (size_t)r.hr_length
		    : 0;
	body = evbuffer_new();
	if (body == NULL)
		abort();
	memset(&c, 0, sizeof(c));
	done = 0;
	/* In pieces, as the socket delivers them. */
	for (step = 1 + split % 7; used < len && !done;) {
		size_t have = len - used < step ? len - used : step;

		n = http1_chunked_decode(&c, buf + used, have, body,
		    lim.hl_max_body, &done, &status);
		if (n == -1) {
			if (status != 400 && status != 413)
				fuzz_http1_fail("chunk refusal status");
			evbuffer_free(body);
			return 0;
		}
		if ((size_t)n > have)
			fuzz_http1_fail("consumed more than given");
		if (n == 0 && !done) {
			if (have == len - used)
				break; /* incomplete at the end of the input */
			step *= 2;     /* an incomplete line: offer more */
		}
		used += (size_t)n;
	}
	if ((int64_t)evbuffer_get_length(body) > lim.hl_max_body ||
	    (int64_t)evbuffer_get_length(body) != c.hc_total)
		fuzz_http1_fail("body size");
	evbuffer_free(body);
	return done ? used : 0;
}

static void
fuzz_http1_response(const char *data, size_t size)
{
	struct http1_hdr hdrs[FUZZ_MAXHDRS];
	struct http1_resp p;
	char *buf = fuzz_strndup((const uint8_t *)data, size);
	size_t pos = 0;
	ssize_t hl;
	int i;

	hl = http1_head_scan(buf, size, &pos);
	if (hl > 0) {
		memset(&p, 0, sizeof(p));
		p.hp_hdrs = hdrs;
		p.hp_maxhdrs = FUZZ_MAXHDRS;
		if (http1_parse_response(buf, (size_t)hl, &p) == 0) {
			if (p.hp_status < 100 || p.hp_status > 599 ||
			    p.hp_nhdrs > FUZZ_MAXHDRS ||
			    (p.hp_chunked && p.hp_length != -1))
				fuzz_http1_fail("response fields");
			fuzz_http1_inside(p.hp_reason, buf, (size_t)hl);
			for (i = 0; i < p.hp_nhdrs; i++) {
				fuzz_http1_inside(
				    hdrs[i].hh_name, buf, (size_t)hl);
				fuzz_http1_inside(
				    hdrs[i].hh_value, buf, (size_t)hl);
			}
		}
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_strndup(data, size);
	size_t off = 0, n, split = size > 0 ? data[0] : 0;
	int k;

	/* A pipeline of at most a few requests. */
	for (k = 0; k < 4 && off < size; k++) {
		n = fuzz_http1_request(buf + off, size - off, split);
		if (n == 0)
			break;
		off += n;
	}
	free(buf);
	fuzz_http1_response((const char *)data, size);
	return 0;
}
