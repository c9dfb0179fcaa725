/* SPDX-License-Identifier: ISC */
/*
 * errpage.h: the one function that turns a failure into the response a
 * person sees: an HTML page for browsers, JSON for API clients.
 */
#ifndef GATEHOUSE_ERRPAGE_H
#define GATEHOUSE_ERRPAGE_H

struct evbuffer;
struct request_ctx;

/*
 * Send `status` with a page explaining `message` (plain text; it is escaped).
 * `code` is a short fixed token for JSON clients ("upstream_unreachable").
 * JSON when the client prefers application/json, HTML otherwise.  Adds
 * Cache-Control: no-store and Referrer-Policy: no-referrer.  With `close` set
 * the connection is closed after the reply.  May finish the request: the caller
 * must not touch rq afterwards.
 */
void errpage_send(struct request_ctx *rq, int status, const char *code,
    const char *message, int close);

/*
 * The request body broke off (request_body_read): answer status 400
 * (malformed), 413 (larger than allowed) or 503 (too many bodies held,
 * with Retry-After), and close the connection.  Frees rq.
 */
void errpage_body_failed(struct request_ctx *rq, int status);

/* As errpage_send, with a link for the person ("Try again", href); the
 * JSON form carries href as "action". */
void errpage_send_action(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *action, const char *href);

/* Both of the above. */
void errpage_send_full(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *action, const char *href, int close);

/*
 * As errpage_send_action, but the action is a button that POSTs to href
 * (a path on this site): a page that asks the person to confirm.  The JSON
 * form carries href as "action" and "action_method": "POST".  The page may
 * not be framed (X-Frame-Options, CSP frame-ancestors).
 */
void errpage_send_confirm(struct request_ctx *rq, int status, const char *code,
    const char *message, const char *button, const char *href);

/* Whether the client asked for JSON rather than a page. */
int errpage_wants_json(struct request_ctx *rq);

/* One page: what errpage_send_page shows.  Strings are plain text
 * (escaped where they are inserted), borrowed for the call. */
struct errpage_page {
	int ep_status;
	const char *ep_code;    /* fixed token for JSON clients */
	const char *ep_heading; /* NULL: the status's title */
	const char *ep_message;
	const char *ep_action; /* the caller's next step, or NULL */
	const char *ep_href;   /* its target: a path on this site */
	int ep_form;           /* the action POSTs (a confirmation) */
	int ep_close;          /* close the connection after the reply */
	const char *ep_user;   /* on a 403: who is signed in, or NULL */
};

/*
 * The one renderer behind the functions above.  Without an action the HTML
 * page offers the status's next step: 401 a "Sign in" link back to this
 * URL, 403 with ep_user "Signed in as ..." with "Sign out" and "Switch
 * account", 502 and 504 "Try again" for GET and HEAD; the JSON answer
 * carries only the caller's action.  The page goes through the operator's
 * template when error_page_dir has one.  May finish the request.
 */
void errpage_send_page(struct request_ctx *rq, const struct errpage_page *pg);

#endif
