/* SPDX-License-Identifier: ISC */
/*
 * oidc_probe.c: --check --online.  Fetch the provider's discovery document
 * and its JWKS once, through the same client and the same checks as the
 * running gateway, and say in words what stands in the way, so an operator
 * learns it before the first user does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "core/config.h"
#include "core/error.h"
#include "oidc/aadsts.h"
#include "oidc/http_client.h"
#include "oidc/jwks.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"

/* One fetch's outcome, copied out of the done callback. */
struct oidc_probe_fetch {
	int pf_done;
	enum httpc_status pf_status;
	long pf_code;
	char *pf_body; /* new; NUL-terminated */
	size_t pf_len;
	char pf_error[160]; /* libcurl's message when there was no answer */
	int pf_errno;
};

static void
oidc_probe_done_cb(const struct httpc_result *res, void *arg)
{
	struct oidc_probe_fetch *f = arg;

	f->pf_done = 1;
	f->pf_status = res->hr_status;
	f->pf_code = res->hr_code;
	f->pf_errno = res->hr_errno;
	snprintf(f->pf_error, sizeof(f->pf_error), "%s",
	    res->hr_error != NULL ? res->hr_error : "");
	if (res->hr_status == HTTPC_OK) {
		f->pf_body = malloc(res->hr_len + 1);
		if (f->pf_body != NULL) {
			memcpy(f->pf_body, res->hr_body, res->hr_len);
			f->pf_body[res->hr_len] = '\0';
			f->pf_len = res->hr_len;
		}
	}
}

/*
 * GET url and wait for it.  0 with f->pf_body set for a 200, or -1 with
 * err saying, in words, why there is nothing to read: the name, the
 * connection, TLS, the time, or the HTTP status.
 */
static int
oidc_probe_get(const struct config *cfg, struct event_base *base,
    struct httpc *h, const char *what, const char *url,
    struct oidc_probe_fetch *f, struct gh_error *err)
{
	struct httpc_req req = {"GET", url, NULL, 0, NULL, 0};
	struct aadsts_ref ref;
	char *host = NULL, refs[200];
	const char *errstr;

	memset(f, 0, sizeof(*f));
	if (httpc_request(h, &req, oidc_probe_done_cb, f, err) == NULL)
		return -1;
	while (!f->pf_done)
		if (event_base_loop(base, EVLOOP_ONCE) == -1) {
			gh_error_set(
			    err, "probe", "%s: event loop failed", what);
			return -1;
		}
	switch (f->pf_status) {
	case HTTPC_OK:
		break;
	case HTTPC_DNS:
		(void)config_url_split(url, NULL, &host, NULL, NULL, &errstr);
		gh_error_set(err, "probe_dns",
		    "%s %s: the host name %s was not found (DNS)", what, url,
		    host != NULL ? host : "?");
		free(host);
		return -1;
	case HTTPC_CONNECT:
		/* "Connection refused" says more than curl's "Couldn't
		 * connect to server": nothing listens there. */
		gh_error_set(err, "probe_connect",
		    "%s %s: no connection to the provider: %s", what, url,
		    f->pf_errno != 0 ? strerror(f->pf_errno) : f->pf_error);
		return -1;
	case HTTPC_TLS:
		gh_error_set(err, "probe_tls",
		    "%s %s: TLS failed; check the certificate and ca_file (%s)",
		    what, url, f->pf_error);
		return -1;
	case HTTPC_TIMEOUT:
		gh_error_set(err, "probe_timeout",
		    "%s %s: no answer within provider_timeout (%ds)", what, url,
		    cfg->cf_provider_timeout);
		return -1;
	case HTTPC_TOO_LARGE:
	case HTTPC_ERROR:
		gh_error_set(
		    err, "probe_error", "%s %s: %s", what, url, f->pf_error);
		return -1;
	}
	if (f->pf_code != 200 &&
	    aadsts_tenant_not_found(f->pf_code, f->pf_body, f->pf_len, &ref)) {
		aadsts_ref_format(&ref, refs, sizeof(refs));
		/* The URL is the configuration's; the ids go last, so a long
		 * line loses them, not the words. */
		gh_error_set(err, "probe_tenant",
		    "%s: tenant not found: the provider knows no directory by "
		    "the name or id in %s (HTTP %ld,%s)",
		    what,
		    cfg->cf_authority != NULL ? "authority" : "oidc_issuer",
		    f->pf_code, refs);
		return -1;
	}
	if (f->pf_code != 200) {
		gh_error_set(err, "probe_status", "%s %s: answered HTTP %ld%s",
		    what, url, f->pf_code,
		    f->pf_code >= 300 && f->pf_code < 400
		        ? ", a redirect (never followed): use the URL it names"
		        : ", not 200");
		return -1;
	}
	if (f->pf_body == NULL) {
		gh_error_set(err, "nomem", "%s: out of memory", what);
		return -1;
	}
	return 0;
}

/* An event loop and an HTTP client with the options a worker's client has
 * (server.c), for one probe.  0, or -1 with err set (nothing to free). */
static int
oidc_probe_open(const struct config *cfg, struct event_base **basep,
    struct httpc **hp, struct gh_error *err)
{
	struct httpc_options ho;

	*hp = NULL;
	*basep = event_base_new();
	if (*basep == NULL) {
		gh_error_set(err, "probe", "cannot make an event loop");
		return -1;
	}
	memset(&ho, 0, sizeof(ho));
	ho.ho_ca_file = cfg->cf_ca_file;
	ho.ho_resolve = cfg->cf_provider_resolve;
	ho.ho_timeout_ms = (long)cfg->cf_provider_timeout * 1000;
	ho.ho_connect_timeout_ms =
	    ho.ho_timeout_ms < 5000 ? ho.ho_timeout_ms : 5000;
	*hp = httpc_new(*basep, &ho, err);
	if (*hp == NULL) {
		event_base_free(*basep);
		*basep = NULL;
		return -1;
	}
	return 0;
}

/*
 * The client's credentials, tried with a code that cannot be one (so no
 * token can come of it): Entra, like most providers, checks the client
 * before the code, so invalid_client means the secret or certificate is
 * refused, and any other refusal (invalid_grant) that it was accepted.
 * 0 with *accepted set, or -1 with err set.
 */
static int
oidc_probe_client(const struct config *cfg, const struct oidc_meta *m,
    char *how, size_t size, struct gh_error *err)
{
	static const char verifier[] =
	    "gatehouse-check-online-verifier-0123456789abcdef";
	struct oidc_probe_fetch f;
	struct evbuffer *form;
	struct aadsts_ref ref;
	struct event_base *base = NULL;
	struct httpc *h = NULL;
	json_t *doc = NULL;
	const char *e;
	char refs[200];
	int rc = -1;

	memset(&f, 0, sizeof(f));
	if (oidc_probe_open(cfg, &base, &h, err) == -1)
		return -1;
	form = evbuffer_new();
	if (form == NULL) {
		gh_error_set(err, "nomem", "out of memory");
		goto done;
	}
	httpc_form_add(form, "grant_type", "authorization_code");
	httpc_form_add(form, "code", "gatehouse-check-online-not-a-code");
	httpc_form_add(form, "redirect_uri", cfg->cf_redirect_uri);
	httpc_form_add(form, "code_verifier", verifier);
	if (oidc_token_send(cfg, m, h, form, oidc_probe_done_cb, &f, err) ==
	    NULL) {
		char msg[sizeof(err->ge_msg)];

		snprintf(msg, sizeof(msg), "%s", err->ge_msg);
		gh_error_set(err, "probe_token", "token %s: %s",
		    m->om_token_endpoint, msg);
		evbuffer_free(form);
		goto done;
	}
	evbuffer_free(form);
	while (!f.pf_done)
		if (event_base_loop(base, EVLOOP_ONCE) == -1)
			break;
	if (!f.pf_done || f.pf_status != HTTPC_OK) {
		gh_error_set(err, "probe_token", "token %s: no answer (%s)",
		    m->om_token_endpoint,
		    f.pf_error[0] != '\0' ? f.pf_error
		                          : "the event loop failed");
		goto done;
	}
	if (f.pf_body != NULL)
		doc = json_loadb(f.pf_body, f.pf_len, 0, NULL);
	e = json_string_value(json_object_get(doc, "error"));
	aadsts_ref_from_json(doc, &ref);
	aadsts_ref_format(&ref, refs, sizeof(refs));
	if ((f.pf_code == 400 || f.pf_code == 401) && e != NULL &&
	    strcmp(e, "invalid_client") == 0) {
		gh_error_set(err, "probe_client",
		    "token endpoint refused the client credentials (check "
		    "client_secret or the app's certificate): invalid_client%s",
		    refs);
		goto done;
	}
	if (f.pf_code == 400 && e != NULL) {
		/* The error is the provider's word: printable and short. */
		snprintf(how, size,
		    "client credentials accepted (the test code was refused: "
		    "%.40s)",
		    strspn(e, "abcdefghijklmnopqrstuvwxyz_") == strlen(e)
		        ? e
		        : "an error");
		rc = 0;
		goto done;
	}
	gh_error_set(err, "probe_token",
	    "token %s: answered HTTP %ld%s, which says nothing about the "
	    "client credentials",
	    m->om_token_endpoint, f.pf_code, refs);
done:
	json_decref(doc);
	free(f.pf_body);
	httpc_free(h);
	if (base != NULL)
		event_base_free(base);
	return rc;
}

int
oidc_probe_fetch(const struct config *cfg, struct oidc_meta *m,
    struct jwks **keysp, struct gh_error *err)
{
	struct oidc_probe_fetch f;
	struct event_base *base = NULL;
	struct httpc *h = NULL;
	struct jwks *keys = NULL;
	const char *why;
	int rc = -1;

	memset(&f, 0, sizeof(f));
	memset(m, 0, sizeof(*m));
	*keysp = NULL;
	if (oidc_probe_open(cfg, &base, &h, err) == -1)
		goto done;
	if (oidc_probe_get(cfg, base, h, "discovery", cfg->cf_discovery_url, &f,
	        err) == -1)
		goto done;
	why = oidc_discovery_check(cfg, f.pf_body, f.pf_len, m);
	if (why != NULL) {
		gh_error_set(err, "probe_discovery", "discovery %s: %s",
		    cfg->cf_discovery_url, why);
		goto done;
	}
	free(f.pf_body);
	f.pf_body = NULL;
	if (oidc_probe_get(cfg, base, h, "jwks", m->om_jwks_uri, &f, err) == -1)
		goto done;
	keys = jwks_parse(f.pf_body, f.pf_len, err);
	if (keys == NULL) {
		char msg[sizeof(err->ge_msg)];

		snprintf(msg, sizeof(msg), "%s", err->ge_msg);
		gh_error_set(
		    err, "probe_jwks", "jwks %s: %s", m->om_jwks_uri, msg);
		goto done;
	}
	*keysp = keys;
	keys = NULL;
	rc = 0;
done:
	if (rc == -1)
		oidc_meta_cleanup(m);
	jwks_free(keys);
	free(f.pf_body);
	httpc_free(h);
	if (base != NULL)
		event_base_free(base);
	return rc;
}

int
oidc_probe(
    const struct config *cfg, char *summary, size_t size, struct gh_error *err)
{
	struct oidc_meta m;
	struct jwks *keys;
	char how[120];
	int rc = -1;

	if (oidc_probe_fetch(cfg, &m, &keys, err) == -1)
		return -1;
	if (oidc_probe_client(cfg, &m, how, sizeof(how), err) == 0) {
		snprintf(summary, size, "issuer %s, %zu signing key%s; %s",
		    m.om_issuer, jwks_count(keys),
		    jwks_count(keys) == 1 ? "" : "s", how);
		rc = 0;
	}
	jwks_free(keys);
	oidc_meta_cleanup(&m);
	return rc;
}
