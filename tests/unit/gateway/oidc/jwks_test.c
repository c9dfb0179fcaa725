/* SPDX-License-Identifier: ISC */
/* jwks_test.c: tests for gateway/oidc/jwks.c (key set parsing and lookup). */

#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <jansson.h>

#include "core/error.h"
#include "oidc/jwks.h"
#include "tap.h"

static const uint8_t rsa_e[] = {1, 0, 1};

/* The public (or private) JWK of k as a jansson object, with extras. */
static json_t *
jwk_json(const cjose_jwk_t *k, int priv, const char *kid, const char *use,
    const char *alg)
{
	cjose_err cerr;
	char *s = cjose_jwk_to_json(k, priv, &cerr);
	json_t *o = json_loads(s, 0, NULL);

	cjose_get_dealloc()(s);
	if (kid != NULL)
		json_object_set_new(o, "kid", json_string(kid));
	if (use != NULL)
		json_object_set_new(o, "use", json_string(use));
	if (alg != NULL)
		json_object_set_new(o, "alg", json_string(alg));
	return o;
}

/* Parse {"keys":[...]} made of the given objects (references taken). */
static struct jwks *
parse_keys(struct gh_error *err, json_t *k1, json_t *k2, json_t *k3)
{
	json_t *doc = json_pack("{s:[]}", "keys"), *arr;
	struct jwks *keys;
	char *text;

	arr = json_object_get(doc, "keys");
	if (k1 != NULL)
		json_array_append_new(arr, k1);
	if (k2 != NULL)
		json_array_append_new(arr, k2);
	if (k3 != NULL)
		json_array_append_new(arr, k3);
	text = json_dumps(doc, JSON_COMPACT);
	memset(err, 0, sizeof(*err));
	keys = jwks_parse(text, strlen(text), err);
	free(text);
	json_decref(doc);
	return keys;
}

int
main(void)
{
	cjose_jwk_t *r1, *r2, *ec, *small, *oct;
	struct jwks *keys;
	struct gh_error err;
	cjose_err cerr;
	const cjose_jwk_t *k, *k2;
	int amb;
	json_t *o;

	r1 = cjose_jwk_create_RSA_random(2048, rsa_e, sizeof(rsa_e), &cerr);
	r2 = cjose_jwk_create_RSA_random(2048, rsa_e, sizeof(rsa_e), &cerr);
	ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
	small = cjose_jwk_create_RSA_random(1024, rsa_e, sizeof(rsa_e), &cerr);
	oct = cjose_jwk_create_oct_random(32, &cerr);
	if (r1 == NULL || r2 == NULL || ec == NULL || small == NULL ||
	    oct == NULL) {
		printf("Bail out! cjose key generation failed\n");
		return 1;
	}

	/* A normal set: two RSA keys and one EC key. */
	keys = parse_keys(&err, jwk_json(r1, 0, "rsa1", "sig", "RS256"),
	    jwk_json(r2, 0, "rsa2", NULL, NULL),
	    jwk_json(ec, 0, "ec1", "sig", NULL));
	ok(keys != NULL, "three public keys parse");
	is_int(jwks_count(keys), 3, "three keys kept");
	k = jwks_find(keys, "rsa1", "RS256", &amb);
	ok(k != NULL && amb == 0, "find by kid");
	ok(jwks_key_compatible(keys, k, "RS256"), "rsa1 suits RS256");
	ok(!jwks_key_compatible(keys, k, "PS256"),
	    "rsa1 published for RS256 does not suit PS256");
	ok(!jwks_key_compatible(keys, k, "HS256"), "nothing suits HS256");
	k2 = jwks_find(keys, "rsa2", "RS256", &amb);
	ok(k2 != NULL && k2 != k, "second kid is another key");
	ok(jwks_key_compatible(keys, k2, "PS256"),
	    "rsa2 without alg suits PS256");
	k = jwks_find(keys, "ec1", "RS256", &amb);
	ok(k != NULL && amb == 0, "a kid names its key even for a foreign alg");
	ok(!jwks_key_compatible(keys, k, "RS256"), "EC key never suits RS256");
	ok(jwks_key_compatible(keys, k, "ES256"), "P-256 key suits ES256");
	ok(!jwks_key_compatible(keys, k, "ES384"), "P-256 key not ES384");
	k = jwks_find(keys, "nope", "RS256", &amb);
	ok(k == NULL && amb == 0, "unknown kid: NULL, not ambiguous");
	k = jwks_find(keys, NULL, "RS256", &amb);
	ok(k == NULL && amb == 1, "no kid, two RSA keys: ambiguous");
	k = jwks_find(keys, NULL, "ES256", &amb);
	ok(k != NULL && amb == 0, "no kid, one EC key: found");
	k = jwks_find(keys, NULL, "none", &amb);
	ok(k == NULL && amb == 0, "alg none finds nothing");
	ok(!jwks_alg_supported("none") && !jwks_alg_supported("HS256") &&
	        jwks_alg_supported("RS256") && jwks_alg_supported("ES256"),
	    "alg support list");
	jwks_free(keys);

	/* No kid, a single RSA key. */
	keys = parse_keys(&err, jwk_json(r1, 0, NULL, NULL, NULL), NULL, NULL);
	ok(keys != NULL && jwks_count(keys) == 1, "key without kid parses");
	ok(jwks_find(keys, NULL, "RS256", &amb) != NULL && amb == 0,
	    "no kid, one key: found");
	ok(jwks_find(keys, "rsa1", "RS256", &amb) == NULL,
	    "a kid never matches a key without one");
	jwks_free(keys);

	/* Two keys share a kid: pick by alg, or refuse to guess. */
	keys = parse_keys(&err, jwk_json(r1, 0, "same", NULL, NULL),
	    jwk_json(ec, 0, "same", NULL, NULL), NULL);
	ok(jwks_find(keys, "same", "ES256", &amb) != NULL && amb == 0,
	    "shared kid resolved by alg");
	jwks_free(keys);
	keys = parse_keys(&err, jwk_json(r1, 0, "same", NULL, NULL),
	    jwk_json(r2, 0, "same", NULL, NULL), NULL);
	ok(jwks_find(keys, "same", "RS256", &amb) == NULL && amb == 1,
	    "shared kid, both RSA: ambiguous");
	jwks_free(keys);

	/* Unusable keys are skipped; the rest stays. */
	keys =
	    parse_keys(&err, jwk_json(r1, 1, "priv", NULL, NULL), NULL, NULL);
	ok(keys == NULL, "key with private members skipped");
	is_str(err.ge_code, "jwks_empty", "code jwks_empty");
	keys =
	    parse_keys(&err, jwk_json(r2, 0, "enc", "enc", NULL), NULL, NULL);
	ok(keys == NULL, "use=enc key skipped");
	keys = parse_keys(
	    &err, jwk_json(small, 0, "small", NULL, NULL), NULL, NULL);
	ok(keys == NULL, "1024-bit RSA key skipped");
	keys = parse_keys(&err, jwk_json(r1, 1, "priv", NULL, NULL),
	    jwk_json(r2, 0, "enc", "enc", NULL),
	    jwk_json(r2, 0, "sig", "sig", "PS256"));
	ok(keys != NULL && jwks_count(keys) == 1 &&
	        jwks_find(keys, "sig", "PS256", &amb) != NULL,
	    "the usable key survives beside skipped ones");
	jwks_free(keys);
	keys = parse_keys(&err, jwk_json(oct, 1, "oct", NULL, NULL),
	    jwk_json(ec, 0, "ec-rs", NULL, "RS256"),
	    jwk_json(r1, 0, "good", NULL, NULL));
	ok(keys != NULL && jwks_count(keys) == 1,
	    "oct key and EC key for RS256 skipped, good key kept");
	ok(jwks_find(keys, "oct", "HS256", &amb) == NULL, "oct key absent");
	ok(jwks_find(keys, "good", "RS256", &amb) != NULL, "good key found");
	jwks_free(keys);

	o = jwk_json(r1, 0, "ops", NULL, NULL);
	json_object_set_new(o, "key_ops", json_pack("[s]", "encrypt"));
	keys = parse_keys(&err, o, NULL, NULL);
	ok(keys == NULL, "key_ops without verify skipped");
	o = jwk_json(r1, 0, NULL, NULL, NULL);
	json_object_set_new(o, "kid", json_integer(7));
	keys = parse_keys(&err, o, NULL, NULL);
	ok(keys == NULL, "non-string kid skipped");
	o = jwk_json(r1, 0, "bad-n", NULL, NULL);
	json_object_set_new(o, "n", json_string("AQAB"));
	keys = parse_keys(&err, o, NULL, NULL);
	ok(keys == NULL, "tiny modulus skipped");
	o = jwk_json(ec, 0, "bad-ec", NULL, NULL);
	json_object_set_new(o, "x", json_string("AAAA"));
	keys = parse_keys(&err, o, NULL, NULL);
	ok(keys == NULL, "EC key that cjose cannot import skipped");

	/* Documents that are not a key set. */
	keys = parse_keys(&err, NULL, NULL, NULL);
	ok(keys == NULL, "empty keys array refused");
	is_str(err.ge_code, "jwks_empty", "empty set code");
	memset(&err, 0, sizeof(err));
	keys = jwks_parse("{\"keys\":{}}", 11, &err);
	ok(keys == NULL, "keys not an array refused");
	is_str(err.ge_code, "jwks_malformed", "malformed code");
	keys = jwks_parse("not json", 8, &err);
	ok(keys == NULL, "non-JSON refused");
	keys = jwks_parse("[]", 2, &err);
	ok(keys == NULL, "array document refused");
	keys = jwks_parse("", 0, &err);
	ok(keys == NULL, "empty document refused");
	keys = jwks_parse(NULL, 0, NULL);
	ok(keys == NULL, "NULL document refused without err");
	ok(jwks_find(NULL, "x", "RS256", &amb) == NULL && amb == 0,
	    "find in NULL set");
	is_int(jwks_count(NULL), 0, "count of NULL set");
	jwks_free(NULL);

	cjose_jwk_release(r1);
	cjose_jwk_release(r2);
	cjose_jwk_release(ec);
	cjose_jwk_release(small);
	cjose_jwk_release(oct);
	return done_testing();
}
