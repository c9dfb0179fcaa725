/* SPDX-License-Identifier: ISC */
/* oidc_login_test.c: return-URL validation, and the redirect corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "corpus.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "tap.h"

/* A configuration with only what oidc_target_or_root reads. */
static struct config
cfg_with(const char *prefix, const char *callback)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.cf_auth_prefix = (char *)prefix;
	c.cf_callback_path = (char *)callback;
	return c;
}

/*
 * Return paths that lead back to gatehouse's own endpoints, in any number
 * of percent-encodings, become "/"; the app's own paths are kept.
 */
static void
test_own_endpoints(void)
{
	static const char *const ours[] = {"/.auth/logout", "/.auth",
	    "/.auth?x=1", "/.auth#x", "/%2Eauth/logout", "/%2eauth/logout",
	    "/%252Eauth/logout", "/%252eauth/logout", "/%25252Eauth/logout",
	    "/%2525252Eauth/logout", "/.%61uth/logout", "/%2E%61%75%74%68/me",
	    "/.AUTH/logout", "/%252EAUTH/logout", "/.auth;x/logout",
	    "/.auth%2Flogout", "/.auth%252Flogout", "/signin-oidc",
	    "/%73ignin-oidc", "/%2573ignin-oidc?code=x",
	    "/.auth/login?"
	    "post_login_redirect_uri=/x"};
	static const char *const refused[] = {"/%5C.auth/logout",
	    "/%255C.auth/logout", "/\\.auth/logout", "//.auth/logout",
	    "/x/../.auth/logout", "/x/%2E%2E/.auth/logout",
	    "/x/%252E%252E/.auth/logout"};
	static const char *const kept[] = {"/", "/app", "/.authx",
	    "/.auth-docs/x", "/a/.auth/logout", "/%2Eauthx", "/x?next=/.auth",
	    "/caf%C3%A9", "/a%20b"};
	struct config c = cfg_with("/.auth", "/signin-oidc");
	struct config g = cfg_with("/gh/auth", NULL);
	size_t i;

	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		is_str(
		    oidc_target_or_root(&c, ours[i]), "/", "ours: %s", ours[i]);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		is_str(oidc_target_or_root(&c, refused[i]), "/", "refused: %s",
		    refused[i]);
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		is_str(oidc_target_or_root(&c, kept[i]), kept[i], "kept: %s",
		    kept[i]);
	/* The configured prefix is what counts, in every encoding, and
	 * with its inner slash doubled (the router collapses it). */
	is_str(oidc_target_or_root(&g, "/gh/auth/logout"), "/",
	    "configured prefix");
	is_str(oidc_target_or_root(&g, "/gh/%2561uth/logout"), "/",
	    "configured prefix, double-encoded");
	is_str(oidc_target_or_root(&g, "/gh//auth/logout"), "/",
	    "configured prefix, doubled slash");
	is_str(oidc_target_or_root(&g, "/GH/Auth/me"), "/",
	    "configured prefix, other case");
	is_str(oidc_target_or_root(&g, "/.auth/logout"), "/.auth/logout",
	    "/.auth is the app's when the prefix is elsewhere");
	is_str(oidc_target_or_root(&c, NULL), "/", "NULL is /");
}

/* Absolute URLs of this gateway's own origin name their path; any other
 * origin (host, scheme or port) stays refused. */
static void
test_same_origin(void)
{
	struct config c = cfg_with("/.auth", "/.auth/callback");
	const char *o = "http://gw.example:8080";

	c.cf_public_base = (char *)"https://app.example";
	is_str(oidc_target_or_root(&c, "https://app.example/x?y=1"), "/x?y=1",
	    "public base");
	is_str(oidc_target_or_root(&c, "https://APP.example:443/x"), "/x",
	    "public base, default port written, host case");
	is_str(oidc_target_or_root(&c, "https://app.example/.auth/logout"), "/",
	    "same origin, but gatehouse's own endpoint");
	is_str(oidc_target_or_root(&c, "https://app.example//evil"), "/",
	    "same origin, protocol-relative path");
	is_str(oidc_target_or_root(&c, "https://app.example"), "/", "no path");
	is_str(oidc_target_or_root(&c, "http://app.example/x"), "/",
	    "other scheme");
	is_str(oidc_target_or_root(&c, "https://app.example:8443/x"), "/",
	    "other port");
	is_str(oidc_target_or_root(&c, "https://app.example.evil/x"), "/",
	    "other host");
	is_str(oidc_target_or_root(&c, "https://app.example@evil/x"), "/",
	    "user information");
	is_str(oidc_target_or_root(&c, "https://app.example\\@evil/x"), "/",
	    "backslash in the authority");
	ok(oidc_target_check(&c, o, "http://gw.example:8080/p") != NULL &&
	        strcmp(oidc_target_check(&c, o, "http://gw.example:8080/p"),
	            "/p") == 0,
	    "the request's own origin");
	ok(oidc_target_check(&c, o, "http://gw.example:8081/p") == NULL,
	    "the request's host, another port");
	ok(oidc_target_check(&c, o, "http://gw.example:8080/%2F/evil") == NULL,
	    "fixed-point decoding applies to the path");
}

static void
test_table(void)
{
	static const char *const safe[] = {"/", "/a", "/a/b?c=d&e=%2F",
	    "/a%20b", "/%7Euser", "/x#frag", "/.well-known/x", "/a/.b",
	    "/a..b"};
	static const char *const unsafe[] = {"", "a", "//evil", "///evil",
	    "/\\evil", "\\\\evil", "https://evil/", "https:evil",
	    "javascript:alert(1)", "data:text/html,x", "/%2F/evil",
	    "/%2f%2fevil", "/%252F%252Fevil", "/%25252F%25252Fevil", "/%5Cevil",
	    "/%5cevil", "/\t/evil", "/%09/evil", "/a\r\nb", "/a%0d%0ab", " /a",
	    "/a b", "/%zz", "/%", "@evil", "/a/../b", "/./x", "/%2e%2e//evil",
	    "/a/..", "/%E2%80%AE" /* fine bytes: kept below */};
	size_t i;

	for (i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
		ok(oidc_redirect_safe(safe[i]), "safe: %s", safe[i]);
	/* The last one is a valid local path with an encoded code point;
	 * everything before it must be refused. */
	for (i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]) - 1; i++)
		ok(!oidc_redirect_safe(unsafe[i]), "refused: %s", unsafe[i]);
	ok(oidc_redirect_safe("/%E2%80%AE"), "encoded non-ASCII path kept");
	ok(!oidc_redirect_safe(NULL), "NULL refused");
}

static void
refuse_file(const char *name, char *buf, size_t len, void *arg)
{
	struct config c = cfg_with("/.auth", "/.auth/callback");
	int *count = arg;

	/* An embedded NUL is itself hostile: the C string stops early, so
	 * compare lengths too. */
	ok(strlen(buf) != len || strcmp(oidc_target_or_root(&c, buf), "/") == 0,
	    "corpus %s refused", name);
	(*count)++;
}

/* Every file in tests/corpus/redirect is an attack: all must be refused
 * (become "/"), whether by shape or because they lead back to gatehouse. */
static void
test_corpus(void)
{
	const char *dir = "tests/corpus/redirect";
	int count = 0;

	if (!ok(test_corpus_walk(dir, refuse_file, &count) != -1,
	        "corpus directory %s", dir))
		return;
	ok(count >= 15, "corpus has %d files", count);
}

int
main(void)
{
	test_table();
	test_own_endpoints();
	test_same_origin();
	test_corpus();
	return done_testing();
}
