/* SPDX-License-Identifier: ISC */
/* identity_test.c: the identity block, its token lines, the user name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/crypto.h"
#include "session/identity.h"
#include "tap.h"

static void
test_block(void)
{
	json_error_t jerr;
	json_t *c;
	char *b;

	c = json_loads("{\"sub\":\"s1\",\"preferred_username\":\"a\\u0001b\","
	               "\"email\":\"e@x\",\"email_verified\":false}",
	    0, &jerr);
	b = c != NULL ? identity_block(c, 0) : NULL;
	ok(b != NULL && strncmp(b, "X-Forwarded-User: a?b\r\n", 23) == 0,
	    "user first, a control character replaced");
	ok(b != NULL && strstr(b, "X-Forwarded-Email") == NULL,
	    "an unverified email is not sent");
	ok(b != NULL && strstr(b, "\r\nX-MS-CLIENT-PRINCIPAL: ") != NULL,
	    "the Easy Auth principal");
	free(b);
	b = c != NULL ? identity_block(c, 1) : NULL;
	ok(b != NULL && strstr(b, "X-Forwarded-Email: e@x\r\n") != NULL,
	    "an unverified email with trust_unverified_email");
	free(b);
	is_str(identity_user(c), "a\001b", "user name: preferred_username");
	json_object_del(c, "preferred_username");
	is_str(identity_user(c), "e@x", "then the email, even unverified");
	json_object_del(c, "email");
	is_str(identity_user(c), "s1", "then sub");
	json_decref(c);
}

/* X-MS-CLIENT-PRINCIPAL-IDP of a block for an issuer. */
static int
idp_is(const char *iss, const char *want)
{
	json_t *c = json_pack("{s:s,s:s}", "sub", "s", "iss", iss);
	char *b = c != NULL ? identity_block(c, 0) : NULL, line[300];
	int r;

	snprintf(line, sizeof(line), "X-MS-CLIENT-PRINCIPAL-IDP: %s\r\n", want);
	r = b != NULL && strstr(b, line) != NULL;
	free(b);
	json_decref(c);
	return r;
}

static void
test_idp(void)
{
	ok(idp_is("https://8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60.ciamlogin.com/"
	          "8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60/v2.0",
	       "aad"),
	    "External ID: aad");
	ok(idp_is("https://login.microsoftonline.com/"
	          "8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60/v2.0",
	       "aad"),
	    "workforce: aad");
	ok(idp_is("https://login.contoso.com/"
	          "8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60/v2.0",
	       "aad"),
	    "a custom URL domain (Entra's issuer shape): aad");
	ok(idp_is("https://keycloak.example.org/realms/main",
	       "keycloak.example.org"),
	    "another provider: its issuer's host");
	ok(idp_is("https://evilciamlogin.com/x", "evilciamlogin.com"),
	    "a host merely ending in ciamlogin.com is not Entra");
}

static void
test_tokens(void)
{
	struct secret at = {NULL, 0};
	char *h, t[32];

	identity_iso_time(0, t, sizeof(t));
	is_str(t, "1970-01-01T00:00:00Z", "ISO 8601 time");
	h = identity_tokens("X-Forwarded-User: u\r\n", NULL, 0, 1);
	is_str(h, "X-Forwarded-User: u\r\n", "no token: the block alone");
	free(h);
	h = identity_tokens("X-Forwarded-User: u\r\n", &at, 0, 1);
	is_str(h, "X-Forwarded-User: u\r\n", "an empty token: the block alone");
	free(h);
	ok(crypto_secret_set(&at, "tok", 3) == 0, "token");
	h = identity_tokens("X-Forwarded-User: u\r\n", &at, 86400, 0);
	is_str(h,
	    "X-Forwarded-User: u\r\n"
	    "X-MS-TOKEN-AAD-ACCESS-TOKEN: tok\r\n"
	    "X-MS-TOKEN-AAD-EXPIRES-ON: 1970-01-02T00:00:00Z\r\n",
	    "the token lines after the block");
	free(h);
	h = identity_tokens("", &at, 86400, 1);
	is_str(h,
	    "X-MS-TOKEN-AAD-ACCESS-TOKEN: tok\r\n"
	    "X-MS-TOKEN-AAD-EXPIRES-ON: 1970-01-02T00:00:00Z\r\n"
	    "Authorization: Bearer tok\r\n",
	    "and Authorization when asked for");
	free(h);
	crypto_secret_cleanup(&at);
}

int
main(void)
{
	test_block();
	test_idp();
	test_tokens();
	return done_testing();
}
