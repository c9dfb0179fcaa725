/* SPDX-License-Identifier: ISC */
/*
 * route_parse.c: the `route` line grammar into struct policy_route, and the
 * `route` / `route_case_insensitive` config keys.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

#define POLICY_MAX_WORDS 64

/* Split s in place on blanks; returns the word count or -1 if too many. */
static int
policy_split(char *s, char **words)
{
	int n = 0;

	for (;;) {
		s += strspn(s, " \t");
		if (*s == '\0')
			return n;
		if (n == POLICY_MAX_WORDS)
			return -1;
		words[n++] = s;
		s += strcspn(s, " \t");
		if (*s == '\0')
			return n;
		*s++ = '\0';
	}
}

/* The words after the action: criteria, sorted into groups of kinds. */
static int
policy_parse_criteria(
    struct policy_route *r, char **words, int n, struct gh_error *err)
{
	int i;

	if (n == 0)
		return 0;
	r->pr_crits = calloc((size_t)n, sizeof(*r->pr_crits));
	if (r->pr_crits == NULL) {
		gh_error_set(err, "nomem", "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(words[i], "anonymous") == 0 ||
		    strcmp(words[i], "authenticated") == 0) {
			gh_error_set(err, "route_bad_criteria",
			    "\"%s\" must stand alone after \"allow\"",
			    words[i]);
			return -1;
		}
		if (policy_crit_parse(&r->pr_crits[i], words[i], err) == -1)
			return -1;
		r->pr_ncrits++;
		if (r->pr_crits[i].pc_kind == POLICY_KIND_GROUP)
			r->pr_has_groups = 1;
	}
	qsort(r->pr_crits, r->pr_ncrits, sizeof(*r->pr_crits), policy_crit_cmp);
	return 0;
}

static int
policy_parse_action(
    struct policy_route *r, char **words, int n, struct gh_error *err)
{
	const char *act = words[0];

	if (strcmp(act, "deny") == 0) {
		r->pr_action = POLICY_ACTION_DENY;
		if (n > 1) {
			gh_error_set(err, "route_bad_criteria",
			    "\"deny\" takes no criteria");
			return -1;
		}
		return 0;
	}
	if (strcmp(act, "bearer") == 0) {
		r->pr_action = POLICY_ACTION_BEARER;
		return policy_parse_criteria(r, words + 1, n - 1, err);
	}
	if (strcmp(act, "allow") != 0) {
		gh_error_set(err, "route_unknown_action",
		    "unknown action \"%.32s\" (expected allow, deny or bearer)",
		    act);
		return -1;
	}
	if (n == 1) {
		gh_error_set(err, "route_bad_criteria",
		    "\"allow\" needs anonymous, authenticated or criteria");
		return -1;
	}
	if (n >= 2 && strcmp(words[1], "anonymous") == 0) {
		r->pr_action = POLICY_ACTION_ANONYMOUS;
		if (n == 2)
			return 0;
		if (n == 3 && strcmp(words[2], "identity=off") == 0) {
			r->pr_identity_off = 1;
			return 0;
		}
		if (n == 3 && strcmp(words[2], "identity=on") == 0)
			return 0;
		gh_error_set(err, "route_bad_criteria",
		    "\"anonymous\" must stand alone after \"allow\" (only "
		    "identity=off or identity=on may follow it)");
		return -1;
	}
	r->pr_action = POLICY_ACTION_SIGNED_IN;
	if (n == 2 && strcmp(words[1], "authenticated") == 0)
		return 0;
	return policy_parse_criteria(r, words + 1, n - 1, err);
}

/*
 * Options that end a route line as KEY=VALUE words, one row each.  No
 * criterion reads as one: a criterion's kind ends in ':' before any '='
 * (claim:a=b), and identity=off belongs to the action, before them.
 */
struct policy_option {
	const char *po_key;
	int (*po_parse)(struct policy_route *, const char *, struct gh_error *);
};

static int
policy_option_upstream(
    struct policy_route *r, const char *value, struct gh_error *err)
{
	/* Which names exist is the configuration's to say, not the table's:
	 * the caller checks each one against its upstreams. */
	if (r->pr_upstream != NULL || *value == '\0') {
		gh_error_set(err, "route_bad_option",
		    *value == '\0' ? "upstream= needs a name"
		                   : "upstream= is given twice");
		return -1;
	}
	r->pr_upstream = strdup(value);
	if (r->pr_upstream == NULL) {
		gh_error_set(err, "nomem", "out of memory");
		return -1;
	}
	return 0;
}

static int
policy_option_token(
    struct policy_route *r, const char *value, struct gh_error *err)
{
	size_t len = strspn(value,
	    "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");

	/* Which profiles exist is the configuration's to say: the caller
	 * checks the name against its token.NAME lines. */
	if (len == 0 || len > 64 || value[len] != '\0') {
		gh_error_set(err, "route_bad_option",
		    "token= needs the NAME of a token.NAME line (letters, "
		    "digits, '_' or '-')");
		return -1;
	}
	if (r->pr_token != NULL) {
		gh_error_set(err, "route_bad_option", "token= is given twice");
		return -1;
	}
	r->pr_token = strdup(value);
	if (r->pr_token == NULL) {
		gh_error_set(err, "nomem", "out of memory");
		return -1;
	}
	return 0;
}

static const struct policy_option policy_options[] = {
    {"token", policy_option_token},
    {"upstream", policy_option_upstream},
};

/* The option word sets, or NULL when it is not one. */
static const struct policy_option *
policy_option_find(const char *word)
{
	const char *eq = strchr(word, '=');
	size_t i;

	if (eq == NULL)
		return NULL;
	for (i = 0; i < sizeof(policy_options) / sizeof(policy_options[0]); i++)
		if (strlen(policy_options[i].po_key) == (size_t)(eq - word) &&
		    strncmp(policy_options[i].po_key, word, eq - word) == 0)
			return &policy_options[i];
	return NULL;
}

/* Parse the options that end words[0..n), from the last one back.
 * Returns how many words come before them, or -1 with err set. */
static int
policy_parse_options(
    struct policy_route *r, char **words, int n, struct gh_error *err)
{
	const struct policy_option *o;

	while (n > 0) {
		o = policy_option_find(words[n - 1]);
		if (o == NULL)
			break;
		if (o->po_parse(r, strchr(words[n - 1], '=') + 1, err) == -1)
			return -1;
		n--;
	}
	return n;
}

static int
policy_table_append(struct policy_table *t, struct policy_route *r)
{
	struct policy_route **v;
	size_t cap;

	if (t->pt_nroutes == t->pt_cap) {
		cap = t->pt_cap == 0 ? 16 : t->pt_cap * 2;
		v = reallocarray(t->pt_routes, cap, sizeof(*v));
		if (v == NULL)
			return -1;
		t->pt_routes = v;
		t->pt_cap = cap;
	}
	t->pt_routes[t->pt_nroutes++] = r;
	return 0;
}

int
policy_route_add(
    struct policy_table *t, const char *text, int line, struct gh_error *err)
{
	struct policy_route *r = NULL;
	char *buf = NULL, *words[POLICY_MAX_WORDS];
	int n, w = 0, opts;

	buf = strdup(text);
	r = calloc(1, sizeof(*r));
	if (buf == NULL || r == NULL) {
		gh_error_set(err, "nomem", "out of memory");
		goto fail;
	}
	r->pr_line = line;
	n = policy_split(buf, words);
	if (n == -1) {
		gh_error_set(err, "route_too_long", "too many words in route");
		goto fail;
	}
	if (n == 0) {
		gh_error_set(err, "route_empty",
		    "empty route: expected "
		    "[METHODS] PATTERN ACTION");
		goto fail;
	}
	/* METHODS is there when the second word is the pattern. */
	if (words[0][0] != '/' && n > 1 && words[1][0] == '/') {
		if (policy_methods_parse(&r->pr_methods, words[0], err) == -1)
			goto fail;
		w = 1;
	}
	if (policy_pattern_compile(&r->pr_pat, words[w], err) == -1)
		goto fail;
	w++;
	opts = policy_parse_options(r, words + w, n - w, err);
	if (opts == -1)
		goto fail;
	n = w + opts;
	if (w == n) {
		gh_error_set(err, "route_no_action",
		    "missing action after the pattern (allow, deny or bearer)");
		goto fail;
	}
	if (policy_parse_action(r, words + w, n - w, err) == -1)
		goto fail;
	if (r->pr_action == POLICY_ACTION_DENY && r->pr_upstream != NULL) {
		gh_error_set(err, "route_bad_option",
		    "upstream= on a deny route: nothing is forwarded");
		goto fail;
	}
	/* Security: a token is the signed-in user's; anonymous, bearer and
	 * deny routes have no session to take it from (or must not send
	 * it: an anonymous route forwards identity, never a token). */
	if (r->pr_token != NULL && r->pr_action != POLICY_ACTION_SIGNED_IN) {
		gh_error_set(err, "route_bad_option",
		    "token= only goes on a route for signed-in users (allow "
		    "authenticated or allow CRITERIA)");
		goto fail;
	}
	if (policy_table_append(t, r) == -1) {
		gh_error_set(err, "nomem", "out of memory");
		goto fail;
	}
	free(buf);
	return 0;
fail:
	policy_route_free(r);
	free(buf);
	return -1;
}

/* Config glue: the route key appends to cfg->cf_routes, line by line. */

int
policy_config_route(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	static char errbuf[256];
	struct gh_error err;

	(void)key;
	if (cfg->cf_routes == NULL) {
		cfg->cf_routes = policy_table_new();
		if (cfg->cf_routes == NULL) {
			*errstr = "out of memory";
			return -1;
		}
	}
	if (policy_route_add(cfg->cf_routes, value, line, &err) == -1) {
		snprintf(errbuf, sizeof(errbuf), "%s", err.ge_msg);
		*errstr = errbuf;
		return -1;
	}
	return 0;
}

struct policy_report_arg {
	config_report_fn *report;
	void *arg;
};

static void
policy_config_report(int line, const char *msg, void *arg)
{
	struct policy_report_arg *ra = arg;

	ra->report(ra->arg, line, msg);
}

/*
 * The table's cross-key check: applies cf_route_case_insensitive and
 * trust_unverified_email to the table and fails on the first route that
 * can never match, reporting each with its line.  Returns the number of
 * problems.  Main thread.
 */
static int
policy_config_check(struct config *cfg, config_report_fn *report, void *arg)
{
	struct policy_report_arg ra = {report, arg};

	if (cfg->cf_routes == NULL)
		return 0;
	policy_table_set_case_insensitive(
	    cfg->cf_routes, cfg->cf_route_case_insensitive);
	policy_table_set_trust_unverified_email(
	    cfg->cf_routes, cfg->cf_trust_unverified_email);
	return policy_table_check(cfg->cf_routes, policy_config_report, &ra);
}

/* Sorted by name: looked up with bsearch. */
static const struct config_key policy_keys[] = {
    {"route", policy_config_route, 0, NULL,
        "Access policy: [METHODS] PATTERN ACTION [CRITERIA...] "
        "[token=NAME] [upstream=NAME]; first match wins, no match is "
        "denied.",
        CONFIG_MULTI},
    {"route_case_insensitive", config_parse_bool,
        offsetof(struct config, cf_route_case_insensitive), "off",
        "Match route patterns without regard to ASCII case.", 0},
    {"trust_unverified_email", config_parse_bool,
        offsetof(struct config, cf_trust_unverified_email), "off",
        "Use an email address the provider marks email_verified: false "
        "(email: criteria, X-Forwarded-Email); off ignores it.",
        0},
};

static void
policy_config_free(struct config *cfg)
{
	policy_table_free(cfg->cf_routes);
}

const struct config_module policy_config_module = {"policy", policy_keys,
    sizeof(policy_keys) / sizeof(policy_keys[0]), policy_config_check,
    policy_config_free};
