/* SPDX-License-Identifier: ISC */
/*
 * proxy.c: forwarding a granted request to the upstream and translating
 * the response for the client.  The connection, the request writing and
 * the response framing are upstream.c's; here the response head is
 * filtered (hop-by-hop and framing fields dropped, the framing decided
 * again for the client) and the body streamed with back-pressure: past
 * PROXY_HIGH_WATER queued for the client, the upstream is not read until
 * the client drains it.  A failure becomes a 502/504 page, or a cut
 * response once the head is out.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/log.h"
#include "core/metrics.h"
#include "http/conn.h"
#include "http/errpage.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"
#include "policy.h"
#include "route/headers.h"
#include "route/proxy.h"
#include "route/tunnel.h"
#include "route/upstream.h"
#include "route/websocket.h"

#define PROXY_HIGH_WATER (256 * 1024) /* client output before pausing */

/* The exchange failed: answer with a page, or cut a response in flight. */
static void
proxy_fail(struct request_ctx *rq, int status)
{
	if (rq->rq_state == RQ_STREAMING) {
		/* The head is out: the client must see a cut response, never
		 * a short one that looks complete. */
		request_abort(rq);
		return;
	}
	resp_hdrs_cleanup(request_out(rq));
	switch (status) {
	case 400:
	case 413:
		/* The client's body broke off while it streamed upstream. */
		errpage_send(rq, status,
		    status == 413 ? "body_too_large" : "bad_request",
		    status == 413 ? "The request body is larger than this "
		                    "gateway accepts."
		                  : "The request body is malformed.",
		    1);
		break;
	case 504:
		errpage_send(rq, 504, "upstream_timeout",
		    "The application behind this gateway did not answer in "
		    "time.",
		    0);
		break;
	default:
		errpage_send(rq, 502, "upstream_unreachable",
		    "The application behind this gateway could not be reached "
		    "or sent an invalid response.",
		    0);
		break;
	}
}

/* The client took enough of what was queued: read the upstream again. */
static void
proxy_drained_cb(void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	if (rq->rq_upconn != NULL)
		upstream_resume(rq->rq_upconn);
}

/* Hand n bytes of body from src to the client.  Returns 1 to pause the
 * upstream on back-pressure (resumed from proxy_drained_cb). */
static int
proxy_body_out(struct request_ctx *rq, struct evbuffer *src, size_t n)
{
	rq->rq_bytes += n;
	conn_body(rq->rq_conn, src, n);
	if (conn_pending(rq->rq_conn) > PROXY_HIGH_WATER) {
		conn_flush(rq->rq_conn);
		if (conn_pending(rq->rq_conn) > PROXY_HIGH_WATER) {
			conn_on_drain(rq->rq_conn, proxy_drained_cb, rq);
			return 1;
		}
	}
	return 0;
}

/* What a run of parsing produced for the client goes out in one write. */
static void
proxy_flush(struct request_ctx *rq)
{
	if (rq->rq_state == RQ_STREAMING)
		conn_flush(rq->rq_conn);
}

/* The whole response has been passed on. */
static void
proxy_done(struct request_ctx *rq)
{
	/* Frees rq: the last thing done here. */
	request_end(rq);
}

enum conn_body
proxy_framing(const struct http1_resp *p, int nobody)
{
	if (nobody)
		return CONN_BODY_NONE;
	if (p->hp_chunked)
		return CONN_BODY_STREAM;
	if (p->hp_length >= 0)
		return p->hp_length == 0 ? CONN_BODY_NONE : CONN_BODY_LENGTH;
	return CONN_BODY_STREAM; /* delimited by the close */
}

int
proxy_field_passes(const struct http1_resp *p, const struct http1_hdr *h)
{
	return (headers_kind(h->hh_name, h->hh_nlen) &
	           (HEADERS_HOP | HEADERS_LENGTH)) == 0 &&
	    (p->hp_connection == NULL ||
	        !http1_connection_has(p->hp_hdrs, p->hp_nhdrs, h->hh_name));
}

int
proxy_sends_length(
    const struct http1_resp *p, enum conn_body framing, int nobody)
{
	return p->hp_length >= 0 && !p->hp_chunked &&
	    (framing != CONN_BODY_NONE || nobody || p->hp_length == 0);
}

/* Send the response head to the client, with the framing decided again
 * for it (RFC 9112 6.3): the upstream's own framing fields never pass. */
static void
proxy_head_out(struct request_ctx *rq, const struct http1_resp *p, int nobody)
{
	const struct http1_hdr *h;
	struct headers_writer w;
	enum conn_body framing = proxy_framing(p, nobody);
	int i;
	char buf[24];

	rq->rq_up_ms = request_ms_since(&rq->rq_up_start);
	rq->rq_status = p->hp_status;
	rq->rq_state = RQ_STREAMING;
	headers_writer_start(
	    &w, conn_head_begin(rq->rq_conn, p->hp_status, p->hp_reason), 2048);
	for (i = 0; i < p->hp_nhdrs; i++) {
		h = &p->hp_hdrs[i];
		if (!proxy_field_passes(p, h))
			continue;
		headers_writer_field(
		    &w, h->hh_name, h->hh_nlen, h->hh_value, h->hh_vlen);
	}
	if (proxy_sends_length(p, framing, nobody))
		headers_writer_field(&w, "Content-Length", 14, buf,
		    headers_u64(buf, (uint64_t)p->hp_length));
	headers_writer_end(&w);
	conn_head_end(rq->rq_conn, framing, p->hp_has_date, 0);
}

/* The upstream accepted the WebSocket handshake (upstream.c checked its
 * 101): the 101 goes to the client, then the connection is a tunnel. */
static void
proxy_upgrade(struct request_ctx *rq, const struct http1_resp *p, size_t hl,
    int fd, struct evbuffer *in)
{
	const struct http1_hdr *h;
	struct headers_writer w;
	int i;

	rq->rq_up_ms = request_ms_since(&rq->rq_up_start);
	rq->rq_status = 101;
	rq->rq_event = "websocket";
	headers_writer_start(
	    &w, conn_head_begin(rq->rq_conn, 101, p->hp_reason), 2048);
	for (i = 0; i < p->hp_nhdrs; i++) {
		h = &p->hp_hdrs[i];
		if (proxy_field_passes(p, h))
			headers_writer_field(&w, h->hh_name, h->hh_nlen,
			    h->hh_value, h->hh_vlen);
	}
	headers_writer_add(
	    &w, "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 43);
	headers_writer_end(&w);
	evbuffer_drain(in, hl);
	if (tunnel_start(rq, fd, in) == -1) {
		/* Out of memory: the client is cut, its 101 never followed
		 * by a byte. */
		request_abort(rq);
		return;
	}
	request_end_detached(rq);
}

static const struct upstream_handler proxy_handler = {
    .uh_head = proxy_head_out,
    .uh_body = proxy_body_out,
    .uh_flush = proxy_flush,
    .uh_done = proxy_done,
    .uh_fail = proxy_fail,
    .uh_upgrade = proxy_upgrade,
};

static void
proxy_forward_resume(struct request_ctx *rq)
{
	(void)proxy_forward(rq);
}

enum step
proxy_forward(struct request_ctx *rq)
{
	struct upstream_conn *uc;

	/* Access has been granted: only now is the body read (and "100
	 * Continue" sent), so a client that may not pass never makes the
	 * gateway hold it. */
	if (request_body_read(rq, (int64_t)rq->rq_cfg->cf_max_request_body,
	        proxy_forward_resume, errpage_body_failed) == 1)
		return STEP_AGAIN;

	switch (websocket_ask(rq->rq_hreq)) {
	case WEBSOCKET_BAD:
		errpage_send(rq, 400, "bad_websocket_handshake",
		    "The WebSocket handshake is malformed.", 1);
		return STEP_ERROR;
	case WEBSOCKET_OK:
		/* Decided after access was granted, like any request: a
		 * handshake that may not pass never got this far. */
		if (!websocket_origin_ok(rq->rq_cfg, rq->rq_hreq)) {
			rq->rq_event = "websocket_origin";
			errpage_send(rq, 403, "websocket_origin",
			    "This page may not open a WebSocket here: its "
			    "origin is another site.",
			    0);
			return STEP_ERROR;
		}
		rq->rq_upgrade = 1;
		break;
	default:
		break;
	}
	/* The route's upstream (upstream=NAME), in the request's own
	 * generation; a WebSocket tunnel keeps the connection it gets. */
	switch (upstream_conn_acquire(
	    upstream_pool_pick(rq->rq_gen->wg_pool,
	        rq->rq_route != NULL ? policy_route_upstream_index(rq->rq_route)
	                             : 0),
	    rq, proxy_forward_resume, &uc)) {
	case 0:
		/* In line for a connection (upstream_max_connections). */
		rq->rq_state = RQ_UPSTREAM;
		return STEP_AGAIN;
	case 1:
		break;
	default:
		metrics_upstream_error(errno == ECONNREFUSED
		        ? "connection refused"
		        : "connect error");
		log_warnx("upstream_error id=%s reason=\"%s\"", rq->rq_id,
		    errno == ECONNREFUSED ? "connection refused"
		                          : strerror(errno));
		errpage_send(rq, 502, "upstream_unreachable",
		    "The application behind this gateway could not be reached.",
		    0);
		return STEP_ERROR;
	}
	rq->rq_state = RQ_UPSTREAM;
	upstream_send(uc, rq, &proxy_handler);
	return STEP_AGAIN;
}
