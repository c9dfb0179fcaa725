/* SPDX-License-Identifier: ISC */
/*
 * easyauth.c: Azure App Service authentication ("Easy Auth")
 * compatibility for what an app's own code calls, so apps written for it
 * run unchanged: /.auth/me in Easy Auth's shape, GET /.auth/refresh from
 * the app's pages, and the ID token upstream.  The identity headers every
 * request carries (X-MS-CLIENT-PRINCIPAL*) are identity.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/config.h"
#include "core/crypto.h"
#include "http/request.h"
#include "route/easyauth.h"
#include "session/identity.h"
#include "session/session.h"

static int
easyauth_parse_me_format(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)key;
	(void)line;
	if (strcmp(value, "gatehouse") == 0)
		cfg->cf_me_format = EASYAUTH_ME_GATEHOUSE;
	else if (strcmp(value, "easyauth") == 0)
		cfg->cf_me_format = EASYAUTH_ME_EASYAUTH;
	else {
		*errstr = "must be gatehouse or easyauth";
		return -1;
	}
	return 0;
}

/* Sorted by name: looked up with bsearch. */
static const struct config_key easyauth_keys[] = {
    {"forward_id_token", config_parse_bool,
        offsetof(struct config, cf_forward_id_token), "off",
        "Send the session's ID token upstream as X-MS-TOKEN-AAD-ID-TOKEN, "
        "as Easy Auth does (the one the sign-in or the last refresh "
        "returned).",
        0},
    {"me_format", easyauth_parse_me_format, 0, "gatehouse",
        "The shape of /.auth/me: gatehouse (one object, the claims as "
        "they are) or easyauth (Azure App Service's array with "
        "user_claims as typ/val pairs).",
        0},
};
const struct config_module easyauth_config_module = {"easyauth", easyauth_keys,
    sizeof(easyauth_keys) / sizeof(easyauth_keys[0]), NULL, NULL};

/*
 * The claim types Easy Auth writes as URIs instead of the JWT names.
 * Microsoft documents two of them, as the X-MS-CLIENT-PRINCIPAL header's
 * name_typ and role_typ ("Work with user identities in Azure App Service
 * authentication", learn.microsoft.com): the .../claims/name and
 * .../claims/role URIs.  Its documentation shows no complete table for
 * the others; the rows below are the WS-Federation claim-type URIs that
 * Easy Auth's /.auth/me shows for Entra's JWT names (the .NET inbound
 * claim map it is built on), limited to claims Entra ID tokens carry.
 * Any other claim keeps its JWT name, as in Easy Auth.  Sorted by JWT
 * name.
 */
static const struct {
	const char *em_jwt;
	const char *em_typ;
} easyauth_claim_uris[] = {
    {"amr", "http://schemas.microsoft.com/claims/authnmethodsreferences"},
    {"email",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
        "emailaddress"},
    {"family_name",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"},
    {"given_name",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"},
    {"idp", "http://schemas.microsoft.com/identity/claims/identityprovider"},
    {"oid", "http://schemas.microsoft.com/identity/claims/objectidentifier"},
    {"role", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"},
    {"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"},
    {"scp", "http://schemas.microsoft.com/identity/claims/scope"},
    {"sub",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
        "nameidentifier"},
    {"tid", "http://schemas.microsoft.com/identity/claims/tenantid"},
    {"unique_name",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"},
    {"upn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"},
};

static const char *
easyauth_claim_typ(const char *jwt)
{
	size_t lo = 0,
	       hi =
	           sizeof(easyauth_claim_uris) / sizeof(easyauth_claim_uris[0]);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(jwt, easyauth_claim_uris[mid].em_jwt);

		if (c == 0)
			return easyauth_claim_uris[mid].em_typ;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return jwt;
}

/* One {"typ","val"} entry, the value as text, as Easy Auth writes every
 * value: numbers in decimal, booleans as true/false, an object as its
 * JSON.  null adds nothing. */
static void
easyauth_claim_add(json_t *list, const char *typ, const json_t *v)
{
	char num[64], *text = NULL;
	const char *val;

	if (json_is_string(v))
		val = json_string_value(v);
	else if (json_is_integer(v)) {
		snprintf(
		    num, sizeof(num), "%lld", (long long)json_integer_value(v));
		val = num;
	} else if (json_is_real(v)) {
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		val = num;
	} else if (json_is_boolean(v))
		val = json_is_true(v) ? "true" : "false";
	else if (json_is_object(v) || json_is_array(v)) {
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text == NULL)
			return;
		val = text;
	} else
		return;
	json_array_append_new(
	    list, json_pack("{s:s,s:s}", "typ", typ, "val", val));
	free(text);
}

/* Every claim, an array's values as one entry each (Easy Auth's one
 * claim per value), in the claims' own order. */
static json_t *
easyauth_user_claims(const json_t *claims)
{
	json_t *list = json_array(), *v, *e;
	const char *k;
	size_t i;

	if (list == NULL)
		return NULL;
	json_object_foreach((json_t *)claims, k, v)
	{
		const char *typ = easyauth_claim_typ(k);

		if (json_is_array(v)) {
			json_array_foreach(v, i, e)
			    easyauth_claim_add(list, typ, e);
		} else
			easyauth_claim_add(list, typ, v);
	}
	return list;
}

/*
 * The shape is Microsoft's "Work with OAuth tokens in Azure App Service
 * authentication" (learn.microsoft.com): /.auth/me, fetched with GET from
 * the app's JavaScript, returns JSON with the provider's tokens.  The
 * fields (an array with one object per provider: provider_name, user_id,
 * user_claims of typ/val, id_token, access_token, expires_on) are those
 * Easy Auth answers; Microsoft's pages show the token headers, not a full
 * sample of the body.
 *
 * Security: tokens appear only with me_includes_tokens, the one switch
 * for tokens within a page's reach (a script injected into the app could
 * read them); the ID token counts as one.  The refresh token never does,
 * although Easy Auth's token store hands it out: it is the long-lived
 * credential gatehouse alone redeems, one at a time per session; an app
 * redeeming it too would race gatehouse's refresh and, where the provider
 * rotates refresh tokens, end the session.  expires_on is no secret and
 * is shown whenever the session has an access token, as the gatehouse
 * shape does.
 */
json_t *
easyauth_me_doc(struct session *s, int tokens)
{
	const json_t *claims = session_claims(s);
	json_t *one, *doc, *uc;
	char at[32];

	uc = easyauth_user_claims(claims);
	if (uc == NULL)
		return NULL;
	one = json_pack("{s:s,s:s,s:o}", "provider_name", "aad", "user_id",
	    identity_user(claims), "user_claims", uc);
	if (one == NULL)
		return NULL;
	if (s->se_at_expires != 0) {
		identity_iso_time(s->se_at_expires, at, sizeof(at));
		json_object_set_new(one, "expires_on", json_string(at));
	}
	if (tokens && session_open_tokens(s) == 0) {
		if (s->se_idtoken.len > 0)
			json_object_set_new(one, "id_token",
			    json_stringn((const char *)s->se_idtoken.buf,
			        s->se_idtoken.len));
		if (s->se_access.len > 0)
			json_object_set_new(one, "access_token",
			    json_stringn((const char *)s->se_access.buf,
			        s->se_access.len));
	}
	doc = json_array();
	if (doc == NULL || json_array_append_new(doc, one) == -1) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* Whether url (an Origin, or a Referer) is of origin base
 * (scheme://host[:port]), letter case aside. */
static int
easyauth_origin_is(const char *url, const char *base)
{
	size_t n;

	if (base == NULL)
		return 0;
	n = strlen(base);
	return strncasecmp(url, base, n) == 0 &&
	    (url[n] == '\0' || url[n] == '/' || url[n] == '?');
}

/*
 * Easy Auth's clients call /.auth/refresh with GET from the app's own
 * JavaScript (Microsoft's own sample is jQuery's $.ajax("/.auth/refresh")),
 * with the session cookie.  Security: a GET that changes state must not
 * be one another site can cause.  The SameSite=Lax cookie goes along on a
 * top-level navigation from any site (a link, window.location), so the
 * cookie alone proves nothing; a cross-site POST carries no Lax cookie,
 * which is why POST needs no such check.  A GET is carried out only on
 * positive evidence that this site's pages sent it:
 *   - Sec-Fetch-Site, which no page can set, decides when present:
 *     same-origin, or none (the person's own typed URL or bookmark, which
 *     no other site can cause).  same-site (a sibling subdomain) and
 *     cross-site are refused.
 *   - Else an Origin naming this site (redirect_uri's scheme, host and
 *     port).
 *   - Else X-Requested-With, which jQuery adds to its same-origin calls:
 *     another origin's page cannot add a custom header without a CORS
 *     preflight, which gatehouse never grants.
 *   - Else a Referer on this site.
 * A GET with none of them (a browser too old for Sec-Fetch-*, on a page
 * that suppresses Referer) is refused rather than believed; POST stays
 * open to it and to scripts.
 */
int
easyauth_refresh_get_allowed(struct request_ctx *rq)
{
	const struct config *cfg = rq->rq_cfg;
	const char *site = request_header(rq, "Sec-Fetch-Site");
	const char *origin = request_header(rq, "Origin");
	const char *referer = request_header(rq, "Referer");

	if (site != NULL)
		return strcmp(site, "same-origin") == 0 ||
		    strcmp(site, "none") == 0;
	if (origin != NULL)
		return easyauth_origin_is(origin, cfg->cf_public_base);
	if (request_header(rq, "X-Requested-With") != NULL)
		return 1;
	return referer != NULL &&
	    easyauth_origin_is(referer, cfg->cf_public_base);
}

int
easyauth_id_token_add(char **hdrs, const struct secret *idt)
{
	static const char name[] = "X-MS-TOKEN-AAD-ID-TOKEN: ";
	size_t hl, cap;
	char *out;

	if (*hdrs == NULL)
		return -1;
	if (idt == NULL || idt->len == 0)
		return 0;
	hl = strlen(*hdrs);
	cap = hl + sizeof(name) - 1 + idt->len + 3;
	out = malloc(cap);
	if (out != NULL) {
		/* The ID token was checked to be base64url parts and dots
		 * when it came from the token endpoint: it cannot split the
		 * header block. */
		memcpy(out, *hdrs, hl);
		memcpy(out + hl, name, sizeof(name) - 1);
		memcpy(out + hl + sizeof(name) - 1, idt->buf, idt->len);
		memcpy(out + cap - 3, "\r\n", 3);
	}
	OPENSSL_cleanse(*hdrs, hl);
	free(*hdrs);
	*hdrs = out;
	return out != NULL ? 0 : -1;
}
