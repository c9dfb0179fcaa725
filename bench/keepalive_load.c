/* SPDX-License-Identifier: ISC */
/*
 * keepalive_load.c: many keep-alive clients, few of them active at once,
 * the shape of real browsers (make bench; wrk keeps every connection it
 * opens busy, so it cannot make this load).
 *
 *   keepalive_load PORT PATH CONNS ACTIVE SECONDS [HEADER...]
 *
 * 1. Opens CONNS connections to 127.0.0.1:PORT (500 connects in flight at
 *    most) and makes one GET PATH on each (ACTIVE in flight at most), so
 *    every connection has been served once and is idle.  Prints "READY"
 *    and waits for a line on stdin (the caller reads the target's CPU
 *    time between the two).
 * 2. For SECONDS: exactly ACTIVE requests in flight, each on its own
 *    connection.  When a response is complete its connection goes to the
 *    back of the idle queue and the connection at the front (the one idle
 *    longest, (CONNS - ACTIVE) / rate seconds) sends the next request: a
 *    closed loop in which every request wakes an idle connection, as a
 *    browser's next click does.  A connection the server closed while
 *    idle is reconnected and the request sent again ("reconnects"; its
 *    latency includes the new connect), as a browser would.
 * 3. Prints one JSON object: requests completed in phase 2, rps, p50 and
 *    p99 latency in ms (from send to the response's last byte, over
 *    phase 2's requests), non-2xx responses, errors (a connection that
 *    failed or closed mid-response), reconnects, the connections open at
 *    the end, and how long phase 1 took.
 *
 * Responses must carry Content-Length (those of the bench's upstream do,
 * through every proxy); anything else counts as an error.  One thread,
 * epoll, level-triggered; pinned by the caller.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum { C_CONNECTING, C_IDLE, C_BUSY };

struct conn {
	int fd;
	int state;
	size_t got;      /* bytes of the response so far */
	long need;       /* total response bytes once the head is in, or -1 */
	int status;
	uint32_t ev;     /* the epoll events registered */
	double sent;     /* when the request was first sent; 0: none; -1: a
	                  * connection made again after an error, idle */
	int next;        /* idle queue link */
	int in_queue;
	char buf[1024];  /* the response head (the body is counted only) */
};

static struct conn *conns;
static int nconns, epfd, qhead = -1, qtail = -1;
static char *req;
static size_t reqlen;
static struct sockaddr_in addr;
static long long done, non2xx, errors, reconnects;
static int measuring, inflight;
/* Latency histogram: 10 us buckets up to 10 s, the rest in the last. */
#define HBUCKETS 1000000
static unsigned *hist;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
q_push(int i)
{
	conns[i].next = -1;
	conns[i].in_queue = 1;
	if (qtail >= 0)
		conns[qtail].next = i;
	else
		qhead = i;
	qtail = i;
}

static int
q_pop(void)
{
	int i = qhead;

	if (i < 0)
		return -1;
	qhead = conns[i].next;
	if (qhead < 0)
		qtail = -1;
	conns[i].in_queue = 0;
	return i;
}

static void
conn_events(int i, uint32_t events)
{
	struct epoll_event ev;

	if (conns[i].ev == events)
		return;
	ev.events = events;
	ev.data.u32 = (uint32_t)i;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, conns[i].fd, &ev) < 0)
		die("epoll_ctl mod");
	conns[i].ev = events;
}

/* A connection's socket is gone (closed by the server while idle, or
 * after an error): forget it. */
static void
conn_drop(int i)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, conns[i].fd, NULL);
	close(conns[i].fd);
	conns[i].fd = -1;
}

static void
conn_open(int i)
{
	struct epoll_event ev;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* From 127.0.0.1-127.0.0.16 in turn (the port is still chosen at
	 * connect): 20,000 connections, and the TIME_WAIT sockets of earlier
	 * runs, would crowd one address's ephemeral ports, and the kernel's
	 * search for a free one then costs more than the benchmark. */
	{
		struct sockaddr_in src;

		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(i % 16));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			die("bind");
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 &&
	    errno != EINPROGRESS)
		die("connect");
	conns[i].fd = fd;
	conns[i].state = C_CONNECTING;
	conns[i].ev = EPOLLOUT;
	ev.events = EPOLLOUT;
	ev.data.u32 = (uint32_t)i;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl add");
}

static void
conn_send(int i)
{
	struct conn *c = &conns[i];
	ssize_t n;

	c->got = 0;
	c->need = -1;
	c->status = 0;
	n = send(c->fd, req, reqlen, MSG_NOSIGNAL);
	if (n != (ssize_t)reqlen) {
		/* Closed while idle, unseen until now (or the request did not
		 * fit, which a fresh socket's buffer never refuses): connect
		 * again, the request waiting. */
		conn_drop(i);
		reconnects++;
		conn_open(i);
		return;
	}
	c->state = C_BUSY;
	conn_events(i, EPOLLIN);
}

/* Start the request of the connection idle longest; one the server
 * closed meanwhile connects again first, as a browser's would. */
static void
start_next(void)
{
	int i = q_pop();

	if (i < 0)
		return;
	conns[i].sent = now();
	inflight++;
	if (conns[i].fd < 0) {
		reconnects++;
		conn_open(i);
		return;
	}
	conn_send(i);
}

static void
finished(int i, int ok)
{
	struct conn *c = &conns[i];
	double lat = now() - c->sent;
	long b;

	inflight--;
	c->state = C_IDLE;
	c->sent = 0;
	if (!ok) {
		errors++;
		conn_drop(i);
		q_push(i);
		return;
	}
	if (measuring) {
		done++;
		if (c->status < 200 || c->status > 299)
			non2xx++;
		b = (long)(lat * 1e5);
		hist[b < HBUCKETS ? b : HBUCKETS - 1]++;
	}
	q_push(i);
}

/* Parse what the head needs: status and Content-Length. */
static int
head_parse(struct conn *c)
{
	char *end, *p, *line;
	long len = -1;

	c->buf[c->got < sizeof(c->buf) ? c->got : sizeof(c->buf) - 1] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (end == NULL)
		return c->got >= sizeof(c->buf) - 1 ? -1 : 0;
	if (strncmp(c->buf, "HTTP/1.1 ", 9) != 0)
		return -1;
	c->status = atoi(c->buf + 9);
	for (line = strstr(c->buf, "\r\n"); line != NULL && line < end;
	     line = strstr(line + 2, "\r\n")) {
		p = line + 2;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			len = strtol(p + 15, NULL, 10);
	}
	if (len < 0)
		return -1;
	c->need = (long)(end + 4 - c->buf) + len;
	return 1;
}

static void
on_event(int i, uint32_t events)
{
	struct conn *c = &conns[i];
	char tmp[65536];
	ssize_t n;
	int err = 0;
	socklen_t el = sizeof(err);

	if (c->state == C_CONNECTING) {
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
			fprintf(stderr, "keepalive_load: connect: %s\n",
			    strerror(err != 0 ? err : ECONNRESET));
			exit(1);
		}
		if (c->sent > 0) {
			/* A reconnect with its request waiting. */
			conn_send(i);
			return;
		}
		/* Phase 1: connected, idle until its first request. */
		c->state = C_IDLE;
		conn_events(i, EPOLLIN);
		q_push(i);
		return;
	}
	if (c->state == C_IDLE) {
		/* Readable while idle: the server closed it (kept in the
		 * queue, connected again when its turn comes), or sent
		 * what no request asked for (an error). */
		n = recv(c->fd, tmp, sizeof(tmp), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n > 0)
			errors++;
		conn_drop(i);
		return;
	}
	for (;;) {
		size_t room = c->need < 0 ? sizeof(c->buf) - 1 - c->got : 0;

		n = room > 0 ? recv(c->fd, c->buf + c->got, room, 0)
		             : recv(c->fd, tmp, sizeof(tmp), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			if (c->got == 0) {
				/* Closed while idle, seen only now: the
				 * request was not taken; connect again. */
				conn_drop(i);
				reconnects++;
				conn_open(i);
				return;
			}
			finished(i, 0);
			return;
		}
		if (n < 0)
			return;
		c->got += (size_t)n;
		if (c->need < 0) {
			int h = head_parse(c);

			if (h < 0) {
				finished(i, 0);
				return;
			}
		}
		if (c->need >= 0 && (long)c->got >= c->need) {
			if ((long)c->got > c->need) {
				finished(i, 0);
				return;
			}
			finished(i, 1);
			return;
		}
	}
}

/* Reset every connection rather than close it: a close would leave
 * CONNS sockets in TIME_WAIT on this side for a minute, holding ephemeral
 * ports the next target's run needs. */
static void
close_all(void)
{
	struct linger lg = {1, 0};
	int k;

	for (k = 0; k < nconns; k++)
		if (conns[k].fd >= 0) {
			setsockopt(conns[k].fd, SOL_SOCKET, SO_LINGER, &lg,
			    sizeof(lg));
			close(conns[k].fd);
			conns[k].fd = -1;
		}
}

int
main(int argc, char **argv)
{
	int port, active, seconds, i, opened = 0, k;
	double t0, setup, tend;
	long long total = 0, acc = 0, p50 = -1, p99 = -1;
	size_t cap;
	char line[16];
	struct rlimit rl;

	if (argc < 6) {
		fprintf(stderr, "usage: keepalive_load PORT PATH CONNS ACTIVE "
		                "SECONDS [HEADER...]\n");
		return 2;
	}
	port = atoi(argv[1]);
	nconns = atoi(argv[3]);
	active = atoi(argv[4]);
	seconds = atoi(argv[5]);
	if (nconns < 1 || active < 1 || active > nconns || seconds < 1)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)nconns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	cap = strlen(argv[2]) + 256;
	for (i = 6; i < argc; i++)
		cap += strlen(argv[i]) + 2;
	req = malloc(cap);
	hist = calloc(HBUCKETS, sizeof(*hist));
	conns = calloc((size_t)nconns, sizeof(*conns));
	if (req == NULL || hist == NULL || conns == NULL)
		die("malloc");
	reqlen = (size_t)snprintf(req, cap,
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", argv[2], port);
	for (i = 6; i < argc; i++)
		reqlen += (size_t)snprintf(req + reqlen, cap - reqlen, "%s\r\n",
		    argv[i]);
	reqlen += (size_t)snprintf(req + reqlen, cap - reqlen, "\r\n");
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");

	/* Phase 1: connect (500 at a time), one request each. */
	t0 = now();
	while (opened < nconns) {
		int batch = nconns - opened < 500 ? nconns - opened : 500;
		int pending = batch;

		for (k = 0; k < batch; k++)
			conn_open(opened + k);
		/* Wait until the whole batch is connected. */
		while (pending > 0) {
			struct epoll_event evs[256];
			int n = epoll_wait(epfd, evs, 256, 10000), j;

			if (n <= 0)
				die("connect timeout");
			for (j = 0; j < n; j++)
				on_event((int)evs[j].data.u32, evs[j].events);
			for (j = 0, pending = 0; j < batch; j++)
				pending += conns[opened + j].state ==
				    C_CONNECTING;
		}
		opened += batch;
	}
	/* One request on each, ACTIVE in flight at most. */
	for (k = 0; k < nconns; k++) {
		while (inflight >= active) {
			struct epoll_event evs[256];
			int n = epoll_wait(epfd, evs, 256, 10000), j;

			if (n <= 0)
				die("phase 1 response timeout");
			for (j = 0; j < n; j++)
				on_event((int)evs[j].data.u32, evs[j].events);
		}
		start_next();
	}
	while (inflight > 0) {
		struct epoll_event evs[256];
		int n = epoll_wait(epfd, evs, 256, 10000), j;

		if (n <= 0)
			die("phase 1 response timeout");
		for (j = 0; j < n; j++)
			on_event((int)evs[j].data.u32, evs[j].events);
	}
	setup = now() - t0;
	if (errors > 0) {
		fprintf(stderr, "keepalive_load: %lld errors in phase 1\n",
		    errors);
		close_all();
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		close_all();
		return 1;
	}

	/* Phase 2: ACTIVE in flight, each on the connection idle longest. */
	measuring = 1;
	reconnects = 0;
	t0 = now();
	tend = t0 + seconds;
	for (k = 0; k < active; k++)
		start_next();
	while (now() < tend) {
		struct epoll_event evs[256];
		int n = epoll_wait(epfd, evs, 256, 100), j;

		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (j = 0; j < n; j++)
			on_event((int)evs[j].data.u32, evs[j].events);
		while (inflight < active && qhead >= 0)
			start_next();
	}
	tend = now() - t0;
	for (k = 0; k < HBUCKETS; k++)
		total += hist[k];
	for (k = 0; k < HBUCKETS; k++) {
		acc += hist[k];
		if (p50 < 0 && acc * 2 >= total)
			p50 = k;
		if (p99 < 0 && acc * 100 >= total * 99) {
			p99 = k;
			break;
		}
	}
	for (k = 0, i = 0; k < nconns; k++)
		i += conns[k].fd >= 0;
	printf("{\"requests\": %lld, \"rps\": %.1f, \"p50\": %.3f, "
	       "\"p99\": %.3f, \"non2xx\": %lld, \"errors\": %lld, "
	       "\"reconnects\": %lld, \"open\": %d, \"conns\": %d, "
	       "\"active\": %d, \"setup_s\": %.2f}\n",
	    done, (double)done / tend, (double)p50 / 100.0,
	    (double)p99 / 100.0, non2xx, errors, reconnects, i, nconns, active,
	    setup);
	fflush(stdout);
	close_all();
	return 0;
}
