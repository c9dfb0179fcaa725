/* SPDX-License-Identifier: ISC */
/*
 * resp_hdrs.h: the header fields of a response gatehouse builds itself
 * (redirects, error pages, /.auth answers, forward-auth verdicts), in the
 * order they were added.  conn_respond writes them as they are.  Proxied
 * responses do not pass through here: their head is written line by line
 * from the upstream's (proxy.c).
 *
 * A field is checked when it is added, not when it is written: the name
 * must be an RFC 9110 token and the value must hold no CR, LF or NUL, so
 * that nothing taken from a request, a token or the provider can end a
 * line early and smuggle in a header of its own.  A refused field is not
 * stored at all.
 *
 * The struct is embedded (in the request context); all-zero bytes are a
 * valid empty set, so calloc is its init.  Values may be secrets (session
 * cookies, access tokens): resp_hdrs_cleanup wipes them.
 */
#ifndef GATEHOUSE_RESP_HDRS_H
#define GATEHOUSE_RESP_HDRS_H

#include <stddef.h>

/* One field.  rh_name and rh_value are NUL-terminated; rh_value points
 * into the same allocation as rh_name. */
struct resp_hdr {
	char *rh_name;
	char *rh_value;
	size_t rh_nlen;
	size_t rh_vlen;
};

/* Read-only to callers: iterate rh_v[0 .. rh_n - 1]. */
struct resp_hdrs {
	struct resp_hdr *rh_v;
	size_t rh_n;
	size_t rh_cap;
};

/* An empty set (the same as zeroing it). */
void resp_hdrs_init(struct resp_hdrs *h);

/* Free every field (values wiped first); h is empty and usable again. */
void resp_hdrs_cleanup(struct resp_hdrs *h);

/*
 * Append the field name: value (both copied).  Returns 0, or -1 when the
 * name is not a token, the value holds CR, LF or NUL, or memory ran out;
 * nothing is added then.  resp_hdrs_addn takes the value's length, so a
 * value cut from a larger buffer needs no copy first.
 */
int resp_hdrs_add(struct resp_hdrs *h, const char *name, const char *value);
int resp_hdrs_addn(
    struct resp_hdrs *h, const char *name, const char *value, size_t vlen);

/*
 * Remove every field called name (case-insensitive), then append
 * name: value.  Returns as resp_hdrs_add; when the new field is refused,
 * the old ones are gone all the same.
 */
int resp_hdrs_set(struct resp_hdrs *h, const char *name, const char *value);

/* The first field called name (case-insensitive): its value, borrowed
 * until the field is removed; NULL when there is none. */
const char *resp_hdrs_get(const struct resp_hdrs *h, const char *name);

/* Remove every field called name; returns how many were removed. */
size_t resp_hdrs_remove(struct resp_hdrs *h, const char *name);

#endif
