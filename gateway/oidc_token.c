/* SPDX-License-Identifier: ISC */
/*
 * oidc_token.c: calls to the token endpoint (code redemption and refresh)
 * and reading their answers.  The client secret goes in the form
 * (client_secret_post) or in HTTP Basic, never in a log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config.h"
#include "http_client.h"
#include "oidc.h"
#include "oidc_int.h"
#include "request.h"
#include "server.h"

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

int
oidc_tokens_parse(const struct httpc_result *res, struct oidc_tokens *t,
    const char **code, struct gh_error *err)
{
	json_error_t jerr;
	json_t *doc, *exp;
	const char *e;

	memset(t, 0, sizeof(*t));
	if (res->hr_status == HTTPC_TIMEOUT) {
		*code = "provider_timeout";
		gh_error_set(err, *code, "token endpoint timed out");
		return 504;
	}
	if (res->hr_status != HTTPC_OK) {
		*code = "provider_error";
		gh_error_set(err, *code, "token endpoint: %s",
		    httpc_status_str(res->hr_status));
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
		/* invalid_grant and friends: the provider said no. */
		*code = "token_refused";
		gh_error_set(err, *code, "token endpoint refused: %.64s", e);
		json_decref(doc);
		return 401;
	}
	t->ot_access = oidc_token_dup(doc, "access_token");
	t->ot_refresh = oidc_token_dup(doc, "refresh_token");
	t->ot_idtoken = oidc_token_dup(doc, "id_token");
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

struct httpc_xfer *
oidc_token_request(struct request_ctx *rq, struct evbuffer *form,
    httpc_done_fn *done, void *arg)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	const struct oidc_meta *m =
	    oidc_provider_meta(rq->rq_worker->w_provider);
	const char *hdrs[3] = {"Accept: application/json", NULL, NULL};
	char *basic = NULL, *id = NULL, *sec = NULL, *cred = NULL, *body;
	struct httpc_req req;
	struct httpc_xfer *x = NULL;
	struct gh_error err;
	size_t len, clen;

	if (m == NULL)
		return NULL;
	if (cfg->cf_token_auth == OIDC_AUTH_BASIC) {
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
	req.hq_url = m->om_token_endpoint;
	req.hq_body = body;
	req.hq_body_len = len;
	req.hq_headers = hdrs;
	req.hq_timeout_ms = (long)cfg->cf_provider_timeout * 1000;
	x = httpc_request(rq->rq_worker->w_httpc, &req, done, arg, &err);
	/* The form held the secret and a code or refresh token. */
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
