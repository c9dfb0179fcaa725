/* SPDX-License-Identifier: ISC */
/*
 * https_redirect.h: listen_http_redirect, the plain HTTP listener beside
 * a TLS one: every request it reads is answered with a 308 to the same
 * path and query on https, and nothing else is served there.
 */
#ifndef GATEHOUSE_HTTPS_REDIRECT_H
#define GATEHOUSE_HTTPS_REDIRECT_H

#include <stddef.h>

struct conn;
struct evbuffer;
struct http1_req;

/*
 * The https URL for a request with Host host (NULL when it had none) and
 * target (origin-form, "/path?query") into buf: https://HOST[:port]TARGET,
 * HOST being host without its port (or fallback_host when host is NULL),
 * port left out when it is 443.  Returns 0, or -1 when host is not a
 * plain host name or address (with an optional port), the target is not
 * a path, or buf is too small.  Pure; any thread.
 */
int https_redirect_location(const char *host, const char *fallback_host,
    const char *target, int port, char *buf, size_t size);

/*
 * The dispatch of the redirect listener's connections (conn.h's
 * conn_dispatch_fn): answers 308 with the Location above (the port is
 * redirect_uri's when it is https, else the TLS listener's), or 400 when
 * there is none to give, and closes after a refusal.  Worker thread.
 */
void https_redirect_dispatch(
    struct conn *c, struct http1_req *req, struct evbuffer *body);

#endif
