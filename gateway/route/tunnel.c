/* SPDX-License-Identifier: ISC */
/*
 * tunnel.c: a WebSocket tunnel (tunnel.h).  Each side is a bufferevent on
 * its socket; what one side reads is moved, without a copy, to the other
 * side's output.  Back-pressure: when that output holds TUNNEL_HIGH_WATER,
 * the reading side stops until it has drained to half of it, so a slow
 * reader at either end holds at most about that much in memory per
 * direction.  The frames are not parsed: the bytes are the endpoints'.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/config.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "http/conn.h"
#include "http/deadline.h"
#include "http/request.h"
#include "http/worker.h"
#include "route/tunnel.h"
#include "session/session.h"

#define TUNNEL_MAGIC 0x54554e4eu /* "TUNN" */
#define TUNNEL_HIGH_WATER (256 * 1024)

enum { TUNNEL_CLIENT, TUNNEL_UP };

struct tunnel_side {
	struct bufferevent *ts_bev;
	int ts_eof;      /* it has sent its last byte (FIN) */
	int ts_shut;     /* we have sent it our last byte: shutdown(SHUT_WR) */
	int ts_paused;   /* reading stopped: the other side is behind */
	int ts_tls;      /* a TLS session: no half-close, no raw bytes */
	uint64_t ts_got; /* bytes read from it */
};

/*
 * Where the upstream's stream of frames stands, so that gatehouse can end
 * a tunnel with a close frame of its own without cutting into one of the
 * upstream's (RFC 6455 5.2).  Only the frame heads are read.
 */
struct tunnel_frames {
	uint64_t tf_left;         /* payload bytes of the frame under way */
	unsigned char tf_hdr[14]; /* a frame head arriving in pieces */
	int tf_hlen;
};

struct tunnel {
	uint32_t t_magic;
	struct worker *t_worker;
	struct tunnel_side t_side[2];
	struct tunnel_frames t_frames; /* upstream to client */
	struct event *t_idle_ev;
	struct event *t_check_ev;
	int64_t t_last;          /* monotonic ms of the last byte either way */
	struct session *t_sess;  /* the handshake's session, or NULL */
	struct session_op *t_op; /* its re-read under way */
	struct timespec t_start;
	char t_id[33];
	char t_user[128];
	TAILQ_ENTRY(tunnel) t_entry;
};

static struct tunnel *
tunnel_cast(void *arg)
{
	return MAGIC_CAST(struct tunnel, t_magic, TUNNEL_MAGIC, arg);
}

static int
tunnel_side_of(const struct tunnel *t, const struct bufferevent *bev)
{
	return t->t_side[TUNNEL_CLIENT].ts_bev == bev ? TUNNEL_CLIENT
	                                              : TUNNEL_UP;
}

static void
tunnel_free(struct tunnel *t)
{
	int i;

	session_op_cancel(t->t_op);
	t->t_op = NULL;
	session_free(t->t_sess);
	t->t_sess = NULL;
	for (i = 0; i < 2; i++)
		if (t->t_side[i].ts_bev != NULL)
			bufferevent_free(t->t_side[i].ts_bev);
	if (t->t_idle_ev != NULL)
		event_free(t->t_idle_ev);
	if (t->t_check_ev != NULL)
		event_free(t->t_check_ev);
	t->t_magic = 0;
	free(t);
}

/* The tunnel is over: one line for the log, both sockets closed.  Its
 * count in flight goes, so a drain waiting for it ends. */
static void
tunnel_close(struct tunnel *t, const char *why)
{
	struct worker *w = t->t_worker;
	struct timespec now;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - t->t_start.tv_sec) * 1000.0 +
	    (double)(now.tv_nsec - t->t_start.tv_nsec) / 1e6;
	log_info("websocket_close id=%s%s%s%s reason=%s client_bytes=%llu "
	         "upstream_bytes=%llu ms=%.0f",
	    t->t_id, t->t_user[0] != '\0' ? " user=\"" : "", t->t_user,
	    t->t_user[0] != '\0' ? "\"" : "", why,
	    (unsigned long long)t->t_side[TUNNEL_CLIENT].ts_got,
	    (unsigned long long)t->t_side[TUNNEL_UP].ts_got, ms);
	TAILQ_REMOVE(&w->w_tunnels, t, t_entry);
	tunnel_free(t);
	metrics_conn_add(-1);
	w->w_inflight--;
	if (w->w_draining && w->w_inflight == 0)
		event_base_loopexit(w->w_base, NULL);
}

/* The length of the frame head gathered in f (2 until its second byte,
 * which says how long the head is). */
static size_t
tunnel_frames_need(const struct tunnel_frames *f)
{
	unsigned len;

	if (f->tf_hlen < 2)
		return 2;
	len = f->tf_hdr[1] & 0x7f;
	return 2 +
	    (len == 126          ? 2
	            : len == 127 ? 8
	                         : 0) +
	    ((f->tf_hdr[1] & 0x80) ? 4 : 0);
}

/* Follow the frame heads in the n bytes from the upstream at the start
 * of in (before they are passed on). */
static void
tunnel_frames_follow(struct tunnel_frames *f, struct evbuffer *in, size_t n)
{
	struct evbuffer_ptr ptr;
	size_t pos = 0, need, take;
	uint64_t len;
	int i;

	for (;;) {
		if (f->tf_left > 0) {
			if (pos == n)
				return;
			take =
			    n - pos < f->tf_left ? n - pos : (size_t)f->tf_left;
			f->tf_left -= take;
			pos += take;
			continue;
		}
		need = tunnel_frames_need(f);
		if ((size_t)f->tf_hlen < need) {
			if (pos == n)
				return;
			take = need - (size_t)f->tf_hlen;
			if (take > n - pos)
				take = n - pos;
			if (evbuffer_ptr_set(in, &ptr, pos, EVBUFFER_PTR_SET) ==
			        -1 ||
			    evbuffer_copyout_from(in, &ptr,
			        f->tf_hdr + f->tf_hlen,
			        take) != (ev_ssize_t)take)
				return;
			f->tf_hlen += (int)take;
			pos += take;
			continue;
		}
		/* A whole head: its payload follows. */
		len = f->tf_hdr[1] & 0x7f;
		if (len == 126)
			len = (uint64_t)f->tf_hdr[2] << 8 | f->tf_hdr[3];
		else if (len == 127)
			for (len = 0, i = 2; i < 10; i++)
				len = len << 8 | f->tf_hdr[i];
		f->tf_left = len;
		f->tf_hlen = 0;
	}
}

/*
 * Before the sockets close: what is queued for the client goes out if
 * the socket takes it now, and then, if the upstream's stream is between
 * frames, a close frame with code (1008 policy: the session ended; 1001
 * going away: the drain) so that the page learns why.  Never waits: a
 * client that does not take it all sees only the TCP close (1006).
 */
static void
tunnel_close_frame(struct tunnel *t, int code)
{
	struct bufferevent *bev = t->t_side[TUNNEL_CLIENT].ts_bev;
	struct evbuffer *out = bufferevent_get_output(bev);
	int fd = bufferevent_getfd(bev);
	unsigned char frame[4];

	/* Over TLS a raw write would break the session, and the bufferevent
	 * goes before it could send: the client sees the close alone. */
	if (t->t_side[TUNNEL_CLIENT].ts_shut ||
	    t->t_side[TUNNEL_CLIENT].ts_tls || fd < 0)
		return;
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, fd) <= 0)
			return;
	if (t->t_frames.tf_left != 0 || t->t_frames.tf_hlen != 0)
		return;
	frame[0] = 0x88; /* FIN, close */
	frame[1] = 2;
	frame[2] = (unsigned char)(code >> 8);
	frame[3] = (unsigned char)(code & 0xff);
	(void)send(fd, frame, sizeof(frame), MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Side i has sent its last byte: once the other side has taken all that
 * came before it, pass the half-close on.  Both directions closed: the
 * tunnel is over.  Returns 1 when t is gone. */
static int
tunnel_pass_eof(struct tunnel *t, int i)
{
	struct tunnel_side *o = &t->t_side[1 - i];

	if (t->t_side[i].ts_eof && !o->ts_shut &&
	    evbuffer_get_length(bufferevent_get_output(o->ts_bev)) == 0) {
		if (o->ts_tls) {
			/* TLS has no half-close a WebSocket client expects
			 * (close_notify ends the session): the upstream's end
			 * is the tunnel's. */
			tunnel_close(t, "closed");
			return 1;
		}
		shutdown(bufferevent_getfd(o->ts_bev), SHUT_WR);
		o->ts_shut = 1;
	}
	if (t->t_side[0].ts_shut && t->t_side[1].ts_shut) {
		tunnel_close(t, "closed");
		return 1;
	}
	return 0;
}

static void
tunnel_read_cb(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = tunnel_cast(arg);
	int i = tunnel_side_of(t, bev);
	struct bufferevent *obev = t->t_side[1 - i].ts_bev;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(obev);

	t->t_side[i].ts_got += evbuffer_get_length(in);
	t->t_last = deadline_now_ms();
	if (i == TUNNEL_UP)
		tunnel_frames_follow(&t->t_frames, in, evbuffer_get_length(in));
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= TUNNEL_HIGH_WATER) {
		/* The other side is behind: stop reading this one until
		 * its output has drained to half (tunnel_write_cb). */
		bufferevent_disable(bev, EV_READ);
		t->t_side[i].ts_paused = 1;
		bufferevent_setwatermark(
		    obev, EV_WRITE, TUNNEL_HIGH_WATER / 2, 0);
	}
}

/* Side o's output has drained to its low-water mark. */
static void
tunnel_write_cb(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = tunnel_cast(arg);
	int o = tunnel_side_of(t, bev), i = 1 - o;

	t->t_last = deadline_now_ms();
	if (t->t_side[i].ts_paused) {
		t->t_side[i].ts_paused = 0;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (!t->t_side[i].ts_eof)
			bufferevent_enable(t->t_side[i].ts_bev, EV_READ);
	}
	(void)tunnel_pass_eof(t, i);
}

static void
tunnel_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel *t = tunnel_cast(arg);
	int i = tunnel_side_of(t, bev);

	if (what & BEV_EVENT_EOF) {
		/* A half-close: what this side sent still goes to the other,
		 * then the other learns it too; the other direction goes on
		 * until it closes as well (or idles out). */
		t->t_side[i].ts_eof = 1;
		bufferevent_disable(bev, EV_READ);
		(void)tunnel_pass_eof(t, i);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		tunnel_close(
		    t, i == TUNNEL_CLIENT ? "client_error" : "upstream_error");
}

static void
tunnel_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = tunnel_cast(arg);
	int64_t idle = (int64_t)t->t_worker->w_cfg->cf_ws_idle_timeout * 1000;
	int64_t left = t->t_last + idle - deadline_now_ms();
	struct timeval tv;

	(void)fd;
	(void)what;
	if (left <= 0) {
		tunnel_close(t, "idle");
		return;
	}
	/* Bytes flowed since it was armed: wait for what is left. */
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	evtimer_add(t->t_idle_ev, &tv);
}

static void
tunnel_session_done(void *arg, enum session_result r)
{
	struct tunnel *t = tunnel_cast(arg);

	t->t_op = NULL;
	if (r == SESSION_OK)
		return;
	session_free(t->t_sess);
	t->t_sess = NULL;
	/* Security: the session this tunnel was opened with has ended
	 * (sign-out, revocation, expiry): the tunnel ends with it.  A store
	 * that cannot say ends it too, as it would refuse a request. */
	tunnel_close_frame(t, 1008);
	tunnel_close(
	    t, r == SESSION_NONE ? "session_ended" : "session_unavailable");
}

static void
tunnel_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = tunnel_cast(arg);
	const struct config *cfg = t->t_worker->w_cfg;
	enum session_result r;

	(void)fd;
	(void)what;
	if (t->t_sess == NULL || t->t_op != NULL)
		return;
	r = session_reload_start(t->t_worker->w_reader, t->t_sess, time(NULL),
	    cfg, tunnel_session_done, t, &t->t_op);
	if (r != SESSION_PENDING)
		tunnel_session_done(t, r); /* last: it may free t */
}

/* The bufferevent of one side (bev: the client's TLS session, taken;
 * else a new one over fd), with what it must send first. */
static struct bufferevent *
tunnel_side_open(
    struct tunnel *t, int fd, struct bufferevent *bev, struct evbuffer *first)
{
	if (bev == NULL)
		bev = bufferevent_socket_new(
		    t->t_worker->w_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return NULL;
	}
	bufferevent_setcb(
	    bev, tunnel_read_cb, tunnel_write_cb, tunnel_event_cb, t);
	bufferevent_setwatermark(bev, EV_READ, 0, TUNNEL_HIGH_WATER);
	if (first != NULL && evbuffer_get_length(first) > 0)
		evbuffer_add_buffer(bufferevent_get_output(bev), first);
	return bev;
}

/* The timers: idleness, and the session's re-read when there is one. */
static int
tunnel_timers(struct tunnel *t)
{
	const struct config *cfg = t->t_worker->w_cfg;
	struct timeval tv;

	t->t_idle_ev = evtimer_new(t->t_worker->w_base, tunnel_idle_cb, t);
	if (t->t_idle_ev == NULL)
		return -1;
	tv.tv_sec = cfg->cf_ws_idle_timeout;
	tv.tv_usec = 0;
	evtimer_add(t->t_idle_ev, &tv);
	if (t->t_sess == NULL)
		return 0;
	t->t_check_ev =
	    event_new(t->t_worker->w_base, -1, EV_PERSIST, tunnel_check_cb, t);
	if (t->t_check_ev == NULL)
		return -1;
	tv.tv_sec = cfg->cf_ws_session_check;
	return event_add(t->t_check_ev, &tv);
}

int
tunnel_start(struct request_ctx *rq, int upfd, struct evbuffer *upin)
{
	struct worker *w = rq->rq_worker;
	struct bufferevent *ctls = NULL;
	struct evbuffer *cout, *cin;
	struct tunnel *t;
	int cfd, rc = -1;

	cout = evbuffer_new();
	cin = evbuffer_new();
	t = calloc(1, sizeof(*t));
	if (cout == NULL || cin == NULL || t == NULL) {
		/* The request answers the client (a 502 page): nothing of the
		 * client connection is taken. */
		close(upfd);
		goto done;
	}
	t->t_magic = TUNNEL_MAGIC;
	t->t_worker = w;
	/* From here on the client connection is the tunnel's. */
	cfd = conn_detach(rq->rq_conn, cout, cin, &ctls);
	rq->rq_conn = NULL;
	t->t_side[TUNNEL_CLIENT].ts_tls = ctls != NULL;
	t->t_side[TUNNEL_CLIENT].ts_bev = tunnel_side_open(t, cfd, ctls, cout);
	/* The upstream's bytes after its head follow the 101 to the client;
	 * the client's after its handshake go to the upstream. */
	if (t->t_side[TUNNEL_CLIENT].ts_bev != NULL)
		evbuffer_add_buffer(
		    bufferevent_get_output(t->t_side[TUNNEL_CLIENT].ts_bev),
		    upin);
	t->t_side[TUNNEL_UP].ts_bev = tunnel_side_open(t, upfd, NULL, cin);
	t->t_sess = rq->rq_session;
	rq->rq_session = NULL;
	memcpy(t->t_id, rq->rq_id, sizeof(t->t_id));
	log_sanitize(t->t_user, sizeof(t->t_user), rq->rq_user);
	clock_gettime(CLOCK_MONOTONIC, &t->t_start);
	t->t_last = deadline_now_ms();
	TAILQ_INSERT_TAIL(&w->w_tunnels, t, t_entry);
	metrics_conn_add(1);
	w->w_inflight++;
	if (t->t_side[TUNNEL_CLIENT].ts_bev == NULL ||
	    t->t_side[TUNNEL_UP].ts_bev == NULL || tunnel_timers(t) == -1 ||
	    bufferevent_enable(
	        t->t_side[TUNNEL_CLIENT].ts_bev, EV_READ | EV_WRITE) == -1 ||
	    bufferevent_enable(
	        t->t_side[TUNNEL_UP].ts_bev, EV_READ | EV_WRITE) == -1) {
		tunnel_close(t, "out_of_memory");
		t = NULL;
		rc = 0; /* the client connection is gone: nothing to answer */
		goto done;
	}
	t = NULL;
	rc = 0;
done:
	if (t != NULL)
		free(t);
	if (cout != NULL)
		evbuffer_free(cout);
	if (cin != NULL)
		evbuffer_free(cin);
	return rc;
}

void
tunnel_close_all(struct worker *w, const char *why)
{
	struct tunnel *t;

	while ((t = TAILQ_FIRST(&w->w_tunnels)) != NULL) {
		tunnel_close_frame(t, 1001);
		tunnel_close(t, why);
	}
}
