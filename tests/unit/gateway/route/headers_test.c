/* SPDX-License-Identifier: ISC */
/* headers_test.c: which headers gatehouse owns, hop-by-hop, trust. */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "http/http1.h"
#include "route/headers.h"
#include "tap.h"

static void
test_owned(void)
{
	static const char *const owned[] = {"X-Forwarded-User",
	    "x-forwarded-user", "X_FORWARDED_USER", "x_Forwarded-uSer",
	    "X-MS-CLIENT-PRINCIPAL", "x-ms-client-principal-name",
	    "X_MS_CLIENT_PRINCIPAL_ID", "X-MS-TOKEN-AAD-ACCESS-TOKEN",
	    "x-ms-token-aad-expires-on", "X-Forwarded-Email", "X-Forwarded-For",
	    "Forwarded", "X-Real-IP", "X-Request-Id", "X-Auth-Request-User",
	    "X-Gatehouse-Anything", "X-Original-URI", "X-Forwarded-Uri",
	    "X-Forwarded-Method"};
	static const char *const free_[] = {"Accept", "Cookie", "Authorization",
	    "X-Forwarded", "X-MS-CLIENT", "X-User", "X-Forwarded-Userx",
	    "Content-Type"};
	size_t i;

	for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		ok(headers_is_owned(owned[i]), "owned: %s", owned[i]);
	for (i = 0; i < sizeof(free_) / sizeof(free_[0]); i++)
		ok(!headers_is_owned(free_[i]), "not owned: %s", free_[i]);
}

static void
test_hop_by_hop(void)
{
	ok(headers_is_hop_by_hop("Connection", NULL), "Connection");
	ok(headers_is_hop_by_hop("keep-alive", NULL), "keep-alive");
	ok(headers_is_hop_by_hop("TE", NULL), "TE");
	ok(headers_is_hop_by_hop("Trailer", NULL), "Trailer");
	ok(headers_is_hop_by_hop("Transfer-Encoding", NULL), "TE chunked");
	ok(headers_is_hop_by_hop("Upgrade", NULL), "Upgrade");
	ok(headers_is_hop_by_hop("Proxy-Authorization", NULL), "Proxy-*");
	ok(headers_is_hop_by_hop("proxy-connection", NULL), "proxy-connection");
	ok(!headers_is_hop_by_hop("X-Foo", NULL), "X-Foo end to end");
	ok(headers_is_hop_by_hop("X-Foo", "keep-alive, x-foo"),
	    "named by Connection");
	ok(headers_is_hop_by_hop("X-Foo", "x-bar,X-FOO"), "named, any case");
	ok(!headers_is_hop_by_hop("X-Foo", "x-foobar, x-fo"),
	    "prefixes are not names");
	ok(http1_list_has("Keep-Alive, close", "close"), "close listed");
	ok(!http1_list_has("closed", "close"), "closed is not close");
}

static void
test_kind(void)
{
	static const struct {
		const char *name;
		unsigned int kind;
	} cases[] = {
	    {"Host", HEADERS_HOST},
	    {"HOST", HEADERS_HOST},
	    {"Content-Length", HEADERS_LENGTH},
	    {"content_length", HEADERS_LENGTH},
	    {"Expect", HEADERS_EXPECT},
	    {"Cookie", HEADERS_COOKIE},
	    {"authorization", HEADERS_AUTHORIZATION},
	    {"Date", HEADERS_DATE},
	    {"Transfer_Encoding", HEADERS_HOP},
	    {"Keep_Alive", HEADERS_HOP},
	    {"Proxy_Authorization", HEADERS_HOP},
	    {"X_FORWARDED_PREFERRED_USERNAME", HEADERS_OWNED},
	    {"x-forwarded-access-token", HEADERS_OWNED},
	    {"X-Forwarded-Port", HEADERS_OWNED},
	    {"X-Forwarded-Prefix", HEADERS_OWNED},
	    {"X-Forwarded-Groups", HEADERS_OWNED},
	    {"X-Original-Url", HEADERS_OWNED},
	    {"x_ms_client_principal_idp", HEADERS_OWNED},
	    {"X-MS-TOKEN-AAD-REFRESH-TOKEN-AND-A-VERY-LONG-NAME-PAST-SIXTY-"
	     "FOUR-BYTES",
	        HEADERS_OWNED},
	    {"X-Forwarded", 0},
	    {"X-Forwarded-", 0},
	    {"Hos", 0},
	    {"Hosts", 0},
	    {"Content-Type", 0},
	    {"Te-", 0},
	    {"", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(headers_kind(cases[i].name, strlen(cases[i].name)),
		    cases[i].kind, "kind of \"%s\"", cases[i].name);
}

static void
test_trusted(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	const struct config_key *k = config_key_find("trusted_proxies");
	const char *err = NULL;

	ok(k != NULL, "trusted_proxies key exists");
	ok(k->ck_parse(
	       cfg, k, "10.0.0.0/8 192.168.1.7, ::1 fd00::/8", 0, &err) == 0,
	    "parse a list");
	is_int(cfg->cf_trusted.cs_n, 4, "four entries");
	ok(headers_peer_trusted(cfg, "10.1.2.3"), "inside /8");
	ok(!headers_peer_trusted(cfg, "11.0.0.1"), "outside /8");
	ok(headers_peer_trusted(cfg, "192.168.1.7"), "exact host");
	ok(!headers_peer_trusted(cfg, "192.168.1.8"), "host + 1");
	ok(headers_peer_trusted(cfg, "::1"), "v6 loopback");
	ok(headers_peer_trusted(cfg, "fd12::5"), "inside fd00::/8");
	ok(!headers_peer_trusted(cfg, "fe80::1"), "outside fd00::/8");
	ok(!headers_peer_trusted(cfg, "garbage"), "not an address");
	ok(!headers_peer_trusted(cfg, NULL), "NULL");
	ok(k->ck_parse(cfg, k, "10.0.0.0/33", 0, &err) == -1, "bad prefix");
	ok(k->ck_parse(cfg, k, "10.0.0.0/", 0, &err) == -1, "empty prefix");
	ok(k->ck_parse(cfg, k, "example.com", 0, &err) == -1, "a name");
	ok(k->ck_parse(cfg, k, "", 0, &err) == 0 && cfg->cf_trusted.cs_n == 0,
	    "empty list: trust nobody");
	ok(!headers_peer_trusted(cfg, "10.1.2.3"), "nobody trusted");
	ok(k->ck_parse(cfg, k, "172.16.0.0/12", 0, &err) == 0, "a /12");
	ok(headers_peer_trusted(cfg, "172.31.255.255"), "top of /12");
	ok(!headers_peer_trusted(cfg, "172.32.0.0"), "past /12");
	free(cfg);
}

int
main(void)
{
	test_owned();
	test_hop_by_hop();
	test_kind();
	test_trusted();
	return done_testing();
}
