/* SPDX-License-Identifier: ISC */
/*
 * router.c: the evhttp generic callback.  Checks the request against the
 * limits, then sends /.auth/... to gatehouse's endpoints and everything else
 * down the pipeline to the upstream.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config.h"
#include "errpage.h"
#include "headers.h"
#include "log.h"
#include "proxy.h"
#include "request.h"
#include "router.h"
#include "server.h"

const struct config_key router_keys[] = {
    {"auth_prefix", config_parse_str, offsetof(struct config, cf_auth_prefix),
        "/.auth",
        "Path prefix of gatehouse's own endpoints (login, callback, "
        "logout, me, verify, healthz).",
        0},
};
const size_t router_nkeys = sizeof(router_keys) / sizeof(router_keys[0]);

int
router_config_check(struct config *cfg, const char **errstr)
{
	const char *p = cfg->cf_auth_prefix;
	size_t n = strlen(p);

	if (p[0] != '/' || n < 2 || p[n - 1] == '/' ||
	    strpbrk(p, " \t?#%") != NULL) {
		*errstr =
		    "auth_prefix must be a path such as /.auth, without a "
		    "trailing slash";
		return -1;
	}
	return 0;
}

static const char *
router_method(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return NULL;
	}
}

static void
router_healthz(struct request_ctx *rq)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(rq->rq_req);
	struct evbuffer *body = evbuffer_new();

	rq->rq_event = "healthz";
	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (body != NULL)
		evbuffer_add_printf(body, "{\"status\":\"ok\"}\n");
	request_reply(rq, 200, "OK", body);
	evbuffer_free(body);
}

/* /.auth/...: gatehouse's own endpoints.  `sub` is the part after the
 * prefix, query included. */
static void
router_endpoint(struct request_ctx *rq, const char *sub)
{
	size_t n = strcspn(sub, "?");

	rq->rq_event = "endpoint";
	if (n == 8 && strncmp(sub, "/healthz", 8) == 0) {
		router_healthz(rq);
		return;
	}
	errpage_send(
	    rq, 404, "not_found", "There is no such gatehouse endpoint.", 0);
}

void
router_request_cb(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const struct config *cfg;
	struct request_ctx *rq;
	const char *uri;
	size_t plen;
	int st;

	if (w == NULL || w->w_magic != WORKER_MAGIC)
		abort();
	cfg = w->w_cfg;
	rq = request_new(w, req);
	if (rq == NULL)
		return;
	rq->rq_peer_trusted = headers_peer_trusted(cfg, rq->rq_peer);
	headers_request_id(rq);
	rq->rq_method = router_method(evhttp_request_get_command(req));
	if (rq->rq_method == NULL) {
		rq->rq_method = "OTHER";
		errpage_send(rq, 405, "method_not_allowed",
		    "This method is not allowed.", 0);
		return;
	}
	uri = evhttp_request_get_uri(req);
	if (strlen(uri) > cfg->cf_max_request_line) {
		errpage_send(rq, 414, "uri_too_long",
		    "The request URI is longer than this gateway accepts.", 1);
		return;
	}
	rq->rq_path = strdup(uri);
	if (rq->rq_path == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 1);
		return;
	}
	st = headers_check_limits(cfg, evhttp_request_get_input_headers(req));
	if (st != 0) {
		errpage_send(rq, st,
		    st == 431 ? "headers_too_large" : "bad_request",
		    st == 431 ? "The request headers are larger than this "
		                "gateway accepts."
		              : "The request headers are malformed.",
		    1);
		return;
	}
	/* Only origin-form targets ("/path?query") are served. */
	if (uri[0] != '/') {
		errpage_send(rq, 400, "bad_request",
		    "The request target must be a path.", 1);
		return;
	}
	plen = strlen(cfg->cf_auth_prefix);
	if (strncmp(uri, cfg->cf_auth_prefix, plen) == 0 &&
	    (uri[plen] == '/' || uri[plen] == '\0' || uri[plen] == '?')) {
		router_endpoint(rq, uri + plen);
		return;
	}
	(void)proxy_forward(rq);
}
