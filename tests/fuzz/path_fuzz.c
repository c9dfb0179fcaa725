/* SPDX-License-Identifier: ISC */
/*
 * path_fuzz.c: fuzz target for request-path normalisation
 * (policies/path.c) and the `route` line parser and matcher
 * (policies/route_parse.c, match.c, predicates.c via policy_route_add).
 *
 * Input: the first line is a raw request path; every further line is the
 * text of one `route` key.  The path is normalised (checked against the
 * path.h contract below), the lines build a route table, which is checked
 * for unreachable routes, matched against the normalised path and
 * evaluated on fixed claims.  Seeds: tests/corpus/path (raw path, then the
 * expected outcome, itself a bad route line) and tests/corpus/route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "path.h"
#include "policy.h"

static json_t *fuzz_claims, *fuzz_overage, *fuzz_groups;

/* Abort on a broken promise of path.h, so the fuzzer reports it. */
static void
fuzz_path_invariants(const char *raw, const char *out)
{
	size_t len = strlen(out);
	char *again;

	if (out[0] != '/' || len > strlen(raw) + 1 || strstr(out, "//") ||
	    strstr(out, "/./") || strstr(out, "/../") ||
	    (len >= 2 && strcmp(out + len - 2, "/.") == 0) ||
	    (len >= 3 && strcmp(out + len - 3, "/..") == 0) ||
	    strchr(out, '\\') != NULL) {
		fprintf(stderr, "path_normalise broke its contract\n");
		abort();
	}
	/* What is checked is what is forwarded: normalising twice must
	 * change nothing, or the upstream could see another path. */
	again = path_normalise_dup(out, 0, NULL);
	if (again == NULL || strcmp(again, out) != 0) {
		fprintf(stderr, "path_normalise is not idempotent\n");
		abort();
	}
	free(again);
}

static void
fuzz_path_init(void)
{
	fuzz_claims = json_pack("{s:s, s:s, s:s, s:s, s:[s,s], s:[s], s:s, "
	                        "s:b, s:i, s:[s,i]}",
	    "sub", "user-1", "email", "Alice@Contoso.com", "tid",
	    "72F988BF-86F1-41AF-91AB-2D7CD011DB47", "scp", "api.read api.write",
	    "roles", "Admin", "Reader", "groups",
	    "0b1c2d3e-0000-4000-8000-000000000001", "dept", "eng", "staff", 1,
	    "level", 3, "tags", "x", 1);
	fuzz_overage = json_pack("{s:s, s:{s:s}, s:b}", "sub", "user-2",
	    "_claim_names", "groups", "src1", "hasgroups", 1);
	fuzz_groups = json_pack("[s]", "0b1c2d3e-0000-4000-8000-000000000001");
	if (fuzz_claims == NULL || fuzz_overage == NULL || fuzz_groups == NULL)
		abort();
}

static void
fuzz_path_routes(char *text, const char *path, int ci)
{
	static const char *const methods[] = {"GET", "POST", "PROPFIND"};
	const struct policy_route *r;
	struct policy_table *t;
	struct gh_error err;
	char *line, *next;
	size_t i;
	int n = 1;

	t = policy_table_new();
	if (t == NULL)
		abort();
	policy_table_set_case_insensitive(t, ci);
	for (line = text; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		n++;
		(void)policy_route_add(t, line, n, &err);
	}
	(void)policy_table_check(t, NULL, NULL);
	for (i = 0; i < policy_table_count(t); i++) {
		r = policy_table_route(t, i);
		(void)policy_route_pattern(r);
		(void)policy_route_has_groups(r);
	}
	if (path == NULL)
		goto done;
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		r = policy_match(t, methods[i], path);
		if (r == NULL)
			continue;
		(void)policy_eval(r, NULL);
		(void)policy_eval(r, fuzz_claims);
		(void)policy_eval(r, fuzz_overage);
		(void)policy_eval_groups(r, fuzz_overage, fuzz_groups);
	}
done:
	policy_table_free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *rest, *out, *folded;
	struct gh_error err;
	size_t outsize;
	int rc;

	if (fuzz_claims == NULL)
		fuzz_path_init();
	text = fuzz_strndup(data, size);
	rest = strchr(text, '\n');
	if (rest != NULL)
		*rest++ = '\0';

	/* An exact-size buffer, so ASan sees any write past the promise
	 * that strlen(raw) + 1 bytes are enough. */
	outsize = strlen(text) + 1;
	out = malloc(outsize);
	if (out == NULL)
		abort();
	rc = path_normalise(text, 0, out, outsize, &err);
	if (rc == 0)
		fuzz_path_invariants(text, out);
	(void)path_segment_name_len(text, strlen(text));
	folded = path_normalise_dup(text, PATH_FOLD_CASE, &err);
	if ((folded != NULL) != (rc == 0)) {
		fprintf(stderr, "case folding changed the verdict\n");
		abort();
	}
	if (rest != NULL)
		fuzz_path_routes(rest, rc == 0 ? out : NULL,
		    size > 0 && (data[size - 1] & 1));
	free(folded);
	free(out);
	free(text);
	return 0;
}
