/* SPDX-License-Identifier: ISC */
/* oidc_config.c: the OpenID Connect keys and their cross-checks. */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/config.h"
#include "core/error.h"
#include "oidc/client_cert.h"
#include "oidc/oidc.h"
#include "policy.h"

static int oidc_parse_assertion_alg(struct config *, const struct config_key *,
    const char *, int, const char **);
static int oidc_parse_response_mode(struct config *, const struct config_key *,
    const char *, int, const char **);
static int oidc_parse_token_auth(struct config *, const struct config_key *,
    const char *, int, const char **);
static int oidc_parse_resolve(struct config *, const struct config_key *,
    const char *, int, const char **);
static int oidc_parse_offline(struct config *, const struct config_key *,
    const char *, int, const char **);

/* Sorted by name: looked up with bsearch. */
static const struct config_key oidc_keys[] = {
    {"api_audience", config_parse_str, offsetof(struct config, cf_api_audience),
        NULL,
        "Audiences accepted in bearer tokens on API routes (space "
        "separated); by default client_id and api://client_id.",
        0},
    {"authority", config_parse_url, offsetof(struct config, cf_authority), NULL,
        "Entra authority, e.g. https://contoso.ciamlogin.com/"
        "contoso.onmicrosoft.com; discovery at "
        "{authority}/v2.0/.well-known/openid-configuration.",
        0},
    {"ca_file", config_parse_str, offsetof(struct config, cf_ca_file), NULL,
        "PEM file of CAs to trust for the provider (a private CA); the "
        "system's CAs otherwise.  TLS is always verified.",
        0},
    {"client_assertion_alg", oidc_parse_assertion_alg, 0, "PS256",
        "How the client assertion is signed with client_certificate_key: "
        "PS256 (RSA-PSS) or RS256 (for providers without PS256).",
        0},
    {"client_certificate", config_parse_str,
        offsetof(struct config, cf_client_certificate), NULL,
        "PEM file of the client's certificate (the first in the file; "
        "upload this certificate, never the key, to the app "
        "registration); with client_certificate_key the client "
        "authenticates with private_key_jwt instead of a secret.",
        0},
    {"client_certificate_key", config_parse_str,
        offsetof(struct config, cf_client_certificate_key), NULL,
        "PEM file of the certificate's RSA private key: not encrypted, "
        "mode 600 (readable by gatehouse only).",
        0},
    {"client_id", config_parse_str, offsetof(struct config, cf_client_id), NULL,
        "The application (client) id registered at the provider.", 0},
    {"client_secret", config_parse_secret,
        offsetof(struct config, cf_client_secret), NULL,
        "The client secret (its value, not its id); not needed with "
        "client_certificate.",
        CONFIG_SECRET},
    {"client_secret_file", config_parse_str,
        offsetof(struct config, cf_client_secret_file), NULL,
        "A file whose first line is the client secret (a mounted "
        "Kubernetes Secret, a credential from systemd), read at start "
        "and on every reload; instead of client_secret.",
        0},
    {"clock_skew", config_parse_duration,
        offsetof(struct config, cf_clock_skew), "5m",
        "Clock difference tolerated on exp, nbf and iat.", 0},
    {"discovery_refresh", config_parse_duration,
        offsetof(struct config, cf_discovery_refresh), "1h",
        "How often the discovery document and the JWKS are fetched "
        "again.",
        0},
    {"max_pending_logins", config_parse_int,
        offsetof(struct config, cf_max_pending_logins), "5",
        "Sign-ins one browser may have in progress at once (parallel "
        "tabs); the oldest is dropped beyond it.",
        0},
    {"me_includes_tokens", config_parse_bool,
        offsetof(struct config, cf_me_includes_tokens), "off",
        "Whether /.auth/me shows the access token as well as the claims "
        "(with me_format = easyauth, the ID token too).",
        0},
    {"offline_access", oidc_parse_offline,
        offsetof(struct config, cf_offline_access), "auto",
        "Whether sign-in asks for offline_access (a refresh token): auto "
        "when gatehouse will refresh (forward_access_token, "
        "me_includes_tokens, session_lifetime = id_token, groups_overage "
        "= graph, token.NAME, session_revalidate); on for POST "
        "/.auth/refresh without those; off never.",
        0},
    {"oidc_issuer", config_parse_url, offsetof(struct config, cf_oidc_issuer),
        NULL,
        "Any OpenID Provider's issuer (or Entra OIDC_AUTHORITY for a "
        "custom domain); discovery at {issuer}/.well-known/"
        "openid-configuration.",
        0},
    {"post_logout_redirect_uri", config_parse_url,
        offsetof(struct config, cf_post_logout_redirect_uri), NULL,
        "Where the browser goes after a sign-out that names no return "
        "path; by default the signed-out page, {site}/.auth/logout/"
        "complete (register it at the provider).",
        0},
    {"provider_resolve", oidc_parse_resolve,
        offsetof(struct config, cf_provider_resolve), NULL,
        "HOST:PORT:ADDRESS entries (as curl's --resolve), space "
        "separated: calls to the provider (and Graph) for that host and "
        "port connect to that address, e.g. a custom URL domain before "
        "its DNS is switched.  TLS still verifies HOST.",
        0},
    {"provider_timeout", config_parse_duration,
        offsetof(struct config, cf_provider_timeout), "10s",
        "How long a call to the provider may take.", 0},
    {"redirect_uri", config_parse_url, offsetof(struct config, cf_redirect_uri),
        NULL,
        "This gateway's callback URL as registered, e.g. "
        "https://app.example.com/.auth/callback; its path is served as "
        "the callback.",
        0},
    {"refresh_before", config_parse_duration,
        offsetof(struct config, cf_refresh_before), "5m",
        "Refresh the access token this long before it expires.", 0},
    {"response_mode", oidc_parse_response_mode, 0, "query",
        "How the provider returns to the callback: query or form_post.", 0},
    {"scopes", config_parse_str, offsetof(struct config, cf_scopes), "",
        "Scopes beyond openid and profile (and offline_access), e.g. User.Read "
        "for "
        "Microsoft Graph.",
        0},
    {"token_auth_method", oidc_parse_token_auth, 0, "auto",
        "How the client authenticates at the token endpoint: auto "
        "(private_key_jwt when client_certificate is set; otherwise from "
        "the provider's token_endpoint_auth_methods_supported: "
        "client_secret_basic when listed or when the provider lists "
        "none, else client_secret_post), client_secret_basic, "
        "client_secret_post or private_key_jwt (refused at sign-in when "
        "the provider lists its methods without it).",
        0},
};

static int
oidc_parse_assertion_alg(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)key;
	(void)line;
	if (strcmp(value, "PS256") == 0)
		cfg->cf_client_assertion_alg = CLIENT_CERT_PS256;
	else if (strcmp(value, "RS256") == 0)
		cfg->cf_client_assertion_alg = CLIENT_CERT_RS256;
	else {
		*errstr = "expected PS256 or RS256";
		return -1;
	}
	return 0;
}

static int
oidc_parse_response_mode(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)key;
	(void)line;
	if (strcmp(value, "query") == 0)
		cfg->cf_response_mode = OIDC_RESPONSE_QUERY;
	else if (strcmp(value, "form_post") == 0)
		cfg->cf_response_mode = OIDC_RESPONSE_FORM_POST;
	else {
		*errstr = "expected query or form_post";
		return -1;
	}
	return 0;
}

static int
oidc_parse_token_auth(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)key;
	(void)line;
	if (strcmp(value, "auto") == 0)
		cfg->cf_token_auth = OIDC_AUTH_AUTO;
	else if (strcmp(value, "client_secret_post") == 0)
		cfg->cf_token_auth = OIDC_AUTH_POST;
	else if (strcmp(value, "client_secret_basic") == 0)
		cfg->cf_token_auth = OIDC_AUTH_BASIC;
	else if (strcmp(value, "private_key_jwt") == 0)
		cfg->cf_token_auth = OIDC_AUTH_PRIVATE_KEY_JWT;
	else {
		*errstr = "expected auto, client_secret_basic, "
		          "client_secret_post or private_key_jwt";
		return -1;
	}
	return 0;
}

int
oidc_configured(const struct config *cfg)
{
	return cfg->cf_authority != NULL || cfg->cf_oidc_issuer != NULL;
}

static int
oidc_host_loopback(const char *host)
{
	return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0;
}

static int
oidc_parse_offline(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	if (strcmp(value, "auto") == 0) {
		cfg->cf_offline_access = OIDC_OFFLINE_AUTO;
		return 0;
	}
	return config_parse_bool(cfg, key, value, line, errstr);
}

/* One HOST:PORT:ADDRESS: a host name, a port, an IP address ([v6]). */
static int
oidc_resolve_entry(const char *e, size_t len)
{
	char host[256], addr[64];
	const char *c1, *c2;
	unsigned char buf[16];
	long port;
	char *end;
	size_t al;

	c1 = memchr(e, ':', len);
	if (c1 == NULL || c1 == e || (size_t)(c1 - e) >= sizeof(host))
		return -1;
	c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - e));
	if (c2 == NULL)
		return -1;
	memcpy(host, e, (size_t)(c1 - e));
	host[c1 - e] = '\0';
	if (strspn(host,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789.-") != strlen(host))
		return -1;
	port = strtol(c1 + 1, &end, 10);
	if (end != c2 || port < 1 || port > 65535)
		return -1;
	al = len - (size_t)(c2 + 1 - e);
	if (al < 2 || al >= sizeof(addr))
		return -1;
	memcpy(addr, c2 + 1, al);
	addr[al] = '\0';
	if (addr[0] == '[' && addr[al - 1] == ']') {
		addr[al - 1] = '\0';
		return inet_pton(AF_INET6, addr + 1, buf) == 1 ? 0 : -1;
	}
	return inet_pton(AF_INET, addr, buf) == 1 ? 0 : -1;
}

static int
oidc_parse_resolve(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	const char *p = value;
	size_t n;

	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		n = strcspn(p, " \t");
		if (oidc_resolve_entry(p, n) == -1) {
			*errstr = "expected HOST:PORT:ADDRESS entries (an IP "
			          "address; [..] for IPv6), space separated";
			return -1;
		}
		p += n;
	}
	return config_parse_str(cfg, key, value, line, errstr);
}

/* The provider must be https, except on loopback (tests and the demo). */
static int
oidc_check_provider_url(
    const char *url, config_report_fn *report, void *arg, const char *name)
{
	char msg[160], *host = NULL, *path = NULL;
	const char *errstr = NULL;
	int https, port, bad;

	if (config_url_split(url, &https, &host, &port, &path, &errstr) == -1) {
		snprintf(msg, sizeof(msg), "%s: %s", name, errstr);
		report(arg, 0, msg);
		return 1;
	}
	bad = !https && !oidc_host_loopback(host);
	if (bad) {
		snprintf(msg, sizeof(msg),
		    "%s must be an https URL (plain http is only allowed on "
		    "loopback)",
		    name);
		report(arg, 0, msg);
	} else if (strchr(path, '?') != NULL) {
		snprintf(msg, sizeof(msg), "%s must not have a query", name);
		report(arg, 0, msg);
		bad = 1;
	}
	free(host);
	free(path);
	return bad;
}

/*
 * A path-less External ID authority (https://contoso.ciamlogin.com/), as
 * Microsoft's docs give it: its tenant is {first label}.onmicrosoft.com,
 * as MSAL fills it in.  New string, or NULL for any other authority.
 */
static char *
oidc_pathless_tenant(const char *authority)
{
	static const char suffix[] = ".ciamlogin.com";
	char *host = NULL, *path = NULL, *out = NULL;
	const char *errstr;
	size_t hl, ll;

	if (authority == NULL ||
	    config_url_split(authority, NULL, &host, NULL, &path, &errstr) ==
	        -1)
		goto done;
	hl = strlen(host);
	ll = strcspn(host, ".");
	if (strspn(path, "/") == strlen(path) && hl > sizeof(suffix) - 1 &&
	    ll == hl - (sizeof(suffix) - 1) &&
	    strcasecmp(host + ll, suffix) == 0 &&
	    asprintf(&out, "%.*s.onmicrosoft.com", (int)ll, host) == -1)
		out = NULL;
done:
	free(host);
	free(path);
	return out;
}

/* Routes that need a signed-in user need a provider. */
static int
oidc_check_routes(struct config *cfg, config_report_fn *report, void *arg)
{
	size_t i, n;
	int errors = 0;

	if (cfg->cf_routes == NULL || oidc_configured(cfg))
		return 0;
	n = policy_table_count(cfg->cf_routes);
	for (i = 0; i < n; i++) {
		const struct policy_route *r =
		    policy_table_route(cfg->cf_routes, i);

		if (policy_route_action(r) == POLICY_ACTION_SIGNED_IN ||
		    policy_route_action(r) == POLICY_ACTION_BEARER) {
			report(arg, policy_route_line(r),
			    "this route needs signed-in users, but neither "
			    "authority nor oidc_issuer is set");
			errors++;
		}
	}
	return errors;
}

static int
oidc_derive_public(struct config *cfg, config_report_fn *report, void *arg)
{
	char *host = NULL, *path = NULL, *q;
	const char *errstr = NULL;
	int https, port, def;

	if (config_url_split(cfg->cf_redirect_uri, &https, &host, &port, &path,
	        &errstr) == -1) {
		report(arg, 0, errstr);
		return 1;
	}
	q = strpbrk(path, "?#");
	if (q != NULL || path[0] != '/' || strlen(path) < 2) {
		report(arg, 0,
		    "redirect_uri must have a path (e.g. /.auth/callback) and "
		    "no query");
		free(host);
		free(path);
		return 1;
	}
	def = port == (https ? 443 : 80);
	free(cfg->cf_public_base);
	if (asprintf(&cfg->cf_public_base, "%s://%s%s%s%s%.0d",
	        https ? "https" : "http", strchr(host, ':') ? "[" : "", host,
	        strchr(host, ':') ? "]" : "", def ? "" : ":",
	        def ? 0 : port) == -1)
		cfg->cf_public_base = NULL;
	cfg->cf_public_https = https;
	free(cfg->cf_callback_path);
	cfg->cf_callback_path = path;
	free(host);
	return 0;
}

static int
oidc_parse_audiences(struct config *cfg, config_report_fn *report, void *arg)
{
	char *copy, *tok, *save = NULL;
	int n = 0;

	if (cfg->cf_api_audiences != NULL)
		return 0;
	cfg->cf_api_audiences = calloc(17, sizeof(char *));
	if (cfg->cf_api_audiences == NULL)
		return 1;
	if (cfg->cf_api_audience == NULL) {
		if (cfg->cf_client_id == NULL)
			return 0;
		cfg->cf_api_audiences[n++] = strdup(cfg->cf_client_id);
		if (asprintf(&cfg->cf_api_audiences[n], "api://%s",
		        cfg->cf_client_id) != -1)
			n++;
		cfg->cf_napi_audiences = n;
		return 0;
	}
	copy = strdup(cfg->cf_api_audience);
	for (tok = copy != NULL ? strtok_r(copy, " ,", &save) : NULL;
	     tok != NULL; tok = strtok_r(NULL, " ,", &save)) {
		if (n == 16) {
			report(arg, 0, "api_audience: at most 16 audiences");
			free(copy);
			return 1;
		}
		cfg->cf_api_audiences[n++] = strdup(tok);
	}
	free(copy);
	cfg->cf_napi_audiences = n;
	return 0;
}

/*
 * The client's credential: a secret, or a certificate and its key (read
 * and checked now, once, so a bad file stops the start and --check names
 * it).  With both, the certificate is used unless token_auth_method names
 * a secret method: a certificate is what Microsoft recommends, and a
 * secret left in the sample's .env must not quietly win over it.
 */
#define OIDC_SECRET_MAX 4096

/*
 * client_secret_file: its first line (without the line end) becomes
 * cf_client_secret.  Read with the rest of the file, so a SIGHUP after the
 * file is replaced takes the new secret.  0, or -1 with the problem in buf
 * (which never holds the secret).
 */
static int
oidc_secret_file_read(struct config *cfg, char *msg, size_t size)
{
	char buf[OIDC_SECRET_MAX + 2];
	size_t len = 0, i;
	ssize_t n = 0;
	int fd, rc = -1;

	fd = open(cfg->cf_client_secret_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		snprintf(msg, size, "client_secret_file: %s: %s",
		    cfg->cf_client_secret_file, strerror(errno));
		return -1;
	}
	while (len < sizeof(buf) &&
	    (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (n == -1) {
		snprintf(msg, size, "client_secret_file: %s: %s",
		    cfg->cf_client_secret_file, strerror(errno));
		goto done;
	}
	for (i = 0; i < len && buf[i] != '\r' && buf[i] != '\n'; i++)
		;
	if (i == 0 || i > OIDC_SECRET_MAX || memchr(buf, '\0', i) != NULL) {
		snprintf(msg, size, "client_secret_file: %s: %s",
		    cfg->cf_client_secret_file,
		    i == 0 ? "its first line is empty"
		           : "not a secret (a line of at most 4096 bytes)");
		goto done;
	}
	if (crypto_secret_set(&cfg->cf_client_secret, buf, i) == -1) {
		snprintf(msg, size, "client_secret_file: out of memory");
		goto done;
	}
	rc = 0;
done:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int
oidc_check_credentials(struct config *cfg, config_report_fn *report, void *arg)
{
	int cert = cfg->cf_client_certificate != NULL;
	int key = cfg->cf_client_certificate_key != NULL;
	int secret = cfg->cf_client_secret.buf != NULL;
	int want = cfg->cf_token_auth;
	struct gh_error err;
	char msg[512];

	if (cfg->cf_client_secret_file != NULL) {
		if (secret) {
			report(arg, 0,
			    "client_secret and client_secret_file are both "
			    "set: keep one");
			return 1;
		}
		if (oidc_secret_file_read(cfg, msg, sizeof(msg)) == -1) {
			report(arg, 0, msg);
			return 1;
		}
		secret = 1;
	}

	if (cert != key) {
		report(arg, 0,
		    cert ? "client_certificate is set, so "
		           "client_certificate_key (its private key's PEM "
		           "file) is required"
		         : "client_certificate_key is set, so "
		           "client_certificate (the certificate's PEM file) is "
		           "required");
		return 1;
	}
	if (!cert && !secret) {
		report(arg, 0,
		    "a provider is set, so client_secret (or "
		    "client_certificate and client_certificate_key) is "
		    "required");
		return 1;
	}
	if (want == OIDC_AUTH_PRIVATE_KEY_JWT && !cert) {
		report(arg, 0,
		    "token_auth_method = private_key_jwt needs "
		    "client_certificate and client_certificate_key");
		return 1;
	}
	if ((want == OIDC_AUTH_BASIC || want == OIDC_AUTH_POST) && !secret) {
		report(arg, 0,
		    want == OIDC_AUTH_BASIC
		        ? "token_auth_method = client_secret_basic needs "
		          "client_secret"
		        : "token_auth_method = client_secret_post needs "
		          "client_secret");
		return 1;
	}
	if (!cert)
		return 0;
	client_cert_free(cfg->cf_client_cert);
	cfg->cf_client_cert = client_cert_load(
	    cfg->cf_client_certificate, cfg->cf_client_certificate_key, &err);
	if (cfg->cf_client_cert == NULL) {
		report(arg, 0, err.ge_msg);
		return 1;
	}
	return 0;
}

static int
oidc_config_check(struct config *cfg, config_report_fn *report, void *arg)
{
	int errors = 0;

	errors += oidc_check_routes(cfg, report, arg);
	if (!oidc_configured(cfg))
		return errors;
	if (cfg->cf_authority != NULL && cfg->cf_oidc_issuer != NULL) {
		report(arg, 0, "set authority or oidc_issuer, not both");
		errors++;
	}
	if (cfg->cf_authority != NULL)
		errors += oidc_check_provider_url(
		    cfg->cf_authority, report, arg, "authority");
	if (cfg->cf_oidc_issuer != NULL)
		errors += oidc_check_provider_url(
		    cfg->cf_oidc_issuer, report, arg, "oidc_issuer");
	free(cfg->cf_discovery_url);
	cfg->cf_discovery_url = NULL;
	{
		const char *base = cfg->cf_authority != NULL
		    ? cfg->cf_authority
		    : cfg->cf_oidc_issuer;
		size_t bl = strlen(base);

		char *tenant = oidc_pathless_tenant(cfg->cf_authority);

		while (bl > 0 && base[bl - 1] == '/')
			bl--;
		/* Entra: {authority}/v2.0/...; generic: {issuer}/... */
		if (asprintf(&cfg->cf_discovery_url,
		        "%.*s%s%s%s/.well-known/openid-configuration", (int)bl,
		        base, tenant != NULL ? "/" : "",
		        tenant != NULL ? tenant : "",
		        cfg->cf_authority != NULL ? "/v2.0" : "") == -1)
			cfg->cf_discovery_url = NULL;
		free(tenant);
	}
	if (cfg->cf_client_id == NULL || cfg->cf_client_id[0] == '\0') {
		report(arg, 0, "a provider is set, so client_id is required");
		errors++;
	}
	errors += oidc_check_credentials(cfg, report, arg);
	if (cfg->cf_redirect_uri == NULL) {
		report(
		    arg, 0, "a provider is set, so redirect_uri is required");
		errors++;
	} else
		errors += oidc_derive_public(cfg, report, arg);
	errors += oidc_parse_audiences(cfg, report, arg);
	if (cfg->cf_max_pending_logins < 1 || cfg->cf_max_pending_logins > 20) {
		report(arg, 0, "max_pending_logins must be from 1 to 20");
		errors++;
	}
	return errors;
}

/* What the check derived; the keys' own strings are the generic ones. */
static void
oidc_config_free(struct config *cfg)
{
	int i;

	free(cfg->cf_public_base);
	free(cfg->cf_callback_path);
	free(cfg->cf_discovery_url);
	free(cfg->cf_provider_resolve);
	client_cert_free(cfg->cf_client_cert);
	cfg->cf_client_cert = NULL;
	if (cfg->cf_api_audiences != NULL) {
		for (i = 0; cfg->cf_api_audiences[i] != NULL; i++)
			free(cfg->cf_api_audiences[i]);
		free(cfg->cf_api_audiences);
	}
}

const struct config_module oidc_config_module = {"oidc", oidc_keys,
    sizeof(oidc_keys) / sizeof(oidc_keys[0]), oidc_config_check,
    oidc_config_free};
