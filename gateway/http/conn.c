/* SPDX-License-Identifier: ISC */
/*
 * conn.c: a client connection (conn.h).  Reads with recv() into one flat
 * buffer per connection (taken from a per-thread cache while a request is
 * in, given back when the connection idles), parses with http1.c, and
 * writes with one writev per response as soon as it is complete: the read
 * event is registered once per connection and a write event only while
 * the socket is full, so a keep-alive request costs a recv and a writev.
 * A TLS connection goes through libevent's OpenSSL bufferevent instead:
 * the same buffers and states, its reads taken from the bufferevent's
 * input and its writes handed to its output (conn_tls_*).
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/config.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "http/conn.h"
#include "http/deadline.h"
#include "http/http1.h"
#include "http/resp_hdrs.h"
#include "http/tls.h"
#include "http/worker.h"

#define CONN_MAGIC 0x434f4e4eu /* "CONN" */
#define CONN_BUF 8192          /* input buffer, grown for big heads */
#define CONN_CACHE 512 /* idle buffers kept per thread (8 + 2.4 KiB each) */
#define CONN_LOW_WATER (64 * 1024)
#define CONN_LINGER_MS 2000 /* reading what follows an error, at most */
#define CONN_MAX_EMPTY 4    /* empty lines allowed before a request */
#define CONN_BODY_INLINE                                                       \
	(64 * 1024)                  /* read before forwarding; more streams   \
	                              */
#define CONN_BODY_HOLD (1024 * 1024) /* streamed body held for a consumer */

/* TLS: decrypted bytes the bufferevent holds before conn takes them. */
#define CONN_TLS_READ_MAX (64 * 1024)

enum conn_state {
	CS_IDLE,   /* waiting for the first byte of a request */
	CS_HEAD,   /* reading a request head */
	CS_ACTIVE, /* the request is being served (its body may follow) */
	CS_LINGER, /* closing: output drains, then shutdown, input dropped */
};

struct conn {
	uint32_t c_magic;
	enum conn_state c_state;
	struct worker *c_worker;
	int c_fd;
	struct event *c_rev; /* read, registered for the connection's life */
	struct event *c_wev; /* write, added only while the socket is full */
	struct event *c_tev; /* the deadline, and deferred work */
	struct evbuffer *c_out;
	char *c_in; /* input (NULL while idle with nothing buffered) */
	size_t c_cap, c_len;
	size_t c_pos;    /* next byte to parse */
	size_t c_start;  /* where the current request's head begins */
	size_t c_scan;   /* http1_head_scan's resume point */
	size_t c_bodyat; /* where body bytes start (after the head) */
	int c_empty;     /* empty lines skipped before this request */
	struct http1_req c_req;
	struct http1_hdr *c_hdrs;
	struct evbuffer *c_body;
	struct http1_chunked c_chunk;
	int64_t c_left;         /* Content-Length body bytes still to read */
	void (*c_gone)(void *); /* the request layer, told if c goes first */
	void *c_gone_arg;       /* NULL when no request is being served */
	int c_close;            /* close once the current response is out */
	int c_chunked_out;      /* the response body goes out as chunks */
	int c_nobody_out;       /* the response has no body (HEAD, 204, ...) */
	int c_dead;             /* the socket failed: torn down next turn */
	int c_read_off;         /* reading paused: buffer full while serving */
	int c_shut;             /* shutdown(SHUT_WR) done */
	int c_body_open;        /* the request body is still arriving */
	int c_body_paused;      /* its consumer cannot take more now */
	int c_body_err;         /* 400/413/503 when it broke off, else 0 */
	int c_body_held;        /* not asked for yet: its bytes wait unread */
	int c_body_fill;        /* being read before its consumer gets it */
	int64_t c_body_max;     /* the limit of this body (413 past it) */
	size_t c_body_charged;  /* c_body bytes counted in conn_body_total */
	void (*c_body_cb)(void *);
	void *c_body_arg;
	struct deadline c_dl; /* on c_tev */
	void (*c_drain_cb)(void *);
	void *c_drain_arg;
	char c_peer[64];
	int c_trusted;
	conn_dispatch_fn *c_dispatch;
	/* TLS: the socket's I/O goes through c_tls (NULL for plain TCP);
	 * c_rev and c_wev are then never added, only made active. */
	struct bufferevent *c_tls;
	int c_tls_eof;  /* the client closed, or the session ended */
	int c_tls_wait; /* output waits in c_tls for the socket */
	TAILQ_ENTRY(conn) c_entry;
};

/* Per worker thread: idle input buffers, and the Date header of the
 * current second. */
static __thread char *conn_cache[CONN_CACHE];
static __thread int conn_ncache;
static __thread struct http1_hdr *conn_hcache[CONN_CACHE];
static __thread int conn_nhcache;
static __thread time_t conn_date_at;
static __thread char conn_date[64];

static void conn_read_cb(evutil_socket_t, short, void *);
static void conn_write_cb(evutil_socket_t, short, void *);
static void conn_timer_cb(evutil_socket_t, short, void *);
static void conn_process(struct conn *c);
static void conn_tls_out_cb(
    struct evbuffer *, const struct evbuffer_cb_info *, void *);

/*
 * Request body bytes held in memory by every connection of the process
 * (all workers), against max_buffered_bodies.  A cap, not spooling to a
 * temporary file as nginx does: a file write blocks the worker's event
 * loop, a body may carry credentials or personal data that should not
 * reach a disk, and files left by a killed process need cleaning.  The
 * price is a 503 under a burst of large chunked uploads, which a client
 * can retry; a body with a Content-Length streams and counts only what is
 * held at a time.
 */
static size_t conn_body_total;

/* Bring conn_body_total in line with what c's body buffer holds now. */
static void
conn_body_charge(struct conn *c)
{
	size_t now = c->c_body != NULL ? evbuffer_get_length(c->c_body) : 0;

	if (now > c->c_body_charged)
		__atomic_add_fetch(&conn_body_total, now - c->c_body_charged,
		    __ATOMIC_RELAXED);
	else if (now < c->c_body_charged)
		__atomic_sub_fetch(&conn_body_total, c->c_body_charged - now,
		    __ATOMIC_RELAXED);
	c->c_body_charged = now;
}

static void
conn_body_free(struct conn *c)
{
	if (c->c_body != NULL)
		evbuffer_free(c->c_body);
	c->c_body = NULL;
	conn_body_charge(c);
}

static struct conn *
conn_cast(void *arg)
{
	return MAGIC_CAST(struct conn, c_magic, CONN_MAGIC, arg);
}

/* Set the deadline ms from now (0: none). */
static void
conn_deadline(struct conn *c, int64_t ms)
{
	deadline_set(&c->c_dl, ms);
}

/* Run the timer callback on the next loop turn (teardown, deferred
 * work); never from inside a caller's stack. */
static void
conn_defer(struct conn *c)
{
	event_active(c->c_tev, EV_TIMEOUT, 0);
}

static const char *
conn_date_get(void)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != conn_date_at) {
		gmtime_r(&now, &tm);
		strftime(conn_date, sizeof(conn_date),
		    "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		conn_date_at = now;
	}
	return conn_date;
}

static int
conn_buf_get(struct conn *c)
{
	if (c->c_in != NULL)
		return 0;
	if (conn_ncache > 0)
		c->c_in = conn_cache[--conn_ncache];
	else
		c->c_in = malloc(CONN_BUF);
	if (c->c_in == NULL)
		return -1;
	c->c_cap = CONN_BUF;
	c->c_len = c->c_pos = c->c_start = c->c_scan = 0;
	return 0;
}

static void
conn_buf_put(struct conn *c)
{
	if (c->c_in == NULL)
		return;
	if (c->c_cap == CONN_BUF && conn_ncache < CONN_CACHE)
		conn_cache[conn_ncache++] = c->c_in;
	else
		free(c->c_in);
	c->c_in = NULL;
	c->c_cap = c->c_len = c->c_pos = c->c_start = c->c_scan = 0;
}

static int
conn_hdrs_get(struct conn *c)
{
	if (c->c_hdrs != NULL)
		return 0;
	if (conn_nhcache > 0)
		c->c_hdrs = conn_hcache[--conn_nhcache];
	else
		c->c_hdrs = malloc(sizeof(*c->c_hdrs) *
		    ((size_t)c->c_worker->w_cfg->cf_max_headers + 1));
	return c->c_hdrs == NULL ? -1 : 0;
}

static void
conn_hdrs_put(struct conn *c)
{
	if (c->c_hdrs == NULL)
		return;
	if (conn_nhcache < CONN_CACHE)
		conn_hcache[conn_nhcache++] = c->c_hdrs;
	else
		free(c->c_hdrs);
	c->c_hdrs = NULL;
}

static void
conn_free(struct conn *c)
{
	struct worker *w = c->c_worker;

	TAILQ_REMOVE(&w->w_conns, c, c_entry);
	metrics_conn_add(-1);
	event_free(c->c_rev);
	event_free(c->c_wev);
	event_free(c->c_tev);
	evbuffer_free(c->c_out);
	conn_body_free(c);
	conn_buf_put(c);
	conn_hdrs_put(c);
	if (c->c_tls != NULL) {
		/* No callback of it may reach c once c is gone. */
		evbuffer_remove_cb(
		    bufferevent_get_output(c->c_tls), conn_tls_out_cb, c);
		bufferevent_setcb(c->c_tls, NULL, NULL, NULL, NULL);
		bufferevent_free(c->c_tls); /* closes the socket too */
	} else if (c->c_fd != -1)
		close(c->c_fd);
	c->c_magic = 0;
	free(c);
}

/* The connection is over.  A request still being served learns that its
 * client has gone (and frees itself) first.  Only from conn's own
 * callbacks, at their top. */
static void
conn_teardown(struct conn *c)
{
	void *arg = c->c_gone_arg;

	c->c_gone_arg = NULL;
	if (arg != NULL)
		c->c_gone(arg);
	conn_free(c);
}

/* The socket failed under a caller: stop all I/O, tear down next turn. */
static void
conn_fail(struct conn *c)
{
	if (c->c_dead)
		return;
	c->c_dead = 1;
	event_del(c->c_rev);
	event_del(c->c_wev);
	if (c->c_tls != NULL)
		bufferevent_disable(c->c_tls, EV_READ | EV_WRITE);
	evbuffer_drain(c->c_out, evbuffer_get_length(c->c_out));
	conn_defer(c);
}

/* Reading on (plain: the socket's event; TLS: the bufferevent's reading,
 * and a turn of the loop for what its input holds already, since no
 * socket event will say so). */
static void
conn_read_on(struct conn *c)
{
	if (c->c_tls == NULL) {
		event_add(c->c_rev, NULL);
		return;
	}
	bufferevent_enable(c->c_tls, EV_READ);
	if (c->c_tls_eof ||
	    evbuffer_get_length(bufferevent_get_input(c->c_tls)) > 0)
		event_active(c->c_rev, EV_READ, 0);
}

static void
conn_read_off(struct conn *c)
{
	event_del(c->c_rev);
	if (c->c_tls != NULL)
		bufferevent_disable(c->c_tls, EV_READ);
}

/* 1 while output waits for the socket to take it. */
static int
conn_write_waiting(const struct conn *c)
{
	if (c->c_tls != NULL)
		return c->c_tls_wait;
	return event_pending(c->c_wev, EV_WRITE, NULL) != 0;
}

/* TLS: decrypted bytes have come (the bufferevent's callbacks are
 * deferred to the loop, never run inside conn's own calls). */
static void
conn_tls_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_read_cb(-1, EV_READ, arg);
}

/* TLS: the output has all gone to the socket. */
static void
conn_tls_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_write_cb(-1, EV_WRITE, arg);
}

/* TLS: bytes of the output went to the socket: the client reads, so a
 * slow reader is held to idle_timeout from its last progress, as a
 * plain connection is on each write event. */
static void
conn_tls_out_cb(
    struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = conn_cast(arg);

	if (info->n_deleted > 0 && c->c_tls_wait &&
	    evbuffer_get_length(buf) > 0)
		conn_deadline(
		    c, (int64_t)c->c_worker->w_cfg->cf_idle_timeout * 1000);
}

/* TLS: the handshake is done, or the session has ended: closed by the
 * client (read as the end of input, as recv's 0 is), or failed. */
static void
conn_tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = conn_cast(arg);

	if ((what & BEV_EVENT_CONNECTED) != 0)
		return;
	c->c_tls_eof = 1;
	if ((what & BEV_EVENT_ERROR) != 0) {
		/* A failed handshake (a scanner, an old protocol, a client
		 * that does not trust the certificate) or a broken record:
		 * never more than a rate-limited debug line. */
		tls_log_failure(c->c_peer, bufferevent_get_openssl_error(bev));
		conn_fail(c);
		return;
	}
	event_active(c->c_rev, EV_READ, 0);
}

/* TLS: the session's bufferevent over fd, taking ssl. */
static int
conn_tls_open(struct conn *c, struct ssl_st *ssl)
{
	struct worker *w = c->c_worker;

	/* Deferred callbacks: a write from inside a handler may fail at
	 * once, and the failure must reach c from the loop, not from under
	 * the handler's stack. */
	c->c_tls = bufferevent_openssl_socket_new(w->w_base, c->c_fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->c_tls == NULL)
		return -1;
	/* A client closing without close_notify is the end of its input,
	 * as for HTTP over TCP; the framing says whether a body was whole. */
	bufferevent_openssl_set_allow_dirty_shutdown(c->c_tls, 1);
	bufferevent_setwatermark(c->c_tls, EV_READ, 0, CONN_TLS_READ_MAX);
	bufferevent_setcb(c->c_tls, conn_tls_read_cb, conn_tls_write_cb,
	    conn_tls_event_cb, c);
	if (evbuffer_add_cb(
	        bufferevent_get_output(c->c_tls), conn_tls_out_cb, c) == NULL ||
	    bufferevent_enable(c->c_tls, EV_READ | EV_WRITE) == -1)
		return -1;
	return 0;
}

void
conn_accept(struct worker *w, int fd, const struct sockaddr *sa,
    socklen_t salen, struct ssl_st *ssl, conn_dispatch_fn *dispatch)
{
	struct conn *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->c_magic = CONN_MAGIC;
	c->c_worker = w;
	c->c_fd = fd;
	c->c_state = CS_IDLE;
	c->c_dispatch = dispatch != NULL ? dispatch : w->w_dispatch;
	/* Over TLS the events have no socket: the bufferevent watches it,
	 * and they only carry conn's own deferred work. */
	if (ssl == NULL) {
		c->c_rev = event_new(
		    w->w_base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
		c->c_wev = event_new(
		    w->w_base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	} else {
		c->c_rev = event_new(w->w_base, -1, 0, conn_read_cb, c);
		c->c_wev = event_new(w->w_base, -1, 0, conn_write_cb, c);
	}
	c->c_tev = evtimer_new(w->w_base, conn_timer_cb, c);
	c->c_dl.dl_ev = c->c_tev;
	c->c_out = evbuffer_new();
	if (c->c_rev == NULL || c->c_wev == NULL || c->c_tev == NULL ||
	    c->c_out == NULL)
		goto fail;
	if (ssl == NULL ? event_add(c->c_rev, NULL) == -1
	                : conn_tls_open(c, ssl) == -1) {
		/* When the bufferevent could not be made (out of memory
		 * only), ssl is not freed here: libevent 2.1 frees it itself
		 * on that path, under BEV_OPT_CLOSE_ON_FREE, and a second
		 * SSL_free would be a double free. */
		if (c->c_tls == NULL)
			ssl = NULL;
		goto fail;
	}
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    c->c_peer, sizeof(c->c_peer));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, c->c_peer,
		    sizeof(c->c_peer));
	(void)salen;
	c->c_trusted = config_cidrs_contains(&w->w_cfg->cf_trusted, c->c_peer);
	TAILQ_INSERT_TAIL(&w->w_conns, c, c_entry);
	metrics_conn_add(1);
	/* A new connection has header_timeout to deliver its first head
	 * (over TLS, the handshake too). */
	conn_deadline(c, (int64_t)w->w_cfg->cf_header_timeout * 1000);
	if (w->w_draining)
		c->c_close = 1;
	return;
fail:
	if (c != NULL) {
		if (c->c_rev != NULL)
			event_free(c->c_rev);
		if (c->c_wev != NULL)
			event_free(c->c_wev);
		if (c->c_tev != NULL)
			event_free(c->c_tev);
		if (c->c_out != NULL)
			evbuffer_free(c->c_out);
		if (c->c_tls != NULL) {
			bufferevent_setcb(c->c_tls, NULL, NULL, NULL, NULL);
			bufferevent_free(c->c_tls); /* closes fd, frees ssl */
			free(c);
			return;
		}
		free(c);
	}
	SSL_free(ssl);
	close(fd);
}

int
conn_tls(const struct conn *c)
{
	return c->c_tls != NULL;
}

struct worker *
conn_worker(const struct conn *c)
{
	return c->c_worker;
}

void
conn_attach(struct conn *c, void (*gone)(void *), void *arg)
{
	c->c_gone = gone;
	c->c_gone_arg = arg;
}

const char *
conn_peer(const struct conn *c)
{
	return c->c_peer;
}

int
conn_peer_trusted(const struct conn *c)
{
	return c->c_trusted;
}

size_t
conn_pending(const struct conn *c)
{
	return evbuffer_get_length(c->c_out);
}

void
conn_on_drain(struct conn *c, void (*cb)(void *), void *arg)
{
	c->c_drain_cb = cb;
	c->c_drain_arg = arg;
}

/* TLS: hand the output to the bufferevent, which writes it as the
 * socket takes it.  1 while some of it waits there (the write callback
 * comes when it has all gone), 0 when all is out. */
static int
conn_tls_flush(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->c_tls);

	if (evbuffer_get_length(c->c_out) > 0 &&
	    bufferevent_write_buffer(c->c_tls, c->c_out) == -1) {
		conn_fail(c);
		return 1;
	}
	if (evbuffer_get_length(out) == 0) {
		c->c_tls_wait = 0;
		return 0;
	}
	if (!c->c_tls_wait) {
		c->c_tls_wait = 1;
		/* A client that stops reading is cut after idle_timeout
		 * without progress. */
		conn_deadline(
		    c, (int64_t)c->c_worker->w_cfg->cf_idle_timeout * 1000);
	}
	return 1;
}

void
conn_flush(struct conn *c)
{
	int n;

	if (c->c_dead)
		return;
	if (c->c_tls != NULL && conn_tls_flush(c) == 1)
		return;
	while (evbuffer_get_length(c->c_out) > 0) {
		n = evbuffer_write(c->c_out, c->c_fd);
		if (n > 0)
			continue;
		if (n == -1 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK ||
		        errno == EINTR)) {
			if (!event_pending(c->c_wev, EV_WRITE, NULL)) {
				event_add(c->c_wev, NULL);
				/* A client that stops reading is cut after
				 * idle_timeout without progress. */
				conn_deadline(c,
				    (int64_t)c->c_worker->w_cfg
				            ->cf_idle_timeout *
				        1000);
			}
			return;
		}
		conn_fail(c);
		return;
	}
	if (event_pending(c->c_wev, EV_WRITE, NULL))
		event_del(c->c_wev);
	/* A consumer waits for the output to drain (a paused upstream): it
	 * drained here, outside the write callback, so that callback will not
	 * run to say so; run it on the next turn (never inside the caller's
	 * stack), or the waiter stalls until idle_timeout. */
	if (c->c_drain_cb != NULL)
		event_active(c->c_wev, EV_WRITE, 0);
	if (c->c_state == CS_LINGER && !c->c_shut) {
		/* Everything is out: half-close, and read until the client
		 * closes too (or the linger deadline), so what it still sends
		 * does not turn our close into a reset that destroys the
		 * response before it is read.  TLS says its close_notify
		 * first, so the client knows the end is not a cut. */
		if (c->c_tls != NULL) {
			(void)SSL_shutdown(
			    bufferevent_openssl_get_ssl(c->c_tls));
			ERR_clear_error();
		}
		shutdown(c->c_fd, SHUT_WR);
		c->c_shut = 1;
		conn_deadline(c, CONN_LINGER_MS);
	}
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = conn_cast(arg);
	void (*cb)(void *);

	(void)fd;
	(void)what;
	conn_flush(c);
	if (c->c_dead)
		return;
	/* Progress: the client reads.  Still blocked: idle_timeout from
	 * now; drained while serving: no client deadline. */
	if (conn_write_waiting(c))
		conn_deadline(
		    c, (int64_t)c->c_worker->w_cfg->cf_idle_timeout * 1000);
	else if (c->c_state == CS_ACTIVE)
		conn_deadline(c, 0);
	if (c->c_drain_cb != NULL &&
	    evbuffer_get_length(c->c_out) <= CONN_LOW_WATER) {
		cb = c->c_drain_cb;
		c->c_drain_cb = NULL;
		cb(c->c_drain_arg);
	}
}

/* Close now, unless output is still queued: then linger. */
static void
conn_close_soon(struct conn *c)
{
	c->c_state = CS_LINGER;
	c->c_close = 1;
	/* Read (and drop) what the client still sends, a body left unread
	 * too: unread bytes at close() turn it into a reset that can destroy
	 * the response before the client reads it. */
	if (c->c_read_off && !c->c_dead) {
		c->c_read_off = 0;
		conn_read_on(c);
	}
	conn_flush(c);
}

/*
 * A body not (all) read when its response is complete: 1 when the rest of
 * it is in the input buffer already (*n its bytes there), so the
 * connection can go on with what follows; 0 when it is not, or broke off.
 */
int
conn_body_rest(const struct http1_req *r, int64_t left,
    const struct http1_chunked *chunk, const char *buf, size_t avail,
    int64_t max, size_t *n)
{
	struct http1_chunked ch = *chunk;
	ssize_t used;
	int done, status;

	if (!r->hr_chunked) {
		*n = (size_t)left;
		return avail >= (uint64_t)left;
	}
	used = http1_chunked_decode(&ch, buf, avail, NULL, max, &done, &status);
	*n = used > 0 ? (size_t)used : 0;
	return used != -1 && done;
}

static int
conn_body_skippable(const struct conn *c, size_t *n)
{
	if (c->c_body_err != 0 || c->c_in == NULL)
		return 0;
	return conn_body_rest(&c->c_req, c->c_left, &c->c_chunk,
	    c->c_in + c->c_pos, c->c_len - c->c_pos, c->c_body_max, n);
}

/* The current response is complete: the next request may start. */
static void
conn_finish(struct conn *c)
{
	size_t left;

	c->c_gone_arg = NULL;
	c->c_drain_cb = NULL;
	c->c_body_cb = NULL;
	if (c->c_dead)
		return;
	/* Answered before its body was all read (a redirect to sign-in, a
	 * refusal, an endpoint that takes no body): what follows on the
	 * connection is the rest of that body, not a request, unless all of
	 * it is in the buffer already. */
	if (c->c_body_open) {
		size_t n = 0;

		if (conn_body_skippable(c, &n))
			c->c_pos += n;
		else
			c->c_close = 1;
	}
	c->c_body_open = c->c_body_paused = c->c_body_err = 0;
	c->c_body_held = c->c_body_fill = 0;
	c->c_chunked_out = c->c_nobody_out = 0;
	conn_body_free(c);
	if (c->c_close || c->c_worker->w_draining) {
		conn_close_soon(c);
		return;
	}
	c->c_state = CS_IDLE;
	c->c_empty = 0;
	left = c->c_len - c->c_pos;
	if (left == 0) {
		/* Idle: give the buffers back (10,000 idle connections must
		 * not hold 10,000 of them). */
		conn_buf_put(c);
		conn_hdrs_put(c);
	} else {
		/* A pipelined request: move it to the front, and parse it on
		 * the next loop turn, not inside this response's stack. */
		memmove(c->c_in, c->c_in + c->c_pos, left);
		c->c_len = left;
		c->c_pos = c->c_start = c->c_scan = 0;
		event_active(c->c_rev, EV_READ, 0);
	}
	if (c->c_read_off) {
		c->c_read_off = 0;
		conn_read_on(c);
	}
	conn_deadline(c, (int64_t)c->c_worker->w_cfg->cf_idle_timeout * 1000);
	conn_flush(c);
}

/* Hand the parsed request (or the refusal it gets) to the request layer. */
static void
conn_dispatch(struct conn *c)
{
	c->c_state = CS_ACTIVE;
	c->c_dl.dl_at = 0;
	if (c->c_req.hr_close)
		c->c_close = 1;
	c->c_gone_arg = NULL;
	/* May answer at once (conn_respond clears c_gone_arg again). */
	c->c_dispatch(c, &c->c_req, c->c_body);
}

/* A request that cannot be read: it is answered (and logged) through
 * the request layer with status, headers unread, then the connection
 * closes. */
static void
conn_refuse(struct conn *c, int status, const char *why)
{
	c->c_req.hr_status = status;
	c->c_req.hr_why = why;
	c->c_req.hr_nhdrs = 0;
	c->c_close = 1;
	conn_dispatch(c);
}

/* Make room for body bytes after a head that filled the buffer: a larger
 * buffer, with every parsed pointer moved along. */
static int
conn_buf_room(struct conn *c, size_t want)
{
	char *nb, *old = c->c_in;
	size_t ncap;
	int i;

	if (c->c_cap - c->c_len >= want)
		return 0;
	ncap = c->c_len + want;
	nb = malloc(ncap);
	if (nb == NULL)
		return -1;
	memcpy(nb, old, c->c_len);
#define CONN_REBASE(p)                                                         \
	do {                                                                   \
		if ((p) != NULL)                                               \
			(p) = nb + ((p)-old);                                  \
	} while (0)
	CONN_REBASE(c->c_req.hr_method);
	CONN_REBASE(c->c_req.hr_target);
	CONN_REBASE(c->c_req.hr_host);
	for (i = 0; i < c->c_req.hr_nhdrs; i++) {
		CONN_REBASE(c->c_hdrs[i].hh_name);
		CONN_REBASE(c->c_hdrs[i].hh_value);
	}
#undef CONN_REBASE
	if (c->c_cap == CONN_BUF && conn_ncache < CONN_CACHE)
		conn_cache[conn_ncache++] = old;
	else
		free(old);
	c->c_in = nb;
	c->c_cap = ncap;
	return 0;
}

enum conn_next
conn_head_next(const struct http1_req *r)
{
	int body = r->hr_chunked || r->hr_length > 0;

	/* Answered without reading a body it may have: the bytes after the
	 * head cannot be trusted as the next request. */
	if (r->hr_status != 0)
		return body ? CONN_NEXT_ANSWER_CLOSE : CONN_NEXT_ANSWER;
	return body ? CONN_NEXT_BODY : CONN_NEXT_ANSWER;
}

/* The head is in: parse it and decide what comes next. */
static void
conn_head(struct conn *c, size_t hlen)
{
	const struct config *cfg = c->c_worker->w_cfg;
	struct http1_limits lim;

	if (conn_hdrs_get(c) == -1) {
		conn_close_soon(c);
		return;
	}
	lim.hl_max_target = cfg->cf_max_request_line;
	lim.hl_max_fields = cfg->cf_max_header_size;
	lim.hl_max_headers = cfg->cf_max_headers;
	lim.hl_max_body = (int64_t)cfg->cf_max_request_body;
	c->c_req.hr_hdrs = c->c_hdrs;
	c->c_req.hr_maxhdrs = cfg->cf_max_headers + 1;
	c->c_pos = c->c_start + hlen;
	if (http1_parse_request(c->c_in + c->c_start, hlen, &lim, &c->c_req) ==
	    -1) {
		conn_refuse(c, c->c_req.hr_status, c->c_req.hr_why);
		return;
	}
	switch (conn_head_next(&c->c_req)) {
	case CONN_NEXT_ANSWER_CLOSE:
		c->c_close = 1;
		conn_dispatch(c);
		return;
	case CONN_NEXT_ANSWER:
		conn_dispatch(c);
		return;
	case CONN_NEXT_BODY:
	default:
		break;
	}
	c->c_body = evbuffer_new();
	if (c->c_body == NULL || conn_buf_room(c, 4096 + 2) == -1) {
		conn_close_soon(c);
		return;
	}
	memset(&c->c_chunk, 0, sizeof(c->c_chunk));
	c->c_bodyat = c->c_pos;
	c->c_left = c->c_req.hr_length;
	c->c_body_max = (int64_t)cfg->cf_max_request_body;
	/* Access is decided on the head alone: the body stays unread (at
	 * most a buffer of it, in the input buffer) until the request is to
	 * be served with it (conn_body_read).  A client that may not pass
	 * cannot make the gateway hold its body. */
	c->c_body_open = 1;
	c->c_body_held = 1;
	conn_dispatch(c);
}

/* Take body bytes from the input buffer into c_body.  Returns 1 when the
 * body is complete, 0 for more to come, -1 when it is malformed, too
 * large, or would take the process past max_buffered_bodies (c_body_err
 * says which). */
static int
conn_body_take(struct conn *c)
{
	size_t avail = c->c_len - c->c_pos, n;
	ssize_t used;
	int done, status;

	/* Only a body read before it is forwarded is refused for the
	 * process-wide cap; one streaming to its consumer is held back by
	 * back-pressure instead (CONN_BODY_HOLD). */
	if (c->c_body_fill &&
	    __atomic_load_n(&conn_body_total, __ATOMIC_RELAXED) + avail >
	        c->c_worker->w_cfg->cf_max_buffered_bodies) {
		c->c_body_err = 503;
		return -1;
	}
	if (!c->c_req.hr_chunked) {
		n = avail < (uint64_t)c->c_left ? avail : (size_t)c->c_left;
		if (evbuffer_add(c->c_body, c->c_in + c->c_pos, n) == -1) {
			c->c_body_err = 500;
			return -1;
		}
		c->c_pos += n;
		c->c_left -= n;
		done = c->c_left == 0;
	} else {
		used = http1_chunked_decode(&c->c_chunk, c->c_in + c->c_pos,
		    avail, c->c_body, c->c_body_max, &done, &status);
		if (used == -1) {
			c->c_body_err = status;
			return -1;
		}
		c->c_pos += used;
	}
	if (done)
		return 1;
	/* Reuse the room after the head: keep only an incomplete chunk
	 * line, moved back to the start of the body area. */
	n = c->c_len - c->c_pos;
	if (n > 0 && c->c_pos > c->c_bodyat)
		memmove(c->c_in + c->c_bodyat, c->c_in + c->c_pos, n);
	c->c_pos = c->c_bodyat;
	c->c_len = c->c_bodyat + n;
	return 0;
}

/* The body is being read for its consumer (conn_body_read): up to
 * CONN_BODY_INLINE of it, or all of a chunked one (up to c_body_max), then
 * the consumer is called; what remains of a longer body with a
 * Content-Length streams to it (conn_body_consume). */
static void
conn_body_fill(struct conn *c)
{
	void (*cb)(void *);
	int rc = c->c_body_err != 0 ? -1 : conn_body_take(c);

	conn_body_charge(c);
	/* Only a body of known length streams: a chunked one is read whole
	 * (up to max_request_body) and goes on with a Content-Length, as
	 * nginx does, since many applications cannot read a chunked body,
	 * and a small body whole in memory can be sent again when a pooled
	 * upstream connection turns out stale. */
	if (rc == 0 &&
	    (c->c_req.hr_chunked ||
	        evbuffer_get_length(c->c_body) < CONN_BODY_INLINE)) {
		conn_deadline(
		    c, (int64_t)c->c_worker->w_cfg->cf_idle_timeout * 1000);
		return;
	}
	if (rc != 0) {
		c->c_body_open = 0;
		conn_deadline(c, 0);
	}
	c->c_body_fill = 0;
	cb = c->c_body_cb;
	c->c_body_cb = NULL;
	/* Last: the consumer may end the request. */
	if (cb != NULL)
		cb(c->c_body_arg);
}

int
conn_body_held(const struct conn *c)
{
	return c->c_body_held;
}

void
conn_body_read(struct conn *c, int64_t max, void (*cb)(void *), void *arg)
{
	c->c_body_held = 0;
	c->c_body_fill = 1;
	c->c_body_max = max;
	c->c_body_cb = cb;
	c->c_body_arg = arg;
	if (!c->c_req.hr_chunked && c->c_req.hr_length > max)
		c->c_body_err = 413;
	/* The client waiting for it learns now that the body is wanted;
	 * never earlier, or a request that is refused would be sent. */
	else if (c->c_req.hr_continue && c->c_req.hr_minor >= 1 &&
	    c->c_len == c->c_pos) {
		evbuffer_add(c->c_out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		conn_flush(c);
	}
	conn_deadline(c, (int64_t)c->c_worker->w_cfg->cf_idle_timeout * 1000);
	if (c->c_read_off && !c->c_dead) {
		c->c_read_off = 0;
		conn_read_on(c);
	}
	/* What has arrived is taken on the next loop turn, never inside
	 * the caller's stack. */
	if (!c->c_dead && (c->c_pos < c->c_len || c->c_body_err != 0))
		event_active(c->c_rev, EV_READ, 0);
}

/* CS_ACTIVE with the body still arriving: hand it to its consumer as it
 * comes; hold at most CONN_BODY_HOLD while the consumer is not ready. */
static void
conn_body_stream(struct conn *c)
{
	int rc = conn_body_take(c);

	conn_body_charge(c);
	if (rc != 0) {
		c->c_body_open = 0;
		conn_deadline(c, 0);
	} else
		conn_deadline(
		    c, (int64_t)c->c_worker->w_cfg->cf_idle_timeout * 1000);
	if (c->c_body_cb != NULL)
		c->c_body_cb(c->c_body_arg);
	conn_body_charge(c);
	if (c->c_body_open && !c->c_read_off &&
	    (c->c_body_paused ||
	        evbuffer_get_length(c->c_body) >= CONN_BODY_HOLD)) {
		c->c_read_off = 1;
		conn_read_off(c);
	}
}

int
conn_body_more(const struct conn *c)
{
	return c->c_body_open;
}

int
conn_body_error(const struct conn *c)
{
	return c->c_body_err;
}

void
conn_body_consume(struct conn *c, void (*cb)(void *), void *arg)
{
	c->c_body_cb = cb;
	c->c_body_arg = arg;
	if (cb != NULL &&
	    (evbuffer_get_length(c->c_body) > 0 || !c->c_body_open ||
	        c->c_body_err != 0)) {
		cb(arg);
		conn_body_charge(c);
	}
}

void
conn_body_pause(struct conn *c, int pause)
{
	c->c_body_paused = pause;
	if (!pause && c->c_read_off && c->c_body_open && !c->c_dead &&
	    evbuffer_get_length(c->c_body) < CONN_BODY_HOLD) {
		c->c_read_off = 0;
		conn_read_on(c);
		/* Bytes may wait in the input buffer already. */
		if (c->c_pos < c->c_len)
			event_active(c->c_rev, EV_READ, 0);
	}
}

/* The largest request head read before it is refused with 431: both
 * limits, and slack for the request line and field syntax. */
size_t
conn_max_head(const struct config *cfg)
{
	return cfg->cf_max_request_line + cfg->cf_max_header_size + 1024;
}

int
conn_head_limit(
    const char *head, size_t have, size_t max_request_line, size_t maxhead)
{
	/* Method (20 at most), two spaces, "HTTP/1.1" and CRLF. */
	size_t maxline = max_request_line + 40;
	const char *nl = memchr(head, '\n', have);
	size_t line = nl != NULL ? (size_t)(nl - head) : have;

	if (line > maxline)
		return 414;
	return have > maxhead ? 431 : 0;
}

size_t
conn_skip_empty(const char *buf, size_t len, int *empty)
{
	size_t n = 0;

	while (len - n >= 2 && buf[n] == '\r' && buf[n + 1] == '\n' &&
	    *empty < CONN_MAX_EMPTY) {
		n += 2;
		(*empty)++;
	}
	return n;
}

static void
conn_process(struct conn *c)
{
	const struct config *cfg = c->c_worker->w_cfg;
	size_t maxhead = conn_max_head(cfg);
	ssize_t hlen;

	while (!c->c_dead) {
		switch (c->c_state) {
		case CS_IDLE:
			/* RFC 9112 2.2: empty lines before a request are
			 * ignored (a few; not as a way to idle forever). */
			c->c_pos += conn_skip_empty(c->c_in + c->c_pos,
			    c->c_len - c->c_pos, &c->c_empty);
			if (c->c_len == c->c_pos)
				return;
			if (c->c_len - c->c_pos == 1 &&
			    c->c_in[c->c_pos] == '\r')
				return;
			c->c_start = c->c_pos;
			c->c_scan = 0;
			c->c_state = CS_HEAD;
			/* Nothing of the last request may leak into this one
			 * (its pointers were into a buffer given back). */
			memset(&c->c_req, 0, sizeof(c->c_req));
			c->c_req.hr_minor = 1;
			break;
		case CS_HEAD:
			hlen = http1_head_scan(c->c_in + c->c_start,
			    c->c_len - c->c_start, &c->c_scan);
			if (hlen == -1) {
				conn_refuse(c, 400, "a bare LF in the head");
				return;
			}
			if (hlen == 0) {
				int st = conn_head_limit(c->c_in + c->c_start,
				    c->c_len - c->c_start,
				    cfg->cf_max_request_line, maxhead);

				if (st != 0) {
					conn_refuse(c, st,
					    st == 414
					        ? "the request line is too long"
					        : "the request head is too "
					          "large");
					return;
				}
				/* The whole head must arrive within
				 * header_timeout of its first byte. */
				if (c->c_dl.dl_at == 0 ||
				    c->c_dl.dl_at - deadline_now_ms() >
				        (int64_t)cfg->cf_header_timeout * 1000)
					conn_deadline(c,
					    (int64_t)cfg->cf_header_timeout *
					        1000);
				return;
			}
			conn_head(c, (size_t)hlen);
			break;
		case CS_ACTIVE:
			/* A held body waits in the buffer, unread. */
			if (!c->c_body_open || c->c_body_held)
				return;
			if (c->c_body_fill) {
				if (c->c_len > c->c_pos || c->c_body_err != 0)
					conn_body_fill(c);
			} else if (c->c_len > c->c_pos)
				conn_body_stream(c);
			/* The buffer was full before the body was taken
			 * from it: read on, unless its consumer holds back. */
			if (!c->c_dead && c->c_state == CS_ACTIVE &&
			    c->c_read_off && c->c_body_open &&
			    !c->c_body_paused && c->c_len < c->c_cap &&
			    (c->c_body == NULL ||
			        evbuffer_get_length(c->c_body) <
			            CONN_BODY_HOLD)) {
				c->c_read_off = 0;
				conn_read_on(c);
			}
			return;
		case CS_LINGER:
		default:
			return;
		}
	}
}

/* TLS: take what the bufferevent has decrypted, as conn_recv. */
static int
conn_tls_recv(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->c_tls);
	int n;

	if (evbuffer_get_length(in) == 0)
		return c->c_tls_eof ? -1 : 0;
	n = evbuffer_remove(in, c->c_in + c->c_len, c->c_cap - c->c_len);
	if (n <= 0)
		return -1;
	c->c_len += (size_t)n;
	/* More than the buffer took, or the end behind it: no socket event
	 * will come for them. */
	if (evbuffer_get_length(in) > 0 || c->c_tls_eof)
		event_active(c->c_rev, EV_READ, 0);
	return 1;
}

/* Read what the socket has into the buffer.  Returns 1 if bytes came, 0
 * for nothing now, -1 when the peer has closed or the socket failed. */
static int
conn_recv(struct conn *c)
{
	const struct config *cfg = c->c_worker->w_cfg;
	/* Room for the largest head allowed and the start of what follows,
	 * so an over-long head is seen as such (431), not as a full buffer. */
	size_t maxhead = conn_max_head(cfg) + CONN_BUF;
	ssize_t n;
	char *nb;

	if (conn_buf_get(c) == -1)
		return -1;
	if (c->c_len == c->c_cap) {
		if ((c->c_state == CS_IDLE || c->c_state == CS_HEAD) &&
		    c->c_cap < maxhead) {
			size_t ncap =
			    c->c_cap * 2 < maxhead ? c->c_cap * 2 : maxhead;

			/* No pointer into the buffer exists before the head
			 * is parsed, so it may move. */
			nb = realloc(c->c_in, ncap);
			if (nb == NULL)
				return -1;
			c->c_in = nb;
			c->c_cap = ncap;
		} else {
			/* Serving, and the client has sent a buffer's worth
			 * ahead: wait until this response is out. */
			c->c_read_off = 1;
			conn_read_off(c);
			return 0;
		}
	}
	if (c->c_tls != NULL)
		return conn_tls_recv(c);
	n = recv(c->c_fd, c->c_in + c->c_len, c->c_cap - c->c_len, 0);
	if (n > 0) {
		c->c_len += (size_t)n;
		return 1;
	}
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0; /* an empty buffer goes back in conn_read_cb */
	return -1;
}

static void
conn_linger_read(struct conn *c)
{
	char buf[4096];
	ssize_t n;

	if (c->c_tls != NULL) {
		struct evbuffer *in = bufferevent_get_input(c->c_tls);

		evbuffer_drain(in, evbuffer_get_length(in));
		if (c->c_tls_eof)
			conn_free(c);
		return;
	}
	for (;;) {
		n = recv(c->c_fd, buf, sizeof(buf), 0);
		if (n > 0)
			continue;
		if (n == -1 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		conn_free(c);
		return;
	}
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = conn_cast(arg);
	int rc;

	(void)fd;
	(void)what;
	if (c->c_dead)
		return;
	if (c->c_state == CS_LINGER) {
		conn_linger_read(c);
		return;
	}
	rc = conn_recv(c);
	if (rc == -1) {
		/* Closed or failed: a request being served learns it. */
		conn_teardown(c);
		return;
	}
	conn_process(c);
	if (c->c_dead)
		return; /* the deferred teardown follows */
	if (c->c_state == CS_IDLE && c->c_len == c->c_pos)
		conn_buf_put(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = conn_cast(arg);

	(void)fd;
	(void)what;
	if (c->c_dead) {
		conn_teardown(c);
		return;
	}
	if (!deadline_fired(&c->c_dl))
		return;
	switch (c->c_state) {
	case CS_HEAD:
		log_info("timeout client=%s reason=\"request head not complete "
		         "within header_timeout\"",
		    c->c_peer);
		break;
	case CS_ACTIVE:
		if (c->c_body_open && !c->c_body_held) {
			log_info("timeout client=%s reason=\"request body "
			         "stalled for idle_timeout\"",
			    c->c_peer);
			break;
		}
		log_info("timeout client=%s reason=\"the client stopped "
		         "reading for idle_timeout\"",
		    c->c_peer);
		break;
	default:
		break;
	}
	conn_teardown(c);
}

/* --- responses ------------------------------------------------------- */

size_t
conn_status_line_fmt(
    char line[CONN_STATUS_LINE_MAX], int status, const char *reason)
{
	size_t rl;

	if (reason == NULL || reason[0] == '\0')
		reason = "Status";
	rl = strlen(reason);
	if (rl > CONN_STATUS_LINE_MAX - 16 || status < 100 || status > 999) {
		reason = "Status";
		rl = 6;
	}
	memcpy(line, "HTTP/1.1 ", 9);
	line[9] = (char)('0' + status / 100);
	line[10] = (char)('0' + status / 10 % 10);
	line[11] = (char)('0' + status % 10);
	line[12] = ' ';
	memcpy(line + 13, reason, rl);
	memcpy(line + 13 + rl, "\r\n", 2);
	return 15 + rl;
}

static void
conn_status_line(struct conn *c, int status, const char *reason)
{
	char line[CONN_STATUS_LINE_MAX];

	evbuffer_add(
	    c->c_out, line, conn_status_line_fmt(line, status, reason));
}

static int
conn_closing(const struct conn *c, int close)
{
	size_t n;

	/* A body still arriving when the answer goes out: the connection
	 * cannot carry another request after it. */
	return close || c->c_close ||
	    (c->c_body_open && !conn_body_skippable(c, &n)) ||
	    c->c_worker->w_draining;
}

const char *
conn_connection_field(int close, int minor)
{
	if (close)
		return "Connection: close\r\n";
	/* Keep-alive is 1.1's default, and must be said to a 1.0 client. */
	return minor == 0 ? "Connection: keep-alive\r\n" : "";
}

/* Connection and Date, the empty line. */
static void
conn_head_tail(struct conn *c, int has_date, int close)
{
	if (!has_date) {
		const char *d = conn_date_get();

		evbuffer_add(c->c_out, d, strlen(d));
	}
	const char *field;

	if (conn_closing(c, close))
		c->c_close = 1;
	field = conn_connection_field(c->c_close, c->c_req.hr_minor);
	evbuffer_add(c->c_out, field, strlen(field));
	evbuffer_add(c->c_out, "\r\n", 2);
}

int
conn_field_own(const char *name)
{
	return strcasecmp(name, "Connection") == 0 ||
	    strcasecmp(name, "Content-Length") == 0 ||
	    strcasecmp(name, "Transfer-Encoding") == 0 ||
	    strcasecmp(name, "Date") == 0;
}

int
conn_status_has_length(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

void
conn_respond(struct conn *c, int status, const char *reason,
    const struct resp_hdrs *hdrs, struct evbuffer *body, int close)
{
	const struct resp_hdr *h;
	size_t blen = body != NULL ? evbuffer_get_length(body) : 0;
	int head = c->c_req.hr_method != NULL &&
	    strcmp(c->c_req.hr_method, "HEAD") == 0;
	char cl[48];
	size_t i;
	int n;

	conn_status_line(c, status, reason);
	for (i = 0; hdrs != NULL && i < hdrs->rh_n; i++) {
		h = &hdrs->rh_v[i];
		if (conn_field_own(h->rh_name))
			continue;
		evbuffer_add(c->c_out, h->rh_name, h->rh_nlen);
		evbuffer_add(c->c_out, ": ", 2);
		evbuffer_add(c->c_out, h->rh_value, h->rh_vlen);
		evbuffer_add(c->c_out, "\r\n", 2);
	}
	if (conn_status_has_length(status)) {
		n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", blen);
		evbuffer_add(c->c_out, cl, (size_t)n);
	}
	conn_head_tail(c, 0, close);
	if (blen > 0 && !head)
		evbuffer_add_buffer(c->c_out, body);
	conn_finish(c);
}

struct evbuffer *
conn_head_begin(struct conn *c, int status, const char *reason)
{
	conn_status_line(c, status, reason);
	return c->c_out;
}

void
conn_head_end(struct conn *c, enum conn_body framing, int has_date, int close)
{
	c->c_nobody_out = framing == CONN_BODY_NONE;
	if (framing == CONN_BODY_STREAM) {
		if (c->c_req.hr_minor >= 1) {
			evbuffer_add(
			    c->c_out, "Transfer-Encoding: chunked\r\n", 28);
			c->c_chunked_out = 1;
		} else
			close = 1; /* the close marks the end for 1.0 */
	}
	conn_head_tail(c, has_date, close);
}

void
conn_body(struct conn *c, struct evbuffer *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char sz[24], *p = sz + sizeof(sz);
	size_t v = n;

	if (c->c_nobody_out || c->c_dead || n == 0) {
		evbuffer_drain(src, n);
		return;
	}
	if (c->c_chunked_out) {
		*--p = '\n';
		*--p = '\r';
		do {
			*--p = hex[v & 15];
			v >>= 4;
		} while (v != 0);
		evbuffer_add(c->c_out, p, (size_t)(sz + sizeof(sz) - p));
	}
	evbuffer_remove_buffer(src, c->c_out, n);
	if (c->c_chunked_out)
		evbuffer_add(c->c_out, "\r\n", 2);
}

void
conn_end(struct conn *c)
{
	if (c->c_chunked_out && !c->c_dead)
		evbuffer_add(c->c_out, "0\r\n\r\n", 5);
	conn_finish(c);
}

void
conn_abort(struct conn *c)
{
	c->c_gone_arg = NULL;
	c->c_drain_cb = NULL;
	c->c_body_cb = NULL;
	c->c_body_open = 0;
	conn_close_soon(c);
}

int
conn_detach(struct conn *c, struct evbuffer *out, struct evbuffer *in,
    struct bufferevent **tls)
{
	int fd = c->c_fd;

	c->c_gone_arg = NULL;
	c->c_drain_cb = NULL;
	c->c_body_cb = NULL;
	evbuffer_add_buffer(out, c->c_out);
	if (c->c_in != NULL && c->c_len > c->c_pos)
		evbuffer_add(in, c->c_in + c->c_pos, c->c_len - c->c_pos);
	*tls = c->c_tls;
	if (c->c_tls != NULL) {
		/* The TLS session goes with the socket; what it decrypted
		 * and c has not read yet follows what c had. */
		evbuffer_remove_cb(
		    bufferevent_get_output(c->c_tls), conn_tls_out_cb, c);
		bufferevent_setcb(c->c_tls, NULL, NULL, NULL, NULL);
		evbuffer_add_buffer(in, bufferevent_get_input(c->c_tls));
		c->c_tls = NULL;
	}
	c->c_fd = -1;
	conn_free(c);
	return fd;
}

void
conn_drain_all(struct worker *w)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_entry);
		c->c_close = 1;
		if (c->c_state == CS_IDLE && !c->c_dead && c->c_len == c->c_pos)
			conn_close_soon(c);
	}
}

void
conn_free_all(struct worker *w)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&w->w_conns)) != NULL) {
		void *arg = c->c_gone_arg;

		c->c_gone_arg = NULL;
		if (arg != NULL)
			c->c_gone(arg);
		conn_free(c);
	}
	while (conn_ncache > 0)
		free(conn_cache[--conn_ncache]);
	while (conn_nhcache > 0)
		free(conn_hcache[--conn_nhcache]);
}
