/* SPDX-License-Identifier: ISC */
/*
 * metrics_server.h: the Prometheus listener (metrics_listen), served on
 * worker 0's event loop apart from the proxy's port, and the labels the
 * metrics take from the configuration.
 */
#ifndef GATEHOUSE_METRICS_SERVER_H
#define GATEHOUSE_METRICS_SERVER_H

#include "core/config.h"
#include "http/worker.h"

/*
 * Its configuration key, metrics_listen, and a check that gives each route
 * of the table being read its metrics label and names gatehouse's
 * endpoints (config_modules.c lists it).
 */
extern const struct config_module metrics_server_config_module;

/*
 * Open the listener on w's event loop when metrics_listen is set.  0 (also
 * when it is off), or -1 with the reason logged.  Main thread, while w is
 * made (server.c, for worker 0).
 */
int metrics_server_start(struct worker *w);

/* Close the listener and its connections if w runs them; a no-op for any
 * other worker.  After w's loop has stopped, before its base is freed. */
void metrics_server_stop(struct worker *w);

#endif
