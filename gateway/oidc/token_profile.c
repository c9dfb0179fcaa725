/* SPDX-License-Identifier: ISC */
/*
 * token_profile.c: the `token.NAME = SCOPES` lines and their check
 * against the routes' token=NAME options.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "oidc/token_profile.h"
#include "policy.h"

/* The resource part of a scope ("https://graph.microsoft.com" of
 * "https://graph.microsoft.com/User.Read"; its length), or 0 for a short
 * scope (User.Read), which names no resource of its own. */
static size_t
token_profile_resource(const char *scope, size_t len)
{
	const char *sep = memmem(scope, len, "://", 3), *slash;

	if (sep == NULL)
		return 0;
	slash = memrchr(sep + 3, '/', len - (size_t)(sep + 3 - scope));
	return slash != NULL ? (size_t)(slash - scope) : len;
}

/*
 * Check the scope words of value and copy them single-spaced into *out
 * (new).  A scope is RFC 6749's scope-token; the OpenID scopes are the
 * sign-in's, and Entra redeems a refresh token for one resource at a
 * time, so a profile names scopes of one resource.
 */
static int
token_profile_scopes(const char *value, char **out, const char **errstr)
{
	static const char *const reserved[] = {
	    "openid", "profile", "offline_access", "email"};
	const char *p = value, *res = NULL;
	size_t n, rl = 0, i, len = 0;
	char *buf;

	buf = malloc(strlen(value) + 1);
	if (buf == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		n = strcspn(p, " \t");
		for (i = 0; i < n; i++)
			if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '"' ||
			    p[i] == '\\')
				goto bad;
		for (i = 0; i < 4; i++)
			if (strlen(reserved[i]) == n &&
			    memcmp(reserved[i], p, n) == 0) {
				*errstr =
				    "openid, profile, email and "
				    "offline_access are the sign-in's scopes; "
				    "name only the API's";
				goto fail;
			}
		if (token_profile_resource(p, n) > 0) {
			if (res != NULL &&
			    (token_profile_resource(p, n) != rl ||
			        memcmp(res, p, rl) != 0)) {
				*errstr = "the scopes name two resources; a "
				          "token is for one API: make a "
				          "token.NAME line for each";
				goto fail;
			}
			res = p;
			rl = token_profile_resource(p, n);
		}
		if (len > 0)
			buf[len++] = ' ';
		memcpy(buf + len, p, n);
		len += n;
		p += n;
	}
	if (len == 0) {
		*errstr = "needs the scopes of an API, e.g. "
		          "https://graph.microsoft.com/User.Read";
		goto fail;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
bad:
	*errstr = "a scope is printable ASCII without '\"' or '\\'";
fail:
	free(buf);
	return -1;
}

/* "NAME SCOPES" (config.c's form for a key family). */
static int
token_profile_parse(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	static char msg[160];
	struct token_profile *v, *tp;
	size_t nl = strcspn(value, " "), i;
	char *scopes = NULL, *name;

	(void)key;
	for (i = 0; i < cfg->cf_ntoken_profiles; i++) {
		tp = &cfg->cf_token_profiles[i];
		if (strlen(tp->tp_name) == nl &&
		    memcmp(tp->tp_name, value, nl) == 0) {
			snprintf(msg, sizeof(msg), "already set on line %d",
			    tp->tp_line);
			*errstr = msg;
			return -1;
		}
	}
	if (cfg->cf_ntoken_profiles == TOKEN_PROFILE_MAX) {
		*errstr = "too many token profiles (at most 16)";
		return -1;
	}
	if (token_profile_scopes(value + nl, &scopes, errstr) == -1)
		return -1;
	name = strndup(value, nl);
	v = reallocarray(
	    cfg->cf_token_profiles, cfg->cf_ntoken_profiles + 1, sizeof(*v));
	if (name == NULL || v == NULL) {
		free(name);
		free(scopes);
		if (v != NULL)
			cfg->cf_token_profiles = v;
		*errstr = "out of memory";
		return -1;
	}
	cfg->cf_token_profiles = v;
	tp = &v[cfg->cf_ntoken_profiles++];
	tp->tp_name = name;
	tp->tp_scopes = scopes;
	tp->tp_line = line;
	return 0;
}

const struct token_profile *
token_profile_find(const struct config *cfg, const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < cfg->cf_ntoken_profiles; i++)
		if (strcmp(cfg->cf_token_profiles[i].tp_name, name) == 0)
			return &cfg->cf_token_profiles[i];
	return NULL;
}

/* Every route's token=NAME names a profile; profiles need a provider. */
static int
token_profile_check(struct config *cfg, config_report_fn *report, void *arg)
{
	const struct policy_route *r;
	const char *name;
	char msg[192];
	size_t i;
	int bad = 0;

	for (i = 0; cfg->cf_routes != NULL &&
	     (r = policy_table_route(cfg->cf_routes, i)) != NULL;
	     i++) {
		name = policy_route_token(r);
		if (name == NULL || token_profile_find(cfg, name) != NULL)
			continue;
		snprintf(msg, sizeof(msg),
		    "route: token=%s names no profile (add a line "
		    "\"token.%s = SCOPES\")",
		    name, name);
		report(arg, policy_route_line(r), msg);
		bad++;
	}
	if (cfg->cf_ntoken_profiles > 0 && cfg->cf_authority == NULL &&
	    cfg->cf_oidc_issuer == NULL) {
		report(arg, cfg->cf_token_profiles[0].tp_line,
		    "token.NAME needs a provider (authority or oidc_issuer)");
		bad++;
	}
	return bad;
}

static void
token_profile_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->cf_ntoken_profiles; i++) {
		free(cfg->cf_token_profiles[i].tp_name);
		free(cfg->cf_token_profiles[i].tp_scopes);
	}
	free(cfg->cf_token_profiles);
	cfg->cf_token_profiles = NULL;
	cfg->cf_ntoken_profiles = 0;
}

static const struct config_key token_profile_keys[] = {
    {"token.", token_profile_parse, 0, NULL,
        "A downstream token profile: the scopes of one API (e.g. "
        "https://graph.microsoft.com/User.Read or api://my-api/.default); "
        "a route ending in token=NAME forwards its access token.",
        CONFIG_PREFIX | CONFIG_MULTI},
};

const struct config_module token_profile_config_module = {"token_profile",
    token_profile_keys,
    sizeof(token_profile_keys) / sizeof(token_profile_keys[0]),
    token_profile_check, token_profile_free};
