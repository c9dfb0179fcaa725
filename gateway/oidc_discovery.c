/* SPDX-License-Identifier: ISC */
/*
 * oidc_discovery.c: the provider's metadata, per worker (S18).  Fetch the
 * discovery document, check it, fetch the JWKS, then keep both fresh on a
 * timer; when the provider is unreachable, retry with backoff while the
 * rest of the gateway keeps serving.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "config.h"
#include "http_client.h"
#include "jwks.h"
#include "log.h"
#include "oidc.h"
#include "oidc_int.h"
#include "server.h"

#define OIDC_PROVIDER_MAGIC 0x4f504e44u /* "OPND" */
#define OIDC_BACKOFF_MAX 60
#define OIDC_JWKS_MIN_INTERVAL 60 /* seconds between unknown-kid refetches */

enum oidc_fetch { FETCH_NONE, FETCH_DISCOVERY, FETCH_JWKS };

struct oidc_waiter {
	void (*ow_done)(void *arg, int fresh);
	void *ow_arg;
};

struct oidc_provider {
	uint32_t op_magic;
	struct worker *op_worker;
	const struct config *op_cfg;
	enum oidc_state op_state;
	struct oidc_meta op_meta;    /* in use */
	struct oidc_meta op_pending; /* checked, waiting for its JWKS */
	struct jwks *op_jwks;
	enum oidc_fetch op_fetch;
	struct httpc_xfer *op_xfer;
	struct event *op_timer;
	int op_backoff;
	time_t op_jwks_fetched;
	time_t op_refetched; /* last unknown-kid refetch */
	struct oidc_waiter *op_waiters;
	size_t op_nwaiters;
};

static void oidc_fetch_discovery(struct oidc_provider *op);

/* Queue done(arg, ...) for when the current fetch ends.  0 or -1. */
static int
oidc_waiter_add(struct oidc_provider *op, void (*done)(void *, int), void *arg)
{
	struct oidc_waiter *nw;

	nw = reallocarray(op->op_waiters, op->op_nwaiters + 1, sizeof(*nw));
	if (nw == NULL)
		return -1;
	op->op_waiters = nw;
	nw[op->op_nwaiters].ow_done = done;
	nw[op->op_nwaiters].ow_arg = arg;
	op->op_nwaiters++;
	return 0;
}

static struct oidc_provider *
oidc_provider_cast(void *arg)
{
	struct oidc_provider *op = arg;

	if (op == NULL || op->op_magic != OIDC_PROVIDER_MAGIC)
		abort();
	return op;
}

void
oidc_meta_cleanup(struct oidc_meta *m)
{
	free(m->om_issuer);
	free(m->om_authorization_endpoint);
	free(m->om_token_endpoint);
	free(m->om_jwks_uri);
	free(m->om_end_session_endpoint);
	memset(m, 0, sizeof(*m));
}

static void
oidc_timer_in(struct oidc_provider *op, int seconds)
{
	struct timeval tv = {seconds, 0};

	evtimer_add(op->op_timer, &tv);
}

static void
oidc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct oidc_provider *op = oidc_provider_cast(arg);

	(void)fd;
	(void)what;
	if (op->op_fetch == FETCH_NONE)
		oidc_fetch_discovery(op);
}

static void
oidc_wake_waiters(struct oidc_provider *op, int fresh)
{
	struct oidc_waiter *w = op->op_waiters;
	size_t i, n = op->op_nwaiters;

	/* The callbacks may queue new waiters: detach the list first. */
	op->op_waiters = NULL;
	op->op_nwaiters = 0;
	for (i = 0; i < n; i++)
		w[i].ow_done(w[i].ow_arg, fresh);
	free(w);
}

/* A fetch failed: keep what we have (if anything) and retry later. */
static void
oidc_fetch_failed(struct oidc_provider *op, const char *what, const char *why)
{
	op->op_fetch = FETCH_NONE;
	op->op_xfer = NULL;
	oidc_meta_cleanup(&op->op_pending);
	if (op->op_state != OIDC_READY)
		op->op_state = OIDC_FAILED;
	op->op_backoff = op->op_backoff == 0
	    ? 1
	    : (op->op_backoff * 2 > OIDC_BACKOFF_MAX ? OIDC_BACKOFF_MAX
	                                             : op->op_backoff * 2);
	if (op->op_worker->w_id == 0)
		log_warnx("provider_error what=%s reason=\"%s\" retry_in=%ds",
		    what, why, op->op_backoff);
	oidc_timer_in(op, op->op_backoff);
	oidc_wake_waiters(op, 0);
}

/* Why an answer other than 200 is not used, for the log. */
static const char *
oidc_status_why(const struct httpc_result *res, char *buf, size_t size)
{
	/* Security: redirects are never followed (http_client.c), so a
	 * provider cannot move us to another host. */
	snprintf(buf, size, "answered HTTP %ld%s", res->hr_code,
	    res->hr_code >= 300 && res->hr_code < 400
	        ? ", a redirect (not followed)"
	        : "");
	return buf;
}

static int
oidc_endpoint_ok(const struct config *cfg, const char *url)
{
	const char *errstr;
	char *host = NULL;
	int https, loopback, ok;

	if (url == NULL ||
	    config_url_split(url, &https, &host, NULL, NULL, &errstr) == -1)
		return 0;
	loopback = strcmp(host, "127.0.0.1") == 0 ||
	    strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0;
	/* Plain http only where the configured provider is itself on
	 * loopback (tests, the demo): never a downgrade for a real one. */
	ok = https || (loopback && oidc_config_loopback(cfg));
	free(host);
	return ok;
}

static char *
oidc_json_dup(json_t *doc, const char *name)
{
	const char *s = json_string_value(json_object_get(doc, name));

	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/* Check the discovery document; fill op_pending or say what is wrong. */
static const char *
oidc_discovery_parse(struct oidc_provider *op, const char *body, size_t len)
{
	const struct config *cfg = op->op_cfg;
	struct oidc_meta *m = &op->op_pending;
	json_error_t jerr;
	json_t *doc;
	const char *why = NULL;

	doc = json_loadb(body, len, 0, &jerr);
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		return "discovery document is not a JSON object";
	}
	oidc_meta_cleanup(m);
	m->om_issuer = oidc_json_dup(doc, "issuer");
	m->om_authorization_endpoint =
	    oidc_json_dup(doc, "authorization_endpoint");
	m->om_token_endpoint = oidc_json_dup(doc, "token_endpoint");
	m->om_jwks_uri = oidc_json_dup(doc, "jwks_uri");
	m->om_end_session_endpoint = oidc_json_dup(doc, "end_session_endpoint");
	m->om_iss_param = json_is_true(json_object_get(
	    doc, "authorization_response_iss_parameter_supported"));
	m->om_token_auth = oidc_token_auth_parse(
	    json_object_get(doc, "token_endpoint_auth_methods_supported"));
	json_decref(doc);
	if (m->om_issuer == NULL || m->om_authorization_endpoint == NULL ||
	    m->om_token_endpoint == NULL || m->om_jwks_uri == NULL)
		why =
		    "discovery document lacks issuer, authorization_endpoint, "
		    "token_endpoint or jwks_uri";
	else if (cfg->cf_oidc_issuer != NULL &&
	    !oidc_issuer_equal(m->om_issuer, cfg->cf_oidc_issuer))
		why =
		    "discovery issuer differs from the configured oidc_issuer";
	else if (!oidc_endpoint_ok(cfg, m->om_issuer) ||
	    !oidc_endpoint_ok(cfg, m->om_authorization_endpoint) ||
	    !oidc_endpoint_ok(cfg, m->om_token_endpoint) ||
	    !oidc_endpoint_ok(cfg, m->om_jwks_uri) ||
	    (m->om_end_session_endpoint != NULL &&
	        !oidc_endpoint_ok(cfg, m->om_end_session_endpoint)))
		why = "discovery document names an endpoint that is not https";
	if (why != NULL)
		oidc_meta_cleanup(m);
	return why;
}

static void
oidc_jwks_done_cb(const struct httpc_result *res, void *arg)
{
	struct oidc_provider *op = oidc_provider_cast(arg);
	struct gh_error err;
	struct jwks *keys;
	char why[80];

	op->op_xfer = NULL;
	if (res->hr_status != HTTPC_OK || res->hr_code != 200) {
		oidc_fetch_failed(op, "jwks",
		    res->hr_status != HTTPC_OK
		        ? httpc_status_str(res->hr_status)
		        : oidc_status_why(res, why, sizeof(why)));
		return;
	}
	keys = jwks_parse(res->hr_body, res->hr_len, &err);
	if (keys == NULL) {
		oidc_fetch_failed(op, "jwks", err.ge_msg);
		return;
	}
	jwks_free(op->op_jwks);
	op->op_jwks = keys;
	op->op_jwks_fetched = time(NULL);
	if (op->op_pending.om_issuer != NULL) {
		oidc_meta_cleanup(&op->op_meta);
		op->op_meta = op->op_pending;
		memset(&op->op_pending, 0, sizeof(op->op_pending));
	}
	if (op->op_state != OIDC_READY)
		log_info("provider ready worker=%d issuer=%s",
		    op->op_worker->w_id, op->op_meta.om_issuer);
	op->op_state = OIDC_READY;
	op->op_fetch = FETCH_NONE;
	op->op_backoff = 0;
	evtimer_del(op->op_timer);
	oidc_timer_in(op, op->op_cfg->cf_discovery_refresh);
	oidc_wake_waiters(op, 1);
}

static int
oidc_fetch_jwks(struct oidc_provider *op, const char *uri)
{
	struct httpc_req req = {"GET", uri, NULL, 0, NULL, 0};
	struct gh_error err;

	op->op_fetch = FETCH_JWKS;
	op->op_xfer = httpc_request(
	    op->op_worker->w_httpc, &req, oidc_jwks_done_cb, op, &err);
	if (op->op_xfer == NULL) {
		oidc_fetch_failed(op, "jwks", err.ge_msg);
		return -1;
	}
	return 0;
}

static void
oidc_discovery_done_cb(const struct httpc_result *res, void *arg)
{
	struct oidc_provider *op = oidc_provider_cast(arg);
	const char *why;
	char buf[80];

	op->op_xfer = NULL;
	if (res->hr_status != HTTPC_OK) {
		oidc_fetch_failed(
		    op, "discovery", httpc_status_str(res->hr_status));
		return;
	}
	if (res->hr_code != 200) {
		oidc_fetch_failed(
		    op, "discovery", oidc_status_why(res, buf, sizeof(buf)));
		return;
	}
	why = oidc_discovery_parse(op, res->hr_body, res->hr_len);
	if (why != NULL) {
		oidc_fetch_failed(op, "discovery", why);
		return;
	}
	(void)oidc_fetch_jwks(op, op->op_pending.om_jwks_uri);
}

static void
oidc_fetch_discovery(struct oidc_provider *op)
{
	struct httpc_req req = {
	    "GET", op->op_cfg->cf_discovery_url, NULL, 0, NULL, 0};
	struct gh_error err;

	op->op_fetch = FETCH_DISCOVERY;
	op->op_xfer = httpc_request(
	    op->op_worker->w_httpc, &req, oidc_discovery_done_cb, op, &err);
	if (op->op_xfer == NULL)
		oidc_fetch_failed(op, "discovery", err.ge_msg);
}

struct oidc_provider *
oidc_provider_new(struct worker *w)
{
	struct oidc_provider *op;

	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->op_magic = OIDC_PROVIDER_MAGIC;
	op->op_worker = w;
	op->op_cfg = w->w_cfg;
	op->op_timer = evtimer_new(w->w_base, oidc_timer_cb, op);
	if (op->op_timer == NULL) {
		free(op);
		return NULL;
	}
	/* The first fetch starts once the loop runs. */
	oidc_timer_in(op, 0);
	return op;
}

void
oidc_provider_free(struct oidc_provider *op)
{
	if (op == NULL)
		return;
	if (op->op_xfer != NULL)
		httpc_cancel(op->op_xfer);
	op->op_xfer = NULL;
	free(op->op_waiters);
	event_free(op->op_timer);
	oidc_meta_cleanup(&op->op_meta);
	oidc_meta_cleanup(&op->op_pending);
	jwks_free(op->op_jwks);
	op->op_magic = 0;
	free(op);
}

const struct oidc_meta *
oidc_provider_meta(struct oidc_provider *op)
{
	return op != NULL && op->op_state == OIDC_READY ? &op->op_meta : NULL;
}

const struct jwks *
oidc_provider_jwks(struct oidc_provider *op)
{
	return op != NULL && op->op_state == OIDC_READY ? op->op_jwks : NULL;
}

enum oidc_state
oidc_provider_state(struct oidc_provider *op)
{
	return op == NULL ? OIDC_FAILED : op->op_state;
}

int
oidc_provider_jwks_refetch(
    struct oidc_provider *op, void (*done)(void *arg, int fresh), void *arg)
{
	/* Only refetches caused by unknown kids are rate-limited: a key
	 * rotated just after a scheduled fetch is still picked up, while a
	 * flood of forged kids costs one fetch a minute. */
	if (op->op_fetch == FETCH_NONE && op->op_refetched != 0 &&
	    time(NULL) - op->op_refetched < OIDC_JWKS_MIN_INTERVAL)
		return -1;
	if (oidc_waiter_add(op, done, arg) == -1)
		return -1;
	if (op->op_fetch == FETCH_NONE) {
		op->op_refetched = time(NULL);
		if (op->op_worker->w_id == 0)
			log_info("jwks_refetch reason=\"unknown kid\"");
		/* A failure here calls the waiters itself. */
		(void)oidc_fetch_jwks(op, op->op_meta.om_jwks_uri);
	}
	return 0;
}

int
oidc_provider_wait(
    struct oidc_provider *op, void (*done)(void *arg, int ok), void *arg)
{
	if (op->op_state != OIDC_UNKNOWN)
		return -1;
	if (oidc_waiter_add(op, done, arg) == -1)
		return -1;
	return 0;
}

void
oidc_provider_unwait(struct oidc_provider *op, void *arg)
{
	size_t i;

	for (i = 0; i < op->op_nwaiters; i++)
		if (op->op_waiters[i].ow_arg == arg) {
			op->op_waiters[i] = op->op_waiters[--op->op_nwaiters];
			i--;
		}
}
