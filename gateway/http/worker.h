/* SPDX-License-Identifier: ISC */
/*
 * worker.h: a worker thread's state, shared by the layers that run on it.
 * server.c makes and runs the workers; the connection and request layers
 * below it read their worker through this header alone, so that they need
 * not know the server.  Worker-thread only, but for w_next_gen.
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

#define WORKER_MAGIC 0x574b5252u     /* "WKRR" */
#define WORKER_GEN_MAGIC 0x57474e52u /* "WGNR" */

/*
 * One configuration generation as one worker sees it: the configuration
 * read at start-up or by a SIGHUP, and what this worker built for it (an
 * upstream pool, a handle on the provider).  A request holds a reference
 * on the generation it started with and reads its settings there until it
 * ends, so a reload never changes a request half-way; the worker holds one
 * on its current generation.  The count is a plain int: a generation is
 * only ever touched on its worker's thread, so taking and dropping a
 * reference costs an increment, no lock and no atomic (the process-wide
 * count behind wg_owner is touched once per worker and generation, not
 * per request).  Members use the wg_ prefix.
 */
struct worker_gen {
	uint32_t wg_magic;
	int wg_refs;
	struct worker *wg_worker;
	const struct config *wg_cfg; /* borrowed: the process's generation */
	const struct policy_table *wg_routes; /* in wg_cfg */
	struct upstream_pool *wg_pool;        /* owned */
	struct oidc_provider *wg_provider;    /* owned; NULL without one */
	void *wg_owner; /* the process-wide generation (server.c) */
	unsigned wg_id; /* 1 at start-up, then one more per reload */
	LIST_ENTRY(worker_gen) wg_entry; /* w_gens */
};

/* A worker thread: members use the w_ prefix. */
struct worker {
	uint32_t w_magic;
	int w_id;
	pthread_t w_thread;
	const struct config *w_cfg; /* w_gen's: borrowed, read-only */
	struct event_base *w_base;
	int w_listen_fd;
	struct event *w_listen_ev; /* accept */
	struct event *w_accept_ev; /* resume accepting after EMFILE */
	int w_emfile_logged;
	/* listen_http_redirect's socket and accept event (-1 and NULL
	 * when it is off) */
	int w_redirect_fd;
	struct event *w_redirect_ev;
	TAILQ_HEAD(conn_list, conn) w_conns;       /* open client connections */
	TAILQ_HEAD(tunnel_list, tunnel) w_tunnels; /* WebSocket tunnels */
	int w_mail[2]; /* pipe from the main thread */
	struct event *w_mail_ev;
	void *w_next_gen; /* atomic: a generation from SIGHUP, not taken */
	struct worker_gen *w_gen;       /* the current generation */
	LIST_HEAD(, worker_gen) w_gens; /* current and retired ones */
	/* Aliases of w_gen's: for what does not belong to one request
	 * (connections, timers); a request reads its own generation. */
	struct upstream_pool *w_pool;
	struct httpc *w_httpc;            /* calls to the provider */
	struct oidc_provider *w_provider; /* NULL without a provider */
	struct store_reader *w_reader;    /* session store reads */
	struct event *w_sweep_ev;         /* expired-session sweep (worker 0) */
	struct oidc_flight *w_flights;
	struct oidc_revoke *w_revokes;       /* token revocations under way */
	const struct policy_table *w_routes; /* w_gen's */
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
	/* A generation's last reference is gone: free what the worker built
	 * for it (set by the server, which knows what that is). */
	void (*w_gen_free)(struct worker_gen *g);
};

/* Take a reference on g (the worker's thread only); returns g. */
static inline struct worker_gen *
worker_gen_hold(struct worker_gen *g)
{
	g->wg_refs++;
	return g;
}

/* Drop a reference on g; the last one frees it.  NULL is a no-op. */
static inline void
worker_gen_release(struct worker_gen *g)
{
	if (g != NULL && --g->wg_refs == 0)
		g->wg_worker->w_gen_free(g);
}

#endif
