/* SPDX-License-Identifier: ISC */
/*
 * https_redirect.c: the plain HTTP listener that sends every request to
 * https (listen_http_redirect).  It reads requests with the same strict
 * connection layer as the gateway's port, and answers each with a 308
 * (which keeps the method and body, unlike 301) or a refusal; no route,
 * session or upstream is ever reached from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/metrics.h"
#include "http/conn.h"
#include "http/errpage.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"
#include "route/headers.h"
#include "route/https_redirect.h"

/* Host names and IPv4 addresses: letters, digits, '-', '.' ('_' too, as
 * some internal names have it); an IPv6 address in brackets.  Anything
 * else (a '@', a '/', a '\') could make the URL name another site. */
static size_t
https_redirect_host_len(const char *h)
{
	size_t n;

	if (h[0] == '[') {
		n = 1 + strspn(h + 1, "0123456789abcdefABCDEF:.");
		return h[n] == ']' && n > 2 ? n + 1 : 0;
	}
	return strspn(h,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-._");
}

int
https_redirect_location(const char *host, const char *fallback_host,
    const char *target, int port, char *buf, size_t size)
{
	const char *h = host != NULL ? host : fallback_host;
	size_t hl;
	int n;

	if (h == NULL || target == NULL || target[0] != '/')
		return -1;
	hl = https_redirect_host_len(h);
	if (hl == 0 || hl > 255)
		return -1;
	/* What follows the name may only be its port. */
	if (h[hl] != '\0' &&
	    (h[hl] != ':' || h[hl + 1] == '\0' ||
	        strspn(h + hl + 1, "0123456789") != strlen(h + hl + 1)))
		return -1;
	if (port == 443)
		n = snprintf(buf, size, "https://%.*s%s", (int)hl, h, target);
	else
		n = snprintf(
		    buf, size, "https://%.*s:%d%s", (int)hl, h, port, target);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The public https port: redirect_uri's when it is https (a port mapped
 * in front of gatehouse), else the TLS listener's own. */
static int
https_redirect_port(const struct config *cfg, const char **hostp)
{
	const char *base = cfg->cf_public_base, *h, *colon;
	static __thread char host[256];

	*hostp = NULL;
	if (!cfg->cf_public_https || base == NULL)
		return cfg->cf_listen_port;
	h = base + 8; /* "https://" */
	colon = strrchr(h, ':');
	if (colon != NULL && strchr(colon, ']') != NULL)
		colon = NULL;
	snprintf(host, sizeof(host), "%.*s",
	    colon != NULL ? (int)(colon - h) : (int)strlen(h), h);
	*hostp = host;
	return colon != NULL ? atoi(colon + 1) : 443;
}

void
https_redirect_dispatch(
    struct conn *c, struct http1_req *req, struct evbuffer *body)
{
	const struct config *cfg = conn_worker(c)->w_cfg;
	struct request_ctx *rq;
	const char *fallback;
	char url[8192 + 512];
	int port;

	rq = request_start(c, req, body);
	if (rq == NULL)
		return;
	headers_request_id(rq);
	rq->rq_event = "https_redirect";
	rq->rq_mroute = METRICS_ROUTE_OTHER;
	if (req->hr_status != 0) {
		rq->rq_mroute = METRICS_ROUTE_INVALID;
		errpage_send(rq, req->hr_status, "bad_request",
		    "The request could not be read.", 1);
		return;
	}
	port = https_redirect_port(cfg, &fallback);
	if (https_redirect_location(req->hr_host, fallback, req->hr_target,
	        port, url, sizeof(url)) == -1) {
		rq->rq_mroute = METRICS_ROUTE_INVALID;
		errpage_send(rq, 400, "bad_request",
		    "This address serves https only, and the request names no "
		    "host and path to send it to.",
		    1);
		return;
	}
	rq->rq_path = strndup(req->hr_target, strcspn(req->hr_target, "?"));
	/* The client's body is not read: the connection closes after the
	 * answer unless it was whole already (conn.c). */
	if (resp_hdrs_add(request_out(rq), "Location", url) == -1) {
		errpage_send(rq, 400, "bad_request",
		    "The request names no host and path to send it to.", 1);
		return;
	}
	request_reply(rq, 308, "Permanent Redirect", NULL);
}
