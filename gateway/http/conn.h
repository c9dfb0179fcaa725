/* SPDX-License-Identifier: ISC */
/*
 * conn.h: one client connection.  gatehouse's own HTTP/1.1 server side on
 * the worker's event_base: reads and parses requests strictly (http1.h),
 * reads their bodies, writes responses straight to the socket, and holds
 * each connection to its deadlines (header_timeout for a whole request
 * head, idle_timeout between requests and while a body or a response
 * stalls).  One request at a time per connection; pipelined requests wait
 * in the input buffer.  Worker-thread only: every function here must be
 * called on the thread of the connection's worker.
 */
#ifndef GATEHOUSE_CONN_H
#define GATEHOUSE_CONN_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct conn;
struct bufferevent;
struct evbuffer;
struct http1_chunked;
struct http1_req;
struct resp_hdrs;
struct ssl_st;
struct worker;

/* How a streamed response's body is framed towards the client. */
enum conn_body {
	CONN_BODY_NONE,   /* no body follows (HEAD, 204, 304, length 0) */
	CONN_BODY_LENGTH, /* the caller wrote Content-Length; that many bytes */
	CONN_BODY_STREAM, /* unknown length: chunked to 1.1, close for 1.0 */
};

/* What serves a connection's requests (worker.h's w_dispatch). */
typedef void conn_dispatch_fn(
    struct conn *c, struct http1_req *req, struct evbuffer *body);

/*
 * Take over an accepted socket `fd` (non-blocking) of worker w, peer
 * address sa.  With ssl (taken, even on failure; NULL for plain TCP) the
 * connection speaks TLS as the server: the handshake comes first, within
 * header_timeout like a request head, and everything above this layer is
 * the same.  dispatch serves its requests (NULL: the worker's).  The
 * connection frees itself when it ends.  On failure the socket is closed.
 */
void conn_accept(struct worker *w, int fd, const struct sockaddr *sa,
    socklen_t salen, struct ssl_st *ssl, conn_dispatch_fn *dispatch);

/* 1 when c came over TLS (its requests are https). */
int conn_tls(const struct conn *c);

/* The worker c belongs to (borrowed). */
struct worker *conn_worker(const struct conn *c);

/* The request being served on c: gone(arg) runs, from the event loop, if
 * c goes away (or is freed at exit) before the response is complete. */
void conn_attach(struct conn *c, void (*gone)(void *), void *arg);

/* The peer's address as text (borrowed, lives as long as c). */
const char *conn_peer(const struct conn *c);

/* 1 if the peer is in trusted_proxies (decided once, at accept). */
int conn_peer_trusted(const struct conn *c);

/*
 * Request bodies.  A request is dispatched as soon as its head is parsed,
 * its body unread (conn_body_held() 1): access is decided on the head, and
 * a request answered without its body (a sign-in redirect, a refusal) costs
 * no more than its input buffer.  The request layer asks for the body with
 * conn_body_read once it will use it: that sends "100 Continue" when the
 * client waits for it, then reads up to 64 KiB of a body, or all of a
 * chunked one (up to max), and calls cb(arg) from the event loop: the body
 * is whole in the request's body buffer (conn_body_more() 0), or a longer
 * one with a Content-Length streams (conn_body_more() 1 until the rest is
 * in), or it broke off (conn_body_error(): 400 malformed, 413 over max,
 * 503 past max_buffered_bodies for the whole process).  A streaming
 * body's consumer registers with conn_body_consume: cb(arg) runs (from the
 * event loop, or at once when something is already there) whenever new
 * bytes are in the body buffer (the consumer drains it), when the body has
 * ended, or when it broke off.  conn_body_pause(c, 1) stops reading the
 * client (back-pressure); without a consumer at most 1 MiB is held.  A
 * response completed before the body was all read closes the connection
 * after it, unless the rest of the body is in the input buffer already.
 */
int conn_body_held(const struct conn *c);
void conn_body_read(struct conn *c, int64_t max, void (*cb)(void *), void *arg);
int conn_body_more(const struct conn *c);
int conn_body_error(const struct conn *c);
void conn_body_consume(struct conn *c, void (*cb)(void *), void *arg);
void conn_body_pause(struct conn *c, int pause);

/*
 * Send a complete response to the request being served: status, reason,
 * the header fields in hdrs (borrowed; Connection, Content-Length,
 * Transfer-Encoding and Date there are ignored: the connection writes its
 * own), and body (its bytes are moved out; NULL for none; not sent for
 * HEAD).  close: end the connection after it.  The request is over for
 * the connection once this returns; the caller frees its context.
 */
void conn_respond(struct conn *c, int status, const char *reason,
    const struct resp_hdrs *hdrs, struct evbuffer *body, int close);

/*
 * A streamed response: conn_head_begin writes the status line and returns
 * the output buffer (borrowed) for the caller to append "Name: value\r\n"
 * lines to; conn_head_end adds the framing, Date (unless has_date),
 * Connection and the empty line.  Then conn_body moves n bytes of src to
 * the client (framed as chunks where needed), and conn_end finishes the
 * response (the request is then over for the connection, as after
 * conn_respond).  Nothing is written to the socket until conn_flush, or
 * conn_end.
 */
struct evbuffer *conn_head_begin(
    struct conn *c, int status, const char *reason);
void conn_head_end(
    struct conn *c, enum conn_body framing, int has_date, int close);
void conn_body(struct conn *c, struct evbuffer *src, size_t n);
void conn_end(struct conn *c);

/* Write what is queued now (one writev when the socket takes it). */
void conn_flush(struct conn *c);

/* Bytes queued for the client and not yet taken by the socket. */
size_t conn_pending(const struct conn *c);

/*
 * Back-pressure: call cb(arg) once, from the event loop, when the queued
 * output has drained to a low-water mark.  One callback at a time; NULL
 * cancels.
 */
void conn_on_drain(struct conn *c, void (*cb)(void *), void *arg);

/*
 * Cut the response being streamed: what is queued still goes out, then
 * the connection closes without a proper end, so the client sees a
 * truncated response, never a complete-looking one.  The request is over
 * for the connection.
 */
void conn_abort(struct conn *c);

/*
 * The request being served has become a tunnel (a WebSocket after the
 * upstream's 101): c lets go of its socket and is freed, without telling
 * the request (the caller, which ends it).  What c still had to write is
 * moved to out, what the client sent after the request head to in.
 * Returns the socket, now the caller's to close; on a TLS connection *tls
 * is its session's bufferevent (the caller's to free, which closes the
 * socket), else NULL.
 */
int conn_detach(struct conn *c, struct evbuffer *out, struct evbuffer *in,
    struct bufferevent **tls);

/* SIGTERM: close w's idle connections, and every other one after its
 * current response. */
void conn_drain_all(struct worker *w);

/* At exit: free w's remaining connections (their requests are gone). */
void conn_free_all(struct worker *w);

/*
 * The decisions a connection makes on bytes and parsed heads, apart from
 * the socket (conn.c uses them; unit tests drive them directly).
 */

/*
 * Empty lines before a request (RFC 9112 2.2): the bytes of those at the
 * start of buf to skip.  *empty counts them for the request to come (from
 * 0), so that no more than a few are ever skipped, not as a way to idle.
 */
size_t conn_skip_empty(const char *buf, size_t len, int *empty);

/* The largest request head read before it is refused with 431: both
 * limits, and slack for the request line and field syntax. */
size_t conn_max_head(const struct config *cfg);

/*
 * A head not complete yet, its first `have` bytes at head: 0 while it may
 * still be, 414 (as nginx) when its request line is longer than
 * max_request_line allows, 431 when the head is over maxhead.  The line
 * is judged as soon as it is too long, not only once the whole head is.
 */
int conn_head_limit(
    const char *head, size_t have, size_t max_request_line, size_t maxhead);

/* What follows a parsed head. */
enum conn_next {
	CONN_NEXT_ANSWER,       /* no body: served at once */
	CONN_NEXT_ANSWER_CLOSE, /* refused with a body unread: then close */
	CONN_NEXT_BODY,         /* served, its body held until asked for */
};
enum conn_next conn_head_next(const struct http1_req *r);

/*
 * A body not (all) read when its response is complete, r's body with left
 * bytes of a Content-Length still to come, or chunked and decoded as far
 * as chunk (its limit max): 1 when the rest of it is in the avail bytes at
 * buf (*n of them), so the connection can go on with what follows; 0 when
 * it is not, or is malformed.
 */
int conn_body_rest(const struct http1_req *r, int64_t left,
    const struct http1_chunked *chunk, const char *buf, size_t avail,
    int64_t max, size_t *n);

/* The status line for status and reason into line; its length.  A
 * reason that is empty or too long, or a status outside 100..999,
 * becomes "Status". */
#define CONN_STATUS_LINE_MAX 160
size_t conn_status_line_fmt(
    char line[CONN_STATUS_LINE_MAX], int status, const char *reason);

/* 1 for a field the connection writes itself (Connection,
 * Content-Length, Transfer-Encoding, Date): a caller's copy is dropped. */
int conn_field_own(const char *name);

/* 1 when a complete response of this status carries Content-Length. */
int conn_status_has_length(int status);

/* The Connection line ("" for none) of a response to an HTTP/1.<minor>
 * request that closes (close 1) or keeps the connection. */
const char *conn_connection_field(int close, int minor);

#endif
