/* SPDX-License-Identifier: ISC */
/*
 * aadsts.h: Entra's AADSTS error numbers that a person can act on, said in
 * plain words (what happened, who does what next), and the references
 * Microsoft's support asks for (trace id, correlation id, timestamp) read
 * out of an error without its description.
 *
 * Security: everything here reads the provider's text, which is hostile;
 * only a number, GUID-like ids and a timestamp of digits and punctuation
 * are taken, never the description's words (they may name the user).
 */
#ifndef GATEHOUSE_AADSTS_H
#define GATEHOUSE_AADSTS_H

#include <stddef.h>

#include <jansson.h>

/* Who can fix it: the person signing in, or the site's administrator. */
#define AADSTS_USER 0
#define AADSTS_ADMIN 1

struct aadsts_entry {
	long ae_code;
	const char *ae_label;   /* short token: consent_required, ... */
	int ae_who;             /* AADSTS_USER or AADSTS_ADMIN */
	int ae_status;          /* the page's HTTP status */
	const char *ae_heading; /* the page's heading */
	const char *ae_message; /* what happened and what to do next */
};

/* What Entra's support needs to find one error; each "" when absent. */
struct aadsts_ref {
	long ar_code; /* 0 when none */
	char ar_trace[40];
	char ar_corr[40];
	char ar_time[40];
};

/* The entry of code, or NULL when gatehouse has no words for it. */
const struct aadsts_entry *aadsts_find(long code);

/*
 * Read a reference out of an error_description ("AADSTS65001: ... Trace
 * ID: ... Correlation ID: ... Timestamp: ..."), as Entra sends it to the
 * redirect URI.  d may be NULL.
 */
void aadsts_ref_from_text(const char *d, struct aadsts_ref *r);

/*
 * Read a reference out of an Entra error body (JSON): the first of
 * error_codes, trace_id, correlation_id, timestamp.
 */
void aadsts_ref_from_json(const json_t *doc, struct aadsts_ref *r);

/*
 * Whether an answer of HTTP status with body says the tenant does not
 * exist (Entra answers discovery for an unknown tenant with 400 and
 * AADSTS90002, or 900023 for a malformed one; "invalid_tenant").  Fills r
 * from the body either way.
 */
int aadsts_tenant_not_found(
    long status, const char *body, size_t len, struct aadsts_ref *r);

/* " AADSTS65001 trace_id=... correlation_id=... timestamp=...": the
 * fields present, each after a space, for a log line ("" for none). */
void aadsts_ref_format(const struct aadsts_ref *r, char *buf, size_t size);

#endif
