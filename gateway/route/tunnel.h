/* SPDX-License-Identifier: ISC */
/*
 * tunnel.h: a WebSocket tunnel after the upstream's 101.  Bytes flow both
 * ways unchanged, with back-pressure each way, until either side closes
 * (a half-close is passed on), the tunnel is idle for
 * websocket_idle_timeout, its session ends (re-read every
 * websocket_session_check), or the drain deadline comes.  A tunnel counts
 * as a connection (metrics) and as in flight (the drain waits for it).
 * Members use the t_ prefix.  Worker-thread only.
 */
#ifndef GATEHOUSE_TUNNEL_H
#define GATEHOUSE_TUNNEL_H

#include "http/request.h"

struct evbuffer;
struct worker;

/*
 * Turn rq's connection into a tunnel to the upstream socket upfd: the
 * client connection is detached (conn_detach; what it still had to write,
 * the 101 head, goes first), upin holds what the upstream sent after its
 * head (its bytes are moved out).  Takes upfd, and rq's session (the
 * tunnel re-reads it); rq itself stays the caller's, to end with
 * request_end_detached.  0 (the client connection is the tunnel's, or was
 * closed when the tunnel could not be finished), or -1 when nothing could
 * be made: upfd is closed, the client connection untouched (answer it).
 */
int tunnel_start(struct request_ctx *rq, int upfd, struct evbuffer *upin);

/* Close every tunnel of w (the drain deadline, or exit). */
void tunnel_close_all(struct worker *w, const char *why);

#endif
