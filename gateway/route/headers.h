/* SPDX-License-Identifier: ISC */
/*
 * headers.h: what crosses the gateway in headers (headers.c, and
 * headers_write.c for the lines written).  Incoming: every header
 * gatehouse itself sets is dropped whatever its case or spelling, and
 * hop-by-hop headers go.  Outgoing: X-Forwarded-*, X-Request-Id.  The
 * identity headers are identity.c's.
 */
#ifndef GATEHOUSE_HEADERS_H
#define GATEHOUSE_HEADERS_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "core/config.h"

struct request_ctx;

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module headers_config_module;

/* Whether `addr` (text form) is inside one of cfg's trusted_proxies. */
int headers_peer_trusted(const struct config *cfg, const char *addr);

/* What a header name is to gatehouse (headers_kind), as flags. */
#define HEADERS_HOP 0x01           /* hop-by-hop (RFC 9110 7.6.1) */
#define HEADERS_OWNED 0x02         /* gatehouse sets it; never the client */
#define HEADERS_HOST 0x04          /* Host */
#define HEADERS_LENGTH 0x08        /* Content-Length */
#define HEADERS_EXPECT 0x10        /* Expect */
#define HEADERS_COOKIE 0x20        /* Cookie */
#define HEADERS_AUTHORIZATION 0x40 /* Authorization */
#define HEADERS_DATE 0x80          /* Date */

/*
 * Classify the header name name[0..n) (any case, '_' read as '-', so
 * x_forwarded_user and X-FORWARDED-USER are both caught).  Returns the
 * HEADERS_* flags that apply, 0 for an ordinary header.
 */
unsigned int headers_kind(const char *name, size_t n);

/*
 * Whether a header name is hop-by-hop (RFC 9110 7.6.1) or named by the
 * message's Connection header `connection` (may be NULL).
 */
int headers_is_hop_by_hop(const char *name, const char *connection);

/*
 * Whether a client-sent header must be dropped because gatehouse owns its
 * name: compared case-insensitively with '_' taken as '-', so
 * x_forwarded_user and X-FORWARDED-USER are both caught.
 */
int headers_is_owned(const char *name);

/* Whether a header value can be passed on as it is: no control character
 * but tab. */
int headers_value_ok(const char *s);

/* Set rq->rq_id from a trusted X-Request-Id or a fresh random one. */
void headers_request_id(struct request_ctx *rq);

/* --- writing header lines (headers_write.c) ---------------------------- */

/*
 * Header lines written straight into an evbuffer's reserved space: one
 * reservation instead of an evbuffer_add per piece.  Nothing else may
 * touch the evbuffer between _start and _end.
 */
struct headers_writer {
	struct evbuffer *hw_out;
	struct evbuffer_iovec hw_vec;
	size_t hw_len;
};

void headers_writer_start(
    struct headers_writer *w, struct evbuffer *out, size_t hint);
void headers_writer_add(struct headers_writer *w, const void *p, size_t n);
/* "name: value\r\n". */
void headers_writer_field(struct headers_writer *w, const char *name, size_t nl,
    const char *value, size_t vl);
void headers_writer_end(struct headers_writer *w);

/* Decimal digits of v into buf (at least 21 bytes), NUL-terminated;
 * returns their number. */
size_t headers_u64(char *buf, uint64_t v);

/*
 * Append the request head's header lines for the upstream to `w`:
 * the client's headers less hop-by-hop and owned ones, then the identity
 * block (rq_upstream_hdrs when set, else the session's), Host: upstream_host
 * (the upstream's, borrowed), X-Forwarded-For/-Proto/-Host (taken from the
 * client only when rq_peer_trusted), X-Request-Id and Content-Length: body_len
 * (when there is a body, or the method has one).  Returns 0, or -1 when a
 * client header is unusable (the caller answers 400).
 */
int headers_upstream_request(struct request_ctx *rq, struct headers_writer *w,
    const char *upstream_host, int64_t body_len, int has_body);

#endif
