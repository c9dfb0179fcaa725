/* SPDX-License-Identifier: ISC */
/*
 * websocket.h: the WebSocket handshake (RFC 6455 section 4) as the proxy
 * sees it: whether a request asks for one and is well-formed, whether its
 * Origin is this site, whether the upstream's 101 answers it, and the
 * websocket_* keys.  The tunnel that follows is tunnel.h's.
 */
#ifndef GATEHOUSE_WEBSOCKET_H
#define GATEHOUSE_WEBSOCKET_H

#include "core/config.h"
#include "http/http1.h"

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module websocket_config_module;

/* What a request head asks for. */
enum websocket_ask {
	WEBSOCKET_NONE, /* no WebSocket upgrade: proxied as a plain request,
	                   any other Upgrade (h2c, ...) stripped */
	WEBSOCKET_OK,   /* a well-formed handshake: tunnel it */
	WEBSOCKET_BAD,  /* asks for websocket but is malformed: 400 */
};

/*
 * Whether r (a parsed request head, borrowed) is a WebSocket handshake:
 * Connection names "upgrade" and Upgrade names "websocket"; then it must be
 * a GET over HTTP/1.1 without a body, with a Sec-WebSocket-Key of 16 bytes
 * in base64 and Sec-WebSocket-Version 13, or it is WEBSOCKET_BAD.
 */
enum websocket_ask websocket_ask(const struct http1_req *r);

/*
 * Whether the handshake's Origin may open a tunnel: 1 when
 * websocket_origin_check is off, when r has no Origin (not a browser: the
 * attack this stops needs a browser carrying the cookie), when Origin is
 * the site of redirect_uri (cfg->cf_public_base), or when its host[:port]
 * is the request's own Host.  0 otherwise.
 */
int websocket_origin_ok(const struct config *cfg, const struct http1_req *r);

/*
 * Sec-WebSocket-Accept for a key (RFC 6455 4.2.2): base64 of SHA-1 of the
 * key and the protocol's GUID, NUL-terminated into out.  0 or -1.
 */
#define WEBSOCKET_ACCEPT_LEN 28
int websocket_accept_fmt(const char *key, char out[WEBSOCKET_ACCEPT_LEN + 1]);

/*
 * Whether p, the upstream's 101 to a handshake with this key, completes
 * it: Upgrade is websocket, Connection names upgrade, Sec-WebSocket-Accept
 * is the key's.  1 or 0 (why: a static reason for the log).
 */
int websocket_accepted(
    const char *key, const struct http1_resp *p, const char **why);

#endif
