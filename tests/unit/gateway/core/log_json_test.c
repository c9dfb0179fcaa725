/* SPDX-License-Identifier: ISC */
/* log_json_test.c: JSON log lines: escaping, fields, truncation. */
#include <stdlib.h>
#include <string.h>

#include "core/log_json.h"
#include "core/utf8.h"
#include "tap.h"

/* --- a strict checker of what the writer may produce: one object of
 * string keys and string or number values, then a newline. ------------ */

static const char *
jv_string(const char *p)
{
	const unsigned char *u;
	size_t n;
	int i;

	if (*p++ != '"')
		return NULL;
	for (;;) {
		u = (const unsigned char *)p;
		if (*u == '"')
			return p + 1;
		if (*u < 0x20 || *u == 0x7f)
			return NULL;
		if (*u == '\\') {
			p++;
			if (*p == 'u') {
				for (i = 1; i <= 4; i++)
					if (strchr("0123456789abcdef", p[i]) ==
					        NULL ||
					    p[i] == '\0')
						return NULL;
				p += 5;
			} else if (*p != '\0' &&
			    strchr("\"\\/bfnrt", *p) != NULL)
				p++;
			else
				return NULL;
			continue;
		}
		if (*u < 0x80) {
			p++;
			continue;
		}
		n = utf8_seq_len(u, strlen(p));
		if (n == 0)
			return NULL;
		p += n;
	}
}

static const char *
jv_number(const char *p)
{
	const char *s = p;

	if (*p == '-')
		p++;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > s ? p : NULL;
}

/* 1 if line (NUL-terminated) is exactly one valid JSON object line. */
static int
jv_line(const char *p)
{
	if (*p++ != '{')
		return 0;
	if (*p == '}')
		return strcmp(p, "}\n") == 0;
	for (;;) {
		p = jv_string(p);
		if (p == NULL || *p++ != ':')
			return 0;
		p = *p == '"' ? jv_string(p) : jv_number(p);
		if (p == NULL)
			return 0;
		if (*p == '}')
			return strcmp(p, "}\n") == 0;
		if (*p++ != ',')
			return 0;
	}
}

static const char *
esc(const char *s)
{
	static char buf[512];
	size_t len = 0;

	log_json_escape(buf, sizeof(buf), &len, 1, s, strlen(s));
	buf[len] = '\0';
	return buf;
}

static void
test_escape(void)
{
	char buf[12];
	size_t len = 0;

	is_str(esc("plain text"), "plain text", "ASCII passes");
	is_str(esc("a\"b\\c"), "a\\\"b\\\\c", "quote and backslash");
	is_str(esc("\n\r\t\b\f"), "\\n\\r\\t\\b\\f", "short escapes");
	is_str(esc("\x01\x1f\x7f"), "\\u0001\\u001f\\u007f",
	    "other controls and DEL as \\u00XX");
	is_str(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e"),
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e",
	    "well-formed UTF-8 passes unchanged");
	is_str(esc("\xe2\x80\xa8|\xe2\x80\xa9"), "\\u2028|\\u2029",
	    "line and paragraph separators escaped");
	is_str(esc("a\xff"
	           "b"),
	    "a\\ufffdb", "a stray byte becomes U+FFFD");
	is_str(esc("\xc3"), "\\ufffd", "a truncated sequence");
	is_str(esc("\xc0\xaf"), "\\ufffd\\ufffd", "an overlong '/'");
	is_str(esc("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd", "a surrogate");
	is_str(esc("\xf4\x90\x80\x80"), "\\ufffd\\ufffd\\ufffd\\ufffd",
	    "past U+10FFFF");
	is_str(esc("\x80\xbf"), "\\ufffd\\ufffd", "lone continuation bytes");
	/* Cut at a character, never inside an escape or a sequence. */
	is_int(
	    log_json_escape(buf, sizeof(buf), &len, 1, "abc\n\xc3\xa9\x01", 7),
	    -1, "stops when full");
	buf[len] = '\0';
	is_str(buf, "abc\\n\xc3\xa9", "cut between characters");
}

static void
test_line_fields(void)
{
	char buf[2048];
	size_t n;

	n = log_json_line(buf, sizeof(buf), "T", "info",
	    "callback id=abc result=ok user=\"x y\"", NULL);
	is_str(buf,
	    "{\"ts\":\"T\",\"level\":\"info\",\"event\":\"callback\","
	    "\"request_id\":\"abc\",\"result\":\"ok\",\"user\":\"x y\"}\n",
	    "event and fields; id is request_id");
	is_int(n, strlen(buf), "length returned");

	log_json_line(buf, sizeof(buf), "T", "info",
	    "listening on 127.0.0.1:80 with 2 workers", NULL);
	is_str(buf,
	    "{\"ts\":\"T\",\"level\":\"info\",\"event\":\"listening\","
	    "\"msg\":\"listening on 127.0.0.1:80 with 2 workers\"}\n",
	    "free text: first word is the event, the text is msg");

	log_json_line(
	    buf, sizeof(buf), "T", "warn", "reload: bad line 3 x=1", NULL);
	is_str(buf,
	    "{\"ts\":\"T\",\"level\":\"warn\",\"event\":\"reload\","
	    "\"msg\":\"reload: bad line 3 x=1\",\"x\":\"1\"}\n",
	    "a colon after the event word; fields of mixed text kept");

	log_json_line(buf, sizeof(buf), "T", "warn", "bind 1.2.3.4:80",
	    "Address already in use");
	is_str(buf,
	    "{\"ts\":\"T\",\"level\":\"warn\",\"event\":\"bind\","
	    "\"msg\":\"bind 1.2.3.4:80\",\"error\":\"Address already in "
	    "use\"}\n",
	    "errno text as error");

	log_json_line(buf, sizeof(buf), "T", "info",
	    "x level=evil ts=1 event=e msg=m error=z a=1 a=2 id=q "
	    "request_id=r",
	    NULL);
	is_str(buf,
	    "{\"ts\":\"T\",\"level\":\"info\",\"event\":\"x\",\"a\":\"1\","
	    "\"request_id\":\"q\"}\n",
	    "a field never replaces the line's own or repeats a key");

	log_json_line(buf, sizeof(buf), "T", "info",
	    "deny path=\"/a\"b\" rule=\"unterminated", NULL);
	ok(jv_line(buf), "odd quoting still valid JSON: %s", buf);

	log_json_line(buf, sizeof(buf), "T", "info", "", NULL);
	is_str(buf, "{\"ts\":\"T\",\"level\":\"info\",\"event\":\"message\"}\n",
	    "empty message");
	log_json_line(buf, sizeof(buf), "T", "info", "SIGTERM: draining", NULL);
	ok(strstr(buf, "\"event\":\"SIGTERM\"") != NULL, "SIGTERM event");
}

static void
test_access(void)
{
	struct log_access_rec r;
	char buf[2048];

	memset(&r, 0, sizeof(r));
	r.la_id = "0a1b";
	r.la_action = "proxy";
	r.la_client = "127.0.0.1";
	r.la_method = "GET";
	r.la_path = "/p\"\n\xff";
	r.la_status = 200;
	r.la_bytes = 12;
	r.la_user = "sub-1";
	r.la_route = "/p/*";
	r.la_route_line = 7;
	r.la_up_ms = 1.25;
	r.la_ms = 2.5;
	log_json_access(buf, sizeof(buf), "T", &r);
	is_str(buf,
	    "{\"ts\":\"T\",\"level\":\"info\",\"event\":\"access\","
	    "\"request_id\":\"0a1b\",\"action\":\"proxy\",\"client\":"
	    "\"127.0.0.1\",\"method\":\"GET\",\"route\":\"/p/*\",\"status\":"
	    "200,\"user\":\"sub-1\",\"duration_ms\":2.500,\"upstream_ms\":"
	    "1.250,\"bytes\":12,\"route_line\":7,\"path\":\"/p\\\"\\n\\ufffd\"}"
	    "\n",
	    "access line: typed fields, path escaped");
	r.la_user = "";
	r.la_up_ms = -1;
	r.la_route_line = 0;
	r.la_deny = "role:Admin";
	log_json_access(buf, sizeof(buf), "T", &r);
	ok(strstr(buf, "\"user\"") == NULL &&
	        strstr(buf, "upstream_ms") == NULL &&
	        strstr(buf, "route_line") == NULL &&
	        strstr(buf, "\"deny\":\"role:Admin\"") != NULL,
	    "optional fields left out, deny in");
}

/* Every size of buffer, every random message: still one valid line. */
static void
test_always_valid(void)
{
	char msg[600], buf[1024];
	size_t size, i, n;
	int bad = 0, k;

	srand(7);
	for (k = 0; k < 3000; k++) {
		n = (size_t)(rand() % (int)(sizeof(msg) - 1));
		for (i = 0; i < n; i++) {
			msg[i] = (char)(rand() % 255 + 1);
			/* Plenty of the characters the parser looks at. */
			if (rand() % 4 == 0)
				msg[i] = " =\"a\\"[rand() % 5];
		}
		msg[n] = '\0';
		size = 64 + (size_t)(rand() % 900);
		n = log_json_line(buf, size, "2026-01-01T00:00:00.000Z", "info",
		    msg, k % 3 == 0 ? msg : NULL);
		if (n >= size || buf[n] != '\0' || !jv_line(buf))
			bad++;
	}
	is_int(bad, 0, "3000 random messages, each a valid JSON line");
	for (size = 64; size < 400; size++) {
		log_json_line(buf, size, "T", "info",
		    "refused id=abcdef client=127.0.0.1 reason=\"\xe2\x82\xac"
		    "\xe2\x82\xac\xe2\x82\xac\\\\\\\\\x01\x01\x01\xff\xff\" "
		    "tail words here",
		    "errno text");
		if (!jv_line(buf) || strlen(buf) >= size)
			bad++;
	}
	is_int(bad, 0, "cut at every size from 64 to 400: valid JSON");
}

int
main(void)
{
	test_escape();
	test_line_fields();
	test_access();
	test_always_valid();
	return done_testing();
}
