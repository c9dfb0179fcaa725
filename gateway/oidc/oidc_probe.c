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

#include <event2/event.h>

#include "core/config.h"
#include "core/error.h"
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
	char *host = NULL;
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

int
oidc_probe_fetch(const struct config *cfg, struct oidc_meta *m,
    struct jwks **keysp, struct gh_error *err)
{
	struct oidc_probe_fetch f;
	struct event_base *base = NULL;
	struct httpc_options ho;
	struct httpc *h = NULL;
	struct jwks *keys = NULL;
	const char *why;
	int rc = -1;

	memset(&f, 0, sizeof(f));
	memset(m, 0, sizeof(*m));
	*keysp = NULL;
	base = event_base_new();
	if (base == NULL) {
		gh_error_set(err, "probe", "cannot make an event loop");
		goto done;
	}
	/* The options a worker's client has (server.c). */
	memset(&ho, 0, sizeof(ho));
	ho.ho_ca_file = cfg->cf_ca_file;
	ho.ho_timeout_ms = (long)cfg->cf_provider_timeout * 1000;
	ho.ho_connect_timeout_ms =
	    ho.ho_timeout_ms < 5000 ? ho.ho_timeout_ms : 5000;
	h = httpc_new(base, &ho, err);
	if (h == NULL)
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

	if (oidc_probe_fetch(cfg, &m, &keys, err) == -1)
		return -1;
	snprintf(summary, size, "issuer %s, %zu signing key%s", m.om_issuer,
	    jwks_count(keys), jwks_count(keys) == 1 ? "" : "s");
	jwks_free(keys);
	oidc_meta_cleanup(&m);
	return 0;
}
