/* SPDX-License-Identifier: ISC */
/*
 * jose_test.c: tests for gateway/oidc/jose.c (ID token verification), with keys
 * generated at start, and a replay of the hostile inputs in
 * tests/corpus/jwt/ (run from the repository root).
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjose/cjose.h>
#include <jansson.h>

#include "core/error.h"
#include "corpus.h"
#include "oidc/jose.h"
#include "oidc/jwks.h"
#include "tap.h"

#define ISS "https://op.example/tenant/v2.0"
#define CLIENT "client-1"
#define NONCE "n-0S6_WzA2Mj"
#define CORPUS "tests/corpus/jwt"

static const uint8_t rsa_e[] = {1, 0, 1};
static const char *const aud_list[] = {CLIENT};
static time_t now;
static struct gh_error err;

/* A compact JWS over payload with the header given as JSON text. */
static char *
sign_raw(const cjose_jwk_t *k, const char *hdr_json, const char *payload)
{
	cjose_header_t *hdr = json_loads(hdr_json, 0, NULL);
	cjose_jws_t *jws;
	cjose_err cerr;
	const char *ser = NULL;
	char *out = NULL;

	jws = cjose_jws_sign(
	    k, hdr, (const uint8_t *)payload, strlen(payload), &cerr);
	if (jws != NULL && cjose_jws_export(jws, &ser, &cerr))
		out = strdup(ser);
	cjose_jws_release(jws);
	json_decref(hdr);
	if (out == NULL)
		printf("# signing failed: %s\n", cerr.message);
	return out;
}

/* Sign the claims object (reference taken). */
static char *
sign(const cjose_jwk_t *k, const char *hdr_json, json_t *claims)
{
	char *text = json_dumps(claims, JSON_COMPACT), *out;

	json_decref(claims);
	out = sign_raw(k, hdr_json, text);
	free(text);
	return out;
}

static json_t *
claims_base(void)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", ISS, "aud",
	    CLIENT, "sub", "user-42", "exp", (json_int_t)now + 300, "iat",
	    (json_int_t)now - 5, "nonce", NONCE);
}

static void
check_init(struct jose_check *chk)
{
	memset(chk, 0, sizeof(*chk));
	chk->jc_issuer = ISS;
	chk->jc_audiences = aud_list;
	chk->jc_naudiences = 1;
	chk->jc_client_id = CLIENT;
	chk->jc_nonce = NONCE;
	chk->jc_now = now;
	chk->jc_skew = 60;
	chk->jc_require_iat = 1;
}

/* Verify; frees jwt.  On failure, the message must not quote the token. */
static enum jose_result
run(char *jwt, const struct jwks *keys, const struct jose_check *chk)
{
	enum jose_result r;
	json_t *claims = NULL;
	size_t len = jwt != NULL ? strlen(jwt) : 0;
	char head[17], tail[17];

	memset(&err, 0, sizeof(err));
	r = jose_verify(jwt, keys, chk, &claims, &err);
	if (r == JOSE_OK) {
		if (claims == NULL ||
		    strcmp(jose_claim_get(claims, "sub"), "user-42") != 0)
			r = JOSE_INVALID; /* make the caller's test fail */
	} else {
		if (claims != NULL || err.ge_code == NULL)
			r = JOSE_OK; /* likewise */
		if (len >= 16) {
			memcpy(head, jwt, 16);
			head[16] = '\0';
			memcpy(tail, jwt + len - 16, 16);
			tail[16] = '\0';
			if (strstr(err.ge_msg, head) != NULL ||
			    strstr(err.ge_msg, tail) != NULL) {
				printf("# message quotes the token: %s\n",
				    err.ge_msg);
				r = JOSE_OK;
			}
		}
	}
	json_decref(claims);
	free(jwt);
	return r;
}

#define refused(r, code, ...)                                                  \
	do {                                                                   \
		enum jose_result r_ = (r);                                     \
		ok(r_ == JOSE_INVALID && err.ge_code != NULL &&                \
		        strcmp(err.ge_code, (code)) == 0,                      \
		    __VA_ARGS__);                                              \
		if (r_ != JOSE_INVALID || err.ge_code == NULL ||               \
		    strcmp(err.ge_code, (code)) != 0)                          \
			printf("#   result %d code %s (%s), want %s\n", r_,    \
			    err.ge_code ? err.ge_code : "(null)", err.ge_msg,  \
			    (code));                                           \
	} while (0)

static json_t *
jwk_json(const cjose_jwk_t *k, const char *kid, const char *alg)
{
	cjose_err cerr;
	char *s = cjose_jwk_to_json(k, 0, &cerr);
	json_t *o = json_loads(s, 0, NULL);

	cjose_get_dealloc()(s);
	if (kid != NULL)
		json_object_set_new(o, "kid", json_string(kid));
	if (alg != NULL)
		json_object_set_new(o, "alg", json_string(alg));
	return o;
}

static struct jwks *
keyset(json_t *k1, json_t *k2, json_t *k3)
{
	json_t *doc = json_pack("{s:[]}", "keys"), *arr;
	struct jwks *keys;
	struct gh_error perr;
	char *text;

	arr = json_object_get(doc, "keys");
	json_array_append_new(arr, k1);
	if (k2 != NULL)
		json_array_append_new(arr, k2);
	if (k3 != NULL)
		json_array_append_new(arr, k3);
	text = json_dumps(doc, JSON_COMPACT);
	keys = jwks_parse(text, strlen(text), &perr);
	free(text);
	json_decref(doc);
	return keys;
}

/* Replace the part `idx` (0..2) of jwt with repl; frees jwt. */
static char *
swap_part(char *jwt, int idx, const char *repl)
{
	char *p[3], *out;
	size_t n;

	p[0] = jwt;
	p[1] = strchr(p[0], '.') + 1;
	p[2] = strchr(p[1], '.') + 1;
	p[1][-1] = p[2][-1] = '\0';
	p[idx] = (char *)repl;
	n = strlen(p[0]) + strlen(p[1]) + strlen(p[2]) + 3;
	out = malloc(n);
	snprintf(out, n, "%s.%s.%s", p[0], p[1], p[2]);
	free(jwt);
	return out;
}

static void
test_claims(const cjose_jwk_t *r1, const struct jwks *keys)
{
	struct jose_check chk;
	const char *H = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";
	const char *aud2[] = {"other-api", CLIENT};
	json_t *c;

	check_init(&chk);
	is_int(run(sign(r1, H, claims_base()), keys, &chk), JOSE_OK,
	    "good token passes");

	c = claims_base();
	json_object_set_new(c, "iss", json_string("https://evil.example/"));
	refused(run(sign(r1, H, c), keys, &chk), "iss_mismatch", "wrong iss");
	c = claims_base();
	json_object_set_new(c, "iss", json_string(ISS "/"));
	refused(run(sign(r1, H, c), keys, &chk), "iss_mismatch",
	    "iss with a trailing slash");
	c = claims_base();
	json_object_del(c, "iss");
	refused(run(sign(r1, H, c), keys, &chk), "iss_mismatch", "iss missing");

	c = claims_base();
	json_object_set_new(c, "aud", json_string("other-client"));
	refused(run(sign(r1, H, c), keys, &chk), "aud_mismatch", "wrong aud");
	c = claims_base();
	json_object_del(c, "aud");
	refused(run(sign(r1, H, c), keys, &chk), "aud_mismatch", "aud missing");
	c = claims_base();
	json_object_set_new(c, "aud", json_pack("[s]", CLIENT));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "aud array with only client_id passes");
	c = claims_base();
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", CLIENT));
	json_object_set_new(c, "azp", json_string(CLIENT));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "aud array containing client_id, azp = client passes");
	c = claims_base();
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", CLIENT));
	refused(run(sign(r1, H, c), keys, &chk), "azp_missing",
	    "several audiences without azp");
	c = claims_base();
	json_object_set_new(c, "aud", json_pack("[s,i]", CLIENT, 5));
	refused(run(sign(r1, H, c), keys, &chk), "aud_mismatch",
	    "aud array with a non-string");
	c = claims_base();
	json_object_set_new(c, "aud", json_pack("[]"));
	refused(
	    run(sign(r1, H, c), keys, &chk), "aud_mismatch", "empty aud array");
	c = claims_base();
	json_object_set_new(c, "azp", json_string("other-client"));
	refused(run(sign(r1, H, c), keys, &chk), "azp_mismatch",
	    "azp mismatch with a single aud");
	c = claims_base();
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", CLIENT));
	json_object_set_new(c, "azp", json_string("other"));
	refused(run(sign(r1, H, c), keys, &chk), "azp_mismatch",
	    "azp mismatch with several audiences");
	chk.jc_audiences = aud2;
	chk.jc_naudiences = 2;
	c = claims_base();
	json_object_set_new(c, "aud", json_string("other-api"));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "any of several expected audiences passes");
	check_init(&chk);

	c = claims_base();
	json_object_set_new(c, "exp", json_integer(now - 120));
	refused(run(sign(r1, H, c), keys, &chk), "expired", "expired");
	c = claims_base();
	json_object_set_new(c, "exp", json_integer(now - 30));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "expired within the skew passes");
	c = claims_base();
	json_object_set_new(c, "exp", json_integer(now - 60));
	refused(run(sign(r1, H, c), keys, &chk), "expired",
	    "now == exp + skew is expired");
	c = claims_base();
	json_object_del(c, "exp");
	refused(run(sign(r1, H, c), keys, &chk), "exp_missing", "no exp");
	c = claims_base();
	json_object_set_new(c, "exp", json_string("4102444800"));
	refused(
	    run(sign(r1, H, c), keys, &chk), "exp_missing", "exp as a string");

	c = claims_base();
	json_object_set_new(c, "nbf", json_integer(now + 120));
	refused(
	    run(sign(r1, H, c), keys, &chk), "nbf_future", "nbf in the future");
	c = claims_base();
	json_object_set_new(c, "nbf", json_integer(now + 30));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "nbf within the skew passes");

	c = claims_base();
	json_object_set_new(c, "iat", json_integer(now + 120));
	refused(run(sign(r1, H, c), keys, &chk), "iat_future",
	    "iat in the future beyond the skew");
	c = claims_base();
	json_object_del(c, "iat");
	refused(run(sign(r1, H, c), keys, &chk), "iat_missing",
	    "iat missing when required");
	chk.jc_require_iat = 0;
	c = claims_base();
	json_object_del(c, "iat");
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "iat missing when not required passes");
	chk.jc_max_iat_age = 600;
	c = claims_base();
	json_object_set_new(c, "iat", json_integer(now - 3600));
	refused(run(sign(r1, H, c), keys, &chk), "iat_too_old",
	    "iat older than max_iat_age");
	check_init(&chk);

	c = claims_base();
	json_object_del(c, "nonce");
	refused(
	    run(sign(r1, H, c), keys, &chk), "nonce_missing", "nonce missing");
	c = claims_base();
	json_object_set_new(c, "nonce", json_string(NONCE "x"));
	refused(
	    run(sign(r1, H, c), keys, &chk), "nonce_mismatch", "wrong nonce");
	c = claims_base();
	json_object_set_new(c, "nonce", json_integer(1));
	refused(run(sign(r1, H, c), keys, &chk), "nonce_mismatch",
	    "nonce not a string");
	chk.jc_nonce = NULL;
	c = claims_base();
	json_object_del(c, "nonce");
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "nonce not checked when the caller has none");
	check_init(&chk);

	c = claims_base();
	json_object_del(c, "sub");
	refused(run(sign(r1, H, c), keys, &chk), "sub_missing", "sub missing");
	c = claims_base();
	json_object_set_new(c, "sub", json_string(""));
	refused(run(sign(r1, H, c), keys, &chk), "sub_missing", "sub empty");
	c = claims_base();
	json_object_set_new(c, "sub", json_integer(42));
	refused(
	    run(sign(r1, H, c), keys, &chk), "sub_missing", "sub not a string");

	chk.jc_issuer = NULL;
	refused(run(sign(r1, H, claims_base()), keys, &chk), "config",
	    "no issuer configured fails closed");
	check_init(&chk);
	chk.jc_naudiences = 0;
	refused(run(sign(r1, H, claims_base()), keys, &chk), "config",
	    "no audience configured fails closed");
}

/* Entra's tid rule: the tenant the issuer names. */
static void
test_tid(const cjose_jwk_t *r1, const struct jwks *keys)
{
	static const char tid[] = "8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60";
	const char *H = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";
	struct jose_check chk;
	json_t *c;

	check_init(&chk);
	c = claims_base();
	json_object_set_new(c, "tid", json_string("another-tenant"));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "tid not checked when the issuer names no tenant");
	chk.jc_tid = tid;
	is_int(run(sign(r1, H, claims_base()), keys, &chk), JOSE_OK,
	    "no tid accepted when it is not required (a generic provider)");
	c = claims_base();
	json_object_set_new(c, "tid", json_string(tid));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK, "the issuer's tid");
	c = claims_base();
	json_object_set_new(
	    c, "tid", json_string("8A6A6E1F-4C3B-4D2E-9F10-1B2C3D4E5F60"));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK,
	    "the issuer's tid in upper case (a GUID)");
	c = claims_base();
	json_object_set_new(
	    c, "tid", json_string("8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f61"));
	refused(run(sign(r1, H, c), keys, &chk), "tid_mismatch",
	    "another tenant's tid");
	ok(strstr(err.ge_msg, "5f61") != NULL && strstr(err.ge_msg, tid),
	    "the message names both tenants: %s", err.ge_msg);
	c = claims_base();
	json_object_set_new(c, "tid", json_integer(1));
	refused(run(sign(r1, H, c), keys, &chk), "tid_mismatch",
	    "a tid that is not a string");
	c = claims_base();
	json_object_set_new(c, "tid", json_string(""));
	refused(
	    run(sign(r1, H, c), keys, &chk), "tid_mismatch", "an empty tid");
	chk.jc_tid_required = 1;
	refused(run(sign(r1, H, claims_base()), keys, &chk), "tid_missing",
	    "no tid where the provider is Entra");
	c = claims_base();
	json_object_set_new(c, "tid", json_string(tid));
	is_int(run(sign(r1, H, c), keys, &chk), JOSE_OK, "required and equal");
}

static void
test_algs(const cjose_jwk_t *r1, const cjose_jwk_t *r2, const cjose_jwk_t *ec,
    const struct jwks *keys)
{
	struct jose_check chk;
	const char *hs[] = {"RS256", "HS256"};
	const char *rs_es[] = {"RS256", "ES256", "PS256", "none"};
	cjose_jwk_t *oct;
	cjose_err cerr;
	json_t *pub;
	char *text, *jwt, *payload;
	size_t n;

	check_init(&chk);

	/* alg none, hand-built: never accepted, even when listed. */
	jwt = sign(r1, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", claims_base());
	payload = strdup(strchr(jwt, '.') + 1);
	*strchr(payload, '.') = '\0';
	free(jwt);
	n = strlen(payload) + 64;
	jwt = malloc(n);
	snprintf(jwt, n, "eyJhbGciOiJub25lIn0.%s.", payload);
	refused(run(jwt, keys, &chk), "alg_not_allowed", "alg none");
	chk.jc_algs = rs_es;
	chk.jc_nalgs = 4;
	jwt = malloc(n);
	snprintf(jwt, n, "eyJhbGciOiJub25lIn0.%s.", payload);
	refused(run(jwt, keys, &chk), "alg_not_allowed",
	    "alg none even when the caller lists it");
	free(payload);

	/* HS256 keyed with the RSA public key: the classic confusion. */
	chk.jc_algs = hs;
	chk.jc_nalgs = 2;
	pub = jwk_json(r1, "rsa1", NULL);
	text = json_dumps(pub, JSON_COMPACT);
	json_decref(pub);
	oct = cjose_jwk_create_oct_spec(
	    (const uint8_t *)text, strlen(text), &cerr);
	free(text);
	refused(run(sign(oct, "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}",
	                claims_base()),
	            keys, &chk),
	    "alg_not_allowed", "HS256 with the public JWK as secret");
	cjose_jwk_release(oct);
	pub = jwk_json(r1, NULL, NULL);
	oct = cjose_jwk_create_oct_spec(
	    (const uint8_t *)json_string_value(json_object_get(pub, "n")),
	    strlen(json_string_value(json_object_get(pub, "n"))), &cerr);
	json_decref(pub);
	refused(
	    run(sign(oct, "{\"alg\":\"HS256\"}", claims_base()), keys, &chk),
	    "alg_not_allowed", "HS256 with the modulus as secret, no kid");
	cjose_jwk_release(oct);

	/* Only what the allowlist names. */
	check_init(&chk);
	refused(
	    run(sign(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims_base()),
	        keys, &chk),
	    "alg_not_allowed", "ES256 refused by the default list");
	chk.jc_algs = rs_es;
	chk.jc_nalgs = 4;
	is_int(
	    run(sign(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims_base()),
	        keys, &chk),
	    JOSE_OK, "ES256 with the EC key passes when allowed");
	refused(
	    run(sign(r1, "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", claims_base()),
	        keys, &chk),
	    "alg_kty_mismatch", "kid of the EC key with alg RS256");
	refused(
	    run(sign(r1, "{\"alg\":\"PS256\",\"kid\":\"rsa1\"}", claims_base()),
	        keys, &chk),
	    "alg_kty_mismatch", "PS256 with a key published for RS256");
	refused(
	    run(sign(r1, "{\"alg\":\"PS256\",\"kid\":\"rsa2\"}", claims_base()),
	        keys, &chk),
	    "signature", "PS256 signed by rsa1 does not verify under rsa2");
	is_int(
	    run(sign(r2, "{\"alg\":\"PS256\",\"kid\":\"rsa2\"}", claims_base()),
	        keys, &chk),
	    JOSE_OK, "PS256 passes when allowed and the key has no alg");
}

static void
test_keys(const cjose_jwk_t *r1, const cjose_jwk_t *r2, const struct jwks *keys,
    const struct jwks *one)
{
	struct jose_check chk;
	const char *H = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";

	check_init(&chk);
	memset(&err, 0, sizeof(err));
	is_int(run(sign(r1, "{\"alg\":\"RS256\",\"kid\":\"rotated\"}",
	               claims_base()),
	           keys, &chk),
	    JOSE_KID_UNKNOWN, "unknown kid: JOSE_KID_UNKNOWN");
	is_str(err.ge_code, "kid_unknown", "unknown kid code");
	is_int(run(sign(r1, H, claims_base()), NULL, &chk), JOSE_KID_UNKNOWN,
	    "no key set yet: JOSE_KID_UNKNOWN");
	is_int(run(sign(r1, "{\"alg\":\"RS256\"}", claims_base()), one, &chk),
	    JOSE_OK, "no kid, one key: passes");
	refused(run(sign(r1, "{\"alg\":\"RS256\"}", claims_base()), keys, &chk),
	    "kid_ambiguous", "no kid, two RSA keys: ambiguous");
	refused(run(sign(r2, H, claims_base()), keys, &chk), "signature",
	    "signed by another key than kid names");
	is_int(
	    run(sign(r2, "{\"alg\":\"RS256\",\"kid\":\"rsa2\"}", claims_base()),
	        keys, &chk),
	    JOSE_OK, "second key verifies its own token");
}

static void
test_shape(const cjose_jwk_t *r1, const struct jwks *keys)
{
	struct jose_check chk;
	const char *H = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";
	const char *forbidden[] = {
	    "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"jku\":\"https://a.example/"
	    "k\"}",
	    "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"x5u\":\"https://a.example/"
	    "c\"}",
	    "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"x5c\":[\"MIIB\"]}",
	    "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"b64\"],\"b64\":"
	    "true}",
	    "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"jwk\":{\"kty\":\"RSA\"}}",
	};
	char *jwt, *big, *p, *other;
	json_t *c;
	size_t i;

	check_init(&chk);
	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		refused(run(sign(r1, forbidden[i], claims_base()), keys, &chk),
		    "header_key_forbidden",
		    "validly signed header %zu with "
		    "jwk/jku/x5u/x5c/crit",
		    i);

	/* Signature bytes changed in the middle. */
	jwt = sign(r1, H, claims_base());
	p = strrchr(jwt, '.') + 20;
	*p = *p == 'A' ? 'B' : 'A';
	refused(run(jwt, keys, &chk), "signature", "bad signature");
	/* Payload swapped for another, validly encoded one. */
	c = claims_base();
	json_object_set_new(c, "sub", json_string("admin"));
	other = sign(r1, H, c);
	p = strdup(strchr(other, '.') + 1);
	*strchr(p, '.') = '\0';
	free(other);
	refused(run(swap_part(sign(r1, H, claims_base()), 1, p), keys, &chk),
	    "signature", "payload swapped");
	free(p);

	jwt = sign(r1, H, claims_base());
	p = strchr(jwt, '.') + 3;
	*p = '+';
	refused(
	    run(jwt, keys, &chk), "malformed", "base64 with '+' in payload");
	jwt = sign(r1, H, claims_base());
	jwt[2] = '/';
	refused(run(jwt, keys, &chk), "malformed", "base64 with '/' in header");
	jwt = sign(r1, H, claims_base());
	*strrchr(jwt, '.') = '\0';
	refused(run(jwt, keys, &chk), "malformed", "two parts");
	jwt = sign(r1, H, claims_base());
	big = malloc(strlen(jwt) + 8);
	sprintf(big, "%s.AAAA", jwt);
	free(jwt);
	refused(run(big, keys, &chk), "malformed", "four parts");
	refused(run(sign_raw(r1, H, "this is not json"), keys, &chk),
	    "malformed", "signed non-JSON payload");
	refused(run(sign_raw(r1, H, "[\"iss\",\"sub\"]"), keys, &chk),
	    "malformed", "signed payload that is an array");
	refused(run(sign_raw(r1, H,
	                "{\"iss\":\"x\",\"iss\":\"" ISS "\",\"sub\":\"s\"}"),
	            keys, &chk),
	    "malformed", "payload with a duplicate claim");
	refused(
	    run(swap_part(sign(r1, H, claims_base()), 0, "WzFd"), keys, &chk),
	    "malformed", "header is an array");
	refused(run(swap_part(sign(r1, H, claims_base()), 0,
	                "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEifQ=="),
	            keys, &chk),
	    "malformed", "header with base64 padding");
	refused(run(strdup(""), keys, &chk), "malformed", "empty string");
	refused(run(NULL, keys, &chk), "malformed", "NULL token");

	big = malloc(20001);
	memset(big, 'A', 20000);
	big[20000] = '\0';
	c = claims_base();
	json_object_set_new(c, "pad", json_string(big));
	free(big);
	refused(run(sign(r1, H, c), keys, &chk), "too_large",
	    "validly signed 20 KiB token");
	big = malloc(64 * 1024 + 1);
	memset(big, 'A', 64 * 1024);
	big[10] = big[20] = '.';
	big[64 * 1024] = '\0';
	refused(run(big, keys, &chk), "too_large", "64 KiB junk");
}

static void
test_peek(const cjose_jwk_t *r1)
{
	char *alg = NULL, *kid = NULL, *jwt;
	json_t *c;

	jwt = sign(r1, "{\"alg\":\"RS256\",\"kid\":\"k-9\"}", claims_base());
	ok(jose_peek_header(jwt, &alg, &kid) == 0, "peek a header");
	is_str(alg, "RS256", "peeked alg");
	is_str(kid, "k-9", "peeked kid");
	free(alg);
	free(kid);
	free(jwt);
	ok(jose_peek_header("e30.e30.", &alg, &kid) == 0 && alg == NULL &&
	        kid == NULL,
	    "peek a header without alg and kid");
	ok(jose_peek_header("e30.e30", &alg, &kid) == -1 && alg == NULL,
	    "peek two parts");
	ok(jose_peek_header(NULL, &alg, NULL) == -1, "peek NULL");
	c = json_pack("{s:s,s:i}", "a", "b", "n", 1);
	is_str(jose_claim_get(c, "a"), "b", "claim string");
	ok(jose_claim_get(c, "n") == NULL, "claim not a string");
	ok(jose_claim_get(c, "x") == NULL, "claim absent");
	ok(jose_claim_get(NULL, "a") == NULL, "claims NULL");
	json_decref(c);
}

struct corpus_ctx {
	const cjose_jwk_t *r1;
	const struct jwks *keys;
	struct jose_check chk;
	int n;
};

static void
refuse_file(const char *name, char *buf, size_t len, void *arg)
{
	struct corpus_ctx *cx = arg;
	enum jose_result r;

	/* run() frees the token it is given; the walker frees buf. */
	r = run(strndup(buf, len), cx->keys, &cx->chk);
	ok(r != JOSE_OK, "corpus %s refused (%s)", name,
	    err.ge_code != NULL ? err.ge_code : "-");
	cx->n++;
}

/* Every hostile token in the corpus is refused, and nothing crashes. */
static void
test_corpus(const struct jwks *keys)
{
	const char *algs[] = {"RS256", "PS256", "ES256", "HS256", "none"};
	struct corpus_ctx cx;

	/* The corpus claims match these, so only the attack can refuse. */
	memset(&cx, 0, sizeof(cx));
	cx.keys = keys;
	check_init(&cx.chk);
	cx.chk.jc_issuer = "https://op.example/v2.0";
	cx.chk.jc_now = 1700000100;
	cx.chk.jc_algs = algs;
	cx.chk.jc_nalgs = 5;
	if (!ok(test_corpus_walk(CORPUS, refuse_file, &cx) != -1, "open %s",
	        CORPUS))
		return;
	ok(cx.n >= 10, "corpus holds %d files", cx.n);
}

/*
 * The access-* files of tests/corpus/jwt: "HEADER\nPAYLOAD", signed here
 * with rsa1, verified as bearer.c does (no azp or nonce check), then
 * jose_access_token_check.  A file without a row fails.
 */
static const struct {
	const char *file;
	const char *code; /* "ok", or jose_access_token_check's code */
} access_expect[] = {
    {"access-id-token-at-hash", "not_access_token"},
    {"access-id-token-c-hash", "not_access_token"},
    {"access-id-token-no-scope-no-roles", "not_access_token"},
    {"access-id-token-nonce", "not_access_token"},
    {"access-roles-empty", "not_access_token"},
    {"access-scp-blank", "not_access_token"},
    {"access-scp-not-string", "not_access_token"},
    {"access-typ-at-jwt-suffix", "not_access_token"},
    {"access-typ-id-token", "not_access_token"},
    {"access-typ-logout-token", "not_access_token"},
    {"access-typ-not-string", "not_access_token"},
    {"access-valid-no-typ-roles", "ok"},
    {"access-valid-typ-application-at-jwt-upper", "ok"},
    {"access-valid-typ-at-jwt", "ok"},
    {"access-valid-typ-jwt-scp", "ok"},
};

static void
access_file(const char *name, char *buf, size_t len, void *arg)
{
	const size_t nrows = sizeof(access_expect) / sizeof(access_expect[0]);
	struct corpus_ctx *cx = arg;
	json_t *claims;
	const char *want, *got;
	char *nl, *jwt;
	size_t i;

	(void)len;
	if (strncmp(name, "access-", 7) != 0)
		return;
	cx->n++;
	for (i = 0, want = NULL; i < nrows; i++)
		if (strcmp(access_expect[i].file, name) == 0)
			want = access_expect[i].code;
	if (!ok(want != NULL, "%s has a verdict", name))
		return;
	nl = strchr(buf, '\n');
	if (!ok(nl != NULL, "%s is HEADER\\nPAYLOAD", name))
		return;
	*nl = '\0';
	jwt = sign_raw(cx->r1, buf, nl + 1);
	claims = NULL;
	memset(&err, 0, sizeof(err));
	if (jose_verify(jwt, cx->keys, &cx->chk, &claims, &err) != JOSE_OK) {
		ok(0, "%s verifies (%s)", name, err.ge_msg);
		free(jwt);
		return;
	}
	got = jose_access_token_check(jwt, claims, &err) == 0 ? "ok"
	                                                      : err.ge_code;
	is_str(got, want, "access corpus %s", name);
	json_decref(claims);
	free(jwt);
}

static void
test_access_corpus(const cjose_jwk_t *r1, const struct jwks *keys)
{
	const size_t nrows = sizeof(access_expect) / sizeof(access_expect[0]);
	struct corpus_ctx cx;

	memset(&cx, 0, sizeof(cx));
	cx.r1 = r1;
	cx.keys = keys;
	check_init(&cx.chk);
	cx.chk.jc_issuer = "https://op.example/v2.0";
	cx.chk.jc_now = 1700000100;
	cx.chk.jc_client_id = NULL;
	cx.chk.jc_nonce = NULL;
	if (test_corpus_walk(CORPUS, access_file, &cx) == -1)
		return;
	is_int(cx.n, (long long)nrows, "every access row has its file");
}

static void
test_access(const cjose_jwk_t *r1, const struct jwks *keys)
{
	struct jose_check chk;
	json_t *c, *claims = NULL;
	char *jwt;

	check_init(&chk);
	chk.jc_client_id = NULL;
	chk.jc_nonce = NULL;
	/* This app's own ID token: same iss and aud as its API's tokens. */
	c = claims_base();
	json_object_set_new(c, "roles", json_pack("[s]", "Admin"));
	jwt =
	    sign(r1, "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"JWT\"}", c);
	ok(jose_verify(jwt, keys, &chk, &claims, &err) == JOSE_OK,
	    "an ID token verifies as a JWT");
	ok(jose_access_token_check(jwt, claims, &err) == -1 &&
	        strcmp(err.ge_code, "not_access_token") == 0 &&
	        strstr(err.ge_msg, "nonce") != NULL,
	    "but is no access token: it carries nonce");
	json_decref(claims);
	claims = NULL;
	free(jwt);
	/* The same claims as an access token. */
	c = claims_base();
	json_object_del(c, "nonce");
	json_object_set_new(c, "scp", json_string("api.read"));
	jwt = sign(r1, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", c);
	ok(jose_verify(jwt, keys, &chk, &claims, &err) == JOSE_OK &&
	        jose_access_token_check(jwt, claims, &err) == 0,
	    "without nonce, with scp and no typ: an access token");
	ok(jose_access_token_check(NULL, claims, &err) == -1 &&
	        strcmp(err.ge_code, "malformed") == 0,
	    "no JWT: refused");
	ok(jose_access_token_check(jwt, NULL, &err) == -1,
	    "no claims: refused");
	ok(jose_access_token_check("a.b", claims, &err) == -1,
	    "two parts: refused");
	json_decref(claims);
	free(jwt);
}

int
main(void)
{
	cjose_jwk_t *r1, *r2, *ec;
	struct jwks *keys, *one;
	cjose_err cerr;

	now = time(NULL);
	r1 = cjose_jwk_create_RSA_random(2048, rsa_e, sizeof(rsa_e), &cerr);
	r2 = cjose_jwk_create_RSA_random(2048, rsa_e, sizeof(rsa_e), &cerr);
	ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
	if (r1 == NULL || r2 == NULL || ec == NULL) {
		printf("Bail out! cjose key generation failed\n");
		return 1;
	}
	keys = keyset(jwk_json(r1, "rsa1", "RS256"), jwk_json(r2, "rsa2", NULL),
	    jwk_json(ec, "ec1", NULL));
	one = keyset(jwk_json(r1, NULL, NULL), NULL, NULL);
	if (keys == NULL || one == NULL) {
		printf("Bail out! test JWKS did not parse\n");
		return 1;
	}

	test_claims(r1, keys);
	test_tid(r1, keys);
	test_algs(r1, r2, ec, keys);
	test_keys(r1, r2, keys, one);
	test_shape(r1, keys);
	test_peek(r1);
	test_corpus(keys);
	test_access(r1, keys);
	test_access_corpus(r1, keys);

	jwks_free(keys);
	jwks_free(one);
	cjose_jwk_release(r1);
	cjose_jwk_release(r2);
	cjose_jwk_release(ec);
	return done_testing();
}
