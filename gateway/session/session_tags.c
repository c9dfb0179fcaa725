/* SPDX-License-Identifier: ISC */
/*
 * session_tags.c: the tags a session is filed under for the provider's
 * logout (its sid and its sub), derived from its claims, and the same
 * derivation for a logout that names them.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/crypto.h"
#include "session/session.h"
#include "store.h"

/* Longer values are not ours to match: nothing is filed under them. */
#define SESSION_TAG_VALUE_MAX 1024

/*
 * The tag of `value` (a sid or a sub) of issuer iss: the first 16 bytes
 * of SHA-256 over a label naming the kind, iss and value, each after its
 * length, so no two (kind, iss, value) give the same input.  Security:
 * the store keys by hash, never by the value, and a tag binds the issuer,
 * so a logout from one provider never matches another's sessions (after
 * a reload to another provider).  0, or -1 for a value too long.
 */
static int
session_tag_make(enum session_tag_kind kind, const char *iss, const char *value,
    unsigned char out[STORE_TAG_LEN])
{
	unsigned char buf[64 + 2 * SESSION_TAG_VALUE_MAX + 16];
	unsigned char md[CRYPTO_SHA256_LEN];
	size_t il = strlen(iss), vl = strlen(value), n;

	if (il > SESSION_TAG_VALUE_MAX || vl > SESSION_TAG_VALUE_MAX || vl == 0)
		return -1;
	n = (size_t)snprintf((char *)buf, 64, "gatehouse-tag %s %zu %zu ",
	    kind == SESSION_TAG_SID ? "sid" : "sub", il, vl);
	memcpy(buf + n, iss, il);
	n += il;
	memcpy(buf + n, value, vl);
	n += vl;
	if (crypto_sha256(buf, n, md) == -1)
		return -1;
	memcpy(out, md, STORE_TAG_LEN);
	return 0;
}

int
session_tags_fill(const json_t *claims, struct store_tags *t)
{
	const char *iss, *v;

	memset(t, 0, sizeof(*t));
	iss = json_string_value(json_object_get(claims, "iss"));
	if (iss == NULL)
		return -1;
	v = json_string_value(json_object_get(claims, "sid"));
	if (v != NULL &&
	    session_tag_make(
	        SESSION_TAG_SID, iss, v, t->stg_tag[STORE_TAG_SID]) == 0)
		t->stg_have[STORE_TAG_SID] = 1;
	v = json_string_value(json_object_get(claims, "sub"));
	if (v != NULL &&
	    session_tag_make(
	        SESSION_TAG_SUB, iss, v, t->stg_tag[STORE_TAG_SUB]) == 0)
		t->stg_have[STORE_TAG_SUB] = 1;
	return 0;
}

int
session_tags_for(enum session_tag_kind kind, const char *iss, const char *value,
    unsigned char out[STORE_TAG_LEN])
{
	return session_tag_make(kind, iss, value, out);
}
