/* SPDX-License-Identifier: ISC */
/*
 * http1.h: HTTP/1.1 message syntax (RFC 9112), strictly.  Pure functions
 * over byte buffers, no I/O: finding the end of a head, parsing a request
 * or response head in place, and decoding a chunked body.  Security: this
 * is where request smuggling is refused.  Anything a lenient peer could
 * read another way (bare LF, obs-fold, a space before the colon, control
 * characters, two framings, a signed or repeated length, a chunk size that
 * is not 1*HEXDIG) is an error here, never "repaired".  Any thread.
 */
#ifndef GATEHOUSE_HTTP1_H
#define GATEHOUSE_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evbuffer;

/* One header field.  Both strings point into the parsed buffer and are
 * NUL-terminated there (borrowed: valid while that buffer is). */
struct http1_hdr {
	const char *hh_name;
	const char *hh_value;
	uint32_t hh_nlen;
	uint32_t hh_vlen;
};

/* Limits a request head is held to; exceeding one is not a syntax error
 * but an answer (414, 431, 413) once the head has been read. */
struct http1_limits {
	size_t hl_max_target; /* request-target bytes (414) */
	size_t hl_max_fields; /* header section bytes (431) */
	int hl_max_headers;   /* header fields (431) */
	int64_t hl_max_body;  /* Content-Length or decoded chunked (413) */
};

/* A parsed request head.  Members use the hr_ prefix. */
struct http1_req {
	const char *hr_method; /* NUL-terminated, in the buffer */
	const char *hr_target; /* NUL-terminated, in the buffer */
	size_t hr_target_len;
	int hr_minor;              /* HTTP/1.<minor>: 0 or 1 */
	struct http1_hdr *hr_hdrs; /* caller's array */
	int hr_nhdrs;
	int hr_maxhdrs;      /* capacity of hr_hdrs */
	const char *hr_host; /* the Host value, or NULL */
	int64_t hr_length;   /* Content-Length, 0 without a body */
	int hr_chunked;      /* Transfer-Encoding: chunked */
	int hr_close;        /* Connection: close (or 1.0 without keep-alive) */
	int hr_continue;     /* Expect: 100-continue */
	int hr_status;       /* 0, or the status to answer (see parse) */
	const char *hr_why;  /* static text for the log when hr_status */
};

/*
 * Look for the end of a head (the empty line) in buf[0..len).  *pos is
 * where the scan resumes (0 on the first call; keep it between calls for
 * the same head).  Returns the head's length including the final CRLF once
 * complete, 0 if more bytes are needed, or -1 when a line ends in a bare LF
 * (refused: RFC 9112 2.2 lets a recipient accept it, and that difference
 * between two parsers is what smuggling uses).
 */
ssize_t http1_head_scan(const char *buf, size_t len, size_t *pos);

/*
 * 0 for a method gatehouse never serves, whatever the routes say: CONNECT
 * (a tunnel to anywhere) and TRACE (echoes the request, cookies included,
 * back to a script); 1 otherwise.  Both are answered 405, by the parser in
 * proxy mode and by forward-auth when a front proxy names them.
 */
int http1_method_served(const char *m);

/*
 * Parse the request head buf[0..len) found by http1_head_scan, in place
 * (names and values are NUL-terminated inside buf).  r->hr_hdrs and
 * r->hr_maxhdrs must be set by the caller; the rest is filled in.
 * Returns 0 when the head is well-formed: then r->hr_status is 0, or an
 * answer the request gets instead of being served, with the head readable
 * (405 CONNECT or TRACE, 413 body too large, 414 target too long, 417
 * unknown expectation, 431 too many or too large fields).  Returns -1 when
 * it is not (r->hr_status 400 or 505, r->hr_why says what): the connection
 * cannot be trusted to be in step and must close.
 */
int http1_parse_request(
    char *buf, size_t len, const struct http1_limits *lim, struct http1_req *r);

/* A parsed response head (an upstream's).  Members use hp_. */
struct http1_resp {
	int hp_status;
	int hp_minor;
	const char *hp_reason; /* NUL-terminated, may be empty */
	struct http1_hdr *hp_hdrs;
	int hp_nhdrs;
	int hp_maxhdrs;
	int64_t hp_length;         /* Content-Length, -1 when absent */
	int hp_chunked;            /* Transfer-Encoding: chunked */
	int hp_close;              /* Connection: close, or HTTP/1.0 */
	const char *hp_connection; /* a Connection value, or NULL */
	int hp_has_date;
};

/*
 * Parse a response head in place, with the same strictness as requests
 * (and no obs-fold, no two framings, no coding but chunked).  Returns 0, or
 * -1 when the upstream's answer is not a well-formed HTTP/1.x head (the
 * gateway answers 502 and does not reuse the connection).
 */
int http1_parse_response(char *buf, size_t len, struct http1_resp *p);

/* Incremental chunked-body decoder (RFC 9112 7.1).  Zero it to start. */
struct http1_chunked {
	int hc_state;
	int64_t hc_left;   /* bytes left in the current chunk */
	int64_t hc_total;  /* decoded so far */
	size_t hc_trailer; /* trailer section bytes so far */
};

/*
 * Decode from buf[0..len): chunk data is appended to `out` (NULL: counted
 * and dropped), trailer fields are checked and dropped.  Returns the bytes
 * consumed (the rest, a line not yet complete, is offered again with more
 * after it), or -1 on an error with *status set (400 malformed, 413 over
 * max_body).  *done is set once the last chunk and trailers are in.
 * A chunk-size line is 1*HEXDIG, optionally followed by extensions, then
 * CRLF; "+5", "0x5", " 5", "-0", a bare LF and a size over 2^60 are refused.
 */
ssize_t http1_chunked_decode(struct http1_chunked *c, const char *buf,
    size_t len, struct evbuffer *out, int64_t max_body, int *done, int *status);

/* 1 if s[0..n) is an RFC 9110 token (tchar+). */
int http1_is_token(const char *s, size_t n);

/* 1 if the comma-separated list `list` contains token `name` (any case). */
int http1_list_has(const char *list, const char *name);

/*
 * 1 if any of the Connection fields among hdrs[0..n) names `name` (RFC
 * 9110 7.6.1: every Connection line counts, not only the first).
 */
int http1_connection_has(const struct http1_hdr *hdrs, int n, const char *name);

#endif
