/* SPDX-License-Identifier: ISC */
/*
 * upstream.c: the client side towards the upstream.  A small HTTP/1.1
 * client on raw non-blocking sockets with a keep-alive pool per worker:
 * the request is written the moment it is ready, the response read with
 * one readv per event into an evbuffer whose chains then move to the
 * client without a copy.  The response head is parsed strictly by http1.c
 * (a hostile upstream must not be able to smuggle a second response onto
 * a pooled connection) and its framing decided here; what the response
 * becomes for the client is the handler's (proxy.c).  Reading stops while
 * the handler says the client is behind.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/config.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "http/conn.h"
#include "http/deadline.h"
#include "http/errpage.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"
#include "route/headers.h"
#include "route/upstream.h"
#include "route/websocket.h"

#define UPSTREAM_HIGH_WATER (256 * 1024) /* request body queued at most */
#define UPSTREAM_READ_WATER (256 * 1024) /* response buffered at most */
#define UPSTREAM_READ (16 * 1024)        /* one read */
#define UPSTREAM_MAX_HEAD (64 * 1024)    /* response head */
#define UPSTREAM_MAX_HEADERS 200
#define UPSTREAM_POOL_MAGIC 0x50504f4fu /* "PPOO" */
#define UPSTREAM_CONN_MAGIC 0x50434f4eu /* "PCON" */
#define UPSTREAM_WAIT_MAGIC 0x50574149u /* "PWAI" */

static int upstream_parse_key(struct config *, const struct config_key *,
    const char *, int, const char **);
static int upstream_parse_keepalive(struct config *, const struct config_key *,
    const char *, int, const char **);
static void upstream_config_free(struct config *);

static const struct config_key upstream_keys[] = {
    {"upstream", upstream_parse_key, 0, NULL,
        "The application to protect: http://host:port[/prefix] or "
        "unix:/path/to/socket[:/prefix].",
        CONFIG_REQUIRED},
    {"upstream_connect_timeout", config_parse_duration,
        offsetof(struct config, cf_upstream_connect_timeout), "5s",
        "How long connecting to the upstream may take before 502.", 0},
    {"upstream_keepalive", upstream_parse_keepalive,
        offsetof(struct config, cf_upstream_keepalive), "auto",
        "Idle keep-alive connections to each upstream kept per worker: auto "
        "keeps as many as the load used (none is opened and closed per "
        "request at any concurrency), a number caps them.",
        0},
    {"upstream_keepalive_timeout", config_parse_duration,
        offsetof(struct config, cf_upstream_keepalive_timeout), "60s",
        "An idle upstream connection unused this long is closed, so the "
        "pool shrinks when the load falls.",
        0},
    {"upstream_max_connections", config_parse_int,
        offsetof(struct config, cf_upstream_max_connections), "0",
        "Connections to each upstream per worker, in use or idle (0: no "
        "limit). A request over it waits in line for one, as nginx's "
        "max_conns with queue, for an app that cannot take more.",
        0},
    {"upstream_queue_timeout", config_parse_duration,
        offsetof(struct config, cf_upstream_queue_timeout), "10s",
        "How long a request may wait in line for an upstream connection "
        "(upstream_max_connections) before 503.",
        0},
    {"upstream_timeout", config_parse_duration,
        offsetof(struct config, cf_upstream_timeout), "60s",
        "How long the upstream may stay silent before 504 (or, once the "
        "response has started, before the response is cut).",
        0},
};
const struct config_module upstream_config_module = {"upstream", upstream_keys,
    sizeof(upstream_keys) / sizeof(upstream_keys[0]), NULL,
    upstream_config_free};
/*
 * Where a connection is in its exchange.  The numbers are logged with an
 * upstream error (state=N): keep their order.
 */
enum uc_state {
	UC_IDLE,        /* no request: just made, or just taken from the pool */
	UC_CONNECTING,  /* connect() in progress; the request waits in uc_out */
	UC_HEAD,        /* sending the request, reading the response head */
	UC_BODY_LENGTH, /* reading a body of uc_remaining more bytes */
	UC_BODY_CHUNKED, /* reading a chunked body (uc_chunk) */
	UC_BODY_CLOSE,   /* reading a body that ends when the upstream closes */
	UC_POOLED,       /* idle on pp_idle, watched only for a close */
};

/* Facts about a connection that hold whatever its state (uc_flags). */
#define UC_REUSED 0x01    /* came from the pool (a retry may be possible) */
#define UC_GOT_BYTES 0x02 /* some of this response was read */
#define UC_KEEPALIVE 0x04 /* may go back to the pool when done */
#define UC_PAUSED 0x08    /* reading stopped: the client is behind */
#define UC_BODY_STREAMING 0x10 /* the request body is still streaming */
#define UC_BODY_SENT 0x20      /* a streamed body was started: no retry */
#define UC_BODY_PAUSED 0x40    /* the client's body is paused for us */

/* One exchange at a time: the head is parsed into the pool's arrays. */
enum uc_step {
	UC_STEP_GO_ON,     /* progress: parse again */
	UC_STEP_WAIT,      /* more bytes are needed */
	UC_STEP_FINISHED,  /* the response is complete (uc may be gone) */
	UC_STEP_MALFORMED, /* a protocol error: fail the exchange */
};

struct upstream_pool {
	uint32_t pp_magic;
	struct event_base *pp_base;
	const struct config *pp_cfg;
	const struct config_upstream *pp_up; /* in pp_cfg: where it goes */
	/* The default upstream's pool holds the named upstreams' (in
	 * cf_upstreams order), so a generation's pools come and go as one. */
	struct upstream_pool **pp_named;
	size_t pp_nnamed;
	/* Most recently used first: the tail is what the load no longer
	 * needs, closed by pp_trim after upstream_keepalive_timeout. */
	TAILQ_HEAD(upstream_idle, upstream_conn) pp_idle;
	int pp_nidle;
	struct event *pp_trim; /* runs while connections are idle */
	int pp_nconns;         /* open: in use, connecting or idle */
	/* Requests waiting for a connection (upstream_max_connections),
	 * first come first served; pp_wake hands them connections at the
	 * end of the turn in which some were let go of. */
	TAILQ_HEAD(upstream_waits, upstream_wait) pp_waits;
	struct event *pp_wake;
	int pp_handing; /* pp_wake is resuming the first in line */
	int pp_retired; /* a reload replaced it: keep nothing idle */
	struct http1_hdr
	    pp_hdrs[UPSTREAM_MAX_HEADERS + 1]; /* the head being
	                                        * parsed (one at a
	                                        * time per worker) */
	struct evbuffer *pp_chunk; /* decoded chunked data, in passing */
};

struct upstream_conn {
	uint32_t uc_magic;
	struct upstream_pool *uc_pool;
	int uc_fd;
	struct event *uc_rev; /* read: added while reading or pooled */
	struct event
	    *uc_wev; /* write: while connecting or the socket is full */
	struct event *uc_tev; /* the deadline */
	struct evbuffer *uc_in;
	struct evbuffer *uc_out;
	TAILQ_ENTRY(upstream_conn) uc_entry; /* on pp_idle when UC_POOLED */
	struct request_ctx *uc_rq;           /* NULL while idle */
	const struct upstream_handler *uc_h; /* uc_rq's */
	enum uc_state uc_state;
	unsigned uc_flags; /* UC_REUSED ... */
	size_t uc_scan;    /* http1_head_scan's resume point */
	int64_t uc_remaining;
	struct http1_chunked uc_chunk;
	struct deadline uc_dl; /* on uc_tev */
	int64_t uc_idle_ms;    /* when it went back to the pool (monotonic) */
};

/* A request in a pool's line (upstream_conn_acquire). */
struct upstream_wait {
	uint32_t uw_magic;
	TAILQ_ENTRY(upstream_wait) uw_link;
	struct upstream_pool *uw_pool;
	struct request_ctx *uw_rq;
	void (*uw_resume)(struct request_ctx *);
	struct event *uw_tev; /* upstream_queue_timeout */
};

/* upstream_keepalive: "auto" (-1) or a number of connections. */
static int
upstream_parse_keepalive(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	if (strcmp(value, "auto") == 0) {
		cfg->cf_upstream_keepalive = -1;
		return 0;
	}
	if (config_parse_int(cfg, key, value, line, errstr) == 0)
		return 0;
	*errstr = "expected auto or a non-negative integer";
	return -1;
}

/* Resolved once in the main thread; read-only in the workers. */

void
upstream_url_cleanup(struct config_upstream *up)
{
	free(up->cu_host);
	free(up->cu_unix);
	free(up->cu_prefix);
	free(up->cu_hostport);
	free(up->cu_name);
	memset(up, 0, sizeof(*up));
}

int
upstream_url_parse(
    struct config_upstream *up, const char *value, const char **errstr)
{
	char *host = NULL, *path = NULL, *p;
	int https, port;

	upstream_url_cleanup(up);
	if (strncmp(value, "unix:", 5) == 0) {
		const char *sock = value + 5, *colon = strstr(sock, ":/");

		if (sock[0] != '/' ||
		    (size_t)(colon ? colon - sock : (long)strlen(sock)) >=
		        sizeof(((struct sockaddr_un *)0)->sun_path)) {
			*errstr = "expected unix:/absolute/path (shorter than "
			          "108 bytes)";
			return -1;
		}
		up->cu_unix =
		    colon ? strndup(sock, colon - sock) : strdup(sock);
		path = strdup(colon ? colon + 1 : "");
		up->cu_hostport = strdup("localhost");
	} else {
		if (config_url_split(
		        value, &https, &host, &port, &path, errstr) == -1)
			return -1;
		if (https) {
			free(host);
			free(path);
			*errstr = "https upstreams are not supported; use "
			          "http:// or unix: (TLS terminates in front "
			          "of gatehouse)";
			return -1;
		}
		if (strchr(path, '?') != NULL) {
			free(host);
			free(path);
			*errstr = "the upstream URL must not have a query";
			return -1;
		}
		up->cu_host = host;
		up->cu_port = port;
		if (strchr(host, ':') != NULL)
			(void)asprintf(&up->cu_hostport, "[%s]:%d", host, port);
		else
			(void)asprintf(&up->cu_hostport, "%s:%d", host, port);
	}
	/* The prefix is prepended to every path, without a trailing '/'. */
	if (path != NULL) {
		p = path + strlen(path);
		while (p > path && p[-1] == '/')
			*--p = '\0';
	}
	up->cu_prefix = path;
	if (up->cu_prefix == NULL || up->cu_hostport == NULL ||
	    (up->cu_host == NULL && up->cu_unix == NULL)) {
		*errstr = "out of memory";
		return -1;
	}
	return 0;
}

static int
upstream_parse_key(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)line;
	(void)key;
	return upstream_url_parse(&cfg->cf_upstream, value, errstr);
}

static void
upstream_config_free(struct config *cfg)
{
	upstream_url_cleanup(&cfg->cf_upstream);
}

/* Resolve one upstream's address into it. */
static int
upstream_resolve_one(struct config_upstream *up)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&up->cu_addr, 0, sizeof(up->cu_addr));
	if (up->cu_unix != NULL) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&up->cu_addr;

		sun->sun_family = AF_UNIX;
		snprintf(
		    sun->sun_path, sizeof(sun->sun_path), "%s", up->cu_unix);
		up->cu_addrlen = sizeof(*sun);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", up->cu_port);
	rc = getaddrinfo(up->cu_host, port, &hints, &res);
	if (rc != 0) {
		if (up->cu_name != NULL)
			log_warnx("upstream.%s %s: %s", up->cu_name,
			    up->cu_host, gai_strerror(rc));
		else
			log_warnx(
			    "upstream %s: %s", up->cu_host, gai_strerror(rc));
		return -1;
	}
	memcpy(&up->cu_addr, res->ai_addr, res->ai_addrlen);
	up->cu_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
upstream_resolve(struct config *cfg)
{
	size_t i;

	if (upstream_resolve_one(&cfg->cf_upstream) == -1)
		return -1;
	for (i = 0; i < cfg->cf_nupstreams; i++)
		if (upstream_resolve_one(&cfg->cf_upstreams[i]) == -1)
			return -1;
	return 0;
}
static struct upstream_conn *
upstream_conn_cast(void *arg)
{
	return MAGIC_CAST(
	    struct upstream_conn, uc_magic, UPSTREAM_CONN_MAGIC, arg);
}

static void
upstream_deadline(struct upstream_conn *uc, int secs)
{
	deadline_set(&uc->uc_dl, (int64_t)secs * 1000);
}

static void
upstream_read_on(struct upstream_conn *uc)
{
	if (!event_pending(uc->uc_rev, EV_READ, NULL))
		event_add(uc->uc_rev, NULL);
}

static void
upstream_read_off(struct upstream_conn *uc)
{
	if (event_pending(uc->uc_rev, EV_READ, NULL))
		event_del(uc->uc_rev);
}

/* One upstream's pool, without named ones. */
static void upstream_conn_free(struct upstream_conn *uc);

/* Wake pp_trim in ms (at least 1 s later: trimming is not urgent, and a
 * busy pool should not pay a timer per request).  A timeout of 0 keeps
 * idle connections until the upstream closes them. */
static void
upstream_trim_arm(struct upstream_pool *pool, int64_t ms)
{
	struct timeval tv;

	if (pool->pp_cfg->cf_upstream_keepalive_timeout <= 0)
		return;
	if (ms < 1000)
		ms = 1000;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(pool->pp_trim, &tv);
}

/*
 * The pool follows the load: connections are reused most recently used
 * first, so those the load no longer needs gather at the tail, unused;
 * each is closed once it has been idle upstream_keepalive_timeout.  A
 * burst of N concurrent requests leaves N connections for the next burst,
 * and none is opened and closed per request at a steady load.
 */
static void
upstream_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_pool *pool = arg;
	int64_t now = deadline_now_ms(), ttl;
	struct upstream_conn *uc;

	(void)fd;
	(void)what;
	ttl = pool->pp_cfg->cf_upstream_keepalive_timeout * (int64_t)1000;
	while ((uc = TAILQ_LAST(&pool->pp_idle, upstream_idle)) != NULL &&
	    now - uc->uc_idle_ms >= ttl)
		upstream_conn_free(uc);
	if (uc != NULL)
		upstream_trim_arm(pool, uc->uc_idle_ms + ttl - now);
}

static struct upstream_wait *
upstream_wait_cast(void *arg)
{
	return MAGIC_CAST(
	    struct upstream_wait, uw_magic, UPSTREAM_WAIT_MAGIC, arg);
}

static void
upstream_wait_free(struct upstream_wait *uw)
{
	TAILQ_REMOVE(&uw->uw_pool->pp_waits, uw, uw_link);
	if (uw->uw_rq != NULL)
		uw->uw_rq->rq_upwait = NULL;
	event_free(uw->uw_tev);
	uw->uw_magic = 0;
	free(uw);
}

/* Whether pool can give a connection now, by its limit. */
static int
upstream_has_room(const struct upstream_pool *pool)
{
	int max = pool->pp_cfg->cf_upstream_max_connections;

	return TAILQ_FIRST(&pool->pp_idle) != NULL || max <= 0 ||
	    pool->pp_nconns < max;
}

/* A connection was let go of: hand it on at the end of this turn (never
 * from inside the exchange that let it go). */
static void
upstream_wake_soon(struct upstream_pool *pool)
{
	if (pool->pp_wake != NULL && !TAILQ_EMPTY(&pool->pp_waits))
		event_active(pool->pp_wake, EV_TIMEOUT, 0);
}

/* The first in line go on, as long as there is room: each resumes its
 * request, which takes a connection before the next is looked at. */
static void
upstream_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_pool *pool = arg;
	struct upstream_wait *uw;
	struct request_ctx *rq;
	void (*resume)(struct request_ctx *);

	(void)fd;
	(void)what;
	while ((uw = TAILQ_FIRST(&pool->pp_waits)) != NULL &&
	    upstream_has_room(pool)) {
		rq = uw->uw_rq;
		resume = uw->uw_resume;
		upstream_wait_free(uw);
		/* Its turn: it takes the room before those behind it. */
		pool->pp_handing = 1;
		resume(rq);
		pool->pp_handing = 0;
	}
}

/* Waited upstream_queue_timeout in line: 503, as a busy upstream. */
static void
upstream_wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_wait *uw = upstream_wait_cast(arg);
	struct request_ctx *rq = uw->uw_rq;

	(void)fd;
	(void)what;
	upstream_wait_free(uw);
	metrics_upstream_error("queue timeout");
	log_warnx("upstream_error id=%s reason=\"no connection free within "
	          "upstream_queue_timeout (upstream_max_connections %d)\"",
	    rq->rq_id, rq->rq_cfg->cf_upstream_max_connections);
	resp_hdrs_add(request_out(rq), "Retry-After", "5");
	errpage_send(rq, 503, "upstream_busy",
	    "The application behind this gateway is busy. Please try again "
	    "in a moment.",
	    0);
}

/* The request's cleanup: it ended (the client went away) while in line. */
static void
upstream_wait_abandon(void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	if (rq->rq_upwait != NULL) {
		rq->rq_upwait->uw_rq = NULL;
		upstream_wait_free(rq->rq_upwait);
		rq->rq_upwait = NULL;
	}
}

static struct upstream_pool *
upstream_pool_one(struct event_base *base, const struct config *cfg,
    const struct config_upstream *up)
{
	struct upstream_pool *pool;

	pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		return NULL;
	pool->pp_magic = UPSTREAM_POOL_MAGIC;
	pool->pp_base = base;
	pool->pp_cfg = cfg;
	pool->pp_up = up;
	TAILQ_INIT(&pool->pp_idle);
	pool->pp_chunk = evbuffer_new();
	pool->pp_trim = evtimer_new(base, upstream_trim_cb, pool);
	TAILQ_INIT(&pool->pp_waits);
	pool->pp_wake = event_new(base, -1, 0, upstream_wake_cb, pool);
	if (pool->pp_chunk == NULL || pool->pp_trim == NULL ||
	    pool->pp_wake == NULL) {
		if (pool->pp_chunk != NULL)
			evbuffer_free(pool->pp_chunk);
		if (pool->pp_trim != NULL)
			event_free(pool->pp_trim);
		if (pool->pp_wake != NULL)
			event_free(pool->pp_wake);
		free(pool);
		return NULL;
	}
	return pool;
}

struct upstream_pool *
upstream_pool_new(struct event_base *base, const struct config *cfg)
{
	struct upstream_pool *pool;
	size_t i;

	pool = upstream_pool_one(base, cfg, &cfg->cf_upstream);
	if (pool == NULL || cfg->cf_nupstreams == 0)
		return pool;
	pool->pp_named = calloc(cfg->cf_nupstreams, sizeof(*pool->pp_named));
	if (pool->pp_named == NULL)
		goto fail;
	for (i = 0; i < cfg->cf_nupstreams; i++) {
		pool->pp_named[i] =
		    upstream_pool_one(base, cfg, &cfg->cf_upstreams[i]);
		if (pool->pp_named[i] == NULL)
			goto fail;
		pool->pp_nnamed++;
	}
	return pool;
fail:
	upstream_pool_free(pool);
	return NULL;
}

struct upstream_pool *
upstream_pool_pick(struct upstream_pool *pool, int index)
{
	if (index <= 0 || (size_t)index > pool->pp_nnamed)
		return pool;
	return pool->pp_named[index - 1];
}

static void
upstream_conn_free(struct upstream_conn *uc)
{
	if (uc == NULL)
		return;
	if (uc->uc_state == UC_POOLED) {
		TAILQ_REMOVE(&uc->uc_pool->pp_idle, uc, uc_entry);
		uc->uc_pool->pp_nidle--;
	}
	uc->uc_pool->pp_nconns--;
	upstream_wake_soon(uc->uc_pool);
	if (uc->uc_rq != NULL)
		uc->uc_rq->rq_upconn = NULL;
	if (uc->uc_rev != NULL)
		event_free(uc->uc_rev);
	if (uc->uc_wev != NULL)
		event_free(uc->uc_wev);
	if (uc->uc_tev != NULL)
		event_free(uc->uc_tev);
	if (uc->uc_in != NULL)
		evbuffer_free(uc->uc_in);
	if (uc->uc_out != NULL)
		evbuffer_free(uc->uc_out);
	if (uc->uc_fd != -1)
		close(uc->uc_fd);
	uc->uc_magic = 0;
	free(uc);
}

void
upstream_pool_free(struct upstream_pool *pool)
{
	struct upstream_conn *uc;
	struct upstream_wait *uw;

	size_t i;

	if (pool == NULL)
		return;
	for (i = 0; i < pool->pp_nnamed; i++)
		upstream_pool_free(pool->pp_named[i]);
	free(pool->pp_named);
	/* No request of this pool's generation is left, so none waits. */
	while ((uw = TAILQ_FIRST(&pool->pp_waits)) != NULL)
		upstream_wait_free(uw);
	while ((uc = TAILQ_FIRST(&pool->pp_idle)) != NULL)
		upstream_conn_free(uc);
	event_free(pool->pp_wake);
	event_free(pool->pp_trim);
	evbuffer_free(pool->pp_chunk);
	pool->pp_magic = 0;
	free(pool);
}

void
upstream_pool_retire(struct upstream_pool *pool)
{
	struct upstream_conn *uc;
	size_t i;

	for (i = 0; i < pool->pp_nnamed; i++)
		upstream_pool_retire(pool->pp_named[i]);
	/* Its idle connections close now; those in use close when their
	 * exchange ends, so the old upstream drains. */
	pool->pp_retired = 1;
	while ((uc = TAILQ_FIRST(&pool->pp_idle)) != NULL)
		upstream_conn_free(uc);
	evtimer_del(pool->pp_trim);
}

static void upstream_read_cb(evutil_socket_t, short, void *);
static void upstream_body_cb(void *);
static void upstream_write_cb(evutil_socket_t, short, void *);
static void upstream_timer_cb(evutil_socket_t, short, void *);
static void upstream_fail(
    struct upstream_conn *uc, int status, const char *why);

static struct upstream_conn *
upstream_conn_connect(struct upstream_pool *pool)
{
	struct event_base *base = pool->pp_base;
	struct upstream_conn *uc;
	int err;

	uc = calloc(1, sizeof(*uc));
	if (uc == NULL)
		return NULL;
	uc->uc_magic = UPSTREAM_CONN_MAGIC;
	uc->uc_pool = pool;
	pool->pp_nconns++;
	uc->uc_fd = socket(pool->pp_up->cu_addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (uc->uc_fd == -1)
		goto fail;
	uc->uc_rev = event_new(
	    base, uc->uc_fd, EV_READ | EV_PERSIST, upstream_read_cb, uc);
	uc->uc_wev = event_new(
	    base, uc->uc_fd, EV_WRITE | EV_PERSIST, upstream_write_cb, uc);
	uc->uc_tev = evtimer_new(base, upstream_timer_cb, uc);
	uc->uc_dl.dl_ev = uc->uc_tev;
	uc->uc_in = evbuffer_new();
	uc->uc_out = evbuffer_new();
	if (uc->uc_rev == NULL || uc->uc_wev == NULL || uc->uc_tev == NULL ||
	    uc->uc_in == NULL || uc->uc_out == NULL)
		goto fail;
	if (pool->pp_up->cu_addr.ss_family != AF_UNIX) {
		int one = 1;

		(void)setsockopt(
		    uc->uc_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (connect(uc->uc_fd, (struct sockaddr *)&pool->pp_up->cu_addr,
	        pool->pp_up->cu_addrlen) == 0) {
		uc->uc_state = UC_IDLE;
		return uc;
	}
	if (errno != EINPROGRESS)
		goto fail;
	uc->uc_state = UC_CONNECTING;
	event_add(uc->uc_wev, NULL);
	upstream_deadline(uc, pool->pp_cfg->cf_upstream_connect_timeout);
	return uc;
fail:
	err = errno;
	upstream_conn_free(uc);
	errno = err; /* for the caller's log line */
	return NULL;
}

struct upstream_conn *
upstream_conn_get(struct upstream_pool *pool)
{
	struct upstream_conn *uc;

	uc = TAILQ_FIRST(&pool->pp_idle);
	if (uc == NULL)
		return upstream_conn_connect(pool);
	TAILQ_REMOVE(&pool->pp_idle, uc, uc_entry);
	pool->pp_nidle--;
	uc->uc_state = UC_IDLE;
	uc->uc_flags |= UC_REUSED;
	return uc;
}

int
upstream_conn_acquire(struct upstream_pool *pool, struct request_ctx *rq,
    void (*resume)(struct request_ctx *), struct upstream_conn **out)
{
	struct upstream_wait *uw;
	struct timeval tv;

	*out = NULL;
	/* First come, first served: nobody passes those already in line. */
	if (upstream_has_room(pool) &&
	    (TAILQ_EMPTY(&pool->pp_waits) || pool->pp_handing)) {
		*out = upstream_conn_get(pool);
		return *out != NULL ? 1 : -1;
	}
	uw = calloc(1, sizeof(*uw));
	if (uw == NULL)
		return -1;
	uw->uw_magic = UPSTREAM_WAIT_MAGIC;
	uw->uw_pool = pool;
	uw->uw_rq = rq;
	uw->uw_resume = resume;
	uw->uw_tev = evtimer_new(pool->pp_base, upstream_wait_timeout_cb, uw);
	if (uw->uw_tev == NULL) {
		free(uw);
		return -1;
	}
	TAILQ_INSERT_TAIL(&pool->pp_waits, uw, uw_link);
	rq->rq_upwait = uw;
	request_cleanup_add(rq, upstream_wait_abandon, rq);
	tv.tv_sec = pool->pp_cfg->cf_upstream_queue_timeout;
	tv.tv_usec = 0;
	evtimer_add(uw->uw_tev, &tv);
	return 0;
}

/* Write what is queued; the write event only while the socket is full.
 * Returns -1 when the connection failed (uc may be gone then). */
static int
upstream_flush(struct upstream_conn *uc)
{
	int n;

	while (evbuffer_get_length(uc->uc_out) > 0) {
		n = evbuffer_write(uc->uc_out, uc->uc_fd);
		if (n > 0)
			continue;
		if (n == -1 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK ||
		        errno == EINTR)) {
			if (!event_pending(uc->uc_wev, EV_WRITE, NULL))
				event_add(uc->uc_wev, NULL);
			return 0;
		}
		return -1;
	}
	if (event_pending(uc->uc_wev, EV_WRITE, NULL))
		event_del(uc->uc_wev);
	return 0;
}

/* The reused connection had been closed by the upstream before it saw the
 * request: send it again once on a fresh connection. */
static int upstream_retry(struct upstream_conn *uc);
static void upstream_abandon(void *arg);
static int upstream_answer_first(struct upstream_conn *uc);

/* Write the request head and body (a reference to the request's own
 * buffer, so a retry can send it again without a copy). */
void
upstream_send(struct upstream_conn *uc, struct request_ctx *rq,
    const struct upstream_handler *h)
{
	const struct config *cfg = rq->rq_cfg;
	struct headers_writer w;
	struct evbuffer *body = request_body(rq);
	size_t blen = body != NULL ? evbuffer_get_length(body) : 0;
	const struct config_upstream *up = uc->uc_pool->pp_up;
	const char *prefix = up->cu_prefix;
	int has_body = strcmp(rq->rq_method, "POST") == 0 ||
	    strcmp(rq->rq_method, "PUT") == 0 ||
	    strcmp(rq->rq_method, "PATCH") == 0;
	int64_t len = (int64_t)blen;

	/* A body still arriving streams, with the length the client gave
	 * (only those stream: conn.h). */
	if (conn_body_more(rq->rq_conn)) {
		uc->uc_flags |= UC_BODY_STREAMING;
		len = rq->rq_hreq->hr_length;
	} else
		uc->uc_flags &= ~UC_BODY_STREAMING;
	uc->uc_rq = rq;
	uc->uc_h = h;
	rq->rq_upconn = uc;
	request_cleanup_add(rq, upstream_abandon, rq);
	uc->uc_flags &= ~(UC_GOT_BYTES | UC_PAUSED);
	uc->uc_scan = 0;
	headers_writer_start(&w, uc->uc_out, 4096);
	headers_writer_add(&w, rq->rq_method, strlen(rq->rq_method));
	headers_writer_add(&w, " ", 1);
	headers_writer_add(&w, prefix, strlen(prefix));
	headers_writer_add(&w, rq->rq_path, strlen(rq->rq_path));
	headers_writer_add(&w, " HTTP/1.1\r\n", 11);
	headers_upstream_request(rq, &w, up->cu_hostport, len, has_body);
	headers_writer_end(&w);
	if (!(uc->uc_flags & UC_BODY_STREAMING) && blen > 0)
		evbuffer_add_buffer_reference(uc->uc_out, body);
	clock_gettime(CLOCK_MONOTONIC, &rq->rq_up_start);
	upstream_read_on(uc);
	if (uc->uc_state != UC_CONNECTING) {
		uc->uc_state = UC_HEAD;
		upstream_deadline(uc, cfg->cf_upstream_timeout);
		if (upstream_flush(uc) == -1) {
			if (upstream_answer_first(uc) == 0 &&
			    upstream_retry(uc) == -1)
				upstream_fail(uc, 502, "write failed");
			return;
		}
	}
	/* Last (it may run at once and end the request): what of the body
	 * has arrived, and the rest as it comes. */
	if (uc->uc_flags & UC_BODY_STREAMING)
		conn_body_consume(rq->rq_conn, upstream_body_cb, rq);
}

/* Park a finished connection in the pool, or close it. */
static void
upstream_conn_release(struct upstream_conn *uc)
{
	struct upstream_pool *pool = uc->uc_pool;

	if (uc->uc_rq != NULL)
		uc->uc_rq->rq_upconn = NULL;
	uc->uc_rq = NULL;
	uc->uc_h = NULL;
	/* A body not all sent (the upstream answered early) leaves the
	 * connection mid-message: never reused. */
	if (!(uc->uc_flags & UC_KEEPALIVE) ||
	    (uc->uc_flags & UC_BODY_STREAMING) ||
	    (pool->pp_cfg->cf_upstream_keepalive >= 0 &&
	        pool->pp_nidle >= pool->pp_cfg->cf_upstream_keepalive) ||
	    pool->pp_retired || evbuffer_get_length(uc->uc_in) > 0 ||
	    evbuffer_get_length(uc->uc_out) > 0) {
		upstream_conn_free(uc);
		return;
	}
	uc->uc_flags &= ~UC_REUSED;
	uc->uc_dl.dl_at = 0;
	/* A pooled connection is only watched for the upstream closing it;
	 * any byte it sends now is a protocol error (upstream_read_cb). */
	upstream_read_on(uc);
	TAILQ_INSERT_HEAD(&pool->pp_idle, uc, uc_entry);
	uc->uc_state = UC_POOLED;
	uc->uc_idle_ms = deadline_now_ms();
	pool->pp_nidle++;
	upstream_wake_soon(pool);
	if (!evtimer_pending(pool->pp_trim, NULL))
		upstream_trim_arm(pool,
		    pool->pp_cfg->cf_upstream_keepalive_timeout *
		        (int64_t)1000);
}

/* The request's cleanup: close the upstream connection it still uses
 * (the client went away; it is never returned to the pool half-read).
 * Every other way a request ends has let go of it already. */
static void
upstream_abandon(void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	struct upstream_conn *uc = rq->rq_upconn;

	if (uc == NULL)
		return;
	uc->uc_rq = NULL;
	rq->rq_upconn = NULL;
	upstream_conn_free(uc);
}

/* Let go of the connection, then tell the handler of the failure. */
static void
upstream_fail(struct upstream_conn *uc, int status, const char *why)
{
	struct request_ctx *rq = uc->uc_rq;
	const struct upstream_handler *h = uc->uc_h;

	/* A named upstream is said; the default one's line is as it was. */
	if (uc->uc_pool->pp_up->cu_name != NULL)
		log_warnx("upstream_error id=%s state=%d reason=\"%s\" "
		          "upstream=%s",
		    rq->rq_id, (int)uc->uc_state, why,
		    uc->uc_pool->pp_up->cu_name);
	else
		log_warnx("upstream_error id=%s state=%d reason=\"%s\"",
		    rq->rq_id, (int)uc->uc_state, why);
	metrics_upstream_error(why);
	uc->uc_rq = NULL;
	rq->rq_upconn = NULL;
	upstream_conn_free(uc);
	h->uh_fail(rq, status);
}

static int
upstream_retry(struct upstream_conn *uc)
{
	struct request_ctx *rq = uc->uc_rq;
	const struct upstream_handler *h = uc->uc_h;
	struct upstream_conn *nuc;

	if (!(uc->uc_flags & UC_REUSED) ||
	    (uc->uc_flags & (UC_GOT_BYTES | UC_BODY_SENT)) ||
	    rq->rq_state != RQ_UPSTREAM)
		return -1;
	nuc = upstream_conn_connect(uc->uc_pool);
	if (nuc == NULL)
		return -1;
	uc->uc_rq = NULL;
	rq->rq_upconn = NULL;
	upstream_conn_free(uc);
	upstream_send(nuc, rq, h);
	return 0;
}

/*
 * The client's body, streaming: move what has arrived to the upstream,
 * and hold the client back while the upstream is slow to take it.
 */
static void
upstream_body_cb(void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	struct upstream_conn *uc = rq->rq_upconn;
	struct evbuffer *body = request_body(rq);
	size_t n = evbuffer_get_length(body);
	int err = conn_body_error(rq->rq_conn);
	const struct upstream_handler *h;

	if (uc == NULL || !(uc->uc_flags & UC_BODY_STREAMING))
		return;
	if (err != 0) {
		/* Broken off mid-body: the upstream must not take a short
		 * body for a whole one, so its connection goes. */
		h = uc->uc_h;
		conn_body_consume(rq->rq_conn, NULL, NULL);
		uc->uc_rq = NULL;
		rq->rq_upconn = NULL;
		upstream_conn_free(uc);
		h->uh_fail(rq, err == 413 ? 413 : 400);
		return;
	}
	if (n > 0) {
		evbuffer_remove_buffer(body, uc->uc_out, n);
		uc->uc_flags |= UC_BODY_SENT;
	}
	if (!conn_body_more(rq->rq_conn)) {
		uc->uc_flags &= ~UC_BODY_STREAMING;
		conn_body_consume(rq->rq_conn, NULL, NULL);
	}
	if (uc->uc_state == UC_CONNECTING)
		return; /* written once connected */
	/* The upstream is waiting for the body, not silent. */
	upstream_deadline(uc, uc->uc_pool->pp_cfg->cf_upstream_timeout);
	if (upstream_flush(uc) == -1) {
		if (upstream_answer_first(uc) == 0)
			upstream_fail(uc, 502, "write failed");
		return;
	}
	if ((uc->uc_flags & (UC_BODY_STREAMING | UC_BODY_PAUSED)) ==
	        UC_BODY_STREAMING &&
	    evbuffer_get_length(uc->uc_out) > UPSTREAM_HIGH_WATER) {
		uc->uc_flags |= UC_BODY_PAUSED;
		conn_body_pause(rq->rq_conn, 1);
	}
}

/* Hand n bytes of body from src to the handler; pause if it asks. */
static void
upstream_body_out(struct upstream_conn *uc, struct evbuffer *src, size_t n)
{
	if (uc->uc_h->uh_body(uc->uc_rq, src, n))
		uc->uc_flags |= UC_PAUSED;
}

/* The whole response has been read: let go of the connection first. */
static void
upstream_done(struct upstream_conn *uc)
{
	struct request_ctx *rq = uc->uc_rq;
	const struct upstream_handler *h = uc->uc_h;

	upstream_conn_release(uc);
	h->uh_done(rq);
}

int
upstream_nobody(int head_request, int status)
{
	return head_request || status == 204 || status == 304;
}

int
upstream_reusable(const struct http1_resp *p, int nobody)
{
	if (p->hp_close)
		return 0;
	/* A body delimited by the close: never reused. */
	return nobody || p->hp_chunked || p->hp_length >= 0;
}

/* Decide the framing of the response (RFC 9112 6.3) and give the head to
 * the handler.  Returns 1 when the response is complete already (no
 * body), 0 to read the body. */
static int
upstream_head_framing(struct upstream_conn *uc, const struct http1_resp *p)
{
	struct request_ctx *rq = uc->uc_rq;
	int nobody;

	nobody = upstream_nobody(rq->rq_head, p->hp_status);
	if (upstream_reusable(p, nobody))
		uc->uc_flags |= UC_KEEPALIVE;
	else
		uc->uc_flags &= ~UC_KEEPALIVE;
	if (nobody) {
		/* No body, whatever the framing headers say. */
	} else if (p->hp_chunked) {
		uc->uc_state = UC_BODY_CHUNKED;
		memset(&uc->uc_chunk, 0, sizeof(uc->uc_chunk));
	} else if (p->hp_length >= 0) {
		uc->uc_state = UC_BODY_LENGTH;
		uc->uc_remaining = p->hp_length;
	} else {
		uc->uc_state = UC_BODY_CLOSE;
	}
	uc->uc_h->uh_head(rq, p, nobody);
	if (nobody || (!p->hp_chunked && p->hp_length == 0)) {
		uc->uc_state = UC_IDLE;
		return 1;
	}
	return 0;
}

/*
 * A 101: the upstream switches protocols.  Only the WebSocket handshake a
 * client asked for may be answered so, and only with the Accept its key
 * calls for (a 101 the client did not ask for, or for another key, must
 * never turn the connection into a tunnel).  Then the socket and what was
 * read from it go to the handler, and the connection is let go of.
 */
static void
upstream_upgraded(
    struct upstream_conn *uc, const struct http1_resp *p, size_t hl)
{
	struct request_ctx *rq = uc->uc_rq;
	const struct upstream_handler *h = uc->uc_h;
	const char *key = request_header(rq, "Sec-WebSocket-Key");
	const char *why = "101 to a request that did not ask for it";
	int fd;

	if (!rq->rq_upgrade || h->uh_upgrade == NULL || key == NULL ||
	    !websocket_accepted(key, p, &why)) {
		upstream_fail(uc, 502, why);
		return;
	}
	fd = uc->uc_fd;
	uc->uc_fd = -1;
	uc->uc_rq = NULL;
	rq->rq_upconn = NULL;
	event_del(uc->uc_rev);
	event_del(uc->uc_wev);
	event_del(uc->uc_tev);
	h->uh_upgrade(rq, p, hl, fd, uc->uc_in);
	upstream_conn_free(uc);
}

/* A head is (maybe) in uc_in: parse it and hand it on. */
static enum uc_step
upstream_head(struct upstream_conn *uc)
{
	struct http1_resp p;
	size_t avail = evbuffer_get_length(uc->uc_in), n;
	unsigned char *data;
	ssize_t hl;

	n = avail < UPSTREAM_MAX_HEAD ? avail : UPSTREAM_MAX_HEAD;
	data = evbuffer_pullup(uc->uc_in, (ev_ssize_t)n);
	if (data == NULL)
		return UC_STEP_MALFORMED;
	hl = http1_head_scan((char *)data, n, &uc->uc_scan);
	if (hl == -1 || (hl == 0 && n == UPSTREAM_MAX_HEAD))
		return UC_STEP_MALFORMED;
	if (hl == 0)
		return UC_STEP_WAIT;
	memset(&p, 0, sizeof(p));
	p.hp_hdrs = uc->uc_pool->pp_hdrs;
	p.hp_maxhdrs = UPSTREAM_MAX_HEADERS;
	/* Parsed in place: the pulled-up bytes are ours until drained. */
	if (http1_parse_response((char *)data, (size_t)hl, &p) == -1)
		return UC_STEP_MALFORMED;
	uc->uc_scan = 0;
	if (p.hp_status == 101) {
		upstream_upgraded(uc, &p, (size_t)hl);
		return UC_STEP_FINISHED;
	}
	if (p.hp_status < 200) {
		/* 100 Continue, 103 Early Hints: skip, read the next head. */
		evbuffer_drain(uc->uc_in, (size_t)hl);
		uc->uc_flags |= UC_GOT_BYTES;
		return UC_STEP_GO_ON;
	}
	if (upstream_head_framing(uc, &p) == 1) {
		evbuffer_drain(uc->uc_in, (size_t)hl);
		upstream_done(uc);
		return UC_STEP_FINISHED;
	}
	evbuffer_drain(uc->uc_in, (size_t)hl);
	return UC_STEP_GO_ON;
}

/* Chunked upstream body: decoded (trailers dropped: a header hidden there
 * must never reach the client as if the upstream had sent it); the
 * handler frames it again for the client. */
static enum uc_step
upstream_chunked(struct upstream_conn *uc)
{
	struct evbuffer *dec = uc->uc_pool->pp_chunk;
	size_t avail = evbuffer_get_length(uc->uc_in), n;
	unsigned char *data;
	ssize_t used;
	int done, status;

	if (avail == 0)
		return UC_STEP_WAIT;
	n = avail < UPSTREAM_READ ? avail : UPSTREAM_READ;
	data = evbuffer_pullup(uc->uc_in, (ev_ssize_t)n);
	if (data == NULL)
		return UC_STEP_MALFORMED;
	used = http1_chunked_decode(&uc->uc_chunk, (const char *)data, n, dec,
	    INT64_MAX / 2, &done, &status);
	if (used == -1)
		return UC_STEP_MALFORMED;
	evbuffer_drain(uc->uc_in, (size_t)used);
	if (evbuffer_get_length(dec) > 0)
		upstream_body_out(uc, dec, evbuffer_get_length(dec));
	if (done) {
		upstream_done(uc);
		return UC_STEP_FINISHED;
	}
	return used == 0 ? UC_STEP_WAIT : UC_STEP_GO_ON;
}

/* Run the response parser over what has arrived.  Returns UC_STEP_WAIT
 * when it needs more data or is paused, UC_STEP_FINISHED when the request
 * is finished or failed (uc may be gone). */
static enum uc_step
upstream_parse(struct upstream_conn *uc)
{
	size_t avail, n;
	enum uc_step step;

	while (!(uc->uc_flags & UC_PAUSED)) {
		avail = evbuffer_get_length(uc->uc_in);
		switch (uc->uc_state) {
		case UC_HEAD:
		case UC_BODY_CHUNKED:
			step = uc->uc_state == UC_HEAD ? upstream_head(uc)
			                               : upstream_chunked(uc);
			if (step == UC_STEP_MALFORMED) {
				upstream_fail(uc, 502,
				    uc->uc_state == UC_HEAD
				        ? "malformed response"
				        : "malformed chunked body");
				return UC_STEP_FINISHED;
			}
			if (step != UC_STEP_GO_ON)
				return step;
			break;
		case UC_BODY_LENGTH:
			if (avail == 0)
				return UC_STEP_WAIT;
			n = avail < (uint64_t)uc->uc_remaining
			    ? avail
			    : (size_t)uc->uc_remaining;
			upstream_body_out(uc, uc->uc_in, n);
			uc->uc_remaining -= n;
			if (uc->uc_remaining > 0)
				break;
			upstream_done(uc);
			return UC_STEP_FINISHED;
		case UC_BODY_CLOSE:
			if (avail == 0)
				return UC_STEP_WAIT;
			upstream_body_out(uc, uc->uc_in, avail);
			break;
		default:
			return UC_STEP_WAIT;
		}
	}
	return UC_STEP_WAIT;
}

/* After parsing: what it produced for the client goes out in one write,
 * and reading stops while the client is behind. */
static void
upstream_after_parse(struct upstream_conn *uc)
{
	uc->uc_h->uh_flush(uc->uc_rq);
	if (uc->uc_flags & UC_PAUSED)
		upstream_read_off(uc);
	else
		upstream_deadline(uc, uc->uc_pool->pp_cfg->cf_upstream_timeout);
}

void
upstream_resume(struct upstream_conn *uc)
{
	if (!(uc->uc_flags & UC_PAUSED))
		return;
	uc->uc_flags &= ~UC_PAUSED;
	/* Data may already wait in uc_in: no read event announces it. */
	if (upstream_parse(uc) == UC_STEP_FINISHED)
		return;
	upstream_read_on(uc);
	upstream_after_parse(uc);
}

/* Read once.  Returns 1 for bytes, 0 for nothing now, -1 at EOF or on an
 * error (errno, 0 for EOF). */
static int
upstream_recv(struct upstream_conn *uc)
{
	struct evbuffer_iovec vec[2];
	int nv;
	ssize_t n;

	nv = evbuffer_reserve_space(uc->uc_in, UPSTREAM_READ, vec, 2);
	if (nv <= 0)
		return -1;
	n = readv(uc->uc_fd, (struct iovec *)vec, nv);
	if (n > 0) {
		size_t left = (size_t)n;
		int i;

		for (i = 0; i < nv; i++) {
			size_t take =
			    left < vec[i].iov_len ? left : vec[i].iov_len;

			vec[i].iov_len = take;
			left -= take;
		}
		evbuffer_commit_space(uc->uc_in, vec, nv);
		return 1;
	}
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n == 0)
		errno = 0;
	return -1;
}

/*
 * Writing failed.  The upstream may have answered and closed without
 * reading the whole request (a 403 to an upload: the close with unread
 * bytes is a reset), and its answer then waits in the socket behind the
 * reset that failed the write.  It is read first, as if it had come
 * before the write.  Returns 1 when that ended the exchange (uc is gone),
 * 0 when the write failure stands (uc is as it was, or holds part of an
 * answer: nothing more will come).
 */
static int
upstream_answer_first(struct upstream_conn *uc)
{
	if (uc->uc_state != UC_HEAD)
		return 0;
	while (evbuffer_get_length(uc->uc_in) < UPSTREAM_READ_WATER &&
	    upstream_recv(uc) == 1)
		uc->uc_flags |= UC_GOT_BYTES;
	if (evbuffer_get_length(uc->uc_in) == 0)
		return 0;
	return upstream_parse(uc) == UC_STEP_FINISHED;
}

static void
upstream_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_conn *uc = upstream_conn_cast(arg);
	int rc;

	(void)fd;
	(void)what;
	if (uc->uc_rq == NULL) {
		/* Idle in the pool: a close, or bytes nobody asked for. */
		upstream_conn_free(uc);
		return;
	}
	if (evbuffer_get_length(uc->uc_in) >= UPSTREAM_READ_WATER) {
		upstream_read_off(uc);
		return;
	}
	rc = upstream_recv(uc);
	if (rc == 0)
		return;
	if (rc == -1) {
		int err = errno;

		if (err == 0 && uc->uc_state == UC_BODY_CLOSE) {
			/* The close marks the end. */
			upstream_done(uc);
			return;
		}
		if (uc->uc_state != UC_CONNECTING && upstream_retry(uc) == 0)
			return;
		upstream_fail(uc, 502,
		    uc->uc_state == UC_CONNECTING || err == ECONNREFUSED
		        ? "connection refused"
		        : (err == 0 ? (uc->uc_state == UC_HEAD &&
		                                  !(uc->uc_flags & UC_GOT_BYTES)
		                              ? "closed before answering"
		                              : "closed early")
		                    : "reset"));
		return;
	}
	uc->uc_flags |= UC_GOT_BYTES;
	if (upstream_parse(uc) == UC_STEP_FINISHED)
		return;
	upstream_after_parse(uc);
}

static void
upstream_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_conn *uc = upstream_conn_cast(arg);
	int err = 0;
	socklen_t len = sizeof(err);

	(void)what;
	if (uc->uc_state == UC_CONNECTING) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			event_del(uc->uc_wev);
			if (uc->uc_rq != NULL)
				upstream_fail(uc, 502, "connection refused");
			else
				upstream_conn_free(uc);
			return;
		}
		uc->uc_state = UC_HEAD;
		if (uc->uc_rq == NULL) {
			upstream_conn_free(uc);
			return;
		}
		upstream_deadline(uc, uc->uc_pool->pp_cfg->cf_upstream_timeout);
	} else {
		/* Progress writing a large body counts as activity. */
		upstream_deadline(uc, uc->uc_pool->pp_cfg->cf_upstream_timeout);
	}
	if (upstream_flush(uc) == -1) {
		if (upstream_answer_first(uc) == 1 || upstream_retry(uc) == 0)
			return;
		upstream_fail(uc, 502, "write failed");
		return;
	}
	if ((uc->uc_flags & UC_BODY_PAUSED) &&
	    evbuffer_get_length(uc->uc_out) < UPSTREAM_HIGH_WATER / 4) {
		uc->uc_flags &= ~UC_BODY_PAUSED;
		conn_body_pause(uc->uc_rq->rq_conn, 0);
	}
}

static void
upstream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_conn *uc = upstream_conn_cast(arg);

	(void)fd;
	(void)what;
	if (!deadline_fired(&uc->uc_dl))
		return;
	if (uc->uc_rq == NULL) {
		upstream_conn_free(uc);
		return;
	}
	if (uc->uc_flags & UC_PAUSED) {
		/* Waiting for the client, not the upstream: conn.c's own
		 * deadline covers a client that stopped reading. */
		uc->uc_dl.dl_at = 0;
		return;
	}
	upstream_fail(uc, 504,
	    uc->uc_state == UC_CONNECTING ? "connect timeout" : "timeout");
}
