/* SPDX-License-Identifier: ISC */
/*
 * jose.c: verify a compact JWS JWT (the ID token) with a key from a JWKS:
 * header rules, key choice, cjose signature check, then the claims.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjose/cjose.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/crypto.h"
#include "core/error.h"
#include "oidc/jose.h"
#include "oidc/jwks.h"

/* A part of the compact serialisation: base64url text, not NUL-ended. */
struct jose_part {
	const char *jp_s;
	size_t jp_len;
};

/*
 * Header members that make the token name its own key or demand an
 * extension.  Security: trusting any of them lets the attacker pick the
 * verification key (RFC 8725 section 3.10), so they are refused outright.
 */
static const char *const jose_forbidden_hdr[] = {
    "jwk", "jku", "x5u", "x5c", "crit"};

static const char *const jose_default_algs[] = {"RS256"};

/* Copy an untrusted value into buf for a log line: printable URL-ish
 * characters only, others become '?', and long values are cut. */
static const char *
jose_clean(char *buf, size_t size, const char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                         "0123456789-._~:/%@+#=";
	size_t i;

	if (s == NULL)
		return "(none)";
	for (i = 0; s[i] != '\0' && i + 4 < size; i++)
		buf[i] = strchr(ok, s[i]) != NULL ? s[i] : '?';
	if (s[i] != '\0') {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* Split into exactly three parts; 0 or -1. */
static int
jose_split(const char *jwt, size_t len, struct jose_part p[3])
{
	const char *d1, *d2;

	d1 = memchr(jwt, '.', len);
	if (d1 == NULL)
		return -1;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt));
	if (d2 == NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)) != NULL)
		return -1;
	p[0].jp_s = jwt;
	p[0].jp_len = (size_t)(d1 - jwt);
	p[1].jp_s = d1 + 1;
	p[1].jp_len = (size_t)(d2 - d1 - 1);
	p[2].jp_s = d2 + 1;
	p[2].jp_len = len - (size_t)(d2 + 1 - jwt);
	return 0;
}

/* Decode a part as strict base64url and parse it as a JSON object, with
 * duplicate members refused (so no two readers can see different values).
 * Returns a new reference, or NULL. */
static json_t *
jose_part_json(const struct jose_part *p)
{
	unsigned char *buf;
	size_t cap = CRYPTO_B64URL_DECLEN(p->jp_len) + 1, n;
	json_t *o = NULL;

	if (p->jp_len == 0)
		return NULL;
	buf = malloc(cap);
	if (buf == NULL)
		return NULL;
	if (crypto_b64url_decode(p->jp_s, p->jp_len, buf, cap, &n) == 0)
		o = json_loadb(
		    (const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (o != NULL && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* 0 when the part is non-empty strict base64url. */
static int
jose_part_b64_ok(const struct jose_part *p)
{
	unsigned char *buf;
	size_t cap = CRYPTO_B64URL_DECLEN(p->jp_len) + 1, n;
	int rc;

	if (p->jp_len == 0)
		return -1;
	buf = malloc(cap);
	if (buf == NULL)
		return -1;
	rc = crypto_b64url_decode(p->jp_s, p->jp_len, buf, cap, &n);
	free(buf);
	return rc;
}

static int
jose_alg_allowed(const struct jose_check *chk, const char *alg)
{
	const char *const *algs = chk->jc_algs;
	size_t i, n = chk->jc_nalgs;

	if (algs == NULL || n == 0) {
		algs = jose_default_algs;
		n = 1;
	}
	/* Security: only asymmetric algs, whatever the caller lists: "none"
	 * and HS* would let anyone holding the public key forge tokens. */
	if (!jwks_alg_supported(alg))
		return 0;
	for (i = 0; i < n; i++)
		if (algs[i] != NULL && strcmp(algs[i], alg) == 0)
			return 1;
	return 0;
}

/* Header rules; on success *alg and *kid are borrowed from hdr. */
static int
jose_header_check(json_t *hdr, const struct jose_check *chk, const char **alg,
    const char **kid, struct gh_error *err)
{
	json_t *v;
	char c[64];
	size_t i;

	v = json_object_get(hdr, "alg");
	if (!json_is_string(v)) {
		gh_error_set(err, "malformed", "JWT header has no alg string");
		return -1;
	}
	*alg = json_string_value(v);
	if (!jose_alg_allowed(chk, *alg)) {
		gh_error_set(err, "alg_not_allowed",
		    "JWT alg %s is not allowed",
		    jose_clean(c, sizeof(c), *alg));
		return -1;
	}
	for (i = 0;
	     i < sizeof(jose_forbidden_hdr) / sizeof(jose_forbidden_hdr[0]);
	     i++) {
		if (json_object_get(hdr, jose_forbidden_hdr[i]) != NULL) {
			gh_error_set(err, "header_key_forbidden",
			    "JWT header carries \"%s\", which is never "
			    "trusted",
			    jose_forbidden_hdr[i]);
			return -1;
		}
	}
	v = json_object_get(hdr, "kid");
	if (v != NULL && !json_is_string(v)) {
		gh_error_set(
		    err, "malformed", "JWT header kid is not a string");
		return -1;
	}
	*kid = json_string_value(v);
	return 0;
}

/* Choose the key; JOSE_OK with *jwk set, or the failure. */
static enum jose_result
jose_key_select(const struct jwks *keys, const char *alg, const char *kid,
    const cjose_jwk_t **jwk, struct gh_error *err)
{
	char c[64];
	int ambiguous = 0;

	*jwk = jwks_find(keys, kid, alg, &ambiguous);
	if (*jwk == NULL && ambiguous) {
		gh_error_set(err, "kid_ambiguous",
		    "JWT kid %s does not single out one key for %s",
		    jose_clean(c, sizeof(c), kid), alg);
		return JOSE_INVALID;
	}
	if (*jwk == NULL) {
		gh_error_set(err, "kid_unknown",
		    "no key in the JWKS (%zu keys) for kid %s and alg %s",
		    jwks_count(keys), jose_clean(c, sizeof(c), kid), alg);
		return JOSE_KID_UNKNOWN;
	}
	/* Security: the key type must fit the alg (an RSA key is never used
	 * for ES*, an EC key never for RS*), and a key published for one alg
	 * verifies only that one. */
	if (!jwks_key_compatible(keys, *jwk, alg)) {
		gh_error_set(err, "alg_kty_mismatch",
		    "JWT alg %s does not suit the key with kid %s", alg,
		    jose_clean(c, sizeof(c), kid));
		return JOSE_INVALID;
	}
	return JOSE_OK;
}

/* cjose's signature check; 0 or -1. */
static int
jose_signature_check(const char *jwt, size_t len, const cjose_jwk_t *jwk,
    const char *alg, struct gh_error *err)
{
	cjose_jws_t *jws;
	cjose_header_t *hdr;
	const char *calg;
	cjose_err cerr;
	int rc = -1;

	memset(&cerr, 0, sizeof(cerr));
	jws = cjose_jws_import(jwt, len, &cerr);
	if (jws == NULL) {
		gh_error_set(err, "malformed", "JWT could not be imported");
		return -1;
	}
	/* Defence in depth: cjose must be about to check the alg we
	 * approved, never one it read differently. */
	hdr = cjose_jws_get_protected(jws);
	calg = hdr != NULL ? cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr) : NULL;
	if (calg == NULL || strcmp(calg, alg) != 0) {
		gh_error_set(err, "malformed", "JWT header alg is ambiguous");
		goto done;
	}
	if (!cjose_jws_verify(jws, jwk, &cerr)) {
		gh_error_set(
		    err, "signature", "JWT signature (%s) is invalid", alg);
		goto done;
	}
	rc = 0;
done:
	cjose_jws_release(jws);
	return rc;
}

/* A NumericDate claim: 1 present and valid (*t set), 0 absent, -1 bad. */
static int
jose_claim_time(json_t *claims, const char *name, double *t)
{
	json_t *v = json_object_get(claims, name);

	if (v == NULL)
		return 0;
	if (!json_is_number(v))
		return -1;
	*t = json_number_value(v);
	if (!isfinite(*t))
		return -1;
	return 1;
}

static int
jose_time_check(
    json_t *claims, const struct jose_check *chk, struct gh_error *err)
{
	double now = (double)chk->jc_now, skew, t;
	int rc;

	/* A negative skew would make every token look expired or early. */
	skew = chk->jc_skew > 0 ? chk->jc_skew : 0;

	rc = jose_claim_time(claims, "exp", &t);
	if (rc != 1 && !(rc == 0 && chk->jc_exp_optional)) {
		gh_error_set(
		    err, "exp_missing", "ID token has no numeric exp claim");
		return -1;
	}
	if (rc == 1 && !(now < t + skew)) {
		gh_error_set(err, "expired",
		    "ID token expired %.0f s ago (skew %d s)", now - t,
		    chk->jc_skew);
		return -1;
	}
	rc = jose_claim_time(claims, "nbf", &t);
	if (rc == -1 || (rc == 1 && !(now >= t - skew))) {
		gh_error_set(err, "nbf_future",
		    "ID token nbf is in the future or not a number");
		return -1;
	}
	rc = jose_claim_time(claims, "iat", &t);
	if (rc == -1 || (rc == 0 && chk->jc_require_iat)) {
		gh_error_set(
		    err, "iat_missing", "ID token has no numeric iat claim");
		return -1;
	}
	if (rc == 1 && t > now + skew) {
		gh_error_set(err, "iat_future",
		    "ID token iat is %.0f s in the future (skew %d s)", t - now,
		    chk->jc_skew);
		return -1;
	}
	if (rc == 1 && chk->jc_max_iat_age > 0 &&
	    now - t > (double)chk->jc_max_iat_age + skew) {
		gh_error_set(err, "iat_too_old",
		    "ID token was issued %.0f s ago (limit %d s)", now - t,
		    chk->jc_max_iat_age);
		return -1;
	}
	return 0;
}

static int
jose_aud_check(
    json_t *claims, const struct jose_check *chk, struct gh_error *err)
{
	json_t *aud = json_object_get(claims, "aud"), *v;
	const char *azp;
	size_t i, j, n;
	int found = 0;

	if (json_is_string(aud))
		n = 1;
	else if (json_is_array(aud) && json_array_size(aud) > 0)
		n = json_array_size(aud);
	else {
		gh_error_set(err, "aud_mismatch",
		    "ID token aud is missing or not a string or array");
		return -1;
	}
	for (i = 0; i < n; i++) {
		v = json_is_string(aud) ? aud : json_array_get(aud, i);
		if (!json_is_string(v)) {
			gh_error_set(err, "aud_mismatch",
			    "ID token aud holds a non-string");
			return -1;
		}
		for (j = 0; j < chk->jc_naudiences; j++)
			if (chk->jc_audiences[j] != NULL &&
			    strcmp(json_string_value(v),
			        chk->jc_audiences[j]) == 0)
				found = 1;
	}
	if (!found) {
		gh_error_set(err, "aud_mismatch",
		    "ID token aud does not name this client");
		return -1;
	}
	/* An access token's azp names the client that asked for it, not
	 * this gateway: callers verifying those pass no client id. */
	if (chk->jc_client_id == NULL)
		return 0;
	v = json_object_get(claims, "azp");
	if (v == NULL && n > 1) {
		gh_error_set(err, "azp_missing",
		    "ID token has several audiences but no azp");
		return -1;
	}
	if (v != NULL) {
		azp = json_string_value(v);
		if (azp == NULL || chk->jc_client_id == NULL ||
		    strcmp(azp, chk->jc_client_id) != 0) {
			gh_error_set(err, "azp_mismatch",
			    "ID token azp is not this client");
			return -1;
		}
	}
	return 0;
}

/*
 * Security: Entra signs the tokens of every tenant with the same keys, and
 * the issuer is only a string: the tenant the token was issued in (tid)
 * must be the one the issuer names, so a token of another tenant never
 * passes for this one's.
 */
static int
jose_tid_check(
    const json_t *claims, const struct jose_check *chk, struct gh_error *err)
{
	json_t *v;
	const char *s;
	char c[64];

	if (chk->jc_tid == NULL)
		return 0;
	v = json_object_get(claims, "tid");
	if (v == NULL) {
		if (!chk->jc_tid_required)
			return 0;
		gh_error_set(err, "tid_missing",
		    "ID token has no tid claim, but the issuer is the Entra "
		    "tenant %s",
		    chk->jc_tid);
		return -1;
	}
	s = json_string_value(v);
	if (s == NULL || strcasecmp(s, chk->jc_tid) != 0) {
		gh_error_set(err, "tid_mismatch",
		    "ID token tid %s is not the issuer's tenant %s",
		    s != NULL ? jose_clean(c, sizeof(c), s) : "(not a string)",
		    chk->jc_tid);
		return -1;
	}
	return 0;
}

static int
jose_claims_check(
    json_t *claims, const struct jose_check *chk, struct gh_error *err)
{
	const char *s;
	char c[128];
	size_t n;

	s = jose_claim_get(claims, "iss");
	if (s == NULL || strcmp(s, chk->jc_issuer) != 0) {
		gh_error_set(err, "iss_mismatch",
		    "ID token iss %s is not the provider's issuer",
		    jose_clean(c, sizeof(c), s));
		return -1;
	}
	if (jose_aud_check(claims, chk, err) == -1 ||
	    jose_tid_check(claims, chk, err) == -1 ||
	    jose_time_check(claims, chk, err) == -1)
		return -1;
	s = jose_claim_get(claims, "sub");
	if (chk->jc_sub_optional && json_object_get(claims, "sub") == NULL)
		s = "-"; /* absent is allowed; present must be a string */
	if (s == NULL || *s == '\0') {
		gh_error_set(
		    err, "sub_missing", "ID token has no non-empty sub claim");
		return -1;
	}
	if (chk->jc_nonce == NULL)
		return 0;
	if (json_object_get(claims, "nonce") == NULL) {
		gh_error_set(err, "nonce_missing", "ID token has no nonce");
		return -1;
	}
	s = jose_claim_get(claims, "nonce");
	n = strlen(chk->jc_nonce);
	if (s == NULL || strlen(s) != n ||
	    CRYPTO_memcmp(s, chk->jc_nonce, n) != 0) {
		gh_error_set(err, "nonce_mismatch",
		    "ID token nonce does not match this sign-in");
		return -1;
	}
	return 0;
}

enum jose_result
jose_verify(const char *jwt, const struct jwks *keys,
    const struct jose_check *chk, json_t **claims, struct gh_error *err)
{
	struct jose_part p[3];
	json_t *hdr = NULL, *payload = NULL;
	const cjose_jwk_t *jwk;
	const char *alg = NULL, *kid = NULL;
	enum jose_result rc = JOSE_INVALID;
	size_t len;

	if (claims != NULL)
		*claims = NULL;
	if (chk == NULL || chk->jc_issuer == NULL || chk->jc_naudiences == 0 ||
	    chk->jc_audiences == NULL) {
		gh_error_set(err, "config", "no issuer or audience to check");
		return JOSE_INVALID;
	}
	if (jwt == NULL) {
		gh_error_set(err, "malformed", "no JWT");
		return JOSE_INVALID;
	}
	len = strnlen(jwt, JOSE_MAX_JWT + 1);
	if (len > JOSE_MAX_JWT) {
		gh_error_set(err, "too_large", "JWT is longer than %d bytes",
		    JOSE_MAX_JWT);
		return JOSE_INVALID;
	}
	if (jose_split(jwt, len, p) == -1) {
		gh_error_set(err, "malformed", "JWT is not three parts");
		return JOSE_INVALID;
	}
	hdr = jose_part_json(&p[0]);
	if (hdr == NULL) {
		gh_error_set(err, "malformed",
		    "JWT header is not base64url of a JSON object");
		goto done;
	}
	if (jose_header_check(hdr, chk, &alg, &kid, err) == -1)
		goto done;
	if (jose_part_b64_ok(&p[2]) == -1) {
		gh_error_set(err, "malformed",
		    "JWT signature is empty or not base64url");
		goto done;
	}
	/* Security: cjose 0.6.1 asserts (aborts the process) on some
	 * malformed base64 in the payload, so nothing that is not strict
	 * base64url ever reaches it. */
	if (jose_part_b64_ok(&p[1]) == -1) {
		gh_error_set(err, "malformed", "JWT payload is not base64url");
		goto done;
	}
	rc = jose_key_select(keys, alg, kid, &jwk, err);
	if (rc != JOSE_OK)
		goto done;
	rc = JOSE_INVALID;
	if (jose_signature_check(jwt, len, jwk, alg, err) == -1)
		goto done;
	payload = jose_part_json(&p[1]);
	if (payload == NULL) {
		gh_error_set(err, "malformed",
		    "JWT payload is not base64url of a JSON object");
		goto done;
	}
	if (jose_claims_check(payload, chk, err) == -1)
		goto done;
	rc = JOSE_OK;
	if (claims != NULL) {
		*claims = payload;
		payload = NULL;
	}
done:
	json_decref(payload);
	json_decref(hdr);
	return rc;
}

/* The hash OIDC Core 3.1.3.6 pairs with a JWS alg, or NULL. */
static const EVP_MD *
jose_at_hash_md(const char *alg)
{
	size_t n = alg != NULL ? strlen(alg) : 0;

	if (n == 5 && (alg[0] == 'R' || alg[0] == 'P' || alg[0] == 'E') &&
	    alg[1] == 'S') {
		if (strcmp(alg + 2, "256") == 0)
			return EVP_sha256();
		if (strcmp(alg + 2, "384") == 0)
			return EVP_sha384();
		if (strcmp(alg + 2, "512") == 0)
			return EVP_sha512();
	}
	/* Ed25519, the EdDSA curve that providers publish. */
	if (n == 5 && strcmp(alg, "EdDSA") == 0)
		return EVP_sha512();
	return NULL;
}

int
jose_at_hash_format(
    const char *alg, const char *access_token, char *out, size_t size)
{
	const EVP_MD *md = jose_at_hash_md(alg);
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hlen = 0;

	if (md == NULL || access_token == NULL ||
	    EVP_Digest(
	        access_token, strlen(access_token), h, &hlen, md, NULL) != 1)
		return -1;
	return crypto_b64url_encode(h, hlen / 2, out, size, NULL);
}

int
jose_at_hash_verify(const char *idtoken, const json_t *claims,
    const char *access_token, struct gh_error *err)
{
	char want[JOSE_AT_HASH_MAX], *alg = NULL;
	const json_t *v;
	const char *got;
	size_t n;
	int rc = -1;

	v = json_object_get(claims, "at_hash");
	if (v == NULL)
		return 0; /* optional in the code flow */
	got = json_string_value(v);
	if (got == NULL) {
		gh_error_set(err, "at_hash_mismatch",
		    "ID token at_hash is not a string");
		return -1;
	}
	/* Security: an at_hash names the access token this ID token was
	 * issued with; an answer without one cannot match it. */
	if (access_token == NULL) {
		gh_error_set(err, "at_hash_mismatch",
		    "ID token has an at_hash but no access token came with it");
		return -1;
	}
	/* The header was covered by the signature jose_verify checked, so
	 * its alg is the one the provider signed with. */
	if (jose_peek_header(idtoken, &alg, NULL) == -1 ||
	    jose_at_hash_format(alg, access_token, want, sizeof(want)) == -1) {
		gh_error_set(err, "at_hash_mismatch",
		    "no at_hash is defined for the ID token's alg");
		goto done;
	}
	n = strlen(want);
	if (strlen(got) != n || CRYPTO_memcmp(got, want, n) != 0) {
		gh_error_set(err, "at_hash_mismatch",
		    "ID token at_hash does not match the access token");
		goto done;
	}
	rc = 0;
done:
	free(alg);
	return rc;
}

int
jose_peek_header(const char *jwt, char **alg, char **kid)
{
	struct jose_part p[3];
	json_t *hdr = NULL;
	const char *s;
	size_t len;

	if (alg != NULL)
		*alg = NULL;
	if (kid != NULL)
		*kid = NULL;
	if (jwt == NULL)
		return -1;
	len = strnlen(jwt, JOSE_MAX_JWT + 1);
	if (len > JOSE_MAX_JWT || jose_split(jwt, len, p) == -1)
		return -1;
	hdr = jose_part_json(&p[0]);
	if (hdr == NULL)
		return -1;
	s = json_string_value(json_object_get(hdr, "alg"));
	if (alg != NULL && s != NULL) {
		*alg = strdup(s);
		if (*alg == NULL)
			goto fail;
	}
	s = json_string_value(json_object_get(hdr, "kid"));
	if (kid != NULL && s != NULL) {
		*kid = strdup(s);
		if (*kid == NULL)
			goto fail;
	}
	json_decref(hdr);
	return 0;
fail:
	json_decref(hdr);
	if (alg != NULL) {
		free(*alg);
		*alg = NULL;
	}
	return -1;
}

const char *
jose_claim_get(const json_t *claims, const char *name)
{
	if (claims == NULL || name == NULL)
		return NULL;
	return json_string_value(json_object_get(claims, name));
}

/* 1 if the typ header names an access token: RFC 9068's at+jwt, or the
 * plain JWT Entra puts on its access tokens (RFC 7515 4.1.9: media types
 * compare case-insensitively and "application/" may be left out). */
static int
jose_typ_access(const char *typ)
{
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return strcasecmp(typ, "at+jwt") == 0 || strcasecmp(typ, "jwt") == 0;
}

/* 1 if claim `name` grants something: a string with a non-space
 * character, or an array with an element. */
static int
jose_claim_grants(const json_t *claims, const char *name)
{
	json_t *v = json_object_get(claims, name);
	const char *s;

	if (json_is_array(v))
		return json_array_size(v) > 0;
	s = json_string_value(v);
	return s != NULL && s[strspn(s, " ")] != '\0';
}

int
jose_access_token_check(
    const char *jwt, const json_t *claims, struct gh_error *err)
{
	static const char *const id_only[] = {"nonce", "at_hash", "c_hash"};
	struct jose_part p[3];
	json_t *hdr, *typ;
	char c[64];
	size_t i, len;
	int rc = -1;

	len = jwt != NULL ? strnlen(jwt, JOSE_MAX_JWT + 1) : 0;
	if (claims == NULL || len == 0 || len > JOSE_MAX_JWT ||
	    jose_split(jwt, len, p) == -1) {
		gh_error_set(err, "malformed", "no verified JWT to check");
		return -1;
	}
	hdr = jose_part_json(&p[0]);
	if (hdr == NULL) {
		gh_error_set(err, "malformed",
		    "JWT header is not base64url of a JSON object");
		return -1;
	}
	/* Security (RFC 8725 3.11): an explicit typ is honoured, so a
	 * logout token, an ID token typed as such or any other JWT signed
	 * by the same provider is never taken for an access token. */
	typ = json_object_get(hdr, "typ");
	if (typ != NULL &&
	    (!json_is_string(typ) ||
	        !jose_typ_access(json_string_value(typ)))) {
		gh_error_set(err, "not_access_token",
		    "JWT typ %s is not an access token's",
		    jose_clean(c, sizeof(c), json_string_value(typ)));
		goto done;
	}
	/* Security: an ID token has the same issuer and, by default, the same
	 * audience (client_id) as this app's own API, and it travels in the
	 * sign-out URL.  The claims only an ID token carries unmask it. */
	for (i = 0; i < sizeof(id_only) / sizeof(id_only[0]); i++) {
		if (json_object_get(claims, id_only[i]) != NULL) {
			gh_error_set(err, "not_access_token",
			    "JWT carries %s, an ID token's claim", id_only[i]);
			goto done;
		}
	}
	/* As Microsoft.Identity.Web: an access token grants something,
	 * delegated scopes (scp, or RFC 9068's scope) or app roles. */
	if (!jose_claim_grants(claims, "scp") &&
	    !jose_claim_grants(claims, "scope") &&
	    !jose_claim_grants(claims, "roles")) {
		gh_error_set(err, "not_access_token",
		    "JWT has no scp, scope or roles claim");
		goto done;
	}
	rc = 0;
done:
	json_decref(hdr);
	return rc;
}
