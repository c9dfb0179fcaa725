/* SPDX-License-Identifier: ISC */
/*
 * worker.h: a worker thread's state, shared by the layers that run on it.
 * server.c makes and runs the workers; the connection and request layers
 * below it read their worker through this header alone, so that they need
 * not know the server.  Worker-thread only, but for w_next_routes.
 */
#ifndef GATEHOUSE_WORKER_H
#define GATEHOUSE_WORKER_H

#include <sys/queue.h>
#include <pthread.h>
#include <stdint.h>

struct config;
struct evbuffer;
struct http1_req;
struct conn;
struct event;
struct event_base;
struct upstream_pool;
struct httpc;
struct oidc_provider;
struct store_reader;
struct oidc_flight;
struct policy_table;
struct tunnel;

#define WORKER_MAGIC 0x574b5252u /* "WKRR" */

/* A worker thread: members use the w_ prefix. */
struct worker {
	uint32_t w_magic;
	int w_id;
	pthread_t w_thread;
	const struct config *w_cfg; /* borrowed, read-only */
	struct event_base *w_base;
	int w_listen_fd;
	struct event *w_listen_ev; /* accept */
	struct event *w_accept_ev; /* resume accepting after EMFILE */
	int w_emfile_logged;
	TAILQ_HEAD(conn_list, conn) w_conns;       /* open client connections */
	TAILQ_HEAD(tunnel_list, tunnel) w_tunnels; /* WebSocket tunnels */
	int w_mail[2]; /* pipe from the main thread */
	struct event *w_mail_ev;
	const struct policy_table *w_next_routes; /* atomic, from SIGHUP */
	struct upstream_pool *w_pool;
	struct httpc *w_httpc;            /* calls to the provider */
	struct oidc_provider *w_provider; /* NULL without a provider */
	struct store_reader *w_reader;    /* session store reads */
	struct event *w_sweep_ev;         /* expired-session sweep (worker 0) */
	struct oidc_flight *w_flights;
	const struct policy_table *w_routes; /* swapped on SIGHUP */
	struct event *w_drain_ev;            /* drain deadline */
	int w_draining;
	int w_inflight;    /* requests between accept and completion */
	uint64_t w_reqseq; /* for request ids */
	uint64_t w_idseed;
	/* A request head has been read on connection c: serve it (req and
	 * body are borrowed from c for the request's life).  Set by whoever
	 * makes the worker, so that the connection layer does not know what
	 * serves its requests. */
	void (*w_dispatch)(
	    struct conn *c, struct http1_req *req, struct evbuffer *body);
};

#endif
