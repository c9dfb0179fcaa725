/* SPDX-License-Identifier: ISC */
/*
 * request.c: the request context's life: made in the router, freed in
 * exactly one place (request_free) from whichever way the request ends:
 * the reply was written, the client went away, or the gateway aborted it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdio.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <openssl/crypto.h>

#include "core/config.h"
#include "core/log.h"
#include "core/log_json.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "http/conn.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"

struct request_ctx *
request_cast(void *arg)
{
	return MAGIC_CAST(struct request_ctx, rq_magic, REQUEST_MAGIC, arg);
}

double
request_ms_since(const struct timespec *from)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - from->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - from->tv_nsec) / 1e6;
}

/* The request's access line, text or JSON (log_access_rec): the route
 * is its line and its label (as the metrics name it). */
static void
request_log(struct request_ctx *rq, double ms)
{
	struct log_access_rec r;
	char path[1024];
	const char *p = rq->rq_normpath;

	/* The path only: a query can carry codes and tokens (the callback's
	 * does), and no secret may reach a log line. */
	if (p == NULL && rq->rq_path != NULL) {
		snprintf(path, sizeof(path), "%.*s",
		    (int)strcspn(rq->rq_path, "?"), rq->rq_path);
		p = path;
	}
	memset(&r, 0, sizeof(r));
	r.la_id = rq->rq_id;
	r.la_action = rq->rq_event;
	r.la_client = rq->rq_peer;
	r.la_method = rq->rq_method;
	r.la_path = p;
	r.la_status = rq->rq_status;
	r.la_bytes = (unsigned long long)rq->rq_bytes;
	r.la_user = rq->rq_user;
	r.la_route = metrics_route_name(rq->rq_mroute);
	r.la_route_line = rq->rq_route_line;
	r.la_deny = rq->rq_deny;
	r.la_up_ms = rq->rq_up_ms;
	r.la_ms = ms;
	log_access_rec(&r);
}

void
request_cleanup_add(struct request_ctx *rq, void (*fn)(void *), void *arg)
{
	int i;

	for (i = 0; i < rq->rq_ncleanup; i++)
		if (rq->rq_cleanup[i].rc_fn == fn &&
		    rq->rq_cleanup[i].rc_arg == arg)
			return;
	/* The registrants are a fixed few (request.h). */
	if (rq->rq_ncleanup == REQUEST_NCLEANUP)
		abort();
	rq->rq_cleanup[rq->rq_ncleanup].rc_fn = fn;
	rq->rq_cleanup[rq->rq_ncleanup].rc_arg = arg;
	rq->rq_ncleanup++;
}

/* The one place a ctx is freed. */
static void
request_free(struct request_ctx *rq)
{
	struct request_cleanup *rc;
	double ms = request_ms_since(&rq->rq_start);

	metrics_request_done(
	    rq->rq_mroute, rq->rq_method, rq->rq_status, ms, rq->rq_up_ms);
	metrics_inflight_add(-1);
	if (rq->rq_cfg->cf_access_log)
		request_log(rq, ms);
	free(rq->rq_path);
	rq->rq_path = NULL;
	free(rq->rq_normpath);
	rq->rq_normpath = NULL;
	while (rq->rq_ncleanup > 0) {
		rc = &rq->rq_cleanup[--rq->rq_ncleanup];
		rc->rc_fn(rc->rc_arg);
	}
	if (rq->rq_upstream_hdrs != NULL) {
		OPENSSL_cleanse(
		    rq->rq_upstream_hdrs, strlen(rq->rq_upstream_hdrs));
		free(rq->rq_upstream_hdrs);
	}
	rq->rq_upstream_hdrs = NULL;
	resp_hdrs_cleanup(&rq->rq_out);
	/* Last: the cleanups above may still read the configuration, and
	 * this may free the generation it came from. */
	worker_gen_release(rq->rq_gen);
	rq->rq_gen = NULL;
	rq->rq_magic = 0;
	free(rq);
}

/* The client connection went away (or timed out) while rq was being
 * served (conn_attach): stop everything it waits for and free it. */
static void
request_client_gone(void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	rq->rq_state = RQ_CLIENT_GONE;
	if (rq->rq_status == 0)
		rq->rq_status = 499; /* nginx's "client closed request" */
	rq->rq_event = "client_gone";
	request_free(rq);
}

struct request_ctx *
request_start(struct conn *c, struct http1_req *req, struct evbuffer *body)
{
	struct worker *w = conn_worker(c);
	struct request_ctx *rq;
	const char *m;
	size_t ml;

	rq = calloc(1, sizeof(*rq));
	if (rq == NULL) {
		conn_respond(c, 503, "Service Unavailable", NULL, NULL, 1);
		return NULL;
	}
	rq->rq_magic = REQUEST_MAGIC;
	metrics_inflight_add(1);
	rq->rq_worker = w;
	rq->rq_gen = worker_gen_hold(w->w_gen);
	rq->rq_cfg = rq->rq_gen->wg_cfg;
	rq->rq_conn = c;
	rq->rq_hreq = req;
	rq->rq_body = body;
	rq->rq_state = RQ_NEW;
	rq->rq_up_ms = -1;
	rq->rq_event = "proxy";
	/* Copied: the head goes back to the connection when the response
	 * is complete, and the access line is written after that. */
	m = req->hr_method != NULL ? req->hr_method : "OTHER";
	ml = strlen(m);
	if (ml >= sizeof(rq->rq_methodbuf))
		ml = sizeof(rq->rq_methodbuf) - 1;
	memcpy(rq->rq_methodbuf, m, ml);
	rq->rq_methodbuf[ml] = '\0';
	rq->rq_method = rq->rq_methodbuf;
	rq->rq_head = strcmp(rq->rq_method, "HEAD") == 0;
	clock_gettime(CLOCK_MONOTONIC, &rq->rq_start);
	m = conn_peer(c);
	ml = strlen(m);
	if (ml >= sizeof(rq->rq_peer))
		ml = sizeof(rq->rq_peer) - 1;
	memcpy(rq->rq_peer, m, ml);
	rq->rq_peer[ml] = '\0';
	rq->rq_peer_trusted = conn_peer_trusted(c);
	conn_attach(c, request_client_gone, rq);
	return rq;
}

struct resp_hdrs *
request_out(struct request_ctx *rq)
{
	return &rq->rq_out;
}

struct evbuffer *
request_body(struct request_ctx *rq)
{
	return rq->rq_body;
}

static void
request_body_ready(void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	int err = conn_body_error(rq->rq_conn);

	rq->rq_state = RQ_NEW;
	if (err == 0)
		rq->rq_resume(rq);
	else
		rq->rq_fail(rq, err);
}

int
request_body_read(struct request_ctx *rq, int64_t max,
    void (*resume)(struct request_ctx *),
    void (*fail)(struct request_ctx *, int status))
{
	if (!conn_body_held(rq->rq_conn))
		return 0;
	rq->rq_resume = resume;
	rq->rq_fail = fail;
	rq->rq_state = RQ_BODY;
	conn_body_read(rq->rq_conn, max, request_body_ready, rq);
	return 1;
}

const char *
request_header(struct request_ctx *rq, const char *name)
{
	const struct http1_req *r = rq->rq_hreq;
	size_t n = strlen(name);
	int i;

	for (i = 0; i < r->hr_nhdrs; i++)
		if (r->hr_hdrs[i].hh_nlen == n &&
		    strcasecmp(r->hr_hdrs[i].hh_name, name) == 0)
			return r->hr_hdrs[i].hh_value;
	return NULL;
}

void
request_reply(struct request_ctx *rq, int status, const char *reason,
    struct evbuffer *body)
{
	rq->rq_status = status;
	rq->rq_state = RQ_REPLIED;
	if (body != NULL && !rq->rq_head)
		rq->rq_bytes += evbuffer_get_length(body);
	conn_respond(
	    rq->rq_conn, status, reason, &rq->rq_out, body, rq->rq_close);
	request_free(rq);
}

void
request_end(struct request_ctx *rq)
{
	rq->rq_state = RQ_REPLIED;
	conn_end(rq->rq_conn);
	request_free(rq);
}

void
request_end_detached(struct request_ctx *rq)
{
	rq->rq_state = RQ_REPLIED;
	rq->rq_conn = NULL;
	request_free(rq);
}

void
request_abort(struct request_ctx *rq)
{
	rq->rq_event = "aborted";
	rq->rq_state = RQ_CLIENT_GONE;
	/* What the upstream did send still reaches the client, then the
	 * connection closes without ending the response, so the client
	 * sees it is short. */
	conn_abort(rq->rq_conn);
	request_free(rq);
}
