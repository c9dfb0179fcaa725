/* SPDX-License-Identifier: ISC */
/*
 * server.h: listeners and worker threads.  Each worker has its own
 * event_base, its own SO_REUSEPORT listening socket on the shared port and
 * its own client connections (conn.h); the shared state is the read-only
 * config, the session store and the provider's metadata (oidc_discovery.c).
 */
#ifndef GATEHOUSE_SERVER_H
#define GATEHOUSE_SERVER_H

#include <sys/queue.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct conn;
struct event;
struct event_base;
struct proxy_pool;
struct httpc;
struct oidc_provider;
struct store_reader;
struct oidc_flight;
struct policy_table;

#define WORKER_MAGIC 0x574b5252u /* "WKRR" */

/* A worker thread: members use the w_ prefix (S7). */
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
	TAILQ_HEAD(conn_list, conn) w_conns; /* open client connections */
	int w_mail[2];                       /* pipe from the main thread */
	struct event *w_mail_ev;
	const struct policy_table *w_next_routes; /* atomic, from SIGHUP */
	struct proxy_pool *w_pool;
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
};

extern const struct config_key server_keys[];
extern const size_t server_nkeys;

/* Cross-key checks of the server keys (config layer). */
int server_config_check(
    struct config *cfg, config_report_fn *report, void *arg);

/*
 * Start cfg->cf_workers workers on the listen address and serve until
 * SIGTERM or SIGINT, then stop accepting, let in-flight requests finish
 * (bounded by drain_timeout) and return 0; -1 if the server cannot start
 * (the reason has been logged).  Main thread only.
 */
int server_run(const struct config *cfg);

/*
 * Tell every worker `what` through its mail pipe ('P': a provider fetch
 * has ended).  Any thread, while the workers exist.
 */
void server_tell_all(char what);

/* A request has finished on this worker (for the graceful drain). */
void server_request_done(struct worker *w);

#endif
