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

struct conn;
struct evbuffer;
struct resp_hdrs;
struct worker;

/* How a streamed response's body is framed towards the client. */
enum conn_body {
	CONN_BODY_NONE,   /* no body follows (HEAD, 204, 304, length 0) */
	CONN_BODY_LENGTH, /* the caller wrote Content-Length; that many bytes */
	CONN_BODY_STREAM, /* unknown length: chunked to 1.1, close for 1.0 */
};

/*
 * Take over an accepted socket `fd` (non-blocking) of worker w, peer
 * address sa.  The connection frees itself when it ends.  On failure the
 * socket is closed.
 */
void conn_accept(
    struct worker *w, int fd, const struct sockaddr *sa, socklen_t salen);

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

/* SIGTERM: close w's idle connections, and every other one after its
 * current response. */
void conn_drain_all(struct worker *w);

/* At exit: free w's remaining connections (their requests are gone). */
void conn_free_all(struct worker *w);

#endif
