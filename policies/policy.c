/* SPDX-License-Identifier: ISC */
/*
 * policy.c: the route table: first match wins, no match = deny; evaluation
 * of a matched route on the caller's claims; unreachable-route check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

struct policy_table *
policy_table_new(void)
{
	return calloc(1, sizeof(struct policy_table));
}

void
policy_route_free(struct policy_route *r)
{
	size_t i;

	if (r == NULL)
		return;
	policy_methods_cleanup(&r->pr_methods);
	policy_pattern_cleanup(&r->pr_pat);
	for (i = 0; i < r->pr_ncrits; i++)
		policy_crit_cleanup(&r->pr_crits[i]);
	free(r->pr_crits);
	free(r->pr_upstream);
	free(r->pr_token);
	free(r);
}

void
policy_table_free(struct policy_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->pt_nroutes; i++) {
		policy_route_free(t->pt_routes[i]);
		t->pt_routes[i] = NULL;
	}
	free(t->pt_routes);
	free(t);
}

void
policy_table_set_case_insensitive(struct policy_table *t, int on)
{
	t->pt_case_insensitive = on != 0;
}

void
policy_table_set_trust_unverified_email(struct policy_table *t, int on)
{
	struct policy_route *r;
	size_t i, j;

	for (i = 0; i < t->pt_nroutes; i++) {
		r = t->pt_routes[i];
		for (j = 0; j < r->pr_ncrits; j++)
			r->pr_crits[j].pc_trust_unverified = on != 0;
	}
}

size_t
policy_table_count(const struct policy_table *t)
{
	return t == NULL ? 0 : t->pt_nroutes;
}

const struct policy_route *
policy_table_route(const struct policy_table *t, size_t i)
{
	return t == NULL || i >= t->pt_nroutes ? NULL : t->pt_routes[i];
}

const struct policy_route *
policy_match(const struct policy_table *t, const char *method,
    const char *normalised_path)
{
	const struct policy_route *r;
	unsigned int bit;
	size_t i;

	if (t == NULL || method == NULL || normalised_path == NULL)
		return NULL;
	bit = policy_method_bit(method);
	for (i = 0; i < t->pt_nroutes; i++) {
		r = t->pt_routes[i];
		if (policy_methods_match(&r->pr_methods, method, bit) &&
		    policy_pattern_match(
		        &r->pr_pat, normalised_path, t->pt_case_insensitive))
			return r;
	}
	return NULL;
}

enum policy_action
policy_route_action(const struct policy_route *r)
{
	return r->pr_action;
}

const char *
policy_route_pattern(const struct policy_route *r)
{
	return r->pr_pat.pp_text;
}

int
policy_route_line(const struct policy_route *r)
{
	return r->pr_line;
}

int
policy_route_tag(const struct policy_route *r)
{
	return r->pr_tag;
}

void
policy_table_set_tag(struct policy_table *t, size_t i, int tag)
{
	if (i < t->pt_nroutes)
		t->pt_routes[i]->pr_tag = tag;
}

const char *
policy_route_upstream(const struct policy_route *r)
{
	return r->pr_upstream;
}

int
policy_route_upstream_index(const struct policy_route *r)
{
	return r->pr_upstream_index;
}

void
policy_table_set_upstream_index(struct policy_table *t, size_t i, int index)
{
	if (i < t->pt_nroutes)
		t->pt_routes[i]->pr_upstream_index = index;
}

int
policy_route_has_criteria(const struct policy_route *r)
{
	return r->pr_ncrits > 0;
}

int
policy_route_identity(const struct policy_route *r)
{
	return r->pr_action == POLICY_ACTION_ANONYMOUS && !r->pr_identity_off;
}

const char *
policy_route_token(const struct policy_route *r)
{
	return r->pr_token;
}

int
policy_route_has_groups(const struct policy_route *r)
{
	return r->pr_has_groups;
}

/*
 * Criteria are sorted so that alternatives (same kind) are contiguous: each
 * run needs one TRUE; every run must pass.  A run that is only UNKNOWN
 * (group overage) makes the answer NEED_GROUPS, unless another run fails,
 * which denies at once without a Graph call.
 */
enum policy_verdict
policy_eval_groups(
    const struct policy_route *r, const json_t *claims, const json_t *groups)
{
	enum policy_tri res;
	size_t i, j;
	int pass, unknown, need_groups = 0;

	if (r == NULL || r->pr_action == POLICY_ACTION_DENY)
		return POLICY_DENY;
	if (r->pr_action == POLICY_ACTION_ANONYMOUS)
		return POLICY_ALLOW;
	if (claims == NULL)
		return POLICY_NEED_LOGIN;
	if (!json_is_object(claims))
		return POLICY_DENY;
	for (i = 0; i < r->pr_ncrits; i = j) {
		pass = unknown = 0;
		for (j = i; j < r->pr_ncrits &&
		     policy_crit_same_group(&r->pr_crits[i], &r->pr_crits[j]);
		     j++) {
			if (pass)
				continue;
			res = policy_crit_eval(&r->pr_crits[j], claims, groups);
			if (res == POLICY_TRUE)
				pass = 1;
			else if (res == POLICY_UNKNOWN)
				unknown = 1;
		}
		if (pass)
			continue;
		if (!unknown)
			return POLICY_DENY;
		need_groups = 1;
	}
	return need_groups ? POLICY_NEED_GROUPS : POLICY_ALLOW;
}

const char *
policy_deny_reason(const struct policy_route *r, const json_t *claims,
    const json_t *groups, char *buf, size_t size)
{
	size_t i, j, n;
	int pass, w;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	if (r == NULL || r->pr_action == POLICY_ACTION_DENY) {
		snprintf(buf, size, "%s", r == NULL ? "no_route" : "route");
		return buf;
	}
	if (!json_is_object(claims))
		return buf;
	/* The first group of alternatives none of which holds, named as
	 * written (alternatives joined by '|'). */
	for (i = 0; i < r->pr_ncrits; i = j) {
		pass = 0;
		for (j = i; j < r->pr_ncrits &&
		     policy_crit_same_group(&r->pr_crits[i], &r->pr_crits[j]);
		     j++)
			if (!pass &&
			    policy_crit_eval(&r->pr_crits[j], claims, groups) ==
			        POLICY_TRUE)
				pass = 1;
		if (pass)
			continue;
		for (n = 0; i < j && n + 1 < size; i++) {
			if (n > 0)
				buf[n++] = '|';
			w = policy_crit_format(
			    &r->pr_crits[i], buf + n, size - n);
			if (w < 0 || (size_t)w >= size - n) {
				buf[size - 1] = '\0';
				break;
			}
			n += (size_t)w;
		}
		return buf;
	}
	return buf;
}

enum policy_verdict
policy_eval(const struct policy_route *r, const json_t *claims)
{
	return policy_eval_groups(r, claims, NULL);
}

const char *
policy_verdict_name(enum policy_verdict v)
{
	switch (v) {
	case POLICY_ALLOW:
		return "allow";
	case POLICY_DENY:
		return "deny";
	case POLICY_NEED_LOGIN:
		return "need_login";
	case POLICY_NEED_GROUPS:
		return "need_groups";
	}
	return "unknown";
}

int
policy_table_check(const struct policy_table *t,
    void (*report)(int line, const char *msg, void *arg), void *arg)
{
	const struct policy_route *a, *b;
	char msg[256];
	size_t i, j;
	int found = 0;

	if (t == NULL)
		return 0;
	for (j = 1; j < t->pt_nroutes; j++) {
		b = t->pt_routes[j];
		for (i = 0; i < j; i++) {
			a = t->pt_routes[i];
			if (!policy_methods_covers(
			        &a->pr_methods, &b->pr_methods) ||
			    !policy_pattern_covers(
			        &a->pr_pat, &b->pr_pat, t->pt_case_insensitive))
				continue;
			found++;
			if (report != NULL) {
				snprintf(msg, sizeof(msg),
				    "route %.80s can never match: the route "
				    "on line %d (%.80s) comes first and covers "
				    "it",
				    b->pr_pat.pp_text, a->pr_line,
				    a->pr_pat.pp_text);
				report(b->pr_line, msg, arg);
			}
			break;
		}
	}
	return found;
}
