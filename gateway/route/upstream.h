/* SPDX-License-Identifier: ISC */
/*
 * upstream.h: the client side towards the upstream.  The `upstream` key
 * and its address, a per-worker keep-alive pool, writing the request (its
 * body streamed as it arrives), reading the response and deciding its
 * framing.  What the response becomes for the client is its user's
 * business (proxy.c), reached through a struct upstream_handler.
 */
#ifndef GATEHOUSE_UPSTREAM_H
#define GATEHOUSE_UPSTREAM_H

#include <stddef.h>

#include "core/config.h"
#include "http/http1.h"
#include "http/request.h"

struct event_base;
struct evbuffer;
struct upstream_pool;
struct upstream_conn;

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module upstream_config_module;

/*
 * Parse an upstream URL (http://host:port[/prefix] or
 * unix:/path[:/prefix]) into up, after releasing what up held.  Returns 0,
 * or -1 with *errstr set to a static message.  Main thread.
 */
int upstream_url_parse(
    struct config_upstream *up, const char *value, const char **errstr);
/* Release what up holds (its name too) and zero it. */
void upstream_url_cleanup(struct config_upstream *up);

/*
 * Resolve the address of every upstream of cfg (the default and the
 * named ones) into it, once per configuration (at start-up, and for a
 * new one on SIGHUP); main thread, before any worker uses cfg.  Returns 0
 * or -1 (logged).
 */
int upstream_resolve(struct config *cfg);

/*
 * A worker's pools for cfg (new): the default upstream's, which holds one
 * for each named upstream (upstream_pool_pick); upstream_pool_free(NULL)
 * is a no-op, and frees the named pools with it.
 */
struct upstream_pool *upstream_pool_new(
    struct event_base *base, const struct config *cfg);
void upstream_pool_free(struct upstream_pool *pool);

/*
 * The pool a route's upstream index (policy_route_upstream_index: 0 the
 * default, i the i-th of cf_upstreams) goes to, borrowed from pool (the
 * default's, from upstream_pool_new).  Worker thread.
 */
struct upstream_pool *upstream_pool_pick(struct upstream_pool *pool, int index);

/* A reload replaced pool (and its named ones): close their idle
 * connections now, and each one in use once its exchange ends (none goes
 * back to it).  Worker thread. */
void upstream_pool_retire(struct upstream_pool *pool);

/*
 * What becomes of the response, each called with the request being
 * served.  None of them may free the connection; uh_done and uh_fail are
 * called after the connection has been let go of (rq->rq_upconn is NULL).
 */
struct upstream_handler {
	/* The head of the final response.  nobody: it has no body at all
	 * (a HEAD request, 204, 304), whatever its framing headers say. */
	void (*uh_head)(
	    struct request_ctx *, const struct http1_resp *, int nobody);
	/* n bytes of body from src.  Returns 1 to stop reading the upstream
	 * until upstream_resume, 0 to go on. */
	int (*uh_body)(struct request_ctx *, struct evbuffer *src, size_t n);
	/* A run of parsing is over: what it produced may be sent. */
	void (*uh_flush)(struct request_ctx *);
	/* The whole response has been passed on. */
	void (*uh_done)(struct request_ctx *);
	/* The exchange failed: 502 or 504 (the upstream), 400 or 413 (the
	 * client's body broke off while it streamed upstream). */
	void (*uh_fail)(struct request_ctx *, int status);
	/* The upstream's 101 to a WebSocket handshake (rq_upgrade), checked
	 * (websocket_accepted).  The connection has been let go of: fd is
	 * the handler's now, and in holds what was read from it, the head p
	 * points into first (hl bytes, for the handler to drain once it is
	 * done with p), then what followed it; the handler takes those. */
	void (*uh_upgrade)(struct request_ctx *, const struct http1_resp *p,
	    size_t hl, int fd, struct evbuffer *in);
};

/*
 * A connection for one request: an idle one from the pool, or a new one
 * (connecting).  Returns NULL with errno set.
 */
struct upstream_conn *upstream_conn_get(struct upstream_pool *pool);

/*
 * upstream_conn_get within upstream_max_connections: 1 with *out, -1 with
 * errno (no connection could be made), or 0: rq waits in pool's line, and
 * resume(rq) runs later, from the event loop, once a connection is free
 * (call this again then), unless upstream_queue_timeout passes first (a
 * 503 is sent) or the request ends (its cleanup leaves the line).
 */
int upstream_conn_acquire(struct upstream_pool *pool, struct request_ctx *rq,
    void (*resume)(struct request_ctx *), struct upstream_conn **out);

/*
 * Send rq on uc and read the answer into h.  uc is hung on rq (rq_upconn,
 * released by rq's cleanup if the request ends first).  It may end the
 * request at once (h's uh_fail or uh_done).
 */
void upstream_send(struct upstream_conn *uc, struct request_ctx *rq,
    const struct upstream_handler *h);

/* 1 when the response to a request (head_request: a HEAD) with this
 * status has no body at all, whatever its framing fields say. */
int upstream_nobody(int head_request, int status);

/* 1 when the connection may carry another request once response head p
 * (nobody: as upstream_nobody says) has been read whole: not after
 * "Connection: close" or HTTP/1.0, nor after a body delimited by the
 * close. */
int upstream_reusable(const struct http1_resp *p, int nobody);

/* The client caught up: read the upstream again if uh_body paused it. */
void upstream_resume(struct upstream_conn *uc);

#endif
