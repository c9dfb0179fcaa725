/* SPDX-License-Identifier: ISC */
/*
 * jose_at_hash_test.c: the at_hash of gateway/oidc/jose.c (OIDC Core 3.1.3.6)
 * against known vectors, and its check of an ID token's claim.  The RS256
 * vector is the one of OIDC Core 3.1.3.6 / Appendix A; the others were
 * computed with Python's hashlib (left half of the digest, base64url).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "oidc/jose.h"
#include "tap.h"

#define SPEC_AT "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
#define OPAQUE_AT "ya29.a0AfH6SMB-opaque~token+/="

/* Compact tokens whose headers are {"alg":"<alg>","kid":"k1"}: only the
 * header is read by the check (the signature was jose_verify's job). */
#define HDR_RS256 "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0"
#define HDR_ES256 "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0"
#define HDR_PS384 "eyJhbGciOiJQUzM4NCIsImtpZCI6ImsxIn0"
#define HDR_ES512 "eyJhbGciOiJFUzUxMiIsImtpZCI6ImsxIn0"
#define HDR_HS256 "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0"
#define BODY_SIG ".e30.c2ln"

static void
test_format(void)
{
	static const struct {
		const char *alg, *token, *want;
	} v[] = {
	    {"RS256", SPEC_AT, "77QmUPtjPfzWtF2AnpK9RQ"},
	    {"RS256", OPAQUE_AT, "FDI1BSmc5HeuC028Sny_Jg"},
	    {"ES256", OPAQUE_AT, "FDI1BSmc5HeuC028Sny_Jg"},
	    {"PS256", OPAQUE_AT, "FDI1BSmc5HeuC028Sny_Jg"},
	    {"RS384", OPAQUE_AT, "se12lIPu47VX25f5gW75xjCYZGFRXJCH"},
	    {"ES384", OPAQUE_AT, "se12lIPu47VX25f5gW75xjCYZGFRXJCH"},
	    {"PS384", OPAQUE_AT, "se12lIPu47VX25f5gW75xjCYZGFRXJCH"},
	    {"RS512", OPAQUE_AT, "69BJanvktFwYP63x7dRFUQxEXgz1nyyyvO3mPeMjZXo"},
	    {"ES512", OPAQUE_AT, "69BJanvktFwYP63x7dRFUQxEXgz1nyyyvO3mPeMjZXo"},
	    {"PS512", OPAQUE_AT, "69BJanvktFwYP63x7dRFUQxEXgz1nyyyvO3mPeMjZXo"},
	    {"EdDSA", OPAQUE_AT, "69BJanvktFwYP63x7dRFUQxEXgz1nyyyvO3mPeMjZXo"},
	};
	static const char *const bad_alg[] = {
	    "HS256", "none", "RS255", "RS2566", "rs256", "ES", "", "XS256"};
	char out[JOSE_AT_HASH_MAX];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(out, 0, sizeof(out));
		is_int(
		    jose_at_hash_format(v[i].alg, v[i].token, out, sizeof(out)),
		    0, "%s: computed", v[i].alg);
		is_str(out, v[i].want, "%s: at_hash of %.12s...", v[i].alg,
		    v[i].token);
	}
	for (i = 0; i < sizeof(bad_alg) / sizeof(bad_alg[0]); i++)
		is_int(
		    jose_at_hash_format(bad_alg[i], SPEC_AT, out, sizeof(out)),
		    -1, "no at_hash for alg \"%s\"", bad_alg[i]);
	is_int(
	    jose_at_hash_format(NULL, SPEC_AT, out, sizeof(out)), -1, "no alg");
	is_int(jose_at_hash_format("RS256", NULL, out, sizeof(out)), -1,
	    "no token");
	is_int(jose_at_hash_format("RS512", SPEC_AT, out, 43), -1,
	    "a buffer too small for a SHA-512 half is refused");
}

static int
verify(const char *idt, const char *claims_json, const char *at)
{
	json_t *claims = json_loads(claims_json, 0, NULL);
	struct gh_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = jose_at_hash_verify(idt, claims, at, &err);
	if (rc == -1 &&
	    (err.ge_code == NULL ||
	        strcmp(err.ge_code, "at_hash_mismatch") != 0))
		rc = -2;
	json_decref(claims);
	return rc;
}

static void
test_verify(void)
{
	is_int(verify(HDR_RS256 BODY_SIG, "{\"sub\":\"x\"}", SPEC_AT), 0,
	    "no at_hash: nothing to check");
	is_int(verify(HDR_RS256 BODY_SIG, "{\"sub\":\"x\"}", NULL), 0,
	    "no at_hash and no access token");
	is_int(verify(HDR_RS256 BODY_SIG,
	           "{\"at_hash\":\"77QmUPtjPfzWtF2AnpK9RQ\"}", SPEC_AT),
	    0, "RS256: the spec's at_hash matches");
	is_int(verify(HDR_ES256 BODY_SIG,
	           "{\"at_hash\":\"FDI1BSmc5HeuC028Sny_Jg\"}", OPAQUE_AT),
	    0, "ES256: matches");
	is_int(verify(HDR_PS384 BODY_SIG,
	           "{\"at_hash\":\"se12lIPu47VX25f5gW75xjCYZGFRXJCH\"}",
	           OPAQUE_AT),
	    0, "PS384: matches");
	is_int(verify(HDR_ES512 BODY_SIG,
	           "{\"at_hash\":"
	           "\"69BJanvktFwYP63x7dRFUQxEXgz1nyyyvO3mPeMjZXo\"}",
	           OPAQUE_AT),
	    0, "ES512: matches");
	is_int(verify(HDR_RS256 BODY_SIG,
	           "{\"at_hash\":\"77QmUPtjPfzWtF2AnpK9RQ\"}", OPAQUE_AT),
	    -1, "another access token: refused");
	is_int(verify(HDR_PS384 BODY_SIG,
	           "{\"at_hash\":\"FDI1BSmc5HeuC028Sny_Jg\"}", OPAQUE_AT),
	    -1, "PS384 with a SHA-256 at_hash: refused");
	is_int(verify(HDR_RS256 BODY_SIG,
	           "{\"at_hash\":\"77QmUPtjPfzWtF2AnpK9R\"}", SPEC_AT),
	    -1, "a prefix of the right value: refused");
	is_int(verify(HDR_RS256 BODY_SIG,
	           "{\"at_hash\":\"77QmUPtjPfzWtF2AnpK9RQA\"}", SPEC_AT),
	    -1, "the right value and more: refused");
	is_int(verify(HDR_RS256 BODY_SIG,
	           "{\"at_hash\":\"77QmUPtjPfzWtF2AnpK9RQ==\"}", SPEC_AT),
	    -1, "padded: refused (base64url without padding)");
	is_int(verify(HDR_RS256 BODY_SIG, "{\"at_hash\":\"\"}", SPEC_AT), -1,
	    "empty: refused");
	is_int(verify(HDR_RS256 BODY_SIG, "{\"at_hash\":42}", SPEC_AT), -1,
	    "not a string: refused");
	is_int(verify(HDR_RS256 BODY_SIG, "{\"at_hash\":null}", SPEC_AT), -1,
	    "null: refused");
	is_int(verify(HDR_RS256 BODY_SIG,
	           "{\"at_hash\":\"77QmUPtjPfzWtF2AnpK9RQ\"}", NULL),
	    -1, "an at_hash but no access token: refused");
	is_int(verify(HDR_HS256 BODY_SIG,
	           "{\"at_hash\":\"77QmUPtjPfzWtF2AnpK9RQ\"}", SPEC_AT),
	    -1, "an alg without a defined hash: refused");
	is_int(verify("not-a-jwt", "{\"at_hash\":\"77QmUPtjPfzWtF2AnpK9RQ\"}",
	           SPEC_AT),
	    -1, "an unreadable ID token: refused");
}

int
main(void)
{
	test_format();
	test_verify();
	return done_testing();
}
