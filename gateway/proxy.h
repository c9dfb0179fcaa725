/* SPDX-License-Identifier: ISC */
/*
 * proxy.h: forwarding to the upstream over a per-worker keep-alive pool,
 * streaming the response back with bounded buffers and back-pressure.
 */
#ifndef GATEHOUSE_PROXY_H
#define GATEHOUSE_PROXY_H

#include <stddef.h>

#include "config.h"
#include "request.h"

struct event_base;
struct proxy_pool;

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module proxy_config_module;

/*
 * Resolve the upstream address once; main thread, before the workers start.
 * Returns 0 or -1 (logged).
 */
int proxy_resolve(const struct config *cfg);

/* A worker's pool (new); proxy_pool_free(NULL) is a no-op. */
struct proxy_pool *proxy_pool_new(
    struct event_base *base, const struct config *cfg);
void proxy_pool_free(struct proxy_pool *pool);

/*
 * Forward rq to the upstream.  Returns STEP_AGAIN (the ctx is parked until
 * the upstream answers; the reply is sent from a callback) or STEP_ERROR
 * (a response has been sent).  The caller must not touch rq afterwards.
 */
enum step proxy_forward(struct request_ctx *rq);

#endif
