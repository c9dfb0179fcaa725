/* SPDX-License-Identifier: ISC */
/*
 * proxy.h: forwarding a granted request to the upstream (upstream.h's
 * client and pool) and translating the response for the client, streamed
 * with bounded buffers and back-pressure.
 */
#ifndef GATEHOUSE_PROXY_H
#define GATEHOUSE_PROXY_H

#include "http/conn.h"
#include "http/http1.h"
#include "http/request.h"

/*
 * Forward rq to the upstream.  Returns STEP_AGAIN (the ctx is parked until
 * the upstream answers; the reply is sent from a callback) or STEP_ERROR
 * (a response has been sent).  The caller must not touch rq afterwards.
 */
enum step proxy_forward(struct request_ctx *rq);

/*
 * How an upstream response head p is framed again for the client (RFC
 * 9112 6.3); nobody: the response has no body (a HEAD request, 204, 304),
 * whatever its framing fields say.  Chunked, or delimited by the close,
 * becomes CONN_BODY_STREAM (chunked again for 1.1 clients); a length of 0
 * is no body.
 */
enum conn_body proxy_framing(const struct http1_resp *p, int nobody);

/* 1 when field h of p reaches the client: hop-by-hop and framing fields,
 * and any that p's Connection field names, never do. */
int proxy_field_passes(const struct http1_resp *p, const struct http1_hdr *h);

/* 1 when the client's head carries p's Content-Length (for framing as
 * proxy_framing decided it): a HEAD or 304 answer keeps the length it
 * announces, a chunked one has none. */
int proxy_sends_length(
    const struct http1_resp *p, enum conn_body framing, int nobody);

#endif
