/* SPDX-License-Identifier: ISC */
/*
 * jose_corpus_test.c: the defined outcome of every file in
 * tests/corpus/claims.  Each file is "HEADER\nPAYLOAD": signed here
 * with a fresh key of the kind the header's alg names, exactly as
 * tests/fuzz/jwt_fuzz.c does, then verified; the result must be the one
 * the table below gives.  A corpus file without a row fails, so a new
 * attack comes with its expected verdict.  Run from the repository root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <jansson.h>

#include "core/error.h"
#include "corpus.h"
#include "oidc/jose.h"
#include "oidc/jwks.h"
#include "tap.h"

#define CORPUS "tests/corpus/claims"

/* The file's name and the gh_error code it must give ("ok" = JOSE_OK). */
static const struct {
	const char *file;
	const char *code;
} expect[] = {
    {"aud-array-empty", "aud_mismatch"},
    {"aud-array-mixed", "aud_mismatch"},
    {"aud-array-other", "aud_mismatch"},
    {"aud-multi-no-azp", "azp_missing"},
    {"aud-number", "aud_mismatch"},
    {"azp-mismatch", "azp_mismatch"},
    {"azp-not-string", "azp_mismatch"},
    {"baseline-valid", "ok"},
    {"exp-float", "ok"},
    {"exp-huge", "ok"},
    {"exp-missing", "exp_missing"},
    {"exp-negative", "expired"},
    {"exp-overflow-with-skew", "ok"},
    {"exp-string", "exp_missing"},
    {"expired", "expired"},
    {"header-crit", "header_key_forbidden"},
    {"header-es256-rsa-kid", "alg_kty_mismatch"},
    {"header-es256-valid", "ok"},
    {"header-jku", "header_key_forbidden"},
    {"header-jwk-embedded", "header_key_forbidden"},
    {"header-kid-number", "malformed"},
    {"header-kid-unknown", "kid_unknown"},
    {"header-no-kid", "ok"},
    {"header-ps256-rs256-key", "alg_kty_mismatch"},
    {"header-rs256-ec-kid", "alg_kty_mismatch"},
    {"header-typ-odd", "ok"},
    {"iat-future", "iat_future"},
    {"iat-missing", "iat_missing"},
    {"iat-negative-huge", "ok"},
    {"iss-array", "iss_mismatch"},
    {"iss-case", "iss_mismatch"},
    {"iss-nul", "malformed"},
    {"iss-trailing-slash", "iss_mismatch"},
    {"nbf-future", "nbf_future"},
    {"nbf-string", "nbf_future"},
    {"nonce-mismatch", "nonce_mismatch"},
    {"nonce-missing", "nonce_missing"},
    {"nonce-number", "nonce_mismatch"},
    {"payload-array", "malformed"},
    {"payload-duplicate-exp", "malformed"},
    {"payload-duplicate-iss", "malformed"},
    {"payload-empty", "malformed"},
    {"payload-nested-deep", "malformed"},
    {"payload-not-json", "malformed"},
    {"payload-nul-byte", "malformed"},
    {"payload-trailing-garbage", "malformed"},
    {"sub-empty", "sub_missing"},
    {"sub-missing", "sub_missing"},
    {"sub-object", "sub_missing"},
};

static const char *const auds[] = {"client-1"};
static const char *const algs[] = {"RS256", "PS256", "ES256"};

static json_t *
jwk_json(const cjose_jwk_t *k, const char *kid, const char *alg)
{
	cjose_err cerr;
	char *s = cjose_jwk_to_json(k, 0, &cerr);
	json_t *o = s != NULL ? json_loads(s, 0, NULL) : NULL;

	cjose_get_dealloc()(s);
	json_object_set_new(o, "kid", json_string(kid));
	json_object_set_new(o, "alg", json_string(alg));
	return o;
}

static const char *
expected(const char *file)
{
	size_t i;

	for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		if (strcmp(expect[i].file, file) == 0)
			return expect[i].code;
	return NULL;
}

/* Sign the file's header and payload; new string, or NULL. */
static char *
sign_file(
    const char *buf, size_t len, const cjose_jwk_t *rsa, const cjose_jwk_t *eck)
{
	const char *nl = memchr(buf, '\n', len), *alg, *ser = NULL;
	cjose_jws_t *jws = NULL;
	cjose_err cerr;
	json_t *hdr;
	char *out = NULL;

	if (nl == NULL)
		return NULL;
	hdr = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
	alg = json_string_value(json_object_get(hdr, "alg"));
	if (alg != NULL)
		jws = cjose_jws_sign(strncmp(alg, "ES", 2) == 0 ? eck : rsa,
		    hdr, (const uint8_t *)nl + 1, len - (size_t)(nl + 1 - buf),
		    &cerr);
	if (jws != NULL && cjose_jws_export(jws, &ser, &cerr))
		out = strdup(ser);
	cjose_jws_release(jws);
	json_decref(hdr);
	return out;
}

struct corpus_ctx {
	const struct jwks *keys;
	const cjose_jwk_t *rsa, *eck;
	struct jose_check chk;
};

static void
check_file(const char *name, char *buf, size_t len, void *arg)
{
	struct corpus_ctx *cx = arg;
	struct gh_error err;
	enum jose_result r;
	json_t *claims;
	const char *want, *got;
	char *jwt;

	want = expected(name);
	if (!ok(want != NULL, "%s has an expected verdict", name))
		return;
	jwt = sign_file(buf, len, cx->rsa, cx->eck);
	if (!ok(jwt != NULL, "%s signs", name))
		return;
	memset(&err, 0, sizeof(err));
	claims = NULL;
	r = jose_verify(jwt, cx->keys, &cx->chk, &claims, &err);
	got = r == JOSE_OK ? "ok" : (err.ge_code ? err.ge_code : "-");
	is_str(got, want, "corpus %s", name);
	json_decref(claims);
	free(jwt);
}

static void
test_corpus(
    const struct jwks *keys, const cjose_jwk_t *rsa, const cjose_jwk_t *eck)
{
	struct corpus_ctx cx;

	memset(&cx, 0, sizeof(cx));
	cx.keys = keys;
	cx.rsa = rsa;
	cx.eck = eck;
	cx.chk.jc_issuer = "https://op.example/v2.0";
	cx.chk.jc_audiences = auds;
	cx.chk.jc_naudiences = 1;
	cx.chk.jc_client_id = "client-1";
	cx.chk.jc_nonce = "n-0S6_WzA2Mj";
	cx.chk.jc_algs = algs;
	cx.chk.jc_nalgs = 3;
	cx.chk.jc_now = 1700000100;
	cx.chk.jc_skew = 60;
	cx.chk.jc_require_iat = 1;
	test_corpus_table(
	    CORPUS, check_file, &cx, sizeof(expect) / sizeof(expect[0]));
}

int
main(void)
{
	static const uint8_t e[] = {1, 0, 1};
	cjose_jwk_t *rsa, *eck;
	struct gh_error err;
	struct jwks *keys = NULL;
	cjose_err cerr;
	json_t *doc;
	char *text;

	rsa = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &cerr);
	eck = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
	if (rsa == NULL || eck == NULL) {
		printf("Bail out! cjose key generation failed\n");
		return 1;
	}
	doc = json_pack("{s:[o,o]}", "keys", jwk_json(rsa, "rsa1", "RS256"),
	    jwk_json(eck, "ec1", "ES256"));
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (text != NULL)
		keys = jwks_parse(text, strlen(text), &err);
	free(text);
	if (!ok(keys != NULL, "the test JWKS parses"))
		return done_testing();
	test_corpus(keys, rsa, eck);
	jwks_free(keys);
	cjose_jwk_release(rsa);
	cjose_jwk_release(eck);
	return done_testing();
}
