/* SPDX-License-Identifier: ISC */
/*
 * proxy.h: forwarding a granted request to the upstream (upstream.h's
 * client and pool) and translating the response for the client, streamed
 * with bounded buffers and back-pressure.
 */
#ifndef GATEHOUSE_PROXY_H
#define GATEHOUSE_PROXY_H

#include "http/request.h"

/*
 * Forward rq to the upstream.  Returns STEP_AGAIN (the ctx is parked until
 * the upstream answers; the reply is sent from a callback) or STEP_ERROR
 * (a response has been sent).  The caller must not touch rq afterwards.
 */
enum step proxy_forward(struct request_ctx *rq);

#endif
