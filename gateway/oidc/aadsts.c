/* SPDX-License-Identifier: ISC */
/*
 * aadsts.c: the AADSTS numbers a person meets at sign-in, in plain words.
 * The words name the next step and who takes it; the page shows them with
 * the number and the ids, and never the provider's own description.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/aadsts.h"

static const struct aadsts_entry aadsts_table[] = {
    {65001, "consent_required", AADSTS_ADMIN, 502,
        "This site is waiting for an administrator's consent",
        "The directory has not granted this site the permissions it asks "
        "for, and in this directory only an administrator can grant them. "
        "Please tell the site's administrator, who can grant admin consent for "
        "the app registration's API "
        "permissions (Entra admin center, App registrations, API "
        "permissions, Grant admin consent), then try again."},
    {65004, "consent_declined", AADSTS_USER, 401, "Sign-in was cancelled",
        "You declined the permissions this site asks for, so sign-in "
        "cannot go on. Try again to review them."},
    {50011, "redirect_uri_mismatch", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "The address this site asked the identity provider to send you "
        "back to is not registered for the app. Please tell the site's "
        "administrator, who can add this "
        "site's redirect_uri, exactly as configured (scheme, host, path, "
        "letter case), to the app registration's Web redirect URIs."},
    {700016, "application_not_found", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "The identity provider does not know this site's application "
        "(client) id in this directory. Please tell the site's administrator, "
        "who can check client_id "
        "and that the authority names the directory (tenant) where the app "
        "is registered."},
    {7000215, "invalid_client_secret", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "The identity provider refused this site's client credentials (its "
        "client secret). "
        "Please tell the site's administrator, who can set client_secret to "
        "the secret's Value (not its "
        "Secret ID) from the app registration's Certificates & secrets."},
    {7000222, "client_secret_expired", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "The identity provider refused this site's client credentials: its "
        "client secret has expired. Please tell the site's administrator, who "
        "can add a new "
        "secret (or, better, a certificate) under the app registration's "
        "Certificates & secrets and configure it here."},
    {700027, "invalid_client_certificate", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "The identity provider refused this site's client credentials (its "
        "certificate): the certificate "
        "is not uploaded to the app registration, has expired, or does not "
        "match the key. Please tell the site's administrator, who can upload "
        "client_certificate under the "
        "app registration's Certificates & secrets."},
    {7000218, "client_credentials_missing", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "The identity provider refused this site's client credentials: it "
        "expects a client secret or a certificate. Please tell the site's "
        "administrator, who can configure client_secret, or "
        "client_certificate and client_certificate_key."},
    {70011, "invalid_scope", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "This site asks for a permission (scope) the identity provider "
        "does not offer. Please tell the site's administrator, who can check "
        "scopes against the app "
        "registration's API permissions."},
    {50105, "user_not_assigned", AADSTS_USER, 403,
        "Your account has no access to this application",
        "You signed in, but your account is not assigned to this "
        "application. Ask the application's administrator to assign you "
        "(Enterprise applications, Users and groups), then try again."},
    {50034, "account_not_found", AADSTS_USER, 403, "No account was found",
        "There is no account for these sign-in details, and new accounts "
        "cannot sign up here. Check the address you typed, or ask the "
        "application's administrator for an account (or to allow sign-up "
        "in the user flow)."},
    {90002, "tenant_not_found", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "The directory (tenant) this site is configured for does not "
        "exist. Please tell the site's administrator, who can check the tenant "
        "name or id in authority "
        "(or oidc_issuer)."},
    {900023, "tenant_not_found", AADSTS_ADMIN, 502,
        "Sign-in is not set up correctly",
        "The directory (tenant) named in this site's configuration is not "
        "a valid tenant name or id. Please tell the site's administrator, who "
        "can check authority (or "
        "oidc_issuer)."},
};

const struct aadsts_entry *
aadsts_find(long code)
{
	size_t i;

	for (i = 0; i < sizeof(aadsts_table) / sizeof(aadsts_table[0]); i++)
		if (aadsts_table[i].ae_code == code)
			return &aadsts_table[i];
	return NULL;
}

/* Copy the run of bytes in accept that starts at s (at most size - 1 of
 * them, else nothing) into buf. */
static void
aadsts_take(const char *s, const char *accept, char *buf, size_t size)
{
	size_t n;

	buf[0] = '\0';
	if (s == NULL)
		return;
	n = strspn(s, accept);
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (n > 0 && n < size) {
		memcpy(buf, s, n);
		buf[n] = '\0';
	}
}

/* The text after the last "label" in d, or NULL. */
static const char *
aadsts_after(const char *d, const char *label)
{
	const char *p, *last = NULL;

	for (p = strstr(d, label); p != NULL; p = strstr(p + 1, label))
		last = p;
	return last != NULL ? last + strlen(label) : NULL;
}

void
aadsts_ref_from_text(const char *d, struct aadsts_ref *r)
{
	static const char hexid[] = "0123456789abcdefABCDEF-";
	const char *p;
	char *end;
	long v;

	memset(r, 0, sizeof(*r));
	if (d == NULL)
		return;
	/* Entra's descriptions begin with the number; nothing else counts
	 * as one (the rest of the text is the user's and the provider's). */
	if (strncmp(d, "AADSTS", 6) == 0 && isdigit((unsigned char)d[6])) {
		v = strtol(d + 6, &end, 10);
		if (v > 0 && v < 100000000 && (*end == ':' || *end == '\0'))
			r->ar_code = v;
	}
	aadsts_take(aadsts_after(d, "Trace ID: "), hexid, r->ar_trace,
	    sizeof(r->ar_trace));
	aadsts_take(aadsts_after(d, "Correlation ID: "), hexid, r->ar_corr,
	    sizeof(r->ar_corr));
	p = aadsts_after(d, "Timestamp: ");
	aadsts_take(p, "0123456789-:. TZ", r->ar_time, sizeof(r->ar_time));
	/* One token for a key=value log line: "2026-12-05T10:47:16Z". */
	end = strchr(r->ar_time, ' ');
	if (end != NULL)
		*end = 'T';
}

void
aadsts_ref_from_json(const json_t *doc, struct aadsts_ref *r)
{
	json_t *c = json_array_get(json_object_get(doc, "error_codes"), 0);
	struct aadsts_ref t;
	const char *v;
	char line[160];

	memset(r, 0, sizeof(*r));
	if (json_is_integer(c) && json_integer_value(c) > 0 &&
	    json_integer_value(c) < 100000000)
		r->ar_code = (long)json_integer_value(c);
	/* The same fields as a description's, read by the same rules. */
	v = json_string_value(json_object_get(doc, "trace_id"));
	snprintf(line, sizeof(line), "Trace ID: %.40s", v != NULL ? v : "");
	aadsts_ref_from_text(line, &t);
	memcpy(r->ar_trace, t.ar_trace, sizeof(r->ar_trace));
	v = json_string_value(json_object_get(doc, "correlation_id"));
	snprintf(
	    line, sizeof(line), "Correlation ID: %.40s", v != NULL ? v : "");
	aadsts_ref_from_text(line, &t);
	memcpy(r->ar_corr, t.ar_corr, sizeof(r->ar_corr));
	v = json_string_value(json_object_get(doc, "timestamp"));
	snprintf(line, sizeof(line), "Timestamp: %.40s", v != NULL ? v : "");
	aadsts_ref_from_text(line, &t);
	memcpy(r->ar_time, t.ar_time, sizeof(r->ar_time));
}

int
aadsts_tenant_not_found(
    long status, const char *body, size_t len, struct aadsts_ref *r)
{
	json_t *doc = NULL, *codes;
	const char *e;
	size_t i;
	int found = 0;

	memset(r, 0, sizeof(*r));
	if (status != 400 && status != 404)
		return 0;
	if (body != NULL)
		doc = json_loadb(body, len, 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return 0;
	}
	aadsts_ref_from_json(doc, r);
	e = json_string_value(json_object_get(doc, "error"));
	found = e != NULL && strcmp(e, "invalid_tenant") == 0;
	codes = json_object_get(doc, "error_codes");
	for (i = 0; i < json_array_size(codes); i++) {
		json_int_t v = json_integer_value(json_array_get(codes, i));

		if (v == 90002 || v == 900023) {
			found = 1;
			r->ar_code = (long)v;
		}
	}
	json_decref(doc);
	return found;
}

void
aadsts_ref_format(const struct aadsts_ref *r, char *buf, size_t size)
{
	char code[32] = "";

	if (r->ar_code > 0)
		snprintf(code, sizeof(code), " AADSTS%ld", r->ar_code);
	snprintf(buf, size, "%s%s%s%s%s%s%s", code,
	    r->ar_trace[0] != '\0' ? " trace_id=" : "", r->ar_trace,
	    r->ar_corr[0] != '\0' ? " correlation_id=" : "", r->ar_corr,
	    r->ar_time[0] != '\0' ? " timestamp=" : "", r->ar_time);
}
