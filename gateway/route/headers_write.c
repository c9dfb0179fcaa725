/* SPDX-License-Identifier: ISC */
/*
 * headers_write.c: header lines written into an evbuffer (the writer, for
 * the upstream request head (upstream.c) and the client's response head
 * (proxy.c)), and the request head's lines for the upstream: the client's
 * headers less hop-by-hop and owned ones (headers.c classes them), the
 * identity block, Host, X-Forwarded-*, X-Request-Id, Content-Length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "core/config.h"
#include "http/conn.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"
#include "policy.h"
#include "route/headers.h"
#include "session/session.h"

void
headers_writer_start(
    struct headers_writer *w, struct evbuffer *out, size_t hint)
{
	w->hw_out = out;
	w->hw_len = 0;
	if (evbuffer_reserve_space(out, (ev_ssize_t)hint, &w->hw_vec, 1) != 1)
		w->hw_vec.iov_base = NULL;
}

void
headers_writer_add(struct headers_writer *w, const void *p, size_t n)
{
	if (w->hw_vec.iov_base != NULL && w->hw_vec.iov_len - w->hw_len < n) {
		w->hw_vec.iov_len = w->hw_len;
		evbuffer_commit_space(w->hw_out, &w->hw_vec, 1);
		headers_writer_start(w, w->hw_out, n > 4096 ? n : 4096);
	}
	if (w->hw_vec.iov_base == NULL) {
		evbuffer_add(w->hw_out, p, n);
		return;
	}
	memcpy((char *)w->hw_vec.iov_base + w->hw_len, p, n);
	w->hw_len += n;
}

void
headers_writer_field(struct headers_writer *w, const char *name, size_t nl,
    const char *value, size_t vl)
{
	if (w->hw_vec.iov_base != NULL &&
	    w->hw_vec.iov_len - w->hw_len >= nl + vl + 4) {
		char *p = (char *)w->hw_vec.iov_base + w->hw_len;

		memcpy(p, name, nl);
		p[nl] = ':';
		p[nl + 1] = ' ';
		memcpy(p + nl + 2, value, vl);
		p[nl + 2 + vl] = '\r';
		p[nl + 3 + vl] = '\n';
		w->hw_len += nl + vl + 4;
		return;
	}
	headers_writer_add(w, name, nl);
	headers_writer_add(w, ": ", 2);
	headers_writer_add(w, value, vl);
	headers_writer_add(w, "\r\n", 2);
}

void
headers_writer_end(struct headers_writer *w)
{
	if (w->hw_vec.iov_base == NULL)
		return;
	w->hw_vec.iov_len = w->hw_len;
	evbuffer_commit_space(w->hw_out, &w->hw_vec, 1);
	w->hw_vec.iov_base = NULL;
}

size_t
headers_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

/*
 * Security: gatehouse's own cookies (the session id, flow and retry
 * cookies) are credentials for the gateway, not for the app; they never
 * reach the upstream or its logs.
 */
static void
headers_cookie_filtered(
    struct headers_writer *w, const struct config *cfg, const char *value)
{
	const char *p = value, *e, *eq;
	size_t cn =
	    cfg->cf_cookie_name != NULL ? strlen(cfg->cf_cookie_name) : 0;
	int n = 0;

	while (*p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		if (*p == '\0')
			break;
		e = p + strcspn(p, ";");
		eq = memchr(p, '=', e - p);
		if (cn > 0 && eq != NULL && (size_t)(eq - p) >= cn &&
		    memcmp(p, cfg->cf_cookie_name, cn) == 0 &&
		    ((size_t)(eq - p) == cn || p[cn] == '_')) {
			p = e;
			continue;
		}
		if (n++ == 0)
			headers_writer_add(w, "Cookie: ", 8);
		else
			headers_writer_add(w, "; ", 2);
		headers_writer_add(w, p, e - p);
		p = e;
	}
	if (n > 0)
		headers_writer_add(w, "\r\n", 2);
}

int
headers_upstream_request(struct request_ctx *rq, struct headers_writer *w,
    const char *upstream_host, int64_t body_len, int has_body)
{
	const struct config *cfg = rq->rq_cfg;
	const struct http1_req *in = rq->rq_hreq;
	const struct http1_hdr *h;
	const char *conn = NULL, *xff = NULL, *proto = NULL, *host = NULL;
	const char *ident = NULL;
	unsigned int kind;
	char num[32];
	size_t n;
	int i;

	/* Options named in any Connection line are hop-by-hop. */
	for (i = 0; i < in->hr_nhdrs; i++) {
		h = &in->hr_hdrs[i];
		if (h->hh_nlen == 10 && conn == NULL &&
		    strcasecmp(h->hh_name, "Connection") == 0)
			conn = h->hh_value;
	}
	if (rq->rq_peer_trusted) {
		xff = request_header(rq, "X-Forwarded-For");
		proto = request_header(rq, "X-Forwarded-Proto");
		host = request_header(rq, "X-Forwarded-Host");
	}
	for (i = 0; i < in->hr_nhdrs; i++) {
		h = &in->hr_hdrs[i];
		kind = headers_kind(h->hh_name, h->hh_nlen);
		/* Framing and routing headers are gatehouse's to set, in any
		 * spelling ("Content_Length" too). */
		if ((kind &
		        (HEADERS_HOP | HEADERS_OWNED | HEADERS_HOST |
		            HEADERS_LENGTH | HEADERS_EXPECT)) != 0 ||
		    (conn != NULL &&
		        http1_connection_has(
		            in->hr_hdrs, in->hr_nhdrs, h->hh_name)))
			continue;
		if ((kind & HEADERS_COOKIE) != 0) {
			headers_cookie_filtered(w, cfg, h->hh_value);
			continue;
		}
		/* The gateway's own bearer replaces the client's (a route's
		 * token=NAME always sends one). */
		if ((kind & HEADERS_AUTHORIZATION) != 0 &&
		    rq->rq_upstream_hdrs != NULL &&
		    (cfg->cf_forward_authorization ||
		        (rq->rq_route != NULL &&
		            policy_route_token(rq->rq_route) != NULL)))
			continue;
		headers_writer_field(
		    w, h->hh_name, h->hh_nlen, h->hh_value, h->hh_vlen);
	}
	if (rq->rq_upstream_hdrs != NULL)
		ident = rq->rq_upstream_hdrs;
	else if (rq->rq_session != NULL)
		ident = rq->rq_session->se_ident;
	if (ident != NULL)
		headers_writer_add(w, ident, strlen(ident));
	headers_writer_field(
	    w, "Host", 4, upstream_host, strlen(upstream_host));
	headers_writer_add(w, "X-Forwarded-For: ", 17);
	if (xff != NULL && headers_value_ok(xff)) {
		headers_writer_add(w, xff, strlen(xff));
		headers_writer_add(w, ", ", 2);
	}
	headers_writer_add(w, rq->rq_peer, strlen(rq->rq_peer));
	headers_writer_add(w, "\r\n", 2);
	if (proto != NULL &&
	    (strcmp(proto, "https") == 0 || strcmp(proto, "http") == 0))
		headers_writer_field(
		    w, "X-Forwarded-Proto", 17, proto, strlen(proto));
	else if (conn_tls(rq->rq_conn))
		headers_writer_add(w, "X-Forwarded-Proto: https\r\n", 26);
	else
		headers_writer_add(w, "X-Forwarded-Proto: http\r\n", 25);
	if (host == NULL)
		host = in->hr_host;
	if (host != NULL && host[0] != '\0' && headers_value_ok(host))
		headers_writer_field(
		    w, "X-Forwarded-Host", 16, host, strlen(host));
	headers_writer_field(
	    w, "X-Request-Id", 12, rq->rq_id, strlen(rq->rq_id));
	/* A WebSocket handshake the proxy will tunnel: the two hop-by-hop
	 * fields that ask for it, said again for this hop (the client's own
	 * were dropped above with every other hop-by-hop field). */
	if (rq->rq_upgrade)
		headers_writer_add(
		    w, "Connection: Upgrade\r\nUpgrade: websocket\r\n", 41);
	if (has_body || body_len > 0) {
		n = headers_u64(num, (uint64_t)body_len);
		headers_writer_field(w, "Content-Length", 14, num, n);
	}
	headers_writer_add(w, "\r\n", 2);
	return 0;
}
