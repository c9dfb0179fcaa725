/* SPDX-License-Identifier: ISC */
/*
 * match.c: method lists and path patterns: compiled once at parse time
 * into segment arrays, then matched without allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "path.h"
#include "policy_int.h"

static const char *const policy_method_names[] = {"GET", "HEAD", "POST", "PUT",
    "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"};

#define POLICY_NMETHODS                                                        \
	(sizeof(policy_method_names) / sizeof(policy_method_names[0]))

unsigned int
policy_method_bit(const char *method)
{
	size_t i;

	for (i = 0; i < POLICY_NMETHODS; i++)
		if (strcmp(method, policy_method_names[i]) == 0)
			return 1u << i;
	return 0;
}

int
policy_method_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !(s[0] >= 'A' && s[0] <= 'Z'))
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		        s[i] == '_'))
			return 0;
	return 1;
}

static int
policy_methods_add_other(struct policy_methods *pm, const char *s, size_t len)
{
	char **v;
	size_t i;

	for (i = 0; i < pm->pm_nother; i++)
		if (strlen(pm->pm_other[i]) == len &&
		    memcmp(pm->pm_other[i], s, len) == 0)
			return 0;
	v = reallocarray(pm->pm_other, pm->pm_nother + 1, sizeof(*v));
	if (v == NULL)
		return -1;
	pm->pm_other = v;
	v[pm->pm_nother] = strndup(s, len);
	if (v[pm->pm_nother] == NULL)
		return -1;
	pm->pm_nother++;
	return 0;
}

int
policy_methods_parse(
    struct policy_methods *pm, const char *text, struct gh_error *err)
{
	const char *p = text, *comma;
	char name[16];
	unsigned int bit;
	size_t len;

	memset(pm, 0, sizeof(*pm));
	for (;;) {
		comma = strchr(p, ',');
		len = comma == NULL ? strlen(p) : (size_t)(comma - p);
		if (!policy_method_valid(p, len)) {
			gh_error_set(err, "route_bad_method",
			    "bad method \"%.*s\": methods are upper-case "
			    "tokens "
			    "separated by ','",
			    (int)(len > 32 ? 32 : len), p);
			goto fail;
		}
		bit = 0;
		if (len < sizeof(name)) {
			memcpy(name, p, len);
			name[len] = '\0';
			bit = policy_method_bit(name);
		}
		if (bit != 0)
			pm->pm_mask |= bit;
		else if (policy_methods_add_other(pm, p, len) == -1) {
			gh_error_set(err, "nomem", "out of memory");
			goto fail;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
fail:
	policy_methods_cleanup(pm);
	return -1;
}

void
policy_methods_cleanup(struct policy_methods *pm)
{
	size_t i;

	for (i = 0; i < pm->pm_nother; i++)
		free(pm->pm_other[i]);
	free(pm->pm_other);
	pm->pm_other = NULL;
	pm->pm_nother = 0;
	pm->pm_mask = 0;
}

static int
policy_methods_any(const struct policy_methods *pm)
{
	return pm->pm_mask == 0 && pm->pm_nother == 0;
}

/* Methods are case-sensitive (RFC 9110 9.1). */
int
policy_methods_match(
    const struct policy_methods *pm, const char *method, unsigned int bit)
{
	size_t i;

	if (policy_methods_any(pm))
		return 1;
	if (bit != 0)
		return (pm->pm_mask & bit) != 0;
	for (i = 0; i < pm->pm_nother; i++)
		if (strcmp(pm->pm_other[i], method) == 0)
			return 1;
	return 0;
}

int
policy_methods_covers(
    const struct policy_methods *a, const struct policy_methods *b)
{
	size_t i;

	if (policy_methods_any(a))
		return 1;
	if (policy_methods_any(b))
		return 0;
	if ((b->pm_mask & ~a->pm_mask) != 0)
		return 0;
	for (i = 0; i < b->pm_nother; i++)
		if (!policy_methods_match(a, b->pm_other[i], 0))
			return 0;
	return 1;
}

int
policy_pattern_compile(
    struct policy_pattern *pp, const char *text, struct gh_error *err)
{
	struct gh_error perr;
	char *norm = NULL, *p, *slash;
	size_t n;

	memset(pp, 0, sizeof(*pp));
	if (text[0] != '/') {
		gh_error_set(err, "route_bad_pattern",
		    "bad pattern \"%.64s\": a pattern starts with '/'", text);
		goto fail;
	}
	n = strlen(text);
	norm = path_normalise_dup(text, 0, &perr);
	if (norm == NULL) {
		gh_error_set(err, "route_bad_pattern",
		    "bad pattern \"%.64s\": %s", text, perr.ge_msg);
		goto fail;
	}
	if (strcmp(norm, text) != 0) {
		gh_error_set(err, "route_bad_pattern",
		    "bad pattern \"%.64s\": not in normal form (write "
		    "\"%.64s\")",
		    text, norm);
		goto fail;
	}
	if (path_segment_name_len(text, n) != n) {
		gh_error_set(err, "route_bad_pattern",
		    "bad pattern \"%.64s\": ';' (or %%3B) parameters are "
		    "ignored when matching, leave them out",
		    text);
		goto fail;
	}
	if (n > 1 && text[n - 1] == '/') {
		gh_error_set(err, "route_bad_pattern",
		    "bad pattern \"%.64s\": no trailing '/' (\"/a\" matches "
		    "\"/a/\" too; \"/a/*\" is the prefix form)",
		    text);
		goto fail;
	}
	pp->pp_text = norm;
	norm = NULL;
	pp->pp_segs = calloc(n, sizeof(*pp->pp_segs));
	if (pp->pp_segs == NULL) {
		gh_error_set(err, "nomem", "out of memory");
		goto fail;
	}
	for (p = pp->pp_text + 1; *p != '\0'; p = slash + 1) {
		struct policy_seg *s = &pp->pp_segs[pp->pp_nsegs];

		slash = p + strcspn(p, "/");
		s->ps_str = p;
		s->ps_len = (size_t)(slash - p);
		if (memchr(p, '*', s->ps_len) != NULL) {
			if (s->ps_len != 1) {
				gh_error_set(err, "route_bad_pattern",
				    "bad pattern \"%.64s\": '*' must be a "
				    "whole "
				    "segment",
				    text);
				goto fail;
			}
			s->ps_star = 1;
		}
		pp->pp_nsegs++;
		if (*slash == '\0')
			break;
	}
	/* A trailing "/\*" is the prefix form. */
	if (pp->pp_nsegs > 0 && pp->pp_segs[pp->pp_nsegs - 1].ps_star) {
		pp->pp_nsegs--;
		pp->pp_prefix = 1;
	}
	return 0;
fail:
	free(norm);
	policy_pattern_cleanup(pp);
	return -1;
}

void
policy_pattern_cleanup(struct policy_pattern *pp)
{
	free(pp->pp_text);
	pp->pp_text = NULL;
	free(pp->pp_segs);
	pp->pp_segs = NULL;
	pp->pp_nsegs = 0;
}

static int
policy_seg_eq(const char *a, size_t alen, const char *b, size_t blen, int ci)
{
	size_t i;
	unsigned char x, y;

	if (alen != blen)
		return 0;
	if (!ci)
		return memcmp(a, b, alen) == 0;
	for (i = 0; i < alen; i++) {
		x = (unsigned char)a[i];
		y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return 1;
}

/*
 * path is normalised: it starts with '/', has no empty or dot segments and
 * at most a trailing '/', which is ignored.  Each path segment is compared
 * on its name, before any ';' or %3B (security: /admin;x/y is /admin/y to
 * a servlet upstream, so it must meet the policy of /admin/\*).
 */
int
policy_pattern_match(const struct policy_pattern *pp, const char *path, int ci)
{
	const struct policy_seg *s;
	const char *p = path, *end;
	size_t i, len;

	if (*p != '/')
		return 0;
	for (i = 0; i < pp->pp_nsegs; i++) {
		s = &pp->pp_segs[i];
		if (*p != '/' || p[1] == '\0')
			return 0; /* the path has fewer segments */
		p++;
		for (end = p; *end != '\0' && *end != '/'; end++)
			continue;
		if (!s->ps_star) {
			len = path_segment_name_len(p, (size_t)(end - p));
			if (!policy_seg_eq(s->ps_str, s->ps_len, p, len, ci))
				return 0;
		}
		p = end;
	}
	if (pp->pp_prefix)
		return 1;
	return p[0] == '\0' || (p[0] == '/' && p[1] == '\0');
}

/* 1 if every path matching b also matches a. */
int
policy_pattern_covers(
    const struct policy_pattern *a, const struct policy_pattern *b, int ci)
{
	const struct policy_seg *sa, *sb;
	size_t i;

	if (a->pp_prefix) {
		if (b->pp_nsegs < a->pp_nsegs)
			return 0;
	} else if (b->pp_prefix || b->pp_nsegs != a->pp_nsegs)
		return 0;
	for (i = 0; i < a->pp_nsegs; i++) {
		sa = &a->pp_segs[i];
		sb = &b->pp_segs[i];
		if (sa->ps_star)
			continue;
		if (sb->ps_star ||
		    !policy_seg_eq(
		        sa->ps_str, sa->ps_len, sb->ps_str, sb->ps_len, ci))
			return 0;
	}
	return 1;
}
