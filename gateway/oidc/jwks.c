/* SPDX-License-Identifier: ISC */
/*
 * jwks.c: parse a JSON Web Key Set into cjose public keys and pick the key
 * that verifies a given JWS header.  No I/O here.
 */

#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <jansson.h>

#include "core/crypto.h"
#include "core/error.h"
#include "oidc/jwks.h"

#define JWKS_RSA_MAX_BITS 8192 /* bounds the cost of one verification */

struct jwks_key {
	char *jk_kid;              /* NULL when the key has none */
	char *jk_alg;              /* NULL when the key has none */
	cjose_jwk_kty_t jk_kty;    /* RSA or EC */
	cjose_jwk_ec_curve jk_crv; /* EC only */
	cjose_jwk_t *jk_jwk;       /* owned: one reference */
};

struct jwks {
	struct jwks_key *jw_keys;
	size_t jw_n;
};

/* The asymmetric signature algs gatehouse verifies, and their key types. */
static const struct jwks_alg {
	const char *ja_name;
	cjose_jwk_kty_t ja_kty;
	cjose_jwk_ec_curve ja_crv; /* EC only */
} jwks_algs[] = {
    {"RS256", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"RS384", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"RS512", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"PS256", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"PS384", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"PS512", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"ES256", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_256},
    {"ES384", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_384},
    {"ES512", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_521},
};

/* Members that only a private or symmetric key carries. */
/* 0 when every key member cjose base64url-decodes is strict base64url. */
static int
jwks_b64_members_ok(json_t *o)
{
	static const char *const members[] = {"n", "e", "x", "y"};
	unsigned char *buf;
	const char *v;
	size_t i, len, cap, n;
	int rc;

	for (i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		v = json_string_value(json_object_get(o, members[i]));
		if (v == NULL) {
			if (json_object_get(o, members[i]) != NULL)
				return -1; /* present but not a string */
			continue;
		}
		len = strlen(v);
		cap = CRYPTO_B64URL_DECLEN(len) + 1;
		buf = malloc(cap);
		if (buf == NULL)
			return -1;
		rc = len == 0 ? -1 : crypto_b64url_decode(v, len, buf, cap, &n);
		free(buf);
		if (rc == -1)
			return -1;
	}
	return 0;
}

static const char *const jwks_private_members[] = {
    "d", "p", "q", "dp", "dq", "qi", "oth", "k"};

static const struct jwks_alg *
jwks_alg_lookup(const char *alg)
{
	size_t i;

	if (alg == NULL)
		return NULL;
	for (i = 0; i < sizeof(jwks_algs) / sizeof(jwks_algs[0]); i++)
		if (strcmp(jwks_algs[i].ja_name, alg) == 0)
			return &jwks_algs[i];
	return NULL;
}

int
jwks_alg_supported(const char *alg)
{
	return jwks_alg_lookup(alg) != NULL;
}

static int
jwks_entry_compatible(const struct jwks_key *k, const char *alg)
{
	const struct jwks_alg *a = jwks_alg_lookup(alg);

	if (a == NULL || a->ja_kty != k->jk_kty)
		return 0;
	if (k->jk_kty == CJOSE_JWK_KTY_EC && a->ja_crv != k->jk_crv)
		return 0;
	/* A key published for one alg verifies only that alg. */
	if (k->jk_alg != NULL && strcmp(k->jk_alg, alg) != 0)
		return 0;
	return 1;
}

/* Bits in the big-endian modulus given as base64url, or -1. */
static long
jwks_rsa_bits(const char *n)
{
	unsigned char *buf = NULL;
	size_t len = strlen(n), outlen, i;
	long bits = -1;
	unsigned c;

	if (len == 0 || len > 4 * JWKS_RSA_MAX_BITS / 8 / 3 + 8)
		return -1;
	buf = malloc(CRYPTO_B64URL_DECLEN(len) + 1);
	if (buf == NULL)
		return -1;
	if (crypto_b64url_decode(
	        n, len, buf, CRYPTO_B64URL_DECLEN(len) + 1, &outlen) == -1)
		goto done;
	for (i = 0; i < outlen && buf[i] == 0; i++)
		;
	if (i == outlen) {
		bits = 0;
		goto done;
	}
	bits = (long)(outlen - i) * 8;
	for (c = buf[i]; (c & 0x80) == 0; c <<= 1)
		bits--;
done:
	free(buf);
	return bits;
}

/* 0 when `use` and `key_ops` (if present) allow verifying signatures. */
static int
jwks_usage_ok(json_t *o)
{
	json_t *use = json_object_get(o, "use");
	json_t *ops = json_object_get(o, "key_ops"), *v;
	size_t i;

	if (use != NULL &&
	    (!json_is_string(use) ||
	        strcmp(json_string_value(use), "sig") != 0))
		return -1;
	if (ops == NULL)
		return 0;
	if (!json_is_array(ops))
		return -1;
	json_array_foreach(ops, i, v)
	{
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), "verify") == 0)
			return 0;
	}
	return -1;
}

/* Fill k from one JWK object; 0, or -1 when the key is skipped. */
static int
jwks_key_load(json_t *o, struct jwks_key *k)
{
	const char *kty, *alg = NULL, *n;
	json_t *v;
	const struct jwks_alg *a = NULL;
	cjose_err cerr;
	size_t i;
	long bits;

	memset(k, 0, sizeof(*k));
	k->jk_crv = CJOSE_JWK_EC_INVALID;
	if (!json_is_object(o))
		return -1;
	kty = json_string_value(json_object_get(o, "kty"));
	if (kty == NULL)
		return -1;
	/* Security: symmetric ("oct") keys never verify an ID token, and
	 * only public keys are trusted (a published private key is leaked). */
	if (strcmp(kty, "RSA") == 0)
		k->jk_kty = CJOSE_JWK_KTY_RSA;
	else if (strcmp(kty, "EC") == 0)
		k->jk_kty = CJOSE_JWK_KTY_EC;
	else
		return -1;
	for (i = 0;
	     i < sizeof(jwks_private_members) / sizeof(jwks_private_members[0]);
	     i++)
		if (json_object_get(o, jwks_private_members[i]) != NULL)
			return -1;
	if (jwks_usage_ok(o) == -1)
		return -1;
	v = json_object_get(o, "alg");
	if (v != NULL) {
		alg = json_string_value(v);
		a = jwks_alg_lookup(alg);
		if (a == NULL || a->ja_kty != k->jk_kty)
			return -1;
	}
	v = json_object_get(o, "kid");
	if (v != NULL && !json_is_string(v))
		return -1;
	if (k->jk_kty == CJOSE_JWK_KTY_RSA) {
		n = json_string_value(json_object_get(o, "n"));
		if (n == NULL)
			return -1;
		/* Security: short RSA moduli are factorable. */
		bits = jwks_rsa_bits(n);
		if (bits < JWKS_RSA_MIN_BITS || bits > JWKS_RSA_MAX_BITS)
			return -1;
	}
	/* Security: cjose 0.6.1 asserts (aborts the process) on some
	 * malformed base64, so every member it decodes must be strict
	 * base64url first; a key that is not is skipped like any bad key. */
	if (jwks_b64_members_ok(o) == -1)
		return -1;
	k->jk_jwk = cjose_jwk_import_json((cjose_header_t *)o, &cerr);
	if (k->jk_jwk == NULL ||
	    cjose_jwk_get_kty(k->jk_jwk, &cerr) != k->jk_kty)
		goto fail;
	if (k->jk_kty == CJOSE_JWK_KTY_EC) {
		k->jk_crv = cjose_jwk_EC_get_curve(k->jk_jwk, &cerr);
		if (k->jk_crv == CJOSE_JWK_EC_INVALID ||
		    (a != NULL && a->ja_crv != k->jk_crv))
			goto fail;
	}
	if (v != NULL) {
		k->jk_kid = strdup(json_string_value(v));
		if (k->jk_kid == NULL)
			goto fail;
	}
	if (alg != NULL) {
		k->jk_alg = strdup(alg);
		if (k->jk_alg == NULL)
			goto fail;
	}
	return 0;
fail:
	cjose_jwk_release(k->jk_jwk);
	k->jk_jwk = NULL;
	free(k->jk_kid);
	k->jk_kid = NULL;
	free(k->jk_alg);
	k->jk_alg = NULL;
	return -1;
}

struct jwks *
jwks_parse(const char *json, size_t len, struct gh_error *err)
{
	struct jwks *keys = NULL;
	json_t *root = NULL, *arr, *o;
	json_error_t jerr;
	size_t i, n;

	if (json == NULL || len == 0 || len > JWKS_MAX_DOC) {
		gh_error_set(err, "jwks_malformed",
		    "JWKS document is empty or larger than %d bytes",
		    JWKS_MAX_DOC);
		goto fail;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	arr = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(arr)) {
		gh_error_set(err, "jwks_malformed",
		    "JWKS document is not an object with a \"keys\" array");
		goto fail;
	}
	n = json_array_size(arr);
	if (n > JWKS_MAX_KEYS)
		n = JWKS_MAX_KEYS;
	keys = calloc(1, sizeof(*keys));
	if (keys != NULL)
		keys->jw_keys = calloc(n > 0 ? n : 1, sizeof(*keys->jw_keys));
	if (keys == NULL || keys->jw_keys == NULL) {
		gh_error_set(err, "nomem", "out of memory parsing the JWKS");
		goto fail;
	}
	for (i = 0; i < n; i++) {
		o = json_array_get(arr, i);
		if (jwks_key_load(o, &keys->jw_keys[keys->jw_n]) == 0)
			keys->jw_n++;
	}
	if (keys->jw_n == 0) {
		gh_error_set(err, "jwks_empty",
		    "JWKS has no usable public signature key (%zu listed)",
		    json_array_size(arr));
		goto fail;
	}
	json_decref(root);
	return keys;
fail:
	json_decref(root);
	jwks_free(keys);
	return NULL;
}

void
jwks_free(struct jwks *keys)
{
	size_t i;

	if (keys == NULL)
		return;
	for (i = 0; i < keys->jw_n; i++) {
		cjose_jwk_release(keys->jw_keys[i].jk_jwk);
		free(keys->jw_keys[i].jk_kid);
		free(keys->jw_keys[i].jk_alg);
	}
	free(keys->jw_keys);
	free(keys);
}

size_t
jwks_count(const struct jwks *keys)
{
	return keys != NULL ? keys->jw_n : 0;
}

const cjose_jwk_t *
jwks_find(
    const struct jwks *keys, const char *kid, const char *alg, int *ambiguous)
{
	const struct jwks_key *named = NULL, *fit = NULL;
	size_t i, nnamed = 0, nfit = 0;
	int dummy;

	if (ambiguous == NULL)
		ambiguous = &dummy;
	*ambiguous = 0;
	if (keys == NULL)
		return NULL;
	for (i = 0; i < keys->jw_n; i++) {
		const struct jwks_key *k = &keys->jw_keys[i];

		if (kid != NULL &&
		    (k->jk_kid == NULL || strcmp(k->jk_kid, kid) != 0))
			continue;
		named = k;
		nnamed++;
		if (jwks_entry_compatible(k, alg)) {
			fit = k;
			nfit++;
		}
	}
	/* A kid names one key: hand it back even when it does not suit
	 * alg, so the caller reports the mismatch (no refetch). */
	if (kid != NULL && nnamed == 1)
		return named->jk_jwk;
	if (nfit == 1)
		return fit->jk_jwk;
	/* Several candidates: never guess which one signed. */
	if (nfit > 1 || (kid != NULL && nnamed > 1))
		*ambiguous = 1;
	return NULL;
}

int
jwks_key_compatible(
    const struct jwks *keys, const cjose_jwk_t *jwk, const char *alg)
{
	size_t i;

	if (keys == NULL || jwk == NULL)
		return 0;
	for (i = 0; i < keys->jw_n; i++)
		if (keys->jw_keys[i].jk_jwk == jwk)
			return jwks_entry_compatible(&keys->jw_keys[i], alg);
	return 0;
}
