/* SPDX-License-Identifier: ISC */
/*
 * router_test.c: the decisions of gateway/route/router.c that need no
 * request in flight: which paths are gatehouse's own endpoints and which
 * one each names, what a matched route (or no route table) makes of a
 * request, and the page each refusal of the parser or the method rule
 * gets.
 */
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "http/http1.h"
#include "policy.h"
#include "route/router.h"
#include "tap.h"

static void
test_auth_sub(void)
{
	is_str(router_auth_sub("/.auth/login", "/.auth"), "/login",
	    "an endpoint under the prefix");
	is_str(router_auth_sub("/.auth/login?x=1", "/.auth"), "/login?x=1",
	    "its query kept");
	is_str(router_auth_sub("/.auth", "/.auth"), "", "the prefix itself");
	is_str(router_auth_sub("/.auth?x", "/.auth"), "?x",
	    "the prefix with a query");
	ok(router_auth_sub("/.authx/login", "/.auth") == NULL,
	    "a longer first segment is the app's");
	ok(router_auth_sub("/app/.auth/login", "/.auth") == NULL,
	    "the prefix elsewhere in the path is the app's");
	ok(router_auth_sub("/.Auth/login", "/.auth") == NULL,
	    "the prefix is case-sensitive");
	is_str(router_auth_sub("/gh/me", "/gh"), "/me", "another prefix");
	ok(router_auth_sub("/.auth/me", "/gh") == NULL,
	    "/.auth is the app's under another prefix");
}

static void
test_endpoints(void)
{
	static const struct {
		const char *sub;
		enum router_endpoint ep;
	} t[] = {
	    {"/healthz", ROUTER_EP_HEALTHZ},
	    {"/login", ROUTER_EP_LOGIN},
	    {"/login?post_login_redirect_uri=/x", ROUTER_EP_LOGIN},
	    {"/logout", ROUTER_EP_LOGOUT},
	    {"/logout/complete", ROUTER_EP_LOGOUT_COMPLETE},
	    {"/logout/completed", ROUTER_EP_NONE},
	    {"/callback?code=a&state=b", ROUTER_EP_CALLBACK},
	    {"/me", ROUTER_EP_ME},
	    {"/refresh", ROUTER_EP_REFRESH},
	    {"/verify", ROUTER_EP_VERIFY},
	    {"/verify?rd=x", ROUTER_EP_VERIFY},
	    {"", ROUTER_EP_NONE},
	    {"/", ROUTER_EP_NONE},
	    {"?x", ROUTER_EP_NONE},
	    {"/mee", ROUTER_EP_NONE},
	    {"/m", ROUTER_EP_NONE},
	    {"/me/", ROUTER_EP_NONE},
	    {"/login/x", ROUTER_EP_NONE},
	    {"/Login", ROUTER_EP_NONE},
	    {"/healthz2", ROUTER_EP_NONE},
	    {"/verify;x", ROUTER_EP_NONE},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(router_endpoint_find(t[i].sub), t[i].ep,
		    "endpoint of %s",
		    t[i].sub[0] != '\0' ? t[i].sub : "(the prefix)");
}

static void
test_action(void)
{
	const char *lines[] = {"/public/* allow anonymous", "GET /api/* bearer",
	    "/admin/* allow role:Admin", "/closed deny",
	    "/* allow authenticated"};
	struct policy_table *t;
	struct gh_error err;
	struct config cfg;
	size_t i;

	memset(&cfg, 0, sizeof(cfg));
	is_int(router_action(&cfg, NULL), POLICY_ACTION_ANONYMOUS,
	    "no routes, no provider: anyone passes");
	cfg.cf_oidc_issuer = "https://op.example";
	is_int(router_action(&cfg, NULL), POLICY_ACTION_SIGNED_IN,
	    "no routes, a provider: sign-in");
	cfg.cf_oidc_issuer = NULL;
	cfg.cf_authority = "https://login.example/tenant";
	is_int(router_action(&cfg, NULL), POLICY_ACTION_SIGNED_IN,
	    "no routes, an Entra authority: sign-in");

	t = policy_table_new();
	for (i = 0; t != NULL && i < sizeof(lines) / sizeof(lines[0]); i++)
		if (policy_route_add(t, lines[i], (int)i + 1, &err) == -1)
			break;
	if (!ok(t != NULL && i == sizeof(lines) / sizeof(lines[0]),
	        "the route table builds"))
		goto done;
	is_int(router_action(&cfg, policy_match(t, "GET", "/public/a.css")),
	    POLICY_ACTION_ANONYMOUS, "a route's own action: anonymous");
	is_int(router_action(&cfg, policy_match(t, "GET", "/api/x")),
	    POLICY_ACTION_BEARER, "bearer");
	is_int(router_action(&cfg, policy_match(t, "POST", "/api/x")),
	    POLICY_ACTION_SIGNED_IN,
	    "another method falls through to the catch-all");
	is_int(router_action(&cfg, policy_match(t, "GET", "/admin/users")),
	    POLICY_ACTION_SIGNED_IN, "criteria: signed in first");
	is_int(router_action(&cfg, policy_match(t, "GET", "/closed")),
	    POLICY_ACTION_DENY, "deny");
	cfg.cf_authority = NULL;
	is_int(router_action(&cfg, policy_match(t, "GET", "/other")),
	    POLICY_ACTION_SIGNED_IN,
	    "a route's action holds without a provider too");
done:
	policy_table_free(t);
}

static void
test_refusals(void)
{
	static const struct {
		int status;
		const char *code;
		int close;
	} t[] = {
	    {405, "method_not_allowed", 0},
	    {413, "body_too_large", 1},
	    {414, "uri_too_long", 1},
	    {417, "expectation_failed", 1},
	    {431, "headers_too_large", 1},
	    {505, "http_version_not_supported", 1},
	    {400, "bad_request", 1},
	};
	const struct router_refusal *rr;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rr = router_refusal_find(t[i].status);
		ok(rr->rr_status == t[i].status &&
		        strcmp(rr->rr_code, t[i].code) == 0 &&
		        rr->rr_close == t[i].close && rr->rr_message[0] != '\0',
		    "%d: %s, %s", t[i].status, t[i].code,
		    t[i].close ? "closes" : "keeps the connection");
	}
	rr = router_refusal_find(418);
	ok(rr->rr_status == 400 && rr->rr_close,
	    "an unknown status is answered as 400, and closes");
	rr = router_refusal_find(0);
	ok(rr->rr_status == 400, "so is 0");

	/* The method rule before the table: what router_request refuses
	 * with 405. */
	ok(policy_method_valid("GET", 3) && policy_method_valid("PROPFIND", 8),
	    "upper-case tokens are routed methods");
	ok(!policy_method_valid("get", 3) && !policy_method_valid("G T", 3) &&
	        !policy_method_valid("", 0),
	    "lower case, spaces and nothing are refused with 405");
}

int
main(void)
{
	test_auth_sub();
	test_endpoints();
	test_action();
	test_refusals();
	return done_testing();
}
