/* SPDX-License-Identifier: ISC */
/*
 * identity.c: who the signed-in user is, as the upstream hears it: the
 * identity header block built once per sign-in from the claims
 * (X-Forwarded-User, X-Forwarded-Email and Easy Auth's X-MS-CLIENT-PRINCIPAL
 * set), the token lines added to it when tokens are forwarded, and the
 * user name for logs and /.auth/me.  Security: claim values are the
 * provider's, so none may split the header block.
 */
#include <stdint.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "core/config.h"
#include "core/crypto.h"
#include "policy.h"
#include "session/identity.h"

/* Append `name: value` with every control character replaced, so a claim
 * can never split the header block. */
static void
identity_add_safe(struct evbuffer *out, const char *name, const char *value)
{
	const unsigned char *p = (const unsigned char *)value, *run;

	evbuffer_add(out, name, strlen(name));
	evbuffer_add(out, ": ", 2);
	/* Runs of safe bytes at once: the principal header is kilobytes,
	 * and one evbuffer_add a byte cost a sign-in more than its RSA
	 * verification. */
	while (*p != '\0') {
		for (run = p; *p >= 0x20 && *p != 0x7f; p++)
			;
		if (p > run)
			evbuffer_add(out, run, (size_t)(p - run));
		if (*p != '\0') {
			evbuffer_add(out, "?", 1);
			p++;
		}
	}
	evbuffer_add(out, "\r\n", 2);
}

static const char *
identity_claim(const json_t *claims, const char *name)
{
	const char *s = json_string_value(json_object_get(claims, name));

	return s != NULL && s[0] != '\0' ? s : NULL;
}

/* The user name: preferred_username, else the email when it may be used
 * (policy_claims_email), else sub. */
static const char *
identity_user_name(const json_t *claims, int trust_unverified_email)
{
	const char *u;

	u = identity_claim(claims, "preferred_username");
	if (u == NULL)
		u = policy_claims_email(claims, trust_unverified_email);
	if (u == NULL)
		u = identity_claim(claims, "sub");
	return u != NULL ? u : "";
}

const char *
identity_user(const json_t *claims)
{
	return identity_user_name(claims, 1);
}

const char *
identity_display_name(const json_t *claims)
{
	const char *n = identity_claim(claims, "name");

	return n != NULL ? n : identity_user(claims);
}

/* Whether host ends with suffix (case aside), a label boundary before. */
static int
identity_host_is(const char *host, const char *suffix)
{
	size_t h = strlen(host), n = strlen(suffix);

	return h >= n && strcasecmp(host + h - n, suffix) == 0 &&
	    (h == n || host[h - n - 1] == '.' || suffix[0] == '.');
}

/* Whether path is "/{GUID}" or "/{GUID}/v2.0", the shape of every Entra
 * issuer (custom URL domains too). */
static int
identity_entra_path(const char *path)
{
	size_t i;

	if (path[0] != '/' || strlen(path) < 37)
		return 0;
	for (i = 1; i <= 36; i++)
		if (i == 9 || i == 14 || i == 19 || i == 24
		        ? path[i] != '-'
		        : !isxdigit((unsigned char)path[i]))
			return 0;
	return path[37] == '\0' || strcmp(path + 37, "/") == 0 ||
	    strcmp(path + 37, "/v2.0") == 0 || strcmp(path + 37, "/v2.0/") == 0;
}

/*
 * X-MS-CLIENT-PRINCIPAL-IDP as Easy Auth sends it: "aad" for Microsoft
 * Entra (a Microsoft sign-in host, or an issuer of Entra's shape on a
 * custom URL domain), else the issuer's host.  Written into buf.
 */
static const char *
identity_idp(const json_t *claims, char *buf, size_t size)
{
	static const char *const entra[] = {".ciamlogin.com", ".b2clogin.com",
	    "login.microsoftonline.com", "login.microsoftonline.us",
	    "login.partner.microsoftonline.cn", "login.chinacloudapi.cn",
	    "login.windows.net", "sts.windows.net", "login.microsoft.com"};
	const char *iss = identity_claim(claims, "iss"), *errstr, *idp = "aad";
	char *host = NULL, *path = NULL;
	size_t i;

	if (iss == NULL ||
	    config_url_split(iss, NULL, &host, NULL, &path, &errstr) == -1)
		return idp;
	for (i = 0; i < sizeof(entra) / sizeof(entra[0]); i++)
		if (identity_host_is(host, entra[i]))
			break;
	if (i == sizeof(entra) / sizeof(entra[0]) &&
	    !identity_entra_path(path)) {
		snprintf(buf, size, "%s", host);
		idp = buf;
	}
	free(host);
	free(path);
	return idp;
}

/* Easy Auth's X-MS-CLIENT-PRINCIPAL: base64 of
 * {"auth_typ","claims":[{"typ","val"}],"name_typ","role_typ"}. */
static char *
identity_principal(const json_t *claims, const char *user)
{
	static const char name_typ[] =
	    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
	static const char role_typ[] =
	    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
	json_t *p, *list, *v, *e;
	const char *k;
	char *json = NULL, *b64 = NULL;
	size_t i, len;

	p = json_object();
	list = json_array();
	if (p == NULL || list == NULL)
		goto done;
	json_object_set_new(p, "auth_typ", json_string("aad"));
	json_object_foreach((json_t *)claims, k, v)
	{
		if (json_is_string(v)) {
			e = json_pack(
			    "{s:s,s:s}", "typ", k, "val", json_string_value(v));
			json_array_append_new(list, e);
		} else if (json_is_array(v)) {
			json_array_foreach(v, i, e)
			{
				if (!json_is_string(e))
					continue;
				json_array_append_new(list,
				    json_pack("{s:s,s:s}", "typ",
				        strcmp(k, "roles") == 0 ? role_typ : k,
				        "val", json_string_value(e)));
			}
		} else if (json_is_integer(v) || json_is_boolean(v)) {
			char num[32];

			if (json_is_boolean(v))
				snprintf(num, sizeof(num), "%s",
				    json_is_true(v) ? "true" : "false");
			else
				snprintf(num, sizeof(num), "%lld",
				    (long long)json_integer_value(v));
			json_array_append_new(
			    list, json_pack("{s:s,s:s}", "typ", k, "val", num));
		}
	}
	json_array_append_new(
	    list, json_pack("{s:s,s:s}", "typ", name_typ, "val", user));
	json_object_set(p, "claims", list);
	json_object_set_new(p, "name_typ", json_string(name_typ));
	json_object_set_new(p, "role_typ", json_string(role_typ));
	json = json_dumps(p, JSON_COMPACT);
	if (json == NULL)
		goto done;
	len = strlen(json);
	b64 = malloc(4 * ((len + 2) / 3) + 1);
	if (b64 != NULL)
		EVP_EncodeBlock(
		    (unsigned char *)b64, (unsigned char *)json, (int)len);
done:
	free(json);
	json_decref(list);
	json_decref(p);
	return b64;
}

char *
identity_block(const json_t *claims, int trust_unverified_email)
{
	struct evbuffer *b;
	const char *email, *id, *user;
	char *principal, *out = NULL, idp[256];
	size_t len;

	b = evbuffer_new();
	if (b == NULL)
		return NULL;
	/* Security: an address the provider has not verified is anyone's
	 * to type; an app that trusts X-Forwarded-Email (or a user name
	 * taken from it) would accept it as the owner's. */
	email = policy_claims_email(claims, trust_unverified_email);
	user = identity_user_name(claims, trust_unverified_email);
	id = identity_claim(claims, "oid");
	if (id == NULL)
		id = identity_claim(claims, "sub");
	identity_add_safe(b, "X-Forwarded-User", user);
	if (email != NULL)
		identity_add_safe(b, "X-Forwarded-Email", email);
	identity_add_safe(b, "X-MS-CLIENT-PRINCIPAL-NAME", user);
	identity_add_safe(b, "X-MS-CLIENT-PRINCIPAL-ID", id != NULL ? id : "");
	identity_add_safe(b, "X-MS-CLIENT-PRINCIPAL-IDP",
	    identity_idp(claims, idp, sizeof(idp)));
	principal = identity_principal(claims, user);
	if (principal == NULL)
		goto done;
	identity_add_safe(b, "X-MS-CLIENT-PRINCIPAL", principal);
	free(principal);
	len = evbuffer_get_length(b);
	out = malloc(len + 1);
	if (out != NULL) {
		evbuffer_remove(b, out, len);
		out[len] = '\0';
	}
done:
	evbuffer_free(b);
	return out;
}

void
identity_iso_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *
identity_tokens(const char *ident, const struct secret *access,
    int64_t at_expires, int authorization)
{
	static const char at_name[] = "X-MS-TOKEN-AAD-ACCESS-TOKEN: ";
	static const char auth_name[] = "Authorization: Bearer ";
	size_t il, al = access != NULL ? access->len : 0, cap;
	char exp[32], *out, *p;

	il = strlen(ident);
	identity_iso_time(at_expires, exp, sizeof(exp));
	cap = il + 1 +
	    (al > 0 ? sizeof(at_name) + al + 2 + 64 + sizeof(auth_name) + al + 2
	            : 0);
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	p = out;
	memcpy(p, ident, il);
	p += il;
	if (al > 0) {
		memcpy(p, at_name, sizeof(at_name) - 1);
		p += sizeof(at_name) - 1;
		memcpy(p, access->buf, al);
		p += al;
		p += sprintf(p, "\r\nX-MS-TOKEN-AAD-EXPIRES-ON: %s\r\n", exp);
		if (authorization) {
			memcpy(p, auth_name, sizeof(auth_name) - 1);
			p += sizeof(auth_name) - 1;
			memcpy(p, access->buf, al);
			p += al;
			memcpy(p, "\r\n", 2);
			p += 2;
		}
	}
	*p = '\0';
	return out;
}
