/* SPDX-License-Identifier: ISC */
/*
 * upstream_named.c: `upstream.NAME = URL` lines, each another upstream
 * beside the default one (same URL forms, the global upstream_* settings),
 * and the check that ties each route's upstream=NAME to one of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "policy.h"
#include "route/upstream.h"
#include "route/upstream_named.h"

#define UPSTREAM_NAMED_MAX_NAME 32

/* 1 when name is one a route can give: 1 to 32 letters, digits, '-' or
 * '_' (no '=', blank or control character to confuse a route line). */
static int
upstream_named_name_ok(const char *name, size_t len)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
	size_t i;

	if (len == 0 || len > UPSTREAM_NAMED_MAX_NAME)
		return 0;
	for (i = 0; i < len; i++)
		if (name[i] == '\0' || strchr(ok, name[i]) == NULL)
			return 0;
	return 1;
}

/* The named upstream called name, or NULL. */
static struct config_upstream *
upstream_named_find(const struct config *cfg, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < cfg->cf_nupstreams; i++)
		if (strlen(cfg->cf_upstreams[i].cu_name) == len &&
		    strncmp(cfg->cf_upstreams[i].cu_name, name, len) == 0)
			return &cfg->cf_upstreams[i];
	return NULL;
}

/*
 * value is "NAME URL" (config.c puts the word after "upstream." first).
 * A refused URL still leaves its name behind, marked failed, so that the
 * routes naming it get no second error for the one mistake.
 */
static int
upstream_named_parse(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	static char errbuf[96];
	const struct config_upstream *prev;
	struct config_upstream *v, *up;
	size_t nl = strcspn(value, " ");
	const char *url = value[nl] == ' ' ? value + nl + 1 : "";
	int rc;

	(void)key;
	if (!upstream_named_name_ok(value, nl)) {
		*errstr = "a name is 1 to 32 letters, digits, '-' or '_'";
		return -1;
	}
	prev = upstream_named_find(cfg, value, nl);
	if (prev != NULL) {
		snprintf(errbuf, sizeof(errbuf), "already set on line %d",
		    prev->cu_line);
		*errstr = errbuf;
		return -1;
	}
	v = reallocarray(cfg->cf_upstreams, cfg->cf_nupstreams + 1, sizeof(*v));
	if (v == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	cfg->cf_upstreams = v;
	up = &v[cfg->cf_nupstreams];
	memset(up, 0, sizeof(*up));
	if (*url == '\0') {
		*errstr = "needs a URL: http://host:port[/prefix] or "
		          "unix:/path/to/socket[:/prefix]";
		rc = -1;
	} else
		rc = upstream_url_parse(up, url, errstr);
	if (rc == -1) {
		upstream_url_cleanup(up);
		up->cu_failed = 1;
	}
	up->cu_name = strndup(value, nl);
	up->cu_line = line;
	if (up->cu_name == NULL) {
		upstream_url_cleanup(up);
		*errstr = "out of memory";
		return -1;
	}
	cfg->cf_nupstreams++;
	return rc;
}

static int
upstream_named_check(struct config *cfg, config_report_fn *report, void *arg)
{
	struct policy_table *t = cfg->cf_routes;
	const struct policy_route *r;
	struct config_upstream *up;
	const char *name;
	char msg[160];
	size_t i, n = policy_table_count(t);
	int problems = 0;

	for (i = 0; i < n; i++) {
		r = policy_table_route(t, i);
		name = policy_route_upstream(r);
		if (name == NULL)
			continue;
		up = upstream_named_find(cfg, name, strlen(name));
		if (up == NULL) {
			snprintf(msg, sizeof(msg),
			    "route: unknown upstream \"%.32s\" (no "
			    "upstream.%.32s line sets it)",
			    name, name);
			report(arg, policy_route_line(r), msg);
			problems++;
			continue;
		}
		up->cu_used = 1;
		policy_table_set_upstream_index(
		    t, i, (int)(up - cfg->cf_upstreams) + 1);
	}
	return problems;
}

int
upstream_named_warn_unused(const struct config *cfg, FILE *f)
{
	size_t i;
	int n = 0;

	for (i = 0; i < cfg->cf_nupstreams; i++) {
		if (cfg->cf_upstreams[i].cu_used)
			continue;
		fprintf(f,
		    "%s:%d: warning: upstream.%s is not used: no route "
		    "says upstream=%s\n",
		    cfg->cf_file, cfg->cf_upstreams[i].cu_line,
		    cfg->cf_upstreams[i].cu_name, cfg->cf_upstreams[i].cu_name);
		n++;
	}
	return n;
}

static void
upstream_named_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->cf_nupstreams; i++)
		upstream_url_cleanup(&cfg->cf_upstreams[i]);
	free(cfg->cf_upstreams);
	cfg->cf_upstreams = NULL;
	cfg->cf_nupstreams = 0;
}

static const struct config_key upstream_named_keys[] = {
    {"upstream.", upstream_named_parse, 0, NULL,
        "Another upstream, for the routes that end in upstream=NAME: "
        "same URL forms as upstream, its own keep-alive pool, the "
        "upstream_* settings.",
        CONFIG_MULTI | CONFIG_PREFIX},
};
const struct config_module upstream_named_config_module = {"upstream_named",
    upstream_named_keys,
    sizeof(upstream_named_keys) / sizeof(upstream_named_keys[0]),
    upstream_named_check, upstream_named_free};
