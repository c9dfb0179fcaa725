/* SPDX-License-Identifier: ISC */
/*
 * proxy.c: the upstream side.  A small HTTP/1.1 client on bufferevents with
 * a keep-alive pool per worker.  The response head is parsed strictly (a
 * hostile upstream must not be able to smuggle a second response onto a
 * pooled connection); the body streams to the client with back-pressure:
 * when the client's output buffer passes PROXY_HIGH_WATER the upstream read
 * is paused until libevent reports the output drained.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "errpage.h"
#include "conn.h"
#include "headers.h"
#include "http1.h"
#include "log.h"
#include "proxy.h"
#include "request.h"
#include "server.h"

#define PROXY_HIGH_WATER (256 * 1024) /* client output before pausing */
#define PROXY_READ_WATER (256 * 1024) /* upstream input buffered at most */
#define PROXY_MAX_LINE 8192           /* status line, header, chunk size */
#define PROXY_MAX_HEAD (64 * 1024)    /* upstream response head */
#define PROXY_MAX_HEADERS 200
#define PROXY_POOL_MAGIC 0x50504f4fu /* "PPOO" */
#define PROXY_CONN_MAGIC 0x50434f4eu /* "PCON" */

static int proxy_parse_upstream(struct config *, const struct config_key *,
    const char *, int, const char **);

const struct config_key proxy_keys[] = {
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
const size_t proxy_nkeys = sizeof(proxy_keys) / sizeof(proxy_keys[0]);

enum pc_state {
	PC_IDLE,
	PC_CONNECTING,
	PC_STATUS,
	PC_HEADERS,
	PC_BODY_LENGTH,
	PC_CHUNK_SIZE,
	PC_CHUNK_DATA,
	PC_CHUNK_END,
	PC_TRAILERS,
	PC_BODY_CLOSE,
};

struct proxy_pool {
	uint32_t pp_magic;
	struct event_base *pp_base;
	const struct config *pp_cfg;
	TAILQ_HEAD(, proxy_conn) pp_idle;
	int pp_nidle;
};

struct proxy_conn {
	uint32_t pc_magic;
	struct proxy_pool *pc_pool;
	struct bufferevent *pc_bev;
	TAILQ_ENTRY(proxy_conn) pc_entry;
	struct request_ctx *pc_rq; /* NULL while idle */
	enum pc_state pc_state;
	int pc_reused;    /* came from the pool */
	int pc_got_bytes; /* any response byte read */
	int pc_keepalive; /* may go back to the pool when done */
	int pc_paused;    /* reading paused for back-pressure */
	int pc_interim;   /* reading a 1xx interim response */
	int pc_code;
	int pc_nhdrs;
	size_t pc_head_bytes;
	int64_t pc_remaining;
	char *pc_reason;
	struct evkeyvalq pc_hdrs; /* response head being parsed */
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
	struct proxy_conn *pc = arg;

	if (pc == NULL || pc->pc_magic != PROXY_CONN_MAGIC)
		abort();
	return pc;
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
	return pool;
}

static void
proxy_conn_reset_head(struct proxy_conn *pc)
{
	evhttp_clear_headers(&pc->pc_hdrs);
	free(pc->pc_reason);
	pc->pc_reason = NULL;
	pc->pc_code = 0;
	pc->pc_nhdrs = 0;
	pc->pc_head_bytes = 0;
	pc->pc_remaining = 0;
	pc->pc_got_bytes = 0;
	pc->pc_paused = 0;
}

static void
proxy_conn_free(struct proxy_conn *pc)
{
	if (pc == NULL)
		return;
	if (pc->pc_state == PC_IDLE && pc->pc_rq == NULL &&
	    pc->pc_entry.tqe_prev != NULL) {
		TAILQ_REMOVE(&pc->pc_pool->pp_idle, pc, pc_entry);
		pc->pc_pool->pp_nidle--;
	}
	if (pc->pc_rq != NULL)
		pc->pc_rq->rq_upconn = NULL;
	proxy_conn_reset_head(pc);
	bufferevent_free(pc->pc_bev);
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
	pool->pp_magic = 0;
	free(pool);
}

static void proxy_read_cb(struct bufferevent *, void *);
static void proxy_event_cb(struct bufferevent *, short, void *);
static void proxy_idle_read_cb(struct bufferevent *, void *);
static void proxy_idle_event_cb(struct bufferevent *, short, void *);

static struct proxy_conn *
proxy_conn_connect(struct proxy_pool *pool)
{
	const struct config *cfg = pool->pp_cfg;
	struct proxy_conn *pc;
	struct timeval rtv, wtv;

	pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		return NULL;
	pc->pc_magic = PROXY_CONN_MAGIC;
	pc->pc_pool = pool;
	TAILQ_INIT(&pc->pc_hdrs);
	pc->pc_bev =
	    bufferevent_socket_new(pool->pp_base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (pc->pc_bev == NULL)
		goto fail;
	pc->pc_state = PC_CONNECTING;
	rtv.tv_sec = cfg->cf_upstream_timeout;
	rtv.tv_usec = 0;
	wtv.tv_sec = cfg->cf_upstream_connect_timeout;
	wtv.tv_usec = 0;
	bufferevent_set_timeouts(pc->pc_bev, &rtv, &wtv);
	bufferevent_setwatermark(pc->pc_bev, EV_READ, 0, PROXY_READ_WATER);
	bufferevent_setcb(pc->pc_bev, proxy_read_cb, NULL, proxy_event_cb, pc);
	if (bufferevent_socket_connect(pc->pc_bev,
	        (struct sockaddr *)&proxy_addr, (int)proxy_addrlen) == -1)
		goto fail;
	return pc;
fail:
	if (pc->pc_bev != NULL)
		bufferevent_free(pc->pc_bev);
	free(pc);
	return NULL;
}

/* Write the request head and body (a reference to the request's own
 * buffer, so a retry can send it again without a copy). */
static void
proxy_conn_send(struct proxy_conn *pc, struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	struct evbuffer *out = bufferevent_get_output(pc->pc_bev);
	struct evbuffer *body = request_body(rq);
	size_t blen = body != NULL ? evbuffer_get_length(body) : 0;
	int has_body = strcmp(rq->rq_method, "POST") == 0 ||
	    strcmp(rq->rq_method, "PUT") == 0 ||
	    strcmp(rq->rq_method, "PATCH") == 0;

	pc->pc_rq = rq;
	rq->rq_upconn = pc;
	proxy_conn_reset_head(pc);
	pc->pc_state =
	    pc->pc_state == PC_CONNECTING ? PC_CONNECTING : PC_STATUS;
	evbuffer_add_printf(out, "%s %s%s HTTP/1.1\r\n", rq->rq_method,
	    cfg->cf_upstream.cu_prefix, rq->rq_path);
	headers_upstream_request(rq, out, blen, has_body);
	if (blen > 0)
		evbuffer_add_buffer_reference(out, body);
	bufferevent_setcb(pc->pc_bev, proxy_read_cb, NULL, proxy_event_cb, pc);
	bufferevent_enable(pc->pc_bev, EV_READ | EV_WRITE);
	clock_gettime(CLOCK_MONOTONIC, &rq->rq_up_start);
}

enum step
proxy_forward(struct request_ctx *rq)
{
	struct proxy_pool *pool = rq->rq_worker->w_pool;
	struct proxy_conn *pc;
	struct timeval rtv, wtv;

	pc = TAILQ_FIRST(&pool->pp_idle);
	if (pc != NULL) {
		TAILQ_REMOVE(&pool->pp_idle, pc, pc_entry);
		pc->pc_entry.tqe_prev = NULL;
		pool->pp_nidle--;
		pc->pc_reused = 1;
		pc->pc_state = PC_STATUS;
		rtv.tv_sec = wtv.tv_sec = pool->pp_cfg->cf_upstream_timeout;
		rtv.tv_usec = wtv.tv_usec = 0;
		bufferevent_set_timeouts(pc->pc_bev, &rtv, &wtv);
	} else {
		pc = proxy_conn_connect(pool);
		if (pc == NULL) {
			log_warnx("upstream_error id=%s reason=\"cannot create "
			          "a socket\"",
			    rq->rq_id);
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
	if (!pc->pc_keepalive ||
	    pool->pp_nidle >= pool->pp_cfg->cf_upstream_keepalive ||
	    evbuffer_get_length(bufferevent_get_input(pc->pc_bev)) > 0) {
		proxy_conn_free(pc);
		return;
	}
	proxy_conn_reset_head(pc);
	pc->pc_state = PC_IDLE;
	pc->pc_reused = 0;
	/* An idle connection is only watched for the upstream closing it;
	 * any byte it sends now is a protocol error. */
	bufferevent_set_timeouts(pc->pc_bev, NULL, NULL);
	bufferevent_setcb(
	    pc->pc_bev, proxy_idle_read_cb, NULL, proxy_idle_event_cb, pc);
	bufferevent_enable(pc->pc_bev, EV_READ);
	TAILQ_INSERT_HEAD(&pool->pp_idle, pc, pc_entry);
	pool->pp_nidle++;
}

static void
proxy_idle_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	proxy_conn_free(proxy_conn_cast(arg));
}

static void
proxy_idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	proxy_conn_free(proxy_conn_cast(arg));
}

void
proxy_abandon(struct request_ctx *rq)
{
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
	evhttp_clear_headers(request_out(rq));
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

/* The reused connection had been closed by the upstream before it saw the
 * request: send it again once on a fresh connection. */
static int
proxy_retry(struct proxy_conn *pc)
{
	struct request_ctx *rq = pc->pc_rq;
	struct proxy_conn *npc;

	if (!pc->pc_reused || pc->pc_got_bytes || rq->rq_state != RQ_UPSTREAM)
		return -1;
	npc = proxy_conn_connect(pc->pc_pool);
	if (npc == NULL)
		return -1;
	pc->pc_rq = NULL;
	proxy_conn_free(pc);
	proxy_conn_send(npc, rq);
	return 0;
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
	bufferevent_enable(pc->pc_bev, EV_READ);
	/* Data may already wait in the input buffer: no read event will
	 * announce it again. */
	proxy_read_cb(pc->pc_bev, pc);
}

/* Hand n bytes of body from the upstream input to the client. */
static void
proxy_body_out(struct proxy_conn *pc, struct evbuffer *in, size_t n)
{
	struct request_ctx *rq = pc->pc_rq;

	rq->rq_bytes += n;
	conn_body(rq->rq_conn, in, n);
	if (conn_pending(rq->rq_conn) > PROXY_HIGH_WATER) {
		conn_flush(rq->rq_conn);
		if (conn_pending(rq->rq_conn) > PROXY_HIGH_WATER) {
			pc->pc_paused = 1;
			bufferevent_disable(pc->pc_bev, EV_READ);
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

static int
proxy_parse_status(struct proxy_conn *pc, const char *line)
{
	int minor;
	char *reason;

	if (strncmp(line, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
	    !isdigit((unsigned char)line[9]) ||
	    !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]) ||
	    (line[12] != ' ' && line[12] != '\0'))
		return -1;
	minor = line[7] - '0';
	pc->pc_code = atoi(line + 9);
	if (pc->pc_code < 100 || pc->pc_code > 599)
		return -1;
	reason = strdup(line[12] == ' ' ? line + 13 : "");
	if (reason == NULL)
		return -1;
	free(pc->pc_reason);
	pc->pc_reason = reason;
	pc->pc_keepalive = minor >= 1;
	return 0;
}

static int
proxy_parse_header(struct proxy_conn *pc, char *line)
{
	char *colon, *v, *e;

	/* obs-fold and a space before the colon are refused (RFC 9112
	 * 5.1, 5.2): they are how responses get smuggled. */
	colon = strchr(line, ':');
	if (colon == NULL || !http1_is_token(line, colon - line))
		return -1;
	*colon = '\0';
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	for (e = v; *e != '\0'; e++)
		if (((unsigned char)*e < 0x20 && *e != '\t') || *e == 0x7f)
			return -1;
	if (++pc->pc_nhdrs > PROXY_MAX_HEADERS)
		return -1;
	return evhttp_add_header(&pc->pc_hdrs, line, v);
}

static int
proxy_content_length(const char *v, int64_t *out)
{
	int64_t n = 0;
	const char *p;

	if (*v == '\0')
		return -1;
	for (p = v; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p) || n > (INT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	*out = n;
	return 0;
}

/* Decide the body framing (RFC 9112 6.3) and send the response head. */
static int
proxy_head_done(struct proxy_conn *pc)
{
	struct request_ctx *rq = pc->pc_rq;
	struct evbuffer *out;
	struct evkeyval *h;
	const char *te = NULL, *conn, *cl = NULL;
	int64_t len = -1, l2;
	int nobody, has_date = 0;
	enum conn_body framing;
	char buf[48];

	conn = evhttp_find_header(&pc->pc_hdrs, "Connection");
	TAILQ_FOREACH(h, &pc->pc_hdrs, next)
	{
		if (strcasecmp(h->key, "Transfer-Encoding") == 0) {
			if (te != NULL)
				return -1;
			te = h->value;
		} else if (strcasecmp(h->key, "Content-Length") == 0) {
			if (proxy_content_length(h->value, &l2) == -1 ||
			    (len != -1 && l2 != len))
				return -1;
			len = l2;
			cl = h->value;
		}
	}
	/* Both framings at once is how responses are smuggled (RFC 9112
	 * 6.1): refuse rather than pick one. */
	if (te != NULL && cl != NULL)
		return -1;
	if (conn != NULL && http1_list_has(conn, "close"))
		pc->pc_keepalive = 0;
	nobody = rq->rq_head || pc->pc_code == 204 || pc->pc_code == 304;
	if (nobody) {
		pc->pc_state = PC_IDLE;
	} else if (te != NULL) {
		/* Only "chunked" alone is understood; anything else could be
		 * read two ways. */
		if (strcasecmp(te, "chunked") != 0)
			return -1;
		pc->pc_state = PC_CHUNK_SIZE;
		cl = NULL;
	} else if (cl != NULL) {
		pc->pc_state = PC_BODY_LENGTH;
		pc->pc_remaining = len;
	} else {
		pc->pc_state = PC_BODY_CLOSE;
		pc->pc_keepalive = 0;
	}
	rq->rq_up_ms = request_ms_since(&rq->rq_up_start);
	rq->rq_status = pc->pc_code;
	rq->rq_state = RQ_STREAMING;
	out = conn_head_begin(rq->rq_conn, pc->pc_code, pc->pc_reason);
	TAILQ_FOREACH(h, &pc->pc_hdrs, next)
	{
		if (headers_is_hop_by_hop(h->key, conn) ||
		    strcasecmp(h->key, "Content-Length") == 0)
			continue;
		if (strcasecmp(h->key, "Date") == 0)
			has_date = 1;
		evbuffer_add(out, h->key, strlen(h->key));
		evbuffer_add(out, ": ", 2);
		evbuffer_add(out, h->value, strlen(h->value));
		evbuffer_add(out, "\r\n", 2);
	}
	if (cl != NULL || (nobody && len >= 0)) {
		int k = snprintf(buf, sizeof(buf), "Content-Length: %lld\r\n",
		    (long long)len);

		evbuffer_add(out, buf, (size_t)k);
	}
	if (nobody || (pc->pc_state == PC_BODY_LENGTH && len == 0))
		framing = CONN_BODY_NONE;
	else if (pc->pc_state == PC_BODY_LENGTH)
		framing = CONN_BODY_LENGTH;
	else
		framing = CONN_BODY_STREAM;
	conn_head_end(rq->rq_conn, framing, has_date, 0);
	if (framing == CONN_BODY_NONE) {
		proxy_done(pc);
		return 1;
	}
	return 0;
}

static int
proxy_chunk_size(const char *line, int64_t *out)
{
	int64_t n = 0;
	const char *p;
	int digits = 0;

	for (p = line; isxdigit((unsigned char)*p); p++) {
		if (++digits > 15)
			return -1;
		n = n * 16 +
		    (isdigit((unsigned char)*p)
		            ? *p - '0'
		            : (tolower((unsigned char)*p) - 'a' + 10));
	}
	if (digits == 0)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' && *p != ';')
		return -1;
	*out = n;
	return 0;
}

/* One line of the head, of a chunk header or of the trailers.  Returns 0
 * to go on, 1 when the response is finished (pc may be gone), -1 on a
 * protocol error. */
static int
proxy_line(struct proxy_conn *pc, char *line, size_t n)
{
	if (pc->pc_head_bytes > PROXY_MAX_HEAD)
		return -1;
	switch (pc->pc_state) {
	case PC_STATUS:
		if (proxy_parse_status(pc, line) == -1 || pc->pc_code == 101)
			return -1;
		pc->pc_interim = pc->pc_code < 200;
		pc->pc_state = PC_HEADERS;
		return 0;
	case PC_HEADERS:
		if (n > 0)
			return proxy_parse_header(pc, line);
		if (pc->pc_interim) {
			/* 100 Continue and friends: skip, read the next. */
			proxy_conn_reset_head(pc);
			pc->pc_got_bytes = 1;
			pc->pc_state = PC_STATUS;
			return 0;
		}
		return proxy_head_done(pc);
	case PC_CHUNK_SIZE:
		if (proxy_chunk_size(line, &pc->pc_remaining) == -1)
			return -1;
		pc->pc_state =
		    pc->pc_remaining == 0 ? PC_TRAILERS : PC_CHUNK_DATA;
		return 0;
	case PC_CHUNK_END:
		if (n != 0)
			return -1;
		pc->pc_state = PC_CHUNK_SIZE;
		return 0;
	case PC_TRAILERS:
		/* Trailers are dropped: a header hidden there must never
		 * reach the client as if the upstream had sent it. */
		if (n > 0)
			return 0;
		proxy_done(pc);
		return 1;
	default:
		return -1;
	}
}

/* Run the response parser over what has arrived.  Returns 0 when it
 * needs more data or is paused, 1 when the request is finished or failed
 * (pc may be gone). */
static int
proxy_parse(struct proxy_conn *pc, struct evbuffer *in)
{
	char *line;
	size_t n, avail;
	int rc;

	while (!pc->pc_paused) {
		avail = evbuffer_get_length(in);
		switch (pc->pc_state) {
		case PC_STATUS:
		case PC_HEADERS:
		case PC_CHUNK_SIZE:
		case PC_CHUNK_END:
		case PC_TRAILERS:
			line =
			    evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
			if (line == NULL) {
				if (avail > PROXY_MAX_LINE) {
					proxy_fail(pc, 502, "line too long");
					return 1;
				}
				return 0;
			}
			pc->pc_head_bytes += n + 2;
			rc = proxy_line(pc, line, n);
			free(line);
			if (rc == -1) {
				proxy_fail(pc, 502, "malformed response");
				return 1;
			}
			if (rc == 1)
				return 1; /* finished; pc may be gone */
			break;
		case PC_BODY_LENGTH:
		case PC_CHUNK_DATA:
			if (avail == 0)
				return 0;
			n = avail < (uint64_t)pc->pc_remaining
			    ? avail
			    : (size_t)pc->pc_remaining;
			proxy_body_out(pc, in, n);
			pc->pc_remaining -= n;
			if (pc->pc_remaining > 0)
				break;
			if (pc->pc_state == PC_CHUNK_DATA) {
				pc->pc_state = PC_CHUNK_END;
				break;
			}
			proxy_done(pc);
			return 1;
		case PC_BODY_CLOSE:
			if (avail == 0)
				return 0;
			proxy_body_out(pc, in, avail);
			break;
		default:
			return 0;
		}
	}
	return 0;
}

static void
proxy_read_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *pc = proxy_conn_cast(arg);
	struct evbuffer *in = bufferevent_get_input(bev);

	if (pc->pc_rq == NULL)
		return;
	if (evbuffer_get_length(in) > 0)
		pc->pc_got_bytes = 1;
	/* Everything this read produced for the client goes out in one
	 * write. */
	if (proxy_parse(pc, in) == 0 && pc->pc_rq != NULL &&
	    pc->pc_rq->rq_state == RQ_STREAMING)
		conn_flush(pc->pc_rq->rq_conn);
}

static void
proxy_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct proxy_conn *pc = proxy_conn_cast(arg);
	struct evbuffer *in = bufferevent_get_input(bev);
	struct timeval tv;
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		if (proxy_addr.ss_family != AF_UNIX)
			(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
			    TCP_NODELAY, &one, sizeof(one));
		tv.tv_sec = pc->pc_pool->pp_cfg->cf_upstream_timeout;
		tv.tv_usec = 0;
		bufferevent_set_timeouts(bev, &tv, &tv);
		if (pc->pc_state == PC_CONNECTING)
			pc->pc_state = PC_STATUS;
		return;
	}
	if (pc->pc_rq == NULL) {
		proxy_conn_free(pc);
		return;
	}
	if ((what & BEV_EVENT_EOF) && pc->pc_state == PC_BODY_CLOSE) {
		/* The close marks the end: pass on what is left, bounded by
		 * the read watermark, then finish. */
		if (evbuffer_get_length(in) > 0)
			proxy_body_out(pc, in, evbuffer_get_length(in));
		proxy_done(pc);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		proxy_fail(pc, 504,
		    pc->pc_state == PC_CONNECTING ? "connect timeout"
		                                  : "timeout");
		return;
	}
	if (proxy_retry(pc) == 0)
		return;
	proxy_fail(pc, 502,
	    pc->pc_state == PC_CONNECTING
	        ? "connection refused"
	        : ((what & BEV_EVENT_EOF) ? "closed early" : "reset"));
}
