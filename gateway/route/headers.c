/* SPDX-License-Identifier: ISC */
/*
 * headers.c: what a header is to gatehouse.  Security: a client must never
 * be able to send a header the upstream would read as one gatehouse set,
 * so every gatehouse-owned name is classed as such whatever its case, and
 * with '_' for '-' (CGI, WSGI and PHP map both to the same variable).
 * X-Forwarded-* and X-Request-Id from the client are believed only from
 * trusted_proxies.  The lines sent upstream are headers_write.c's.
 */
#include <sys/socket.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "http/http1.h"
#include "http/request.h"
#include "http/worker.h"
#include "route/headers.h"

static const struct config_key headers_keys[] = {
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
const struct config_module headers_config_module = {"headers", headers_keys,
    sizeof(headers_keys) / sizeof(headers_keys[0]), NULL, NULL};

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
