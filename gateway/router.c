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
#include "path.h"
#include "policy.h"
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
router_config_check(struct config *cfg, config_report_fn *report, void *arg)
{
	const char *p = cfg->cf_auth_prefix;
	size_t n = strlen(p);

	if (p[0] != '/' || n < 2 || p[n - 1] == '/' ||
	    strpbrk(p, " \t?#%") != NULL) {
		report(arg, 0,
		    "auth_prefix must be a path such as /.auth, without a "
		    "trailing slash");
		return 1;
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

/* A route denies: 403 naming the route, never the criteria (so a refusal
 * does not teach what would pass). */
static void
router_deny(struct request_ctx *rq, const struct policy_route *route)
{
	char msg[256], pat[128];

	rq->rq_event = "deny";
	if (route == NULL) {
		log_info("deny id=%s path=\"%s\" rule=none", rq->rq_id,
		    log_sanitize(pat, sizeof(pat), rq->rq_normpath));
		errpage_send(rq, 403, "access_denied",
		    "No access rule allows this request.", 0);
		return;
	}
	log_info("deny id=%s path=\"%s\" rule=\"%s\" line=%d", rq->rq_id,
	    log_sanitize(msg, sizeof(msg), rq->rq_normpath),
	    log_sanitize(pat, sizeof(pat), policy_route_pattern(route)),
	    policy_route_line(route));
	snprintf(msg, sizeof(msg),
	    "The access rule for %s does not allow this "
	    "request.",
	    policy_route_pattern(route));
	errpage_send(rq, 403, "access_denied", msg, 0);
}

/*
 * Split the target into path and query, normalise the path (policies/path)
 * and keep both: rq_normpath is what routes match, rq_path (normalised
 * path plus the query as sent) is what the upstream receives, so the check
 * and the use cannot disagree.  Returns 0, or -1 when a 400 has been sent.
 */
static int
router_normalise(struct request_ctx *rq, const char *uri)
{
	const char *q = strchr(uri, '?');
	struct gh_error err;
	char *raw;

	raw = strndup(uri, q != NULL ? (size_t)(q - uri) : strlen(uri));
	if (raw == NULL) {
		errpage_send(rq, 500, "internal", "Out of memory.", 1);
		return -1;
	}
	rq->rq_normpath = path_normalise_dup(raw, 0, &err);
	free(raw);
	if (rq->rq_normpath == NULL) {
		log_info("bad_path id=%s reason=\"%s\"", rq->rq_id, err.ge_msg);
		errpage_send(rq, 400, "bad_path",
		    "The request path cannot be used safely.", 1);
		return -1;
	}
	if (asprintf(&rq->rq_path, "%s%s", rq->rq_normpath,
	        q != NULL ? q : "") == -1) {
		rq->rq_path = NULL;
		errpage_send(rq, 500, "internal", "Out of memory.", 1);
		return -1;
	}
	return 0;
}

void
router_request_cb(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const struct config *cfg;
	const struct policy_route *route = NULL;
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
	uri = evhttp_request_get_uri(req);
	if (rq->rq_method == NULL) {
		rq->rq_method = "OTHER";
		errpage_send(rq, 405, "method_not_allowed",
		    "This method is not allowed.", 0);
		return;
	}
	if (strlen(uri) > cfg->cf_max_request_line) {
		errpage_send(rq, 414, "uri_too_long",
		    "The request URI is longer than this gateway accepts.", 1);
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
	if (router_normalise(rq, uri) == -1)
		return;
	plen = strlen(cfg->cf_auth_prefix);
	if (strncmp(rq->rq_path, cfg->cf_auth_prefix, plen) == 0 &&
	    (rq->rq_path[plen] == '/' || rq->rq_path[plen] == '\0' ||
	        rq->rq_path[plen] == '?')) {
		router_endpoint(rq, rq->rq_path + plen);
		return;
	}
	if (cfg->cf_routes != NULL) {
		route = policy_match(
		    cfg->cf_routes, rq->rq_method, rq->rq_normpath);
		if (route == NULL) {
			router_deny(rq, NULL);
			return;
		}
	}
	switch (route != NULL ? policy_route_action(route)
	                      : POLICY_ACTION_ANONYMOUS) {
	case POLICY_ACTION_ANONYMOUS:
		(void)proxy_forward(rq);
		return;
	case POLICY_ACTION_DENY:
	default:
		router_deny(rq, route);
		return;
	}
}
