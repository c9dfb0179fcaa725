/* SPDX-License-Identifier: ISC */
/*
 * policy_int.h: the policies module's private types, shared by policy.c,
 * route_parse.c, match.c and predicates.c only.
 */
#ifndef GATEHOUSE_POLICY_INT_H
#define GATEHOUSE_POLICY_INT_H

#include <stddef.h>

#include <jansson.h>

#include "core/error.h"
#include "policy.h"

/* One pattern segment; ps_str points into pp_text. */
struct policy_seg {
	const char *ps_str;
	size_t ps_len;
	int ps_star; /* "*": any one segment */
};

/* A pattern compiled at parse time (no work left for the request path). */
struct policy_pattern {
	char *pp_text; /* the pattern as written (normal form) */
	struct policy_seg *pp_segs;
	size_t pp_nsegs;
	int pp_prefix; /* ended in "/\*": zero or more further segments */
};

/* Methods: a bit per well-known method plus a list of other tokens. */
struct policy_methods {
	unsigned int pm_mask; /* 0 and no others = every method */
	char **pm_other;
	size_t pm_nother;
};

/* Criterion kinds, one row each in predicates.c's table. */
enum policy_kind {
	POLICY_KIND_ROLE,
	POLICY_KIND_GROUP,
	POLICY_KIND_EMAIL,
	POLICY_KIND_TENANT,
	POLICY_KIND_SCOPE,
	POLICY_KIND_CLAIM
};

struct policy_crit {
	enum policy_kind pc_kind;
	char *pc_name;           /* claim name for claim:, else NULL */
	char *pc_value;          /* value; email: lower-cased glob */
	int pc_trust_unverified; /* email: trust_unverified_email */
};

/* Result of one criterion. */
enum policy_tri { POLICY_FALSE, POLICY_TRUE, POLICY_UNKNOWN };

struct policy_route {
	int pr_line;
	enum policy_action pr_action;
	struct policy_methods pr_methods;
	struct policy_pattern pr_pat;
	struct policy_crit *pr_crits; /* sorted by kind, then claim name */
	size_t pr_ncrits;
	int pr_has_groups;
	int pr_identity_off;   /* identity=off: no identity on anonymous */
	int pr_tag;            /* the caller's number (policy_table_set_tag) */
	char *pr_upstream;     /* upstream=NAME, or NULL for the default */
	int pr_upstream_index; /* the caller's number for it */
	char *pr_token;        /* token=NAME: the profile forwarded, or NULL */
};

struct policy_table {
	struct policy_route **pt_routes;
	size_t pt_nroutes;
	size_t pt_cap;
	int pt_case_insensitive;
};

/* match.c */
int policy_pattern_compile(
    struct policy_pattern *pp, const char *text, struct gh_error *err);
void policy_pattern_cleanup(struct policy_pattern *pp);
int policy_pattern_match(
    const struct policy_pattern *pp, const char *path, int ci);
int policy_pattern_covers(
    const struct policy_pattern *a, const struct policy_pattern *b, int ci);
int policy_methods_parse(
    struct policy_methods *pm, const char *text, struct gh_error *err);
void policy_methods_cleanup(struct policy_methods *pm);
/* The bit of a well-known method, or 0. */
unsigned int policy_method_bit(const char *method);
int policy_methods_match(
    const struct policy_methods *pm, const char *method, unsigned int bit);
int policy_methods_covers(
    const struct policy_methods *a, const struct policy_methods *b);

/* predicates.c */
/* Parse "kind:value" into c (new strings); 0 or -1 with err. */
int policy_crit_parse(
    struct policy_crit *c, const char *word, struct gh_error *err);
void policy_crit_cleanup(struct policy_crit *c);
/* 1 if a and b are alternatives of one another (same kind/claim). */
int policy_crit_same_group(
    const struct policy_crit *a, const struct policy_crit *b);
int policy_crit_cmp(const void *a, const void *b);
/* c as its route text ("role:Admin", "claim:dept=x") into buf; snprintf's
 * return. */
int policy_crit_format(const struct policy_crit *c, char *buf, size_t size);
enum policy_tri policy_crit_eval(
    const struct policy_crit *c, const json_t *claims, const json_t *groups);

/* policy.c */
void policy_route_free(struct policy_route *r);

#endif
