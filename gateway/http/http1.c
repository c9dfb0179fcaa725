/* SPDX-License-Identifier: ISC */
/*
 * http1.c: HTTP/1.1 message syntax, strictly (RFC 9110, RFC 9112).  The one
 * parser both sides of the gateway use: client requests and upstream
 * responses.  Security: every rule here closes a way to make two parsers
 * disagree about where a message ends or which header it carries.
 */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "http/http1.h"

#define HTTP1_MAX_METHOD 20
#define HTTP1_MAX_CHUNK_LINE 4096
#define HTTP1_MAX_TRAILER (16 * 1024)

/* tchar (RFC 9110 5.6.2): 1 for the bytes a token may hold. */
static const unsigned char http1_tchar[256] = {
    ['!'] = 1,
    ['#'] = 1,
    ['$'] = 1,
    ['%'] = 1,
    ['&'] = 1,
    ['\''] = 1,
    ['*'] = 1,
    ['+'] = 1,
    ['-'] = 1,
    ['.'] = 1,
    ['^'] = 1,
    ['_'] = 1,
    ['`'] = 1,
    ['|'] = 1,
    ['~'] = 1,
    ['0'] = 1,
    ['1'] = 1,
    ['2'] = 1,
    ['3'] = 1,
    ['4'] = 1,
    ['5'] = 1,
    ['6'] = 1,
    ['7'] = 1,
    ['8'] = 1,
    ['9'] = 1,
    ['A'] = 1,
    ['B'] = 1,
    ['C'] = 1,
    ['D'] = 1,
    ['E'] = 1,
    ['F'] = 1,
    ['G'] = 1,
    ['H'] = 1,
    ['I'] = 1,
    ['J'] = 1,
    ['K'] = 1,
    ['L'] = 1,
    ['M'] = 1,
    ['N'] = 1,
    ['O'] = 1,
    ['P'] = 1,
    ['Q'] = 1,
    ['R'] = 1,
    ['S'] = 1,
    ['T'] = 1,
    ['U'] = 1,
    ['V'] = 1,
    ['W'] = 1,
    ['X'] = 1,
    ['Y'] = 1,
    ['Z'] = 1,
    ['a'] = 1,
    ['b'] = 1,
    ['c'] = 1,
    ['d'] = 1,
    ['e'] = 1,
    ['f'] = 1,
    ['g'] = 1,
    ['h'] = 1,
    ['i'] = 1,
    ['j'] = 1,
    ['k'] = 1,
    ['l'] = 1,
    ['m'] = 1,
    ['n'] = 1,
    ['o'] = 1,
    ['p'] = 1,
    ['q'] = 1,
    ['r'] = 1,
    ['s'] = 1,
    ['t'] = 1,
    ['u'] = 1,
    ['v'] = 1,
    ['w'] = 1,
    ['x'] = 1,
    ['y'] = 1,
    ['z'] = 1,
};

int
http1_is_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!http1_tchar[(unsigned char)s[i]])
			return 0;
	return 1;
}

int
http1_list_has(const char *list, const char *name)
{
	const char *p = list, *e;
	size_t n = strlen(name);

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		e = p;
		while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		if ((size_t)(e - p) == n && strncasecmp(p, name, n) == 0)
			return 1;
		p = e;
	}
	return 0;
}

int
http1_connection_has(const struct http1_hdr *hdrs, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (hdrs[i].hh_nlen == 10 &&
		    strcasecmp(hdrs[i].hh_name, "Connection") == 0 &&
		    http1_list_has(hdrs[i].hh_value, name))
			return 1;
	return 0;
}

ssize_t
http1_head_scan(const char *buf, size_t len, size_t *pos)
{
	const char *nl;
	size_t start = *pos;

	/* Invariant: *pos is the start of a line not yet complete. */
	while (start < len) {
		nl = memchr(buf + start, '\n', len - start);
		if (nl == NULL)
			break;
		if (nl == buf || nl[-1] != '\r' || nl - 1 < buf + start)
			return -1;
		if (nl - 1 == buf + start) /* the empty line */
			return nl + 1 - buf;
		start = nl + 1 - buf;
	}
	*pos = start;
	return 0;
}

/* A field value byte: HTAB, SP, VCHAR or obs-text (RFC 9110 5.5). */
static int
http1_value_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * Parse the field lines of p[0..end) (each "name: value\r\n", then the
 * empty line) into hdrs.  Returns the number of fields seen (stored or
 * not), or -1 on a syntax error with *why set.  *bytes gets the section
 * size as counted for limits.
 */
static int
http1_fields(char *p, char *end, struct http1_hdr *hdrs, int max, int *stored,
    size_t *bytes, const char **why)
{
	char *colon, *v, *ve, *cr;
	int n = 0;

	*stored = 0;
	*bytes = 0;
	for (;;) {
		cr = memchr(p, '\r', end - p);
		if (cr == NULL || cr + 1 >= end || cr[1] != '\n') {
			*why = "bare CR in the header section";
			return -1;
		}
		if (cr == p)
			return n; /* the empty line */
		/* obs-fold: a line that starts with white space continues
		 * the previous field for some parsers and not for others. */
		if (*p == ' ' || *p == '\t') {
			*why = "obs-fold (a folded header line)";
			return -1;
		}
		colon = memchr(p, ':', cr - p);
		/* A name must be a token: "Name : v", "Na me: v" and a NUL
		 * are how a lenient hop reads a different header. */
		if (colon == NULL || !http1_is_token(p, colon - p)) {
			*why = "a header name that is not a token";
			return -1;
		}
		v = colon + 1;
		while (v < cr && (*v == ' ' || *v == '\t'))
			v++;
		for (ve = v; ve < cr; ve++)
			if ((unsigned char)*ve < 0x20 || *ve == 0x7f) {
				if (*ve == '\t')
					continue;
				*why = "a control character in a header value";
				return -1;
			}
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		*bytes += (colon - p) + (ve - v) + 4;
		if (*stored < max) {
			*colon = '\0';
			*ve = '\0';
			hdrs[*stored].hh_name = p;
			hdrs[*stored].hh_nlen = (uint32_t)(colon - p);
			hdrs[*stored].hh_value = v;
			hdrs[*stored].hh_vlen = (uint32_t)(ve - v);
			(*stored)++;
		}
		n++;
		p = cr + 2;
	}
}

/* Content-Length: 1*DIGIT, no sign, no list, at most 18 digits. */
static int
http1_length(const char *v, int64_t *out)
{
	int64_t n = 0;
	size_t i;

	if (*v == '\0')
		return -1;
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] < '0' || v[i] > '9' || i >= 18)
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	*out = n;
	return 0;
}

/* Host: a reg-name, IPv4 or [IPv6] and an optional port; nothing that
 * could make a URL of it point elsewhere. */
static int
http1_host_ok(const char *h)
{
	for (; *h != '\0'; h++)
		if (strchr("/\\@?#%\" <>`{}|^", *h) != NULL ||
		    (unsigned char)*h < 0x21 || (unsigned char)*h > 0x7e)
			return 0;
	return 1;
}

static int
http1_request_line(
    char *buf, char *eol, const struct http1_limits *lim, struct http1_req *r)
{
	char *sp1, *sp2;
	size_t mlen;

	sp1 = memchr(buf, ' ', eol - buf);
	if (sp1 == NULL)
		goto bad;
	mlen = sp1 - buf;
	if (mlen == 0 || mlen > HTTP1_MAX_METHOD || !http1_is_token(buf, mlen))
		goto bad;
	sp2 = memchr(sp1 + 1, ' ', eol - sp1 - 1);
	if (sp2 == NULL || sp2 == sp1 + 1)
		goto bad;
	for (char *t = sp1 + 1; t < sp2; t++)
		if ((unsigned char)*t < 0x21 || (unsigned char)*t > 0x7e)
			goto bad;
	if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 ||
	    sp2[7] != '.' || sp2[6] < '0' || sp2[6] > '9' || sp2[8] < '0' ||
	    sp2[8] > '9')
		goto bad;
	if (sp2[6] != '1' || sp2[8] > '1') {
		r->hr_status = 505;
		r->hr_why = "an HTTP version other than 1.0 and 1.1";
		return -1;
	}
	r->hr_minor = sp2[8] - '0';
	*sp1 = '\0';
	*sp2 = '\0';
	r->hr_method = buf;
	r->hr_target = sp1 + 1;
	r->hr_target_len = sp2 - sp1 - 1;
	if (r->hr_target_len > lim->hl_max_target) {
		r->hr_status = 414;
		r->hr_why = "request target too long";
	}
	return 0;
bad:
	r->hr_status = 400;
	r->hr_why = "a malformed request line";
	return -1;
}

/*
 * Fields a request may carry once (RFC 9110 5.3: a field that is not a
 * list cannot be repeated).  When one of these comes twice, one hop or
 * check may read the first and another the last, so the request is a 400
 * rather than a guess.  Cookie is not here: some clients split it.
 */
static const struct {
	const char *hs_name;
	size_t hs_len;
} http1_singletons[] = {
    /* The credential a bearer route verifies is the one the upstream gets. */
    {"Authorization", 13},
    /* Same, for a proxy in front or behind. */
    {"Proxy-Authorization", 19},
    /* Decides how the callback's form body (and the upstream) reads it. */
    {"Content-Type", 12},
    /* Forward-auth decides on these: the method and path asked about. */
    {"X-Forwarded-Method", 18},
    {"X-Forwarded-Uri", 15},
    {"X-Original-URI", 14},
    /* From a trusted proxy they build redirect and callback URLs. */
    {"X-Forwarded-Host", 16},
    {"X-Forwarded-Proto", 17},
    /* Sign-in and sign-out decide on these. */
    {"Sec-Fetch-Site", 14},
    {"Sec-Fetch-Mode", 14},
};

/* Index of h in http1_singletons, or -1. */
static int
http1_singleton(const struct http1_hdr *h)
{
	size_t i;

	for (i = 0; i < sizeof(http1_singletons) / sizeof(http1_singletons[0]);
	     i++)
		if (http1_singletons[i].hs_len == h->hh_nlen &&
		    strcasecmp(http1_singletons[i].hs_name, h->hh_name) == 0)
			return (int)i;
	return -1;
}

/* Framing and connection headers (RFC 9112 6, 9.6). */
static int
http1_request_fields(const struct http1_limits *lim, struct http1_req *r)
{
	const struct http1_hdr *h;
	int i, te = 0, cl = 0, host = 0, close = 0, keep = 0, s;
	unsigned int seen = 0;

	for (i = 0; i < r->hr_nhdrs; i++) {
		h = &r->hr_hdrs[i];
		if ((s = http1_singleton(h)) != -1) {
			if ((seen & (1u << s)) != 0) {
				r->hr_why = "a header field that may appear "
				            "once is repeated";
				return -1;
			}
			seen |= 1u << s;
		}
		switch (h->hh_nlen) {
		case 4:
			if (strcasecmp(h->hh_name, "Host") != 0)
				break;
			if (++host > 1 || !http1_host_ok(h->hh_value)) {
				r->hr_why = "a repeated or malformed Host";
				return -1;
			}
			r->hr_host = h->hh_value;
			break;
		case 6:
			if (strcasecmp(h->hh_name, "Expect") != 0)
				break;
			if (strcasecmp(h->hh_value, "100-continue") == 0)
				r->hr_continue = 1;
			else if (r->hr_status == 0) {
				r->hr_status = 417;
				r->hr_why = "an expectation other than "
				            "100-continue";
			}
			break;
		case 10:
			if (strcasecmp(h->hh_name, "Connection") != 0)
				break;
			/* Every Connection line counts (RFC 9110 7.6.1): a
			 * close anywhere wins over a keep-alive anywhere. */
			if (http1_list_has(h->hh_value, "close"))
				close = 1;
			if (http1_list_has(h->hh_value, "keep-alive"))
				keep = 1;
			break;
		case 14:
			if (strcasecmp(h->hh_name, "Content-Length") != 0)
				break;
			/* One plain decimal; "+5", "5, 5", two of them: no. */
			if (++cl > 1 ||
			    http1_length(h->hh_value, &r->hr_length) == -1) {
				r->hr_why = "a repeated or malformed "
				            "Content-Length";
				return -1;
			}
			break;
		case 17:
			if (strcasecmp(h->hh_name, "Transfer-Encoding") != 0)
				break;
			/* Only "chunked" alone can be framed reliably. */
			if (++te > 1 || r->hr_minor == 0 ||
			    strcasecmp(h->hh_value, "chunked") != 0) {
				r->hr_why = "a Transfer-Encoding other than "
				            "chunked";
				return -1;
			}
			r->hr_chunked = 1;
			break;
		default:
			break;
		}
	}
	r->hr_close = close || (r->hr_minor == 0 && !keep);
	if (te > 0 && cl > 0) {
		r->hr_why = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	if (r->hr_minor == 1 && host == 0) {
		r->hr_why = "HTTP/1.1 without Host";
		return -1;
	}
	if (r->hr_length > lim->hl_max_body && r->hr_status == 0) {
		r->hr_status = 413;
		r->hr_why = "request body too large";
	}
	return 0;
}

int
http1_method_served(const char *m)
{
	return strcmp(m, "CONNECT") != 0 && strcmp(m, "TRACE") != 0;
}

int
http1_parse_request(
    char *buf, size_t len, const struct http1_limits *lim, struct http1_req *r)
{
	char *eol, *end = buf + len;
	size_t bytes;
	int n;

	r->hr_method = r->hr_target = r->hr_host = NULL;
	r->hr_target_len = 0;
	r->hr_nhdrs = 0;
	r->hr_length = 0;
	r->hr_chunked = r->hr_continue = r->hr_status = 0;
	r->hr_why = NULL;
	r->hr_minor = 1;
	eol = memchr(buf, '\r', len);
	if (eol == NULL || eol + 1 >= end || eol[1] != '\n') {
		r->hr_status = 400;
		r->hr_why = "a malformed request line";
		return -1;
	}
	if (http1_request_line(buf, eol, lim, r) == -1)
		return -1;
	n = http1_fields(eol + 2, end, r->hr_hdrs, r->hr_maxhdrs, &r->hr_nhdrs,
	    &bytes, &r->hr_why);
	if (n == -1)
		goto bad;
	r->hr_close = r->hr_minor == 0;
	if (http1_request_fields(lim, r) == -1)
		goto bad;
	if ((n > lim->hl_max_headers || bytes > lim->hl_max_fields) &&
	    (r->hr_status == 0 || r->hr_status == 413)) {
		r->hr_status = 431;
		r->hr_why = "too many or too large header fields";
	}
	if (r->hr_status == 0 && !http1_method_served(r->hr_method)) {
		r->hr_status = 405;
		r->hr_why = "CONNECT and TRACE are not served";
	}
	return 0;
bad:
	r->hr_status = 400;
	return -1;
}

int
http1_parse_response(char *buf, size_t len, struct http1_resp *p)
{
	char *eol, *end = buf + len;
	const struct http1_hdr *h;
	const char *why, *te = NULL;
	size_t bytes;
	int i, n, cl = 0;

	p->hp_nhdrs = 0;
	p->hp_length = -1;
	p->hp_chunked = p->hp_has_date = 0;
	p->hp_connection = NULL;
	eol = memchr(buf, '\r', len);
	if (eol == NULL || eol + 1 >= end || eol[1] != '\n')
		return -1;
	/* HTTP/1.x SP 3DIGIT [SP reason] */
	if (eol - buf < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' ||
	    buf[7] > '9' || buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' ||
	    buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
	    (eol - buf > 12 && buf[12] != ' '))
		return -1;
	for (char *c = buf + 12; c < eol; c++)
		if (!http1_value_byte((unsigned char)*c))
			return -1;
	p->hp_minor = buf[7] - '0';
	p->hp_status =
	    (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	*eol = '\0';
	p->hp_reason = eol - buf > 12 ? buf + 13 : eol; /* "" in the buffer */
	n = http1_fields(eol + 2, end, p->hp_hdrs, p->hp_maxhdrs, &p->hp_nhdrs,
	    &bytes, &why);
	if (n == -1 || n > p->hp_maxhdrs)
		return -1;
	p->hp_close = p->hp_minor == 0;
	for (i = 0; i < p->hp_nhdrs; i++) {
		h = &p->hp_hdrs[i];
		if (h->hh_nlen == 14 &&
		    strcasecmp(h->hh_name, "Content-Length") == 0) {
			int64_t l;

			/* Repeated equal values are allowed for responses
			 * (RFC 9110 8.6); different ones are not. */
			if (http1_length(h->hh_value, &l) == -1 ||
			    (cl++ > 0 && l != p->hp_length))
				return -1;
			p->hp_length = l;
		} else if (h->hh_nlen == 17 &&
		    strcasecmp(h->hh_name, "Transfer-Encoding") == 0) {
			if (te != NULL)
				return -1;
			te = h->hh_value;
		} else if (h->hh_nlen == 10 &&
		    strcasecmp(h->hh_name, "Connection") == 0) {
			p->hp_connection = h->hh_value;
			if (http1_list_has(h->hh_value, "close"))
				p->hp_close = 1;
		} else if (h->hh_nlen == 4 &&
		    strcasecmp(h->hh_name, "Date") == 0)
			p->hp_has_date = 1;
	}
	if (te != NULL) {
		/* Both framings, or a coding but chunked: how responses get
		 * smuggled onto a pooled connection. */
		if (cl > 0 || strcasecmp(te, "chunked") != 0)
			return -1;
		p->hp_chunked = 1;
	}
	return 0;
}

enum {
	HC_SIZE,
	HC_DATA,
	HC_DATA_CRLF,
	HC_TRAILER,
	HC_DONE,
};

/* One chunk-size line (without its CRLF): 1*HEXDIG [ext]. */
static int
http1_chunk_size(const char *s, const char *e, int64_t *out)
{
	int64_t n = 0;
	int digits = 0, v;

	for (; s < e; s++) {
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
			v = (*s | 0x20) - 'a' + 10;
		else
			break;
		if (++digits > 15)
			return -1;
		n = n * 16 + v;
	}
	if (digits == 0)
		return -1;
	/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ): white
	 * space only before a ';'. */
	if (s < e && (*s == ' ' || *s == '\t')) {
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s == e)
			return -1;
	}
	if (s < e && *s != ';')
		return -1;
	for (; s < e; s++)
		if (!http1_value_byte((unsigned char)*s))
			return -1;
	*out = n;
	return 0;
}

ssize_t
http1_chunked_decode(struct http1_chunked *c, const char *buf, size_t len,
    struct evbuffer *out, int64_t max_body, int *done, int *status)
{
	const char *p = buf, *end = buf + len, *nl;
	size_t n;

	*done = 0;
	*status = 400;
	while (p < end && c->hc_state != HC_DONE) {
		switch (c->hc_state) {
		case HC_SIZE:
		case HC_TRAILER:
			nl = memchr(p, '\n', end - p);
			if (nl == NULL) {
				if ((size_t)(end - p) > HTTP1_MAX_CHUNK_LINE)
					return -1;
				goto more;
			}
			if (nl == p || nl[-1] != '\r')
				return -1; /* bare LF */
			if (memchr(p, '\r', nl - 1 - p) != NULL)
				return -1; /* bare CR */
			if (c->hc_state == HC_TRAILER) {
				c->hc_trailer += nl + 1 - p;
				if (c->hc_trailer > HTTP1_MAX_TRAILER)
					return -1;
				if (nl - 1 == p) {
					c->hc_state = HC_DONE;
				} else {
					const char *colon =
					    memchr(p, ':', nl - 1 - p);

					/* Checked like any field, then
					 * dropped: a trailer never becomes
					 * a header upstream. */
					if (colon == NULL ||
					    !http1_is_token(p, colon - p))
						return -1;
					for (const char *v = colon + 1;
					     v < nl - 1; v++)
						if (!http1_value_byte(
						        (unsigned char)*v))
							return -1;
				}
				p = nl + 1;
				break;
			}
			if (http1_chunk_size(p, nl - 1, &c->hc_left) == -1)
				return -1;
			if (c->hc_total + c->hc_left > max_body) {
				*status = 413;
				return -1;
			}
			c->hc_state = c->hc_left == 0 ? HC_TRAILER : HC_DATA;
			p = nl + 1;
			break;
		case HC_DATA:
			n = (size_t)(end - p) < (uint64_t)c->hc_left
			    ? (size_t)(end - p)
			    : (size_t)c->hc_left;
			if (out != NULL && evbuffer_add(out, p, n) == -1) {
				*status = 500;
				return -1;
			}
			c->hc_left -= n;
			c->hc_total += n;
			p += n;
			if (c->hc_left == 0)
				c->hc_state = HC_DATA_CRLF;
			break;
		case HC_DATA_CRLF:
			if (end - p < 2)
				goto more;
			if (p[0] != '\r' || p[1] != '\n')
				return -1; /* data longer than its size */
			p += 2;
			c->hc_state = HC_SIZE;
			break;
		}
	}
more:
	*done = c->hc_state == HC_DONE;
	return p - buf;
}
