/* SPDX-License-Identifier: ISC */
/*
 * jwks.h: a parsed JSON Web Key Set (RFC 7517) of public signature keys,
 * and the lookup that picks the key for a JWS header's kid and alg.
 * Fetching and refreshing the document is oidc_discovery's job; this module
 * only parses text and answers lookups.
 *
 * Threads: a struct jwks is immutable once jwks_parse returns it, and
 * several threads may look keys up and verify with them at once (nothing
 * here or in a cjose verification takes a key reference).  The cjose keys
 * inside carry non-atomic reference counts: never retain one, and free the
 * set only once no thread uses it (oidc_discovery.c counts its users).
 */
#ifndef GATEHOUSE_JWKS_H
#define GATEHOUSE_JWKS_H

#include <stddef.h>

#include <cjose/jwk.h>

struct gh_error;
struct jwks;

/* Documents larger than this are refused, as are keys beyond the count. */
#define JWKS_MAX_DOC (256 * 1024)
#define JWKS_MAX_KEYS 64
#define JWKS_RSA_MIN_BITS 2048

/*
 * Parse the JWKS document json (len bytes, need not be NUL-terminated;
 * {"keys":[...]}) into a new key set (the caller calls jwks_free).
 *
 * Only public signature keys are kept.  Security decisions, each a skipped
 * key rather than a failed set, so one odd key cannot take sign-in down:
 *  - kty must be "RSA" or "EC" ("oct" keys never verify anything here);
 *  - a key carrying private members (d, p, q, dp, dq, qi, oth, k) is
 *    skipped: a published private key is a compromised key;
 *  - "use", when present, must be "sig"; "key_ops", when present, must
 *    contain "verify";
 *  - "alg", when present, must be a signature alg for the key type (RS*,
 *    PS* for RSA; ES256/ES384/ES512 for P-256/P-384/P-521);
 *  - RSA moduli under JWKS_RSA_MIN_BITS bits are skipped;
 *  - kid, when present, must be a string;
 *  - a key cjose cannot import is skipped.
 * Returns NULL with err set ("jwks_malformed" for text that is not a JWKS
 * object, "jwks_empty" when no usable key remains, "nomem").
 */
struct jwks *jwks_parse(const char *json, size_t len, struct gh_error *err);

/* Free the set and release its keys.  NULL is a no-op. */
void jwks_free(struct jwks *keys);

/* Number of usable keys in the set (0 for NULL). */
size_t jwks_count(const struct jwks *keys);

/*
 * Pick the key that verifies a JWS whose header names kid (NULL when the
 * header has none) and alg.  Returns a borrowed key (valid while `keys`
 * lives; do not release it), or NULL.
 *  - kid given: the key with that kid.  When several keys share the kid,
 *    the single one compatible with alg (see jwks_key_compatible); if none
 *    or several are, NULL with *ambiguous = 1.  A single key with the kid
 *    is returned even if it does not suit alg: the caller checks that with
 *    jwks_key_compatible and reports a mismatch rather than an unknown kid.
 *  - kid NULL: the single key compatible with alg; NULL with *ambiguous = 1
 *    when several are, NULL with *ambiguous = 0 when none is.
 * ambiguous may be NULL.  keys NULL gives NULL (*ambiguous = 0).
 */
const cjose_jwk_t *jwks_find(
    const struct jwks *keys, const char *kid, const char *alg, int *ambiguous);

/*
 * 1 when the key (which must come from jwks_find on this set) may verify a
 * JWS signed with alg: RS256/384/512 and PS256/384/512 need an RSA key,
 * ES256/ES384/ES512 an EC key on P-256/P-384/P-521, and a key published
 * with an "alg" only verifies that alg.  Symmetric and unknown algs give 0.
 */
int jwks_key_compatible(
    const struct jwks *keys, const cjose_jwk_t *jwk, const char *alg);

/* 1 when alg names an asymmetric signature alg this module supports
 * (RS*, PS*, ES256/384/512), else 0 ("none" and HS* give 0). */
int jwks_alg_supported(const char *alg);

#endif
