/* SPDX-License-Identifier: ISC */
/*
 * headers.c: headers in and out.  Security: a client must never be able to
 * send a header the upstream would read as one gatehouse set, so every
 * gatehouse-owned name is dropped whatever its case, and with '_' for '-'
 * (CGI, WSGI and PHP map both to the same variable).  X-Forwarded-* from
 * the client are believed only from trusted_proxies.  The identity headers
 * are identity.c's.
 */
#include <sys/socket.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "config.h"
#include "headers.h"
#include "http1.h"
#include "request.h"
#include "server.h"
#include "session.h"

const struct config_key headers_keys[] = {
    {"forward_access_token", config_parse_bool,
        offsetof(struct config, cf_forward_access_token), "off",
        "Send the user's access token upstream as "
        "X-MS-TOKEN-AAD-ACCESS-TOKEN (refreshed before it expires).",
        0},
    {"forward_authorization", config_parse_bool,
        offsetof(struct config, cf_forward_authorization), "off",
        "With forward_access_token, also send it as Authorization: "
        "Bearer (replacing the client's).",
        0},
    {"trusted_proxies", config_parse_cidrs, offsetof(struct config, cf_trusted),
        "",
        "Addresses or CIDR blocks (space or comma separated) whose "
        "X-Forwarded-* and X-Request-Id headers are believed; none by "
        "default.",
        0},
};
const size_t headers_nkeys = sizeof(headers_keys) / sizeof(headers_keys[0]);

int
headers_peer_trusted(const struct config *cfg, const char *addr)
{
	return config_cidrs_contains(&cfg->cf_trusted, addr);
}

/* Lower-case name with '_' read as '-', for comparisons; n is the
 * name's length, the folded copy is at most size - 1 bytes of it. */
static size_t
headers_fold(const char *name, size_t n, char *out, size_t size)
{
	size_t i;

	for (i = 0; i < n && i + 1 < size; i++)
		out[i] = name[i] == '_'
		    ? '-'
		    : (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32
		                                              : name[i]);
	out[i] = '\0';
	return i;
}

#define HEADERS_IS(f, n, lit)                                                  \
	((n) == sizeof(lit) - 1 && memcmp((f), (lit), sizeof(lit) - 1) == 0)

unsigned int
headers_kind(const char *name, size_t n)
{
	char f[64];
	size_t fl;

	if (n >= sizeof(f)) {
		/* Only the owned prefixes are that long. */
		headers_fold(name, n, f, sizeof(f));
		fl = n;
	} else
		fl = headers_fold(name, n, f, sizeof(f));
	if (f[0] == 'x' && f[1] == '-') {
		if (strncmp(f, "x-forwarded-", 12) == 0) {
			const char *t = f + 12;
			size_t tl = fl - 12;

			if (HEADERS_IS(t, tl, "for") ||
			    HEADERS_IS(t, tl, "host") ||
			    HEADERS_IS(t, tl, "proto") ||
			    HEADERS_IS(t, tl, "port") ||
			    HEADERS_IS(t, tl, "prefix") ||
			    HEADERS_IS(t, tl, "user") ||
			    HEADERS_IS(t, tl, "email") ||
			    HEADERS_IS(t, tl, "groups") ||
			    HEADERS_IS(t, tl, "preferred-username") ||
			    HEADERS_IS(t, tl, "access-token") ||
			    HEADERS_IS(t, tl, "uri") ||
			    HEADERS_IS(t, tl, "method"))
				return HEADERS_OWNED;
			return 0;
		}
		if (strncmp(f, "x-ms-client-principal", 21) == 0 ||
		    strncmp(f, "x-ms-token-", 11) == 0 ||
		    strncmp(f, "x-auth-request-", 15) == 0 ||
		    strncmp(f, "x-gatehouse-", 12) == 0 ||
		    HEADERS_IS(f, fl, "x-real-ip") ||
		    HEADERS_IS(f, fl, "x-request-id") ||
		    HEADERS_IS(f, fl, "x-original-uri") ||
		    HEADERS_IS(f, fl, "x-original-url"))
			return HEADERS_OWNED;
		return 0;
	}
	switch (fl) {
	case 2:
		return HEADERS_IS(f, fl, "te") ? HEADERS_HOP : 0;
	case 4:
		return HEADERS_IS(f, fl, "host") ? HEADERS_HOST
		    : HEADERS_IS(f, fl, "date")  ? HEADERS_DATE
		                                 : 0;
	case 6:
		return HEADERS_IS(f, fl, "cookie") ? HEADERS_COOKIE
		    : HEADERS_IS(f, fl, "expect")  ? HEADERS_EXPECT
		                                   : 0;
	case 7:
		return HEADERS_IS(f, fl, "trailer") ||
		        HEADERS_IS(f, fl, "upgrade")
		    ? HEADERS_HOP
		    : 0;
	case 9:
		return HEADERS_IS(f, fl, "forwarded") ? HEADERS_OWNED : 0;
	case 10:
		return HEADERS_IS(f, fl, "connection") ||
		        HEADERS_IS(f, fl, "keep-alive")
		    ? HEADERS_HOP
		    : 0;
	case 13:
		return HEADERS_IS(f, fl, "authorization")
		    ? HEADERS_AUTHORIZATION
		    : 0;
	case 14:
		return HEADERS_IS(f, fl, "content-length") ? HEADERS_LENGTH : 0;
	case 17:
		return HEADERS_IS(f, fl, "transfer-encoding") ? HEADERS_HOP : 0;
	default:
		break;
	}
	return strncmp(f, "proxy-", 6) == 0 ? HEADERS_HOP : 0;
}

int
headers_is_hop_by_hop(const char *name, const char *connection)
{
	return (headers_kind(name, strlen(name)) & HEADERS_HOP) != 0 ||
	    (connection != NULL && http1_list_has(connection, name));
}

int
headers_is_owned(const char *name)
{
	/* Every header gatehouse sets or reads as a statement from itself
	 * or a trusted proxy. */
	return (headers_kind(name, strlen(name)) & HEADERS_OWNED) != 0;
}

int
headers_value_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return 0;
	return 1;
}

void
headers_request_id(struct request_ctx *rq)
{
	struct worker *w = rq->rq_worker;
	const char *in;
	size_t n;
	uint64_t x;

	if (rq->rq_peer_trusted) {
		in = request_header(rq, "X-Request-Id");
		n = in == NULL ? 0 : strlen(in);
		if (n > 0 && n < sizeof(rq->rq_id) && http1_is_token(in, n)) {
			memcpy(rq->rq_id, in, n + 1);
			return;
		}
	}
	/* A per-worker random seed and a counter: unique, unguessable
	 * enough for correlation, and free of syscalls per request. */
	x = w->w_idseed ^ (++w->w_reqseq * 0x9e3779b97f4a7c15ULL);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	/* "%02x%014llx" of the worker id and 56 bits of x, by hand: this is
	 * on every request. */
	{
		static const char hex[] = "0123456789abcdef";
		uint64_t v = ((uint64_t)(w->w_id & 0xff) << 56) |
		    (x & 0xffffffffffffffULL);
		int i;

		for (i = 15; i >= 0; i--, v >>= 4)
			rq->rq_id[i] = hex[v & 15];
		rq->rq_id[16] = '\0';
	}
}

void
headers_writer_start(
    struct headers_writer *w, struct evbuffer *out, size_t hint)
{
	w->hw_out = out;
	w->hw_len = 0;
	if (evbuffer_reserve_space(out, (ev_ssize_t)hint, &w->hw_vec, 1) != 1)
		w->hw_vec.iov_base = NULL;
}

void
headers_writer_add(struct headers_writer *w, const void *p, size_t n)
{
	if (w->hw_vec.iov_base != NULL && w->hw_vec.iov_len - w->hw_len < n) {
		w->hw_vec.iov_len = w->hw_len;
		evbuffer_commit_space(w->hw_out, &w->hw_vec, 1);
		headers_writer_start(w, w->hw_out, n > 4096 ? n : 4096);
	}
	if (w->hw_vec.iov_base == NULL) {
		evbuffer_add(w->hw_out, p, n);
		return;
	}
	memcpy((char *)w->hw_vec.iov_base + w->hw_len, p, n);
	w->hw_len += n;
}

void
headers_writer_field(struct headers_writer *w, const char *name, size_t nl,
    const char *value, size_t vl)
{
	if (w->hw_vec.iov_base != NULL &&
	    w->hw_vec.iov_len - w->hw_len >= nl + vl + 4) {
		char *p = (char *)w->hw_vec.iov_base + w->hw_len;

		memcpy(p, name, nl);
		p[nl] = ':';
		p[nl + 1] = ' ';
		memcpy(p + nl + 2, value, vl);
		p[nl + 2 + vl] = '\r';
		p[nl + 3 + vl] = '\n';
		w->hw_len += nl + vl + 4;
		return;
	}
	headers_writer_add(w, name, nl);
	headers_writer_add(w, ": ", 2);
	headers_writer_add(w, value, vl);
	headers_writer_add(w, "\r\n", 2);
}

void
headers_writer_end(struct headers_writer *w)
{
	if (w->hw_vec.iov_base == NULL)
		return;
	w->hw_vec.iov_len = w->hw_len;
	evbuffer_commit_space(w->hw_out, &w->hw_vec, 1);
	w->hw_vec.iov_base = NULL;
}

size_t
headers_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

/*
 * Security: gatehouse's own cookies (the session id, flow and retry
 * cookies) are credentials for the gateway, not for the app; they never
 * reach the upstream or its logs.
 */
static void
headers_cookie_filtered(
    struct headers_writer *w, const struct config *cfg, const char *value)
{
	const char *p = value, *e, *eq;
	size_t cn =
	    cfg->cf_cookie_name != NULL ? strlen(cfg->cf_cookie_name) : 0;
	int n = 0;

	while (*p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		if (*p == '\0')
			break;
		e = p + strcspn(p, ";");
		eq = memchr(p, '=', e - p);
		if (cn > 0 && eq != NULL && (size_t)(eq - p) >= cn &&
		    memcmp(p, cfg->cf_cookie_name, cn) == 0 &&
		    ((size_t)(eq - p) == cn || p[cn] == '_')) {
			p = e;
			continue;
		}
		if (n++ == 0)
			headers_writer_add(w, "Cookie: ", 8);
		else
			headers_writer_add(w, "; ", 2);
		headers_writer_add(w, p, e - p);
		p = e;
	}
	if (n > 0)
		headers_writer_add(w, "\r\n", 2);
}

int
headers_upstream_request(struct request_ctx *rq, struct headers_writer *w,
    int64_t body_len, int has_body)
{
	const struct config *cfg = rq->rq_worker->w_cfg;
	const struct http1_req *in = rq->rq_hreq;
	const struct http1_hdr *h;
	const char *conn = NULL, *xff = NULL, *proto = NULL, *host = NULL;
	const char *ident = NULL;
	unsigned int kind;
	char num[32];
	size_t n;
	int i;

	/* Options named in any Connection line are hop-by-hop. */
	for (i = 0; i < in->hr_nhdrs; i++) {
		h = &in->hr_hdrs[i];
		if (h->hh_nlen == 10 && conn == NULL &&
		    strcasecmp(h->hh_name, "Connection") == 0)
			conn = h->hh_value;
	}
	if (rq->rq_peer_trusted) {
		xff = request_header(rq, "X-Forwarded-For");
		proto = request_header(rq, "X-Forwarded-Proto");
		host = request_header(rq, "X-Forwarded-Host");
	}
	for (i = 0; i < in->hr_nhdrs; i++) {
		h = &in->hr_hdrs[i];
		kind = headers_kind(h->hh_name, h->hh_nlen);
		/* Framing and routing headers are gatehouse's to set, in any
		 * spelling ("Content_Length" too). */
		if ((kind &
		        (HEADERS_HOP | HEADERS_OWNED | HEADERS_HOST |
		            HEADERS_LENGTH | HEADERS_EXPECT)) != 0 ||
		    (conn != NULL &&
		        http1_connection_has(
		            in->hr_hdrs, in->hr_nhdrs, h->hh_name)))
			continue;
		if ((kind & HEADERS_COOKIE) != 0) {
			headers_cookie_filtered(w, cfg, h->hh_value);
			continue;
		}
		/* The gateway's own bearer replaces the client's. */
		if ((kind & HEADERS_AUTHORIZATION) != 0 &&
		    cfg->cf_forward_authorization &&
		    rq->rq_upstream_hdrs != NULL)
			continue;
		headers_writer_field(
		    w, h->hh_name, h->hh_nlen, h->hh_value, h->hh_vlen);
	}
	if (rq->rq_upstream_hdrs != NULL)
		ident = rq->rq_upstream_hdrs;
	else if (rq->rq_session != NULL)
		ident = rq->rq_session->se_ident;
	if (ident != NULL)
		headers_writer_add(w, ident, strlen(ident));
	headers_writer_field(w, "Host", 4, cfg->cf_upstream.cu_hostport,
	    strlen(cfg->cf_upstream.cu_hostport));
	headers_writer_add(w, "X-Forwarded-For: ", 17);
	if (xff != NULL && headers_value_ok(xff)) {
		headers_writer_add(w, xff, strlen(xff));
		headers_writer_add(w, ", ", 2);
	}
	headers_writer_add(w, rq->rq_peer, strlen(rq->rq_peer));
	headers_writer_add(w, "\r\n", 2);
	if (proto != NULL &&
	    (strcmp(proto, "https") == 0 || strcmp(proto, "http") == 0))
		headers_writer_field(
		    w, "X-Forwarded-Proto", 17, proto, strlen(proto));
	else
		headers_writer_add(w, "X-Forwarded-Proto: http\r\n", 25);
	if (host == NULL)
		host = in->hr_host;
	if (host != NULL && host[0] != '\0' && headers_value_ok(host))
		headers_writer_field(
		    w, "X-Forwarded-Host", 16, host, strlen(host));
	headers_writer_field(
	    w, "X-Request-Id", 12, rq->rq_id, strlen(rq->rq_id));
	if (has_body || body_len > 0) {
		n = headers_u64(num, (uint64_t)body_len);
		headers_writer_field(w, "Content-Length", 14, num, n);
	}
	headers_writer_add(w, "\r\n", 2);
	return 0;
}
