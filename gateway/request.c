/* SPDX-License-Identifier: ISC */
/*
 * request.c: the request context's life: made in the router, freed in
 * exactly one place (request_free) from whichever way the request ends:
 * the reply was written, the client went away, or the gateway aborted it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <openssl/crypto.h>

#include "http_client.h"
#include "log.h"
#include "oidc.h"
#include "session.h"
#include "proxy.h"
#include "request.h"
#include "server.h"

struct request_ctx *
request_cast(void *arg)
{
	struct request_ctx *rq = arg;

	if (rq == NULL || rq->rq_magic != REQUEST_MAGIC)
		abort();
	return rq;
}

double
request_ms_since(const struct timespec *from)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - from->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - from->tv_nsec) / 1e6;
}

static void
request_log(struct request_ctx *rq)
{
	char path[256];
	const char *p = rq->rq_normpath != NULL ? rq->rq_normpath : rq->rq_path;

	/* The path only: a query can carry codes and tokens (the callback's
	 * does), and no secret may reach a log line. */
	if (p != NULL && rq->rq_normpath == NULL) {
		snprintf(path, sizeof(path), "%.*s", (int)strcspn(p, "?"), p);
		p = path;
	}
	log_access("id=%s event=%s client=%s method=%s path=\"%s\" status=%d "
	           "bytes=%llu up_ms=%.1f ms=%.1f",
	    rq->rq_id, rq->rq_event, rq->rq_peer, rq->rq_method,
	    log_sanitize(path, sizeof(path), p), rq->rq_status,
	    (unsigned long long)rq->rq_bytes, rq->rq_up_ms,
	    request_ms_since(&rq->rq_start));
}

/* The one place a ctx is freed (S13).  Not the evhttp request: libevent
 * frees that after a completed reply, the callers otherwise. */
static void
request_free(struct request_ctx *rq)
{
	struct worker *w = rq->rq_worker;

	if (rq->rq_worker->w_cfg->cf_access_log)
		request_log(rq);
	free(rq->rq_path);
	rq->rq_path = NULL;
	free(rq->rq_normpath);
	rq->rq_normpath = NULL;
	if (rq->rq_xfer != NULL)
		httpc_cancel(rq->rq_xfer);
	rq->rq_xfer = NULL;
	oidc_request_cleanup(rq);
	session_free(rq->rq_session);
	rq->rq_session = NULL;
	if (rq->rq_timer != NULL)
		event_free(rq->rq_timer);
	rq->rq_timer = NULL;
	if (rq->rq_upstream_hdrs != NULL) {
		OPENSSL_cleanse(
		    rq->rq_upstream_hdrs, strlen(rq->rq_upstream_hdrs));
		free(rq->rq_upstream_hdrs);
	}
	rq->rq_upstream_hdrs = NULL;
	rq->rq_magic = 0;
	free(rq);
	server_request_done(w);
}

/* The reply has been written out; libevent frees the request next. */
static void
request_complete_cb(struct evhttp_request *req, void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	(void)req;
	evhttp_connection_set_closecb(rq->rq_evcon, NULL, NULL);
	request_free(rq);
}

static void
request_req_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_request_free(arg);
}

/*
 * The client connection is going away under a request we own.  libevent
 * is in the middle of freeing the connection and still lists the request,
 * so the request itself is freed on the next loop turn, not here.
 */
static void
request_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	struct timeval now = {0, 0};

	(void)evcon;
	rq->rq_state = RQ_CLIENT_GONE;
	if (rq->rq_status == 0)
		rq->rq_status = 499; /* nginx's "client closed request" */
	rq->rq_event = "client_gone";
	proxy_abandon(rq);
	if (event_base_once(rq->rq_worker->w_base, -1, EV_TIMEOUT,
	        request_req_free_cb, rq->rq_req, &now) == -1)
		log_warnx("request %s: leaking a request object", rq->rq_id);
	request_free(rq);
}

struct request_ctx *
request_new(struct worker *w, struct evhttp_request *req)
{
	struct request_ctx *rq;
	const char *addr = NULL;
	ev_uint16_t port = 0;

	rq = calloc(1, sizeof(*rq));
	if (rq == NULL) {
		evhttp_send_error(req, 500, "Out of memory");
		return NULL;
	}
	rq->rq_magic = REQUEST_MAGIC;
	rq->rq_worker = w;
	rq->rq_req = req;
	rq->rq_state = RQ_NEW;
	rq->rq_up_ms = -1;
	rq->rq_event = "proxy";
	rq->rq_method = "OTHER";
	clock_gettime(CLOCK_MONOTONIC, &rq->rq_start);
	rq->rq_evcon = evhttp_request_get_connection(req);
	evhttp_connection_get_peer(rq->rq_evcon, (char **)&addr, &port);
	if (addr != NULL)
		snprintf(rq->rq_peer, sizeof(rq->rq_peer), "%s", addr);
	/* From here the request is ours to free on every path but a
	 * completed reply (S13). */
	evhttp_request_own(req);
	evhttp_request_set_on_complete_cb(req, request_complete_cb, rq);
	evhttp_connection_set_closecb(rq->rq_evcon, request_close_cb, rq);
	w->w_inflight++;
	return rq;
}

const char *
request_header(struct request_ctx *rq, const char *name)
{
	return evhttp_find_header(
	    evhttp_request_get_input_headers(rq->rq_req), name);
}

void
request_reply(struct request_ctx *rq, int status, const char *reason,
    struct evbuffer *body)
{
	rq->rq_status = status;
	rq->rq_state = RQ_REPLIED;
	if (body != NULL &&
	    evhttp_request_get_command(rq->rq_req) != EVHTTP_REQ_HEAD)
		rq->rq_bytes += evbuffer_get_length(body);
	/* May call request_complete_cb at once: rq is gone after this. */
	evhttp_send_reply(rq->rq_req, status, reason, body);
}

static void
request_abort_now(struct request_ctx *rq)
{
	struct evhttp_request *req = rq->rq_req;

	evhttp_connection_set_closecb(rq->rq_evcon, NULL, NULL);
	/* Closing the connection leaves our owned request unlinked but
	 * allocated; free it ourselves. */
	evhttp_connection_free(rq->rq_evcon);
	rq->rq_evcon = NULL;
	evhttp_request_free(req);
	request_free(rq);
}

static void
request_abort_flushed_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	request_abort_now(request_cast(arg));
}

static void
request_abort_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	request_abort_now(request_cast(arg));
}

void
request_abort(struct request_ctx *rq)
{
	struct bufferevent *bev;

	rq->rq_event = "aborted";
	rq->rq_state = RQ_CLIENT_GONE;
	bev = evhttp_connection_get_bufferevent(rq->rq_evcon);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		request_abort_now(rq);
		return;
	}
	/* Let what the upstream did send reach the client, then close
	 * without ending the response, so the client sees it is short.
	 * evhttp's callbacks are set aside: the connection is ours to
	 * close from here. */
	bufferevent_setcb(
	    bev, NULL, request_abort_flushed_cb, request_abort_event_cb, rq);
	bufferevent_enable(bev, EV_WRITE);
}
