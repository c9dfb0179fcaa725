/* SPDX-License-Identifier: ISC */
/*
 * policy_test.c: policies/ route parsing, matching (with path.c in front,
 * as the router uses them), criteria, first match wins, unreachable routes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "path.h"
#include "policy.h"
#include "tap.h"

/* Build a table from lines; every line must parse. */
static struct policy_table *
table_make(const char *const *lines, int ci)
{
	struct policy_table *t;
	struct gh_error err;
	int i;

	t = policy_table_new();
	if (t == NULL)
		return NULL;
	policy_table_set_case_insensitive(t, ci);
	for (i = 0; lines[i] != NULL; i++)
		if (policy_route_add(t, lines[i], i + 1, &err) == -1) {
			printf("# line %d \"%s\": %s\n", i + 1, lines[i],
			    err.ge_msg);
			policy_table_free(t);
			return NULL;
		}
	return t;
}

/* A printable copy of s for a test name (control bytes as \xNN). */
static const char *
esc(const char *s)
{
	static char buf[4][128];
	static int k;
	char *b = buf[k++ & 3];
	size_t n = 0;

	for (; *s != '\0' && n + 5 < sizeof(buf[0]); s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			n += (size_t)snprintf(b + n, 5, "\\x%02x", c);
		else
			b[n++] = (char)c;
	}
	b[n] = '\0';
	return b;
}

/* ---- parse errors ---- */

static const struct {
	const char *text;
	const char *code; /* NULL: must parse */
	const char *msg;  /* substring of the message */
} parse_cases[] = {
    {"/public/* allow anonymous", NULL, NULL},
    {"/admin/* allow role:Admin", NULL, NULL},
    {"/reports/* allow group:0f3c email:*@contoso.com", NULL, NULL},
    {"/api/* bearer scope:api.read", NULL, NULL},
    {"/api/* bearer", NULL, NULL},
    {"GET,HEAD /docs/* allow authenticated", NULL, NULL},
    {"PROPFIND,GET /dav/* allow authenticated", NULL, NULL},
    {"/internal/* deny", NULL, NULL},
    {"/* allow authenticated", NULL, NULL},
    {"/ allow anonymous", NULL, NULL},
    {"  /x \t allow   anonymous  ", NULL, NULL},
    {"/x allow claim:dept=a=b", NULL, NULL},
    {"/reports/*/pdf allow tenant:abc", NULL, NULL},
    {"/home allow anonymous identity=off", NULL, NULL},
    {"/g/* allow authenticated token=graph", NULL, NULL},
    {"GET /g/* allow role:a token=my-api_2", NULL, NULL},
    {"/g/* allow authenticated token=", "route_bad_option", "NAME"},
    {"/g/* allow authenticated token=a.b", "route_bad_option", "NAME"},
    {"/g/* allow authenticated token=a token=b", "route_bad_option", "twice"},
    {"/g/* allow anonymous token=a", "route_bad_option", "signed-in"},
    {"/g/* bearer token=a", "route_bad_option", "signed-in"},
    {"/g/* deny token=a", "route_bad_option", "signed-in"},
    {"/g/* token=a", "route_no_action", "missing action"},
    {"/x allow anonymous identity=maybe", "route_bad_criteria", "identity"},
    {"/x allow anonymous identity=off role:a", "route_bad_criteria",
        "stand alone"},
    {"/api/* allow authenticated upstream=api", NULL, NULL},
    {"/a allow anonymous identity=off upstream=a-1", NULL, NULL},
    {"GET /b bearer scope:x claim:upstream=y upstream=b", NULL, NULL},
    {"/x allow role:a upstream=", "route_bad_option", "needs a name"},
    {"/x allow role:a upstream=a upstream=b", "route_bad_option", "twice"},
    {"/x deny upstream=a", "route_bad_option", "deny"},
    {"/x upstream=a", "route_no_action", "missing action"},
    {"/x allow anonymous upstream=a identity=off", "route_bad_criteria",
        "stand alone"},
    {"/x", "route_no_action", "missing action"},
    {"", "route_empty", "empty"},
    {"/x permit anonymous", "route_unknown_action", "unknown action"},
    {"/x allow", "route_bad_criteria", "needs"},
    {"/x deny role:a", "route_bad_criteria", "no criteria"},
    {"/x allow anonymous role:a", "route_bad_criteria", "stand alone"},
    {"/x bearer anonymous", "route_bad_criteria", "stand alone"},
    {"/x allow admin", "route_unknown_kind", "unknown criterion kind"},
    {"/x allow colour:red", "route_unknown_kind", "\"colour\""},
    {"/x allow role:", "route_empty_value", "empty value"},
    {"/x allow group:", "route_empty_value", "empty value"},
    {"/x allow claim:dept", "route_empty_value", "NAME=VALUE"},
    {"/x allow claim:=a", "route_empty_value", "NAME=VALUE"},
    {"/x allow claim:a=", "route_empty_value", "NAME=VALUE"},
    {"/x allow email:contoso.com", "route_bad_email", "'@'"},
    {"/x allow email:a@b@c", "route_bad_email", "'@'"},
    {"admin allow anonymous", "route_bad_pattern", "starts with '/'"},
    {"/a/../b allow anonymous", "route_bad_pattern", "normal form"},
    {"//a allow anonymous", "route_bad_pattern", "normal form"},
    {"/a/ allow anonymous", "route_bad_pattern", "trailing"},
    {"/a* allow anonymous", "route_bad_pattern", "whole segment"},
    {"/a;b allow anonymous", "route_bad_pattern", "';'"},
    {"/a%2fb allow anonymous", "route_bad_pattern", "encoded"},
    {"/%61 allow anonymous", "route_bad_pattern", "normal form"},
    {"get /x allow anonymous", "route_bad_method", "bad method"},
    {"GET,,POST /x allow anonymous", "route_bad_method", "bad method"},
    {"GET, /x allow anonymous", "route_bad_method", "bad method"},
    {"G?T /x allow anonymous", "route_bad_method", "bad method"},
};

static void
test_parse(void)
{
	struct policy_table *t;
	struct gh_error err;
	size_t i;
	int rc;

	t = policy_table_new();
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		rc = policy_route_add(t, parse_cases[i].text, 7, &err);
		if (parse_cases[i].code == NULL) {
			if (!ok(rc == 0, "parse \"%s\"", parse_cases[i].text))
				printf("#   %s\n", err.ge_msg);
			continue;
		}
		if (!ok(rc == -1 && err.ge_code != NULL &&
		            strcmp(err.ge_code, parse_cases[i].code) == 0 &&
		            strstr(err.ge_msg, parse_cases[i].msg) != NULL,
		        "refuse \"%s\": %s", parse_cases[i].text,
		        parse_cases[i].code))
			printf("#   rc %d code %s msg %s\n", rc,
			    err.ge_code ? err.ge_code : "-", err.ge_msg);
	}
	is_int(policy_table_count(t), 19, "only good lines were added");
	policy_table_free(t);
	policy_table_free(NULL);
}

/* ---- matching: method + raw path through path_normalise ---- */

static const char *const match_table[] = {
    "/health allow anonymous",                    /* 1 */
    "/public/* allow anonymous",                  /* 2 */
    "/admin/* allow role:Admin",                  /* 3 */
    "/reports/*/pdf allow group:g1",              /* 4 */
    "/api/* bearer scope:api.read",               /* 5 */
    "GET,HEAD /docs/* allow authenticated",       /* 6 */
    "POST /docs/* deny",                          /* 7 */
    "PROPFIND /dav allow authenticated",          /* 8 */
    "/internal/* deny",                           /* 9 */
    "/files/*/*/raw allow anonymous",             /* 10 */
    "/ allow anonymous",                          /* 11 */
    "GET,POST,PUT,DELETE /* allow authenticated", /* 12 */
    NULL,
};

/* line 0: no route (deny); -1: refused by normalisation (400). */
static const struct {
	const char *method;
	const char *raw;
	int line;
	int line_ci; /* with route_case_insensitive = on */
} match_cases[] = {
    {"GET", "/health", 1, 1},
    {"GET", "/health/", 1, 1},
    {"GET", "/health/x", 12, 12},
    {"GET", "/healthz", 12, 12},
    {"GET", "/public", 2, 2},
    {"GET", "/public/", 2, 2},
    {"GET", "/public/a/b/c", 2, 2},
    {"GET", "/publicity", 12, 12},
    {"GET", "/admin", 3, 3},
    {"GET", "/admin/", 3, 3},
    {"GET", "/admin/users", 3, 3},
    {"GET", "/administrator", 12, 12},
    {"GET", "/ADMIN", 12, 3},
    {"GET", "/Admin/x", 12, 3},
    {"GET", "/admin/../admin", 3, 3},
    {"GET", "//admin", 3, 3},
    {"GET", "/%61dmin", 3, 3},
    {"GET", "/%41dmin", 12, 3},
    {"GET", "/public/%2e%2e/admin", 3, 3},
    {"GET", "/public/%2E%2E/admin/x", 3, 3},
    {"GET", "/public/..%2fadmin", -1, -1},
    {"GET", "/public/..%2Fadmin", -1, -1},
    {"GET", "/admin;x", 3, 3},
    {"GET", "/admin;x/secret", 3, 3},
    {"GET", "/ADMIN;x/secret", 12, 3},
    {"GET", "/admin/.", 3, 3},
    {"GET", "/./admin", 3, 3},
    {"GET", "/admin%00", -1, -1},
    {"GET", "/admin\\secret", -1, -1},
    {"GET", "/public\\..\\admin", -1, -1},
    {"GET", "/public/..%c0%afadmin", -1, -1},
    {"GET", "/%c0%ae%c0%ae/admin", -1, -1},
    {"GET", "/..", -1, -1},
    {"GET", "/a/b/../../..", -1, -1},
    {"GET", "/%2e%2e/admin", -1, -1},
    {"GET", "/admin/..;/secret", -1, -1},
    {"GET", "/admin\t", -1, -1},
    {"GET", "/admin\r\n", -1, -1},
    {"GET", "/admin%", -1, -1},
    {"GET", "/admin%zz", -1, -1},
    {"GET", "/reports/q1/pdf", 4, 4},
    {"GET", "/reports/q1/pdf/", 4, 4},
    {"GET", "/reports/pdf", 12, 12},
    {"GET", "/reports/q1/q2/pdf", 12, 12},
    {"GET", "/reports/q1/pdf/x", 12, 12},
    {"GET", "/reports/q1;v=2/pdf", 4, 4},
    {"POST", "/api/orders", 5, 5},
    {"PATCH", "/api", 5, 5},
    {"GET", "/docs/intro", 6, 6},
    {"HEAD", "/docs/intro", 6, 6},
    {"POST", "/docs/intro", 7, 7},
    {"PUT", "/docs/intro", 12, 12},
    {"get", "/docs/intro", 0, 0},
    {"PROPFIND", "/dav", 8, 8},
    {"PROPFIND", "/dav/x", 0, 0},
    {"GET", "/dav", 12, 12},
    {"MKCOL", "/internal/x", 9, 9},
    {"GET", "/internal", 9, 9},
    {"GET", "/files/a/b/raw", 10, 10},
    {"GET", "/files/a/raw", 12, 12},
    {"GET", "/", 11, 11},
    {"GET", "//", 11, 11},
    {"GET", "/x/y", 12, 12},
    {"PATCH", "/x/y", 0, 0},
    {"OPTIONS", "/", 11, 11},
    {"OPTIONS", "/x", 0, 0},
};

static void
test_match(int ci)
{
	const struct policy_route *r;
	struct policy_table *t;
	char path[256];
	size_t i;
	int got, want;

	t = table_make(match_table, ci);
	if (!ok(t != NULL, "match table parses (ci=%d)", ci))
		return;
	for (i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		want = ci ? match_cases[i].line_ci : match_cases[i].line;
		if (path_normalise(
		        match_cases[i].raw, 0, path, sizeof(path), NULL) == -1)
			got = -1;
		else {
			r = policy_match(t, match_cases[i].method, path);
			got = r == NULL ? 0 : policy_route_line(r);
		}
		is_int(got, want, "ci=%d %s %s -> line %d", ci,
		    match_cases[i].method, esc(match_cases[i].raw), want);
	}
	ok(policy_match(t, "GET", "admin") == NULL, "relative path: no match");
	ok(policy_match(NULL, "GET", "/") == NULL, "no table: no match");
	policy_table_free(t);
}

static void
test_empty_and_star(void)
{
	static const char *const star[] = {"/* deny", NULL};
	struct policy_table *t;
	const struct policy_route *r;

	t = policy_table_new();
	ok(policy_match(t, "GET", "/") == NULL, "empty table: no match (deny)");
	policy_table_free(t);

	t = table_make(star, 0);
	r = policy_match(t, "GET", "/");
	ok(r != NULL && policy_route_action(r) == POLICY_ACTION_DENY,
	    "/* matches /");
	r = policy_match(t, "BREW", "/a/b/c;d");
	ok(r != NULL, "/* matches any method and path");
	is_str(r != NULL ? policy_route_pattern(r) : NULL, "/*",
	    "pattern accessor");
	is_int(policy_eval(r, NULL), POLICY_DENY, "deny route, not signed in");
	policy_table_free(t);
}

/* ---- criteria ---- */

static const char *const claims_alice =
    "{\"sub\":\"a\",\"roles\":[\"Reader\",\"Admin\"],"
    "\"groups\":[\"g1\",\"g2\"],\"email\":\"Alice.Smith@Contoso.COM\","
    "\"tid\":\"72f988bf-86f1-41af-91ab-2d7cd011db47\","
    "\"scp\":\"User.Read api.read  api.write\",\"dept\":\"Sales\","
    "\"tags\":[\"x\",\"vip\"],\"email_verified\":true,\"level\":3}";
static const char *const claims_bob =
    "{\"sub\":\"b\",\"roles\":\"Reader\",\"email\":\"bob@example.org\","
    "\"tid\":\"other\",\"scope\":\"api.read\",\"dept\":[\"HR\"]}";
static const char *const claims_overage =
    "{\"sub\":\"c\",\"roles\":[\"Admin\"],\"email\":\"c@contoso.com\","
    "\"_claim_names\":{\"groups\":\"src1\"},\"_claim_sources\":"
    "{\"src1\":{\"endpoint\":\"https://graph.microsoft.com/v1.0/x\"}}}";
static const char *const claims_hasgroups =
    "{\"sub\":\"d\",\"hasgroups\":true}";
static const char *const claims_empty = "{}";
static const char *const claims_evil =
    "{\"email\":\"x@evil.example@contoso.com\",\"roles\":[\"admin\"],"
    "\"groups\":\"g1\"}";

enum who { NOBODY, ALICE, BOB, OVERAGE, HASGROUPS, EMPTY, EVIL, NWHO };

static const struct {
	const char *route;
	enum who who;
	enum policy_verdict want;
} crit_cases[] = {
    /* actions */
    {"/x allow anonymous", NOBODY, POLICY_ALLOW},
    {"/x allow anonymous", ALICE, POLICY_ALLOW},
    {"/x allow authenticated", NOBODY, POLICY_NEED_LOGIN},
    {"/x allow authenticated", EMPTY, POLICY_ALLOW},
    {"/x deny", ALICE, POLICY_DENY},
    {"/x deny", NOBODY, POLICY_DENY},
    {"/x allow role:Admin", NOBODY, POLICY_NEED_LOGIN},
    {"/x bearer", NOBODY, POLICY_NEED_LOGIN},
    {"/x bearer", EMPTY, POLICY_ALLOW},
    /* role */
    {"/x allow role:Admin", ALICE, POLICY_ALLOW},
    {"/x allow role:admin", ALICE, POLICY_DENY},
    {"/x allow role:Admin", BOB, POLICY_DENY},
    {"/x allow role:Reader", BOB, POLICY_ALLOW},
    {"/x allow role:Admin", EMPTY, POLICY_DENY},
    {"/x allow role:Admin", EVIL, POLICY_DENY},
    {"/x allow role:Nope role:Admin", ALICE, POLICY_ALLOW},
    {"/x allow role:Nope role:Other", ALICE, POLICY_DENY},
    /* group */
    {"/x allow group:g2", ALICE, POLICY_ALLOW},
    {"/x allow group:G2", ALICE, POLICY_DENY},
    {"/x allow group:g9", ALICE, POLICY_DENY},
    {"/x allow group:g9 group:g1", ALICE, POLICY_ALLOW},
    {"/x allow group:g1", BOB, POLICY_DENY},
    {"/x allow group:g1", EVIL, POLICY_ALLOW},
    {"/x allow group:g1", EMPTY, POLICY_DENY},
    {"/x allow group:g1", OVERAGE, POLICY_NEED_GROUPS},
    {"/x allow group:g1", HASGROUPS, POLICY_NEED_GROUPS},
    {"/x allow group:g1 role:Admin", OVERAGE, POLICY_NEED_GROUPS},
    {"/x allow group:g1 role:Nope", OVERAGE, POLICY_DENY},
    {"/x allow role:Admin group:g1", OVERAGE, POLICY_NEED_GROUPS},
    {"/x allow role:Admin", OVERAGE, POLICY_ALLOW},
    {"/x bearer group:g1", OVERAGE, POLICY_NEED_GROUPS},
    /* email */
    {"/x allow email:*@contoso.com", ALICE, POLICY_ALLOW},
    {"/x allow email:*@CONTOSO.com", ALICE, POLICY_ALLOW},
    {"/x allow email:alice.smith@contoso.com", ALICE, POLICY_ALLOW},
    {"/x allow email:alice.*@contoso.com", ALICE, POLICY_ALLOW},
    {"/x allow email:bob*@contoso.com", ALICE, POLICY_DENY},
    {"/x allow email:*@*.com", ALICE, POLICY_ALLOW},
    {"/x allow email:*@contoso.co", ALICE, POLICY_DENY},
    {"/x allow email:*@sub.contoso.com", ALICE, POLICY_DENY},
    {"/x allow email:*@contoso.com", BOB, POLICY_DENY},
    {"/x allow email:*@contoso.com email:*@example.org", BOB, POLICY_ALLOW},
    {"/x allow email:*@contoso.com", EVIL, POLICY_DENY},
    {"/x allow email:*@*", EVIL, POLICY_DENY},
    {"/x allow email:*@contoso.com", EMPTY, POLICY_DENY},
    {"/x allow email:*a*a*a*b@contoso.com", ALICE, POLICY_DENY},
    /* tenant */
    {"/x allow tenant:72f988bf-86f1-41af-91ab-2d7cd011db47", ALICE,
        POLICY_ALLOW},
    {"/x allow tenant:72F988BF-86F1-41AF-91AB-2D7CD011DB47", ALICE,
        POLICY_ALLOW},
    {"/x allow tenant:72f988bf-86f1-41af-91ab-2d7cd011db47", BOB, POLICY_DENY},
    {"/x allow tenant:other", EMPTY, POLICY_DENY},
    /* scope */
    {"/x bearer scope:api.read", ALICE, POLICY_ALLOW},
    {"/x bearer scope:api.write", ALICE, POLICY_ALLOW},
    {"/x bearer scope:User.Read", ALICE, POLICY_ALLOW},
    {"/x bearer scope:api", ALICE, POLICY_DENY},
    {"/x bearer scope:api.read.all", ALICE, POLICY_DENY},
    {"/x bearer scope:api.admin", ALICE, POLICY_DENY},
    {"/x bearer scope:api.admin scope:api.write", ALICE, POLICY_ALLOW},
    {"/x bearer scope:api.read", BOB, POLICY_ALLOW},
    {"/x bearer scope:api.write", BOB, POLICY_DENY},
    {"/x bearer scope:api.read", EMPTY, POLICY_DENY},
    /* claim */
    {"/x allow claim:dept=Sales", ALICE, POLICY_ALLOW},
    {"/x allow claim:dept=sales", ALICE, POLICY_DENY},
    {"/x allow claim:dept=HR", BOB, POLICY_ALLOW},
    {"/x allow claim:dept=HR claim:dept=Sales", ALICE, POLICY_ALLOW},
    {"/x allow claim:tags=vip", ALICE, POLICY_ALLOW},
    {"/x allow claim:tags=gold", ALICE, POLICY_DENY},
    {"/x allow claim:email_verified=true", ALICE, POLICY_ALLOW},
    {"/x allow claim:email_verified=true", BOB, POLICY_DENY},
    {"/x allow claim:level=3", ALICE, POLICY_ALLOW},
    {"/x allow claim:level=4", ALICE, POLICY_DENY},
    {"/x allow claim:dept=Sales claim:tags=vip", ALICE, POLICY_ALLOW},
    {"/x allow claim:dept=Sales claim:tags=gold", ALICE, POLICY_DENY},
    {"/x allow claim:nope=x", ALICE, POLICY_DENY},
    /* AND across kinds */
    {"/x allow role:Admin email:*@contoso.com", ALICE, POLICY_ALLOW},
    {"/x allow role:Admin email:*@contoso.com", BOB, POLICY_DENY},
    {"/x allow role:Reader email:*@contoso.com", BOB, POLICY_DENY},
    {"/x allow role:Reader email:*@example.org", BOB, POLICY_ALLOW},
    {"/x allow group:g1 email:*@contoso.com role:Admin "
     "tenant:72f988bf-86f1-41af-91ab-2d7cd011db47 claim:dept=Sales",
        ALICE, POLICY_ALLOW},
    {"/x allow group:g1 email:*@contoso.com role:Admin "
     "tenant:72f988bf-86f1-41af-91ab-2d7cd011db47 claim:dept=HR",
        ALICE, POLICY_DENY},
    {"/x allow role:Admin role:Reader email:*@nope.com "
     "email:*@example.org",
        BOB, POLICY_ALLOW},
    {"/x bearer scope:api.read role:Admin", BOB, POLICY_DENY},
    {"/x bearer scope:api.read role:Reader", BOB, POLICY_ALLOW},
};

static void
test_criteria(void)
{
	const char *const texts[NWHO] = {NULL, claims_alice, claims_bob,
	    claims_overage, claims_hasgroups, claims_empty, claims_evil};
	json_t *claims[NWHO] = {NULL};
	struct policy_table *t;
	const struct policy_route *r;
	struct gh_error err;
	size_t i;
	int w;

	for (w = 1; w < NWHO; w++) {
		claims[w] = json_loads(texts[w], 0, NULL);
		if (!ok(claims[w] != NULL, "claims %d parse", w))
			goto done;
	}
	for (i = 0; i < sizeof(crit_cases) / sizeof(crit_cases[0]); i++) {
		t = policy_table_new();
		if (policy_route_add(t, crit_cases[i].route, 1, &err) == -1) {
			ok(0, "parse \"%s\": %s", crit_cases[i].route,
			    err.ge_msg);
			policy_table_free(t);
			continue;
		}
		r = policy_match(t, "GET", "/x");
		is_int(r == NULL
		        ? -1
		        : (int)policy_eval(r, claims[crit_cases[i].who]),
		    crit_cases[i].want, "%s, who=%d -> %s", crit_cases[i].route,
		    crit_cases[i].who, policy_verdict_name(crit_cases[i].want));
		policy_table_free(t);
	}
done:
	for (w = 0; w < NWHO; w++)
		json_decref(claims[w]);
}

/* email_verified: false (or "false") never matches unless trusted;
 * absent, true or anything else is as before. */
static void
test_email_verified(void)
{
	static const struct {
		const char *claims;
		int trusted;
		enum policy_verdict want;
	} cases[] = {
	    {"{\"email\":\"a@contoso.com\"}", 0, POLICY_ALLOW},
	    {"{\"email\":\"a@contoso.com\",\"email_verified\":true}", 0,
	        POLICY_ALLOW},
	    {"{\"email\":\"a@contoso.com\",\"email_verified\":\"true\"}", 0,
	        POLICY_ALLOW},
	    {"{\"email\":\"a@contoso.com\",\"email_verified\":false}", 0,
	        POLICY_DENY},
	    {"{\"email\":\"a@contoso.com\",\"email_verified\":\"false\"}", 0,
	        POLICY_DENY},
	    {"{\"email\":\"a@contoso.com\",\"email_verified\":\"FALSE\"}", 0,
	        POLICY_DENY},
	    {"{\"email\":\"a@contoso.com\",\"email_verified\":null}", 0,
	        POLICY_ALLOW},
	    {"{\"email\":\"a@contoso.com\",\"email_verified\":false}", 1,
	        POLICY_ALLOW},
	    {"{\"email\":\"a@contoso.com\",\"email_verified\":\"false\"}", 1,
	        POLICY_ALLOW},
	    {"{\"email\":\"a@other.org\",\"email_verified\":false}", 1,
	        POLICY_DENY},
	};
	static const char *const lines[] = {
	    "/x allow email:*@contoso.com", NULL};
	struct policy_table *t;
	const struct policy_route *r;
	json_t *claims;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = table_make(lines, 0);
		policy_table_set_trust_unverified_email(t, cases[i].trusted);
		claims = json_loads(cases[i].claims, 0, NULL);
		r = policy_match(t, "GET", "/x");
		ok(claims != NULL && r != NULL, "case %zu set up", i);
		is_int(r == NULL ? -1 : (int)policy_eval(r, claims),
		    cases[i].want, "%s trusted=%d", cases[i].claims,
		    cases[i].trusted);
		json_decref(claims);
		policy_table_free(t);
	}
	claims =
	    json_loads("{\"email\":\"a@b.c\",\"email_verified\":0}", 0, NULL);
	is_str(policy_claims_email(claims, 0), "a@b.c",
	    "only false and \"false\" mean unverified");
	json_decref(claims);
	claims =
	    json_loads("{\"email\":\"\",\"email_verified\":true}", 0, NULL);
	ok(policy_claims_email(claims, 1) == NULL, "empty email is none");
	json_decref(claims);
}

static void
test_groups_fetched(void)
{
	static const char *const lines[] = {
	    "/x allow group:g1 role:Admin", "/y allow role:Admin", NULL};
	struct policy_table *t;
	const struct policy_route *r;
	json_t *claims, *in, *out;

	t = table_make(lines, 0);
	claims = json_loads(claims_overage, 0, NULL);
	in = json_pack("[ss]", "g0", "g1");
	out = json_pack("[s]", "g7");
	r = policy_match(t, "GET", "/x");
	ok(r != NULL && policy_route_has_groups(r), "route has group criteria");
	is_int(
	    policy_eval(r, claims), POLICY_NEED_GROUPS, "overage: need groups");
	is_int(policy_eval_groups(r, claims, in), POLICY_ALLOW,
	    "fetched groups contain g1");
	is_int(policy_eval_groups(r, claims, out), POLICY_DENY,
	    "fetched groups lack g1");
	is_int(policy_eval_groups(r, claims, NULL), POLICY_NEED_GROUPS,
	    "NULL groups = policy_eval");
	is_int(policy_eval_groups(r, NULL, in), POLICY_NEED_LOGIN,
	    "groups without claims: need login");
	r = policy_match(t, "GET", "/y");
	ok(r != NULL && !policy_route_has_groups(r), "route without groups");
	is_str(policy_verdict_name(POLICY_NEED_GROUPS), "need_groups",
	    "verdict name");
	json_decref(claims);
	json_decref(in);
	json_decref(out);
	policy_table_free(t);
}

/* ---- first match wins, actions through the table ---- */

static void
test_first_match(void)
{
	static const char *const lines[] = {"/internal/* deny",
	    "/internal/ok allow anonymous", "/a/* allow role:Admin",
	    "/a/* allow anonymous", "/* allow authenticated", NULL};
	struct policy_table *t;
	const struct policy_route *r;
	json_t *c;

	t = table_make(lines, 0);
	c = json_loads(claims_bob, 0, NULL);
	r = policy_match(t, "GET", "/internal/ok");
	is_int(r ? policy_route_line(r) : 0, 1, "first match wins over later");
	is_int(policy_eval(r, c), POLICY_DENY, "internal denied");
	r = policy_match(t, "GET", "/a/b");
	is_int(policy_eval(r, c), POLICY_DENY,
	    "earlier stricter route decides, no fall-through");
	is_int(policy_eval(r, NULL), POLICY_NEED_LOGIN, "signed out: login");
	r = policy_match(t, "GET", "/z");
	is_int(policy_route_action(r), POLICY_ACTION_SIGNED_IN, "catch-all");
	json_decref(c);
	policy_table_free(t);
}

/* ---- unreachable routes ---- */

struct report {
	int n;
	int lines[16];
};

static void
report_cb(int line, const char *msg, void *arg)
{
	struct report *rp = arg;

	if (rp->n < 16)
		rp->lines[rp->n] = line;
	rp->n++;
	if (strstr(msg, "can never match") == NULL)
		printf("# unexpected message: %s\n", msg);
}

static const struct {
	const char *a, *b;
	int ci;
	int unreachable;
} check_cases[] = {
    {"/* allow authenticated", "/admin/* deny", 0, 1},
    {"/* allow authenticated", "/ deny", 0, 1},
    {"/a/* deny", "/a/b allow anonymous", 0, 1},
    {"/a/* deny", "/a allow anonymous", 0, 1},
    {"/a/* deny", "/a/b/* allow anonymous", 0, 1},
    {"/a/* deny", "/a/*/c allow anonymous", 0, 1},
    {"/a/* deny", "/ab allow anonymous", 0, 0},
    {"/a/b deny", "/a/* allow anonymous", 0, 0},
    {"/a deny", "/a allow anonymous", 0, 1},
    {"/a deny", "/a/b allow anonymous", 0, 0},
    {"/*/b deny", "/a/b allow anonymous", 0, 1},
    {"/a/b deny", "/*/b allow anonymous", 0, 0},
    {"/a/*/c deny", "/a/b/c allow anonymous", 0, 1},
    {"/a/* deny", "/A/b deny", 0, 0},
    {"/a/* deny", "/A/b deny", 1, 1},
    {"GET /a/* deny", "/a/b deny", 0, 0},
    {"GET,HEAD /a/* deny", "HEAD /a/b deny", 0, 1},
    {"GET /a/* deny", "GET,POST /a/b deny", 0, 0},
    {"/a/* deny", "PROPFIND /a/b deny", 0, 1},
    {"PROPFIND /a/* deny", "PROPFIND,MKCOL /a/b deny", 0, 0},
    {"PROPFIND,MKCOL /a/* deny", "MKCOL /a/b deny", 0, 1},
    {"/a deny", "/ deny", 0, 0},
};

static void
test_check(void)
{
	static const char *const lines[] = {"/public/* allow anonymous",
	    "/admin/* allow role:Admin", "/admin/users deny",
	    "GET /docs/* allow authenticated", "GET,HEAD /docs/a deny",
	    "/* allow authenticated", "/late deny", NULL};
	struct policy_table *t;
	struct report rp;
	size_t i;
	int n;

	for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		const char *pair[3] = {
		    check_cases[i].a, check_cases[i].b, NULL};

		t = table_make(pair, check_cases[i].ci);
		memset(&rp, 0, sizeof(rp));
		n = policy_table_check(t, report_cb, &rp);
		if (!ok(t != NULL && n == check_cases[i].unreachable &&
		            rp.n == n && (n == 0 || rp.lines[0] == 2),
		        "check \"%s\" then \"%s\" (ci=%d): %d unreachable",
		        check_cases[i].a, check_cases[i].b, check_cases[i].ci,
		        check_cases[i].unreachable))
			printf("#   got %d\n", n);
		policy_table_free(t);
	}
	t = table_make(lines, 0);
	memset(&rp, 0, sizeof(rp));
	n = policy_table_check(t, report_cb, &rp);
	is_int(n, 2, "two unreachable routes in the big table");
	ok(rp.n == 2 && rp.lines[0] == 3 && rp.lines[1] == 7,
	    "reported lines 3 and 7");
	is_int(policy_table_check(t, NULL, NULL), 2, "NULL report");
	policy_table_free(t);
}

/* ---- speed: no allocation, well under a microsecond per route ---- */

static void
test_speed(void)
{
	struct policy_table *t;
	struct gh_error err;
	struct timespec t0, t1;
	char line[128];
	const struct policy_route *r = NULL;
	double ns;
	int i, iters = 20000;

	t = policy_table_new();
	for (i = 0; i < 99; i++) {
		snprintf(line, sizeof(line),
		    "GET,POST /app%d/section/*/item allow role:R%d", i, i);
		if (policy_route_add(t, line, i + 1, &err) == -1)
			break;
	}
	policy_route_add(t, "/* allow authenticated", 100, &err);
	if (!ok(policy_table_count(t) == 100, "100-route table")) {
		policy_table_free(t);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < iters; i++)
		r = policy_match(t, "GET", "/app99/section/x/item/more");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	         (double)(t1.tv_nsec - t0.tv_nsec)) /
	    ((double)iters * 100);
	printf("# %.1f ns per route checked\n", ns);
	is_int(r ? policy_route_line(r) : 0, 100, "fell through to the last");
	/* Generous even under ASan and a busy machine. */
	ok(ns < 1000.0, "under a microsecond per route (%.1f ns)", ns);
	policy_table_free(t);
}

/* token=NAME: the route's profile, and the criteria before it intact. */
static void
test_route_token(void)
{
	struct policy_table *t = policy_table_new();
	json_t *claims = json_loads("{\"roles\":[\"a\"]}", 0, NULL);
	struct gh_error err;

	ok(policy_route_add(t, "/g/* allow role:a token=graph", 1, &err) == 0,
	    "token= after criteria");
	ok(policy_route_add(t, "/* allow authenticated", 2, &err) == 0,
	    "no token=");
	is_str(policy_route_token(policy_match(t, "GET", "/g/x")), "graph",
	    "the route names its profile");
	ok(policy_eval(policy_match(t, "GET", "/g/x"), claims) == POLICY_ALLOW,
	    "its criteria still decide");
	ok(policy_route_token(policy_match(t, "GET", "/x")) == NULL,
	    "a route without token= forwards no profile");
	json_decref(claims);
	policy_table_free(t);
}

/* identity=off on anonymous routes, and the criterion a denial names. */
static void
test_identity_and_reason(void)
{
	static const char *const lines[] = {"/a allow anonymous",
	    "/b allow anonymous identity=off", "/c allow role:Admin role:Ops",
	    "/d allow tenant:t1 role:Admin", "/e deny",
	    "/f allow claim:dept=x"};
	json_t *claims = json_loads(
	    "{\"sub\":\"s\",\"tid\":\"t1\",\"roles\":[\"Reader\"]}", 0, NULL);
	struct policy_table *t = policy_table_new();
	struct gh_error err;
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ok(policy_route_add(t, lines[i], (int)i + 1, &err) == 0,
		    "parse %s", lines[i]);
	ok(policy_route_identity(policy_match(t, "GET", "/a")),
	    "anonymous forwards identity by default");
	ok(!policy_route_identity(policy_match(t, "GET", "/b")),
	    "identity=off turns it off");
	ok(!policy_route_identity(policy_match(t, "GET", "/c")),
	    "not an anonymous route");
	is_str(policy_deny_reason(policy_match(t, "GET", "/c"), claims, NULL,
	           buf, sizeof(buf)),
	    "role:Admin|role:Ops", "alternatives named");
	is_str(policy_deny_reason(policy_match(t, "GET", "/d"), claims, NULL,
	           buf, sizeof(buf)),
	    "role:Admin", "the failing group, not the one that holds");
	is_str(policy_deny_reason(policy_match(t, "GET", "/e"), claims, NULL,
	           buf, sizeof(buf)),
	    "route", "deny route");
	is_str(policy_deny_reason(NULL, claims, NULL, buf, sizeof(buf)),
	    "no_route", "no route");
	is_str(policy_deny_reason(
	           policy_match(t, "GET", "/f"), claims, NULL, buf, 8),
	    "claim:d", "truncated to the buffer");
	policy_table_free(t);
	json_decref(claims);
}

int
main(void)
{
	test_parse();
	test_identity_and_reason();
	test_match(0);
	test_match(1);
	test_empty_and_star();
	test_criteria();
	test_email_verified();
	test_groups_fetched();
	test_first_match();
	test_check();
	test_speed();
	test_route_token();
	return done_testing();
}
