/* SPDX-License-Identifier: ISC */
/*
 * oidc_login.c: /.auth/login starts a sign-in (or, with prompt=create, a
 * sign-up): a fresh state, nonce and PKCE verifier, kept in a sealed
 * cookie of their own (oidc_flow.c) so parallel tabs each complete, then a
 * redirect to the provider's authorization endpoint.  Also the session a
 * request's cookie names, and the challenge sent to requests that need a
 * session and have none.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/errpage.h"
#include "http/conn.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/groups.h"
#include "oidc/http_client.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "oidc/token_profile.h"
#include "path.h"
#include "session/cookie.h"
#include "session/session.h"

int
oidc_config_loopback(const struct config *cfg)
{
	const char *u =
	    cfg->cf_authority != NULL ? cfg->cf_authority : cfg->cf_oidc_issuer;

	return u != NULL &&
	    (strncmp(u, "http://127.", 11) == 0 ||
	        strncmp(u, "http://localhost", 16) == 0 ||
	        strncmp(u, "http://[::1]", 12) == 0 ||
	        strncmp(u, "https://127.", 12) == 0 ||
	        strncmp(u, "https://localhost", 17) == 0);
}

int
oidc_issuer_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	/* Exactly equal, but for one trailing slash. */
	if (la > 0 && a[la - 1] == '/')
		la--;
	if (lb > 0 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

/* Percent-decode once into out; -1 on a bad escape. */
static int
oidc_pct_decode(const char *in, char *out, size_t size)
{
	size_t o = 0;
	int hi, lo;

	for (; *in != '\0'; in++) {
		if (o + 1 >= size)
			return -1;
		if (*in == '%') {
			hi = crypto_hex_value((unsigned char)in[1]);
			lo = hi < 0 ? -1
			            : crypto_hex_value((unsigned char)in[2]);
			/* %00 would end the decoded string early and hide
			 * what follows it from the checks. */
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			out[o++] = (char)(hi * 16 + lo);
			in += 2;
		} else
			out[o++] = *in;
	}
	out[o] = '\0';
	return 0;
}

static int
oidc_path_shape_ok(const char *s, int raw)
{
	const unsigned char *p;
	const char *d;

	/* A path on this site: one leading '/', and never "//" or "/\"
	 * which browsers read as another host; no dot segments, which could
	 * be resolved into one. */
	if (s[0] != '/' || s[1] == '/' || s[1] == '\\')
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || (raw && *p == 0x20) || *p == 0x7f ||
		    *p == '\\')
			return 0;
	for (d = strstr(s, "/."); d != NULL; d = strstr(d + 1, "/.")) {
		size_t n = d[2] == '.' ? 3 : 2;

		if (d[n] == '\0' || d[n] == '/' || d[n] == '?' || d[n] == '#')
			return 0;
	}
	return 1;
}

/*
 * Whether the path part of s (up to '?' or '#'), once normalised as the
 * router normalises request paths (dot segments, duplicate slashes,
 * unreserved escapes) and compared without regard to case, is one of
 * gatehouse's own endpoints: under auth_prefix (also as "/.auth;x", which a
 * servlet upstream reads as "/.auth"), or the callback path.
 */
static int
oidc_path_is_ours(const struct config *cfg, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char path[3 * 2048], norm[3 * 2048];
	size_t n = strcspn(s, "?#"), i, o = 0, plen;
	unsigned char c;

	if (n >= 2048)
		return 1;
	/* Security: read the path as the browser will send it.  It
	 * percent-encodes what may not appear raw in a URL (a space, a
	 * non-ASCII byte, an invalid UTF-8 byte), so "/.auth/lo\xFDin"
	 * arrives as "/.auth/lo%FDin" and reaches gatehouse after all. */
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("\"<>`{}|^", c) != NULL) {
			path[o++] = '%';
			path[o++] = hex[c >> 4];
			path[o++] = hex[c & 15];
		} else
			path[o++] = (char)c;
	}
	path[o] = '\0';
	/* A path the router refuses (400) even so reaches no endpoint here,
	 * but a laxer decoder further on (the app's redirect helper) may
	 * drop what the router refuses: compare it as it stands. */
	if (path_normalise(path, PATH_FOLD_CASE, norm, sizeof(norm), NULL) ==
	    -1)
		snprintf(norm, sizeof(norm), "%s", path);
	plen = strlen(cfg->cf_auth_prefix);
	if (strncasecmp(norm, cfg->cf_auth_prefix, plen) == 0 &&
	    (norm[plen] == '/' || norm[plen] == '\0' || norm[plen] == ';'))
		return 1;
	return cfg->cf_callback_path != NULL &&
	    strcasecmp(norm, cfg->cf_callback_path) == 0;
}

/*
 * Security: a return URL passes through an unknown number of decoders
 * before it is acted on (the browser, a front proxy, the app's framework,
 * the app's own redirect helper), so it is percent-decoded to a fixed
 * point and every level must be a local path: "/%252Eauth/logout" is
 * checked as itself, as "/%2Eauth/logout" and as "/.auth/logout".  This
 * was chosen over refusing every "%25": encoded characters in an app's
 * paths (%20, UTF-8) keep working, and no count of decodings can reach a
 * shape that was not checked.  Each decoding shortens the string, so the
 * loop ends; a malformed escape is refused, as no decoder's reading of it
 * can be predicted.  cfg NULL: the shape checks only.
 */
static int
oidc_redirect_check(const struct config *cfg, const char *target)
{
	char a[2048], b[2048];
	int raw = 1;

	if (target == NULL || strlen(target) >= sizeof(a))
		return 0;
	snprintf(a, sizeof(a), "%s", target);
	for (;;) {
		if (!oidc_path_shape_ok(a, raw))
			return 0;
		if (cfg != NULL && oidc_path_is_ours(cfg, a))
			return 0;
		if (strchr(a, '%') == NULL)
			return 1;
		if (oidc_pct_decode(a, b, sizeof(b)) == -1)
			return 0;
		memcpy(a, b, sizeof(a));
		raw = 0;
	}
}

int
oidc_redirect_safe(const char *target)
{
	return oidc_redirect_check(NULL, target);
}

/* Whether url's scheme, host and port (the default port when none is
 * written) are those of origin, an http(s) URL without a path. */
static int
oidc_origin_equal(const char *url, const char *origin)
{
	const char *errstr;
	char *h1 = NULL, *h2 = NULL;
	int s1, s2, p1, p2, same;

	if (origin == NULL ||
	    config_url_split(url, &s1, &h1, &p1, NULL, &errstr) == -1)
		return 0;
	if (config_url_split(origin, &s2, &h2, &p2, NULL, &errstr) == -1) {
		free(h1);
		return 0;
	}
	same = s1 == s2 && p1 == p2 && strcasecmp(h1, h2) == 0;
	free(h1);
	free(h2);
	return same;
}

/*
 * The path an absolute return URL names when it is this gateway's own
 * origin, as Easy Auth's clients send it ("http://this-host/path"); NULL
 * for any other URL.  This origin is the public base (redirect_uri's) or
 * `origin` (the request's own, may be NULL).  The path then passes the
 * same checks as a path given alone.
 */
static const char *
oidc_target_same_origin(
    const struct config *cfg, const char *origin, const char *t)
{
	const char *rest;

	if (strncmp(t, "http://", 7) == 0)
		rest = t + 7;
	else if (strncmp(t, "https://", 8) == 0)
		rest = t + 8;
	else
		return NULL;
	rest += strcspn(rest, "/?#\\");
	if (*rest != '/')
		return NULL;
	return oidc_origin_equal(t, cfg->cf_public_base) ||
	        oidc_origin_equal(t, origin)
	    ? rest
	    : NULL;
}

const char *
oidc_target_check(const struct config *cfg, const char *origin, const char *t)
{
	const char *local;

	if (t == NULL)
		return NULL;
	local = oidc_target_same_origin(cfg, origin, t);
	if (local != NULL)
		return oidc_redirect_check(cfg, local) ? local : NULL;
	return oidc_redirect_check(cfg, t) ? t : NULL;
}

const char *
oidc_target_or_root(const struct config *cfg, const char *t)
{
	const char *local = oidc_target_check(cfg, NULL, t);

	return local != NULL ? local : "/";
}

/* u for a log line: up to its query or fragment (which may carry
 * anything), sanitized.  Returns buf. */
static char *
oidc_log_url(char *buf, size_t size, const char *u)
{
	char cut[256];

	snprintf(cut, sizeof(cut), "%.*s", (int)strcspn(u, "?#"), u);
	return log_sanitize(buf, size, cut);
}

/*
 * The request's own origin into buf: its Host (or a trusted proxy's
 * X-Forwarded-Host), with the scheme a trusted proxy names or else the
 * public base's.  The browser sent that Host, so a link cannot make
 * another site pass for this one.  Returns buf, or NULL when there is
 * none usable.
 */
static const char *
oidc_request_origin(struct request_ctx *rq, char *buf, size_t size)
{
	const struct config *cfg = rq->rq_cfg;
	const char *host = NULL, *proto = NULL;

	if (rq->rq_peer_trusted) {
		host = request_header(rq, "X-Forwarded-Host");
		proto = request_header(rq, "X-Forwarded-Proto");
	}
	if (host == NULL)
		host = rq->rq_hreq->hr_host;
	if (proto == NULL ||
	    (strcmp(proto, "http") != 0 && strcmp(proto, "https") != 0))
		proto = conn_tls(rq->rq_conn) || cfg->cf_public_https ? "https"
		                                                      : "http";
	if (host == NULL || host[0] == '\0' ||
	    strpbrk(host, "/?#@\\") != NULL ||
	    snprintf(buf, size, "%s://%s", proto, host) >= (int)size)
		return NULL;
	return buf;
}

const char *
oidc_return_target(struct request_ctx *rq, const char *t)
{
	static __thread struct log_limit limit;
	const char *local;
	char origin[512], shown[128];
	unsigned missed;

	if (t == NULL)
		return "/";
	local = oidc_target_check(
	    rq->rq_cfg, oidc_request_origin(rq, origin, sizeof(origin)), t);
	if (local != NULL)
		return local;
	/* A refused return URL is worth a line (a broken link in the app,
	 * or someone probing), but anyone can send them: rate limited. */
	if (log_limit_pass(&limit, OIDC_LOG_EVERY, &missed))
		log_info("return_url_refused id=%s client=%s url=\"%s\" "
		         "suppressed=%u",
		    rq->rq_id, rq->rq_peer,
		    oidc_log_url(shown, sizeof(shown), t), missed);
	return "/";
}

int
oidc_params_parse(
    const char *s, struct evkeyvalq *out, const char *const *unique)
{
	const char *const *u;
	struct evkeyval *h;
	int n;

	TAILQ_INIT(out);
	if (s == NULL || *s == '\0')
		return 0;
	/* Strict (callback) mode: a decoded %00 would end a value early
	 * and hide what follows, so such a response is malformed.  Login
	 * links are lenient: a bad return URL there just becomes "/". */
	if (unique != NULL && strcasestr(s, "%00") != NULL)
		return -1;
	if (evhttp_parse_query_str(s, out) == -1)
		return -1;
	for (u = unique; u != NULL && *u != NULL; u++) {
		n = 0;
		TAILQ_FOREACH(h, out, next)
		if (strcmp(h->key, *u) == 0)
			n++;
		if (n > 1)
			return -1;
	}
	return 0;
}

/* state, nonce and PKCE verifier: 32 random bytes each, base64url, from
 * one call to the generator (each call costs its locking and fork check). */
static int
oidc_random_flow(struct oidc_flow *f)
{
	unsigned char r[3 * 32];
	size_t n;
	int rc;

	if (crypto_random(r, sizeof(r)) == -1)
		return -1;
	rc = crypto_b64url_encode(
	         r, 32, f->of_state, sizeof(f->of_state), &n) == -1 ||
	        crypto_b64url_encode(
	            r + 32, 32, f->of_nonce, sizeof(f->of_nonce), &n) == -1 ||
	        crypto_b64url_encode(r + 64, 32, f->of_verifier,
	            sizeof(f->of_verifier), &n) == -1
	    ? -1
	    : 0;
	OPENSSL_cleanse(r, sizeof(r));
	return rc;
}

/* A hint passed through must be short and printable. */
static const char *
oidc_hint(struct evkeyvalq *q, const char *name)
{
	const char *v = evhttp_find_header(q, name);
	const unsigned char *p;

	if (v == NULL || strlen(v) > 256)
		return NULL;
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return NULL;
	return v[0] != '\0' ? v : NULL;
}

static void
oidc_url_param(struct evbuffer *b, const char *name, const char *value)
{
	char *e = httpc_url_escape(value);

	evbuffer_add_printf(b, "&%s=%s", name, e != NULL ? e : "");
	free(e);
}

/*
 * offline_access = auto: a refresh token only when gatehouse will redeem
 * it (to keep a forwarded or shown access token fresh, to extend a
 * session that follows its ID token, to read groups from Graph again, to
 * revalidate the session: session_revalidate, on by default).
 * Otherwise none is issued, so none sits in the store.
 */
int
oidc_wants_refresh_token(const struct config *cfg)
{
	if (cfg->cf_offline_access != OIDC_OFFLINE_AUTO)
		return cfg->cf_offline_access;
	return cfg->cf_forward_access_token || cfg->cf_me_includes_tokens ||
	    cfg->cf_session_id_token || cfg->cf_ntoken_profiles > 0 ||
	    cfg->cf_session_revalidate > 0 ||
	    cfg->cf_groups_overage == GROUPS_OVERAGE_GRAPH;
}

/* Build {authorization_endpoint}?... into a new string. */
static char *
oidc_authorize_url(const struct config *cfg, const struct oidc_meta *m,
    const struct oidc_flow *f, const char *prompt, const char *login_hint,
    const char *domain_hint)
{
	unsigned char digest[32];
	const struct token_profile *tp = token_profile_find(cfg, f->of_profile);
	char challenge[64], *scope = NULL, *out = NULL;
	struct evbuffer *b;
	size_t n;

	b = evbuffer_new();
	if (b == NULL)
		return NULL;
	crypto_sha256(f->of_verifier, strlen(f->of_verifier), digest);
	crypto_b64url_encode(
	    digest, sizeof(digest), challenge, sizeof(challenge), &n);
	/* A profile's scopes join the sign-in's so the person can consent
	 * to them (incremental consent); its token comes later, redeemed
	 * with the refresh token. */
	if (asprintf(&scope, "openid profile%s%s%s%s%s",
	        oidc_wants_refresh_token(cfg) ? " offline_access" : "",
	        cfg->cf_scopes[0] != '\0' ? " " : "", cfg->cf_scopes,
	        tp != NULL ? " " : "", tp != NULL ? tp->tp_scopes : "") == -1)
		scope = NULL;
	evbuffer_add_printf(b, "%s%cresponse_type=code",
	    m->om_authorization_endpoint,
	    strchr(m->om_authorization_endpoint, '?') ? '&' : '?');
	oidc_url_param(b, "client_id", cfg->cf_client_id);
	oidc_url_param(b, "redirect_uri", cfg->cf_redirect_uri);
	oidc_url_param(b, "scope", scope != NULL ? scope : "openid");
	oidc_url_param(b, "state", f->of_state);
	oidc_url_param(b, "nonce", f->of_nonce);
	oidc_url_param(b, "code_challenge", challenge);
	oidc_url_param(b, "code_challenge_method", "S256");
	if (cfg->cf_response_mode == OIDC_RESPONSE_FORM_POST)
		oidc_url_param(b, "response_mode", "form_post");
	if (prompt != NULL)
		oidc_url_param(b, "prompt", prompt);
	if (login_hint != NULL)
		oidc_url_param(b, "login_hint", login_hint);
	if (domain_hint != NULL)
		oidc_url_param(b, "domain_hint", domain_hint);
	n = evbuffer_get_length(b);
	out = malloc(n + 1);
	if (out != NULL) {
		evbuffer_remove(b, out, n);
		out[n] = '\0';
	}
	free(scope);
	evbuffer_free(b);
	return out;
}

static void oidc_login_wait_cb(void *arg, int ok);
static void oidc_challenge_wait_cb(void *arg, int ok);

static void
oidc_unavailable(struct request_ctx *rq)
{
	rq->rq_event = "provider_unavailable";
	if (oidc_provider_no_tenant(rq->rq_gen->wg_provider))
		errpage_send(rq, 503, "provider_unavailable",
		    "Signing in is not set up correctly: the identity "
		    "provider says the directory (tenant) this site is "
		    "configured for was not found. Please tell the site's "
		    "administrator.",
		    0);
	else
		errpage_send(rq, 503, "provider_unavailable",
		    "The identity provider is unreachable, so signing in is "
		    "not possible right now. Please try again in a minute.",
		    0);
}

/* Redirect rq's browser to the provider for a new sign-in.  While the
 * provider's metadata has not arrived yet, wait_cb starts again once it
 * has (the request that got here, /.auth/login or a protected page). */
static void
oidc_login_start(struct request_ctx *rq, const char *target, const char *prompt,
    const char *login_hint, const char *domain_hint, const char *profile,
    void (*wait_cb)(void *, int))
{
	const struct config *cfg = rq->rq_cfg;
	const struct oidc_meta *m = oidc_provider_meta(rq->rq_gen->wg_provider);
	struct resp_hdrs *out = request_out(rq);
	struct oidc_flow f;
	char *url = NULL, *sealed = NULL;

	if (m == NULL) {
		/* Just started: wait for the first fetch rather than
		 * refuse. */
		request_cleanup_add(rq, oidc_request_cleanup, rq);
		if (oidc_provider_wait(rq->rq_gen->wg_provider, wait_cb, rq) ==
		    0) {
			rq->rq_state = RQ_PROVIDER;
			return;
		}
		oidc_unavailable(rq);
		return;
	}
	memset(&f, 0, sizeof(f));
	f.of_created = time(NULL);
	f.of_target = (char *)target;
	f.of_profile = (char *)profile;
	if (oidc_random_flow(&f) == -1)
		goto fail;
	sealed = oidc_flow_seal(&f);
	url = oidc_authorize_url(cfg, m, &f, prompt, login_hint, domain_hint);
	if (sealed == NULL || url == NULL)
		goto fail;
	oidc_flow_cookie_name(
	    cfg, f.of_state, f.of_created, f.of_cookie, sizeof(f.of_cookie));
	oidc_flow_cap(rq, out);
	/* form_post comes back as a cross-site POST, which only carries a
	 * SameSite=None cookie (entra.md 7.3). */
	cookie_set(out, cfg, f.of_cookie, sealed, OIDC_FLOW_TTL,
	    cfg->cf_response_mode == OIDC_RESPONSE_FORM_POST ? COOKIE_NONE
	                                                     : COOKIE_LAX);
	resp_hdrs_add(out, "Location", url);
	resp_hdrs_add(out, "Cache-Control", "no-store");
	rq->rq_event = prompt != NULL && strcmp(prompt, "create") == 0
	    ? "signup"
	    : "login";
	log_info("%s id=%s client=%s", rq->rq_event, rq->rq_id, rq->rq_peer);
	metrics_signin_started();
	free(url);
	free(sealed);
	OPENSSL_cleanse(&f, sizeof(f));
	request_reply(rq, 302, "Found", NULL);
	return;
fail:
	free(url);
	free(sealed);
	OPENSSL_cleanse(&f, sizeof(f));
	errpage_send(rq, 500, "internal", "Sign-in could not be started.", 0);
}

/* The provider's first fetch has ended: start again. */
static void
oidc_login_wait_cb(void *arg, int ok)
{
	struct request_ctx *rq = request_cast(arg);

	if (!ok) {
		oidc_unavailable(rq);
		return;
	}
	oidc_login(rq);
}

void
oidc_login(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	const struct token_profile *tp;
	struct evkeyvalq q;
	const char *query, *prompt, *target;

	if (!oidc_configured(cfg)) {
		errpage_send(rq, 404, "not_found",
		    "Sign-in is not configured on this gateway.", 0);
		return;
	}
	query = strchr(rq->rq_path, '?');
	if (oidc_params_parse(query != NULL ? query + 1 : NULL, &q, NULL) ==
	    -1) {
		errpage_send(rq, 400, "bad_request",
		    "The sign-in link is malformed.", 0);
		return;
	}
	/* Security: only a path on this site; anything else becomes "/"
	 * and is never echoed. */
	target = oidc_return_target(
	    rq, evhttp_find_header(&q, "post_login_redirect_uri"));
	prompt = evhttp_find_header(&q, "prompt");
	if (prompt != NULL && strcmp(prompt, "create") != 0 &&
	    strcmp(prompt, "login") != 0 &&
	    strcmp(prompt, "select_account") != 0 &&
	    strcmp(prompt, "consent") != 0)
		prompt = NULL;
	/* token=NAME: ask consent for a configured profile's scopes too;
	 * any other name is ignored (the scopes are never the client's). */
	tp = token_profile_find(cfg, evhttp_find_header(&q, "token"));
	oidc_login_start(rq, target, prompt, oidc_hint(&q, "login_hint"),
	    oidc_hint(&q, "domain_hint"), tp != NULL ? tp->tp_name : NULL,
	    oidc_login_wait_cb);
	evhttp_clear_headers(&q);
}

/* Whether the client is a browser navigating (it can follow a redirect to
 * the provider) rather than an API call. */
static int
oidc_is_navigation(struct request_ctx *rq)
{
	const char *accept = request_header(rq, "Accept");
	const char *mode = request_header(rq, "Sec-Fetch-Mode");

	if (strcmp(rq->rq_method, "GET") != 0 &&
	    strcmp(rq->rq_method, "HEAD") != 0)
		return 0;
	if (request_header(rq, "X-Requested-With") != NULL)
		return 0;
	if (mode != NULL)
		return strcmp(mode, "navigate") == 0;
	return accept == NULL || strstr(accept, "text/html") != NULL ||
	    strstr(accept, "*/*") != NULL;
}

void
oidc_session_cleanup(void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	/* The call first: it may be about to fill or write the session. */
	session_op_cancel(rq->rq_store_op);
	rq->rq_store_op = NULL;
	session_free(rq->rq_session);
	rq->rq_session = NULL;
}

/* Who rq is for its access-log line (log_user), copied: the session may
 * be reloaded, and its identity block replaced, before the line. */
static void
oidc_log_user(struct request_ctx *rq)
{
	const char *v = "", *id;
	size_t n = 0;

	switch (rq->rq_cfg->cf_log_user) {
	case CONFIG_LOG_USER_SUB:
		v = session_sub(rq->rq_session);
		n = strlen(v);
		break;
	case CONFIG_LOG_USER_NAME:
		/* The block's first line is X-Forwarded-User (identity.c). */
		id = rq->rq_session->se_ident;
		if (strncmp(id, "X-Forwarded-User: ", 18) == 0) {
			v = id + 18;
			n = strcspn(v, "\r\n");
		}
		break;
	default:
		break;
	}
	if (n >= sizeof(rq->rq_user))
		n = sizeof(rq->rq_user) - 1;
	memcpy(rq->rq_user, v, n);
	rq->rq_user[n] = '\0';
}

/* A session cookie that names no session: one rate-limited line saying
 * whether it could ever have been one of ours (never the value).  cookie
 * is NULL when the store was asked and knew no such session. */
static void
oidc_log_bad_cookie(struct request_ctx *rq, const char *cookie, int rc)
{
	static __thread struct log_limit limit;
	static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                             "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = cookie != NULL ? strlen(cookie) : SESSION_ID_B64_LEN;
	unsigned missed;

	if (!log_limit_pass(&limit, OIDC_LOG_EVERY, &missed))
		return;
	log_info("session_cookie_rejected id=%s client=%s reason=\"%s\" "
	         "suppressed=%u",
	    rq->rq_id, rq->rq_peer,
	    rc == -1                ? "repeated, empty or too long"
	        : rc == SESSION_ERR ? "the session store failed"
	        : n != SESSION_ID_B64_LEN ||
	            (cookie != NULL && strspn(cookie, b64url) != n)
	        ? "malformed (not a session id)"
	        : "unknown or ended session",
	    missed);
}

/* What the store said of rq's session cookie (cookie NULL when it
 * answered later): signed in, signed out, or the store failed. */
static void
oidc_session_loaded(
    struct request_ctx *rq, const char *cookie, enum session_result r)
{
	switch (r) {
	case SESSION_OK:
		oidc_log_user(rq);
		break;
	case SESSION_UNAVAIL:
	case SESSION_ERR:
		/* Not signed out: the store could not say.  Its own line
		 * says why, once per change, not once per request. */
		rq->rq_store_failed = 1;
		break;
	default:
		oidc_log_bad_cookie(rq, cookie, (int)r);
		break;
	}
}

static void
oidc_session_load_done(void *arg, enum session_result r)
{
	struct request_ctx *rq = request_cast(arg);
	void (*next)(struct request_ctx *) = rq->rq_resume;

	rq->rq_store_op = NULL;
	rq->rq_resume = NULL;
	oidc_session_loaded(rq, NULL, r);
	next(rq);
}

static void
oidc_session_load_with(
    struct request_ctx *rq, void (*next)(struct request_ctx *), int hot_only)
{
	const struct config *cfg = rq->rq_cfg;
	char cookie[COOKIE_MAX_VALUE];
	enum session_result r;
	size_t n;
	int got;

	if (!oidc_configured(cfg)) {
		next(rq);
		return;
	}
	got = cookie_get(
	    rq->rq_hreq, cfg->cf_cookie_name, cookie, sizeof(cookie));
	if (got != 1) {
		if (got == -1)
			oidc_log_bad_cookie(rq, NULL, -1);
		next(rq);
		return;
	}
	request_cleanup_add(rq, oidc_session_cleanup, rq);
	r = (hot_only ? session_load_hot_start : session_load_start)(
	    rq->rq_worker->w_reader, cookie, time(NULL), cfg, &rq->rq_session,
	    oidc_session_load_done, rq, &rq->rq_store_op);
	/* Only the value's bytes: the rest of the buffer was never written,
	 * and wiping all 4 KiB was a visible share of a signed-in request. */
	n = strnlen(cookie, sizeof(cookie));
	if (r == SESSION_PENDING) {
		OPENSSL_cleanse(cookie, n);
		rq->rq_resume = next;
		rq->rq_state = RQ_STORE;
		return;
	}
	oidc_session_loaded(rq, cookie, r);
	OPENSSL_cleanse(cookie, n);
	next(rq);
}

void
oidc_session_load(struct request_ctx *rq, void (*next)(struct request_ctx *))
{
	oidc_session_load_with(rq, next, 0);
}

void
oidc_session_load_hot(
    struct request_ctx *rq, void (*next)(struct request_ctx *))
{
	oidc_session_load_with(rq, next, 1);
}

void
oidc_store_unavailable(struct request_ctx *rq)
{
	rq->rq_event = "store_unavailable";
	resp_hdrs_add(request_out(rq), "Retry-After", "5");
	errpage_send(rq, 503, "store_unavailable",
	    "Your sign-in cannot be checked right now: the session store is "
	    "unreachable. Please try again in a moment.",
	    0);
}

void
oidc_challenge(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	struct resp_hdrs *out = request_out(rq);
	char *esc, *loc;

	rq->rq_event = "unauthenticated";
	if (rq->rq_verify) {
		/* Forward-auth: the front proxy turns this 401 into the
		 * redirect; it cannot follow a 302 from a subrequest. */
		esc = httpc_url_escape(rq->rq_path);
		if (esc != NULL &&
		    asprintf(&loc, "%s/login?post_login_redirect_uri=%s",
		        cfg->cf_auth_prefix, esc) != -1) {
			resp_hdrs_add(out, "X-Auth-Redirect", loc);
			free(loc);
		}
		free(esc);
		errpage_send(
		    rq, 401, "unauthenticated", "Sign-in is required.", 0);
		return;
	}
	if (!oidc_is_navigation(rq) || errpage_wants_json(rq)) {
		resp_hdrs_add(
		    out, "WWW-Authenticate", "Bearer realm=\"gatehouse\"");
		errpage_send(
		    rq, 401, "unauthenticated", "Sign-in is required.", 0);
		return;
	}
	/* A browser navigating: straight to the provider, as
	 * /.auth/login?post_login_redirect_uri={this path} would send it,
	 * without that hop in between (one round trip and one request
	 * fewer per sign-in).  The return path passes the same checks. */
	oidc_login_start(rq, oidc_return_target(rq, rq->rq_path), NULL, NULL,
	    NULL, NULL, oidc_challenge_wait_cb);
}

/* The provider's first fetch has ended: challenge again. */
static void
oidc_challenge_wait_cb(void *arg, int ok)
{
	struct request_ctx *rq = request_cast(arg);

	if (!ok) {
		oidc_unavailable(rq);
		return;
	}
	oidc_challenge(rq);
}

void
oidc_token_refused(struct request_ctx *rq, const char *name, int asked)
{
	const struct config *cfg = rq->rq_cfg;
	const struct token_profile *tp = token_profile_find(cfg, name);
	struct resp_hdrs *out = request_out(rq);
	char *esc, *loc = NULL, *hdr = NULL, msg[256];

	rq->rq_event = "consent_required";
	snprintf(msg, sizeof(msg),
	    "This page needs access to \"%s\" on your behalf, which has not "
	    "been granted.",
	    tp != NULL ? tp->tp_name : "?");
	if (rq->rq_verify || !oidc_is_navigation(rq) ||
	    errpage_wants_json(rq)) {
		/* RFC 6750 3.1: the scope the client must get first. */
		if (asprintf(&hdr,
		        "Bearer realm=\"gatehouse\", "
		        "error=\"insufficient_scope\", "
		        "scope=\"%s\"",
		        tp != NULL ? tp->tp_scopes : "") != -1)
			resp_hdrs_add(out, "WWW-Authenticate", hdr);
		free(hdr);
		errpage_send(rq, 401, "insufficient_scope", msg, 0);
		return;
	}
	if (asked) {
		/* This session's sign-in asked for it already: a second trip
		 * would only come back here. */
		errpage_send(rq, 403, "consent_required",
		    "Access to an API this page needs was not granted at "
		    "sign-in. An administrator may have to grant consent for "
		    "it.",
		    0);
		return;
	}
	esc = httpc_url_escape(rq->rq_path);
	if (esc == NULL || tp == NULL ||
	    asprintf(&loc, "%s/login?post_login_redirect_uri=%s&token=%s",
	        cfg->cf_auth_prefix, esc, tp->tp_name) == -1) {
		free(esc);
		errpage_send(rq, 500, "internal", "Out of memory.", 0);
		return;
	}
	free(esc);
	log_info("consent id=%s token=%s", rq->rq_id, tp->tp_name);
	resp_hdrs_add(out, "Location", loc);
	resp_hdrs_add(out, "Cache-Control", "no-store");
	free(loc);
	request_reply(rq, 302, "Found", NULL);
}
