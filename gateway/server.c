/* SPDX-License-Identifier: ISC */
/*
 * server.c: the listening sockets and the worker threads (one event_base,
 * one listening socket and one upstream pool each), the mail pipes that
 * reach them, and the graceful drain on SIGTERM/SIGINT.
 */
#include <sys/types.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "http/conn.h"
#include "http/request.h"
#include "oidc/http_client.h"
#include "oidc/oidc.h"
#include "policy.h"
#include "route/router.h"
#include "route/tunnel.h"
#include "route/upstream.h"
#include "metrics_server.h"
#include "server.h"
#include "session/session.h"

static int server_parse_listen(struct config *, const struct config_key *,
    const char *, int, const char **);
static int server_parse_workers(struct config *, const struct config_key *,
    const char *, int, const char **);
static int server_parse_log_level(struct config *, const struct config_key *,
    const char *, int, const char **);
static int server_parse_log_format(struct config *, const struct config_key *,
    const char *, int, const char **);
static int server_parse_log_user(struct config *, const struct config_key *,
    const char *, int, const char **);

/* Sorted by name: looked up with bsearch. */
static const struct config_key server_keys[] = {
    {"access_log", config_parse_bool, offsetof(struct config, cf_access_log),
        "on", "Write one access line per request to the log.", 0},
    {"drain_timeout", config_parse_duration,
        offsetof(struct config, cf_drain_timeout), "30s",
        "On SIGTERM, how long in-flight requests may take to finish.", 0},
    {"header_timeout", config_parse_duration,
        offsetof(struct config, cf_header_timeout), "10s",
        "How long a client may take to send a whole request head, from "
        "its first byte (or from connecting): slow senders are cut.",
        0},
    {"idle_timeout", config_parse_duration,
        offsetof(struct config, cf_idle_timeout), "60s",
        "How long a connection may stay silent between requests, or "
        "stall while sending a body or receiving a response, before it "
        "is closed.",
        0},
    {"listen", server_parse_listen, 0, "127.0.0.1:8080",
        "Address and port to listen on: host:port, [v6addr]:port or "
        "*:port.",
        0},
    {"log_format", server_parse_log_format,
        offsetof(struct config, cf_log_format), "text",
        "How log lines are written: text (key=value) or json (one "
        "object per line).",
        0},
    {"log_level", server_parse_log_level, offsetof(struct config, cf_log_level),
        "info", "Logging level: error, warn, info or debug.", 0},
    {"log_user", server_parse_log_user, offsetof(struct config, cf_log_user),
        "sub",
        "Who an access line names: sub (the user's stable id), name (the "
        "user name, a personal datum) or off.",
        0},
    {"max_buffered_bodies", config_parse_size,
        offsetof(struct config, cf_max_buffered_bodies), "128M",
        "Most request body bytes held in memory at once by the whole "
        "process (bodies read before they are forwarded: chunked ones, "
        "and the first 64k of others); a request past it gets 503.",
        0},
    {"max_header_size", config_parse_size,
        offsetof(struct config, cf_max_header_size), "16k",
        "Largest request header block accepted; larger gets 431.", 0},
    {"max_headers", config_parse_int, offsetof(struct config, cf_max_headers),
        "100", "Most request header fields accepted; more gets 431.", 0},
    {"max_request_body", config_parse_size,
        offsetof(struct config, cf_max_request_body), "16M",
        "Largest request body accepted (bodies stream; a chunked one is "
        "held, within max_buffered_bodies); larger gets 413.",
        0},
    {"max_request_line", config_parse_size,
        offsetof(struct config, cf_max_request_line), "8k",
        "Longest request target accepted; longer gets 414.", 0},
    {"workers", server_parse_workers, offsetof(struct config, cf_workers),
        "auto",
        "Worker threads, each with its own event loop; auto = one per "
        "core.",
        0},
};

static int
server_parse_listen(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	const char *colon;
	char *host, *ep;
	long port;

	(void)line;
	(void)key;
	if (value[0] == '[') {
		colon = strstr(value, "]:");
		if (colon == NULL)
			goto fail;
		host = strndup(value + 1, colon - value - 1);
		colon++;
	} else {
		colon = strrchr(value, ':');
		if (colon == NULL || colon == value)
			goto fail;
		host = strndup(value, colon - value);
	}
	if (host == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	errno = 0;
	port = strtol(colon + 1, &ep, 10);
	if (colon[1] == '\0' || *ep != '\0' || port < 1 || port > 65535) {
		free(host);
		*errstr = "expected host:port with a port from 1 to 65535";
		return -1;
	}
	if (strcmp(host, "*") == 0) {
		free(host);
		host = strdup("0.0.0.0");
	} else {
		unsigned char buf[16];

		if (inet_pton(AF_INET, host, buf) != 1 &&
		    inet_pton(AF_INET6, host, buf) != 1 &&
		    strcmp(host, "localhost") != 0) {
			free(host);
			*errstr = "the host must be an IPv4 or IPv6 address, "
			          "localhost or *";
			return -1;
		}
	}
	free(cfg->cf_listen_host);
	cfg->cf_listen_host = host;
	cfg->cf_listen_port = (int)port;
	return 0;
fail:
	*errstr = "expected host:port, [v6addr]:port or *:port";
	return -1;
}

static int
server_parse_workers(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)line;
	if (strcmp(value, "auto") == 0) {
		cfg->cf_workers = 0;
		return 0;
	}
	if (config_parse_int(cfg, key, value, line, errstr) == -1 ||
	    cfg->cf_workers < 1 || cfg->cf_workers > 256) {
		*errstr = "expected auto or a number of threads from 1 to 256";
		return -1;
	}
	return 0;
}

static int
server_parse_log_level(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	int l;

	(void)line;
	(void)key;
	l = log_level_parse(value);
	if (l == -1) {
		*errstr = "expected error, warn, info or debug";
		return -1;
	}
	cfg->cf_log_level = l;
	return 0;
}

static int
server_parse_log_format(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)line;
	(void)key;
	if (strcmp(value, "text") == 0)
		cfg->cf_log_format = LOG_FORMAT_TEXT;
	else if (strcmp(value, "json") == 0)
		cfg->cf_log_format = LOG_FORMAT_JSON;
	else {
		*errstr = "expected text or json";
		return -1;
	}
	return 0;
}

static int
server_parse_log_user(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)line;
	(void)key;
	if (strcmp(value, "sub") == 0)
		cfg->cf_log_user = CONFIG_LOG_USER_SUB;
	else if (strcmp(value, "name") == 0)
		cfg->cf_log_user = CONFIG_LOG_USER_NAME;
	else if (strcmp(value, "off") == 0)
		cfg->cf_log_user = CONFIG_LOG_USER_OFF;
	else {
		*errstr = "expected sub, name or off";
		return -1;
	}
	return 0;
}

static int
server_config_check(struct config *cfg, config_report_fn *report, void *arg)
{
	long n;
	int errors = 0;

	if (cfg->cf_workers == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->cf_workers = n < 1 ? 1 : (n > 64 ? 64 : (int)n);
	}
	if (cfg->cf_max_header_size < 1024) {
		report(arg, 0, "max_header_size must be at least 1k");
		errors++;
	}
	if (cfg->cf_max_request_line < 256) {
		report(arg, 0, "max_request_line must be at least 256");
		errors++;
	}
	if (cfg->cf_idle_timeout < 1 || cfg->cf_header_timeout < 1) {
		report(arg, 0,
		    "idle_timeout and header_timeout must be at "
		    "least 1s");
		errors++;
	}
	return errors;
}

static void
server_config_free(struct config *cfg)
{
	free(cfg->cf_listen_host);
}

const struct config_module server_config_module = {"server", server_keys,
    sizeof(server_keys) / sizeof(server_keys[0]), server_config_check,
    server_config_free};

/* --- listening ----------------------------------------------------- */

static int
server_listen_socket(const struct config *cfg)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", cfg->cf_listen_port);
	rc = getaddrinfo(cfg->cf_listen_host, port, &hints, &res);
	if (rc != 0) {
		log_warnx(
		    "listen %s: %s", cfg->cf_listen_host, gai_strerror(rc));
		return -1;
	}
	fd = socket(
	    res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("socket");
		goto fail;
	}
	/* Every worker binds its own socket to the one port; the kernel
	 * spreads new connections across them (SO_REUSEPORT). */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) {
		log_warn("setsockopt");
		goto fail;
	}
	if (res->ai_family == AF_INET6)
		(void)setsockopt(
		    fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* Accepted sockets inherit it: the tail of a streamed body must not
	 * wait for the client's delayed ACK (Nagle). */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1) {
		log_warn(
		    "bind %s:%d", cfg->cf_listen_host, cfg->cf_listen_port);
		goto fail;
	}
	if (listen(fd, 1024) == -1) {
		log_warn("listen");
		goto fail;
	}
	freeaddrinfo(res);
	return fd;
fail:
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

/* --- workers --------------------------------------------------------- */

static struct worker *server_workers;
static int server_nworkers;

static struct worker *
server_worker_cast(void *arg)
{
	return MAGIC_CAST(struct worker, w_magic, WORKER_MAGIC, arg);
}

static void
server_drain_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);

	(void)fd;
	(void)what;
	log_warnx("worker %d: drain timeout with %d requests in flight",
	    w->w_id, w->w_inflight);
	/* WebSocket tunnels have no end of their own: the deadline is it. */
	tunnel_close_all(w, "drain");
	event_base_loopexit(w->w_base, NULL);
}

/* Runs in the worker: stop accepting, then exit once idle. */
static void
server_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);
	struct timeval tv;

	(void)fd;
	(void)what;
	if (w->w_draining)
		return;
	w->w_draining = 1;
	if (w->w_listen_ev != NULL)
		event_del(w->w_listen_ev);
	if (w->w_accept_ev != NULL)
		event_del(w->w_accept_ev);
	conn_drain_all(w);
	if (w->w_inflight == 0) {
		event_base_loopexit(w->w_base, NULL);
		return;
	}
	tv.tv_sec = w->w_cfg->cf_drain_timeout;
	tv.tv_usec = 0;
	evtimer_add(w->w_drain_ev, &tv);
}

void
server_request_done(struct worker *w)
{
	w->w_inflight--;
	if (w->w_draining && w->w_inflight == 0)
		event_base_loopexit(w->w_base, NULL);
}

/* The request's cleanup: registered first, so it runs last. */
static void
server_request_cleanup(void *arg)
{
	server_request_done(server_worker_cast(arg));
}

/* A worker's dispatch (worker.h): count the request in flight, for the
 * graceful drain, and route it. */
static void
server_dispatch(struct conn *c, struct http1_req *req, struct evbuffer *body)
{
	struct request_ctx *rq = request_start(c, req, body);

	if (rq == NULL)
		return;
	rq->rq_worker->w_inflight++;
	request_cleanup_add(rq, server_request_cleanup, rq->rq_worker);
	/* May answer at once: rq is gone after this. */
	router_request(rq);
}

static void
server_logflush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_buffer_flush();
}

static void *
server_worker_main(void *arg)
{
	struct worker *w = server_worker_cast(arg);
	struct timeval tv = {0, 200 * 1000};
	struct event *flush;

	metrics_thread_attach(w->w_id);
	/* Access lines reach the log within 200 ms. */
	log_buffer_start();
	flush = event_new(w->w_base, -1, EV_PERSIST, server_logflush_cb, w);
	if (flush != NULL)
		event_add(flush, &tv);
	event_base_dispatch(w->w_base);
	/* On this thread: connections cut by the drain deadline end here,
	 * and the thread's buffer caches go with them. */
	tunnel_close_all(w, "exit");
	conn_free_all(w);
	if (flush != NULL)
		event_free(flush);
	log_buffer_stop();
	return NULL;
}

static void
server_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);
	struct timeval tv = {60, 0};
	size_t n;

	(void)fd;
	(void)what;
	n = session_sweep(time(NULL), 1000);
	if (n > 0)
		log_info("sweep removed=%zu", n);
	evtimer_add(w->w_sweep_ev, &tv);
}

/* The provider side of a worker: its http client, provider metadata, a
 * session-store reader and (on worker 0) the sweep timer. */
static int
server_worker_oidc_init(struct worker *w)
{
	const struct config *cfg = w->w_cfg;
	struct httpc_options ho;
	struct gh_error err;
	struct timeval tv = {60, 0};

	if (!oidc_configured(cfg))
		return 0;
	memset(&ho, 0, sizeof(ho));
	ho.ho_ca_file = cfg->cf_ca_file;
	ho.ho_timeout_ms = (long)cfg->cf_provider_timeout * 1000;
	ho.ho_connect_timeout_ms =
	    ho.ho_timeout_ms < 5000 ? ho.ho_timeout_ms : 5000;
	w->w_httpc = httpc_new(w->w_base, &ho, &err);
	if (w->w_httpc == NULL) {
		log_warnx("worker %d: http client: %s", w->w_id, err.ge_msg);
		return -1;
	}
	w->w_provider = oidc_provider_new(w);
	w->w_reader = session_reader_new(w->w_base);
	if (w->w_provider == NULL || w->w_reader == NULL)
		return -1;
	if (w->w_id == 0) {
		w->w_sweep_ev = evtimer_new(w->w_base, server_sweep_cb, w);
		if (w->w_sweep_ev == NULL)
			return -1;
		evtimer_add(w->w_sweep_ev, &tv);
	}
	return 0;
}

/* Accept what the listening socket has (a bounded batch per event, so
 * one busy listener cannot starve the connections already open). */
static void
server_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);
	struct sockaddr_storage ss;
	struct timeval pause = {0, 200 * 1000};
	socklen_t len;
	int i, s;

	(void)what;
	for (i = 0; i < 64; i++) {
		len = sizeof(ss);
		s = accept4(fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s >= 0) {
			conn_accept(w, s, (struct sockaddr *)&ss, len);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: stop accepting for a moment
			 * rather than spin on a listener that stays ready;
			 * connections already open are served meanwhile. */
			if (!w->w_emfile_logged) {
				log_warn("worker %d: accept (pausing 200 ms; "
				         "raise the open-files limit)",
				    w->w_id);
				w->w_emfile_logged = 1;
			}
			event_del(w->w_listen_ev);
			evtimer_add(w->w_accept_ev, &pause);
		}
		return; /* EAGAIN, or a client that went away meanwhile */
	}
}

static void
server_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);

	(void)fd;
	(void)what;
	if (!w->w_draining)
		event_add(w->w_listen_ev, NULL);
}

/* Messages from other threads, one byte each on the worker's pipe: 'S'
 * stop, 'R' take w_next_routes, 'P' a provider fetch has ended.  The only
 * way another thread reaches a worker, so libevent needs no locks. */
static void
server_mail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);
	char buf[64];
	ssize_t n, i;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	for (i = 0; i < n; i++) {
		if (buf[i] == 'R')
			w->w_routes = __atomic_load_n(
			    &w->w_next_routes, __ATOMIC_ACQUIRE);
		else if (buf[i] == 'S')
			server_stop_cb(-1, 0, w);
		else if (buf[i] == 'P' && w->w_provider != NULL)
			oidc_provider_notify(w->w_provider);
	}
}

static int
server_worker_init(struct worker *w, const struct config *cfg, int id)
{
	int fd;

	w->w_magic = WORKER_MAGIC;
	w->w_id = id;
	w->w_cfg = cfg;
	w->w_dispatch = server_dispatch;
	w->w_routes = cfg->cf_routes;
	w->w_mail[0] = w->w_mail[1] = -1;
	w->w_listen_fd = -1;
	TAILQ_INIT(&w->w_conns);
	TAILQ_INIT(&w->w_tunnels);
	w->w_base = event_base_new();
	if (w->w_base == NULL)
		return -1;
	w->w_pool = upstream_pool_new(w->w_base, cfg);
	w->w_drain_ev = evtimer_new(w->w_base, server_drain_deadline_cb, w);
	w->w_accept_ev = evtimer_new(w->w_base, server_accept_resume_cb, w);
	if (w->w_pool == NULL || w->w_drain_ev == NULL ||
	    w->w_accept_ev == NULL ||
	    pipe2(w->w_mail, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	w->w_mail_ev = event_new(
	    w->w_base, w->w_mail[0], EV_READ | EV_PERSIST, server_mail_cb, w);
	if (w->w_mail_ev == NULL || event_add(w->w_mail_ev, NULL) == -1)
		return -1;
	if (getrandom(&w->w_idseed, sizeof(w->w_idseed), 0) !=
	    (ssize_t)sizeof(w->w_idseed))
		return -1;
	if (server_worker_oidc_init(w) == -1)
		return -1;
	fd = server_listen_socket(cfg);
	if (fd == -1)
		return -1;
	w->w_listen_fd = fd;
	w->w_listen_ev =
	    event_new(w->w_base, fd, EV_READ | EV_PERSIST, server_accept_cb, w);
	if (w->w_listen_ev == NULL || event_add(w->w_listen_ev, NULL) == -1)
		return -1;
	if (id == 0 && metrics_server_start(w) == -1)
		return -1;
	return 0;
}

static void
server_worker_cleanup(struct worker *w)
{
	/* Connections cut by the drain deadline: their requests end here. */
	if (w->w_base != NULL) {
		tunnel_close_all(w, "exit");
		conn_free_all(w);
	}
	metrics_server_stop(w);
	upstream_pool_free(w->w_pool);
	oidc_refresh_shutdown_worker(w);
	oidc_provider_free(w->w_provider);
	httpc_free(w->w_httpc);
	session_reader_free(w->w_reader);
	if (w->w_sweep_ev != NULL)
		event_free(w->w_sweep_ev);
	if (w->w_listen_ev != NULL)
		event_free(w->w_listen_ev);
	if (w->w_accept_ev != NULL)
		event_free(w->w_accept_ev);
	if (w->w_mail_ev != NULL)
		event_free(w->w_mail_ev);
	if (w->w_drain_ev != NULL)
		event_free(w->w_drain_ev);
	if (w->w_listen_fd != -1)
		close(w->w_listen_fd);
	if (w->w_mail[0] != -1)
		close(w->w_mail[0]);
	if (w->w_mail[1] != -1)
		close(w->w_mail[1]);
	if (w->w_base != NULL)
		event_base_free(w->w_base);
	memset(w, 0, sizeof(*w));
}

/* Tell worker w one thing (see server_mail_cb). */
static void
server_mail(struct worker *w, char what)
{
	if (write(w->w_mail[1], &what, 1) != 1)
		log_warn("worker %d: cannot signal", w->w_id);
}

/* Tell every worker `what` through its mail pipe.  Any thread, while the
 * workers exist. */
static void
server_tell_all(char what)
{
	int i;

	/* The array is set before any worker starts and freed after every
	 * worker has stopped, so worker threads may walk it. */
	for (i = 0; i < server_nworkers; i++)
		if (server_workers[i].w_magic == WORKER_MAGIC &&
		    server_workers[i].w_mail[1] != -1)
			server_mail(&server_workers[i], what);
}

/* A provider fetch has ended: every worker takes the new copy. */
static void
server_announce_provider(void)
{
	server_tell_all('P');
}

/* Route tables read on SIGHUP.  Requests in flight may still point into
 * an older one, so tables are only freed at exit (reloads are rare). */
#define SERVER_MAX_RELOADS 256
static struct policy_table *server_reloaded[SERVER_MAX_RELOADS];
static int server_nreloaded;

/*
 * SIGHUP: read the file again; if it is good, every worker switches to the
 * new route table; if not, every error is logged with its line and the old
 * table stays.  Only the routes change: other keys need a restart.
 */
static void
server_reload(const struct config *cfg)
{
	struct config *nc;
	struct policy_table *t;
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f;
	int i;

	f = open_memstream(&buf, &len);
	if (f == NULL) {
		log_warn("reload");
		return;
	}
	nc = config_load(cfg->cf_file, f);
	fclose(f);
	if (nc == NULL) {
		for (line = strtok_r(buf, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			log_warnx("reload: %s", line);
		log_warnx("reload: the file has errors; the old routes stay");
		free(buf);
		return;
	}
	free(buf);
	if (server_nreloaded == SERVER_MAX_RELOADS) {
		log_warnx("reload: too many reloads; restart gatehouse");
		config_free(nc);
		return;
	}
	t = nc->cf_routes;
	nc->cf_routes = NULL;
	config_free(nc);
	server_reloaded[server_nreloaded++] = t;
	for (i = 0; i < server_nworkers; i++) {
		__atomic_store_n(
		    &server_workers[i].w_next_routes, t, __ATOMIC_RELEASE);
		server_mail(&server_workers[i], 'R');
	}
	log_info("reload: %zu routes in force", policy_table_count(t));
}

/* Every connection is a descriptor: take the hard limit (as nginx's
 * worker_rlimit_nofile would), so a few thousand clients, slow ones among
 * them, do not run the gateway out of sockets. */
static void
server_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
server_run(const struct config *cfg)
{
	sigset_t set;
	int i, sig, started = 0, rc = -1;

	server_raise_nofile();
	if (upstream_resolve(cfg) == -1)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	/* Workers never see the signals; the main thread waits for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	server_nworkers = cfg->cf_workers;
	oidc_provider_set_announce(server_announce_provider);
	server_workers = calloc(server_nworkers, sizeof(*server_workers));
	if (server_workers == NULL)
		goto done;
	for (i = 0; i < server_nworkers; i++) {
		if (server_worker_init(&server_workers[i], cfg, i) == -1) {
			log_warnx("worker %d failed to start", i);
			goto stop;
		}
	}
	for (i = 0; i < server_nworkers; i++) {
		if (pthread_create(&server_workers[i].w_thread, NULL,
		        server_worker_main, &server_workers[i]) != 0) {
			log_warnx("pthread_create failed");
			goto stop;
		}
		started++;
	}
	log_info("listening on %s:%d with %d workers", cfg->cf_listen_host,
	    cfg->cf_listen_port, server_nworkers);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			server_reload(cfg);
			continue;
		}
		log_info("%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}
	rc = 0;
stop:
	for (i = 0; i < started; i++)
		server_mail(&server_workers[i], 'S');
	for (i = 0; i < started; i++)
		pthread_join(server_workers[i].w_thread, NULL);
	for (i = 0; i < server_nworkers; i++)
		server_worker_cleanup(&server_workers[i]);
	for (i = 0; i < server_nreloaded; i++)
		policy_table_free(server_reloaded[i]);
	server_nreloaded = 0;
	free(server_workers);
	server_workers = NULL;
	if (rc == 0)
		log_info("stopped");
done:
	/* The signals stay blocked: a second SIGTERM during the drain, or
	 * one that arrives now, must not kill the process mid-exit. */
	return rc;
}
