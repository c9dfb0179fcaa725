/* SPDX-License-Identifier: ISC */
/*
 * predicates.c: the criterion kinds, one row each (tmux cmd_entry style):
 * the word before ':', the claim it reads, and how it is checked.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy_int.h"

typedef enum policy_tri policy_check_fn(
    const struct policy_crit *, const json_t *claims, const json_t *groups);

struct policy_pred {
	const char *pd_name; /* "role" in "role:Admin" */
	enum policy_kind pd_kind;
	const char *pd_claim; /* the claim read (claim: names its own) */
	policy_check_fn *pd_check;
};

static policy_check_fn policy_check_role, policy_check_group,
    policy_check_email, policy_check_tenant, policy_check_scope,
    policy_check_claim;

static const struct policy_pred policy_preds[] = {
    {"role", POLICY_KIND_ROLE, "roles", policy_check_role},
    {"group", POLICY_KIND_GROUP, "groups", policy_check_group},
    {"email", POLICY_KIND_EMAIL, "email", policy_check_email},
    {"tenant", POLICY_KIND_TENANT, "tid", policy_check_tenant},
    {"scope", POLICY_KIND_SCOPE, "scp", policy_check_scope},
    {"claim", POLICY_KIND_CLAIM, NULL, policy_check_claim},
};

#define POLICY_NPREDS (sizeof(policy_preds) / sizeof(policy_preds[0]))

static const struct policy_pred *
policy_pred_find(enum policy_kind kind)
{
	size_t i;

	for (i = 0; i < POLICY_NPREDS; i++)
		if (policy_preds[i].pd_kind == kind)
			return &policy_preds[i];
	return NULL;
}

/* 1 if v (a string, or an array of strings) is or holds value. */
static int
policy_json_has(const json_t *v, const char *value, int ci)
{
	const json_t *e;
	size_t i;

	if (json_is_string(v))
		return ci ? strcasecmp(json_string_value(v), value) == 0
		          : strcmp(json_string_value(v), value) == 0;
	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, e)
	{
		if (json_is_string(e) &&
		    (ci ? strcasecmp(json_string_value(e), value) == 0
		        : strcmp(json_string_value(e), value) == 0))
			return 1;
	}
	return 0;
}

static enum policy_tri
policy_tri(int b)
{
	return b ? POLICY_TRUE : POLICY_FALSE;
}

static enum policy_tri
policy_check_role(
    const struct policy_crit *c, const json_t *claims, const json_t *groups)
{
	(void)groups;
	return policy_tri(
	    policy_json_has(json_object_get(claims, "roles"), c->pc_value, 0));
}

/*
 * Entra leaves "groups" out above 200 groups and signals it with
 * _claim_names.groups (or hasgroups: true).  Security: never read that as
 * "not a member" nor as "member"; say UNKNOWN so the caller fetches the
 * list or denies with a log line.
 */
static enum policy_tri
policy_check_group(
    const struct policy_crit *c, const json_t *claims, const json_t *groups)
{
	const json_t *v, *names;

	if (groups != NULL)
		return policy_tri(policy_json_has(groups, c->pc_value, 0));
	v = json_object_get(claims, "groups");
	if (v != NULL)
		return policy_tri(policy_json_has(v, c->pc_value, 0));
	names = json_object_get(claims, "_claim_names");
	if (json_object_get(names, "groups") != NULL ||
	    json_is_true(json_object_get(claims, "hasgroups")))
		return POLICY_UNKNOWN;
	return POLICY_FALSE;
}

/* Plain '*' glob, case-insensitive; the classic one-backtrack walk. */
static int
policy_glob(const char *pat, size_t plen, const char *s, size_t slen)
{
	size_t p = 0, i = 0, star = (size_t)-1, mark = 0;

	while (i < slen) {
		if (p < plen && pat[p] == '*') {
			star = p++;
			mark = i;
		} else if (p < plen &&
		    (unsigned char)pat[p] ==
		        (unsigned char)(s[i] >= 'A' && s[i] <= 'Z'
		                ? s[i] - 'A' + 'a'
		                : s[i])) {
			p++;
			i++;
		} else if (star != (size_t)-1) {
			p = star + 1;
			i = ++mark;
		} else
			return 0;
	}
	while (p < plen && pat[p] == '*')
		p++;
	return p == plen;
}

/*
 * email:GLOB.  The pattern (lower-cased at parse time) and the address each
 * have exactly one '@'; local parts and domains are globbed separately, so
 * '*' never crosses the '@' (security: "*@contoso.com" must not accept
 * "x@evil.example@contoso.com").  Case-insensitive throughout: mailbox
 * providers treat local parts so in practice and Entra does too.  An
 * address the provider marks unverified never matches (policy_claims_email).
 */
const char *
policy_claims_email(const json_t *claims, int trust_unverified)
{
	const json_t *v = json_object_get(claims, "email_verified");
	const char *email = json_string_value(json_object_get(claims, "email"));

	if (email == NULL || email[0] == '\0')
		return NULL;
	/* Security: a provider that lets anyone type an address and marks
	 * it unverified (Auth0, Cognito, Keycloak without verification)
	 * would otherwise let a stranger claim a colleague's address.
	 * Some providers send the flag as a string. */
	if (!trust_unverified &&
	    (json_is_false(v) ||
	        (json_is_string(v) &&
	            strcasecmp(json_string_value(v), "false") == 0)))
		return NULL;
	return email;
}

static enum policy_tri
policy_check_email(
    const struct policy_crit *c, const json_t *claims, const json_t *groups)
{
	const char *email, *at, *pat = c->pc_value, *pat_at;

	(void)groups;
	email = policy_claims_email(claims, c->pc_trust_unverified);
	if (email == NULL)
		return POLICY_FALSE;
	at = strchr(email, '@');
	if (at == NULL || at == email || strchr(at + 1, '@') != NULL)
		return POLICY_FALSE;
	pat_at = strchr(pat, '@');
	return policy_tri(policy_glob(pat, (size_t)(pat_at - pat), email,
	                      (size_t)(at - email)) &&
	    policy_glob(
	        pat_at + 1, strlen(pat_at + 1), at + 1, strlen(at + 1)));
}

static enum policy_tri
policy_check_tenant(
    const struct policy_crit *c, const json_t *claims, const json_t *groups)
{
	const char *tid;

	(void)groups;
	tid = json_string_value(json_object_get(claims, "tid"));
	return policy_tri(tid != NULL && strcasecmp(tid, c->pc_value) == 0);
}

/* 1 if the space-separated list holds word. */
static int
policy_words_has(const char *list, const char *word)
{
	size_t wlen = strlen(word), len;

	while (*list != '\0') {
		while (*list == ' ')
			list++;
		len = strcspn(list, " ");
		if (len == wlen && memcmp(list, word, len) == 0)
			return 1;
		list += len;
	}
	return 0;
}

static int
policy_scopes_has(const json_t *v, const char *scope)
{
	if (json_is_string(v))
		return policy_words_has(json_string_value(v), scope);
	return json_is_array(v) && policy_json_has(v, scope, 0);
}

/* Entra access tokens carry "scp"; RFC 9068 tokens carry "scope". */
static enum policy_tri
policy_check_scope(
    const struct policy_crit *c, const json_t *claims, const json_t *groups)
{
	(void)groups;
	return policy_tri(
	    policy_scopes_has(json_object_get(claims, "scp"), c->pc_value) ||
	    policy_scopes_has(json_object_get(claims, "scope"), c->pc_value));
}

static enum policy_tri
policy_check_claim(
    const struct policy_crit *c, const json_t *claims, const json_t *groups)
{
	const json_t *v;
	char num[32];

	(void)groups;
	v = json_object_get(claims, c->pc_name);
	if (json_is_boolean(v))
		return policy_tri(strcmp(json_is_true(v) ? "true" : "false",
		                      c->pc_value) == 0);
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return policy_tri(strcmp(num, c->pc_value) == 0);
	}
	return policy_tri(policy_json_has(v, c->pc_value, 0));
}

enum policy_tri
policy_crit_eval(
    const struct policy_crit *c, const json_t *claims, const json_t *groups)
{
	const struct policy_pred *pd = policy_pred_find(c->pc_kind);

	if (pd == NULL || claims == NULL)
		return POLICY_FALSE;
	return pd->pd_check(c, claims, groups);
}

static int
policy_email_pattern_ok(const char *v)
{
	const char *at = strchr(v, '@');

	return at != NULL && at != v && at[1] != '\0' &&
	    strchr(at + 1, '@') == NULL;
}

int
policy_crit_parse(struct policy_crit *c, const char *word, struct gh_error *err)
{
	const struct policy_pred *pd = NULL;
	const char *colon, *value, *eq;
	size_t i, klen;
	char *p;

	memset(c, 0, sizeof(*c));
	colon = strchr(word, ':');
	klen = colon == NULL ? 0 : (size_t)(colon - word);
	for (i = 0; colon != NULL && i < POLICY_NPREDS; i++)
		if (strlen(policy_preds[i].pd_name) == klen &&
		    memcmp(policy_preds[i].pd_name, word, klen) == 0)
			pd = &policy_preds[i];
	if (pd == NULL) {
		gh_error_set(err, "route_unknown_kind",
		    "unknown criterion kind \"%.*s\" (expected role:, group:, "
		    "email:, tenant:, scope: or claim:)",
		    colon == NULL ? 48 : (int)(klen > 48 ? 48 : klen), word);
		return -1;
	}
	c->pc_kind = pd->pd_kind;
	value = colon + 1;
	if (pd->pd_kind == POLICY_KIND_CLAIM) {
		eq = strchr(value, '=');
		if (eq == NULL || eq == value || eq[1] == '\0') {
			gh_error_set(err, "route_empty_value",
			    "claim: needs NAME=VALUE, both non-empty");
			return -1;
		}
		c->pc_name = strndup(value, (size_t)(eq - value));
		value = eq + 1;
		if (c->pc_name == NULL)
			goto nomem;
	}
	if (*value == '\0') {
		gh_error_set(err, "route_empty_value", "%s: has an empty value",
		    pd->pd_name);
		goto fail;
	}
	if (pd->pd_kind == POLICY_KIND_EMAIL &&
	    !policy_email_pattern_ok(value)) {
		gh_error_set(err, "route_bad_email",
		    "email: pattern needs exactly one '@' with text on both "
		    "sides (e.g. *@contoso.com)");
		goto fail;
	}
	c->pc_value = strdup(value);
	if (c->pc_value == NULL)
		goto nomem;
	if (pd->pd_kind == POLICY_KIND_EMAIL)
		for (p = c->pc_value; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return 0;
nomem:
	gh_error_set(err, "nomem", "out of memory");
fail:
	policy_crit_cleanup(c);
	return -1;
}

void
policy_crit_cleanup(struct policy_crit *c)
{
	free(c->pc_name);
	c->pc_name = NULL;
	free(c->pc_value);
	c->pc_value = NULL;
}

int
policy_crit_same_group(const struct policy_crit *a, const struct policy_crit *b)
{
	if (a->pc_kind != b->pc_kind)
		return 0;
	if (a->pc_kind == POLICY_KIND_CLAIM)
		return strcmp(a->pc_name, b->pc_name) == 0;
	return 1;
}

/* qsort order: kind, then claim name, so each group is contiguous. */
int
policy_crit_cmp(const void *a, const void *b)
{
	const struct policy_crit *x = a, *y = b;

	if (x->pc_kind != y->pc_kind)
		return x->pc_kind < y->pc_kind ? -1 : 1;
	if (x->pc_kind == POLICY_KIND_CLAIM)
		return strcmp(x->pc_name, y->pc_name);
	return 0;
}

int
policy_crit_format(const struct policy_crit *c, char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < POLICY_NPREDS; i++)
		if (policy_preds[i].pd_kind == c->pc_kind)
			break;
	if (i == POLICY_NPREDS)
		return snprintf(buf, size, "?");
	if (c->pc_name != NULL)
		return snprintf(buf, size, "%s:%s=%s", policy_preds[i].pd_name,
		    c->pc_name, c->pc_value);
	return snprintf(
	    buf, size, "%s:%s", policy_preds[i].pd_name, c->pc_value);
}
