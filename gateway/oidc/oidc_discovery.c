/* SPDX-License-Identifier: ISC */
/*
 * oidc_discovery.c: the provider's metadata, one copy for the whole
 * process.  Fetch the discovery document, check it, fetch the JWKS, and
 * publish both as one immutable, reference-counted snapshot that every
 * worker reads; keep it fresh on a timer, and keep the last good copy while
 * the provider is unreachable (retrying with backoff).  A provider is a
 * struct oidc_source; a SIGHUP that names another provider makes a second
 * one (fetched before the swap), and the first lives on while requests of
 * the older configuration hold handles on it.
 *
 * Threads.  One fetch (a "flight") runs at a time for a source, on the
 * event loop of the worker that started it: worker 0 for the timed fetches
 * and their retries, any worker for a JWKS refetch an unknown kid asks for.
 * The shared state below is guarded by one mutex that is never held across
 * I/O, only around a few assignments and a reference count.  When a
 * flight ends, every worker is told (through its mail pipe: the server hands
 * in how, oidc_provider_set_announce, as this layer does not know it); each
 * then takes a reference to the current snapshot into its own struct
 * oidc_provider and wakes its waiters.  Readers on the request path read
 * only that worker-local pointer: no lock at all, and the snapshot they see
 * cannot change under them within one event-loop turn.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "core/config.h"
#include "core/log.h"
#include "core/magic.h"
#include "core/metrics.h"
#include "http/worker.h"
#include "oidc/aadsts.h"
#include "oidc/http_client.h"
#include "oidc/jwks.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"

#define OIDC_PROVIDER_MAGIC 0x4f504e44u /* "OPND" */
#define OIDC_BACKOFF_MAX 60
#define OIDC_JWKS_MIN_INTERVAL 60 /* seconds between unknown-kid refetches */

enum oidc_fetch { FETCH_NONE, FETCH_DISCOVERY, FETCH_JWKS };

/* A checked discovery document; a JWKS-only refetch reuses it. */
struct oidc_doc {
	int od_refs; /* atomic */
	struct oidc_meta od_meta;
};

/* What one successful flight published.  Immutable; freed by whichever
 * thread drops the last reference. */
struct oidc_snap {
	int sn_refs;             /* atomic */
	uint64_t sn_seq;         /* the flight that fetched its keys */
	struct oidc_doc *sn_doc; /* a reference */
	struct jwks *sn_keys;    /* owned */
};

struct oidc_waiter {
	void (*ow_done)(void *arg, int fresh);
	void *ow_arg;
	uint64_t ow_seq; /* woken once flight ow_seq has ended */
};

#define OIDC_FAIL_KEY 160

/*
 * One provider as the process knows it: the state every worker's handle
 * on it shares.  A reload that changes the provider makes a new source
 * (fetched before the swap); the old one lives on while handles of older
 * generations hold it.  sh_lock guards every other member but sh_refs.
 */
struct oidc_source {
	int sh_refs; /* atomic: handles, and the generation that made it */
	pthread_mutex_t sh_lock;
	struct oidc_snap *sh_snap;        /* current copy (a reference) */
	struct oidc_provider *sh_fetcher; /* whose flight runs, or NULL */
	uint64_t sh_started;              /* flights started */
	uint64_t sh_ended;                /* the last flight that ended */
	int sh_failed;                    /* the last flight failed */
	int sh_no_tenant;                 /* ... saying: no such tenant */
	const char *sh_fail_what;         /* its step and kind (literals) */
	const char *sh_fail_kind;
	int sh_nproviders; /* handles on it (each worker's, each generation's)
	                    */
	int sh_nready;     /* ... of them holding a copy */
	char sh_fail_key[OIDC_FAIL_KEY]; /* what failed, and how (the log) */
	unsigned sh_nfailed;             /* flights failed in a row */
	int sh_backoff;                  /* seconds */
	time_t sh_next;                  /* the next timed fetch */
	time_t sh_refetched;             /* last unknown-kid refetch */
};

/* One worker's handle on a source, for one configuration generation. */
struct oidc_provider {
	uint32_t op_magic;
	struct worker *op_worker;
	const struct config *op_cfg;
	struct oidc_source *op_src; /* a reference */
	struct oidc_snap *op_snap;  /* this worker's view, a reference; only
	                               oidc_provider_notify changes it */
	struct oidc_waiter *op_waiters;
	size_t op_nwaiters;
	struct event *op_timer; /* worker 0's current handle only: timed
	                           fetches, retries */
	/* The flight this worker runs for the process, if any. */
	enum oidc_fetch op_fetch;
	uint64_t op_seq;
	struct httpc_xfer *op_xfer;
	struct oidc_meta op_pending; /* checked, waiting for its JWKS */
	struct oidc_doc *op_doc;     /* the document the keys will join */
};

/* Tells every worker that a flight has ended (oidc_provider_set_announce). */
static void (*oidc_announce)(void);

void
oidc_provider_set_announce(void (*announce)(void))
{
	oidc_announce = announce;
}

static void oidc_flight_discovery(struct oidc_provider *op);

static struct oidc_provider *
oidc_provider_cast(void *arg)
{
	return MAGIC_CAST(
	    struct oidc_provider, op_magic, OIDC_PROVIDER_MAGIC, arg);
}

void
oidc_meta_cleanup(struct oidc_meta *m)
{
	free(m->om_issuer);
	free(m->om_authorization_endpoint);
	free(m->om_token_endpoint);
	free(m->om_jwks_uri);
	free(m->om_end_session_endpoint);
	free(m->om_revocation_endpoint);
	memset(m, 0, sizeof(*m));
}

/* --- snapshots ------------------------------------------------------- */

static struct oidc_doc *
oidc_doc_hold(struct oidc_doc *d)
{
	__atomic_add_fetch(&d->od_refs, 1, __ATOMIC_RELAXED);
	return d;
}

static void
oidc_doc_release(struct oidc_doc *d)
{
	if (d == NULL ||
	    __atomic_sub_fetch(&d->od_refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	oidc_meta_cleanup(&d->od_meta);
	free(d);
}

static void
oidc_snap_release(struct oidc_snap *s)
{
	if (s == NULL ||
	    __atomic_sub_fetch(&s->sn_refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* The last user: no other thread can still be verifying with
	 * these keys (the decrement above orders their reads first). */
	oidc_doc_release(s->sn_doc);
	jwks_free(s->sn_keys);
	free(s);
}

/* The current snapshot with a new reference, or NULL.  sh_lock held. */
static struct oidc_snap *
oidc_snap_grab_locked(struct oidc_source *src)
{
	struct oidc_snap *s = src->sh_snap;

	if (s != NULL)
		__atomic_add_fetch(&s->sn_refs, 1, __ATOMIC_RELAXED);
	return s;
}

/* --- waiters --------------------------------------------------------- */

/* Room for one more waiter, so adding it later cannot fail.  0 or -1. */
static int
oidc_waiter_reserve(struct oidc_provider *op)
{
	struct oidc_waiter *nw;

	nw = reallocarray(op->op_waiters, op->op_nwaiters + 1, sizeof(*nw));
	if (nw == NULL)
		return -1;
	op->op_waiters = nw;
	return 0;
}

static void
oidc_waiter_add(struct oidc_provider *op, void (*done)(void *, int), void *arg,
    uint64_t seq)
{
	struct oidc_waiter *w = &op->op_waiters[op->op_nwaiters++];

	w->ow_done = done;
	w->ow_arg = arg;
	w->ow_seq = seq;
}

/* Wake the waiters whose flight has ended (up to `ended`). */
static void
oidc_wake_waiters(struct oidc_provider *op, uint64_t ended)
{
	struct oidc_waiter *w = op->op_waiters, *ready;
	size_t i, n = op->op_nwaiters, nready = 0;
	int fresh;

	if (n == 0)
		return;
	ready = calloc(n, sizeof(*ready));
	if (ready == NULL)
		return; /* the next notification tries again */
	/* The callbacks may queue or drop waiters: take the ready ones off
	 * the list before calling any of them. */
	op->op_nwaiters = 0;
	for (i = 0; i < n; i++) {
		if (w[i].ow_seq <= ended)
			ready[nready++] = w[i];
		else
			op->op_waiters[op->op_nwaiters++] = w[i];
	}
	for (i = 0; i < nready; i++) {
		fresh = op->op_snap != NULL &&
		    op->op_snap->sn_seq >= ready[i].ow_seq;
		ready[i].ow_done(ready[i].ow_arg, fresh);
	}
	free(ready);
}

/* --- flights --------------------------------------------------------- */

static void
oidc_timer_in(struct oidc_provider *op, long seconds)
{
	struct timeval tv = {seconds > 0 ? seconds : 0, 0};

	if (op->op_timer != NULL)
		evtimer_add(op->op_timer, &tv);
}

/*
 * This worker's flight has ended: publish `snap` (NULL when it failed,
 * and the last good copy stays), then tell every worker.  On failure,
 * `what` is the step, `url` the URL it fetched (the discovery and JWKS
 * URLs carry no secret) and `why` the reason in words, curl's own for a
 * transfer that failed.  A failure is logged when it starts or changes
 * (step, kind or reason), not again on every retry while it stays the
 * same, and the recovery gets a line of its own.
 */
static void
oidc_flight_end(struct oidc_provider *op, struct oidc_snap *snap,
    const char *what, const char *url, const char *kind, const char *why)
{
	struct oidc_snap *old = NULL;
	time_t now = time(NULL);
	int backoff = 0, first = 0, changed = 0;
	unsigned nfailed;
	char key[OIDC_FAIL_KEY], u[256], w[256];

	/* Copied now: url may lie in op_doc, released below. */
	log_sanitize(u, sizeof(u), url != NULL ? url : "");
	/* A transfer's message can differ from one retry to the next ("after
	 * 5001 ms"): its kind is what counts as a change. */
	key[0] = '\0';
	if (snap == NULL)
		snprintf(key, sizeof(key), "%s|%s|%s", what, kind,
		    strcmp(kind, "http") == 0 || strcmp(kind, "invalid") == 0
		        ? why
		        : "");
	pthread_mutex_lock(&op->op_src->sh_lock);
	nfailed = op->op_src->sh_nfailed;
	if (snap != NULL) {
		old = op->op_src->sh_snap;
		first = old == NULL;
		op->op_src->sh_snap = snap;
		op->op_src->sh_failed = 0;
		op->op_src->sh_no_tenant = 0;
		op->op_src->sh_nfailed = 0;
		op->op_src->sh_fail_key[0] = '\0';
		op->op_src->sh_backoff = 0;
		op->op_src->sh_next = now + op->op_cfg->cf_discovery_refresh;
	} else {
		backoff = op->op_src->sh_backoff == 0
		    ? 1
		    : (op->op_src->sh_backoff * 2 > OIDC_BACKOFF_MAX
		              ? OIDC_BACKOFF_MAX
		              : op->op_src->sh_backoff * 2);
		op->op_src->sh_backoff = backoff;
		op->op_src->sh_failed = 1;
		op->op_src->sh_fail_what = what;
		op->op_src->sh_fail_kind = kind;
		op->op_src->sh_nfailed++;
		changed = strcmp(op->op_src->sh_fail_key, key) != 0;
		if (changed)
			memcpy(op->op_src->sh_fail_key, key, sizeof(key));
		op->op_src->sh_next = now + backoff;
	}
	if (op->op_src->sh_fetcher == op)
		op->op_src->sh_fetcher = NULL;
	op->op_src->sh_ended = op->op_seq;
	pthread_mutex_unlock(&op->op_src->sh_lock);

	oidc_snap_release(old);
	oidc_meta_cleanup(&op->op_pending);
	oidc_doc_release(op->op_doc);
	op->op_doc = NULL;
	op->op_fetch = FETCH_NONE;
	op->op_xfer = NULL;
	metrics_provider_fetch(what, kind);
	if (snap == NULL && changed)
		log_warnx("provider_error what=%s reason=\"%s\" kind=%s "
		          "url=\"%s\" retry_in=%ds",
		    what, log_sanitize(w, sizeof(w), why), kind, u, backoff);
	else if (snap == NULL)
		log_debug(
		    "provider_error what=%s kind=%s unchanged failures=%u",
		    what, kind, nfailed + 1);
	else if (nfailed > 0)
		log_info("provider_recovered issuer=%s after_failures=%u",
		    snap->sn_doc->od_meta.om_issuer, nfailed);
	if (snap != NULL && first)
		log_info("provider fetched issuer=%s",
		    snap->sn_doc->od_meta.om_issuer);
	if (oidc_announce != NULL)
		oidc_announce();
}

/* The failure of a transfer that did not end in a usable answer, in
 * words: curl's own message when there is one. */
static const char *
oidc_xfer_why(const struct httpc_result *res)
{
	return res->hr_error != NULL && res->hr_error[0] != '\0'
	    ? res->hr_error
	    : httpc_status_str(res->hr_status);
}

/*
 * Make this worker the one running the next flight, unless one runs.
 * Returns the flight's number, or 0 when another flight is running.
 */
static uint64_t
oidc_flight_claim_locked(struct oidc_provider *op)
{
	if (op->op_src->sh_fetcher != NULL)
		return 0;
	op->op_src->sh_fetcher = op;
	return ++op->op_src->sh_started;
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

/* The first segment of a URL path ("/a/b?c" gives "a"); *len its length. */
static const char *
oidc_path_first(const char *path, size_t *len)
{
	while (*path == '/')
		path++;
	*len = strcspn(path, "/?");
	return path;
}

static int
oidc_label_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen > 0 && alen == blen && strncasecmp(a, b, alen) == 0;
}

/*
 * An Entra authority: whether the discovery issuer belongs to the
 * authority's tenant.  An issuer on the authority's own host (any scheme or
 * port) is that host speaking for itself.  External ID names the issuer's host
 * after the tenant's GUID ({x}.ciamlogin.com), which is any tenant's host as
 * far as the name goes: it is accepted only when {x} is the tenant the
 * authority names (the first segment of its path, or the first label of a
 * path-less authority's host) or the tenant the document's own token endpoint
 * names on the authority's host, and when its path is empty, "/{x}" or
 * "/{x}/v2.0".  Any other host is another provider.
 */
static int
oidc_issuer_of_tenant(const struct config *cfg, const struct oidc_meta *m)
{
	static const char suffix[] = ".ciamlogin.com";
	char *ahost = NULL, *apath = NULL, *ihost = NULL, *ipath = NULL;
	char *thost = NULL, *tpath = NULL;
	const char *errstr, *seg;
	int ihttps, ok = 0;
	size_t hlen, xlen, slen, plen;

	if (config_url_split(
	        cfg->cf_authority, NULL, &ahost, NULL, &apath, &errstr) == -1 ||
	    config_url_split(
	        m->om_issuer, &ihttps, &ihost, NULL, &ipath, &errstr) == -1)
		goto done;
	/* The same host, whatever the scheme or port (a TLS front end may
	 * serve what the provider names on another port). */
	if (strcasecmp(ahost, ihost) == 0) {
		ok = 1;
		goto done;
	}
	hlen = strlen(ihost);
	if (!ihttps || hlen <= sizeof(suffix) - 1 ||
	    strcasecmp(ihost + hlen - (sizeof(suffix) - 1), suffix) != 0)
		goto done;
	xlen = hlen - (sizeof(suffix) - 1);
	if (memchr(ihost, '.', xlen) != NULL)
		goto done;
	/* The issuer's path: "", "/{x}" or "/{x}/v2.0", a trailing slash
	 * aside. */
	plen = strlen(ipath);
	if (plen > 0 && ipath[plen - 1] == '/')
		ipath[--plen] = '\0';
	if (plen > 0) {
		seg = oidc_path_first(ipath, &slen);
		if (seg != ipath + 1 ||
		    !oidc_label_equal(seg, slen, ihost, xlen) ||
		    (seg[slen] != '\0' && strcmp(seg + slen, "/v2.0") != 0))
			goto done;
	}
	seg = oidc_path_first(apath, &slen);
	if (slen == 0) {
		seg = ahost;
		slen = strcspn(ahost, ".");
	}
	if (oidc_label_equal(seg, slen, ihost, xlen)) {
		ok = 1;
		goto done;
	}
	if (config_url_split(m->om_token_endpoint, NULL, &thost, NULL, &tpath,
	        &errstr) == 0 &&
	    strcasecmp(thost, ahost) == 0) {
		seg = oidc_path_first(tpath, &slen);
		ok = oidc_label_equal(seg, slen, ihost, xlen);
	}
done:
	free(ahost);
	free(apath);
	free(ihost);
	free(ipath);
	free(thost);
	free(tpath);
	return ok;
}

/* Whether s (len bytes) is a GUID: 8-4-4-4-12 hex digits. */
static int
oidc_guid(const char *s, size_t len)
{
	size_t i;

	if (len != 36)
		return 0;
	for (i = 0; i < len; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* Microsoft's sign-in hosts (every cloud), whose issuers name tenants. */
static int
oidc_entra_host(const char *host)
{
	static const char *const exact[] = {"login.microsoftonline.com",
	    "login.microsoftonline.us", "login.partner.microsoftonline.cn",
	    "login.chinacloudapi.cn", "login.windows.net", "sts.windows.net",
	    "login.microsoft.com"};
	static const char *const suffix[] = {".ciamlogin.com", ".b2clogin.com"};
	size_t i, hl = strlen(host), sl;

	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcasecmp(host, exact[i]) == 0)
			return 1;
	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		sl = strlen(suffix[i]);
		if (hl > sl && strcasecmp(host + hl - sl, suffix[i]) == 0)
			return 1;
	}
	return 0;
}

/* The Microsoft cloud of a sign-in host: 1 public, 2 US government, 3
 * China; 0 for any other host. */
static int
oidc_ms_cloud(const char *host)
{
	static const struct {
		const char *host;
		int cloud;
	} hosts[] = {{"login.microsoftonline.com", 1}, {"login.windows.net", 1},
	    {"sts.windows.net", 1}, {"login.microsoft.com", 1},
	    {"login.microsoftonline.us", 2},
	    {"login.partner.microsoftonline.cn", 3},
	    {"login.chinacloudapi.cn", 3}};
	size_t i;

	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		if (strcasecmp(host, hosts[i].host) == 0)
			return hosts[i].cloud;
	return 0;
}

/*
 * oidc_issuer (MSAL's oidc_authority, a custom URL domain): whether the
 * discovery document's issuer is one the authority may name, by MSAL
 * Python's rules, in its order.  The issuer equals the authority (a
 * trailing slash aside); or has its scheme and host; or is
 * {x}.ciamlogin.com with path "", "/{x}" or "/{x}/v2.0" where {x} is the
 * authority's first path segment (for a path-less authority its first
 * host label), any other ciamlogin issuer being refused outright; or is
 * a Microsoft sign-in host over https under a custom domain (an
 * authority not on a Microsoft host) or under a Microsoft authority of
 * the same cloud; or is {region}.{authority host}; or is a b2clogin host
 * over https.  ID tokens must then carry exactly this issuer.
 */
static int
oidc_issuer_msal_valid(const struct config *cfg, const struct oidc_meta *m)
{
	static const char ciam[] = ".ciamlogin.com";
	char *ahost = NULL, *apath = NULL, *ihost = NULL, *ipath = NULL;
	const char *errstr, *seg, *x;
	int ahttps, ihttps, ok = 0, ac, ic;
	size_t hl, al, xl, sl, pl;

	if (oidc_issuer_equal(m->om_issuer, cfg->cf_oidc_issuer))
		return 1;
	if (config_url_split(cfg->cf_oidc_issuer, &ahttps, &ahost, NULL, &apath,
	        &errstr) == -1 ||
	    config_url_split(
	        m->om_issuer, &ihttps, &ihost, NULL, &ipath, &errstr) == -1)
		goto done;
	if (ahttps == ihttps && strcasecmp(ahost, ihost) == 0) {
		ok = 1;
		goto done;
	}
	hl = strlen(ihost);
	al = strlen(ahost);
	if (hl > sizeof(ciam) - 1 &&
	    strcasecmp(ihost + hl - (sizeof(ciam) - 1), ciam) == 0) {
		x = ihost;
		xl = hl - (sizeof(ciam) - 1);
		seg = oidc_path_first(apath, &sl);
		if (sl == 0) {
			seg = ahost;
			sl = strcspn(ahost, ".");
		}
		pl = strlen(ipath);
		if (pl > 0 && ipath[pl - 1] == '/')
			ipath[--pl] = '\0';
		ok = ihttps && memchr(x, '.', xl) == NULL &&
		    oidc_label_equal(seg, sl, x, xl) &&
		    (pl == 0 ||
		        (ipath[0] == '/' &&
		            oidc_label_equal(
		                ipath + 1, strcspn(ipath + 1, "/"), x, xl) &&
		            (ipath[1 + xl] == '\0' ||
		                strcmp(ipath + 1 + xl, "/v2.0") == 0)));
		goto done;
	}
	ic = oidc_ms_cloud(ihost);
	if (ihttps && ic != 0) {
		ac = oidc_ms_cloud(ahost);
		ok = !oidc_entra_host(ahost) || ac == ic;
		goto done;
	}
	if (hl > al + 1 && ihost[hl - al - 1] == '.' &&
	    strcasecmp(ihost + hl - al, ahost) == 0 &&
	    memchr(ihost, '.', hl - al - 1) == NULL) {
		ok = 1;
		goto done;
	}
	ok = ihttps && strcasestr(ihost, ".b2clogin.") != NULL;
done:
	free(ahost);
	free(apath);
	free(ihost);
	free(ipath);
	return ok;
}

/*
 * The tenant an Entra-shaped issuer names, for the tid rule: the GUID of
 * an issuer path "/{guid}" or "/{guid}/v2.0" (every Entra form: ciamlogin,
 * login.microsoftonline.com, sts.windows.net, a custom URL domain), or of
 * a path-less {guid}.ciamlogin.com.  Only that shape counts, so a generic
 * provider's issuer (/realms/main, /oauth2/default) names no tenant and
 * its tokens' tid, if any, is left alone.  tid is required only when the
 * provider is recognised as Entra: an authority is configured, or the
 * issuer is on a Microsoft sign-in host.
 */
static void
oidc_issuer_tenant(const struct config *cfg, struct oidc_meta *m)
{
	char *host = NULL, *path = NULL;
	const char *errstr, *seg;
	size_t plen, slen;

	m->om_tid[0] = '\0';
	m->om_tid_required = 0;
	if (config_url_split(m->om_issuer, NULL, &host, NULL, &path, &errstr) ==
	    -1)
		return;
	plen = strlen(path);
	if (plen > 0 && path[plen - 1] == '/')
		path[--plen] = '\0';
	seg = oidc_path_first(path, &slen);
	if (plen == 0 && oidc_entra_host(host)) {
		seg = host;
		slen = strcspn(host, ".");
	} else if (plen == 0 || seg != path + 1 ||
	    (seg[slen] != '\0' && strcmp(seg + slen, "/v2.0") != 0))
		goto done;
	if (!oidc_guid(seg, slen))
		goto done;
	memcpy(m->om_tid, seg, slen);
	m->om_tid[slen] = '\0';
	m->om_tid_required = cfg->cf_authority != NULL || oidc_entra_host(host);
done:
	free(host);
	free(path);
}

static char *
oidc_json_dup(json_t *doc, const char *name)
{
	const char *s = json_string_value(json_object_get(doc, name));

	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/*
 * The ID-token algorithms the provider says it uses, kept only when
 * gatehouse verifies them with a public key: a provider cannot turn on
 * "none" or an HMAC (its public key would become the secret).
 */
static void
oidc_algs_parse(const json_t *v, struct oidc_meta *m)
{
	static const char *const known[] = {"RS256", "RS384", "RS512", "PS256",
	    "PS384", "PS512", "ES256", "ES384", "ES512"};
	const char *a;
	size_t i, k, j;

	m->om_nalgs = 0;
	for (i = 0; i < json_array_size(v); i++) {
		a = json_string_value(json_array_get(v, i));
		if (a == NULL)
			continue;
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcmp(a, known[k]) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			continue;
		for (j = 0; j < m->om_nalgs; j++)
			if (m->om_algs[j] == known[k])
				break;
		if (j == m->om_nalgs &&
		    m->om_nalgs < sizeof(m->om_algs) / sizeof(m->om_algs[0]))
			m->om_algs[m->om_nalgs++] = known[k];
	}
}

const char *
oidc_discovery_check(
    const struct config *cfg, const char *body, size_t len, struct oidc_meta *m)
{
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
	m->om_revocation_endpoint = oidc_json_dup(doc, "revocation_endpoint");
	m->om_iss_param = json_is_true(json_object_get(
	    doc, "authorization_response_iss_parameter_supported"));
	m->om_token_auth = oidc_token_auth_parse(
	    json_object_get(doc, "token_endpoint_auth_methods_supported"));
	oidc_algs_parse(
	    json_object_get(doc, "id_token_signing_alg_values_supported"), m);
	json_decref(doc);
	if (m->om_issuer == NULL || m->om_authorization_endpoint == NULL ||
	    m->om_token_endpoint == NULL || m->om_jwks_uri == NULL)
		why =
		    "discovery document lacks issuer, authorization_endpoint, "
		    "token_endpoint or jwks_uri";
	else if (cfg->cf_oidc_issuer != NULL && !oidc_issuer_msal_valid(cfg, m))
		why =
		    "discovery issuer differs from the configured oidc_issuer";
	else if (cfg->cf_authority != NULL && !oidc_issuer_of_tenant(cfg, m))
		why = "discovery issuer is not the authority's tenant";
	else if (!oidc_endpoint_ok(cfg, m->om_issuer) ||
	    !oidc_endpoint_ok(cfg, m->om_authorization_endpoint) ||
	    !oidc_endpoint_ok(cfg, m->om_token_endpoint) ||
	    !oidc_endpoint_ok(cfg, m->om_jwks_uri) ||
	    (m->om_end_session_endpoint != NULL &&
	        !oidc_endpoint_ok(cfg, m->om_end_session_endpoint)) ||
	    (m->om_revocation_endpoint != NULL &&
	        !oidc_endpoint_ok(cfg, m->om_revocation_endpoint)))
		why = "discovery document names an endpoint that is not https";
	if (why != NULL)
		oidc_meta_cleanup(m);
	else
		oidc_issuer_tenant(cfg, m);
	return why;
}

/* Check the discovery document; fill op_pending or say what is wrong. */
static const char *
oidc_discovery_parse(struct oidc_provider *op, const char *body, size_t len)
{
	return oidc_discovery_check(op->op_cfg, body, len, &op->op_pending);
}

static void
oidc_jwks_done_cb(const struct httpc_result *res, void *arg)
{
	struct oidc_provider *op = oidc_provider_cast(arg);
	struct oidc_snap *snap;
	struct gh_error err;
	struct jwks *keys;
	const char *url = op->op_doc->od_meta.om_jwks_uri;
	char why[80];

	op->op_xfer = NULL;
	if (res->hr_status != HTTPC_OK) {
		oidc_flight_end(op, NULL, "jwks", url,
		    httpc_status_str(res->hr_status), oidc_xfer_why(res));
		return;
	}
	if (res->hr_code != 200) {
		oidc_flight_end(op, NULL, "jwks", url, "http",
		    oidc_status_why(res, why, sizeof(why)));
		return;
	}
	keys = jwks_parse(res->hr_body, res->hr_len, &err);
	if (keys == NULL) {
		oidc_flight_end(op, NULL, "jwks", url, "invalid", err.ge_msg);
		return;
	}
	snap = calloc(1, sizeof(*snap));
	if (snap == NULL) {
		jwks_free(keys);
		oidc_flight_end(
		    op, NULL, "jwks", url, "internal", "out of memory");
		return;
	}
	snap->sn_refs = 1; /* the shared state's */
	snap->sn_seq = op->op_seq;
	snap->sn_keys = keys;
	snap->sn_doc = op->op_doc;
	op->op_doc = NULL;
	oidc_flight_end(op, snap, "jwks", url, "ok", NULL);
}

/* Fetch the JWKS named by op_doc, the second half of any flight. */
static void
oidc_flight_jwks(struct oidc_provider *op)
{
	struct httpc_req req = {
	    "GET", op->op_doc->od_meta.om_jwks_uri, NULL, 0, NULL, 0};
	struct gh_error err;

	op->op_fetch = FETCH_JWKS;
	op->op_xfer = httpc_request(
	    op->op_worker->w_httpc, &req, oidc_jwks_done_cb, op, &err);
	if (op->op_xfer == NULL)
		oidc_flight_end(
		    op, NULL, "jwks", req.hq_url, "internal", err.ge_msg);
}

static void
oidc_discovery_done_cb(const struct httpc_result *res, void *arg)
{
	struct oidc_provider *op = oidc_provider_cast(arg);
	const char *why, *url = op->op_cfg->cf_discovery_url;
	struct aadsts_ref ref;
	char buf[80], tbuf[200];
	int tenant;

	op->op_xfer = NULL;
	if (res->hr_status != HTTPC_OK) {
		oidc_flight_end(op, NULL, "discovery", url,
		    httpc_status_str(res->hr_status), oidc_xfer_why(res));
		return;
	}
	tenant = res->hr_code != 200 &&
	    aadsts_tenant_not_found(
	        res->hr_code, res->hr_body, res->hr_len, &ref);
	pthread_mutex_lock(&op->op_src->sh_lock);
	op->op_src->sh_no_tenant = tenant;
	pthread_mutex_unlock(&op->op_src->sh_lock);
	if (tenant) {
		/* Not a provider that is down: a name that is wrong, which
		 * only the operator can fix.  The ids change on every retry,
		 * so the line names the number only. */
		snprintf(tbuf, sizeof(tbuf),
		    "tenant not found (answered HTTP %ld, AADSTS%ld): the "
		    "provider knows no directory by the name or id in %s",
		    res->hr_code, ref.ar_code,
		    op->op_cfg->cf_authority != NULL ? "authority"
		                                     : "oidc_issuer");
		oidc_flight_end(op, NULL, "discovery", url, "http", tbuf);
		return;
	}
	if (res->hr_code != 200) {
		oidc_flight_end(op, NULL, "discovery", url, "http",
		    oidc_status_why(res, buf, sizeof(buf)));
		return;
	}
	why = oidc_discovery_parse(op, res->hr_body, res->hr_len);
	if (why != NULL) {
		oidc_flight_end(op, NULL, "discovery", url, "invalid", why);
		return;
	}
	op->op_doc = calloc(1, sizeof(*op->op_doc));
	if (op->op_doc == NULL) {
		oidc_flight_end(
		    op, NULL, "discovery", url, "internal", "out of memory");
		return;
	}
	metrics_provider_fetch("discovery", "ok");
	op->op_doc->od_refs = 1;
	op->op_doc->od_meta = op->op_pending;
	memset(&op->op_pending, 0, sizeof(op->op_pending));
	oidc_flight_jwks(op);
}

int
oidc_provider_no_tenant(struct oidc_provider *op)
{
	struct oidc_source *src = op->op_src;
	int r;

	pthread_mutex_lock(&src->sh_lock);
	r = src->sh_failed && src->sh_no_tenant && src->sh_snap == NULL;
	pthread_mutex_unlock(&src->sh_lock);
	return r;
}

/* Start a whole flight (discovery, then its JWKS) if none runs. */
static void
oidc_flight_discovery(struct oidc_provider *op)
{
	struct httpc_req req = {
	    "GET", op->op_cfg->cf_discovery_url, NULL, 0, NULL, 0};
	struct gh_error err;
	uint64_t seq;

	pthread_mutex_lock(&op->op_src->sh_lock);
	seq = oidc_flight_claim_locked(op);
	pthread_mutex_unlock(&op->op_src->sh_lock);
	if (seq == 0)
		return; /* its end will set the timer again */
	op->op_seq = seq;
	op->op_fetch = FETCH_DISCOVERY;
	op->op_xfer = httpc_request(
	    op->op_worker->w_httpc, &req, oidc_discovery_done_cb, op, &err);
	if (op->op_xfer == NULL)
		oidc_flight_end(
		    op, NULL, "discovery", req.hq_url, "internal", err.ge_msg);
}

/* Worker 0: a timed fetch or a retry is due. */
static void
oidc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct oidc_provider *op = oidc_provider_cast(arg);
	time_t next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&op->op_src->sh_lock);
	next = op->op_src->sh_next;
	pthread_mutex_unlock(&op->op_src->sh_lock);
	if (next > time(NULL))
		oidc_timer_in(op, next - time(NULL));
	else
		oidc_flight_discovery(op);
}

/* --- the API ----------------------------------------------------------- */

struct oidc_source *
oidc_source_new(void)
{
	struct oidc_source *src;

	src = calloc(1, sizeof(*src));
	if (src == NULL)
		return NULL;
	if (pthread_mutex_init(&src->sh_lock, NULL) != 0) {
		free(src);
		return NULL;
	}
	src->sh_refs = 1;
	return src;
}

struct oidc_source *
oidc_source_hold(struct oidc_source *src)
{
	__atomic_add_fetch(&src->sh_refs, 1, __ATOMIC_RELAXED);
	return src;
}

void
oidc_source_release(struct oidc_source *src)
{
	if (src == NULL ||
	    __atomic_sub_fetch(&src->sh_refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* No handle is left, so no flight runs and no worker reads it. */
	oidc_snap_release(src->sh_snap);
	pthread_mutex_destroy(&src->sh_lock);
	free(src);
}

static int
oidc_str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

int
oidc_source_same(const struct config *a, const struct config *b)
{
	/* What the fetch and the checks of its answer depend on: the
	 * document's URL and the issuer rules (oidc_discovery_check). */
	return oidc_str_same(a->cf_discovery_url, b->cf_discovery_url) &&
	    oidc_str_same(a->cf_authority, b->cf_authority) &&
	    oidc_str_same(a->cf_oidc_issuer, b->cf_oidc_issuer);
}

int
oidc_source_prefetch(
    struct oidc_source *src, const struct config *cfg, struct gh_error *err)
{
	struct oidc_snap *snap;
	struct oidc_doc *doc;
	struct oidc_meta m;
	struct jwks *keys = NULL;

	memset(&m, 0, sizeof(m));
	if (oidc_probe_fetch(cfg, &m, &keys, err) == -1)
		return -1;
	doc = calloc(1, sizeof(*doc));
	snap = calloc(1, sizeof(*snap));
	if (doc == NULL || snap == NULL) {
		free(doc);
		free(snap);
		oidc_meta_cleanup(&m);
		jwks_free(keys);
		gh_error_set(err, "nomem", "out of memory");
		return -1;
	}
	doc->od_refs = 1;
	doc->od_meta = m;
	snap->sn_refs = 1;
	snap->sn_seq = 1;
	snap->sn_doc = doc;
	snap->sn_keys = keys;
	/* As if flight 1 had fetched it: no handle exists yet. */
	pthread_mutex_lock(&src->sh_lock);
	src->sh_snap = snap;
	src->sh_started = src->sh_ended = 1;
	src->sh_next = time(NULL) + cfg->cf_discovery_refresh;
	pthread_mutex_unlock(&src->sh_lock);
	metrics_provider_fetch("discovery", "ok");
	metrics_provider_fetch("jwks", "ok");
	log_info("provider fetched issuer=%s", m.om_issuer);
	return 0;
}

struct oidc_provider *
oidc_provider_new(struct worker *w, struct oidc_source *src,
    const struct config *cfg, int timer)
{
	struct oidc_provider *op;

	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->op_magic = OIDC_PROVIDER_MAGIC;
	op->op_worker = w;
	op->op_cfg = cfg;
	if (timer) {
		op->op_timer = evtimer_new(w->w_base, oidc_timer_cb, op);
		if (op->op_timer == NULL) {
			free(op);
			return NULL;
		}
		/* The first fetch, or the next timed one, is looked at once
		 * the loop runs. */
		oidc_timer_in(op, 0);
	}
	op->op_src = oidc_source_hold(src);
	/* A source that has a copy (the one before a reload, or one fetched
	 * for it) serves the new handle at once. */
	pthread_mutex_lock(&src->sh_lock);
	op->op_snap = oidc_snap_grab_locked(src);
	src->sh_nproviders++;
	if (op->op_snap != NULL)
		src->sh_nready++;
	pthread_mutex_unlock(&src->sh_lock);
	return op;
}

void
oidc_provider_retire(struct oidc_provider *op)
{
	/* A newer handle drives the timed fetches now. */
	if (op != NULL && op->op_timer != NULL) {
		event_free(op->op_timer);
		op->op_timer = NULL;
	}
}

void
oidc_provider_free(struct oidc_provider *op)
{
	int was_fetcher = 0;

	if (op == NULL)
		return;
	if (op->op_xfer != NULL)
		httpc_cancel(op->op_xfer);
	op->op_xfer = NULL;
	pthread_mutex_lock(&op->op_src->sh_lock);
	/* Nobody waits for a flight cut short: its handle's requests are
	 * all gone (or the loops have ended). */
	if (op->op_src->sh_fetcher == op) {
		op->op_src->sh_fetcher = NULL;
		was_fetcher = 1;
	}
	if (op->op_snap != NULL)
		op->op_src->sh_nready--;
	op->op_src->sh_nproviders--;
	pthread_mutex_unlock(&op->op_src->sh_lock);
	oidc_snap_release(op->op_snap);
	oidc_doc_release(op->op_doc);
	oidc_source_release(op->op_src);
	free(op->op_waiters);
	if (op->op_timer != NULL)
		event_free(op->op_timer);
	oidc_meta_cleanup(&op->op_pending);
	op->op_magic = 0;
	free(op);
	/* A retired handle's flight was cut: the current handles look at
	 * the timer again (their notify re-arms it). */
	if (was_fetcher && oidc_announce != NULL)
		oidc_announce();
}

void
oidc_provider_notify(struct oidc_provider *op)
{
	struct oidc_snap *s;
	uint64_t ended;
	time_t next;
	int fetching;

	pthread_mutex_lock(&op->op_src->sh_lock);
	s = oidc_snap_grab_locked(op->op_src);
	ended = op->op_src->sh_ended;
	next = op->op_src->sh_next;
	fetching = op->op_src->sh_fetcher != NULL;
	pthread_mutex_unlock(&op->op_src->sh_lock);
	if (s == op->op_snap)
		oidc_snap_release(s);
	else {
		if (op->op_snap == NULL && s != NULL) {
			log_info("provider ready worker=%d issuer=%s",
			    op->op_worker->w_id, s->sn_doc->od_meta.om_issuer);
			pthread_mutex_lock(&op->op_src->sh_lock);
			op->op_src->sh_nready++;
			pthread_mutex_unlock(&op->op_src->sh_lock);
		}
		/* Requests borrowed the old copy only within a loop turn
		 * (see oidc.h); this is a new turn. */
		oidc_snap_release(op->op_snap);
		op->op_snap = s;
	}
	if (op->op_timer != NULL && !fetching) {
		evtimer_del(op->op_timer);
		oidc_timer_in(op, (long)(next - time(NULL)));
	}
	oidc_wake_waiters(op, ended);
}

const struct oidc_meta *
oidc_provider_meta(struct oidc_provider *op)
{
	return op != NULL && op->op_snap != NULL ? &op->op_snap->sn_doc->od_meta
	                                         : NULL;
}

const struct jwks *
oidc_provider_jwks(struct oidc_provider *op)
{
	return op != NULL && op->op_snap != NULL ? op->op_snap->sn_keys : NULL;
}

enum oidc_state
oidc_provider_state(struct oidc_provider *op)
{
	int failed;

	if (op == NULL)
		return OIDC_FAILED;
	if (op->op_snap != NULL)
		return OIDC_READY;
	pthread_mutex_lock(&op->op_src->sh_lock);
	failed = op->op_src->sh_failed;
	pthread_mutex_unlock(&op->op_src->sh_lock);
	return failed ? OIDC_FAILED : OIDC_UNKNOWN;
}

int
oidc_provider_ready(struct oidc_provider *op, char *why, size_t size)
{
	struct oidc_source *src;
	int ready = 0;

	if (op == NULL) {
		snprintf(why, size, "provider: not set up on this worker");
		return 0;
	}
	src = op->op_src;
	pthread_mutex_lock(&src->sh_lock);
	/* A failed fetch counts even with a last good copy in hand: sign-in
	 * and key rotation need the provider now, and the retries (backoff
	 * up to a minute) keep asking, so the answer turns back as soon as
	 * one of them works.  The grace before a pod leaves the Service is
	 * the readiness probe's failureThreshold, not ours. */
	if (src->sh_failed)
		snprintf(why, size,
		    "provider: the last %s fetch failed (%s), retrying",
		    src->sh_fail_what, src->sh_fail_kind);
	else if (src->sh_snap == NULL)
		snprintf(
		    why, size, "provider: metadata and keys not fetched yet");
	else if (op->op_snap == NULL || src->sh_nready < src->sh_nproviders)
		snprintf(why, size,
		    "provider: metadata and keys not on every worker yet");
	else
		ready = 1;
	pthread_mutex_unlock(&src->sh_lock);
	if (ready && size > 0)
		why[0] = '\0';
	return ready;
}

int
oidc_provider_jwks_refetch(
    struct oidc_provider *op, void (*done)(void *arg, int fresh), void *arg)
{
	struct oidc_snap *cur;
	time_t now = time(NULL);
	uint64_t seq = 0;
	int start = 0;

	if (op->op_snap == NULL || oidc_waiter_reserve(op) == -1)
		return -1;
	pthread_mutex_lock(&op->op_src->sh_lock);
	cur = op->op_src->sh_snap;
	if (cur != NULL && cur->sn_seq > op->op_snap->sn_seq)
		seq = cur->sn_seq; /* newer keys are on their way here */
	else if (op->op_src->sh_fetcher != NULL)
		seq = op->op_src->sh_started; /* join the running flight */
	else if (op->op_src->sh_refetched == 0 ||
	    now - op->op_src->sh_refetched >= OIDC_JWKS_MIN_INTERVAL) {
		/* Only refetches caused by unknown kids are rate-limited,
		 * and for the whole process: a key rotated just after a
		 * timed fetch is still picked up, while a flood of forged
		 * kids on any number of workers costs one fetch a
		 * minute. */
		op->op_src->sh_refetched = now;
		seq = oidc_flight_claim_locked(op);
		start = 1;
	}
	pthread_mutex_unlock(&op->op_src->sh_lock);
	if (seq == 0)
		return -1;
	oidc_waiter_add(op, done, arg, seq);
	if (start) {
		log_info("jwks_refetch reason=\"unknown kid\" worker=%d",
		    op->op_worker->w_id);
		op->op_seq = seq;
		op->op_doc = oidc_doc_hold(op->op_snap->sn_doc);
		/* A failure here ends the flight and tells the waiters. */
		oidc_flight_jwks(op);
	}
	return 0;
}

int
oidc_provider_wait(
    struct oidc_provider *op, void (*done)(void *arg, int ok), void *arg)
{
	uint64_t seq = 0;

	if (op->op_snap != NULL || oidc_waiter_reserve(op) == -1)
		return -1;
	pthread_mutex_lock(&op->op_src->sh_lock);
	if (op->op_src->sh_snap != NULL)
		seq = op->op_src->sh_snap->sn_seq; /* on its way here */
	else if (op->op_src->sh_fetcher != NULL)
		seq = op->op_src->sh_started;
	else if (op->op_src->sh_ended == 0)
		seq =
		    op->op_src->sh_started + 1; /* the first, about to start */
	pthread_mutex_unlock(&op->op_src->sh_lock);
	/* 0: the last attempt failed and the retry waits for its backoff. */
	if (seq == 0)
		return -1;
	oidc_waiter_add(op, done, arg, seq);
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
