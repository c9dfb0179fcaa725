/* SPDX-License-Identifier: ISC */
/*
 * http_client.c: libcurl's multi interface on a libevent event_base, after
 * curl's hiperfifo example: curl tells us which sockets to watch and when
 * to wake it (socket and timer callbacks), libevent tells curl when a
 * socket is ready, and finished transfers are collected with
 * curl_multi_info_read and handed to their done callbacks.
 */
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "core/log.h"
#include "core/magic.h"
#include "oidc/http_client.h"

#define HTTPC_MAGIC 0x48545043u      /* "HTPC" */
#define HTTPC_XFER_MAGIC 0x48585652u /* "HXFR" */
#define HTTPC_SOCK_MAGIC 0x48534f4bu /* "HSOK" */

#ifdef GATEHOUSE_VERSION
#define HTTPC_USER_AGENT "gatehouse/" GATEHOUSE_VERSION
#else
#define HTTPC_USER_AGENT "gatehouse"
#endif

/* The client: one per worker; members use the h_ prefix. */
struct httpc {
	uint32_t h_magic;
	struct event_base *h_base; /* borrowed */
	CURLM *h_multi;
	struct event h_timer;             /* curl's single timeout */
	int h_timer_set;                  /* h_timer was assigned */
	TAILQ_HEAD(, httpc_xfer) h_xfers; /* pending transfers */
	TAILQ_HEAD(, httpc_sock) h_socks; /* sockets curl asked us to watch */
	struct httpc_xfer *h_current;     /* whose done callback is running */
	int h_busy;                       /* inside httpc_info_check */
	int h_dying;                      /* httpc_free was called while busy */
	int h_running;
	char *h_ca_file;
	char *h_user_agent;
	char *h_proxy;
	struct curl_slist *h_resolve; /* provider_resolve, or NULL */
	long h_connect_timeout_ms;
	long h_timeout_ms;
	size_t h_max;
};

struct httpc_xfer {
	uint32_t x_magic;
	struct httpc *x_h;
	TAILQ_ENTRY(httpc_xfer) x_entry;
	CURL *x_easy;
	struct curl_slist *x_hdrs;
	char *x_body; /* our copy of the request body, cleansed */
	size_t x_body_len;
	char *x_buf; /* response body */
	size_t x_len;
	size_t x_cap;
	int x_too_large;
	httpc_done_fn *x_done;
	void *x_arg;
	char x_errbuf[CURL_ERROR_SIZE];
};

/* A socket curl watches, attached to it with curl_multi_assign. */
struct httpc_sock {
	uint32_t s_magic;
	struct httpc *s_h;
	TAILQ_ENTRY(httpc_sock) s_entry;
	curl_socket_t s_fd;
	struct event s_ev;
	int s_added; /* s_ev is assigned */
};

static struct httpc *
httpc_cast(void *arg)
{
	return MAGIC_CAST(struct httpc, h_magic, HTTPC_MAGIC, arg);
}

static struct httpc_xfer *
httpc_xfer_cast(void *arg)
{
	return MAGIC_CAST(struct httpc_xfer, x_magic, HTTPC_XFER_MAGIC, arg);
}

int
httpc_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	return 0;
}

void
httpc_global_cleanup(void)
{
	curl_global_cleanup();
}

const char *
httpc_status_str(enum httpc_status st)
{
	switch (st) {
	case HTTPC_OK:
		return "ok";
	case HTTPC_TIMEOUT:
		return "timeout";
	case HTTPC_DNS:
		return "dns";
	case HTTPC_CONNECT:
		return "connect";
	case HTTPC_TLS:
		return "tls";
	case HTTPC_TOO_LARGE:
		return "too_large";
	case HTTPC_ERROR:
		break;
	}
	return "error";
}

/* ---- sockets and the timer: curl <-> libevent ---- */

static void httpc_info_check(struct httpc *h);

static void
httpc_sock_free(struct httpc_sock *s)
{
	if (s == NULL)
		return;
	if (s->s_added)
		event_del(&s->s_ev);
	TAILQ_REMOVE(&s->s_h->h_socks, s, s_entry);
	s->s_magic = 0;
	free(s);
}

/* libevent: a socket is ready; tell curl, then collect what finished. */
static void
httpc_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *h = httpc_cast(arg);
	int action = 0;
	CURLMcode mc;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	mc = curl_multi_socket_action(h->h_multi, fd, action, &h->h_running);
	if (mc != CURLM_OK)
		log_warnx("httpc: curl_multi_socket_action: %s",
		    curl_multi_strerror(mc));
	httpc_info_check(h); /* may free h: the last thing done here */
}

/* libevent: curl's timeout expired. */
static void
httpc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *h = httpc_cast(arg);
	CURLMcode mc;

	(void)fd;
	(void)what;
	mc = curl_multi_socket_action(
	    h->h_multi, CURL_SOCKET_TIMEOUT, 0, &h->h_running);
	if (mc != CURLM_OK)
		log_warnx("httpc: curl_multi_socket_action: %s",
		    curl_multi_strerror(mc));
	httpc_info_check(h); /* may free h: the last thing done here */
}

/*
 * curl: (re)arm the one timer.  0 means "as soon as possible": it still
 * goes through the event loop, which is why a done callback never runs
 * from inside httpc_request.
 */
static int
httpc_multi_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct httpc *h = httpc_cast(arg);
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(&h->h_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (evtimer_add(&h->h_timer, &tv) == -1) {
		log_warnx("httpc: evtimer_add failed");
		return -1;
	}
	return 0;
}

/* curl: watch socket fd for `what` (CURL_POLL_*), or stop watching it. */
static int
httpc_multi_sock_cb(
    CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct httpc *h = httpc_cast(arg);
	struct httpc_sock *s = sockp;
	short kind;

	(void)easy;
	if (s != NULL && s->s_magic != HTTPC_SOCK_MAGIC)
		abort();
	if (what == CURL_POLL_REMOVE) {
		httpc_sock_free(s);
		return 0;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			log_warn("httpc: calloc");
			return -1;
		}
		s->s_magic = HTTPC_SOCK_MAGIC;
		s->s_h = h;
		s->s_fd = fd;
		TAILQ_INSERT_TAIL(&h->h_socks, s, s_entry);
		if (curl_multi_assign(h->h_multi, fd, s) != CURLM_OK) {
			httpc_sock_free(s);
			return -1;
		}
	}
	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s->s_added)
		event_del(&s->s_ev);
	s->s_added = 0;
	if (event_assign(&s->s_ev, h->h_base, fd, kind, httpc_event_cb, h) ==
	    -1)
		return -1;
	s->s_added = 1;
	if (event_add(&s->s_ev, NULL) == -1)
		return -1;
	return 0;
}

/* ---- transfers ---- */

static void
httpc_slist_free(struct curl_slist *l)
{
	struct curl_slist *p;

	/* Security: headers may hold Basic credentials; cleanse them. */
	for (p = l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* Free a transfer that is no longer in the multi handle nor the list. */
static void
httpc_xfer_free(struct httpc_xfer *x)
{
	if (x == NULL)
		return;
	if (x->x_easy != NULL)
		curl_easy_cleanup(x->x_easy);
	x->x_easy = NULL;
	httpc_slist_free(x->x_hdrs);
	x->x_hdrs = NULL;
	/* Security: request bodies carry secrets and codes, responses
	 * carry tokens. */
	if (x->x_body != NULL)
		explicit_bzero(x->x_body, x->x_body_len);
	free(x->x_body);
	x->x_body = NULL;
	if (x->x_buf != NULL)
		explicit_bzero(x->x_buf, x->x_cap);
	free(x->x_buf);
	x->x_buf = NULL;
	x->x_magic = 0;
	free(x);
}

/* Take a transfer out of its client (multi handle and list). */
static void
httpc_xfer_detach(struct httpc_xfer *x)
{
	struct httpc *h = x->x_h;
	CURLMcode mc;

	TAILQ_REMOVE(&h->h_xfers, x, x_entry);
	mc = curl_multi_remove_handle(h->h_multi, x->x_easy);
	if (mc != CURLM_OK)
		log_warnx("httpc: curl_multi_remove_handle: %s",
		    curl_multi_strerror(mc));
}

/* curl: response body bytes; abort as soon as the limit is passed. */
static size_t
httpc_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct httpc_xfer *x = httpc_xfer_cast(arg);
	size_t n = size * nmemb, cap;
	char *nbuf;

	if (n > x->x_h->h_max - x->x_len) {
		x->x_too_large = 1;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (x->x_len + n + 1 > x->x_cap) {
		cap = x->x_cap == 0 ? 4096 : x->x_cap;
		while (cap < x->x_len + n + 1)
			cap *= 2;
		if (cap > x->x_h->h_max + 1)
			cap = x->x_h->h_max + 1;
		nbuf = malloc(cap);
		if (nbuf == NULL)
			return 0;
		/* Not realloc: the old buffer may hold a token to cleanse. */
		if (x->x_buf != NULL) {
			memcpy(nbuf, x->x_buf, x->x_len);
			explicit_bzero(x->x_buf, x->x_cap);
			free(x->x_buf);
		}
		x->x_buf = nbuf;
		x->x_cap = cap;
	}
	memcpy(x->x_buf + x->x_len, ptr, n);
	x->x_len += n;
	x->x_buf[x->x_len] = '\0';
	return n;
}

static enum httpc_status
httpc_status_from_curl(CURLcode rc, int too_large)
{
	switch (rc) {
	case CURLE_OK:
		return HTTPC_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTPC_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
		return HTTPC_DNS;
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return HTTPC_CONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return HTTPC_TLS;
	case CURLE_FILESIZE_EXCEEDED:
		return HTTPC_TOO_LARGE;
	case CURLE_WRITE_ERROR:
		if (too_large)
			return HTTPC_TOO_LARGE;
		break;
	default:
		break;
	}
	return HTTPC_ERROR;
}

/* A transfer finished: out of the multi handle, to its callback, freed. */
static void
httpc_xfer_finish(struct httpc_xfer *x, CURLcode rc)
{
	struct httpc *h = x->x_h;
	struct httpc_result res;
	char msg[96];
	char *ct = NULL;

	httpc_xfer_detach(x);
	memset(&res, 0, sizeof(res));
	res.hr_status = httpc_status_from_curl(rc, x->x_too_large);
	curl_easy_getinfo(x->x_easy, CURLINFO_RESPONSE_CODE, &res.hr_code);
	curl_easy_getinfo(x->x_easy, CURLINFO_CONTENT_TYPE, &ct);
	curl_easy_getinfo(x->x_easy, CURLINFO_TOTAL_TIME, &res.hr_seconds);
	if (res.hr_status == HTTPC_CONNECT) {
		long os_errno = 0;

		curl_easy_getinfo(x->x_easy, CURLINFO_OS_ERRNO, &os_errno);
		res.hr_errno = (int)os_errno;
	}
	res.hr_content_type = ct;
	res.hr_body = "";
	if (res.hr_status == HTTPC_OK) {
		if (x->x_buf != NULL) {
			res.hr_body = x->x_buf;
			res.hr_len = x->x_len;
		}
	} else if (res.hr_status == HTTPC_TOO_LARGE) {
		snprintf(
		    msg, sizeof(msg), "response body over %zu bytes", h->h_max);
		res.hr_error = msg;
	} else if (x->x_errbuf[0] != '\0')
		res.hr_error = x->x_errbuf;
	else
		res.hr_error = curl_easy_strerror(rc);
	h->h_current = x;
	x->x_done(&res, x->x_arg);
	h->h_current = NULL;
	httpc_xfer_free(x);
}

static void httpc_destroy(struct httpc *h);

/*
 * Collect finished transfers.  A done callback may start or cancel
 * transfers (curl_multi_remove_handle drops the removed handle's pending
 * message) or free the client, which is then destroyed here, last.
 */
static void
httpc_info_check(struct httpc *h)
{
	CURLMsg *msg;
	CURLcode rc;
	CURL *easy;
	char *priv;
	int left;

	h->h_busy = 1;
	while (!h->h_dying) {
		msg = curl_multi_info_read(h->h_multi, &left);
		if (msg == NULL)
			break;
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		rc = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		httpc_xfer_finish(httpc_xfer_cast(priv), rc);
	}
	h->h_busy = 0;
	if (h->h_dying)
		httpc_destroy(h);
}

/* Options that hold for every transfer, security first. */
static int
httpc_easy_setup(struct httpc *h, struct httpc_xfer *x, long timeout_ms)
{
	CURL *e = x->x_easy;
	CURLcode rc = CURLE_OK;

#define HTTPC_SET(opt, val)                                                    \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(e, (opt), (val));                \
	} while (0)
	HTTPC_SET(CURLOPT_PRIVATE, x);
	HTTPC_SET(CURLOPT_ERRORBUFFER, x->x_errbuf);
	HTTPC_SET(CURLOPT_WRITEFUNCTION, httpc_write_cb);
	HTTPC_SET(CURLOPT_WRITEDATA, x);
	HTTPC_SET(CURLOPT_NOSIGNAL, 1L);
	/* Security: http(s) only, no redirects (a 3xx is the answer): a
	 * token request carries the client secret and a code or refresh
	 * token, and a provider's redirect must not move them elsewhere.
	 * MAXREDIRS 0 as well, so turning FOLLOWLOCATION on by mistake
	 * still follows nothing (tests/integration/test_faults.py). */
	HTTPC_SET(CURLOPT_PROTOCOLS_STR, "http,https");
	HTTPC_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	HTTPC_SET(CURLOPT_FOLLOWLOCATION, 0L);
	HTTPC_SET(CURLOPT_MAXREDIRS, 0L);
	/* Security: TLS verification is not configurable. */
	HTTPC_SET(CURLOPT_SSL_VERIFYPEER, 1L);
	HTTPC_SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->h_ca_file != NULL)
		HTTPC_SET(CURLOPT_CAINFO, h->h_ca_file);
	/* Security: no proxy from http_proxy/HTTPS_PROXY unless configured,
	 * so the environment cannot route tokens elsewhere. */
	HTTPC_SET(CURLOPT_PROXY, h->h_proxy != NULL ? h->h_proxy : "");
	/* The name is still the one TLS verifies: only where to connect
	 * changes. */
	if (h->h_resolve != NULL)
		HTTPC_SET(CURLOPT_RESOLVE, h->h_resolve);
	HTTPC_SET(CURLOPT_CONNECTTIMEOUT_MS, h->h_connect_timeout_ms);
	HTTPC_SET(CURLOPT_TIMEOUT_MS, timeout_ms);
	/* Refuse early a body announced larger than the limit; the write
	 * callback catches the rest (chunked, lying lengths). */
	HTTPC_SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->h_max);
	HTTPC_SET(CURLOPT_USERAGENT, h->h_user_agent);
#undef HTTPC_SET
	return rc == CURLE_OK ? 0 : -1;
}

/* Append one header line to the transfer's list. */
static int
httpc_hdr_add(struct httpc_xfer *x, const char *line)
{
	struct curl_slist *l;

	l = curl_slist_append(x->x_hdrs, line);
	if (l == NULL)
		return -1;
	x->x_hdrs = l;
	return 0;
}

/* POST: our own copy of the body (cleansed when the transfer ends). */
static CURLcode
httpc_easy_post(struct httpc_xfer *x, const struct httpc_req *req)
{
	CURLcode rc;

	x->x_body_len = req->hq_body != NULL ? req->hq_body_len : 0;
	x->x_body = malloc(x->x_body_len + 1);
	if (x->x_body == NULL)
		return CURLE_OUT_OF_MEMORY;
	if (x->x_body_len > 0)
		memcpy(x->x_body, req->hq_body, x->x_body_len);
	x->x_body[x->x_body_len] = '\0';
	rc = curl_easy_setopt(x->x_easy, CURLOPT_POST, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(x->x_easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)x->x_body_len);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(x->x_easy, CURLOPT_POSTFIELDS, x->x_body);
	/* No "Expect: 100-continue" round trip. */
	if (rc == CURLE_OK && httpc_hdr_add(x, "Expect:") == -1)
		rc = CURLE_OUT_OF_MEMORY;
	return rc;
}

/* The method, body and headers of one request. */
static int
httpc_easy_request(
    struct httpc_xfer *x, const struct httpc_req *req, struct gh_error *err)
{
	const char *const *hp;
	CURLcode rc = CURLE_OK;

	if (strcmp(req->hq_method, "GET") != 0 &&
	    strcmp(req->hq_method, "POST") != 0) {
		gh_error_set(err, "httpc_method", "unsupported method");
		return -1;
	}
	for (hp = req->hq_headers; hp != NULL && *hp != NULL; hp++)
		if (rc == CURLE_OK && httpc_hdr_add(x, *hp) == -1)
			rc = CURLE_OUT_OF_MEMORY;
	if (rc == CURLE_OK && strcmp(req->hq_method, "GET") == 0)
		rc = curl_easy_setopt(x->x_easy, CURLOPT_HTTPGET, 1L);
	else if (rc == CURLE_OK)
		rc = httpc_easy_post(x, req);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(x->x_easy, CURLOPT_HTTPHEADER, x->x_hdrs);
	if (rc != CURLE_OK) {
		gh_error_set(
		    err, "httpc_setopt", "curl: %s", curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

struct httpc_xfer *
httpc_request(struct httpc *h, const struct httpc_req *req, httpc_done_fn *done,
    void *arg, struct gh_error *err)
{
	struct httpc_xfer *x = NULL;
	CURLMcode mc;
	CURLcode rc;
	long timeout_ms;

	if (h == NULL || h->h_dying || req == NULL || req->hq_url == NULL ||
	    req->hq_method == NULL || done == NULL) {
		gh_error_set(err, "httpc_args", "invalid request");
		goto fail;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		gh_error_set(err, "httpc_nomem", "out of memory");
		goto fail;
	}
	x->x_magic = HTTPC_XFER_MAGIC;
	x->x_h = h;
	x->x_done = done;
	x->x_arg = arg;
	x->x_easy = curl_easy_init();
	if (x->x_easy == NULL) {
		gh_error_set(err, "httpc_nomem", "curl_easy_init failed");
		goto fail;
	}
	timeout_ms =
	    req->hq_timeout_ms > 0 ? req->hq_timeout_ms : h->h_timeout_ms;
	if (httpc_easy_setup(h, x, timeout_ms) == -1) {
		gh_error_set(err, "httpc_setopt", "curl option refused");
		goto fail;
	}
	if (httpc_easy_request(x, req, err) == -1)
		goto fail;
	rc = curl_easy_setopt(x->x_easy, CURLOPT_URL, req->hq_url);
	if (rc != CURLE_OK) {
		gh_error_set(
		    err, "httpc_url", "curl: %s", curl_easy_strerror(rc));
		goto fail;
	}
	/* Only arms the timer (see httpc_multi_timer_cb): no callback yet. */
	mc = curl_multi_add_handle(h->h_multi, x->x_easy);
	if (mc != CURLM_OK) {
		gh_error_set(
		    err, "httpc_multi", "curl: %s", curl_multi_strerror(mc));
		goto fail;
	}
	TAILQ_INSERT_TAIL(&h->h_xfers, x, x_entry);
	return x;
fail:
	httpc_xfer_free(x);
	return NULL;
}

void
httpc_cancel(struct httpc_xfer *x)
{
	if (x == NULL)
		return;
	x = httpc_xfer_cast(x);
	if (x->x_h->h_current == x)
		return; /* its done callback is running; freed after it */
	httpc_xfer_detach(x);
	httpc_xfer_free(x);
}

/* ---- the client ---- */

static char *
httpc_strdup_opt(const char *s, int *failed)
{
	char *d;

	if (s == NULL || *s == '\0')
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*failed = 1;
	return d;
}

/* provider_resolve's entries as curl's list; -1 when out of memory. */
static int
httpc_resolve_list(struct httpc *h, const char *spec)
{
	struct curl_slist *l;
	char *copy, *tok, *save = NULL;

	copy = strdup(spec);
	if (copy == NULL)
		return -1;
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		l = curl_slist_append(h->h_resolve, tok);
		if (l == NULL) {
			free(copy);
			return -1;
		}
		h->h_resolve = l;
	}
	free(copy);
	return 0;
}

struct httpc *
httpc_new(struct event_base *base, const struct httpc_options *opt,
    struct gh_error *err)
{
	static const struct httpc_options defaults;
	struct httpc *h = NULL;
	int failed = 0;

	if (base == NULL) {
		gh_error_set(err, "httpc_args", "no event base");
		goto fail;
	}
	if (opt == NULL)
		opt = &defaults;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		gh_error_set(err, "httpc_nomem", "out of memory");
		goto fail;
	}
	h->h_magic = HTTPC_MAGIC;
	h->h_base = base;
	TAILQ_INIT(&h->h_xfers);
	TAILQ_INIT(&h->h_socks);
	h->h_connect_timeout_ms = opt->ho_connect_timeout_ms > 0
	    ? opt->ho_connect_timeout_ms
	    : HTTPC_DEFAULT_CONNECT_TIMEOUT_MS;
	h->h_timeout_ms = opt->ho_timeout_ms > 0 ? opt->ho_timeout_ms
	                                         : HTTPC_DEFAULT_TIMEOUT_MS;
	h->h_max = opt->ho_max_response_size > 0
	    ? opt->ho_max_response_size
	    : HTTPC_DEFAULT_MAX_RESPONSE_SIZE;
	h->h_ca_file = httpc_strdup_opt(opt->ho_ca_file, &failed);
	h->h_proxy = httpc_strdup_opt(opt->ho_proxy, &failed);
	if (opt->ho_resolve != NULL &&
	    httpc_resolve_list(h, opt->ho_resolve) == -1)
		failed = 1;
	h->h_user_agent = httpc_strdup_opt(
	    opt->ho_user_agent != NULL ? opt->ho_user_agent : HTTPC_USER_AGENT,
	    &failed);
	if (failed) {
		gh_error_set(err, "httpc_nomem", "out of memory");
		goto fail;
	}
	if (evtimer_assign(&h->h_timer, base, httpc_timer_cb, h) == -1) {
		gh_error_set(err, "httpc_event", "evtimer_assign failed");
		goto fail;
	}
	h->h_timer_set = 1;
	h->h_multi = curl_multi_init();
	if (h->h_multi == NULL) {
		gh_error_set(err, "httpc_multi", "curl_multi_init failed");
		goto fail;
	}
	if (curl_multi_setopt(h->h_multi, CURLMOPT_SOCKETFUNCTION,
	        httpc_multi_sock_cb) != CURLM_OK ||
	    curl_multi_setopt(h->h_multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
	    curl_multi_setopt(h->h_multi, CURLMOPT_TIMERFUNCTION,
	        httpc_multi_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(h->h_multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
		gh_error_set(err, "httpc_multi", "curl_multi_setopt failed");
		goto fail;
	}
	return h;
fail:
	if (h != NULL)
		httpc_destroy(h);
	return NULL;
}

/* Drop every pending transfer without its callback. */
static void
httpc_xfers_drop(struct httpc *h)
{
	struct httpc_xfer *x;

	while ((x = TAILQ_FIRST(&h->h_xfers)) != NULL) {
		httpc_xfer_detach(x);
		httpc_xfer_free(x);
	}
}

static void
httpc_destroy(struct httpc *h)
{
	struct httpc_sock *s;

	if (h->h_multi != NULL) {
		httpc_xfers_drop(h);
		/* May still call the socket and timer callbacks. */
		curl_multi_cleanup(h->h_multi);
		h->h_multi = NULL;
	}
	while ((s = TAILQ_FIRST(&h->h_socks)) != NULL)
		httpc_sock_free(s);
	if (h->h_timer_set)
		evtimer_del(&h->h_timer);
	free(h->h_ca_file);
	free(h->h_proxy);
	curl_slist_free_all(h->h_resolve);
	free(h->h_user_agent);
	h->h_magic = 0;
	free(h);
}

void
httpc_free(struct httpc *h)
{
	if (h == NULL)
		return;
	h = httpc_cast(h);
	if (h->h_busy) {
		/* Inside a done callback: drop the others now, destroy once
		 * the callback has returned (httpc_info_check). */
		httpc_xfers_drop(h);
		h->h_dying = 1;
		return;
	}
	httpc_destroy(h);
}

/* ---- escaping ---- */

/*
 * Escape s into dst (room for 3 * strlen(s) + 1) and return the length.
 * Plain memory, not an evbuffer, so a secret can be cleansed afterwards.
 */
static size_t
httpc_escape_mem(char *dst, const char *s, int form)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t n = 0;
	int keep;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == (form ? '*' : '~');
		if (keep)
			dst[n++] = (char)*p;
		else if (form && *p == ' ')
			dst[n++] = '+';
		else {
			dst[n++] = '%';
			dst[n++] = hex[*p >> 4];
			dst[n++] = hex[*p & 0x0f];
		}
	}
	dst[n] = '\0';
	return n;
}

static char *
httpc_escape_dup(const char *s, int form)
{
	char *out;

	out = malloc(strlen(s) * 3 + 1);
	if (out == NULL)
		return NULL;
	httpc_escape_mem(out, s, form);
	return out;
}

int
httpc_form_add(struct evbuffer *buf, const char *name, const char *value)
{
	char *tmp = NULL;
	size_t n = 0;
	int rv = -1;

	if (value == NULL)
		value = "";
	/* name '=' value, each byte at most 3 bytes, a leading '&'. */
	tmp = malloc(3 * (strlen(name) + strlen(value)) + 3);
	if (tmp == NULL)
		goto fail;
	if (evbuffer_get_length(buf) > 0)
		tmp[n++] = '&';
	n += httpc_escape_mem(tmp + n, name, 1);
	tmp[n++] = '=';
	n += httpc_escape_mem(tmp + n, value, 1);
	if (evbuffer_add(buf, tmp, n) == -1)
		goto fail;
	rv = 0;
fail:
	if (tmp != NULL)
		explicit_bzero(tmp, n);
	free(tmp);
	return rv;
}

char *
httpc_form_escape(const char *s)
{
	return httpc_escape_dup(s, 1);
}

char *
httpc_url_escape(const char *s)
{
	return httpc_escape_dup(s, 0);
}
