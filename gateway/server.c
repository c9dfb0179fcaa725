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
#include "http/tls.h"
#include "oidc/http_client.h"
#include "oidc/oidc.h"
#include "policy.h"
#include "route/https_redirect.h"
#include "route/router.h"
#include "route/tunnel.h"
#include "route/upstream.h"
#include "metrics_server.h"
#include "server.h"
#include "session/session.h"

static int server_parse_listen(struct config *, const struct config_key *,
    const char *, int, const char **);
static int server_parse_redirect(struct config *, const struct config_key *,
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
        "*:port; followed by tls (listen = 0.0.0.0:8443 tls) it serves "
        "HTTPS with tls_certificate and tls_certificate_key.",
        0},
    {"listen_http_redirect", server_parse_redirect, 0, NULL,
        "With listen ... tls: a plain HTTP listener (host:port) that "
        "answers every request with a 308 to the same path on https; off "
        "by default.",
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

/* host:port, [v6addr]:port or *:port (value up to len) into a new
 * *host and *port. */
static int
server_parse_hostport(const char *value, size_t len, char **hostp, int *portp,
    const char **errstr)
{
	char *v, *colon, *host = NULL, *ep;
	unsigned char buf[16];
	long port;

	v = strndup(value, len);
	if (v == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	*errstr = "expected host:port, [v6addr]:port or *:port";
	if (v[0] == '[') {
		colon = strstr(v, "]:");
		if (colon == NULL)
			goto fail;
		host = strndup(v + 1, colon - v - 1);
		colon++;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || colon == v)
			goto fail;
		host = strndup(v, colon - v);
	}
	if (host == NULL) {
		*errstr = "out of memory";
		goto fail;
	}
	port = strtol(colon + 1, &ep, 10);
	if (colon[1] == '\0' || *ep != '\0' || port < 1 || port > 65535) {
		*errstr = "expected host:port with a port from 1 to 65535";
		goto fail;
	}
	if (strcmp(host, "*") == 0) {
		free(host);
		host = strdup("0.0.0.0");
		if (host == NULL) {
			*errstr = "out of memory";
			goto fail;
		}
	} else if (inet_pton(AF_INET, host, buf) != 1 &&
	    inet_pton(AF_INET6, host, buf) != 1 &&
	    strcmp(host, "localhost") != 0) {
		*errstr = "the host must be an IPv4 or IPv6 address, "
		          "localhost or *";
		goto fail;
	}
	free(v);
	*hostp = host;
	*portp = (int)port;
	return 0;
fail:
	free(host);
	free(v);
	return -1;
}

/* host:port, then optionally the word tls. */
static int
server_parse_listen(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	size_t len = strcspn(value, " \t");
	const char *rest = value + len + strspn(value + len, " \t");
	char *host;
	int port;

	(void)line;
	(void)key;
	if (*rest != '\0' && strcmp(rest, "tls") != 0) {
		*errstr = "expected host:port, optionally followed by tls";
		return -1;
	}
	if (server_parse_hostport(value, len, &host, &port, errstr) == -1)
		return -1;
	free(cfg->cf_listen_host);
	cfg->cf_listen_host = host;
	cfg->cf_listen_port = port;
	cfg->cf_listen_tls = *rest != '\0';
	return 0;
}

static int
server_parse_redirect(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	char *host;
	int port;

	(void)line;
	(void)key;
	free(cfg->cf_redirect_host);
	cfg->cf_redirect_host = NULL;
	if (strcmp(value, "off") == 0)
		return 0;
	if (server_parse_hostport(value, strlen(value), &host, &port, errstr) ==
	    -1)
		return -1;
	cfg->cf_redirect_host = host;
	cfg->cf_redirect_port = port;
	return 0;
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
	if (cfg->cf_redirect_host != NULL && !cfg->cf_listen_tls) {
		report(arg, 0,
		    "listen_http_redirect sends clients to https, but listen "
		    "has no tls (listen = 0.0.0.0:8443 tls)");
		errors++;
	}
	if (cfg->cf_redirect_host != NULL &&
	    cfg->cf_redirect_port == cfg->cf_listen_port) {
		report(arg, 0,
		    "listen_http_redirect must have another port than "
		    "listen");
		errors++;
	}
	return errors;
}

static void
server_config_free(struct config *cfg)
{
	free(cfg->cf_listen_host);
	free(cfg->cf_redirect_host);
}

const struct config_module server_config_module = {"server", server_keys,
    sizeof(server_keys) / sizeof(server_keys[0]), server_config_check,
    server_config_free};

/* --- listening ----------------------------------------------------- */

static int
server_listen_socket(const char *host, int portnum)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", portnum);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		log_warnx("listen %s: %s", host, gai_strerror(rc));
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
		log_warn("bind %s:%d", host, portnum);
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
	if (w->w_redirect_ev != NULL)
		event_del(w->w_redirect_ev);
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
	ho.ho_resolve = cfg->cf_provider_resolve;
	ho.ho_timeout_ms = (long)cfg->cf_provider_timeout * 1000;
	ho.ho_connect_timeout_ms =
	    ho.ho_timeout_ms < 5000 ? ho.ho_timeout_ms : 5000;
	w->w_httpc = httpc_new(w->w_base, &ho, &err);
	if (w->w_httpc == NULL) {
		log_warnx("worker %d: http client: %s", w->w_id, err.ge_msg);
		return -1;
	}
	w->w_reader = session_reader_new(w->w_base);
	if (w->w_reader == NULL)
		return -1;
	if (w->w_id == 0) {
		w->w_sweep_ev = evtimer_new(w->w_base, server_sweep_cb, w);
		if (w->w_sweep_ev == NULL)
			return -1;
		evtimer_add(w->w_sweep_ev, &tv);
	}
	return 0;
}

/* Accept what listening socket fd has (a bounded batch per event, so
 * one busy listener cannot starve the connections already open); with
 * tls, each speaks TLS; dispatch serves them (NULL: the worker's). */
static void
server_accept(struct worker *w, int fd, int tls, conn_dispatch_fn *dispatch)
{
	struct sockaddr_storage ss;
	struct timeval pause = {0, 200 * 1000};
	socklen_t len;
	struct ssl_st *ssl;
	int i, s;

	for (i = 0; i < 64; i++) {
		len = sizeof(ss);
		s = accept4(fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s >= 0) {
			ssl = NULL;
			if (tls && (ssl = tls_ssl_new()) == NULL) {
				log_warnx(
				    "worker %d: cannot make a TLS session",
				    w->w_id);
				close(s);
				continue;
			}
			conn_accept(
			    w, s, (struct sockaddr *)&ss, len, ssl, dispatch);
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
			if (w->w_redirect_ev != NULL)
				event_del(w->w_redirect_ev);
			evtimer_add(w->w_accept_ev, &pause);
		}
		return; /* EAGAIN, or a client that went away meanwhile */
	}
}

static void
server_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);

	(void)what;
	server_accept(w, fd, w->w_cfg->cf_listen_tls, NULL);
}

/* listen_http_redirect: plain HTTP, every request sent to https. */
static void
server_redirect_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);

	(void)what;
	server_accept(w, fd, 0, https_redirect_dispatch);
}

static void
server_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = server_worker_cast(arg);

	(void)fd;
	(void)what;
	if (w->w_draining)
		return;
	event_add(w->w_listen_ev, NULL);
	if (w->w_redirect_ev != NULL)
		event_add(w->w_redirect_ev, NULL);
}

/* --- configuration generations ------------------------------------- */

/*
 * A configuration in force, for the whole process: what config_load read
 * at start-up or on a SIGHUP, and the provider source it uses.  Each
 * worker builds its own struct worker_gen on it (worker.h) and holds one
 * reference here until that is freed; the main thread holds one while it
 * is the current configuration.  The count is atomic, as workers drop
 * theirs on their own threads, but it moves only when a generation is
 * made or retired, never per request: requests count on the worker's own
 * generation, a plain int on its own thread.  Reference counts rather
 * than an epoch scheme because a request may live for minutes (a long
 * download): an epoch would hold every newer configuration too, a count
 * frees each one the moment its last request ends.
 */
struct server_gen {
	struct config *sg_cfg;      /* owned */
	struct oidc_source *sg_src; /* a reference; NULL without a provider */
	unsigned sg_id;
	int sg_refs; /* atomic */
};

static struct server_gen *server_gen_cur; /* main thread */
static int server_gens_live;              /* atomic: for the reload log */

static void
server_gen_release(struct server_gen *sg)
{
	if (sg == NULL ||
	    __atomic_sub_fetch(&sg->sg_refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	oidc_source_release(sg->sg_src);
	config_free(sg->sg_cfg);
	free(sg);
	__atomic_sub_fetch(&server_gens_live, 1, __ATOMIC_RELAXED);
}

/* A new generation for cfg (taken) and src (a reference, taken), with the
 * main thread's reference and one for each worker. */
static struct server_gen *
server_gen_new(struct config *cfg, struct oidc_source *src, unsigned id)
{
	struct server_gen *sg;

	sg = calloc(1, sizeof(*sg));
	if (sg == NULL) {
		oidc_source_release(src);
		config_free(cfg);
		return NULL;
	}
	sg->sg_cfg = cfg;
	sg->sg_src = src;
	sg->sg_id = id;
	sg->sg_refs = 1 + server_nworkers;
	__atomic_add_fetch(&server_gens_live, 1, __ATOMIC_RELAXED);
	return sg;
}

static void
server_worker_gen_free(struct worker_gen *g)
{
	LIST_REMOVE(g, wg_entry);
	upstream_pool_free(g->wg_pool);
	oidc_provider_free(g->wg_provider);
	log_debug("%s: worker %d freed configuration %u", __func__,
	    g->wg_worker->w_id, g->wg_id);
	server_gen_release(g->wg_owner);
	g->wg_magic = 0;
	free(g);
}

/* Worker w's view of sg, holding the worker's reference on sg; NULL (and
 * sg's reference left to the caller) when it cannot be built. */
static struct worker_gen *
server_worker_gen_new(struct worker *w, struct server_gen *sg)
{
	struct worker_gen *g;

	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->wg_magic = WORKER_GEN_MAGIC;
	g->wg_refs = 1; /* the worker's, while it is the current one */
	g->wg_worker = w;
	g->wg_cfg = sg->sg_cfg;
	g->wg_routes = sg->sg_cfg->cf_routes;
	g->wg_owner = sg;
	g->wg_id = sg->sg_id;
	g->wg_pool = upstream_pool_new(w->w_base, sg->sg_cfg);
	if (g->wg_pool == NULL)
		goto fail;
	if (sg->sg_src != NULL) {
		/* Worker 0's current handle runs the timed fetches. */
		g->wg_provider =
		    oidc_provider_new(w, sg->sg_src, sg->sg_cfg, w->w_id == 0);
		if (g->wg_provider == NULL)
			goto fail;
	}
	LIST_INSERT_HEAD(&w->w_gens, g, wg_entry);
	return g;
fail:
	upstream_pool_free(g->wg_pool);
	free(g);
	return NULL;
}

/* Make g the generation new requests on w start with. */
static void
server_worker_use(struct worker *w, struct worker_gen *g)
{
	w->w_gen = g;
	w->w_cfg = g->wg_cfg;
	w->w_routes = g->wg_routes;
	w->w_pool = g->wg_pool;
	w->w_provider = g->wg_provider;
}

/* Runs in the worker: take the generation a SIGHUP left for it.  Requests
 * in flight keep theirs; the old one goes when the last of them ends. */
static void
server_worker_take(struct worker *w)
{
	struct server_gen *sg;
	struct worker_gen *g, *old = w->w_gen;

	sg = __atomic_exchange_n(&w->w_next_gen, NULL, __ATOMIC_ACQ_REL);
	if (sg == NULL)
		return; /* a later reload's byte: already taken */
	g = server_worker_gen_new(w, sg);
	if (g == NULL) {
		log_warnx("worker %d: out of memory taking configuration %u; "
		          "it keeps configuration %u",
		    w->w_id, sg->sg_id, old->wg_id);
		server_gen_release(sg);
		return;
	}
	server_worker_use(w, g);
	upstream_pool_retire(old->wg_pool);
	oidc_provider_retire(old->wg_provider);
	worker_gen_release(old);
}

/* A provider fetch has ended: every handle of this worker, the retired
 * generations' too (their requests may wait for it), takes the news. */
static void
server_worker_notify(struct worker *w)
{
	struct worker_gen *g, *next;

	/* A waiter woken may end the last request of a generation: hold
	 * them all while walking the list. */
	for (g = LIST_FIRST(&w->w_gens); g != NULL; g = LIST_NEXT(g, wg_entry))
		worker_gen_hold(g);
	for (g = LIST_FIRST(&w->w_gens); g != NULL; g = LIST_NEXT(g, wg_entry))
		if (g->wg_provider != NULL)
			oidc_provider_notify(g->wg_provider);
	for (g = LIST_FIRST(&w->w_gens); g != NULL; g = next) {
		next = LIST_NEXT(g, wg_entry);
		worker_gen_release(g);
	}
}

/* Messages from other threads, one byte each on the worker's pipe: 'S'
 * stop, 'R' take w_next_gen, 'P' a provider fetch has ended.  The only
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
			server_worker_take(w);
		else if (buf[i] == 'S')
			server_stop_cb(-1, 0, w);
		else if (buf[i] == 'P')
			server_worker_notify(w);
	}
}

static int
server_worker_init(struct worker *w, struct server_gen *sg, int id)
{
	const struct config *cfg = sg->sg_cfg;
	struct worker_gen *g;
	int fd;

	w->w_magic = WORKER_MAGIC;
	w->w_id = id;
	w->w_dispatch = server_dispatch;
	w->w_gen_free = server_worker_gen_free;
	w->w_mail[0] = w->w_mail[1] = -1;
	w->w_listen_fd = w->w_redirect_fd = -1;
	TAILQ_INIT(&w->w_conns);
	LIST_INIT(&w->w_gens);
	TAILQ_INIT(&w->w_tunnels);
	w->w_base = event_base_new();
	if (w->w_base == NULL)
		return -1;
	/* The worker's reference on sg (server_gen_new counted it) goes to
	 * its generation; server_run drops it if that was never built. */
	g = server_worker_gen_new(w, sg);
	if (g == NULL)
		return -1;
	server_worker_use(w, g);
	w->w_drain_ev = evtimer_new(w->w_base, server_drain_deadline_cb, w);
	w->w_accept_ev = evtimer_new(w->w_base, server_accept_resume_cb, w);
	if (w->w_drain_ev == NULL || w->w_accept_ev == NULL ||
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
	fd = server_listen_socket(cfg->cf_listen_host, cfg->cf_listen_port);
	if (fd == -1)
		return -1;
	w->w_listen_fd = fd;
	w->w_listen_ev =
	    event_new(w->w_base, fd, EV_READ | EV_PERSIST, server_accept_cb, w);
	if (w->w_listen_ev == NULL || event_add(w->w_listen_ev, NULL) == -1)
		return -1;
	if (cfg->cf_redirect_host != NULL) {
		fd = server_listen_socket(
		    cfg->cf_redirect_host, cfg->cf_redirect_port);
		if (fd == -1)
			return -1;
		w->w_redirect_fd = fd;
		w->w_redirect_ev = event_new(w->w_base, fd,
		    EV_READ | EV_PERSIST, server_redirect_accept_cb, w);
		if (w->w_redirect_ev == NULL ||
		    event_add(w->w_redirect_ev, NULL) == -1)
			return -1;
	}
	if (id == 0 && metrics_server_start(w) == -1)
		return -1;
	return 0;
}

static void
server_worker_cleanup(struct worker *w)
{
	struct worker_gen *g;

	/* Connections and tunnels cut by the drain deadline: their requests
	 * end here, and with them their references on older generations. */
	if (w->w_base != NULL) {
		tunnel_close_all(w, "exit");
		conn_free_all(w);
	}
	metrics_server_stop(w);
	oidc_refresh_shutdown_worker(w);
	oidc_revoke_shutdown_worker(w);
	/* A reload's generation never taken, then the current one. */
	server_gen_release(
	    __atomic_exchange_n(&w->w_next_gen, NULL, __ATOMIC_ACQ_REL));
	g = w->w_gen;
	w->w_gen = NULL;
	worker_gen_release(g);
	/* Nothing holds a generation now; should anything still do, it
	 * would be a leak, so free them all the same. */
	while ((g = LIST_FIRST(&w->w_gens)) != NULL) {
		log_warnx("worker %d: configuration %u still held at exit",
		    w->w_id, g->wg_id);
		server_worker_gen_free(g);
	}
	httpc_free(w->w_httpc);
	session_reader_free(w->w_reader);
	if (w->w_sweep_ev != NULL)
		event_free(w->w_sweep_ev);
	if (w->w_listen_ev != NULL)
		event_free(w->w_listen_ev);
	if (w->w_redirect_ev != NULL)
		event_free(w->w_redirect_ev);
	if (w->w_accept_ev != NULL)
		event_free(w->w_accept_ev);
	if (w->w_mail_ev != NULL)
		event_free(w->w_mail_ev);
	if (w->w_drain_ev != NULL)
		event_free(w->w_drain_ev);
	if (w->w_listen_fd != -1)
		close(w->w_listen_fd);
	if (w->w_redirect_fd != -1)
		close(w->w_redirect_fd);
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

/* A setting that cannot change while gatehouse runs: its name, and
 * whether two configurations differ in it. */
struct server_fixed {
	const char *sf_name;
	int (*sf_differ)(const struct config *, const struct config *);
};

static int
server_str_differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

static int
server_differ_listen(const struct config *a, const struct config *b)
{
	return server_str_differ(a->cf_listen_host, b->cf_listen_host) ||
	    a->cf_listen_port != b->cf_listen_port;
}

/* The listeners are opened once; certificates follow a reload. */
static int
server_differ_tls(const struct config *a, const struct config *b)
{
	return a->cf_listen_tls != b->cf_listen_tls ||
	    server_str_differ(a->cf_redirect_host, b->cf_redirect_host) ||
	    a->cf_redirect_port != b->cf_redirect_port;
}

static int
server_differ_workers(const struct config *a, const struct config *b)
{
	return a->cf_workers != b->cf_workers;
}

static int
server_differ_metrics(const struct config *a, const struct config *b)
{
	return server_str_differ(a->cf_metrics_host, b->cf_metrics_host) ||
	    a->cf_metrics_port != b->cf_metrics_port;
}

static int
server_differ_signin(const struct config *a, const struct config *b)
{
	return oidc_configured(a) != oidc_configured(b);
}

/* The session store and its key are opened once: a new key would make
 * every session unreadable, a new store would lose them all. */
static int
server_differ_store(const struct config *a, const struct config *b)
{
	return server_str_differ(a->cf_session_store, b->cf_session_store) ||
	    server_str_differ(
	        a->cf_redis_password_file, b->cf_redis_password_file) ||
	    server_str_differ(a->cf_redis_sentinel_password_file,
	        b->cf_redis_sentinel_password_file) ||
	    a->cf_redis_timeout_ms != b->cf_redis_timeout_ms ||
	    a->cf_session_map_size != b->cf_session_map_size;
}

static int
server_differ_key(const struct config *a, const struct config *b)
{
	return server_str_differ(
	    a->cf_session_key_file, b->cf_session_key_file);
}

/* Each worker's client to the provider is made once, with these. */
static int
server_differ_httpc(const struct config *a, const struct config *b)
{
	return server_str_differ(a->cf_ca_file, b->cf_ca_file) ||
	    a->cf_provider_timeout != b->cf_provider_timeout;
}

static const struct server_fixed server_fixed[] = {
    {"listen", server_differ_listen},
    {"listen's tls flag or listen_http_redirect", server_differ_tls},
    {"workers", server_differ_workers},
    {"metrics_listen", server_differ_metrics},
    {"authority or oidc_issuer (sign-in turned on or off)",
        server_differ_signin},
    {"session_store (or redis_password_file, "
     "redis_sentinel_password_file, redis_timeout, session_map_size)",
        server_differ_store},
    {"session_key_file", server_differ_key},
    {"ca_file or provider_timeout", server_differ_httpc},
};

/* Log every setting nc changes that needs a restart; returns how many. */
static int
server_reload_fixed(const struct config *cfg, const struct config *nc)
{
	size_t i;
	int n = 0;

	for (i = 0; i < sizeof(server_fixed) / sizeof(server_fixed[0]); i++)
		if (server_fixed[i].sf_differ(cfg, nc)) {
			log_warnx("reload: %s changed: that needs a restart",
			    server_fixed[i].sf_name);
			n++;
		}
	return n;
}

/* Read the file again; NULL when it has errors (each one logged with its
 * line). */
static struct config *
server_reload_read(const char *file)
{
	struct config *nc;
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (f == NULL) {
		log_warn("reload");
		return NULL;
	}
	nc = config_load(file, f);
	fclose(f);
	if (nc == NULL)
		for (line = strtok_r(buf, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			log_warnx("reload: %s", line);
	free(buf);
	return nc;
}

/* The provider source for nc: the running one when nc names the same
 * provider, else a new one whose metadata and keys are fetched and checked
 * now, before anything changes.  -1 (logged) when that fails. */
static int
server_reload_source(const struct server_gen *cur, const struct config *nc,
    struct oidc_source **out)
{
	struct oidc_source *src;
	struct gh_error err;

	*out = NULL;
	if (!oidc_configured(nc))
		return 0;
	if (cur->sg_src != NULL && oidc_source_same(cur->sg_cfg, nc)) {
		*out = oidc_source_hold(cur->sg_src);
		return 0;
	}
	log_info(
	    "reload: the provider changed: fetching %s", nc->cf_discovery_url);
	src = oidc_source_new();
	if (src == NULL) {
		log_warnx("reload: out of memory");
		return -1;
	}
	if (oidc_source_prefetch(src, nc, &err) == -1) {
		log_warnx(
		    "reload: the new provider is not usable: %s", err.ge_msg);
		oidc_source_release(src);
		return -1;
	}
	*out = src;
	return 0;
}

/*
 * SIGHUP: read the file again and, if it is good, make it the
 * configuration new requests start with, on every worker.  Nothing changes
 * when it has errors (each logged with its line), changes a setting that
 * needs a restart, names an upstream that does not resolve, or names a new
 * provider whose metadata and keys cannot be fetched.  Requests in flight
 * finish on the configuration they started with.
 */
static void
server_reload(void)
{
	struct server_gen *cur = server_gen_cur, *sg;
	struct oidc_source *src;
	struct config *nc;
	int i;

	nc = server_reload_read(cur->sg_cfg->cf_file);
	if (nc == NULL) {
		log_warnx("reload: the file has errors; configuration %u "
		          "stays",
		    cur->sg_id);
		return;
	}
	if (server_reload_fixed(cur->sg_cfg, nc) > 0 ||
	    upstream_resolve(nc) == -1 ||
	    server_reload_source(cur, nc, &src) == -1) {
		log_warnx(
		    "reload: refused; configuration %u stays", cur->sg_id);
		config_free(nc);
		return;
	}
	sg = server_gen_new(nc, src, cur->sg_id + 1);
	if (sg == NULL) {
		log_warnx("reload: out of memory; configuration %u stays",
		    cur->sg_id);
		return;
	}
	__atomic_store_n(&log_level, nc->cf_log_level, __ATOMIC_RELAXED);
	__atomic_store_n(&log_format, nc->cf_log_format, __ATOMIC_RELAXED);
	for (i = 0; i < server_nworkers; i++) {
		/* A worker that has not taken the previous reload's yet
		 * never will: this one replaces it. */
		server_gen_release(__atomic_exchange_n(
		    &server_workers[i].w_next_gen, sg, __ATOMIC_ACQ_REL));
		server_mail(&server_workers[i], 'R');
	}
	/* New connections take the new certificate; open ones keep theirs. */
	tls_reload(nc);
	server_gen_cur = sg;
	server_gen_release(cur);
	log_info("reload: configuration %u in force: %zu routes, upstream "
	         "%s (and %zu named); configurations held=%d",
	    sg->sg_id, policy_table_count(nc->cf_routes),
	    nc->cf_upstream.cu_hostport, nc->cf_nupstreams,
	    __atomic_load_n(&server_gens_live, __ATOMIC_RELAXED));
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
server_run(struct config *cfg)
{
	struct oidc_source *src = NULL;
	struct server_gen *sg;
	sigset_t set;
	int i, sig, started = 0, rc = -1;

	server_raise_nofile();
	if (upstream_resolve(cfg) == -1) {
		config_free(cfg);
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Workers never see the signals; the main thread waits for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	server_nworkers = cfg->cf_workers;
	oidc_provider_set_announce(server_announce_provider);
	/* The first fetch starts once worker 0's loop runs: gatehouse starts
	 * while the provider is down, and says so on readyz. */
	if (oidc_configured(cfg) && (src = oidc_source_new()) == NULL) {
		config_free(cfg);
		return -1;
	}
	sg = server_gen_new(cfg, src, 1);
	if (sg == NULL)
		return -1;
	server_gen_cur = sg;
	server_workers = calloc(server_nworkers, sizeof(*server_workers));
	if (server_workers == NULL) {
		for (i = 0; i < server_nworkers; i++)
			server_gen_release(sg);
		goto done;
	}
	tls_start(cfg);
	for (i = 0; i < server_nworkers; i++) {
		if (server_worker_init(&server_workers[i], sg, i) == -1) {
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
	log_info("listening on %s:%d%s with %d workers", cfg->cf_listen_host,
	    cfg->cf_listen_port, cfg->cf_listen_tls ? " (tls)" : "",
	    server_nworkers);
	if (cfg->cf_redirect_host != NULL)
		log_info("redirecting http on %s:%d to https",
		    cfg->cf_redirect_host, cfg->cf_redirect_port);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			server_reload();
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
	for (i = 0; i < server_nworkers; i++) {
		/* A worker whose generation was never built still holds
		 * its reference on the first one. */
		if (server_workers[i].w_gen == NULL)
			server_gen_release(sg);
		server_worker_cleanup(&server_workers[i]);
	}
	free(server_workers);
	server_workers = NULL;
	tls_stop();
	if (rc == 0)
		log_info("stopped");
done:
	server_gen_release(server_gen_cur);
	server_gen_cur = NULL;
	/* The signals stay blocked: a second SIGTERM during the drain, or
	 * one that arrives now, must not kill the process mid-exit. */
	return rc;
}
