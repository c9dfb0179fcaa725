/* SPDX-License-Identifier: ISC */
/*
 * forward_auth.c: /.auth/verify.  The same route table and sessions as
 * proxy mode; only the last step differs: the verdict and the identity go
 * back to the front proxy in headers instead of the request going on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "core/config.h"
#include "core/log.h"
#include "http/errpage.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"
#include "path.h"
#include "policy.h"
#include "route/forward_auth.h"
#include "session/session.h"

/* Sorted by name: looked up with bsearch. */
static const struct config_key forward_auth_keys[] = {
    {"forward_auth_peers", config_parse_cidrs,
        offsetof(struct config, cf_forward_auth_peers), "127.0.0.0/8 ::1",
        "Addresses or CIDR blocks that may ask /.auth/verify (each must "
        "also be in trusted_proxies); loopback only by default, empty "
        "for nobody.",
        0},
    {"forward_auth_tokens", config_parse_bool,
        offsetof(struct config, cf_forward_auth_tokens), "off",
        "With forward_access_token, also put the access token in "
        "/.auth/verify's answer for the front proxy to hand on.",
        0},
};
const struct config_module forward_auth_config_module = {"forward_auth",
    forward_auth_keys, sizeof(forward_auth_keys) / sizeof(forward_auth_keys[0]),
    NULL, NULL};

/*
 * The value of header `name` in hdrs into *value (borrowed, its first
 * copy; NULL when absent).  Returns -1 when it is repeated with different
 * values: which copy a front proxy set and which the client sent cannot be told
 * apart.
 */
static int
forward_auth_single(const struct http1_hdr *hdrs, int nhdrs, const char *name,
    const char **value)
{
	size_t n = strlen(name);
	int i;

	*value = NULL;
	for (i = 0; i < nhdrs; i++) {
		if (hdrs[i].hh_nlen != n ||
		    strcasecmp(hdrs[i].hh_name, name) != 0)
			continue;
		if (*value == NULL)
			*value = hdrs[i].hh_value;
		else if (strcmp(*value, hdrs[i].hh_value) != 0)
			return -1;
	}
	return 0;
}

static int
forward_auth_method(const struct http1_hdr *hdrs, int nhdrs,
    const char *own_method, const char **method, struct gh_error *err)
{
	const char *m;

	if (forward_auth_single(hdrs, nhdrs, "X-Forwarded-Method", &m) == -1) {
		gh_error_set(err, "method_conflict",
		    "X-Forwarded-Method is repeated with different values");
		return 400;
	}
	/* Without the header the method is the verify request's own: nginx's
	 * auth_request and Envoy's ext_authz send the original one. */
	if (m == NULL)
		m = own_method;
	/* Security: the method is taken exactly as proxy mode takes it (one
	 * rule, policy_method_valid), never mapped onto a smaller set, so a
	 * route naming MKCOL or LOCK matches here as it does there. */
	if (m == NULL || !policy_method_valid(m, strlen(m))) {
		gh_error_set(err, "method_invalid",
		    "X-Forwarded-Method is not an upper-case method token");
		return 400;
	}
	if (!http1_method_served(m)) {
		gh_error_set(err, "method_not_served",
		    "CONNECT and TRACE are not served");
		return 405;
	}
	*method = m;
	return 0;
}

int
forward_auth_target_parse(const struct http1_hdr *hdrs, int nhdrs,
    const char *own_method, struct forward_auth_target *t, struct gh_error *err)
{
	const char *fwd, *orig, *uri, *method;
	int status;

	memset(t, 0, sizeof(*t));
	status = forward_auth_method(hdrs, nhdrs, own_method, &method, err);
	if (status != 0)
		return status;
	if (forward_auth_single(hdrs, nhdrs, "X-Forwarded-Uri", &fwd) == -1 ||
	    forward_auth_single(hdrs, nhdrs, "X-Original-URI", &orig) == -1) {
		gh_error_set(err, "uri_conflict",
		    "a URI header is repeated with different values");
		return 400;
	}
	/* Security: a front proxy sets one of the two and passes the
	 * client's other one on (nginx sets X-Original-URI, Traefik
	 * X-Forwarded-Uri); preferring either would let the client's copy
	 * name the request judged.  Two that disagree are refused. */
	if (fwd != NULL && orig != NULL && strcmp(fwd, orig) != 0) {
		gh_error_set(err, "uri_conflict",
		    "X-Forwarded-Uri and X-Original-URI differ");
		return 400;
	}
	uri = fwd != NULL ? fwd : orig;
	if (uri == NULL || uri[0] != '/') {
		gh_error_set(err, "uri_missing",
		    "X-Forwarded-Uri or X-Original-URI must name the request");
		return 400;
	}
	if (path_target_normalise(uri, &t->ft_normpath, &t->ft_path, err) == -1)
		return err != NULL && err->ge_code != NULL &&
		        strcmp(err->ge_code, "path_nomem") == 0
		    ? 500
		    : 400;
	t->ft_method = method;
	return 0;
}

void
forward_auth_target_cleanup(struct forward_auth_target *t)
{
	free(t->ft_normpath);
	t->ft_normpath = NULL;
	free(t->ft_path);
	t->ft_path = NULL;
	t->ft_method = NULL;
}

int
forward_auth_verify(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	const struct http1_req *r = rq->rq_hreq;
	struct forward_auth_target t;
	struct gh_error err;
	char why[160];
	int status;

	rq->rq_verify = 1;
	rq->rq_event = "verify";
	/* Security: the request to judge is named by headers; only a proxy
	 * we trust may name it, or anyone could ask about any path. */
	if (!rq->rq_peer_trusted) {
		log_info("verify id=%s client=%s result=untrusted_peer",
		    rq->rq_id, rq->rq_peer);
		errpage_send(rq, 403, "untrusted_proxy",
		    "Forward-auth is only answered for trusted_proxies.", 0);
		return -1;
	}
	/* Security: whose X-Forwarded-* are believed (a TLS terminator,
	 * say) is not who may ask for the verdict: the answer carries the
	 * identity, and with forward_auth_tokens the access token. */
	if (!config_cidrs_contains(&cfg->cf_forward_auth_peers, rq->rq_peer)) {
		log_info("verify id=%s client=%s result=not_forward_auth_peer",
		    rq->rq_id, rq->rq_peer);
		errpage_send(rq, 403, "not_forward_auth_peer",
		    "Forward-auth is only answered for forward_auth_peers.", 0);
		return -1;
	}
	status = forward_auth_target_parse(
	    r->hr_hdrs, r->hr_nhdrs, rq->rq_method, &t, &err);
	if (status != 0) {
		log_info("verify id=%s result=%s reason=\"%s\"", rq->rq_id,
		    err.ge_code, log_sanitize(why, sizeof(why), err.ge_msg));
		if (status == 405)
			errpage_send(rq, 405, "method_not_allowed",
			    "This method is not allowed.", 0);
		else if (status == 400)
			errpage_send(rq, 400, "bad_request",
			    "The forwarded request cannot be judged safely.",
			    0);
		else
			errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return -1;
	}
	/* The method is borrowed from the head, which lives as long as rq. */
	rq->rq_method = t.ft_method;
	free(rq->rq_path);
	rq->rq_path = t.ft_path;
	free(rq->rq_normpath);
	rq->rq_normpath = t.ft_normpath;
	return 0;
}

/* Turn "Name: value\r\n" lines into response headers. */
static void
forward_auth_copy_lines(struct resp_hdrs *out, const char *lines)
{
	const char *p = lines, *e, *colon, *value;
	char name[64];
	size_t vlen;

	while (p != NULL && *p != '\0') {
		e = strstr(p, "\r\n");
		if (e == NULL)
			break;
		colon = memchr(p, ':', e - p);
		if (colon != NULL && (size_t)(colon - p) < sizeof(name)) {
			memcpy(name, p, colon - p);
			name[colon - p] = '\0';
			/* The lines are gatehouse's own ("Name: value"), but
			 * a bare "Name:" must not read past the line. */
			value = colon + 1;
			if (value < e && *value == ' ')
				value++;
			vlen = (size_t)(e - value);
			resp_hdrs_addn(out, name, value, vlen);
			if (strcmp(name, "X-Forwarded-User") == 0)
				resp_hdrs_addn(
				    out, "X-Auth-Request-User", value, vlen);
			else if (strcmp(name, "X-Forwarded-Email") == 0)
				resp_hdrs_addn(
				    out, "X-Auth-Request-Email", value, vlen);
			else if (strcmp(name, "X-MS-TOKEN-AAD-ACCESS-TOKEN") ==
			    0)
				resp_hdrs_addn(out,
				    "X-Auth-Request-Access-Token", value, vlen);
		}
		p = e + 2;
	}
}

void
forward_auth_reply(struct request_ctx *rq, int status)
{
	struct resp_hdrs *out = request_out(rq);
	struct evbuffer *body = evbuffer_new();

	if (rq->rq_upstream_hdrs != NULL)
		forward_auth_copy_lines(out, rq->rq_upstream_hdrs);
	else if (rq->rq_session != NULL)
		forward_auth_copy_lines(out, rq->rq_session->se_ident);
	resp_hdrs_add(out, "Content-Type", "application/json");
	resp_hdrs_add(out, "Cache-Control", "no-store");
	if (body != NULL)
		evbuffer_add_printf(body, "{\"status\":\"allowed\"}\n");
	request_reply(rq, status, "OK", body);
	evbuffer_free(body);
}
