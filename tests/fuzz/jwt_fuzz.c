/* SPDX-License-Identifier: ISC */
/*
 * jwt_fuzz.c: fuzz target for ID-token verification (gateway/oidc/jose.c
 * jose_verify, jose_peek_header) and JWKS parsing (gateway/oidc/jwks.c
 * jwks_parse, jwks_find).  A fixed key set (an RSA-2048 key "rsa1" for
 * RS256 and an EC P-256 key "ec1") is generated with cjose once, at the
 * first input.
 *
 * Every input is tried three ways:
 *  - as a compact JWT, verified against the fixed set (and against none);
 *  - as a JWKS document; when it parses, two valid tokens signed by the
 *    fixed keys are verified against it, so kid/alg/kty selection runs on
 *    hostile key sets;
 *  - when it holds a newline and the text before it is a JSON object: as
 *    "HEADER\nPAYLOAD", signed here with the fixed key the header's alg
 *    asks for (RS256 by default), so the claim checks behind the signature
 *    see hostile payloads.
 * Seeds: tests/corpus/jwt (tokens, and access-* header and payload pairs
 * for the access-token check), tests/corpus/jwks (key sets) and
 * tests/corpus/claims (header and payload pairs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <jansson.h>

#include "core/error.h"
#include "fuzz.h"
#include "oidc/jose.h"
#include "oidc/jwks.h"

#define FUZZ_ISS "https://op.example/v2.0"
#define FUZZ_CLIENT "client-1"
#define FUZZ_NONCE "n-0S6_WzA2Mj"
#define FUZZ_NOW 1700000100

static cjose_jwk_t *fuzz_rsa, *fuzz_ec;
static struct jwks *fuzz_keys;
static char *fuzz_tok_rsa, *fuzz_tok_ec;

static const char *const fuzz_auds[] = {FUZZ_CLIENT, "api://other"};
static const char *const fuzz_algs[] = {
    "RS256", "PS256", "ES256", "HS256", "none"};

/* A compact JWS of payload under the header object hdr (borrowed), or
 * NULL (a new string, free()). */
static char *
fuzz_jwt_sign(
    const cjose_jwk_t *k, json_t *hdr, const uint8_t *payload, size_t len)
{
	cjose_jws_t *jws;
	cjose_err cerr;
	const char *ser = NULL;
	char *out = NULL;

	jws = cjose_jws_sign(k, (cjose_header_t *)hdr, payload, len, &cerr);
	if (jws != NULL && cjose_jws_export(jws, &ser, &cerr))
		out = strdup(ser);
	cjose_jws_release(jws);
	return out;
}

static json_t *
fuzz_jwk_json(const cjose_jwk_t *k, const char *kid, const char *alg)
{
	cjose_err cerr;
	char *s;
	json_t *o;

	s = cjose_jwk_to_json(k, 0, &cerr);
	if (s == NULL)
		abort();
	o = json_loads(s, 0, NULL);
	cjose_get_dealloc()(s);
	if (o == NULL)
		abort();
	json_object_set_new(o, "kid", json_string(kid));
	json_object_set_new(o, "alg", json_string(alg));
	json_object_set_new(o, "use", json_string("sig"));
	return o;
}

static char *
fuzz_jwt_valid(const cjose_jwk_t *k, const char *alg, const char *kid)
{
	static const char claims[] =
	    "{\"iss\":\"" FUZZ_ISS "\",\"aud\":\"" FUZZ_CLIENT "\","
	    "\"sub\":\"user-1\",\"exp\":1700000400,\"iat\":1700000000,"
	    "\"nonce\":\"" FUZZ_NONCE "\"}";
	json_t *hdr;
	char *tok;

	hdr = json_pack("{s:s, s:s}", "alg", alg, "kid", kid);
	tok = fuzz_jwt_sign(k, hdr, (const uint8_t *)claims, strlen(claims));
	json_decref(hdr);
	if (tok == NULL)
		abort();
	return tok;
}

static void
fuzz_jwt_init(void)
{
	static const uint8_t e[] = {1, 0, 1};
	struct gh_error err;
	cjose_err cerr;
	json_t *doc;
	char *text;

	fuzz_rsa = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &cerr);
	fuzz_ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
	if (fuzz_rsa == NULL || fuzz_ec == NULL)
		abort();
	doc = json_pack("{s:[o,o]}", "keys",
	    fuzz_jwk_json(fuzz_rsa, "rsa1", "RS256"),
	    fuzz_jwk_json(fuzz_ec, "ec1", "ES256"));
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (text == NULL)
		abort();
	fuzz_keys = jwks_parse(text, strlen(text), &err);
	free(text);
	if (fuzz_keys == NULL || jwks_count(fuzz_keys) != 2) {
		fprintf(stderr, "jwt_fuzz: the fixed JWKS did not parse\n");
		abort();
	}
	fuzz_tok_rsa = fuzz_jwt_valid(fuzz_rsa, "RS256", "rsa1");
	fuzz_tok_ec = fuzz_jwt_valid(fuzz_ec, "ES256", "ec1");
}

/* The check the gateway makes on an ID token; a few knobs vary with the
 * input's length so the optional checks are reached too. */
static void
fuzz_jwt_check(struct jose_check *chk, size_t size)
{
	memset(chk, 0, sizeof(*chk));
	chk->jc_issuer = FUZZ_ISS;
	chk->jc_audiences = fuzz_auds;
	chk->jc_naudiences = 1 + (size & 1);
	chk->jc_client_id = (size & 2) ? NULL : FUZZ_CLIENT;
	chk->jc_nonce = (size & 4) ? NULL : FUZZ_NONCE;
	chk->jc_algs = (size & 8) ? NULL : fuzz_algs;
	chk->jc_nalgs =
	    (size & 8) ? 0 : sizeof(fuzz_algs) / sizeof(fuzz_algs[0]);
	chk->jc_now = FUZZ_NOW;
	chk->jc_skew = 60;
	chk->jc_require_iat = 1;
	chk->jc_max_iat_age = (size & 16) ? 3600 : 0;
}

static void
fuzz_jwt_verify(
    const char *jwt, const struct jwks *keys, const struct jose_check *chk)
{
	struct gh_error err;
	json_t *claims = NULL;
	enum jose_result r;

	memset(&err, 0, sizeof(err));
	r = jose_verify(jwt, keys, chk, &claims, &err);
	if ((r == JOSE_OK) != (claims != NULL) ||
	    (r != JOSE_OK && err.ge_code == NULL)) {
		fprintf(stderr, "jose_verify broke its contract\n");
		abort();
	}
	if (r == JOSE_OK) {
		(void)jose_claim_get(claims, "sub");
		(void)jose_claim_get(claims, "email");
		/* What bearer.c asks next. */
		memset(&err, 0, sizeof(err));
		if (jose_access_token_check(jwt, claims, &err) == -1 &&
		    err.ge_code == NULL) {
			fprintf(stderr,
			    "jose_access_token_check broke its "
			    "contract\n");
			abort();
		}
	}
	json_decref(claims);
}

static void
fuzz_jwt_jwks(const uint8_t *data, size_t size, const struct jose_check *chk)
{
	struct gh_error err;
	struct jwks *set;
	int amb;

	set = jwks_parse((const char *)data, size, &err);
	if (set == NULL)
		return;
	(void)jwks_count(set);
	(void)jwks_find(set, "rsa1", "RS256", &amb);
	(void)jwks_find(set, NULL, "ES256", &amb);
	fuzz_jwt_verify(fuzz_tok_rsa, set, chk);
	fuzz_jwt_verify(fuzz_tok_ec, set, chk);
	jwks_free(set);
}

static void
fuzz_jwt_signed(const uint8_t *data, size_t size, const struct jose_check *chk)
{
	const uint8_t *nl;
	const cjose_jwk_t *k;
	const char *alg;
	json_t *hdr, *a;
	char *tok;

	nl = memchr(data, '\n', size);
	if (nl == NULL)
		return;
	hdr = json_loadb((const char *)data, (size_t)(nl - data), 0, NULL);
	if (!json_is_object(hdr)) {
		json_decref(hdr);
		return;
	}
	a = json_object_get(hdr, "alg");
	if (!json_is_string(a))
		json_object_set_new(hdr, "alg", json_string("RS256"));
	alg = json_string_value(json_object_get(hdr, "alg"));
	k = alg != NULL && strncmp(alg, "ES", 2) == 0 ? fuzz_ec : fuzz_rsa;
	tok = fuzz_jwt_sign(k, hdr, nl + 1, size - (size_t)(nl + 1 - data));
	json_decref(hdr);
	if (tok != NULL)
		fuzz_jwt_verify(tok, fuzz_keys, chk);
	free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jose_check chk;
	char *s, *alg = NULL, *kid = NULL;

	if (fuzz_keys == NULL)
		fuzz_jwt_init();
	fuzz_jwt_check(&chk, size);

	s = fuzz_strndup(data, size);
	(void)jose_peek_header(s, &alg, &kid);
	free(alg);
	free(kid);
	fuzz_jwt_verify(s, fuzz_keys, &chk);
	fuzz_jwt_verify(s, NULL, &chk);
	free(s);

	fuzz_jwt_jwks(data, size, &chk);
	fuzz_jwt_signed(data, size, &chk);
	return 0;
}
