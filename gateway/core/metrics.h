/* SPDX-License-Identifier: ISC */
/*
 * metrics.h: the Prometheus counters, per thread.  Each worker thread has
 * its own block of plain 64-bit integers (metrics_thread_attach), written
 * only by that thread; the scrape sums the blocks with relaxed atomic
 * loads.  Nothing on the request path takes a lock or does an atomic
 * read-modify-write: an increment is a relaxed load, an add and a relaxed
 * store (the same instructions as a plain ++), which is exact because one
 * thread only writes each block.  A thread that never attached (the main
 * thread: start-up, reloads, the admin command) counts into a block of its
 * own.
 *
 * Every label value is from a fixed set in this file or from the
 * configuration (route patterns, endpoint paths), never from a client or
 * a provider: a value outside a set is counted as "other".
 */
#ifndef GATEHOUSE_METRICS_H
#define GATEHOUSE_METRICS_H

#include <stdint.h>

struct evbuffer;

/* Route label ids (the `route` label of gatehouse_requests_total). */
enum metrics_route_id {
	METRICS_ROUTE_INVALID,   /* refused before routing (400, 405, ...) */
	METRICS_ROUTE_UNMATCHED, /* no route line matched (403) */
	METRICS_ROUTE_DEFAULT,   /* no route lines at all: everything proxied */
	METRICS_ROUTE_OTHER,     /* more distinct patterns than fit */
	METRICS_ROUTE_ENDPOINT,  /* + the endpoint's number (router.h) */
	METRICS_ROUTE_FIRST = METRICS_ROUTE_ENDPOINT + 16, /* route patterns */
};
#define METRICS_ENDPOINTS_MAX 16
#define METRICS_ROUTES_MAX 256

/* Session store operations (store.c counts each call with its result,
 * a store_result: 0 ok, 1 not found, 2 full, 3 error, 4 unavailable,
 * 6 busy; a pending call is counted by its backend when it completes). */
enum metrics_store_op {
	METRICS_STORE_GET,
	METRICS_STORE_PUT,
	METRICS_STORE_PUT_HOT,
	METRICS_STORE_DELETE,
	METRICS_STORE_SWEEP,
	METRICS_STORE_LOCK,
	METRICS_STORE_UNLOCK,
};

/*
 * Give the calling thread a block of its own, registered as number id
 * (0 <= id < 256: a worker's number) so that the scrape finds it.  Once
 * per thread, at its start, before it counts anything.
 */
void metrics_thread_attach(int id);

/* Free every block and label.  Main thread, after the other threads have
 * stopped. */
void metrics_cleanup(void);

/*
 * Route labels, set while the configuration is read (main thread).
 * metrics_route_set names a reserved id (an endpoint) once: later calls
 * for the same id change nothing, so a label never changes under a
 * scrape.  metrics_route_intern returns the id of a route pattern,
 * adding it when new, or METRICS_ROUTE_OTHER when the table is full.
 * metrics_route_name returns the label of an id (borrowed, static for the
 * process's life); any thread.
 */
void metrics_route_set(int id, const char *label);
int metrics_route_intern(const char *label);
const char *metrics_route_name(int id);

/*
 * A request has ended (request_free): its route id, method, status sent,
 * total time in ms and time to the upstream's head in ms (< 0: none).
 */
void metrics_request_done(
    int route, const char *method, int status, double ms, double up_ms);

/* Client connections open (+1 accepted, -1 closed), and requests being
 * served (+1 started, -1 freed): the active and idle gauges. */
void metrics_conn_add(int delta);
void metrics_inflight_add(int delta);

/* One session store call and its store_result. */
void metrics_store_op(enum metrics_store_op op, int result);

/*
 * The rarer events, named by gatehouse's own words: each maps its argument
 * onto a fixed set of label values, anything else to "other".
 *   reason: the error code of a failed sign-in (state_invalid, cancelled,
 *     provider_error, provider_timeout, provider_unavailable,
 *     token_refused, token_auth_unsupported, invalid_id_token,
 *     iss_mismatch, bad_callback, store_unavailable, internal);
 *   result of a refresh: ok, ended, failed, store_full, store_failed,
 *     provider_unavailable;
 *   what of a provider fetch: discovery, jwks, token; its result: ok,
 *     timeout, dns, connect, tls, too_large, error, http, invalid,
 *     refused, internal;
 *   why of an upstream failure: upstream.c's reason ("connection
 *     refused", "timeout", ...).
 */
void metrics_signin_started(void);
void metrics_signin_completed(void);
void metrics_signin_failed(const char *reason);
void metrics_refresh(const char *result);
void metrics_provider_fetch(const char *what, const char *result);
void metrics_upstream_error(const char *why);

/*
 * Append the whole exposition (text format 0.0.4) to out: every counter
 * summed over the blocks, the histograms, the gauges, sessions (< 0: the
 * store cannot count; the metric is left out) and build info with
 * version.  0, or -1 when nothing could be written (out of memory).
 * Any thread.
 */
int metrics_format(struct evbuffer *out, long sessions, const char *version);

/*
 * Append one label value to out escaped as the text format wants it
 * (backslash, double quote and newline escaped; bytes that are not UTF-8
 * replaced by U+FFFD).  For metrics_format and its tests.
 */
void metrics_label_escape(struct evbuffer *out, const char *s);

#endif
