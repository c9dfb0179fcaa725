/* SPDX-License-Identifier: ISC */
/*
 * errpage.c: every failure a person can meet becomes one response here
 * (S10): a short HTML page for browsers, JSON for API clients.
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "errpage.h"
#include "request.h"

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

void
errpage_send_full(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *action, const char *href, int close)
{
	struct evkeyvalq *out = request_out(rq);
	struct evbuffer *body;
	const char *title = errpage_title(status);

	body = evbuffer_new();
	if (body == NULL) {
		request_reply(rq, status, title, NULL);
		return;
	}
	evhttp_remove_header(out, "Content-Type");
	evhttp_remove_header(out, "Content-Length");
	if (errpage_wants_json(rq)) {
		evhttp_add_header(out, "Content-Type", "application/json");
		evbuffer_add_printf(body,
		    "{\"error\":\"%s\",\"status\":%d,"
		    "\"message\":\"",
		    code, status);
		errpage_json_escape(body, message);
		if (href != NULL) {
			evbuffer_add_printf(body, "\",\"action\":\"");
			errpage_json_escape(body, href);
		}
		evbuffer_add_printf(
		    body, "\",\"request_id\":\"%s\"}\n", rq->rq_id);
	} else {
		evhttp_add_header(
		    out, "Content-Type", "text/html; charset=utf-8");
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
		if (action != NULL && href != NULL) {
			evbuffer_add_printf(body, "</p><p><a href=\"");
			errpage_html_escape(body, href);
			evbuffer_add_printf(body, "\">");
			errpage_html_escape(body, action);
			evbuffer_add_printf(body, "</a>");
		}
		evbuffer_add_printf(body,
		    "</p><p class=\"id\">Error %d &middot; request id %s</p>"
		    "</body></html>\n",
		    status, rq->rq_id);
	}
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	if (close)
		rq->rq_close = 1;
	if (rq->rq_event == NULL || strcmp(rq->rq_event, "proxy") == 0)
		rq->rq_event = code;
	request_reply(rq, status, title, body);
	evbuffer_free(body);
}
