/* SPDX-License-Identifier: ISC */
/*
 * oidc_discovery_test.c: gateway/oidc/oidc_discovery.c's check of a
 * discovery document, here the tenant an issuer names for the tid rule:
 * every Entra issuer form holds it, a generic provider's issuer does not,
 * and tid is required only where the provider is recognised as Entra.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "tap.h"

#define GUID "8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60"

/*
 * Check a document whose issuer is `iss` and whose endpoints are on
 * `ephost` (scheme and host, the token endpoint under /GUID), against an
 * authority or an oidc_issuer; want_tid ("" for none) and want_required.
 */
static void
tenant(const char *authority, const char *oidc_issuer, const char *iss,
    const char *ephost, const char *want_tid, int want_required,
    const char *what)
{
	struct config cfg;
	struct oidc_meta m;
	const char *why;
	char doc[1024];

	memset(&cfg, 0, sizeof(cfg));
	memset(&m, 0, sizeof(m));
	cfg.cf_authority = (char *)authority;
	cfg.cf_oidc_issuer = (char *)oidc_issuer;
	snprintf(doc, sizeof(doc),
	    "{\"issuer\":\"%s\","
	    "\"authorization_endpoint\":\"%s/" GUID "/oauth2/v2.0/authorize\","
	    "\"token_endpoint\":\"%s/" GUID "/oauth2/v2.0/token\","
	    "\"jwks_uri\":\"%s/" GUID "/discovery/v2.0/keys\"}",
	    iss, ephost, ephost, ephost);
	why = oidc_discovery_check(&cfg, doc, strlen(doc), &m);
	ok(why == NULL, "%s: the document passes (%s)", what,
	    why != NULL ? why : "ok");
	is_str(m.om_tid, want_tid, "%s: the issuer's tenant", what);
	is_int(m.om_tid_required, want_required, "%s: tid %s", what,
	    want_required ? "required" : "checked only when present");
	oidc_meta_cleanup(&m);
}

int
main(void)
{
	const char *ciam = "https://" GUID ".ciamlogin.com/" GUID "/v2.0";

	tenant("https://contoso.ciamlogin.com/contoso.onmicrosoft.com", NULL,
	    ciam, "https://contoso.ciamlogin.com", GUID, 1,
	    "External ID, tenant-name authority");
	tenant("https://contoso.ciamlogin.com/" GUID, NULL, ciam,
	    "https://contoso.ciamlogin.com", GUID, 1,
	    "External ID, tenant-GUID authority");
	tenant("https://contoso.ciamlogin.com/", NULL,
	    "https://" GUID ".ciamlogin.com/", "https://contoso.ciamlogin.com",
	    GUID, 1, "a path-less issuer: the tenant is its host");
	tenant("https://login.microsoftonline.com/" GUID, NULL,
	    "https://login.microsoftonline.com/" GUID "/v2.0",
	    "https://login.microsoftonline.com", GUID, 1, "workforce Entra ID");
	tenant(NULL, "https://login.microsoftonline.com/" GUID "/v2.0",
	    "https://login.microsoftonline.com/" GUID "/v2.0",
	    "https://login.microsoftonline.com", GUID, 1,
	    "Entra through oidc_issuer: recognised by its host");
	tenant(NULL, "https://sts.windows.net/" GUID "/",
	    "https://sts.windows.net/" GUID "/", "https://sts.windows.net",
	    GUID, 1, "a v1 issuer");
	tenant(NULL, "https://login.contoso.com/" GUID "/v2.0",
	    "https://login.contoso.com/" GUID "/v2.0",
	    "https://login.contoso.com", GUID, 0,
	    "a custom URL domain (OIDC_AUTHORITY)");
	tenant(NULL, "https://login.example.com/realms/main",
	    "https://login.example.com/realms/main",
	    "https://login.example.com", "", 0,
	    "a generic provider (Keycloak-like)");
	tenant(NULL, "https://login.example.com/" GUID "/other",
	    "https://login.example.com/" GUID "/other",
	    "https://login.example.com", "", 0,
	    "a GUID followed by anything but /v2.0");
	tenant(NULL, "https://login.example.com/tenant/v2.0",
	    "https://login.example.com/tenant/v2.0",
	    "https://login.example.com", "", 0, "not a GUID");
	tenant(NULL, "https://login.example.com/" GUID "0/v2.0",
	    "https://login.example.com/" GUID "0/v2.0",
	    "https://login.example.com", "", 0, "a GUID with one digit more");
	tenant(NULL, "https://login.example.com", "https://login.example.com",
	    "https://login.example.com", "", 0, "a host-only issuer");
	return done_testing();
}
