/* SPDX-License-Identifier: ISC */
/*
 * errpage_theme.c: the operator's branding of gatehouse's pages.  The
 * brand_* keys give the product name, logo and support contact; an
 * error_page_dir with a page.html replaces the built-in page's markup.
 * The template is read and checked with the configuration (so --check
 * names a bad one and no file is read on a request); each placeholder is
 * replaced by its value HTML-escaped, {{actions}} by the links and
 * buttons gatehouse built.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/config.h"
#include "http/errpage_theme.h"

/* A page is a few KiB; a bigger file is a mistake, not a page. */
#define ERRPAGE_THEME_MAX (64 * 1024)

enum errpage_theme_field {
	ETF_TITLE,
	ETF_HEADING,
	ETF_MESSAGE,
	ETF_ACTIONS,
	ETF_STATUS,
	ETF_REQUEST_ID,
	ETF_PRODUCT,
	ETF_LOGO_URL,
	ETF_SUPPORT,
	ETF_COUNT
};

static const char *const errpage_theme_names[ETF_COUNT] = {"title", "heading",
    "message", "actions", "status", "request_id", "product", "logo_url",
    "support"};

static const struct config_key errpage_theme_keys[] = {
    {"brand_logo_url", config_parse_str,
        offsetof(struct config, cf_brand_logo_url), NULL,
        "Logo shown on gatehouse's pages: an http(s) URL or a path on this "
        "site ({{logo_url}} in a template).",
        0},
    {"brand_name", config_parse_str, offsetof(struct config, cf_brand_name),
        NULL,
        "Product name shown on gatehouse's pages and in their title "
        "({{product}} in a template).",
        CONFIG_TEXT},
    {"brand_support", config_parse_str,
        offsetof(struct config, cf_brand_support), NULL,
        "Support contact shown on gatehouse's pages, e.g. an e-mail "
        "address ({{support}} in a template).",
        CONFIG_TEXT},
    {"error_page_dir", config_parse_str,
        offsetof(struct config, cf_error_page_dir), NULL,
        "Directory whose page.html replaces the built-in page markup; "
        "placeholders {{title}} {{heading}} {{message}} {{actions}} "
        "{{status}} {{request_id}} {{product}} {{logo_url}} {{support}}.",
        0},
};

/*
 * Find the placeholder starting at p ("{{"): its field and the text after
 * its "}}".  Spaces inside the braces are allowed.  Returns the field, or
 * -1 for an unclosed or unknown one.
 */
static int
errpage_theme_field(const char *p, const char **after)
{
	const char *s = p + 2, *e;
	size_t n;
	int i;

	while (*s == ' ')
		s++;
	n = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
	e = s + n;
	while (*e == ' ')
		e++;
	if (e[0] != '}' || e[1] != '}')
		return -1;
	for (i = 0; i < ETF_COUNT; i++)
		if (strlen(errpage_theme_names[i]) == n &&
		    strncmp(s, errpage_theme_names[i], n) == 0) {
			*after = e + 2;
			return i;
		}
	return -1;
}

/* Check a template; on a problem write "PATH:LINE: what" to msg. */
static int
errpage_theme_validate(
    const char *text, const char *path, char *msg, size_t size)
{
	const char *p, *after;
	int line = 1, seen = 0, f;

	for (p = text; *p != '\0'; p++) {
		if (*p == '\n')
			line++;
		if (p[0] != '{' || p[1] != '{')
			continue;
		f = errpage_theme_field(p, &after);
		if (f == -1) {
			snprintf(msg, size,
			    "error_page_dir: %s:%d: unknown or unclosed "
			    "placeholder \"%.24s\" (known: title, heading, "
			    "message, actions, status, request_id, product, "
			    "logo_url, support)",
			    path, line, p);
			return -1;
		}
		seen |= 1 << f;
		p = after - 1;
	}
	if ((seen & (1 << ETF_MESSAGE)) == 0 ||
	    (seen & (1 << ETF_ACTIONS)) == 0) {
		snprintf(msg, size,
		    "error_page_dir: %s: needs {{message}} and {{actions}}, "
		    "or people see no reason and no next step",
		    path);
		return -1;
	}
	return 0;
}

/* Read path whole; NULL with errno set (ENOENT: no template). */
static char *
errpage_theme_read(const char *path, char *msg, size_t size)
{
	FILE *f;
	char *text;
	size_t n;

	f = fopen(path, "r");
	if (f == NULL) {
		if (errno != ENOENT)
			snprintf(msg, size, "error_page_dir: %s: %s", path,
			    strerror(errno));
		return NULL;
	}
	text = malloc(ERRPAGE_THEME_MAX + 1);
	if (text == NULL) {
		fclose(f);
		snprintf(msg, size, "error_page_dir: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	n = fread(text, 1, ERRPAGE_THEME_MAX + 1, f);
	if (ferror(f) || n > ERRPAGE_THEME_MAX || memchr(text, '\0', n)) {
		snprintf(msg, size, "error_page_dir: %s: %s", path,
		    ferror(f) ? "cannot be read"
		        : n > ERRPAGE_THEME_MAX
		        ? "larger than 64 KiB"
		        : "contains a NUL byte: not an HTML template");
		fclose(f);
		free(text);
		errno = EINVAL;
		return NULL;
	}
	fclose(f);
	text[n] = '\0';
	return text;
}

/* Whether a logo URL is safe in src="...": http(s) or a path here. */
static int
errpage_theme_url_ok(const char *u)
{
	const unsigned char *p;

	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0 &&
	    (u[0] != '/' || u[1] == '/' || u[1] == '\\'))
		return 0;
	for (p = (const unsigned char *)u; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '\'' ||
		    *p == '<' || *p == '>' || *p == '\\')
			return 0;
	return 1;
}

static int
errpage_theme_config_check(
    struct config *cfg, config_report_fn *report, void *arg)
{
	char msg[512] = "", *path = NULL;
	struct stat st;
	int errors = 0;

	if (cfg->cf_brand_logo_url != NULL &&
	    !errpage_theme_url_ok(cfg->cf_brand_logo_url)) {
		report(arg, 0,
		    "brand_logo_url must be an http(s) URL or a path on this "
		    "site, without spaces or quotes");
		errors++;
	}
	free(cfg->cf_page_template);
	cfg->cf_page_template = NULL;
	if (cfg->cf_error_page_dir == NULL)
		return errors;
	if (asprintf(&path, "%s/page.html", cfg->cf_error_page_dir) == -1) {
		report(arg, 0, "error_page_dir: out of memory");
		return errors + 1;
	}
	/* The directory itself must be there: a typo would otherwise fall
	 * back to the built-in page unseen. */
	if (stat(cfg->cf_error_page_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(msg, sizeof(msg), "error_page_dir: %s: %s",
		    cfg->cf_error_page_dir,
		    stat(cfg->cf_error_page_dir, &st) == -1
		        ? strerror(errno)
		        : "not a directory");
		report(arg, 0, msg);
		free(path);
		return errors + 1;
	}
	cfg->cf_page_template = errpage_theme_read(path, msg, sizeof(msg));
	if (cfg->cf_page_template == NULL) {
		/* A missing page.html means the built-in page. */
		if (msg[0] != '\0') {
			report(arg, 0, msg);
			errors++;
		}
	} else if (errpage_theme_validate(
	               cfg->cf_page_template, path, msg, sizeof(msg)) == -1) {
		report(arg, 0, msg);
		errors++;
		free(cfg->cf_page_template);
		cfg->cf_page_template = NULL;
	}
	free(path);
	return errors;
}

static void
errpage_theme_config_free(struct config *cfg)
{
	free(cfg->cf_page_template);
	cfg->cf_page_template = NULL;
}

const struct config_module errpage_theme_config_module = {"pages",
    errpage_theme_keys,
    sizeof(errpage_theme_keys) / sizeof(errpage_theme_keys[0]),
    errpage_theme_config_check, errpage_theme_config_free};

void
errpage_theme_escape(struct evbuffer *buf, const char *s)
{
	const char *p;

	for (p = s; *p != '\0'; p++) {
		switch (*p) {
		case '&':
			evbuffer_add(buf, "&amp;", 5);
			break;
		case '<':
			evbuffer_add(buf, "&lt;", 4);
			break;
		case '>':
			evbuffer_add(buf, "&gt;", 4);
			break;
		case '"':
			evbuffer_add(buf, "&quot;", 6);
			break;
		case '\'':
			evbuffer_add(buf, "&#39;", 5);
			break;
		default:
			evbuffer_add(buf, p, 1);
		}
	}
}

static void
errpage_theme_value(struct evbuffer *out, const char *s)
{
	errpage_theme_escape(out, s != NULL ? s : "");
}

int
errpage_theme_render(const struct config *cfg, const struct errpage_fields *f,
    struct evbuffer *out)
{
	const char *p, *lit, *after;
	int field;

	if (cfg == NULL || cfg->cf_page_template == NULL)
		return -1;
	lit = cfg->cf_page_template;
	for (p = lit; *p != '\0'; p++) {
		if (p[0] != '{' || p[1] != '{')
			continue;
		/* Checked at load: every "{{" opens a known placeholder. */
		field = errpage_theme_field(p, &after);
		if (field == -1)
			continue;
		evbuffer_add(out, lit, (size_t)(p - lit));
		switch (field) {
		case ETF_TITLE:
			errpage_theme_value(out, f->ef_title);
			break;
		case ETF_HEADING:
			errpage_theme_value(out, f->ef_heading);
			break;
		case ETF_MESSAGE:
			errpage_theme_value(out, f->ef_message);
			break;
		case ETF_ACTIONS:
			/* Already HTML, built from escaped values. */
			evbuffer_add_printf(out, "%s",
			    f->ef_actions != NULL ? f->ef_actions : "");
			break;
		case ETF_STATUS:
			evbuffer_add_printf(out, "%d", f->ef_status);
			break;
		case ETF_REQUEST_ID:
			errpage_theme_value(out, f->ef_request_id);
			break;
		case ETF_PRODUCT:
			errpage_theme_value(out, cfg->cf_brand_name);
			break;
		case ETF_LOGO_URL:
			errpage_theme_value(out, cfg->cf_brand_logo_url);
			break;
		case ETF_SUPPORT:
			errpage_theme_value(out, cfg->cf_brand_support);
			break;
		}
		lit = after;
		p = after - 1;
	}
	evbuffer_add(out, lit, (size_t)(p - lit));
	return 0;
}
