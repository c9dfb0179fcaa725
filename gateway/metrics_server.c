/* SPDX-License-Identifier: ISC */
/*
 * metrics_server.c: the Prometheus listener.  A port of its own, so the
 * proxy's clients never reach it, served on worker 0's event loop by a
 * small strict handler: one GET /metrics per connection, the head read
 * whole (at most METRICS_SERVER_MAX_HEAD bytes) within
 * METRICS_SERVER_TIMEOUT seconds, then the answer and the close (a
 * lingering one: the rest of what the client sends is read and dropped
 * until it closes or the deadline comes).  Even an
 * internal port gets hostile input: anything else is a 400, 404, 405 or
 * 431, and at most METRICS_SERVER_MAX_CONNS connections are open at once.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/config.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "metrics_server.h"
#include "policy.h"
#include "route/router.h"
#include "session/session.h"

#define METRICS_SERVER_MAGIC 0x4d455452u /* "METR" */
#define METRICS_SERVER_MAX_CONNS 16
#define METRICS_SERVER_MAX_HEAD 8192
#define METRICS_SERVER_TIMEOUT 10 /* seconds, from accept to the close */

static int metrics_server_parse_listen(struct config *,
    const struct config_key *, const char *, int, const char **);

static const struct config_key metrics_server_keys[] = {
    {"metrics_listen", metrics_server_parse_listen, 0, NULL,
        "Address and port of the Prometheus /metrics listener "
        "(host:port, e.g. 127.0.0.1:9090), apart from listen; off by "
        "default.",
        0},
};

static int
metrics_server_parse_listen(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	const char *colon;
	unsigned char addr[16];
	char *host = NULL, *ep;
	long port;

	(void)key;
	(void)line;
	free(cfg->cf_metrics_host);
	cfg->cf_metrics_host = NULL;
	if (strcmp(value, "off") == 0)
		return 0;
	if (value[0] == '[') {
		colon = strstr(value, "]:");
		if (colon != NULL)
			host = strndup(value + 1, colon - value - 1);
		colon = colon != NULL ? colon + 1 : NULL;
	} else {
		colon = strrchr(value, ':');
		if (colon != NULL && colon != value)
			host = strndup(value, colon - value);
	}
	if (host == NULL) {
		*errstr = "expected host:port, [v6addr]:port or off";
		return -1;
	}
	port = strtol(colon + 1, &ep, 10);
	if (colon[1] == '\0' || *ep != '\0' || port < 1 || port > 65535) {
		free(host);
		*errstr = "expected host:port with a port from 1 to 65535";
		return -1;
	}
	if (strcmp(host, "*") == 0) {
		free(host);
		host = strdup("0.0.0.0");
	} else if (inet_pton(AF_INET, host, addr) != 1 &&
	    inet_pton(AF_INET6, host, addr) != 1 &&
	    strcmp(host, "localhost") != 0) {
		free(host);
		*errstr = "the host must be an IPv4 or IPv6 address, localhost "
		          "or *";
		return -1;
	}
	if (host == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	cfg->cf_metrics_host = host;
	cfg->cf_metrics_port = (int)port;
	return 0;
}

static int
metrics_server_wildcard(const char *host)
{
	return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/*
 * The labels the metrics take from the configuration: the path of each
 * endpoint under auth_prefix (named once, by the first configuration
 * read) and the pattern of each route of the table being read (again on
 * each reload, before the table is in use).
 */
static int
metrics_server_config_check(
    struct config *cfg, config_report_fn *report, void *arg)
{
	struct policy_table *t = cfg->cf_routes;
	const char *name;
	char label[256];
	size_t i;
	int ep;

	for (ep = 0; ep < METRICS_ENDPOINTS_MAX; ep++) {
		name = router_endpoint_name((enum router_endpoint)ep);
		if (name == NULL || cfg->cf_auth_prefix == NULL)
			continue;
		snprintf(
		    label, sizeof(label), "%s%s", cfg->cf_auth_prefix, name);
		metrics_route_set(METRICS_ROUTE_ENDPOINT + ep, label);
	}
	for (i = 0; t != NULL && i < policy_table_count(t); i++)
		policy_table_set_tag(t, i,
		    metrics_route_intern(
		        policy_route_pattern(policy_table_route(t, i))));
	if (cfg->cf_metrics_host != NULL &&
	    cfg->cf_metrics_port == cfg->cf_listen_port &&
	    cfg->cf_listen_host != NULL &&
	    (strcmp(cfg->cf_metrics_host, cfg->cf_listen_host) == 0 ||
	        metrics_server_wildcard(cfg->cf_metrics_host) ||
	        metrics_server_wildcard(cfg->cf_listen_host))) {
		report(arg, 0,
		    "metrics_listen must be another port than listen: the "
		    "proxy's clients must not reach /metrics");
		return 1;
	}
	return 0;
}

static void
metrics_server_config_free(struct config *cfg)
{
	free(cfg->cf_metrics_host);
	cfg->cf_metrics_host = NULL;
}

const struct config_module metrics_server_config_module = {"metrics",
    metrics_server_keys,
    sizeof(metrics_server_keys) / sizeof(metrics_server_keys[0]),
    metrics_server_config_check, metrics_server_config_free};

/* --- the listener ----------------------------------------------------- */

struct metrics_conn {
	uint32_t mc_magic;
	struct bufferevent *mc_bev;
	struct event *mc_timer; /* the whole exchange's deadline */
	LIST_ENTRY(metrics_conn) mc_entry;
};

/* One listener per process, on the loop of ms_worker only. */
static struct {
	struct worker *ms_worker;
	int ms_fd;
	struct event *ms_ev;
	struct event *ms_pause_ev; /* accepting again after EMFILE */
	LIST_HEAD(, metrics_conn) ms_conns;
	int ms_nconns;
} metrics_srv = {NULL, -1, NULL, NULL, LIST_HEAD_INITIALIZER(ms_conns), 0};

static struct metrics_conn *
metrics_server_conn_cast(void *arg)
{
	return MAGIC_CAST(
	    struct metrics_conn, mc_magic, METRICS_SERVER_MAGIC, arg);
}

static void
metrics_server_conn_free(struct metrics_conn *mc)
{
	LIST_REMOVE(mc, mc_entry);
	metrics_srv.ms_nconns--;
	bufferevent_free(mc->mc_bev);
	event_free(mc->mc_timer);
	mc->mc_magic = 0;
	free(mc);
}

static void
metrics_server_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	metrics_server_conn_free(metrics_server_conn_cast(arg));
}

static void
metrics_server_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	/* The client went away or the socket failed. */
	metrics_server_conn_free(metrics_server_conn_cast(arg));
}

/* Whatever the client still sends after the answer is dropped. */
static void
metrics_server_drain_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	(void)metrics_server_conn_cast(arg);
	evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * The answer is out: end the sending side and read until the client
 * closes (or the deadline), so that a request left unread does not turn
 * the close into a reset that could destroy the answer in flight.
 */
static void
metrics_server_written_cb(struct bufferevent *bev, void *arg)
{
	struct metrics_conn *mc = metrics_server_conn_cast(arg);

	if (shutdown(bufferevent_getfd(bev), SHUT_WR) == -1) {
		metrics_server_conn_free(mc);
		return;
	}
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_setcb(
	    bev, metrics_server_drain_cb, NULL, metrics_server_event_cb, mc);
	bufferevent_enable(bev, EV_READ);
}

static const char *
metrics_server_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Bad Request";
	}
}

/* Answer and close once it is written. */
static void
metrics_server_reply(struct metrics_conn *mc, int status)
{
	struct evbuffer *out = bufferevent_get_output(mc->mc_bev);
	struct evbuffer *body = evbuffer_new();
	const char *ctype = "text/plain; charset=utf-8";

	bufferevent_disable(mc->mc_bev, EV_READ);
	bufferevent_setcb(mc->mc_bev, NULL, metrics_server_written_cb,
	    metrics_server_event_cb, mc);
	if (body != NULL && status == 200) {
		ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (metrics_format(body, session_count(), GATEHOUSE_VERSION) ==
		    -1)
			status = 503;
	}
	if (body == NULL) {
		metrics_server_conn_free(mc);
		return;
	}
	if (status != 200) {
		evbuffer_drain(body, evbuffer_get_length(body));
		evbuffer_add_printf(
		    body, "%s\n", metrics_server_reason(status));
	}
	evbuffer_add_printf(out,
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
	    status, metrics_server_reason(status), ctype,
	    evbuffer_get_length(body), status == 405 ? "Allow: GET\r\n" : "");
	evbuffer_add_buffer(out, body);
	evbuffer_free(body);
}

static int
metrics_server_tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A header field line: a token, a colon, then visible characters, spaces
 * and tabs; no folding, no control characters, no bare CR or LF. */
static int
metrics_server_field_ok(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && metrics_server_tchar(p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return 0;
	for (i++; i < n; i++)
		if (((unsigned char)p[i] < 0x20 && p[i] != '\t') ||
		    p[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * The status for head[0..len), the request line and fields up to the
 * empty line (each line ends in CRLF): 200 only for GET /metrics (a query
 * is ignored).
 */
static int
metrics_server_status(const char *head, size_t len)
{
	const char *end = head + len, *sp1, *sp2, *eol, *p;
	size_t mlen, tlen;

	eol = memchr(head, '\r', len);
	if (eol == NULL || eol + 1 >= end || eol[1] != '\n')
		return 400;
	sp1 = memchr(head, ' ', eol - head);
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', eol - sp1 - 1) : NULL;
	if (sp1 == NULL || sp2 == NULL || eol - sp2 - 1 != 8 ||
	    (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 &&
	        memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
		return 400;
	mlen = sp1 - head;
	tlen = sp2 - sp1 - 1;
	if (mlen == 0 || mlen > 16 || tlen == 0 || sp1[1] != '/')
		return 400;
	for (p = head; p < sp1; p++)
		if (*p < 'A' || *p > 'Z')
			return 400;
	for (p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 400;
	/* The fields: checked, then ignored. */
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = memchr(p, '\r', end - p);
		if (eol == NULL || eol + 1 >= end || eol[1] != '\n')
			return 400;
		if (eol == p)
			break; /* the empty line */
		if (!metrics_server_field_ok(p, eol - p))
			return 400;
	}
	if (mlen != 3 || memcmp(head, "GET", 3) != 0)
		return 405;
	if ((tlen != 8 && (tlen < 9 || sp1[9] != '?')) ||
	    memcmp(sp1 + 1, "/metrics", 8) != 0)
		return 404;
	return 200;
}

static void
metrics_server_read_cb(struct bufferevent *bev, void *arg)
{
	struct metrics_conn *mc = metrics_server_conn_cast(arg);
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr at;
	size_t n;

	at = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (at.pos < 0) {
		if (evbuffer_get_length(in) > METRICS_SERVER_MAX_HEAD)
			metrics_server_reply(mc, 431);
		return;
	}
	n = (size_t)at.pos + 4;
	if (n > METRICS_SERVER_MAX_HEAD) {
		metrics_server_reply(mc, 431);
		return;
	}
	metrics_server_reply(
	    mc, metrics_server_status((const char *)evbuffer_pullup(in, n), n));
}

static void
metrics_server_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_base *base = metrics_srv.ms_worker->w_base;
	struct timeval tv = {METRICS_SERVER_TIMEOUT, 0};
	struct timeval pause = {0, 200 * 1000};
	struct metrics_conn *mc;
	int i, s;

	(void)what;
	(void)arg;
	for (i = 0; i < METRICS_SERVER_MAX_CONNS; i++) {
		s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1 &&
		    (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		        errno == ENOMEM)) {
			/* Out of descriptors: a listener that stays ready
			 * would spin the loop; look again in a moment. */
			event_del(metrics_srv.ms_ev);
			evtimer_add(metrics_srv.ms_pause_ev, &pause);
			return;
		}
		if (s == -1)
			return;
		if (metrics_srv.ms_nconns >= METRICS_SERVER_MAX_CONNS) {
			close(s);
			continue;
		}
		mc = calloc(1, sizeof(*mc));
		if (mc == NULL) {
			close(s);
			continue;
		}
		mc->mc_magic = METRICS_SERVER_MAGIC;
		mc->mc_bev =
		    bufferevent_socket_new(base, s, BEV_OPT_CLOSE_ON_FREE);
		mc->mc_timer = evtimer_new(base, metrics_server_timer_cb, mc);
		if (mc->mc_bev == NULL || mc->mc_timer == NULL) {
			if (mc->mc_bev != NULL)
				bufferevent_free(mc->mc_bev);
			else
				close(s);
			if (mc->mc_timer != NULL)
				event_free(mc->mc_timer);
			free(mc);
			continue;
		}
		LIST_INSERT_HEAD(&metrics_srv.ms_conns, mc, mc_entry);
		metrics_srv.ms_nconns++;
		/* Read no more than a head may be, and then some. */
		bufferevent_setwatermark(
		    mc->mc_bev, EV_READ, 0, METRICS_SERVER_MAX_HEAD + 1);
		bufferevent_setcb(mc->mc_bev, metrics_server_read_cb, NULL,
		    metrics_server_event_cb, mc);
		bufferevent_enable(mc->mc_bev, EV_READ);
		evtimer_add(mc->mc_timer, &tv);
	}
}

static void
metrics_server_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_add(metrics_srv.ms_ev, NULL);
}

static int
metrics_server_socket(const struct config *cfg)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", cfg->cf_metrics_port);
	rc = getaddrinfo(cfg->cf_metrics_host, port, &hints, &res);
	if (rc != 0) {
		log_warnx("metrics_listen %s: %s", cfg->cf_metrics_host,
		    gai_strerror(rc));
		return -1;
	}
	fd = socket(
	    res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 64) == -1) {
		log_warn("metrics_listen %s:%d", cfg->cf_metrics_host,
		    cfg->cf_metrics_port);
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
metrics_server_start(struct worker *w)
{
	const struct config *cfg = w->w_cfg;
	int fd;

	if (cfg->cf_metrics_host == NULL)
		return 0;
	fd = metrics_server_socket(cfg);
	if (fd == -1)
		return -1;
	metrics_srv.ms_worker = w;
	metrics_srv.ms_fd = fd;
	metrics_srv.ms_ev = event_new(w->w_base, fd, EV_READ | EV_PERSIST,
	    metrics_server_accept_cb, NULL);
	metrics_srv.ms_pause_ev =
	    evtimer_new(w->w_base, metrics_server_resume_cb, NULL);
	if (metrics_srv.ms_ev == NULL || metrics_srv.ms_pause_ev == NULL ||
	    event_add(metrics_srv.ms_ev, NULL) == -1) {
		metrics_server_stop(w);
		return -1;
	}
	log_info("metrics listening on %s:%d", cfg->cf_metrics_host,
	    cfg->cf_metrics_port);
	return 0;
}

void
metrics_server_stop(struct worker *w)
{
	if (metrics_srv.ms_worker != w || w == NULL)
		return;
	while (!LIST_EMPTY(&metrics_srv.ms_conns))
		metrics_server_conn_free(LIST_FIRST(&metrics_srv.ms_conns));
	if (metrics_srv.ms_ev != NULL)
		event_free(metrics_srv.ms_ev);
	metrics_srv.ms_ev = NULL;
	if (metrics_srv.ms_pause_ev != NULL)
		event_free(metrics_srv.ms_pause_ev);
	metrics_srv.ms_pause_ev = NULL;
	if (metrics_srv.ms_fd != -1)
		close(metrics_srv.ms_fd);
	metrics_srv.ms_fd = -1;
	metrics_srv.ms_worker = NULL;
}
