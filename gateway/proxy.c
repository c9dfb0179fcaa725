/* SPDX-License-Identifier: ISC */
/*
 * proxy.c: the upstream side.  A small HTTP/1.1 client on raw non-blocking
 * sockets with a keep-alive pool per worker: the request is written the
 * moment it is ready, the response read with one readv per event into an
 * evbuffer whose chains then move to the client without a copy.  The
 * response head is parsed strictly by http1.c (a hostile upstream must not
 * be able to smuggle a second response onto a pooled connection); the body
 * streams to the client with back-pressure: past PROXY_HIGH_WATER queued
 * for the client, the upstream is not read until the client drains it.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "conn.h"
#include "deadline.h"
#include "errpage.h"
#include "headers.h"
#include "http1.h"
#include "log.h"
#include "magic.h"
#include "proxy.h"
#include "request.h"
#include "config.h"
#include "worker.h"

#define PROXY_HIGH_WATER (256 * 1024) /* client output before pausing */
#define PROXY_READ_WATER (256 * 1024) /* upstream input buffered at most */
#define PROXY_READ (16 * 1024)        /* one read */
#define PROXY_MAX_HEAD (64 * 1024)    /* upstream response head */
#define PROXY_MAX_HEADERS 200
#define PROXY_POOL_MAGIC 0x50504f4fu /* "PPOO" */
#define PROXY_CONN_MAGIC 0x50434f4eu /* "PCON" */

static int proxy_parse_upstream(struct config *, const struct config_key *,
    const char *, int, const char **);
static void proxy_config_free(struct config *);

static const struct config_key proxy_keys[] = {
    {"upstream", proxy_parse_upstream, 0, NULL,
        "The application to protect: http://host:port[/prefix] or "
        "unix:/path/to/socket[:/prefix].",
        CONFIG_REQUIRED},
    {"upstream_connect_timeout", config_parse_duration,
        offsetof(struct config, cf_upstream_connect_timeout), "5s",
        "How long connecting to the upstream may take before 502.", 0},
    {"upstream_keepalive", config_parse_int,
        offsetof(struct config, cf_upstream_keepalive), "64",
        "Idle keep-alive connections to the upstream kept per worker.", 0},
    {"upstream_timeout", config_parse_duration,
        offsetof(struct config, cf_upstream_timeout), "60s",
        "How long the upstream may stay silent before 504 (or, once the "
        "response has started, before the response is cut).",
        0},
};
const struct config_module proxy_config_module = {"proxy", proxy_keys,
    sizeof(proxy_keys) / sizeof(proxy_keys[0]), NULL, proxy_config_free};

enum pc_state {
	PC_IDLE,       /* in the pool, or between requests */
	PC_CONNECTING, /* connect() in progress */
	PC_HEAD,       /* waiting for (the rest of) a response head */
	PC_BODY_LENGTH,
	PC_BODY_CHUNKED,
	PC_BODY_CLOSE,
};

struct proxy_pool {
	uint32_t pp_magic;
	struct event_base *pp_base;
	const struct config *pp_cfg;
	TAILQ_HEAD(, proxy_conn) pp_idle;
	int pp_nidle;
	struct http1_hdr pp_hdrs[PROXY_MAX_HEADERS + 1]; /* the head being
	                                                  * parsed (one at a
	                                                  * time per worker) */
	struct evbuffer *pp_chunk; /* decoded chunked data, in passing */
};

struct proxy_conn {
	uint32_t pc_magic;
	struct proxy_pool *pc_pool;
	int pc_fd;
	struct event *pc_rev; /* read: registered while reading or idle */
	struct event
	    *pc_wev; /* write: while connecting or the socket is full */
	struct event *pc_tev; /* the deadline */
	struct evbuffer *pc_in;
	struct evbuffer *pc_out;
	TAILQ_ENTRY(proxy_conn) pc_entry;
	int pc_pooled;
	struct request_ctx *pc_rq; /* NULL while idle */
	enum pc_state pc_state;
	int pc_reused;    /* came from the pool */
	int pc_got_bytes; /* any response byte read */
	int pc_keepalive; /* may go back to the pool when done */
	int pc_paused;    /* reading paused for back-pressure */
	int pc_reading;   /* pc_rev is added */
	int pc_streaming; /* the request body is streaming upstream */
	int pc_streamed;  /* some of it was sent: no retry possible */
	int pc_up_paused; /* the client's body is paused for us */
	size_t pc_scan;   /* http1_head_scan's resume point */
	int64_t pc_remaining;
	struct http1_chunked pc_chunk;
	struct deadline pc_dl; /* on pc_tev */
};

/* Resolved once in the main thread; read-only in the workers. */
static struct sockaddr_storage proxy_addr;
static socklen_t proxy_addrlen;

static int
proxy_parse_upstream(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	struct config_upstream *up = &cfg->cf_upstream;
	char *host = NULL, *path = NULL, *p;
	int https, port;

	(void)line;
	(void)key;
	free(up->cu_host);
	free(up->cu_unix);
	free(up->cu_prefix);
	free(up->cu_hostport);
	memset(up, 0, sizeof(*up));
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

static void
proxy_config_free(struct config *cfg)
{
	struct config_upstream *up = &cfg->cf_upstream;

	free(up->cu_host);
	free(up->cu_unix);
	free(up->cu_prefix);
	free(up->cu_hostport);
}

int
proxy_resolve(const struct config *cfg)
{
	const struct config_upstream *up = &cfg->cf_upstream;
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&proxy_addr, 0, sizeof(proxy_addr));
	if (up->cu_unix != NULL) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&proxy_addr;

		sun->sun_family = AF_UNIX;
		snprintf(
		    sun->sun_path, sizeof(sun->sun_path), "%s", up->cu_unix);
		proxy_addrlen = sizeof(*sun);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", up->cu_port);
	rc = getaddrinfo(up->cu_host, port, &hints, &res);
	if (rc != 0) {
		log_warnx("upstream %s: %s", up->cu_host, gai_strerror(rc));
		return -1;
	}
	memcpy(&proxy_addr, res->ai_addr, res->ai_addrlen);
	proxy_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static struct proxy_conn *
proxy_conn_cast(void *arg)
{
	return MAGIC_CAST(struct proxy_conn, pc_magic, PROXY_CONN_MAGIC, arg);
}

static void
proxy_deadline(struct proxy_conn *pc, int secs)
{
	deadline_set(&pc->pc_dl, (int64_t)secs * 1000);
}

static void
proxy_read_on(struct proxy_conn *pc)
{
	if (!pc->pc_reading) {
		event_add(pc->pc_rev, NULL);
		pc->pc_reading = 1;
	}
}

static void
proxy_read_off(struct proxy_conn *pc)
{
	if (pc->pc_reading) {
		event_del(pc->pc_rev);
		pc->pc_reading = 0;
	}
}

struct proxy_pool *
proxy_pool_new(struct event_base *base, const struct config *cfg)
{
	struct proxy_pool *pool;

	pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		return NULL;
	pool->pp_magic = PROXY_POOL_MAGIC;
	pool->pp_base = base;
	pool->pp_cfg = cfg;
	TAILQ_INIT(&pool->pp_idle);
	pool->pp_chunk = evbuffer_new();
	if (pool->pp_chunk == NULL) {
		free(pool);
		return NULL;
	}
	return pool;
}

static void
proxy_conn_free(struct proxy_conn *pc)
{
	if (pc == NULL)
		return;
	if (pc->pc_pooled) {
		TAILQ_REMOVE(&pc->pc_pool->pp_idle, pc, pc_entry);
		pc->pc_pool->pp_nidle--;
	}
	if (pc->pc_rq != NULL)
		pc->pc_rq->rq_upconn = NULL;
	if (pc->pc_rev != NULL)
		event_free(pc->pc_rev);
	if (pc->pc_wev != NULL)
		event_free(pc->pc_wev);
	if (pc->pc_tev != NULL)
		event_free(pc->pc_tev);
	if (pc->pc_in != NULL)
		evbuffer_free(pc->pc_in);
	if (pc->pc_out != NULL)
		evbuffer_free(pc->pc_out);
	if (pc->pc_fd != -1)
		close(pc->pc_fd);
	pc->pc_magic = 0;
	free(pc);
}

void
proxy_pool_free(struct proxy_pool *pool)
{
	struct proxy_conn *pc;

	if (pool == NULL)
		return;
	while ((pc = TAILQ_FIRST(&pool->pp_idle)) != NULL)
		proxy_conn_free(pc);
	evbuffer_free(pool->pp_chunk);
	pool->pp_magic = 0;
	free(pool);
}

static void proxy_read_cb(evutil_socket_t, short, void *);
static void proxy_body_cb(void *);
static void proxy_write_cb(evutil_socket_t, short, void *);
static void proxy_timer_cb(evutil_socket_t, short, void *);
static void proxy_fail(struct proxy_conn *pc, int status, const char *why);

static struct proxy_conn *
proxy_conn_connect(struct proxy_pool *pool)
{
	struct event_base *base = pool->pp_base;
	struct proxy_conn *pc;
	int err;

	pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		return NULL;
	pc->pc_magic = PROXY_CONN_MAGIC;
	pc->pc_pool = pool;
	pc->pc_fd = socket(proxy_addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (pc->pc_fd == -1)
		goto fail;
	pc->pc_rev =
	    event_new(base, pc->pc_fd, EV_READ | EV_PERSIST, proxy_read_cb, pc);
	pc->pc_wev = event_new(
	    base, pc->pc_fd, EV_WRITE | EV_PERSIST, proxy_write_cb, pc);
	pc->pc_tev = evtimer_new(base, proxy_timer_cb, pc);
	pc->pc_dl.dl_ev = pc->pc_tev;
	pc->pc_in = evbuffer_new();
	pc->pc_out = evbuffer_new();
	if (pc->pc_rev == NULL || pc->pc_wev == NULL || pc->pc_tev == NULL ||
	    pc->pc_in == NULL || pc->pc_out == NULL)
		goto fail;
	if (proxy_addr.ss_family != AF_UNIX) {
		int one = 1;

		(void)setsockopt(
		    pc->pc_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (connect(pc->pc_fd, (struct sockaddr *)&proxy_addr, proxy_addrlen) ==
	    0) {
		pc->pc_state = PC_IDLE;
		return pc;
	}
	if (errno != EINPROGRESS)
		goto fail;
	pc->pc_state = PC_CONNECTING;
	event_add(pc->pc_wev, NULL);
	proxy_deadline(pc, pool->pp_cfg->cf_upstream_connect_timeout);
	return pc;
fail:
	err = errno;
	proxy_conn_free(pc);
	errno = err; /* for the caller's log line */
	return NULL;
}

/* Write what is queued; the write event only while the socket is full.
 * Returns -1 when the connection failed (pc may be gone then). */
static int
proxy_flush(struct proxy_conn *pc)
{
	int n;

	while (evbuffer_get_length(pc->pc_out) > 0) {
		n = evbuffer_write(pc->pc_out, pc->pc_fd);
		if (n > 0)
			continue;
		if (n == -1 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK ||
		        errno == EINTR)) {
			if (!event_pending(pc->pc_wev, EV_WRITE, NULL))
				event_add(pc->pc_wev, NULL);
			return 0;
		}
		return -1;
	}
	if (event_pending(pc->pc_wev, EV_WRITE, NULL))
		event_del(pc->pc_wev);
	return 0;
}

/* The reused connection had been closed by the upstream before it saw the
 * request: send it again once on a fresh connection. */
static int proxy_retry(struct proxy_conn *pc);
static void proxy_abandon(void *arg);

/* Write the request head and body (a reference to the request's own
 * buffer, so a retry can send it again without a copy). */
static void
proxy_conn_send(struct proxy_conn *pc, struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	struct headers_writer w;
	struct evbuffer *body = request_body(rq);
	size_t blen = body != NULL ? evbuffer_get_length(body) : 0;
	const char *prefix = cfg->cf_upstream.cu_prefix;
	int has_body = strcmp(rq->rq_method, "POST") == 0 ||
	    strcmp(rq->rq_method, "PUT") == 0 ||
	    strcmp(rq->rq_method, "PATCH") == 0;
	int64_t len = (int64_t)blen;

	/* A body still arriving streams, with the length the client gave
	 * (only those stream: conn.h). */
	pc->pc_streaming = conn_body_more(rq->rq_conn);
	if (pc->pc_streaming)
		len = rq->rq_hreq->hr_length;
	pc->pc_rq = rq;
	rq->rq_upconn = pc;
	request_cleanup_add(rq, proxy_abandon, rq);
	pc->pc_got_bytes = 0;
	pc->pc_paused = 0;
	pc->pc_scan = 0;
	headers_writer_start(&w, pc->pc_out, 4096);
	headers_writer_add(&w, rq->rq_method, strlen(rq->rq_method));
	headers_writer_add(&w, " ", 1);
	headers_writer_add(&w, prefix, strlen(prefix));
	headers_writer_add(&w, rq->rq_path, strlen(rq->rq_path));
	headers_writer_add(&w, " HTTP/1.1\r\n", 11);
	headers_upstream_request(rq, &w, len, has_body);
	headers_writer_end(&w);
	if (!pc->pc_streaming && blen > 0)
		evbuffer_add_buffer_reference(pc->pc_out, body);
	clock_gettime(CLOCK_MONOTONIC, &rq->rq_up_start);
	proxy_read_on(pc);
	if (pc->pc_state != PC_CONNECTING) {
		pc->pc_state = PC_HEAD;
		proxy_deadline(pc, cfg->cf_upstream_timeout);
		if (proxy_flush(pc) == -1) {
			if (proxy_retry(pc) == -1)
				proxy_fail(pc, 502, "write failed");
			return;
		}
	}
	/* Last (it may run at once and end the request): what of the body
	 * has arrived, and the rest as it comes. */
	if (pc->pc_streaming)
		conn_body_consume(rq->rq_conn, proxy_body_cb, rq);
}

static void
proxy_forward_resume(struct request_ctx *rq)
{
	(void)proxy_forward(rq);
}

enum step
proxy_forward(struct request_ctx *rq)
{
	struct proxy_pool *pool = rq->rq_worker->w_pool;
	struct proxy_conn *pc;

	/* Access has been granted: only now is the body read (and "100
	 * Continue" sent), so a client that may not pass never makes the
	 * gateway hold it. */
	if (request_body_read(rq,
	        (int64_t)rq->rq_worker->w_cfg->cf_max_request_body,
	        proxy_forward_resume, errpage_body_failed) == 1)
		return STEP_AGAIN;

	pc = TAILQ_FIRST(&pool->pp_idle);
	if (pc != NULL) {
		TAILQ_REMOVE(&pool->pp_idle, pc, pc_entry);
		pc->pc_pooled = 0;
		pool->pp_nidle--;
		pc->pc_reused = 1;
	} else {
		pc = proxy_conn_connect(pool);
		if (pc == NULL) {
			log_warnx("upstream_error id=%s reason=\"%s\"",
			    rq->rq_id,
			    errno == ECONNREFUSED ? "connection refused"
			                          : strerror(errno));
			errpage_send(rq, 502, "upstream_unreachable",
			    "The application behind this gateway could not "
			    "be reached.",
			    0);
			return STEP_ERROR;
		}
	}
	rq->rq_state = RQ_UPSTREAM;
	proxy_conn_send(pc, rq);
	return STEP_AGAIN;
}

/* Park a finished connection in the pool, or close it. */
static void
proxy_conn_release(struct proxy_conn *pc)
{
	struct proxy_pool *pool = pc->pc_pool;

	if (pc->pc_rq != NULL)
		pc->pc_rq->rq_upconn = NULL;
	pc->pc_rq = NULL;
	/* A body not all sent (the upstream answered early) leaves the
	 * connection mid-message: never reused. */
	if (!pc->pc_keepalive || pc->pc_streaming ||
	    pool->pp_nidle >= pool->pp_cfg->cf_upstream_keepalive ||
	    evbuffer_get_length(pc->pc_in) > 0 ||
	    evbuffer_get_length(pc->pc_out) > 0) {
		proxy_conn_free(pc);
		return;
	}
	pc->pc_state = PC_IDLE;
	pc->pc_reused = 0;
	pc->pc_dl.dl_at = 0;
	/* An idle connection is only watched for the upstream closing it;
	 * any byte it sends now is a protocol error (proxy_read_cb). */
	proxy_read_on(pc);
	TAILQ_INSERT_HEAD(&pool->pp_idle, pc, pc_entry);
	pc->pc_pooled = 1;
	pool->pp_nidle++;
}

/* The request's cleanup: close the upstream connection it still uses
 * (the client went away; it is never returned to the pool half-read).
 * Every other way a request ends has let go of it already. */
static void
proxy_abandon(void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	struct proxy_conn *pc = rq->rq_upconn;

	if (pc == NULL)
		return;
	pc->pc_rq = NULL;
	rq->rq_upconn = NULL;
	proxy_conn_free(pc);
}

/* The upstream failed; answer 502/504, or cut a response in flight. */
static void
proxy_fail(struct proxy_conn *pc, int status, const char *why)
{
	struct request_ctx *rq = pc->pc_rq;
	enum rq_state state = rq->rq_state;

	log_warnx("upstream_error id=%s state=%d reason=\"%s\"", rq->rq_id,
	    (int)pc->pc_state, why);
	pc->pc_rq = NULL;
	rq->rq_upconn = NULL;
	proxy_conn_free(pc);
	if (state == RQ_STREAMING) {
		/* The head is out: the client must see a cut response, never
		 * a short one that looks complete. */
		request_abort(rq);
		return;
	}
	resp_hdrs_cleanup(request_out(rq));
	if (status == 504)
		errpage_send(rq, 504, "upstream_timeout",
		    "The application behind this gateway did not answer in "
		    "time.",
		    0);
	else
		errpage_send(rq, 502, "upstream_unreachable",
		    "The application behind this gateway could not be reached "
		    "or sent an invalid response.",
		    0);
}

static int
proxy_retry(struct proxy_conn *pc)
{
	struct request_ctx *rq = pc->pc_rq;
	struct proxy_conn *npc;

	if (!pc->pc_reused || pc->pc_got_bytes || pc->pc_streamed ||
	    rq->rq_state != RQ_UPSTREAM)
		return -1;
	npc = proxy_conn_connect(pc->pc_pool);
	if (npc == NULL)
		return -1;
	pc->pc_rq = NULL;
	rq->rq_upconn = NULL;
	proxy_conn_free(pc);
	proxy_conn_send(npc, rq);
	return 0;
}

static void proxy_resume(struct proxy_conn *pc);

/*
 * The client's body, streaming: move what has arrived to the upstream,
 * and hold the client back while the upstream is slow to take it.
 */
static void
proxy_body_cb(void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	struct proxy_conn *pc = rq->rq_upconn;
	struct evbuffer *body = request_body(rq);
	size_t n = evbuffer_get_length(body);
	int err = conn_body_error(rq->rq_conn);

	if (pc == NULL || !pc->pc_streaming)
		return;
	if (err != 0) {
		/* Broken off mid-body: the upstream must not take a short
		 * body for a whole one, so its connection goes. */
		conn_body_consume(rq->rq_conn, NULL, NULL);
		pc->pc_rq = NULL;
		rq->rq_upconn = NULL;
		proxy_conn_free(pc);
		if (rq->rq_state == RQ_STREAMING) {
			request_abort(rq);
			return;
		}
		resp_hdrs_cleanup(request_out(rq));
		errpage_send(rq, err == 413 ? 413 : 400,
		    err == 413 ? "body_too_large" : "bad_request",
		    err == 413 ? "The request body is larger than this "
		                 "gateway accepts."
		               : "The request body is malformed.",
		    1);
		return;
	}
	if (n > 0) {
		evbuffer_remove_buffer(body, pc->pc_out, n);
		pc->pc_streamed = 1;
	}
	if (!conn_body_more(rq->rq_conn)) {
		pc->pc_streaming = 0;
		conn_body_consume(rq->rq_conn, NULL, NULL);
	}
	if (pc->pc_state == PC_CONNECTING)
		return; /* written once connected */
	/* The upstream is waiting for the body, not silent. */
	proxy_deadline(pc, pc->pc_pool->pp_cfg->cf_upstream_timeout);
	if (proxy_flush(pc) == -1) {
		proxy_fail(pc, 502, "write failed");
		return;
	}
	if (pc->pc_streaming && !pc->pc_up_paused &&
	    evbuffer_get_length(pc->pc_out) > PROXY_HIGH_WATER) {
		pc->pc_up_paused = 1;
		conn_body_pause(rq->rq_conn, 1);
	}
}

/* The client took enough of what was queued: read the upstream again. */
static void
proxy_drained_cb(void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	struct proxy_conn *pc = rq->rq_upconn;

	if (pc == NULL || !pc->pc_paused)
		return;
	pc->pc_paused = 0;
	proxy_resume(pc);
}

/* Hand n bytes of body from src to the client; pause on back-pressure. */
static void
proxy_body_out(struct proxy_conn *pc, struct evbuffer *src, size_t n)
{
	struct request_ctx *rq = pc->pc_rq;

	rq->rq_bytes += n;
	conn_body(rq->rq_conn, src, n);
	if (conn_pending(rq->rq_conn) > PROXY_HIGH_WATER) {
		conn_flush(rq->rq_conn);
		if (conn_pending(rq->rq_conn) > PROXY_HIGH_WATER) {
			pc->pc_paused = 1;
			conn_on_drain(rq->rq_conn, proxy_drained_cb, rq);
		}
	}
}

/* The whole response has been passed on. */
static void
proxy_done(struct proxy_conn *pc)
{
	struct request_ctx *rq = pc->pc_rq;

	proxy_conn_release(pc);
	/* Frees rq (S14): the last thing done here. */
	request_end(rq);
}

/* Send the response head to the client, with the framing decided (RFC
 * 9112 6.3).  Returns 1 when the response is complete already (no body),
 * 0 to read the body. */
static int
proxy_head_out(struct proxy_conn *pc, const struct http1_resp *p)
{
	struct request_ctx *rq = pc->pc_rq;
	const struct http1_hdr *h;
	struct headers_writer w;
	enum conn_body framing;
	int i, nobody;
	char buf[24];

	pc->pc_keepalive = !p->hp_close;
	nobody = rq->rq_head || p->hp_status == 204 || p->hp_status == 304;
	if (nobody) {
		framing = CONN_BODY_NONE;
	} else if (p->hp_chunked) {
		pc->pc_state = PC_BODY_CHUNKED;
		memset(&pc->pc_chunk, 0, sizeof(pc->pc_chunk));
		framing = CONN_BODY_STREAM;
	} else if (p->hp_length >= 0) {
		pc->pc_state = PC_BODY_LENGTH;
		pc->pc_remaining = p->hp_length;
		framing = p->hp_length == 0 ? CONN_BODY_NONE : CONN_BODY_LENGTH;
	} else {
		/* Delimited by the close: never reused. */
		pc->pc_state = PC_BODY_CLOSE;
		pc->pc_keepalive = 0;
		framing = CONN_BODY_STREAM;
	}
	rq->rq_up_ms = request_ms_since(&rq->rq_up_start);
	rq->rq_status = p->hp_status;
	rq->rq_state = RQ_STREAMING;
	headers_writer_start(
	    &w, conn_head_begin(rq->rq_conn, p->hp_status, p->hp_reason), 2048);
	for (i = 0; i < p->hp_nhdrs; i++) {
		h = &p->hp_hdrs[i];
		if ((headers_kind(h->hh_name, h->hh_nlen) &
		        (HEADERS_HOP | HEADERS_LENGTH)) != 0 ||
		    (p->hp_connection != NULL &&
		        http1_connection_has(
		            p->hp_hdrs, p->hp_nhdrs, h->hh_name)))
			continue;
		headers_writer_field(
		    &w, h->hh_name, h->hh_nlen, h->hh_value, h->hh_vlen);
	}
	if (p->hp_length >= 0 && !p->hp_chunked &&
	    (framing != CONN_BODY_NONE || nobody || p->hp_length == 0))
		headers_writer_field(&w, "Content-Length", 14, buf,
		    headers_u64(buf, (uint64_t)p->hp_length));
	headers_writer_end(&w);
	conn_head_end(rq->rq_conn, framing, p->hp_has_date, 0);
	if (framing == CONN_BODY_NONE) {
		pc->pc_state = PC_IDLE;
		return 1;
	}
	return 0;
}

/* A head is (maybe) in pc_in: parse it and send it on.  Returns 0 to go
 * on, 1 to wait for more, 2 when the response is finished (pc may be
 * gone), -1 on a protocol error. */
static int
proxy_head(struct proxy_conn *pc)
{
	struct http1_resp p;
	size_t avail = evbuffer_get_length(pc->pc_in), n;
	unsigned char *data;
	ssize_t hl;

	n = avail < PROXY_MAX_HEAD ? avail : PROXY_MAX_HEAD;
	data = evbuffer_pullup(pc->pc_in, (ev_ssize_t)n);
	if (data == NULL)
		return -1;
	hl = http1_head_scan((char *)data, n, &pc->pc_scan);
	if (hl == -1 || (hl == 0 && n == PROXY_MAX_HEAD))
		return -1;
	if (hl == 0)
		return 1;
	memset(&p, 0, sizeof(p));
	p.hp_hdrs = pc->pc_pool->pp_hdrs;
	p.hp_maxhdrs = PROXY_MAX_HEADERS;
	/* Parsed in place: the pulled-up bytes are ours until drained. */
	if (http1_parse_response((char *)data, (size_t)hl, &p) == -1 ||
	    p.hp_status == 101)
		return -1;
	pc->pc_scan = 0;
	if (p.hp_status < 200) {
		/* 100 Continue, 103 Early Hints: skip, read the next head. */
		evbuffer_drain(pc->pc_in, (size_t)hl);
		pc->pc_got_bytes = 1;
		return 0;
	}
	if (proxy_head_out(pc, &p) == 1) {
		evbuffer_drain(pc->pc_in, (size_t)hl);
		proxy_done(pc);
		return 2;
	}
	evbuffer_drain(pc->pc_in, (size_t)hl);
	return 0;
}

/* Chunked upstream body: decoded (trailers dropped: a header hidden there
 * must never reach the client as if the upstream had sent it), then
 * framed again for the client.  Returns 0 to go on, 1 to wait for more, 2
 * when finished (pc may be gone), -1 on a protocol error. */
static int
proxy_chunked(struct proxy_conn *pc)
{
	struct evbuffer *dec = pc->pc_pool->pp_chunk;
	size_t avail = evbuffer_get_length(pc->pc_in), n;
	unsigned char *data;
	ssize_t used;
	int done, status;

	if (avail == 0)
		return 1;
	n = avail < PROXY_READ ? avail : PROXY_READ;
	data = evbuffer_pullup(pc->pc_in, (ev_ssize_t)n);
	if (data == NULL)
		return -1;
	used = http1_chunked_decode(&pc->pc_chunk, (const char *)data, n, dec,
	    INT64_MAX / 2, &done, &status);
	if (used == -1)
		return -1;
	evbuffer_drain(pc->pc_in, (size_t)used);
	if (evbuffer_get_length(dec) > 0)
		proxy_body_out(pc, dec, evbuffer_get_length(dec));
	if (done) {
		proxy_done(pc);
		return 2;
	}
	return used == 0 ? 1 : 0;
}

/* Run the response parser over what has arrived.  Returns 0 when it
 * needs more data or is paused, 1 when the request is finished or failed
 * (pc may be gone). */
static int
proxy_parse(struct proxy_conn *pc)
{
	size_t avail, n;
	int rc;

	while (!pc->pc_paused) {
		avail = evbuffer_get_length(pc->pc_in);
		switch (pc->pc_state) {
		case PC_HEAD:
		case PC_BODY_CHUNKED:
			/* Both: 0 go on, 1 wait, 2 finished, -1 malformed. */
			rc = pc->pc_state == PC_HEAD ? proxy_head(pc)
			                             : proxy_chunked(pc);
			if (rc == -1) {
				proxy_fail(pc, 502,
				    pc->pc_state == PC_HEAD
				        ? "malformed response"
				        : "malformed chunked body");
				return 1;
			}
			if (rc != 0)
				return rc == 2;
			break;
		case PC_BODY_LENGTH:
			if (avail == 0)
				return 0;
			n = avail < (uint64_t)pc->pc_remaining
			    ? avail
			    : (size_t)pc->pc_remaining;
			proxy_body_out(pc, pc->pc_in, n);
			pc->pc_remaining -= n;
			if (pc->pc_remaining > 0)
				break;
			proxy_done(pc);
			return 1;
		case PC_BODY_CLOSE:
			if (avail == 0)
				return 0;
			proxy_body_out(pc, pc->pc_in, avail);
			break;
		default:
			return 0;
		}
	}
	return 0;
}

/* After parsing: what it produced for the client goes out in one write,
 * and reading stops while the client is behind. */
static void
proxy_after_parse(struct proxy_conn *pc)
{
	if (pc->pc_rq->rq_state == RQ_STREAMING)
		conn_flush(pc->pc_rq->rq_conn);
	if (pc->pc_paused)
		proxy_read_off(pc);
	else
		proxy_deadline(pc, pc->pc_pool->pp_cfg->cf_upstream_timeout);
}

static void
proxy_resume(struct proxy_conn *pc)
{
	/* Data may already wait in pc_in: no read event announces it. */
	if (proxy_parse(pc) == 1)
		return;
	proxy_read_on(pc);
	proxy_after_parse(pc);
}

/* Read once.  Returns 1 for bytes, 0 for nothing now, -1 at EOF or on an
 * error (errno, 0 for EOF). */
static int
proxy_recv(struct proxy_conn *pc)
{
	struct evbuffer_iovec vec[2];
	int nv;
	ssize_t n;

	nv = evbuffer_reserve_space(pc->pc_in, PROXY_READ, vec, 2);
	if (nv <= 0)
		return -1;
	n = readv(pc->pc_fd, (struct iovec *)vec, nv);
	if (n > 0) {
		size_t left = (size_t)n;
		int i;

		for (i = 0; i < nv; i++) {
			size_t take =
			    left < vec[i].iov_len ? left : vec[i].iov_len;

			vec[i].iov_len = take;
			left -= take;
		}
		evbuffer_commit_space(pc->pc_in, vec, nv);
		return 1;
	}
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n == 0)
		errno = 0;
	return -1;
}

static void
proxy_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_conn *pc = proxy_conn_cast(arg);
	int rc;

	(void)fd;
	(void)what;
	if (pc->pc_rq == NULL) {
		/* Idle in the pool: a close, or bytes nobody asked for. */
		proxy_conn_free(pc);
		return;
	}
	if (evbuffer_get_length(pc->pc_in) >= PROXY_READ_WATER) {
		proxy_read_off(pc);
		return;
	}
	rc = proxy_recv(pc);
	if (rc == 0)
		return;
	if (rc == -1) {
		int err = errno;

		if (err == 0 && pc->pc_state == PC_BODY_CLOSE) {
			/* The close marks the end. */
			proxy_done(pc);
			return;
		}
		if (pc->pc_state != PC_CONNECTING && proxy_retry(pc) == 0)
			return;
		proxy_fail(pc, 502,
		    pc->pc_state == PC_CONNECTING || err == ECONNREFUSED
		        ? "connection refused"
		        : (err == 0 ? (pc->pc_state == PC_HEAD &&
		                                  !pc->pc_got_bytes
		                              ? "closed before answering"
		                              : "closed early")
		                    : "reset"));
		return;
	}
	pc->pc_got_bytes = 1;
	if (proxy_parse(pc) == 1)
		return;
	proxy_after_parse(pc);
}

static void
proxy_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_conn *pc = proxy_conn_cast(arg);
	int err = 0;
	socklen_t len = sizeof(err);

	(void)what;
	if (pc->pc_state == PC_CONNECTING) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			event_del(pc->pc_wev);
			if (pc->pc_rq != NULL)
				proxy_fail(pc, 502, "connection refused");
			else
				proxy_conn_free(pc);
			return;
		}
		pc->pc_state = PC_HEAD;
		if (pc->pc_rq == NULL) {
			proxy_conn_free(pc);
			return;
		}
		proxy_deadline(pc, pc->pc_pool->pp_cfg->cf_upstream_timeout);
	} else {
		/* Progress writing a large body counts as activity. */
		proxy_deadline(pc, pc->pc_pool->pp_cfg->cf_upstream_timeout);
	}
	if (proxy_flush(pc) == -1) {
		if (proxy_retry(pc) == 0)
			return;
		proxy_fail(pc, 502, "write failed");
		return;
	}
	if (pc->pc_up_paused &&
	    evbuffer_get_length(pc->pc_out) < PROXY_HIGH_WATER / 4) {
		pc->pc_up_paused = 0;
		conn_body_pause(pc->pc_rq->rq_conn, 0);
	}
}

static void
proxy_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_conn *pc = proxy_conn_cast(arg);

	(void)fd;
	(void)what;
	if (!deadline_fired(&pc->pc_dl))
		return;
	if (pc->pc_rq == NULL) {
		proxy_conn_free(pc);
		return;
	}
	if (pc->pc_paused) {
		/* Waiting for the client, not the upstream: conn.c's own
		 * deadline covers a client that stopped reading. */
		pc->pc_dl.dl_at = 0;
		return;
	}
	proxy_fail(pc, 504,
	    pc->pc_state == PC_CONNECTING ? "connect timeout" : "timeout");
}
