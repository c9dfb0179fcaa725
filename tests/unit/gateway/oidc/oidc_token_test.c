/* SPDX-License-Identifier: ISC */
/*
 * oidc_token_test.c: gateway/oidc/oidc_token.c reading token endpoint answers
 * (which tokens may be kept and put in a header) and the provider's
 * token_endpoint_auth_methods_supported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "oidc/http_client.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "tap.h"

#define JWT "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"

/* Parse a 200 answer whose body is `body`; the status, and t cleaned. */
static int
parse(const char *body, struct oidc_tokens *t)
{
	struct httpc_result res;
	struct gh_error err;
	const char *code = NULL;
	int st;

	memset(&res, 0, sizeof(res));
	res.hr_status = HTTPC_OK;
	res.hr_code = 200;
	res.hr_body = body;
	res.hr_len = strlen(body);
	memset(&err, 0, sizeof(err));
	st = oidc_tokens_parse(&res, t, &code, &err);
	if (st != 0 && (code == NULL || strcmp(code, "provider_error") != 0))
		st = -1;
	/* Never the token in the message for the log. */
	if (st != 0 && strstr(err.ge_msg, "evil") != NULL)
		st = -2;
	return st;
}

/* The status for an answer with access_token set to the JSON text `at`. */
static int
parse_access(const char *at_json)
{
	struct oidc_tokens t;
	char *body = NULL;
	int st;

	if (asprintf(&body,
	        "{\"access_token\":%s,\"token_type\":\"Bearer\","
	        "\"expires_in\":3600,\"id_token\":\"" JWT "\"}",
	        at_json) == -1)
		return -3;
	st = parse(body, &t);
	oidc_tokens_cleanup(&t);
	free(body);
	return st;
}

static void
test_access_token(void)
{
	static const char *const good[] = {"\"" JWT "\"", "\"abc\"",
	    "\"a-b._~+/c\"", "\"abc=\"", "\"abc==\"", "\"EwB+/ab0==\""};
	static const char *const bad[] = {"\"abc\\r\\nX-evil: 1\"",
	    "\"abc\\nX-evil: 1\"", "\"abc\\rX\"", "\"ab c\"", "\" abc\"",
	    "\"abc\\t\"", "\"abc\\u007f\"", "\"abc\\u0085\"", "\"abc\\u00e9\"",
	    "\"ab=c\"", "\"=abc\"", "\"abc=d=\"", "\"a\\\"b\"", "\"a,b\"",
	    "\"a;b\"", "\"a:b\"", "\"a\\\\b\""};
	struct oidc_tokens t;
	size_t i;
	char *big;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		is_int(
		    parse_access(good[i]), 0, "access_token %s kept", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(parse_access(bad[i]), 502, "access_token %s refused",
		    bad[i]);
	/* An encoded NUL never gets this far: jansson refuses the text. */
	is_int(parse_access("\"abc\\u0000evil\""), 502,
	    "access_token with a NUL refused");
	big = malloc(OIDC_TOKEN_MAX + 4);
	if (big == NULL)
		return;
	memset(big, 'A', OIDC_TOKEN_MAX + 3);
	big[0] = '"';
	big[OIDC_TOKEN_MAX + 1] = '"';
	big[OIDC_TOKEN_MAX + 2] = '\0';
	is_int(parse_access(big), 0, "access_token of OIDC_TOKEN_MAX kept");
	big[OIDC_TOKEN_MAX + 1] = 'A';
	big[OIDC_TOKEN_MAX + 2] = '"';
	big[OIDC_TOKEN_MAX + 3] = '\0';
	is_int(parse_access(big), 502, "one byte longer refused");
	free(big);
	/* A refused answer leaves nothing behind. */
	is_int(parse("{\"access_token\":\"a\\r\\nb\",\"refresh_token\":\"r\"}",
	           &t),
	    502, "refused answer");
	ok(t.ot_access == NULL && t.ot_refresh == NULL && t.ot_idtoken == NULL,
	    "a refused answer keeps no token");
}

static void
test_other_tokens(void)
{
	struct oidc_tokens t;

	is_int(
	    parse("{\"access_token\":\"a\",\"refresh_token\":\"0.A b~!\"}", &t),
	    0, "refresh_token of VSCHARs (a space too) kept");
	is_str(t.ot_refresh, "0.A b~!", "as it came");
	oidc_tokens_cleanup(&t);
	is_int(
	    parse("{\"access_token\":\"a\",\"refresh_token\":\"r\\r\\nevil\"}",
	        &t),
	    502, "refresh_token with CR LF refused");
	is_int(parse("{\"access_token\":\"a\",\"refresh_token\":\"r\\u00e9\"}",
	           &t),
	    502, "refresh_token with non-ASCII refused");
	is_int(parse("{\"access_token\":\"a\",\"id_token\":\"" JWT "\"}", &t),
	    0, "id_token of base64url parts kept");
	oidc_tokens_cleanup(&t);
	is_int(parse("{\"access_token\":\"a\",\"id_token\":\"" JWT "+\"}", &t),
	    502, "id_token with '+' refused");
	is_int(
	    parse("{\"access_token\":\"a\",\"id_token\":\"" JWT "\\r\\nevil\"}",
	        &t),
	    502, "id_token with CR LF refused");
	is_int(
	    parse("{\"access_token\":\"a\",\"id_token\":\"" JWT "&x=y\"}", &t),
	    502, "id_token with a URL delimiter refused");
}

static unsigned int
methods(const char *json)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	unsigned int bits = oidc_token_auth_parse(v);

	json_decref(v);
	return bits;
}

static void
test_auth_methods(void)
{
	is_int(oidc_token_auth_parse(NULL), 0, "absent: not listed");
	is_int(methods("\"client_secret_basic\""), 0, "not an array");
	is_int(methods("[]"), 0, "empty: as absent");
	is_int(methods("[\"client_secret_basic\"]"),
	    OIDC_TAM_LISTED | OIDC_TAM_BASIC, "basic");
	is_int(methods("[\"client_secret_post\"]"),
	    OIDC_TAM_LISTED | OIDC_TAM_POST, "post");
	is_int(methods("[\"client_secret_post\",\"private_key_jwt\","
	               "\"client_secret_basic\"]"),
	    OIDC_TAM_LISTED | OIDC_TAM_POST | OIDC_TAM_BASIC |
	        OIDC_TAM_PRIVATE_KEY_JWT,
	    "Entra's list");
	is_int(methods("[\"none\"]"), OIDC_TAM_LISTED | OIDC_TAM_NONE, "none");
	is_int(methods("[\"tls_client_auth\", 7, null]"), OIDC_TAM_LISTED,
	    "listed, none known");
	is_int(methods("[\"Client_Secret_Basic\"]"), OIDC_TAM_LISTED,
	    "names are case-sensitive");
}

/* A refusal with `status` and `body`: the status gatehouse answers, *code
 * and the message. */
static int
refusal(long status, const char *body, const char **code, struct gh_error *err)
{
	struct httpc_result res;
	struct oidc_tokens t;
	int st;

	memset(&res, 0, sizeof(res));
	res.hr_status = HTTPC_OK;
	res.hr_code = status;
	res.hr_body = body;
	res.hr_len = strlen(body);
	memset(err, 0, sizeof(*err));
	*code = NULL;
	st = oidc_tokens_parse(&res, &t, code, err);
	oidc_tokens_cleanup(&t);
	return st;
}

static void
test_refusals(void)
{
	const char *entra =
	    "{\"error\":\"invalid_client\",\"error_description\":"
	    "\"AADSTS700027: Client assertion contains an invalid signature. "
	    "user@contoso.com\",\"error_codes\":[700027],"
	    "\"timestamp\":\"2026-01-09 02:02:12Z\","
	    "\"trace_id\":\"0000aaaa-11bb-cccc-dd22-eeeeee333333\","
	    "\"correlation_id\":\"aaaa0000-bb11-2222-33cc-444444dddddd\"}";
	const char *code;
	struct gh_error err;
	long status;

	/* Entra answers invalid_client with 401; RFC 6749 also allows 400. */
	for (status = 400; status <= 401; status++) {
		is_int(refusal(status, entra, &code, &err), 502,
		    "invalid_client (%ld) is the gateway's own problem: 502",
		    status);
		is_str(code, "invalid_client", "its code");
		ok(strstr(err.ge_msg, "client credentials") != NULL &&
		        strstr(err.ge_msg, " AADSTS700027 ") != NULL &&
		        strstr(err.ge_msg,
		            "trace_id=0000aaaa-11bb-cccc-dd22-eeeeee333333") !=
		            NULL &&
		        strstr(err.ge_msg,
		            "correlation_id=aaaa0000-bb11-2222-"
		            "33cc-444444dddddd") != NULL,
		    "the message says so, with the code and the ids: %s",
		    err.ge_msg);
		ok(strstr(err.ge_msg, "user@") == NULL &&
		        strstr(err.ge_msg, "invalid signature") == NULL,
		    "never the description (it may hold user data)");
	}
	is_int(refusal(400,
	           "{\"error\":\"invalid_grant\",\"error_codes\":[70008],"
	           "\"trace_id\":\"x\\r\\nInjected: 1\","
	           "\"correlation_id\":12}",
	           &code, &err),
	    401, "invalid_grant: the provider refused the person's grant");
	is_str(code, "token_refused", "its code");
	is_str(err.ge_msg, "token endpoint refused: invalid_grant AADSTS70008",
	    "hostile ids are left out, the number kept");
	is_int(refusal(400, "{\"error\":\"invalid_grant\"}", &code, &err), 401,
	    "a refusal without Entra's members");
	is_str(err.ge_msg, "token endpoint refused: invalid_grant",
	    "nothing added");
}

int
main(void)
{
	test_access_token();
	test_other_tokens();
	test_auth_methods();
	test_refusals();
	return done_testing();
}
