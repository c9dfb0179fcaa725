/* SPDX-License-Identifier: ISC */
/*
 * websocket.c: the WebSocket handshake as the proxy sees it (RFC 6455
 * section 4): a request that asks for one, its Origin, the upstream's 101,
 * and the websocket_* keys.  Only "websocket" is ever upgraded: any other
 * Upgrade (h2c, ...) is a hop-by-hop field, stripped as before.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "core/config.h"
#include "http/http1.h"
#include "route/websocket.h"

static int websocket_check(struct config *, config_report_fn *, void *);

/* Sorted by name: looked up with bsearch. */
static const struct config_key websocket_keys[] = {
    {"websocket_idle_timeout", config_parse_duration,
        offsetof(struct config, cf_ws_idle_timeout), "1h",
        "How long a WebSocket tunnel may carry no byte either way before "
        "it is closed.",
        0},
    {"websocket_origin_check", config_parse_bool,
        offsetof(struct config, cf_ws_origin_check), "on",
        "Refuse (403) a WebSocket handshake whose Origin is neither the "
        "site of redirect_uri nor the request's own Host (cross-site "
        "WebSocket hijacking).",
        0},
    {"websocket_session_check", config_parse_duration,
        offsetof(struct config, cf_ws_session_check), "1m",
        "How often an open WebSocket tunnel re-reads its session: a "
        "tunnel whose session has ended (sign-out, revocation, expiry) "
        "is closed.",
        0},
};
const struct config_module websocket_config_module = {"websocket",
    websocket_keys, sizeof(websocket_keys) / sizeof(websocket_keys[0]),
    websocket_check, NULL};

static int
websocket_check(struct config *cfg, config_report_fn *report, void *arg)
{
	int n = 0;

	/* A zero would make a timer spin, or close every tunnel at once. */
	if (cfg->cf_ws_idle_timeout < 1) {
		report(arg, 0, "websocket_idle_timeout must be at least 1s");
		n++;
	}
	if (cfg->cf_ws_session_check < 1) {
		report(arg, 0, "websocket_session_check must be at least 1s");
		n++;
	}
	return n;
}

/* The value of header name in r (borrowed), and how often it appears. */
static const char *
websocket_header(const struct http1_req *r, const char *name, int *count)
{
	const char *v = NULL;
	size_t n = strlen(name);
	int i;

	*count = 0;
	for (i = 0; i < r->hr_nhdrs; i++)
		if (r->hr_hdrs[i].hh_nlen == n &&
		    strcasecmp(r->hr_hdrs[i].hh_name, name) == 0) {
			if (v == NULL)
				v = r->hr_hdrs[i].hh_value;
			(*count)++;
		}
	return v;
}

/* Sec-WebSocket-Key: base64 of 16 bytes is 22 characters and "==". */
static int
websocket_key_ok(const char *key)
{
	size_t i;

	if (strlen(key) != 24 || key[22] != '=' || key[23] != '=')
		return 0;
	for (i = 0; i < 22; i++)
		if (!((key[i] >= 'A' && key[i] <= 'Z') ||
		        (key[i] >= 'a' && key[i] <= 'z') ||
		        (key[i] >= '0' && key[i] <= '9') || key[i] == '+' ||
		        key[i] == '/'))
			return 0;
	return 1;
}

enum websocket_ask
websocket_ask(const struct http1_req *r)
{
	const char *up, *key, *ver;
	int nup, nkey, nver;

	up = websocket_header(r, "Upgrade", &nup);
	if (up == NULL || !http1_list_has(up, "websocket") ||
	    !http1_connection_has(r->hr_hdrs, r->hr_nhdrs, "upgrade"))
		return WEBSOCKET_NONE;
	key = websocket_header(r, "Sec-WebSocket-Key", &nkey);
	ver = websocket_header(r, "Sec-WebSocket-Version", &nver);
	if (nup != 1 || r->hr_minor < 1 || r->hr_method == NULL ||
	    strcmp(r->hr_method, "GET") != 0 || r->hr_chunked ||
	    r->hr_length > 0 || key == NULL || nkey != 1 ||
	    !websocket_key_ok(key) || ver == NULL || nver != 1 ||
	    strcmp(ver, "13") != 0)
		return WEBSOCKET_BAD;
	return WEBSOCKET_OK;
}

int
websocket_origin_ok(const struct config *cfg, const struct http1_req *r)
{
	const char *origin, *auth;
	int n;

	if (!cfg->cf_ws_origin_check)
		return 1;
	origin = websocket_header(r, "Origin", &n);
	if (origin == NULL)
		return 1;
	/* Security: a page of another site opening a WebSocket here gets the
	 * user's cookie sent along (the handshake is not subject to CORS);
	 * its Origin, set by the browser, is the only sign of it.  Two
	 * Origin fields are not a browser's. */
	if (n != 1)
		return 0;
	if (cfg->cf_public_base != NULL &&
	    strcasecmp(origin, cfg->cf_public_base) == 0)
		return 1;
	if (strncasecmp(origin, "https://", 8) == 0)
		auth = origin + 8;
	else if (strncasecmp(origin, "http://", 7) == 0)
		auth = origin + 7;
	else
		return 0; /* "null" (a sandboxed or file: page), or junk */
	return r->hr_host != NULL && r->hr_host[0] != '\0' &&
	    strcasecmp(auth, r->hr_host) == 0;
}

int
websocket_accept_fmt(const char *key, char out[WEBSOCKET_ACCEPT_LEN + 1])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[128];
	int n;

	n = snprintf(buf, sizeof(buf), "%s%s", key, guid);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	/* SHA-1 because the protocol says so: a checksum of the handshake,
	 * not a security property. */
	if (EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return -1;
	if (EVP_EncodeBlock((unsigned char *)out, md, 20) !=
	    WEBSOCKET_ACCEPT_LEN)
		return -1;
	out[WEBSOCKET_ACCEPT_LEN] = '\0';
	return 0;
}

int
websocket_accepted(
    const char *key, const struct http1_resp *p, const char **why)
{
	char want[WEBSOCKET_ACCEPT_LEN + 1];
	const char *up = NULL, *acc = NULL;
	int i, nacc = 0;

	for (i = 0; i < p->hp_nhdrs; i++) {
		if (strcasecmp(p->hp_hdrs[i].hh_name, "Upgrade") == 0)
			up = p->hp_hdrs[i].hh_value;
		else if (strcasecmp(p->hp_hdrs[i].hh_name,
		             "Sec-WebSocket-Accept") == 0) {
			acc = p->hp_hdrs[i].hh_value;
			nacc++;
		}
	}
	if (up == NULL || strcasecmp(up, "websocket") != 0) {
		*why = "101 without Upgrade: websocket";
		return 0;
	}
	if (!http1_connection_has(p->hp_hdrs, p->hp_nhdrs, "upgrade")) {
		*why = "101 without Connection: upgrade";
		return 0;
	}
	if (acc == NULL || nacc != 1 || websocket_accept_fmt(key, want) == -1 ||
	    strcmp(acc, want) != 0) {
		*why = "101 with a wrong Sec-WebSocket-Accept";
		return 0;
	}
	return 1;
}
