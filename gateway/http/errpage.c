/* SPDX-License-Identifier: ISC */
/*
 * errpage.c: every failure a person can meet becomes one response here:
 * a short HTML page for browsers, JSON for API clients.
 */
#include <string.h>

#include <event2/buffer.h>

#include "core/log.h"
#include "http/errpage.h"
#include "http/request.h"

void
errpage_html_escape(struct evbuffer *buf, const char *s)
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

/*
 * The one renderer.  With `form` set the action is a button that POSTs to
 * href (a confirmation), otherwise a link.
 */
static void
errpage_render(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *action, const char *href, int close,
    int form)
{
	struct resp_hdrs *out = request_out(rq);
	struct evbuffer *body;
	const char *title = errpage_title(status);

	body = evbuffer_new();
	if (body == NULL) {
		request_reply(rq, status, title, NULL);
		return;
	}
	resp_hdrs_remove(out, "Content-Length");
	if (errpage_wants_json(rq)) {
		resp_hdrs_set(out, "Content-Type", "application/json");
		evbuffer_add_printf(body,
		    "{\"error\":\"%s\",\"status\":%d,"
		    "\"message\":\"",
		    code, status);
		errpage_json_escape(body, message);
		if (href != NULL) {
			evbuffer_add_printf(body, "\",\"action\":\"");
			errpage_json_escape(body, href);
			if (form)
				evbuffer_add_printf(
				    body, "\",\"action_method\":\"POST");
		}
		evbuffer_add_printf(
		    body, "\",\"request_id\":\"%s\"}\n", rq->rq_id);
	} else {
		resp_hdrs_set(out, "Content-Type", "text/html; charset=utf-8");
		evbuffer_add_printf(body,
		    "<!DOCTYPE html>\n<html lang=\"en\"><head>"
		    "<meta charset=\"utf-8\"><title>%d %s</title>"
		    "<meta name=\"viewport\" content=\"width=device-width\">"
		    "<style>body{font-family:system-ui,sans-serif;max-width:"
		    "40em;margin:4em auto;padding:0 1em;color:#222}"
		    "h1{font-size:1.4em}.id{color:#777;font-size:.85em}"
		    "</style></head><body><h1>%s</h1><p>",
		    status, title, title);
		errpage_html_escape(body, message);
		if (action != NULL && href != NULL && form) {
			evbuffer_add_printf(
			    body, "</p><form method=\"post\" action=\"");
			errpage_html_escape(body, href);
			evbuffer_add_printf(
			    body, "\"><button type=\"submit\" id=\"confirm\">");
			errpage_html_escape(body, action);
			evbuffer_add_printf(body, "</button></form><p>");
		} else if (action != NULL && href != NULL) {
			evbuffer_add_printf(body, "</p><p><a href=\"");
			errpage_html_escape(body, href);
			evbuffer_add_printf(body, "\">");
			errpage_html_escape(body, action);
			evbuffer_add_printf(body, "</a>");
		}
		evbuffer_add_printf(body,
		    "</p><p class=\"id\">%s %d &middot; request id %s</p>"
		    "</body></html>\n",
		    status < 400 ? "Status" : "Error", status, rq->rq_id);
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
	if (close)
		rq->rq_close = 1;
	if (rq->rq_event == NULL || strcmp(rq->rq_event, "proxy") == 0)
		rq->rq_event = code;
	request_reply(rq, status, title, body);
	evbuffer_free(body);
}

void
errpage_send_full(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *action, const char *href, int close)
{
	errpage_render(rq, status, code, message, action, href, close, 0);
}

void
errpage_send_confirm(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *button, const char *href)
{
	errpage_render(rq, status, code, message, button, href, 0, 1);
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
