/* SPDX-License-Identifier: ISC */
/*
 * policy.h: per-route access policies.  A table of `route` lines,
 *   route [METHODS] PATTERN ACTION [CRITERIA...]
 * matched first-match-wins against the normalised path (path.h); no match
 * means deny.  Pure C over jansson claims, no I/O.  A table is built once
 * on the main thread, then only read: policy_match() and policy_eval() are
 * safe from any number of worker threads and never allocate.
 */
#ifndef GATEHOUSE_POLICY_H
#define GATEHOUSE_POLICY_H

#include <stddef.h>

#include <jansson.h>

#include "core/config.h"
#include "core/error.h"

struct policy_table;
struct policy_route;

/* What a route does once it has matched. */
enum policy_action {
	POLICY_ACTION_ANONYMOUS, /* allow anonymous: anyone */
	POLICY_ACTION_SIGNED_IN, /* allow authenticated / allow CRITERIA */
	POLICY_ACTION_DENY,      /* deny: everyone, signed in or not */
	POLICY_ACTION_BEARER     /* API: identity from a Bearer JWT */
};

/* The outcome of policy_eval(). */
enum policy_verdict {
	POLICY_ALLOW, /* forward the request */
	POLICY_DENY,  /* 403: signed in but criteria fail, or a deny route */
	POLICY_NEED_LOGIN, /* 401 / sign-in: no identity and the route needs one
	                    */
	POLICY_NEED_GROUPS /* the token has group overage: fetch the groups
	                      (Graph) and call policy_eval_groups(), or deny
	                      with a log line; never treat as allow */
};

/* A new, empty table (free with policy_table_free), or NULL (ENOMEM). */
struct policy_table *policy_table_new(void);

/* Free the table and all its routes; NULL is a no-op. */
void policy_table_free(struct policy_table *t);

/*
 * Match route patterns without regard to ASCII case (route_case_insensitive
 * = on).  A table-wide setting so that it does not depend on where the key
 * sits among the route lines.  The forwarded path keeps its case.
 */
void policy_table_set_case_insensitive(struct policy_table *t, int on);

/*
 * Let email: criteria match an address the provider marks unverified
 * (trust_unverified_email = on).  Table-wide, like the above; off by
 * default (see policy_claims_email).
 */
void policy_table_set_trust_unverified_email(struct policy_table *t, int on);

/*
 * The "email" claim of claims (borrowed from claims), or NULL when there
 * is none, it is empty, or the provider says it is unverified
 * ("email_verified": false or "false") and trust_unverified is 0.  An
 * absent email_verified is not a refusal: many providers only send
 * verified addresses and omit the claim.  The one rule for email:
 * criteria and the X-Forwarded-Email header.  Pure; any thread.
 */
const char *policy_claims_email(const json_t *claims, int trust_unverified);

/* Number of routes in the table. */
size_t policy_table_count(const struct policy_table *t);
/* The i-th route in file order (borrowed), or NULL past the end. */
const struct policy_route *policy_table_route(
    const struct policy_table *t, size_t i);

/*
 * Parse one route line, the text after the key `route` (e.g. "GET,HEAD
 * /docs/\* allow authenticated"), and append it to t.  line is the config
 * line, kept for messages (0 if unknown).  Returns 0, or -1 with err set to
 * a message naming the problem (unknown action, unknown criterion kind,
 * empty value, bad pattern, bad method); t is unchanged on error.
 * Grammar and semantics:
 *   METHODS   optional comma list of upper-case tokens (GET,HEAD,...);
 *             absent = every method.  GET does not imply HEAD.
 *   PATTERN   "/health" is exact (it also matches "/health/");
 *             "/admin/\*" is a prefix: /admin, /admin/ and everything
 *             below, not /administrator; "*" as a whole inner segment
 *             matches exactly one segment (as in "/reports/" "*" "/pdf");
 *             "/\*" matches every path.  A pattern is in normal form
 *             (path.h) and holds no ';' or %3B.  Path segments are
 *             compared on their name, before any ';' or %3B, so
 *             /admin;x/y is matched as /admin/y, as a servlet would.
 *   ACTION    "allow anonymous [identity=off]" | "allow authenticated" |
 *             "allow CRITERIA" | "deny" | "bearer [CRITERIA]" (bearer
 *             without criteria: any valid token).
 *   CRITERIA  role:NAME (claim "roles"), group:ID ("groups"), email:GLOB
 *             ("email"; '*' matches any run of characters other than '@',
 *             the whole address is compared case-insensitively, exactly one
 *             '@' required), tenant:ID ("tid", case-insensitive: a GUID),
 *             scope:NAME ("scp" or "scope", space-separated),
 *             claim:NAME=VALUE (string claim equal, string-array claim
 *             containing, or true/false/integer claim whose text equals).
 *             Same kind = alternatives (OR), different kinds all must
 *             hold (AND); for claim: the kind is the claim name, so
 *             claim:dept=a claim:dept=b is OR, claim:dept=a claim:c=d AND.
 *   token=NAME  (last word; signed-in routes only) forward the access
 *             token of the profile token.NAME on this route (the
 *             configuration's check knows the names).
 *   identity=off  (anonymous routes only) forward no identity even when
 *             the request carries a valid session; by default a valid
 *             session's identity headers go along (never a token, never
 *             a refresh or a redirect).
 *   OPTIONS   KEY=VALUE words that end the line, after the criteria (and
 *             after identity=off), each at most once:
 *             upstream=NAME  the named upstream the request goes to
 *             (letters, digits, '-', '_'); not on a deny route.  Whether
 *             NAME exists is the caller's check.
 *   Note: "email" is mutable and, for multi-tenant apps, set by other
 *   tenants; combine email: with tenant: (entra.md 3.4).
 */
int policy_route_add(
    struct policy_table *t, const char *text, int line, struct gh_error *err);

/*
 * Report every route that can never match because an earlier route with
 * the same or more methods has a pattern covering it (e.g. "/\*" then
 * anything, "/a/\*" then "/a/b").  report (may be NULL) is called once per
 * such route with its line and a message.  Returns how many were found.
 */
int policy_table_check(const struct policy_table *t,
    void (*report)(int line, const char *msg, void *arg), void *arg);

/*
 * 1 if s[0..len) is a method gatehouse routes: an upper-case token (A-Z,
 * then A-Z, 0-9, '-' or '_'; RFC 9110 9.1 makes methods case-sensitive and
 * every registered one is upper-case), else 0.  The one rule for a route
 * line's method list, a request line's method in proxy mode and the method
 * a front proxy names to forward-auth, so that a method a route can name is
 * exactly a method a request can be matched with.  Any thread.
 */
int policy_method_valid(const char *s, size_t len);

/*
 * The first route matching method and normalised_path (the output of
 * path_normalise()), or NULL: no match, which means deny.  The result is
 * borrowed from t.  Never allocates.
 */
const struct policy_route *policy_match(const struct policy_table *t,
    const char *method, const char *normalised_path);

/* Accessors; strings are borrowed from the route's table. */
enum policy_action policy_route_action(const struct policy_route *r);
const char *policy_route_pattern(const struct policy_route *r);
int policy_route_line(const struct policy_route *r);
/* A number the table's owner keeps with each route (gatehouse: its
 * metrics label), 0 until set.  Set on the main thread while the table
 * is being built, before any worker reads it. */
int policy_route_tag(const struct policy_route *r);
void policy_table_set_tag(struct policy_table *t, size_t i, int tag);
/* The route's upstream=NAME (borrowed), or NULL: the default upstream. */
const char *policy_route_upstream(const struct policy_route *r);
/* A number the table's owner keeps for that upstream (gatehouse: 0 the
 * default, i the i-th named one), 0 until set; set like the tag. */
int policy_route_upstream_index(const struct policy_route *r);
void policy_table_set_upstream_index(
    struct policy_table *t, size_t i, int index);
/* 1 if the route has criteria at all (else its verdict needs no claims). */
int policy_route_has_criteria(const struct policy_route *r);
/* 1 if an "allow anonymous" route forwards a valid session's identity
 * (the default; the option identity=off turns it off), else 0. */
int policy_route_identity(const struct policy_route *r);
/* The token profile the route forwards (its token=NAME option; borrowed
 * from the table), or NULL. */
const char *policy_route_token(const struct policy_route *r);
/* 1 if the route has group: criteria (the caller may prefetch groups). */
int policy_route_has_groups(const struct policy_route *r);

/*
 * Evaluate route r on claims (borrowed; NULL when not signed in, or for
 * bearer routes when no valid token came).  deny -> POLICY_DENY; allow
 * anonymous -> POLICY_ALLOW; otherwise no claims -> POLICY_NEED_LOGIN,
 * criteria hold -> POLICY_ALLOW, fail -> POLICY_DENY, and
 * POLICY_NEED_GROUPS when only group: criteria are undecided because the
 * token has no "groups" but signals overage ("_claim_names" has "groups",
 * or "hasgroups": true).  Never allocates.
 */
enum policy_verdict policy_eval(
    const struct policy_route *r, const json_t *claims);

/*
 * As policy_eval(), with groups (borrowed JSON array of group id strings,
 * e.g. Graph getMemberObjects' "value") used instead of the "groups"
 * claim; never returns POLICY_NEED_GROUPS.  groups NULL = policy_eval().
 */
enum policy_verdict policy_eval_groups(
    const struct policy_route *r, const json_t *claims, const json_t *groups);

/*
 * Why r refuses claims (and groups, as policy_eval_groups), for the access
 * log: the first criterion group that fails, as written in the route
 * ("role:Admin", or "role:A|role:B" for alternatives), "route" for a deny
 * route, "no_route" when r is NULL, "" when nothing fails.  Written to
 * buf (size bytes, truncated); returns buf.  Never allocates.
 */
const char *policy_deny_reason(const struct policy_route *r,
    const json_t *claims, const json_t *groups, char *buf, size_t size);

/* A short name for logs: "allow", "deny", "need_login", "need_groups". */
const char *policy_verdict_name(enum policy_verdict v);

/*
 * Configuration: the `route` key (CONFIG_MULTI), `route_case_insensitive`
 * and `trust_unverified_email` (bools, default off).  The route table lives
 * in struct config as `struct policy_table *cf_routes`, freed by the
 * module's free hook.  config_modules.c lists it.
 */
extern const struct config_module policy_config_module;

/*
 * Parse one `route` value at config line `line` into cfg->cf_routes
 * (created on first use).  Returns 0 or -1 with *errstr set to a static
 * message.  Main thread, while loading the config.
 */
int policy_config_route(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr);

#endif
