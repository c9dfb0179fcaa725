/* SPDX-License-Identifier: ISC */
/*
 * tls.h: TLS on the listener (`listen = host:port tls`): the certificate
 * keys, the server's SSL_CTX (Mozilla's "intermediate" settings) built
 * from them, the one in force for new connections, and its reload on
 * SIGHUP.  The connections themselves speak TLS in conn.c.
 */
#ifndef GATEHOUSE_TLS_H
#define GATEHOUSE_TLS_H

#include <stddef.h>

#include "core/config.h"

struct ssl_st;

/*
 * The keys tls_certificate and tls_certificate_key, and a check that
 * reads both files into cfg->cf_tls_ctx when listen has tls (so a bad
 * file stops the start, a reload and --check, naming the line).
 * config_modules.c lists it.
 */
extern const struct config_module tls_config_module;

/*
 * Put cfg's context in force for new connections (a reference is
 * taken).  Main thread, before the workers start; a no-op without tls.
 */
void tls_start(const struct config *cfg);

/* Let go of the context in force.  Main thread, after the workers. */
void tls_stop(void);

/*
 * SIGHUP: read cfg's certificate files again into a new context.  When
 * they are good, new connections use it (connections already open keep
 * theirs); when not, the error is logged and the old one stays.  Main
 * thread; a no-op without tls.
 */
void tls_reload(const struct config *cfg);

/*
 * A new server-side TLS session from the context in force (new: the
 * caller frees it, or hands it to conn_accept), or NULL.  Any thread.
 */
struct ssl_st *tls_ssl_new(void);

/*
 * A handshake or record failure on a client connection from peer: one
 * debug line, at most one per 10 s per thread.  The reason comes from
 * OpenSSL's error queue (err, 0 for none).  Worker thread.
 */
void tls_log_failure(const char *peer, unsigned long err);

/*
 * What --check says beyond the errors: the certificate's subject and
 * expiry into buf (*warning 1 when it has expired or is not valid yet).
 * Returns buf, or NULL without tls.
 */
const char *tls_check_summary(
    const struct config *cfg, char *buf, size_t size, int *warning);

#endif
