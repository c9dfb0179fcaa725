/* SPDX-License-Identifier: ISC */
/*
 * jose.h: verification of a compact JWS JWT (the OpenID Connect ID token)
 * against a JWKS over cjose: alg, kid and kty rules first, then the
 * signature, then the claims (iss, aud, azp, exp, nbf, iat, sub, nonce).
 *
 * Threads: every function here is reentrant and keeps no state; call it on
 * the worker thread that owns the struct jwks it is given (see jwks.h).
 */
#ifndef GATEHOUSE_JOSE_H
#define GATEHOUSE_JOSE_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

struct gh_error;
struct jwks;

/* A compact JWT longer than this is refused before any decoding. */
#define JOSE_MAX_JWT (16 * 1024)

enum jose_result {
	JOSE_OK,
	/* No key in the set matches the token's kid (or, without a kid, no
	 * key suits its alg), or there is no key set yet: the caller may
	 * refetch the JWKS once, rate-limited, and verify again. */
	JOSE_KID_UNKNOWN,
	/* Anything else: refuse the token. */
	JOSE_INVALID,
};

/*
 * What the token must satisfy.  All pointers are borrowed for the call.
 * Zero the struct (memset) and set what applies.
 */
struct jose_check {
	const char *jc_issuer;           /* iss must equal it exactly */
	const char *const *jc_audiences; /* aud must contain one of these */
	size_t jc_naudiences;            /* 0 refuses every token */
	const char *jc_client_id;        /* azp must equal it; NULL: no azp
	                                    check (access tokens) */
	const char *jc_nonce;            /* NULL: nonce is not checked */
	/* Entra: the tenant GUID the issuer names.  NULL: tid is not
	 * checked; else tid, when present, must equal it (any letter
	 * case), and with jc_tid_required it must be present. */
	const char *jc_tid;
	int jc_tid_required;
	const char *const *jc_algs; /* allowlist; NULL/0 = { "RS256" } */
	size_t jc_nalgs;
	time_t jc_now;      /* the current time */
	int jc_skew;        /* clock skew allowed, seconds, >= 0 */
	int jc_require_iat; /* iat must be present */
	int jc_max_iat_age; /* > 0: iat no older than this */
	/* A logout token (Back-Channel Logout 1.0): exp checked only when
	 * present, and sub may be absent (a sid names the session). */
	int jc_exp_optional;
	int jc_sub_optional;
};

/*
 * Verify the compact JWS `jwt` (NUL-terminated; the caller keeps it) with
 * a key from `keys` (may be NULL: no key set yet) against chk.
 *
 * Refused, before any signature work: a token over JOSE_MAX_JWT bytes, not
 * three strict unpadded base64url parts, a header that is not a JSON object
 * (duplicate members refused); an alg outside chk's allowlist or not an
 * asymmetric alg (so "none" and HS* always fail, even when listed: an RSA
 * public key must never become an HMAC secret); headers carrying jwk, jku,
 * x5u, x5c or crit (keys named by the token are never trusted, and no
 * extension is understood); a key whose kty/curve/alg does not suit alg.
 * Then cjose_jws_verify, then the claims: payload a JSON object; iss equal;
 * aud a string or an array of strings containing one of jc_audiences; azp,
 * when present, equal to jc_client_id, and required when aud has several
 * values; tid as jc_tid says; exp required and now < exp + skew; nbf, if
 * present, now >= nbf - skew; iat (required when jc_require_iat) not after
 * now + skew, nor older than jc_max_iat_age + skew when that is set; sub a
 * non-empty string (or absent, with jc_sub_optional; exp likewise
 * with jc_exp_optional); nonce, when jc_nonce is set, present and equal.
 *
 * On JOSE_OK, *claims (when claims is not NULL) is a new reference to the
 * payload object (the caller calls json_decref).  On any other result
 * *claims is NULL and err (may be NULL) is set: ge_code is a fixed token
 * ("malformed", "too_large", "alg_not_allowed", "header_key_forbidden",
 * "kid_unknown", "kid_ambiguous", "alg_kty_mismatch", "signature",
 * "iss_mismatch", "aud_mismatch", "azp_missing", "azp_mismatch",
 * "tid_missing", "tid_mismatch",
 * "exp_missing", "expired", "nbf_future", "iat_missing", "iat_future",
 * "iat_too_old", "sub_missing", "nonce_missing", "nonce_mismatch",
 * "config", "nomem") and ge_msg one line that never holds the token.
 */
enum jose_result jose_verify(const char *jwt, const struct jwks *keys,
    const struct jose_check *chk, json_t **claims, struct gh_error *err);

/*
 * Whether `jwt`, which jose_verify has just accepted with `claims` (both
 * borrowed), is an access token and not another kind of JWT from the same
 * provider (RFC 9068, RFC 8725 3.11): a typ header, when present, must be
 * at+jwt or JWT (Entra's access tokens), with or without "application/",
 * in any case; nonce, at_hash and c_hash (ID-token claims) must be absent;
 * scp, scope (RFC 9068) or roles must grant something (a non-blank string
 * or a non-empty array).  Returns 0, or -1 with err set (ge_code
 * "not_access_token", or "malformed" when jwt is no compact JWT).
 */
int jose_access_token_check(
    const char *jwt, const json_t *claims, struct gh_error *err);

/*
 * Read the protected header of `jwt` WITHOUT verifying anything (for logs
 * and key-selection decisions only).  *alg and *kid (either pointer may be
 * NULL) become new strings (free()) or NULL when the header lacks them.
 * Returns 0, or -1 when the header cannot be decoded (both set to NULL).
 */
int jose_peek_header(const char *jwt, char **alg, char **kid);

/* Room for an at_hash value: base64url of half a SHA-512, and its NUL. */
#define JOSE_AT_HASH_MAX 44

/*
 * The at_hash of `access_token` for an ID token signed with `alg` (OIDC
 * Core 3.1.3.6): the left half of the hash that alg uses (SHA-256 for
 * RS256, ES256, PS256; SHA-384 for *384; SHA-512 for *512 and EdDSA) of
 * the token's ASCII bytes, base64url without padding.  out (size >=
 * JOSE_AT_HASH_MAX) gets the NUL-terminated value.  Returns 0, or -1 for an
 * alg with no defined hash or a short buffer.
 */
int jose_at_hash_format(
    const char *alg, const char *access_token, char *out, size_t size);

/*
 * Bind an ID token to the access token that came with it (OIDC Core
 * 3.1.3.8, 3.2.2.9, 12.2).  `idtoken` is a token jose_verify accepted
 * (borrowed; its alg is read from its header), `claims` its payload, and
 * `access_token` (may be NULL) the token from the same answer.  Returns 0
 * when claims has no at_hash, or it equals the access token's; -1 when it
 * differs, is not a string, there is no access token to match, or the alg
 * has no hash, with err (may be NULL) set: ge_code "at_hash_mismatch".
 */
int jose_at_hash_verify(const char *idtoken, const json_t *claims,
    const char *access_token, struct gh_error *err);

/* The string claim `name` of a claims object, borrowed from claims, or
 * NULL when claims is NULL, the claim is absent or is not a string. */
const char *jose_claim_get(const json_t *claims, const char *name);

#endif
