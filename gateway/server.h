/* SPDX-License-Identifier: ISC */
/*
 * server.h: listeners and worker threads.  Each worker has its own
 * event_base, its own SO_REUSEPORT listening socket on the shared port and
 * its own client connections (conn.h); the shared state is the read-only
 * config, the session store and the provider's metadata (oidc_discovery.c).
 */
#ifndef GATEHOUSE_SERVER_H
#define GATEHOUSE_SERVER_H

#include <stddef.h>

#include "core/config.h"
#include "http/worker.h"

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module server_config_module;

/*
 * Start cfg->cf_workers workers on the listen address and serve until
 * SIGTERM or SIGINT, then stop accepting, let in-flight requests finish
 * (bounded by drain_timeout) and return 0; -1 if the server cannot start
 * (the reason has been logged).  On SIGHUP, read the file again and make
 * it the configuration new requests start with (see server_reload).
 * Takes cfg: a reload replaces it, and each configuration is freed once
 * no request uses it.  Main thread only.
 */
int server_run(struct config *cfg);

/* A request has finished on this worker (for the graceful drain). */
void server_request_done(struct worker *w);

#endif
