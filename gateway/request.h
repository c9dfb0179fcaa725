/* SPDX-License-Identifier: ISC */
/*
 * request.h: the per-request context (S13).  Everything a request allocates
 * hangs off struct request_ctx and is freed in one place, request_free().
 * Members use the rq_ prefix (S7).  Worker-thread only.
 */
#ifndef GATEHOUSE_REQUEST_H
#define GATEHOUSE_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct evbuffer;
struct evhttp_request;
struct evhttp_connection;
struct worker;
struct proxy_conn;
struct httpc_xfer;
struct oidc_flow;
struct oidc_tokens;
struct policy_route;
struct session;

#define REQUEST_MAGIC 0x52514354u /* "RQCT" */

/* Where a request is (relayd's relay_state, S18): no hidden flags. */
enum rq_state {
	RQ_NEW,         /* in the router */
	RQ_PROVIDER,    /* waiting for the OpenID Provider */
	RQ_UPSTREAM,    /* waiting for the upstream's response head */
	RQ_STREAMING,   /* response head sent, body flowing */
	RQ_REPLIED,     /* reply ended; waiting for the client to take it */
	RQ_CLIENT_GONE, /* the client went away; tearing down */
};

/* The pipeline's four verdicts (nginx, S8). */
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
	struct evhttp_request *rq_req; /* owned (evhttp_request_own) */
	struct evhttp_connection *rq_evcon;
	struct proxy_conn *rq_upconn; /* the upstream connection in use */
	char rq_id[33];               /* request id (X-Request-Id) */
	char rq_peer[64];             /* client address as text */
	int rq_peer_trusted;          /* peer is in trusted_proxies */
	const char *rq_method;        /* static string */
	char *rq_path;                /* path?query as forwarded (new) */
	char *rq_normpath;            /* normalised path, no query (new) */
	int rq_status;                /* status sent to the client */
	uint64_t rq_bytes;            /* response body bytes to the client */
	struct timespec rq_start;
	struct timespec rq_up_start;
	double rq_up_ms;      /* time to the upstream's head; <0 if none */
	const char *rq_event; /* fixed event name for the access log */
	const struct policy_route *rq_route; /* borrowed from the config */
	struct session *rq_session;          /* the signed-in session (new) */
	struct httpc_xfer *rq_xfer;          /* provider call in flight */
	struct oidc_flow *rq_flow;           /* sign-in being completed (new) */
	struct oidc_tokens *rq_tokens;       /* token response (new) */
	void (*rq_resume)(struct request_ctx *); /* after a wait */
	struct event *rq_timer;                  /* waits (refresh poll) */
	int rq_verify;          /* forward-auth: answer, do not proxy */
	char *rq_upstream_hdrs; /* extra header lines (new) */
};

/*
 * Make the context for a new evhttp request and take ownership of the
 * request (evhttp_request_own).  Returns new ctx or NULL (then a 500 has
 * been sent).
 */
struct request_ctx *request_new(struct worker *w, struct evhttp_request *req);

/*
 * Elapsed milliseconds since *from.
 */
double request_ms_since(const struct timespec *from);

/*
 * Send a complete response (status, body) with the headers already in the
 * request's output headers.  May finish the request: the caller must not
 * touch rq afterwards (S14).
 */
void request_reply(struct request_ctx *rq, int status, const char *reason,
    struct evbuffer *body);

/* Look up an incoming request header (borrowed) or NULL. */
const char *request_header(struct request_ctx *rq, const char *name);

/*
 * Abort: drop the client connection without a clean end of response (used
 * when the upstream fails mid-body so the client sees a truncated response,
 * never a complete-looking one).  Frees rq.
 */
void request_abort(struct request_ctx *rq);

/* Cast a callback's void * back to a ctx, aborting on a bad magic (S14). */
struct request_ctx *request_cast(void *arg);

#endif
