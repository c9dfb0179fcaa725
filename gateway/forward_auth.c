/* SPDX-License-Identifier: ISC */
/*
 * forward_auth.c: /.auth/verify.  The same route table and sessions as
 * proxy mode; only the last step differs: the verdict and the identity go
 * back to the front proxy in headers instead of the request going on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "errpage.h"
#include "forward_auth.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "server.h"
#include "session.h"

static const char *
forward_auth_method(const char *m)
{
	static const char *const known[] = {
	    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
	size_t i;

	if (m == NULL)
		return "GET";
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcasecmp(m, known[i]) == 0)
			return known[i];
	return "OTHER";
}

void
forward_auth_verify(struct request_ctx *rq)
{
	const char *uri;

	rq->rq_verify = 1;
	rq->rq_event = "verify";
	/* Security: the request to judge is named by headers; only a proxy
	 * we trust may name it, or anyone could ask about any path. */
	if (!rq->rq_peer_trusted) {
		log_info("verify id=%s client=%s result=untrusted_peer",
		    rq->rq_id, rq->rq_peer);
		errpage_send(rq, 403, "untrusted_proxy",
		    "Forward-auth is only answered for trusted_proxies.", 0);
		return;
	}
	uri = request_header(rq, "X-Forwarded-Uri");
	if (uri == NULL)
		uri = request_header(rq, "X-Original-URI");
	if (uri == NULL || uri[0] != '/') {
		errpage_send(rq, 400, "bad_request",
		    "X-Forwarded-Uri or X-Original-URI must name the request.",
		    0);
		return;
	}
	rq->rq_method =
	    forward_auth_method(request_header(rq, "X-Forwarded-Method"));
	free(rq->rq_path);
	rq->rq_path = NULL;
	free(rq->rq_normpath);
	rq->rq_normpath = NULL;
	if (router_normalise(rq, uri) == -1)
		return;
	router_route(rq);
}

/* Turn "Name: value\r\n" lines into response headers. */
static void
forward_auth_copy_lines(struct evkeyvalq *out, const char *lines)
{
	const char *p = lines, *e, *colon;
	char name[64], *value;

	while (p != NULL && *p != '\0') {
		e = strstr(p, "\r\n");
		if (e == NULL)
			break;
		colon = memchr(p, ':', e - p);
		if (colon != NULL && (size_t)(colon - p) < sizeof(name)) {
			memcpy(name, p, colon - p);
			name[colon - p] = '\0';
			value = strndup(colon + 2, e - colon - 2);
			if (value != NULL) {
				evhttp_add_header(out, name, value);
				if (strcmp(name, "X-Forwarded-User") == 0)
					evhttp_add_header(
					    out, "X-Auth-Request-User", value);
				else if (strcmp(name, "X-Forwarded-Email") == 0)
					evhttp_add_header(
					    out, "X-Auth-Request-Email", value);
				else if (strcmp(name,
				             "X-MS-TOKEN-AAD-ACCESS-TOKEN") ==
				    0)
					evhttp_add_header(out,
					    "X-Auth-Request-Access-Token",
					    value);
				free(value);
			}
		}
		p = e + 2;
	}
}

void
forward_auth_reply(struct request_ctx *rq, int status)
{
	struct evkeyvalq *out = request_out(rq);
	struct evbuffer *body = evbuffer_new();

	if (rq->rq_upstream_hdrs != NULL)
		forward_auth_copy_lines(out, rq->rq_upstream_hdrs);
	else if (rq->rq_session != NULL)
		forward_auth_copy_lines(out, rq->rq_session->se_ident);
	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (body != NULL)
		evbuffer_add_printf(body, "{\"status\":\"allowed\"}\n");
	request_reply(rq, status, "OK", body);
	evbuffer_free(body);
}
