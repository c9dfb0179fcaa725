/* SPDX-License-Identifier: ISC */
/*
 * request.h: the per-request context.  Everything a request allocates
 * hangs off struct request_ctx and is freed in one place, request_free().
 * Members use the rq_ prefix.  Worker-thread only.
 */
#ifndef GATEHOUSE_REQUEST_H
#define GATEHOUSE_REQUEST_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/resp_hdrs.h"

struct conn;
struct event;
struct evbuffer;
struct http1_req;
struct worker;
struct worker_gen;
struct config;
struct upstream_conn;
struct httpc_xfer;
struct oidc_flow;
struct oidc_tokens;
struct policy_route;
struct session;
struct session_op;
struct upstream_wait;

#define REQUEST_MAGIC 0x52514354u /* "RQCT" */

/*
 * The cleanup registry (nginx's ngx_http_cleanup_add).  The request layer
 * frees only what is its own (the paths, the output headers, the upstream
 * header lines); whoever hangs anything else on a request registers how to
 * let go of it, when it hangs it: the server (the worker's count of
 * requests in flight, at dispatch), the router (the signed-in session and
 * a session store call under way), the OpenID Connect handlers (a sign-in flow,
 * a token response, a wait for the provider's metadata or for another request's
 * refresh, the refresh poll timer, a provider transfer), the groups lookup (its
 * provider transfer) and the proxy (the upstream connection).  The
 * functions run once, in the reverse order of their registration, in one
 * place: when the request is freed, after its access-log line and before
 * its memory goes, whichever way it ends (replied, ended, aborted, or the
 * client went away: the upstream connection is let go of then, and it is
 * already let go of on every other way).  They only let go: no reply, no
 * call back into a handler; each is a no-op when what it lets go of is
 * gone already.  Registering the same fn and arg again is a no-op, so a
 * handler registers each time it hangs something.  REQUEST_NCLEANUP bounds
 * the registrants above; one more is a programming error and aborts.
 */
#define REQUEST_NCLEANUP 8

struct request_cleanup {
	void (*rc_fn)(void *arg);
	void *rc_arg;
};

/* Where a request is (as relayd's relay_state): no hidden flags. */
enum rq_state {
	RQ_NEW,         /* in the router */
	RQ_BODY,        /* reading the request body it will be served with */
	RQ_PROVIDER,    /* waiting for the OpenID Provider */
	RQ_STORE,       /* waiting for the session store (Redis) */
	RQ_UPSTREAM,    /* waiting for the upstream's response head */
	RQ_STREAMING,   /* response head sent, body flowing */
	RQ_REPLIED,     /* reply ended; waiting for the client to take it */
	RQ_CLIENT_GONE, /* the client went away; tearing down */
};

/* The pipeline's four verdicts (as nginx's). */
enum step {
	STEP_OK,       /* go on to the next step */
	STEP_DECLINED, /* this step does not apply */
	STEP_AGAIN,    /* waiting on I/O; the ctx is parked */
	STEP_ERROR,    /* a response has been sent; stop */
};

struct request_ctx {
	uint32_t rq_magic;
	enum rq_state rq_state;
	struct worker *rq_worker;
	/* The configuration it started with, a reference held until it is
	 * freed (worker.h): a SIGHUP does not change it half-way. */
	struct worker_gen *rq_gen;
	const struct config *rq_cfg;     /* rq_gen's */
	struct conn *rq_conn;            /* the client connection (borrowed) */
	struct http1_req *rq_hreq;       /* the parsed head (borrowed) */
	struct evbuffer *rq_body;        /* the request body (borrowed) */
	struct resp_hdrs rq_out;         /* response headers being built */
	struct upstream_conn *rq_upconn; /* the upstream connection in use */
	struct upstream_wait *rq_upwait; /* its place in a pool's queue */
	char rq_id[33];                  /* request id (X-Request-Id) */
	char rq_peer[64];                /* client address as text */
	int rq_peer_trusted;             /* peer is in trusted_proxies */
	const char *rq_method; /* rq_methodbuf, or borrowed from rq_hreq */
	char rq_methodbuf[24];
	int rq_head;       /* HEAD: no response body */
	int rq_close;      /* close the connection after it */
	int rq_json;       /* answer errors in JSON */
	char *rq_path;     /* path?query as forwarded (new) */
	char *rq_normpath; /* normalised path, no query (new) */
	int rq_status;     /* status sent to the client */
	uint64_t rq_bytes; /* response body bytes to the client */
	struct timespec rq_start;
	struct timespec rq_up_start;
	double rq_up_ms;      /* time to the upstream's head; <0 if none */
	const char *rq_event; /* fixed event name for the access log */
	char rq_user[128];    /* who, for the access log (log_user); "" */
	int rq_route_line;    /* config line of the deciding route; 0 none */
	int rq_mroute;        /* its metrics label (metrics.h's route id) */
	char rq_deny[96];     /* the criterion that refused, for the log */
	const struct policy_route *rq_route; /* borrowed from the config */
	struct session *rq_session;          /* the signed-in session (new) */
	struct session_op *rq_store_op;      /* session store call under way */
	int rq_store_failed; /* the store could not answer for the session */
	struct httpc_xfer *rq_xfer;    /* provider call in flight */
	struct oidc_flow *rq_flow;     /* sign-in being completed (new) */
	struct oidc_tokens *rq_tokens; /* token response (new) */
	void (*rq_resume)(struct request_ctx *); /* after a wait */
	struct event *rq_timer;                  /* waits (refresh poll) */
	int rq_token_waits;     /* waits so far for a route's profile token */
	int rq_verify;          /* forward-auth: answer, do not proxy */
	int rq_upgrade;         /* a WebSocket handshake being proxied */
	char *rq_upstream_hdrs; /* extra header lines (new) */
	void (*rq_fail)(struct request_ctx *, int); /* body broke off */
	struct request_cleanup rq_cleanup[REQUEST_NCLEANUP];
	int rq_ncleanup;
};

/*
 * A request head (and body) has been read on connection c: make its
 * context and attach it to c (conn_attach), so that it is freed if c goes
 * away first.  req and body are borrowed from the connection for the
 * request's life.  Returns the context for the caller (the worker's
 * dispatch function, worker.h) to register its cleanup and run it through
 * the handlers; NULL when it could not be made (c has been answered 503).
 */
struct request_ctx *request_start(
    struct conn *c, struct http1_req *req, struct evbuffer *body);

/* Register fn(arg) to run when rq is freed (see the registry above). */
void request_cleanup_add(
    struct request_ctx *rq, void (*fn)(void *arg), void *arg);

/* The response headers being built (borrowed from rq). */
struct resp_hdrs *request_out(struct request_ctx *rq);

/* The request body (borrowed; may be NULL or empty). */
struct evbuffer *request_body(struct request_ctx *rq);

/*
 * The request is to be served with its body: when the body has not been
 * read yet, start reading it (up to max bytes; conn_body_read) and return
 * 1: resume(rq) runs once it is in (or streaming, conn.h), or fail(rq,
 * status) when it broke off (status 400 malformed, 413 too large, 503 too
 * many bodies held; fail answers the request).  Returns 0 when there is
 * nothing to wait for (no body, or it is already read).
 */
int request_body_read(struct request_ctx *rq, int64_t max,
    void (*resume)(struct request_ctx *),
    void (*fail)(struct request_ctx *, int status));

/*
 * Elapsed milliseconds since *from.
 */
double request_ms_since(const struct timespec *from);

/*
 * Send a complete response (status, body) with the headers already in the
 * request's output headers.  May finish the request: the caller must not
 * touch rq afterwards.
 */
void request_reply(struct request_ctx *rq, int status, const char *reason,
    struct evbuffer *body);

/*
 * End a streamed response (after conn_head_begin/_end and conn_body on
 * rq->rq_conn): the last chunk if any, then rq is freed.  Must be the last
 * thing the caller does with rq.
 */
void request_end(struct request_ctx *rq);

/*
 * The request's connection has been handed over (conn_detach: a tunnel
 * now owns its socket): rq is freed, with its access line, and nothing
 * is written.  Must be the last thing the caller does with rq.
 */
void request_end_detached(struct request_ctx *rq);
/* Look up an incoming request header (borrowed) or NULL.  The first one
 * when it is repeated. */
const char *request_header(struct request_ctx *rq, const char *name);

/*
 * Abort: end the client connection without a clean end of response (used
 * when the upstream fails mid-body so the client sees a truncated response,
 * never a complete-looking one).  Frees rq.
 */
void request_abort(struct request_ctx *rq);

/* Cast a callback's void * back to a ctx, aborting on a bad magic. */
struct request_ctx *request_cast(void *arg);

#endif
