/* SPDX-License-Identifier: ISC */
/* metrics.c: per-thread counter blocks, route labels, the exposition. */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/metrics.h"
#include "core/utf8.h"

#define METRICS_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define METRICS_THREADS_MAX 256

/* The fixed label values; the last of each set catches the rest. */
static const char *const metrics_methods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"};
static const char *const metrics_classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const metrics_reasons[] = {"state_invalid", "cancelled",
    "provider_error", "provider_timeout", "provider_unavailable",
    "token_refused", "token_auth_unsupported", "invalid_id_token",
    "iss_mismatch", "bad_callback", "store_unavailable", "internal", "other"};
static const char *const metrics_refresh_results[] = {"ok", "fresh", "ended",
    "failed", "store_full", "store_unavailable", "store_failed",
    "provider_unavailable", "refused", "other"};
static const char *const metrics_fetch_whats[] = {
    "discovery", "jwks", "token", "other"};
static const char *const metrics_fetch_results[] = {"ok", "timeout", "dns",
    "connect", "tls", "too_large", "error", "http", "invalid", "refused",
    "internal", "other"};
static const char *const metrics_up_kinds[] = {"refused", "connect_timeout",
    "timeout", "reset", "closed", "bad_response", "write_failed",
    "connect_error", "other"};
static const char *const metrics_store_ops[] = {
    "get", "put", "put_hot", "delete", "sweep", "lock", "unlock"};
/* By store_result, except busy (6), which comes after unavailable (4):
 * 5 (pending) is never counted. */
static const char *const metrics_store_results[] = {
    "ok", "not_found", "full", "error", "unavailable", "busy"};
static const char *const metrics_conn_states[] = {"active", "idle"};

/* upstream.c's and proxy.c's reasons, by kind (prefix match). */
static const struct {
	const char *mu_why;
	int mu_kind;
} metrics_up_whys[] = {
    {"connection refused", 0},
    {"connect timeout", 1},
    {"timeout", 2},
    {"reset", 3},
    {"closed", 4},
    {"malformed", 5},
    {"write failed", 6},
    {"connect error", 7},
};

/* Where each fixed-label family starts in mb_counters. */
enum {
	MC_SIGNIN_STARTED,
	MC_SIGNIN_COMPLETED,
	MC_SIGNIN_FAILED,
	MC_REFRESH = MC_SIGNIN_FAILED + METRICS_NELEM(metrics_reasons),
	MC_FETCH = MC_REFRESH + METRICS_NELEM(metrics_refresh_results),
	MC_UPSTREAM = MC_FETCH +
	    METRICS_NELEM(metrics_fetch_whats) *
	        METRICS_NELEM(metrics_fetch_results),
	MC_STORE = MC_UPSTREAM + METRICS_NELEM(metrics_up_kinds),
	MC_COUNT = MC_STORE +
	    METRICS_NELEM(metrics_store_ops) *
	        METRICS_NELEM(metrics_store_results),
};

/* Histogram bounds in microseconds, and as the `le` label writes them:
 * from half a millisecond (a proxied request on loopback) to 10 s. */
static const uint64_t metrics_bounds_us[] = {500, 1000, 2500, 5000, 10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const metrics_bounds_le[] = {"0.0005", "0.001", "0.0025",
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10"};
#define METRICS_NBUCKETS METRICS_NELEM(metrics_bounds_us)

_Static_assert(METRICS_NELEM(metrics_bounds_le) == METRICS_NBUCKETS,
    "one le label per bound");
_Static_assert(METRICS_NELEM(metrics_store_results) == 6,
    "the store results are store.h's, less pending");

/* Per bucket (not cumulative; the last is above every bound), and the sum
 * in microseconds (an integer, so that a scrape never reads a torn
 * double). */
struct metrics_hist {
	uint64_t mh_bucket[METRICS_NBUCKETS + 1];
	uint64_t mh_sum_us;
};

enum { METRICS_HIST_REQUEST, METRICS_HIST_UPSTREAM, METRICS_NHIST };

/* One thread's counters: written by that thread only. */
struct metrics_block {
	uint64_t mb_requests[METRICS_ROUTES_MAX][METRICS_NELEM(metrics_classes)]
	                    [METRICS_NELEM(metrics_methods)];
	struct metrics_hist mb_hist[METRICS_NHIST];
	uint64_t mb_counters[MC_COUNT];
	int64_t mb_conns;    /* client connections open */
	int64_t mb_inflight; /* requests being served */
};

static struct metrics_block metrics_main_block;
static __thread struct metrics_block *metrics_self = &metrics_main_block;
static struct metrics_block *metrics_blocks[METRICS_THREADS_MAX];

/* Route labels: set on the main thread, read by any; a slot is written
 * before the count that makes it visible is published (release). */
static char *metrics_routes[METRICS_ROUTES_MAX];
static int metrics_nroutes = METRICS_ROUTE_FIRST;

/* The only writer of a block adds: no read-modify-write instruction, and
 * no torn value for the relaxed loads of a scrape. */
static inline void
metrics_bump(uint64_t *p)
{
	__atomic_store_n(
	    p, __atomic_load_n(p, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static inline void
metrics_gauge(int64_t *p, int delta)
{
	__atomic_store_n(
	    p, __atomic_load_n(p, __ATOMIC_RELAXED) + delta, __ATOMIC_RELAXED);
}

void
metrics_thread_attach(int id)
{
	struct metrics_block *b;

	if (id < 0 || id >= METRICS_THREADS_MAX)
		return;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return; /* counts go to the shared block: approximate */
	free(__atomic_exchange_n(&metrics_blocks[id], b, __ATOMIC_ACQ_REL));
	metrics_self = b;
}

void
metrics_cleanup(void)
{
	int i;

	for (i = 0; i < METRICS_THREADS_MAX; i++) {
		free(metrics_blocks[i]);
		metrics_blocks[i] = NULL;
	}
	for (i = 0; i < METRICS_ROUTES_MAX; i++) {
		free(metrics_routes[i]);
		metrics_routes[i] = NULL;
	}
	metrics_nroutes = METRICS_ROUTE_FIRST;
	memset(&metrics_main_block, 0, sizeof(metrics_main_block));
	metrics_self = &metrics_main_block;
}

/* --- route labels ---------------------------------------------------- */

void
metrics_route_set(int id, const char *label)
{
	char *s;

	if (id < 0 || id >= METRICS_ROUTE_FIRST ||
	    __atomic_load_n(&metrics_routes[id], __ATOMIC_ACQUIRE) != NULL)
		return;
	s = strdup(label);
	if (s != NULL)
		__atomic_store_n(&metrics_routes[id], s, __ATOMIC_RELEASE);
}

int
metrics_route_intern(const char *label)
{
	int i, n = __atomic_load_n(&metrics_nroutes, __ATOMIC_ACQUIRE);
	char *s;

	for (i = METRICS_ROUTE_FIRST; i < n; i++)
		if (strcmp(metrics_routes[i], label) == 0)
			return i;
	if (n == METRICS_ROUTES_MAX)
		return METRICS_ROUTE_OTHER;
	s = strdup(label);
	if (s == NULL)
		return METRICS_ROUTE_OTHER;
	metrics_routes[n] = s;
	__atomic_store_n(&metrics_nroutes, n + 1, __ATOMIC_RELEASE);
	return n;
}

const char *
metrics_route_name(int id)
{
	const char *s = NULL;

	if (id >= 0 && id < METRICS_ROUTES_MAX)
		s = __atomic_load_n(&metrics_routes[id], __ATOMIC_ACQUIRE);
	if (s != NULL)
		return s;
	switch (id) {
	case METRICS_ROUTE_INVALID:
		return "invalid";
	case METRICS_ROUTE_UNMATCHED:
		return "unmatched";
	case METRICS_ROUTE_DEFAULT:
		return "default";
	default:
		if (id >= METRICS_ROUTE_ENDPOINT && id < METRICS_ROUTE_FIRST)
			return "unknown_endpoint";
		return "other";
	}
}

/* --- counting -------------------------------------------------------- */

static int
metrics_index(const char *const *set, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i + 1 < n; i++)
		if (strcmp(set[i], s) == 0)
			return (int)i;
	return (int)n - 1;
}

static void
metrics_observe(struct metrics_hist *h, double ms)
{
	uint64_t us = ms > 0 ? (uint64_t)(ms * 1000.0 + 0.5) : 0;
	size_t i;

	for (i = 0; i < METRICS_NBUCKETS && us > metrics_bounds_us[i]; i++)
		;
	metrics_bump(&h->mh_bucket[i]);
	__atomic_store_n(&h->mh_sum_us,
	    __atomic_load_n(&h->mh_sum_us, __ATOMIC_RELAXED) + us,
	    __ATOMIC_RELAXED);
}

void
metrics_request_done(
    int route, const char *method, int status, double ms, double up_ms)
{
	struct metrics_block *b = metrics_self;
	int cls = status / 100;

	if (cls < 1 || cls > 5)
		cls = 5; /* no status at all: the gateway's failure */
	if (route < 0 || route >= METRICS_ROUTES_MAX)
		route = METRICS_ROUTE_OTHER;
	metrics_bump(&b->mb_requests[route][cls - 1][metrics_index(
	    metrics_methods, METRICS_NELEM(metrics_methods), method)]);
	metrics_observe(&b->mb_hist[METRICS_HIST_REQUEST], ms);
	if (up_ms >= 0)
		metrics_observe(&b->mb_hist[METRICS_HIST_UPSTREAM], up_ms);
}

void
metrics_conn_add(int delta)
{
	metrics_gauge(&metrics_self->mb_conns, delta);
}

void
metrics_inflight_add(int delta)
{
	metrics_gauge(&metrics_self->mb_inflight, delta);
}

void
metrics_store_op(enum metrics_store_op op, int result)
{
	if ((unsigned)op >= METRICS_NELEM(metrics_store_ops))
		return;
	if (result == 6)
		result = 5;
	else if (result < 0 || result > 4)
		result = 3;
	metrics_bump(&metrics_self->mb_counters[MC_STORE +
	    op * METRICS_NELEM(metrics_store_results) + result]);
}

void
metrics_signin_started(void)
{
	metrics_bump(&metrics_self->mb_counters[MC_SIGNIN_STARTED]);
}

void
metrics_signin_completed(void)
{
	metrics_bump(&metrics_self->mb_counters[MC_SIGNIN_COMPLETED]);
}

void
metrics_signin_failed(const char *reason)
{
	metrics_bump(&metrics_self->mb_counters[MC_SIGNIN_FAILED +
	    metrics_index(
	        metrics_reasons, METRICS_NELEM(metrics_reasons), reason)]);
}

void
metrics_refresh(const char *result)
{
	metrics_bump(&metrics_self->mb_counters[MC_REFRESH +
	    metrics_index(metrics_refresh_results,
	        METRICS_NELEM(metrics_refresh_results), result)]);
}

void
metrics_provider_fetch(const char *what, const char *result)
{
	int w = metrics_index(
	    metrics_fetch_whats, METRICS_NELEM(metrics_fetch_whats), what);
	int r = metrics_index(metrics_fetch_results,
	    METRICS_NELEM(metrics_fetch_results), result);

	metrics_bump(&metrics_self->mb_counters[MC_FETCH +
	    w * METRICS_NELEM(metrics_fetch_results) + r]);
}

void
metrics_upstream_error(const char *why)
{
	size_t i;
	int kind = METRICS_NELEM(metrics_up_kinds) - 1;

	for (i = 0; why != NULL && i < METRICS_NELEM(metrics_up_whys); i++)
		if (strncmp(why, metrics_up_whys[i].mu_why,
		        strlen(metrics_up_whys[i].mu_why)) == 0) {
			kind = metrics_up_whys[i].mu_kind;
			break;
		}
	metrics_bump(&metrics_self->mb_counters[MC_UPSTREAM + kind]);
}

/* --- exposition ------------------------------------------------------ */

void
metrics_label_escape(struct evbuffer *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, len;

	while (i < n) {
		if (p[i] == '\\' || p[i] == '"') {
			evbuffer_add_printf(out, "\\%c", p[i]);
			i++;
		} else if (p[i] == '\n') {
			evbuffer_add(out, "\\n", 2);
			i++;
		} else if (p[i] < 0x80) {
			evbuffer_add(out, p + i, 1);
			i++;
		} else if ((len = utf8_seq_len(p + i, n - i)) > 0) {
			evbuffer_add(out, p + i, len);
			i += len;
		} else {
			evbuffer_add(out, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
		}
	}
}

/* The blocks a scrape reads: the main thread's and each attached one. */
struct metrics_scrape {
	const struct metrics_block *ms_b[METRICS_THREADS_MAX + 1];
	int ms_n;
};

static void
metrics_scrape_init(struct metrics_scrape *sc)
{
	const struct metrics_block *b;
	int i;

	sc->ms_b[0] = &metrics_main_block;
	sc->ms_n = 1;
	for (i = 0; i < METRICS_THREADS_MAX; i++) {
		b = __atomic_load_n(&metrics_blocks[i], __ATOMIC_ACQUIRE);
		if (b != NULL)
			sc->ms_b[sc->ms_n++] = b;
	}
}

/* The sum over every block of the counter at byte offset off. */
static uint64_t
metrics_sum(const struct metrics_scrape *sc, size_t off)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < sc->ms_n; i++)
		v += __atomic_load_n(
		    (const uint64_t *)((const char *)sc->ms_b[i] + off),
		    __ATOMIC_RELAXED);
	return v;
}

#define METRICS_OFF(member) offsetof(struct metrics_block, member)
#define METRICS_NCLASSES METRICS_NELEM(metrics_classes)
#define METRICS_NMETHODS METRICS_NELEM(metrics_methods)

static void
metrics_head(
    struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of counters with one or two fixed labels, every value
 * written (zeros too, so that rates start at the first event). */
static void
metrics_fixed(struct evbuffer *out, const struct metrics_scrape *sc,
    const char *name, const char *help, int base, const char *l1,
    const char *const *v1, size_t n1, const char *l2, const char *const *v2,
    size_t n2)
{
	size_t i, j, n = l2 != NULL ? n2 : 1;

	uint64_t v;

	metrics_head(out, name, "counter", help);
	for (i = 0; i < n1; i++)
		for (j = 0; j < n; j++) {
			v = metrics_sum(sc,
			    METRICS_OFF(mb_counters) +
			        (base + i * n + j) * sizeof(uint64_t));
			/* "other" is a catch-all that gatehouse's own words
			 * never reach: shown only when something did. */
			if (v == 0 &&
			    (i == n1 - 1 || (l2 != NULL && j == n - 1)) &&
			    (strcmp(v1[i], "other") == 0 ||
			        (l2 != NULL && strcmp(v2[j], "other") == 0)))
				continue;
			evbuffer_add_printf(
			    out, "%s{%s=\"%s\"", name, l1, v1[i]);
			if (l2 != NULL)
				evbuffer_add_printf(
				    out, ",%s=\"%s\"", l2, v2[j]);
			evbuffer_add_printf(out, "} %" PRIu64 "\n", v);
		}
}

/* A counter without labels. */
static void
metrics_single(struct evbuffer *out, const struct metrics_scrape *sc,
    const char *name, const char *help, int idx)
{
	metrics_head(out, name, "counter", help);
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name,
	    metrics_sum(sc, METRICS_OFF(mb_counters) + idx * sizeof(uint64_t)));
}

static void
metrics_histogram(struct evbuffer *out, const struct metrics_scrape *sc,
    const char *name, const char *help, int which)
{
	size_t off = METRICS_OFF(mb_hist) + which * sizeof(struct metrics_hist);
	uint64_t cum = 0, sum;
	size_t i;

	metrics_head(out, name, "histogram", help);
	for (i = 0; i <= METRICS_NBUCKETS; i++) {
		cum += metrics_sum(sc,
		    off + offsetof(struct metrics_hist, mh_bucket) +
		        i * sizeof(uint64_t));
		evbuffer_add_printf(out, "%s_bucket{le=\"%s\"} %" PRIu64 "\n",
		    name, i < METRICS_NBUCKETS ? metrics_bounds_le[i] : "+Inf",
		    cum);
	}
	sum = metrics_sum(sc, off + offsetof(struct metrics_hist, mh_sum_us));
	evbuffer_add_printf(out, "%s_sum %" PRIu64 ".%06" PRIu64 "\n", name,
	    sum / 1000000, sum % 1000000);
	evbuffer_add_printf(out, "%s_count %" PRIu64 "\n", name, cum);
}

/* Only the series that have counted something: a route table times
 * every method and class would be mostly zeros. */
static void
metrics_requests(struct evbuffer *out, const struct metrics_scrape *sc)
{
	int r, n = __atomic_load_n(&metrics_nroutes, __ATOMIC_ACQUIRE);
	size_t c, m;
	uint64_t v;

	metrics_head(out, "gatehouse_requests_total", "counter",
	    "Requests answered, by route (the matching route line's pattern, "
	    "or gatehouse's endpoint), method and status class.");
	for (r = 0; r < n; r++)
		for (c = 0; c < METRICS_NCLASSES; c++)
			for (m = 0; m < METRICS_NMETHODS; m++) {
				v = metrics_sum(sc,
				    METRICS_OFF(mb_requests) +
				        ((r * METRICS_NCLASSES + c) *
				                METRICS_NMETHODS +
				            m) *
				            sizeof(uint64_t));
				if (v == 0)
					continue;
				evbuffer_add_printf(
				    out, "gatehouse_requests_total{route=\"");
				metrics_label_escape(
				    out, metrics_route_name(r));
				evbuffer_add_printf(out,
				    "\",method=\"%s\",status=\"%s\"} "
				    "%" PRIu64 "\n",
				    metrics_methods[m], metrics_classes[c], v);
			}
}

static void
metrics_connections(struct evbuffer *out, const struct metrics_scrape *sc)
{
	int64_t open = 0, active = 0, idle;
	int i;

	for (i = 0; i < sc->ms_n; i++) {
		open +=
		    __atomic_load_n(&sc->ms_b[i]->mb_conns, __ATOMIC_RELAXED);
		active += __atomic_load_n(
		    &sc->ms_b[i]->mb_inflight, __ATOMIC_RELAXED);
	}
	/* Read one after the other, not at one instant: keep them sane. */
	if (active < 0)
		active = 0;
	idle = open > active ? open - active : 0;
	metrics_head(out, "gatehouse_connections", "gauge",
	    "Client connections open: active (a request is being served) or "
	    "idle (kept alive between requests).");
	evbuffer_add_printf(out,
	    "gatehouse_connections{state=\"%s\"} %" PRId64 "\n"
	    "gatehouse_connections{state=\"%s\"} %" PRId64 "\n",
	    metrics_conn_states[0], active, metrics_conn_states[1], idle);
}

int
metrics_format(struct evbuffer *out, long sessions, const char *version)
{
	struct metrics_scrape sc;
	size_t before = evbuffer_get_length(out);

	metrics_scrape_init(&sc);
	metrics_head(out, "gatehouse_build_info", "gauge",
	    "Always 1; the version of gatehouse is a label.");
	evbuffer_add_printf(out, "gatehouse_build_info{version=\"");
	metrics_label_escape(out, version);
	evbuffer_add_printf(out, "\"} 1\n");
	metrics_requests(out, &sc);
	metrics_histogram(out, &sc, "gatehouse_request_duration_seconds",
	    "Time from a request's head to the end of its answer.",
	    METRICS_HIST_REQUEST);
	metrics_histogram(out, &sc, "gatehouse_upstream_duration_seconds",
	    "Time from sending a request to the upstream to its response "
	    "head.",
	    METRICS_HIST_UPSTREAM);
	metrics_fixed(out, &sc, "gatehouse_upstream_errors_total",
	    "Requests the upstream failed, by kind.", MC_UPSTREAM, "kind",
	    metrics_up_kinds, METRICS_NELEM(metrics_up_kinds), NULL, NULL, 0);
	metrics_connections(out, &sc);
	metrics_single(out, &sc, "gatehouse_signins_started_total",
	    "Sign-ins sent to the provider.", MC_SIGNIN_STARTED);
	metrics_single(out, &sc, "gatehouse_signins_completed_total",
	    "Sign-ins that made a session.", MC_SIGNIN_COMPLETED);
	metrics_fixed(out, &sc, "gatehouse_signins_failed_total",
	    "Sign-in callbacks that failed, by gatehouse's error code.",
	    MC_SIGNIN_FAILED, "reason", metrics_reasons,
	    METRICS_NELEM(metrics_reasons), NULL, NULL, 0);
	metrics_fixed(out, &sc, "gatehouse_refreshes_total",
	    "Token refreshes, by result.", MC_REFRESH, "result",
	    metrics_refresh_results, METRICS_NELEM(metrics_refresh_results),
	    NULL, NULL, 0);
	metrics_fixed(out, &sc, "gatehouse_provider_fetches_total",
	    "Calls to the provider (discovery document, key set, token "
	    "endpoint), by result.",
	    MC_FETCH, "what", metrics_fetch_whats,
	    METRICS_NELEM(metrics_fetch_whats), "result", metrics_fetch_results,
	    METRICS_NELEM(metrics_fetch_results));
	metrics_fixed(out, &sc, "gatehouse_session_store_operations_total",
	    "Session store calls, by operation and result.", MC_STORE, "op",
	    metrics_store_ops, METRICS_NELEM(metrics_store_ops), "result",
	    metrics_store_results, METRICS_NELEM(metrics_store_results));
	if (sessions >= 0) {
		metrics_head(out, "gatehouse_sessions", "gauge",
		    "Sessions in the store, approximately (expired ones count "
		    "until the sweep removes them).");
		evbuffer_add_printf(out, "gatehouse_sessions %ld\n", sessions);
	}
	return evbuffer_get_length(out) > before ? 0 : -1;
}
