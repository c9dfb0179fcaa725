/* SPDX-License-Identifier: ISC */
/*
 * identity.h: the signed-in user's identity as headers for the upstream
 * (and forward-auth's answer), and as a name for logs and /.auth/me.
 * Pure: every function here works on what it is given and keeps no state.
 */
#ifndef GATEHOUSE_IDENTITY_H
#define GATEHOUSE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct secret;

/*
 * The identity header block for a signed-in user's claims (borrowed):
 * "X-Forwarded-User: ...\r\n" and the rest, X-Forwarded-Email and the Easy
 * Auth set (X-MS-CLIENT-PRINCIPAL-NAME, -ID, -IDP and X-MS-CLIENT-PRINCIPAL,
 * base64 JSON of the claims).  Control characters in claims are replaced.
 * An email the provider marks unverified is not sent as X-Forwarded-Email
 * nor used as the user name, unless trust_unverified_email is set (the
 * configuration key of that name).  Returns a new string or NULL.
 */
char *identity_block(const json_t *claims, int trust_unverified_email);

/*
 * The identity block `ident` followed by the access token's headers,
 * X-MS-TOKEN-AAD-ACCESS-TOKEN, X-MS-TOKEN-AAD-EXPIRES-ON (at_expires) and,
 * with `authorization`, Authorization: Bearer; the block alone when access
 * is NULL or empty.  A new string (it holds the token: cleanse it before
 * freeing) or NULL.
 */
char *identity_tokens(const char *ident, const struct secret *access,
    int64_t at_expires, int authorization);

/* t (seconds since the epoch) as ISO 8601 UTC, "2006-01-02T15:04:05Z". */
void identity_iso_time(int64_t t, char *buf, size_t size);

/* The user name for logs and /.auth/me: preferred_username, else email
 * (even unverified: the block above applies the stricter rule), else sub
 * (borrowed from claims; "" when none). */
const char *identity_user(const json_t *claims);

/* The name to show the person on a page: the display name (name), else
 * identity_user (borrowed from claims; "" when none). */
const char *identity_display_name(const json_t *claims);

#endif
