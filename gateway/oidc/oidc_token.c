/* SPDX-License-Identifier: ISC */
/*
 * oidc_token.c: calls to the token endpoint (code redemption and refresh)
 * and reading their answers.  The client proves itself with a fresh signed
 * assertion (a certificate) or its secret in HTTP Basic or in the form, as
 * token_auth_method and the provider's metadata decide, never in a log
 * line; every token that comes back is checked before it can be kept or
 * put in a header.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/config.h"
#include "core/metrics.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/aadsts.h"
#include "oidc/client_cert.h"
#include "oidc/http_client.h"
#include "oidc/jose.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"

void
oidc_tokens_cleanup(struct oidc_tokens *t)
{
	if (t == NULL)
		return;
	if (t->ot_access != NULL)
		OPENSSL_cleanse(t->ot_access, strlen(t->ot_access));
	if (t->ot_refresh != NULL)
		OPENSSL_cleanse(t->ot_refresh, strlen(t->ot_refresh));
	free(t->ot_access);
	free(t->ot_refresh);
	free(t->ot_idtoken);
	memset(t, 0, sizeof(*t));
}

static char *
oidc_token_dup(json_t *doc, const char *name)
{
	const char *s = json_string_value(json_object_get(doc, name));

	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/* RFC 6750 2.1 b64token: the only bytes an "Authorization: Bearer"
 * credential may hold; a JWS compact serialization's bytes (base64url and
 * dots) are a subset. */
#define OIDC_B64URL_DOT                                                        \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._"
static const char oidc_b64token[] = OIDC_B64URL_DOT "~+/";
static const char oidc_jws_bytes[] = OIDC_B64URL_DOT;

/*
 * Whether `s` is safe where it goes next.  OIDC_TOK_BEARER: the access
 * token, which becomes a header value (X-MS-TOKEN-AAD-ACCESS-TOKEN,
 * Authorization to the upstream and to Graph), so exactly the b64token
 * grammar, '=' only at the end.  OIDC_TOK_JWS: the ID token, which goes in
 * the sign-out URL; base64url parts and dots.  OIDC_TOK_VSCHAR: the
 * refresh token, kept and sent back in a form; RFC 6749 A.17's 1*VSCHAR.
 * Returns NULL, or why not (for the log; never the value itself).
 */
enum oidc_tok_kind { OIDC_TOK_BEARER, OIDC_TOK_JWS, OIDC_TOK_VSCHAR };

static const char *
oidc_token_unsafe(
    const char *s, enum oidc_tok_kind kind, char *buf, size_t size)
{
	size_t i, n = strnlen(s, OIDC_TOKEN_MAX + 1);

	if (n > OIDC_TOKEN_MAX) {
		snprintf(buf, size, "is longer than %d bytes", OIDC_TOKEN_MAX);
		return buf;
	}
	/* strspn over a set, not a test a byte: tokens are kilobytes and
	 * this ran on every sign-in and refresh. */
	switch (kind) {
	case OIDC_TOK_BEARER:
		i = strspn(s, oidc_b64token);
		if (i > 0) /* '=' padding, only at the end */
			i += strspn(s + i, "=");
		break;
	case OIDC_TOK_JWS:
		i = strspn(s, oidc_jws_bytes);
		break;
	default:
		for (i = 0; i < n && s[i] >= 0x20 && s[i] <= 0x7e; i++)
			;
		break;
	}
	if (i == n)
		return NULL;
	snprintf(buf, size,
	    "has a byte (0x%02x) at offset %zu that is not allowed there",
	    (unsigned char)s[i], i);
	return buf;
}

/* Security: a hostile provider must not be able to split the upstream
 * request (CR LF in a token copied into a header) or the sign-out URL, nor
 * have gatehouse store what it would later forward. */
static int
oidc_tokens_check(const struct oidc_tokens *t, struct gh_error *err)
{
	const char *name = NULL, *why = NULL;
	char buf[96];

	if (t->ot_access != NULL) {
		name = "access_token";
		why = oidc_token_unsafe(
		    t->ot_access, OIDC_TOK_BEARER, buf, sizeof(buf));
	}
	if (why == NULL && t->ot_idtoken != NULL) {
		name = "id_token";
		why = oidc_token_unsafe(
		    t->ot_idtoken, OIDC_TOK_JWS, buf, sizeof(buf));
	}
	if (why == NULL && t->ot_refresh != NULL) {
		name = "refresh_token";
		why = oidc_token_unsafe(
		    t->ot_refresh, OIDC_TOK_VSCHAR, buf, sizeof(buf));
	}
	if (why == NULL)
		return 0;
	gh_error_set(
	    err, "provider_error", "token endpoint answered: %s %s", name, why);
	return -1;
}

/* What identifies a refusal to the provider's support, for the log line
 * (aadsts_ref_from_json); its AADSTS number, or 0. */
static long
oidc_token_refusal_ref(json_t *doc, char *buf, size_t size)
{
	struct aadsts_ref r;

	aadsts_ref_from_json(doc, &r);
	aadsts_ref_format(&r, buf, size);
	return r.ar_code;
}

static int
oidc_tokens_read(const struct httpc_result *res, struct oidc_tokens *t,
    const char **code, struct gh_error *err)
{
	json_error_t jerr;
	json_t *doc, *exp;
	const char *e;
	char ref[200];

	memset(t, 0, sizeof(*t));
	if (res->hr_status == HTTPC_TIMEOUT) {
		*code = "provider_timeout";
		gh_error_set(err, *code, "token endpoint timed out");
		return 504;
	}
	if (res->hr_status != HTTPC_OK) {
		*code = "provider_error";
		/* curl's own words (never the request, which carries the
		 * client secret and the code). */
		gh_error_set(err, *code, "token endpoint: %s (%.120s)",
		    httpc_status_str(res->hr_status),
		    res->hr_error != NULL ? res->hr_error : "");
		return 502;
	}
	/* Security: a redirect is never followed (the request carries the
	 * client secret and a code or refresh token), and it is not a
	 * refusal either, whatever its body says. */
	if (res->hr_code >= 300 && res->hr_code < 400) {
		*code = "provider_error";
		gh_error_set(err, *code,
		    "token endpoint answered %ld, a redirect (not followed)",
		    res->hr_code);
		return 502;
	}
	doc = json_loadb(res->hr_body, res->hr_len, 0, &jerr);
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		*code = "provider_error";
		gh_error_set(err, *code,
		    "token endpoint answered %ld with no JSON object",
		    res->hr_code);
		return 502;
	}
	if (res->hr_code != 200) {
		e = json_string_value(json_object_get(doc, "error"));
		/* RFC 6749 5.2: a refusal is 400 (401 for the client's
		 * credentials) with an error code; anything else (429, 5xx,
		 * a proxy's 403 ...) is the provider failing, which must not
		 * end a session. */
		if ((res->hr_code != 400 && res->hr_code != 401) || e == NULL) {
			*code = "provider_error";
			gh_error_set(err, *code, "token endpoint answered %ld",
			    res->hr_code);
			json_decref(doc);
			return 502;
		}
		t->ot_aadsts = oidc_token_refusal_ref(doc, ref, sizeof(ref));
		/* The client's own credentials (a wrong or expired secret, a
		 * certificate the provider does not know): no fault of the
		 * person's, and not a reason to end a session on refresh. */
		if (strcmp(e, "invalid_client") == 0) {
			*code = "invalid_client";
			gh_error_set(err, *code,
			    "token endpoint refused the client credentials: "
			    "invalid_client%s (check client_secret, or "
			    "that the app registration lists "
			    "client_certificate)",
			    ref);
			json_decref(doc);
			return 502;
		}
		/* invalid_grant and friends: the provider said no. */
		*code = "token_refused";
		gh_error_set(
		    err, *code, "token endpoint refused: %.64s%s", e, ref);
		json_decref(doc);
		return 401;
	}
	t->ot_access = oidc_token_dup(doc, "access_token");
	t->ot_refresh = oidc_token_dup(doc, "refresh_token");
	t->ot_idtoken = oidc_token_dup(doc, "id_token");
	if (oidc_tokens_check(t, err) == -1) {
		json_decref(doc);
		oidc_tokens_cleanup(t);
		*code = "provider_error";
		return 502;
	}
	exp = json_object_get(doc, "expires_in");
	t->ot_expires_in = json_is_integer(exp)
	    ? (long)json_integer_value(exp)
	    : (json_is_string(exp) ? strtol(json_string_value(exp), NULL, 10)
	                           : 3600);
	if (t->ot_expires_in <= 0 || t->ot_expires_in > 86400 * 30)
		t->ot_expires_in = 3600;
	json_decref(doc);
	return 0;
}

/* Every answer of the token endpoint (sign-in and refresh) passes here:
 * the one place its outcome is counted. */
int
oidc_tokens_parse(const struct httpc_result *res, struct oidc_tokens *t,
    const char **code, struct gh_error *err)
{
	int st = oidc_tokens_read(res, t, code, err);

	metrics_provider_fetch("token",
	    st == 0                          ? "ok"
	        : res->hr_status != HTTPC_OK ? httpc_status_str(res->hr_status)
	        : st == 401                  ? "refused"
	        : res->hr_code != 200        ? "http"
	                                     : "invalid");
	return st;
}

int
oidc_tokens_at_hash_check(
    const struct oidc_tokens *t, const json_t *claims, struct gh_error *err)
{
	return jose_at_hash_verify(t->ot_idtoken, claims, t->ot_access, err);
}

unsigned int
oidc_token_auth_parse(const json_t *v)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} known[] = {
	    {"client_secret_basic", OIDC_TAM_BASIC},
	    {"client_secret_post", OIDC_TAM_POST},
	    {"private_key_jwt", OIDC_TAM_PRIVATE_KEY_JWT},
	    {"none", OIDC_TAM_NONE},
	};
	unsigned int bits = 0;
	const char *s;
	size_t i, k;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return 0;
	bits = OIDC_TAM_LISTED;
	for (i = 0; i < json_array_size(v); i++) {
		s = json_string_value(json_array_get(v, i));
		for (k = 0; s != NULL && k < sizeof(known) / sizeof(known[0]);
		     k++)
			if (strcmp(s, known[k].name) == 0)
				bits |= known[k].bit;
	}
	return bits;
}

/* The token_endpoint_auth_methods_supported bit of an OIDC_AUTH_* method
 * and its name there. */
static unsigned int
oidc_token_auth_bit(int how, const char **name)
{
	switch (how) {
	case OIDC_AUTH_BASIC:
		*name = "client_secret_basic";
		return OIDC_TAM_BASIC;
	case OIDC_AUTH_POST:
		*name = "client_secret_post";
		return OIDC_TAM_POST;
	default:
		*name = "private_key_jwt";
		return OIDC_TAM_PRIVATE_KEY_JWT;
	}
}

/*
 * How to authenticate at the token endpoint: OIDC_AUTH_BASIC, _POST or
 * _PRIVATE_KEY_JWT, or -1 with err set.  A certificate makes auto mean
 * private_key_jwt: the operator chose it, and falling back to a secret
 * the provider happens to list would hide that choice.  An explicit (or
 * so implied) method wins unless the provider lists its methods and that
 * one is not among them (it would only earn an invalid_client, after the
 * credential was sent).  Otherwise Basic when listed or when the provider
 * lists nothing (OIDC Discovery 3: the default is client_secret_basic),
 * then post.  "none" is never used: gatehouse is a confidential client.
 */
static int
oidc_token_auth_choose(
    const struct config *cfg, unsigned int tam, struct gh_error *err)
{
	const char *name;
	int want = cfg->cf_token_auth;

	if (want == OIDC_AUTH_AUTO && cfg->cf_client_cert != NULL)
		want = OIDC_AUTH_PRIVATE_KEY_JWT;
	if (!(tam & OIDC_TAM_LISTED))
		return want == OIDC_AUTH_AUTO ? OIDC_AUTH_BASIC : want;
	if (want != OIDC_AUTH_AUTO) {
		if (tam & oidc_token_auth_bit(want, &name))
			return want;
		gh_error_set(err, "token_auth_unsupported",
		    "%s = %s, but the provider's "
		    "token_endpoint_auth_methods_supported does not list it "
		    "(%s)",
		    cfg->cf_token_auth == OIDC_AUTH_AUTO
		        ? "client_certificate is set, so token_auth_method"
		        : "token_auth_method",
		    name,
		    want == OIDC_AUTH_PRIVATE_KEY_JWT
		        ? "use client_secret instead, or a provider that takes "
		          "certificates"
		        : "set token_auth_method = auto or another method");
		return -1;
	}
	if (tam & OIDC_TAM_BASIC)
		return OIDC_AUTH_BASIC;
	if (tam & OIDC_TAM_POST)
		return OIDC_AUTH_POST;
	gh_error_set(err, "token_auth_unsupported",
	    "the provider's token_endpoint_auth_methods_supported lists "
	    "neither client_secret_basic nor client_secret_post%s",
	    (tam & OIDC_TAM_PRIVATE_KEY_JWT)
	        ? " (it lists private_key_jwt: set client_certificate and "
	          "client_certificate_key)"
	        : ((tam & OIDC_TAM_NONE) ? " (\"none\" is never used by a "
	                                   "confidential client)"
	                                 : ""));
	return -1;
}

/* Add the client assertion to the form (RFC 7523 2.2, with client_id as
 * Entra's examples send it).  0, or -1 with err set. */
static int
oidc_token_assert(const struct config *cfg, const struct oidc_meta *m,
    struct evbuffer *form, struct gh_error *err)
{
	char *a;

	/* A fresh assertion for every request: its jti is never reused,
	 * and it names this token endpoint only. */
	a = client_cert_assertion(cfg->cf_client_cert,
	    cfg->cf_client_assertion_alg, cfg->cf_client_id,
	    m->om_token_endpoint, time(NULL), err);
	if (a == NULL)
		return -1;
	httpc_form_add(form, "client_id", cfg->cf_client_id);
	httpc_form_add(
	    form, "client_assertion_type", CLIENT_CERT_ASSERTION_TYPE);
	httpc_form_add(form, "client_assertion", a);
	OPENSSL_cleanse(a, strlen(a));
	free(a);
	return 0;
}

struct httpc_xfer *
oidc_token_request(struct worker_gen *g, struct evbuffer *form,
    httpc_done_fn *done, void *arg, struct gh_error *err)
{
	return oidc_token_send(g->wg_cfg, oidc_provider_meta(g->wg_provider),
	    g->wg_worker->w_httpc, form, done, arg, err);
}

struct httpc_xfer *
oidc_token_send(const struct config *cfg, const struct oidc_meta *m,
    struct httpc *h, struct evbuffer *form, httpc_done_fn *done, void *arg,
    struct gh_error *err)
{
	return oidc_client_post(cfg, m, h,
	    m != NULL ? m->om_token_endpoint : NULL, form, done, arg, err);
}

struct httpc_xfer *
oidc_client_post(const struct config *cfg, const struct oidc_meta *m,
    struct httpc *h, const char *url, struct evbuffer *form,
    httpc_done_fn *done, void *arg, struct gh_error *err)
{
	const char *hdrs[3] = {"Accept: application/json", NULL, NULL};
	char *basic = NULL, *id = NULL, *sec = NULL, *cred = NULL, *body;
	struct httpc_req req;
	struct httpc_xfer *x = NULL;
	size_t len, clen;
	int how;

	if (m == NULL) {
		gh_error_set(err, "provider_unavailable", "no metadata");
		return NULL;
	}
	how = oidc_token_auth_choose(cfg, m->om_token_auth, err);
	if (how == -1)
		return NULL;
	gh_error_set(err, "internal", "out of memory");
	if (how == OIDC_AUTH_PRIVATE_KEY_JWT) {
		if (oidc_token_assert(cfg, m, form, err) == -1)
			goto done;
	} else if (how == OIDC_AUTH_BASIC) {
		/* RFC 6749 2.3.1: form-encode each, then base64. */
		id = httpc_form_escape(cfg->cf_client_id);
		sec =
		    httpc_form_escape((const char *)cfg->cf_client_secret.buf);
		if (id == NULL || sec == NULL ||
		    asprintf(&cred, "%s:%s", id, sec) == -1)
			goto done;
		clen = strlen(cred);
		basic = malloc(4 * ((clen + 2) / 3) + 32);
		if (basic == NULL)
			goto done;
		memcpy(basic, "Authorization: Basic ", 21);
		EVP_EncodeBlock((unsigned char *)basic + 21,
		    (unsigned char *)cred, (int)clen);
		hdrs[1] = basic;
		httpc_form_add(form, "client_id", cfg->cf_client_id);
	} else {
		httpc_form_add(form, "client_id", cfg->cf_client_id);
		httpc_form_add(form, "client_secret",
		    (const char *)cfg->cf_client_secret.buf);
	}
	len = evbuffer_get_length(form);
	body = (char *)evbuffer_pullup(form, -1);
	memset(&req, 0, sizeof(req));
	req.hq_method = "POST";
	req.hq_url = url;
	req.hq_body = body;
	req.hq_body_len = len;
	req.hq_headers = hdrs;
	req.hq_timeout_ms = (long)cfg->cf_provider_timeout * 1000;
	x = httpc_request(h, &req, done, arg, err);
	/* The form held the secret or the assertion, and a code or a refresh
	 * token. */
	OPENSSL_cleanse(body, len);
done:
	if (cred != NULL) {
		OPENSSL_cleanse(cred, strlen(cred));
		free(cred);
	}
	if (basic != NULL) {
		OPENSSL_cleanse(basic, strlen(basic));
		free(basic);
	}
	if (sec != NULL) {
		OPENSSL_cleanse(sec, strlen(sec));
		free(sec);
	}
	free(id);
	return x;
}
