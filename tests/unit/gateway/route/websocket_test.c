/* SPDX-License-Identifier: ISC */
/*
 * websocket_test.c: gateway/route/websocket.c, the WebSocket handshake as
 * the proxy sees it: which requests ask for one, the Origin rule, the
 * Accept a key calls for and the checks of the upstream's 101.
 */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "http/http1.h"
#include "route/websocket.h"
#include "tap.h"

static const struct http1_limits lim = {256, 4096, 16, 1000};
static struct http1_hdr hdrs[17];
static char buf[4096];

#define HS                                                                     \
	"Host: app.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"   \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                      \
	"Sec-WebSocket-Version: 13\r\n"

static int
req(const char *text, struct http1_req *r)
{
	size_t pos = 0;
	ssize_t hl;

	snprintf(buf, sizeof(buf), "%s", text);
	hl = http1_head_scan(buf, strlen(buf), &pos);
	if (hl <= 0)
		return -1;
	memset(r, 0, sizeof(*r));
	r->hr_hdrs = hdrs;
	r->hr_maxhdrs = 17;
	return http1_parse_request(buf, (size_t)hl, &lim, r);
}

static int
ask(const char *text)
{
	struct http1_req r;

	if (req(text, &r) == -1 || r.hr_status != 0)
		return -1;
	return (int)websocket_ask(&r);
}

static void
test_ask(void)
{
	is_int(ask("GET /ws HTTP/1.1\r\n" HS "\r\n"), WEBSOCKET_OK,
	    "a well-formed handshake");
	is_int(ask("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n"
	           "Connection: Upgrade, HTTP2-Settings\r\n\r\n"),
	    WEBSOCKET_NONE, "h2c is not one (stripped as before)");
	is_int(ask("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
	    WEBSOCKET_NONE, "Upgrade without Connection: upgrade is not one");
	is_int(ask("POST /ws HTTP/1.1\r\n" HS "\r\n"), WEBSOCKET_BAD,
	    "a POST handshake is malformed");
	is_int(ask("GET /ws HTTP/1.0\r\n" HS "\r\n"), WEBSOCKET_BAD,
	    "an HTTP/1.0 handshake is malformed");
	is_int(ask("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
	           "Connection: Upgrade\r\nSec-WebSocket-Key: short==\r\n"
	           "Sec-WebSocket-Version: 13\r\n\r\n"),
	    WEBSOCKET_BAD, "a key that is not 16 bytes is malformed");
	is_int(ask("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
	           "Connection: Upgrade\r\n"
	           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	           "Sec-WebSocket-Version: 8\r\n\r\n"),
	    WEBSOCKET_BAD, "a version other than 13 is refused");
	is_int(ask("GET /ws HTTP/1.1\r\n" HS
	           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
	    WEBSOCKET_BAD, "two keys are refused");
}

static int
origin(int check, const char *base, const char *extra)
{
	struct config cfg;
	struct http1_req r;
	char text[1024];

	memset(&cfg, 0, sizeof(cfg));
	cfg.cf_ws_origin_check = check;
	cfg.cf_public_base = (char *)base;
	snprintf(text, sizeof(text), "GET /ws HTTP/1.1\r\n" HS "%s\r\n", extra);
	if (req(text, &r) == -1)
		return -1;
	return websocket_origin_ok(&cfg, &r);
}

static void
test_origin(void)
{
	is_int(origin(1, NULL, ""), 1, "no Origin (not a browser) passes");
	is_int(origin(1, NULL, "Origin: http://app.example\r\n"), 1,
	    "the request's own Host passes");
	is_int(origin(1, "https://public.example",
	           "Origin: https://public.example\r\n"),
	    1, "the site of redirect_uri passes");
	is_int(origin(1, "https://public.example",
	           "Origin: https://evil.example\r\n"),
	    0, "another site is refused");
	is_int(origin(1, NULL, "Origin: https://app.example.evil\r\n"), 0,
	    "a longer host is refused");
	is_int(
	    origin(1, NULL, "Origin: null\r\n"), 0, "a null origin is refused");
	is_int(
	    origin(1, NULL,
	        "Origin: http://app.example\r\nOrigin: http://app.example\r\n"),
	    0, "two Origin fields are refused");
	is_int(origin(0, NULL, "Origin: https://evil.example\r\n"), 1,
	    "with the check off, anything passes");
}

static int
accepted(const char *head, const char **why)
{
	struct http1_resp p;

	snprintf(buf, sizeof(buf), "%s", head);
	memset(&p, 0, sizeof(p));
	p.hp_hdrs = hdrs;
	p.hp_maxhdrs = 17;
	if (http1_parse_response(buf, strlen(buf), &p) == -1)
		return -1;
	return websocket_accepted("dGhlIHNhbXBsZSBub25jZQ==", &p, why);
}

static void
test_accept(void)
{
	char out[WEBSOCKET_ACCEPT_LEN + 1];
	const char *why = NULL;

	ok(websocket_accept_fmt("dGhlIHNhbXBsZSBub25jZQ==", out) == 0,
	    "accept computed");
	is_str(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455's example");
	is_int(accepted("HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
	                "websocket\r\nConnection: Upgrade\r\n"
	                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	                "\r\n",
	           &why),
	    1, "the right 101 completes it");
	is_int(accepted("HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
	                "websocket\r\nConnection: Upgrade\r\n"
	                "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
	                "\r\n",
	           &why),
	    0, "a wrong Accept does not");
	is_int(accepted("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
	                "Connection: Upgrade\r\n"
	                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	                "\r\n",
	           &why),
	    0, "another protocol does not");
	is_int(accepted("HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
	                "websocket\r\n"
	                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	                "\r\n",
	           &why),
	    0, "no Connection: upgrade does not");
}

int
main(void)
{
	test_ask();
	test_origin();
	test_accept();
	return done_testing();
}
