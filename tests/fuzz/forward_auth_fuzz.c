/* SPDX-License-Identifier: ISC */
/*
 * forward_auth_fuzz.c: fuzz target for the headers a front proxy names a
 * request with on /.auth/verify (gateway/route/forward_auth.c
 * forward_auth_target_parse: X-Forwarded-Method, X-Forwarded-Uri,
 * X-Original-URI, their conflicts, the method rule shared with proxy mode
 * and the path normalisation).
 *
 * Input: a request head ("GET /.auth/verify HTTP/1.1\r\n..."), parsed by
 * the gateway's own http1 parser as conn.c does, so the fields are what
 * forward-auth really sees.  An input that is no request head is read as
 * lines instead: the first is the verify request's own method, each other
 * "Name: value" (or "Name:value") line a field, so the fuzzer reaches the
 * conflict rules without having to learn HTTP first.  Every promise of
 * forward_auth.h is checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "fuzz.h"
#include "http/http1.h"
#include "path.h"
#include "policy.h"
#include "route/forward_auth.h"

#define FUZZ_MAXHDRS 32

static void
fuzz_fa_fail(const char *what)
{
	fprintf(stderr, "forward_auth broke its contract: %s\n", what);
	abort();
}

/* The values of a field, for the oracle: how many, and whether they all
 * agree.  *first is borrowed from hdrs. */
static int
fuzz_fa_values(const struct http1_hdr *hdrs, int n, const char *name,
    const char **first, int *agree)
{
	int i, count = 0;

	*first = NULL;
	*agree = 1;
	for (i = 0; i < n; i++) {
		if (strcasecmp(hdrs[i].hh_name, name) != 0)
			continue;
		if (*first != NULL && strcmp(*first, hdrs[i].hh_value) != 0)
			*agree = 0;
		if (*first == NULL)
			*first = hdrs[i].hh_value;
		count++;
	}
	return count;
}

static void
fuzz_fa_check(const struct http1_hdr *hdrs, int n, const char *own)
{
	struct forward_auth_target t;
	struct gh_error err;
	const char *m, *fwd, *orig;
	int status, nm, agree_m, agree_f, agree_o;
	char *again;

	memset(&err, 0, sizeof(err));
	status = forward_auth_target_parse(hdrs, n, own, &t, &err);
	nm = fuzz_fa_values(hdrs, n, "X-Forwarded-Method", &m, &agree_m);
	(void)fuzz_fa_values(hdrs, n, "X-Forwarded-Uri", &fwd, &agree_f);
	(void)fuzz_fa_values(hdrs, n, "X-Original-URI", &orig, &agree_o);
	if (status != 0) {
		if (status != 400 && status != 405 && status != 500)
			fuzz_fa_fail("a status other than 400, 405, 500");
		if (err.ge_code == NULL)
			fuzz_fa_fail("a refusal without an error code");
		if (t.ft_method != NULL || t.ft_normpath != NULL ||
		    t.ft_path != NULL)
			fuzz_fa_fail("a refusal that leaves t filled");
		return;
	}
	/* Accepted: nothing ambiguous may have been let through. */
	if (!agree_m || !agree_f || !agree_o)
		fuzz_fa_fail("a repeated field with two values accepted");
	if (fwd != NULL && orig != NULL && strcmp(fwd, orig) != 0)
		fuzz_fa_fail("X-Forwarded-Uri and X-Original-URI differ");
	if (t.ft_method == NULL || t.ft_normpath == NULL || t.ft_path == NULL)
		fuzz_fa_fail("an answer with a hole");
	if (t.ft_method != (nm > 0 ? m : own))
		fuzz_fa_fail("the method is not the one named");
	/* The method is one proxy mode would route, and serve. */
	if (!policy_method_valid(t.ft_method, strlen(t.ft_method)) ||
	    !http1_method_served(t.ft_method))
		fuzz_fa_fail("a method proxy mode refuses");
	if (t.ft_normpath[0] != '/' ||
	    strncmp(t.ft_path, t.ft_normpath, strlen(t.ft_normpath)) != 0)
		fuzz_fa_fail("path and normalised path disagree");
	/* Normal form is a fixed point: the route table and the upstream
	 * can never read it another way. */
	again = path_normalise_dup(t.ft_normpath, 0, NULL);
	if (again == NULL || strcmp(again, t.ft_normpath) != 0)
		fuzz_fa_fail("the normalised path is not in normal form");
	free(again);
	forward_auth_target_cleanup(&t);
	if (t.ft_method != NULL || t.ft_normpath != NULL || t.ft_path != NULL)
		fuzz_fa_fail("cleanup leaves t filled");
}

/* The input as a request head; 0 when it is one. */
static int
fuzz_fa_head(const uint8_t *data, size_t size)
{
	static const struct http1_limits lim = {
	    8192, 16384, FUZZ_MAXHDRS, 1 << 20};
	struct http1_hdr hdrs[FUZZ_MAXHDRS];
	struct http1_req r;
	size_t pos = 0;
	ssize_t hl;
	char *buf;

	buf = fuzz_strndup(data, size);
	hl = http1_head_scan(buf, size, &pos);
	memset(&r, 0, sizeof(r));
	r.hr_hdrs = hdrs;
	r.hr_maxhdrs = FUZZ_MAXHDRS;
	if (hl <= 0 || http1_parse_request(buf, (size_t)hl, &lim, &r) == -1) {
		free(buf);
		return -1;
	}
	fuzz_fa_check(hdrs, r.hr_nhdrs, r.hr_method);
	free(buf);
	return 0;
}

/* The input as lines: own method, then "Name: value" fields. */
static void
fuzz_fa_lines(const uint8_t *data, size_t size)
{
	struct http1_hdr hdrs[FUZZ_MAXHDRS];
	char *buf, *line, *next, *colon, *own;
	int n = 0;

	buf = fuzz_strndup(data, size);
	own = buf;
	line = strchr(buf, '\n');
	if (line != NULL)
		*line++ = '\0';
	for (; line != NULL && n < FUZZ_MAXHDRS; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon++ = '\0';
		while (*colon == ' ')
			colon++;
		hdrs[n].hh_name = line;
		hdrs[n].hh_value = colon;
		hdrs[n].hh_nlen = (uint32_t)strlen(line);
		hdrs[n].hh_vlen = (uint32_t)strlen(colon);
		n++;
	}
	fuzz_fa_check(hdrs, n, own);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_fa_head(data, size) == -1)
		fuzz_fa_lines(data, size);
	return 0;
}
