/* SPDX-License-Identifier: ISC */
/*
 * policy_bench.c: the cost of one policy decision with a 100-route table,
 * for make bench.  Builds the table through policies/policy.h (as the
 * config loader does) and times policy_match() + policy_eval() for a path
 * that matches the first route and one that matches the last, with a
 * realistic claims object (roles, 10 groups, email, tid, scp).
 *
 *   policy_bench [ITERATIONS]
 *
 * Prints one JSON object on stdout.
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/error.h"
#include "policy.h"

#define BENCH_ROUTES 100

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns per match+eval of (method, path); checks the expected verdict. */
static double
bench_run(const struct policy_table *t, const char *method, const char *path,
    const json_t *claims, long iters, int want_line, int *verdict)
{
	const struct policy_route *r = NULL;
	volatile int sink = 0;
	double t0;
	long i;

	t0 = bench_now();
	for (i = 0; i < iters; i++) {
		r = policy_match(t, method, path);
		sink += (int)policy_eval(r, claims);
	}
	t0 = bench_now() - t0;
	if (r == NULL || policy_route_line(r) != want_line)
		errx(1, "%s matched line %d, want %d", path,
		    r ? policy_route_line(r) : -1, want_line);
	*verdict = (int)policy_eval(r, claims);
	(void)sink;
	return t0 * 1e9 / (double)iters;
}

int
main(int argc, char **argv)
{
	struct gh_error e;
	struct policy_table *t;
	json_t *claims;
	json_error_t je;
	char line[512];
	long iters = argc > 1 ? atol(argv[1]) : 2000000;
	double first, last, first_anon;
	int i, v1, v2, v3;

	memset(&e, 0, sizeof(e));
	if ((t = policy_table_new()) == NULL)
		errx(1, "policy_table_new");
	/*
	 * 99 specific routes of the mixed kinds a real table has, then the
	 * catch-all.  Route i is on line i + 1.
	 */
	for (i = 0; i < BENCH_ROUTES - 1; i++) {
		switch (i % 4) {
		case 0:
			snprintf(line, sizeof(line),
			    "/app%02d/* allow role:Admin role:Editor%02d "
			    "email:*@contoso.com",
			    i, i);
			break;
		case 1:
			snprintf(line, sizeof(line),
			    "GET,HEAD /reports%02d/*/pdf allow "
			    "group:00000000-0000-0000-0000-0000000000%02d "
			    "group:11111111-2222-3333-4444-5555555555%02d",
			    i, i, i);
			break;
		case 2:
			snprintf(line, sizeof(line),
			    "/api%02d/* allow scope:api.read "
			    "tenant:8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60",
			    i);
			break;
		default:
			snprintf(line, sizeof(line),
			    "/team%02d/docs/* allow claim:department=eng%02d "
			    "role:Reader",
			    i, i);
			break;
		}
		if (policy_route_add(t, line, i + 1, &e) == -1)
			errx(1, "route %d: %s", i + 1, e.ge_msg);
	}
	if (policy_route_add(t,
	        "/* allow role:Reader email:*@contoso.com "
	        "tenant:8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60",
	        BENCH_ROUTES, &e) == -1)
		errx(1, "last route: %s", e.ge_msg);
	if (policy_table_count(t) != BENCH_ROUTES)
		errx(1, "table has %zu routes", policy_table_count(t));

	claims = json_loads(
	    "{\"sub\": \"AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ\","
	    " \"oid\": \"00000000-0000-0000-66f3-3332eca7ea81\","
	    " \"tid\": \"8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60\","
	    " \"email\": \"Alice.Smith@Contoso.com\","
	    " \"preferred_username\": \"alice@contoso.com\","
	    " \"name\": \"Alice Smith\","
	    " \"roles\": [\"Reader\", \"Editor07\", \"Admin\"],"
	    " \"scp\": \"User.Read api.read\","
	    " \"groups\": [\"a1\", \"a2\", \"a3\", \"a4\", \"a5\","
	    " \"a6\", \"a7\", \"a8\", \"a9\","
	    " \"00000000-0000-0000-0000-000000000001\"]}",
	    0, &je);
	if (claims == NULL)
		errx(1, "claims: %s", je.text);

	bench_run(t, "GET", "/app00/page", claims, iters / 10, 1, &v1);
	first = bench_run(t, "GET", "/app00/page", claims, iters, 1, &v1);
	last = bench_run(
	    t, "GET", "/zzz/some/page", claims, iters, BENCH_ROUTES, &v2);
	first_anon = bench_run(t, "GET", "/app00/page", NULL, iters, 1, &v3);
	if (v1 != POLICY_ALLOW || v2 != POLICY_ALLOW || v3 != POLICY_NEED_LOGIN)
		errx(1, "unexpected verdicts %d %d %d", v1, v2, v3);
	printf(
	    "{\"routes\": %d, \"iterations\": %ld, \"first_match_ns\": "
	    "%.1f, \"last_match_ns\": %.1f, \"first_match_anon_ns\": %.1f}\n",
	    BENCH_ROUTES, iters, first, last, first_anon);
	json_decref(claims);
	policy_table_free(t);
	return 0;
}
