/* SPDX-License-Identifier: ISC */
/*
 * errpage.c: every failure a person can meet becomes one response here:
 * a short HTML page for browsers, JSON for API clients.  The page names
 * the next step (sign in, sign out or switch account, try again); the
 * signed-out page and the sign-out confirmation are pages of the same
 * kind.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/config.h"
#include "core/log.h"
#include "http/errpage.h"
#include "http/errpage_theme.h"
#include "http/request.h"
#include "http/worker.h"

static void
errpage_json_escape(struct evbuffer *buf, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			evbuffer_add_printf(buf, "\\%c", *p);
		else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&')
			evbuffer_add_printf(buf, "\\u%04x", *p);
		else
			evbuffer_add(buf, p, 1);
	}
}

int
errpage_wants_json(struct request_ctx *rq)
{
	const char *accept, *xrw;

	if (rq->rq_json)
		return 1;
	accept = request_header(rq, "Accept");
	xrw = request_header(rq, "X-Requested-With");
	if (xrw != NULL)
		return 1;
	if (accept == NULL)
		return 0;
	/* A browser's navigation lists text/html; an API client asks for
	 * JSON and not HTML. */
	return strstr(accept, "application/json") != NULL &&
	    strstr(accept, "text/html") == NULL;
}

static const char *
errpage_title(int status)
{
	switch (status) {
	case 200:
		return "Please confirm";
	case 400:
		return "Bad request";
	case 401:
		return "Sign-in required";
	case 403:
		return "Access denied";
	case 404:
		return "Not found";
	case 405:
		return "Method not allowed";
	case 413:
		return "Request body too large";
	case 414:
		return "Request URI too long";
	case 417:
		return "Expectation failed";
	case 431:
		return "Request headers too large";
	case 502:
		return "Bad gateway";
	case 503:
		return "Service unavailable";
	case 504:
		return "Gateway timeout";
	case 505:
		return "HTTP version not supported";
	default:
		return status >= 500 ? "Server error" : "Request refused";
	}
}

/* Append s percent-encoded as a query value: only unreserved characters
 * stay as they are. */
static void
errpage_url_escape(struct evbuffer *buf, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~')
			evbuffer_add(buf, p, 1);
		else
			evbuffer_add_printf(buf, "%%%02X", *p);
	}
}

/*
 * The request's own URL when a link back to it is safe and useful: a path
 * on this site (never "//host" or "/\host", which browsers read as another
 * site) outside gatehouse's own endpoints, whose URLs carry one-time codes
 * and state.  NULL otherwise.
 */
static const char *
errpage_own_path(struct request_ctx *rq, const struct config *cfg)
{
	const char *p = rq->rq_path, *n = rq->rq_normpath;
	size_t len;

	if (p == NULL || n == NULL || p[0] != '/' || p[1] == '/' ||
	    p[1] == '\\')
		return NULL;
	len = strlen(cfg->cf_auth_prefix);
	if (strncmp(n, cfg->cf_auth_prefix, len) == 0 &&
	    (n[len] == '\0' || n[len] == '/'))
		return NULL;
	if (cfg->cf_callback_path != NULL &&
	    strcmp(n, cfg->cf_callback_path) == 0)
		return NULL;
	return p;
}

/* One link of a page's next steps. */
static void
errpage_link(
    struct evbuffer *b, const char *id, const char *href, const char *label)
{
	evbuffer_add_printf(b, "<a id=\"%s\" href=\"", id);
	errpage_theme_escape(b, href);
	evbuffer_add_printf(b, "\">");
	errpage_theme_escape(b, label);
	evbuffer_add_printf(b, "</a>");
}

/*
 * The next steps when the caller named none, from the status: sign in
 * (401), sign out or switch account for a signed-in person (403), try
 * again (502, 504, for a request that is safe to repeat).  HTML only: the
 * JSON answer keeps its shape.
 */
static void
errpage_next_steps(
    struct request_ctx *rq, const struct errpage_page *pg, struct evbuffer *b)
{
	const struct config *cfg = rq->rq_worker != NULL ? rq->rq_cfg : NULL;
	const char *own;
	struct evbuffer *href;

	if (cfg == NULL || cfg->cf_auth_prefix == NULL)
		return;
	own = errpage_own_path(rq, cfg);
	href = evbuffer_new();
	if (href == NULL)
		return;
	if (pg->ep_status == 401) {
		evbuffer_add_printf(href,
		    "%s/login?post_login_redirect_uri=", cfg->cf_auth_prefix);
		errpage_url_escape(href, own != NULL ? own : "/");
		evbuffer_add(href, "", 1);
		evbuffer_add_printf(b, "<p class=\"actions\">");
		errpage_link(b, "signin",
		    (const char *)evbuffer_pullup(href, -1), "Sign in");
		evbuffer_add_printf(b, "</p>");
	} else if (pg->ep_status == 403 && pg->ep_user != NULL) {
		evbuffer_add_printf(b,
		    "<p class=\"actions\">Signed in as "
		    "<strong id=\"user\">");
		errpage_theme_escape(b, pg->ep_user);
		evbuffer_add_printf(b, "</strong> &mdash; ");
		evbuffer_add_printf(href, "%s/logout", cfg->cf_auth_prefix);
		evbuffer_add(href, "", 1);
		errpage_link(b, "signout",
		    (const char *)evbuffer_pullup(href, -1), "Sign out");
		evbuffer_drain(href, evbuffer_get_length(href));
		/* Ends the session here and asks the provider for its
		 * account picker, back to this page's URL. */
		evbuffer_add_printf(href,
		    "%s/logout?prompt=select_account&post_logout_redirect_uri=",
		    cfg->cf_auth_prefix);
		errpage_url_escape(href, own != NULL ? own : "/");
		evbuffer_add(href, "", 1);
		evbuffer_add_printf(b, " &middot; ");
		errpage_link(b, "switch",
		    (const char *)evbuffer_pullup(href, -1), "Switch account");
		evbuffer_add_printf(b, "</p>");
	} else if ((pg->ep_status == 502 || pg->ep_status == 504) &&
	    own != NULL &&
	    (strcmp(rq->rq_method, "GET") == 0 ||
	        strcmp(rq->rq_method, "HEAD") == 0)) {
		evbuffer_add_printf(b, "<p class=\"actions\">");
		errpage_link(b, "retry", own, "Try again");
		evbuffer_add_printf(b, "</p>");
	}
	evbuffer_free(href);
}

/* The page's actions as HTML: the caller's (a link, or with ep_form a
 * button that POSTs to a path here), else the status's next steps. */
static void
errpage_actions(
    struct request_ctx *rq, const struct errpage_page *pg, struct evbuffer *b)
{
	if (pg->ep_action != NULL && pg->ep_href != NULL && pg->ep_form) {
		evbuffer_add_printf(b, "<form method=\"post\" action=\"");
		errpage_theme_escape(b, pg->ep_href);
		evbuffer_add_printf(
		    b, "\"><button type=\"submit\" id=\"confirm\">");
		errpage_theme_escape(b, pg->ep_action);
		evbuffer_add_printf(b, "</button></form>");
	} else if (pg->ep_action != NULL && pg->ep_href != NULL) {
		evbuffer_add_printf(b, "<p class=\"actions\">");
		errpage_link(b, "action", pg->ep_href, pg->ep_action);
		evbuffer_add_printf(b, "</p>");
	} else
		errpage_next_steps(rq, pg, b);
}

/* The built-in page, with the operator's brand_* values when set. */
static void
errpage_builtin(const struct config *cfg, const struct errpage_fields *f,
    struct evbuffer *body)
{
	const char *product = cfg != NULL ? cfg->cf_brand_name : NULL;
	const char *logo = cfg != NULL ? cfg->cf_brand_logo_url : NULL;
	const char *support = cfg != NULL ? cfg->cf_brand_support : NULL;

	evbuffer_add_printf(body,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><title>");
	errpage_theme_escape(body, f->ef_title);
	evbuffer_add_printf(body,
	    "</title>"
	    "<meta name=\"viewport\" content=\"width=device-width\">"
	    "<style>body{font-family:system-ui,sans-serif;max-width:"
	    "40em;margin:4em auto;padding:0 1em;color:#222}"
	    "h1{font-size:1.4em}.id,.support{color:#777;font-size:.85em}"
	    ".brand{display:flex;align-items:center;gap:.6em;"
	    "font-weight:600}.brand img{max-height:2.5em}"
	    "</style></head><body>");
	if (product != NULL || logo != NULL) {
		evbuffer_add_printf(body, "<header class=\"brand\">");
		if (logo != NULL) {
			evbuffer_add_printf(body, "<img src=\"");
			errpage_theme_escape(body, logo);
			evbuffer_add_printf(body, "\" alt=\"\">");
		}
		if (product != NULL) {
			evbuffer_add_printf(body, "<span>");
			errpage_theme_escape(body, product);
			evbuffer_add_printf(body, "</span>");
		}
		evbuffer_add_printf(body, "</header>");
	}
	evbuffer_add_printf(body, "<h1>");
	errpage_theme_escape(body, f->ef_heading);
	evbuffer_add_printf(body, "</h1><p>");
	errpage_theme_escape(body, f->ef_message);
	evbuffer_add_printf(body, "</p>%s", f->ef_actions);
	if (support != NULL) {
		evbuffer_add_printf(body, "<p class=\"support\">Need help? ");
		errpage_theme_escape(body, support);
		evbuffer_add_printf(body, "</p>");
	}
	evbuffer_add_printf(body,
	    "<p class=\"id\">%s %d &middot; request id %s</p>"
	    "</body></html>\n",
	    f->ef_status < 400 ? "Status" : "Error", f->ef_status,
	    f->ef_request_id);
}

static void
errpage_html(struct request_ctx *rq, const struct errpage_page *pg,
    const char *heading, struct evbuffer *body)
{
	const struct config *cfg = rq->rq_worker != NULL ? rq->rq_cfg : NULL;
	struct errpage_fields f;
	struct evbuffer *actions = evbuffer_new();
	char title[256];

	if (actions == NULL)
		return;
	errpage_actions(rq, pg, actions);
	evbuffer_add(actions, "", 1);
	if (cfg != NULL && cfg->cf_brand_name != NULL)
		snprintf(title, sizeof(title), "%d %s - %s", pg->ep_status,
		    heading, cfg->cf_brand_name);
	else
		snprintf(title, sizeof(title), "%d %s", pg->ep_status, heading);
	f.ef_status = pg->ep_status;
	f.ef_title = title;
	f.ef_heading = heading;
	f.ef_message = pg->ep_message;
	f.ef_actions = (const char *)evbuffer_pullup(actions, -1);
	f.ef_request_id = rq->rq_id;
	if (errpage_theme_render(cfg, &f, body) == -1)
		errpage_builtin(cfg, &f, body);
	evbuffer_free(actions);
}

/* The one renderer. */
void
errpage_send_page(struct request_ctx *rq, const struct errpage_page *pg)
{
	struct resp_hdrs *out = request_out(rq);
	struct evbuffer *body;
	const char *reason = errpage_title(pg->ep_status);
	const char *heading = pg->ep_heading != NULL ? pg->ep_heading : reason;
	int form = pg->ep_form && pg->ep_action != NULL && pg->ep_href != NULL;

	body = evbuffer_new();
	if (body == NULL) {
		request_reply(rq, pg->ep_status, reason, NULL);
		return;
	}
	resp_hdrs_remove(out, "Content-Length");
	if (errpage_wants_json(rq)) {
		resp_hdrs_set(out, "Content-Type", "application/json");
		evbuffer_add_printf(body,
		    "{\"error\":\"%s\",\"status\":%d,"
		    "\"message\":\"",
		    pg->ep_code, pg->ep_status);
		errpage_json_escape(body, pg->ep_message);
		if (pg->ep_href != NULL) {
			evbuffer_add_printf(body, "\",\"action\":\"");
			errpage_json_escape(body, pg->ep_href);
			if (form)
				evbuffer_add_printf(
				    body, "\",\"action_method\":\"POST");
		}
		evbuffer_add_printf(
		    body, "\",\"request_id\":\"%s\"}\n", rq->rq_id);
	} else {
		resp_hdrs_set(out, "Content-Type", "text/html; charset=utf-8");
		errpage_html(rq, pg, heading, body);
	}
	resp_hdrs_add(out, "Cache-Control", "no-store");
	resp_hdrs_add(out, "X-Content-Type-Options", "nosniff");
	/* Security: a page shown at the callback would otherwise send its
	 * URL, with the authorization code and state, as the Referer of
	 * whatever the person follows next; set once even when the caller
	 * (the callback) already asked for it. */
	resp_hdrs_set(out, "Referrer-Policy", "no-referrer");
	if (form) {
		/* Security: a button that acts must not be framed by another
		 * site and clicked through (clickjacking). */
		resp_hdrs_add(out, "X-Frame-Options", "DENY");
		resp_hdrs_add(
		    out, "Content-Security-Policy", "frame-ancestors 'none'");
	}
	if (pg->ep_close)
		rq->rq_close = 1;
	if (rq->rq_event == NULL || strcmp(rq->rq_event, "proxy") == 0)
		rq->rq_event = pg->ep_code;
	request_reply(rq, pg->ep_status, reason, body);
	evbuffer_free(body);
}

void
errpage_send(struct request_ctx *rq, int status, const char *code,
    const char *message, int close)
{
	errpage_send_full(rq, status, code, message, NULL, NULL, close);
}

void
errpage_send_action(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *action, const char *href)
{
	errpage_send_full(rq, status, code, message, action, href, 0);
}

void
errpage_send_full(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *action, const char *href, int close)
{
	struct errpage_page pg = {
	    status, code, NULL, message, action, href, 0, close, NULL};

	errpage_send_page(rq, &pg);
}

void
errpage_send_confirm(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *button, const char *href)
{
	struct errpage_page pg = {
	    status, code, NULL, message, button, href, 1, 0, NULL};

	errpage_send_page(rq, &pg);
}
void
errpage_body_failed(struct request_ctx *rq, int status)
{
	switch (status) {
	case 413:
		errpage_send(rq, 413, "body_too_large",
		    "The request body is larger than this gateway accepts.", 1);
		return;
	case 503:
		log_warnx("busy id=%s client=%s reason=\"request bodies held "
		          "in memory reached max_buffered_bodies\"",
		    rq->rq_id, rq->rq_peer);
		resp_hdrs_add(request_out(rq), "Retry-After", "5");
		errpage_send(rq, 503, "busy",
		    "The gateway is busy receiving other requests; try again "
		    "shortly.",
		    1);
		return;
	default:
		errpage_send(rq, 400, "bad_request",
		    "The request body is malformed.", 1);
		return;
	}
}
