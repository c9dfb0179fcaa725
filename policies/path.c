/* SPDX-License-Identifier: ISC */
/*
 * path.c: request-path normalisation (see path.h for the contract).  Two
 * passes over one buffer: percent-decoding with validation, then dot
 * segments and duplicate slashes resolved in place.
 */
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "path.h"

/* UTF-8 decoding state across consecutive escaped bytes >= 0x80. */
struct path_utf8 {
	int pu_need;         /* continuation bytes still expected */
	unsigned char pu_lo; /* allowed range of the next byte */
	unsigned char pu_hi;
};

static int
path_unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/*
 * Feed one escaped byte >= 0x80 to the UTF-8 validator (Unicode table 3-7
 * of well-formed sequences).  Security: overlong forms (%C0%AF = '/',
 * %C0%AE = '.', %E0%80%AF = '/') are what old decoders turned into path
 * separators; we refuse every ill-formed sequence so that no decoder
 * upstream can read one as '/', '.' or '\'.  Returns 0 or -1.
 */
static int
path_utf8_feed(struct path_utf8 *u, unsigned char b)
{
	if (u->pu_need > 0) {
		if (b < u->pu_lo || b > u->pu_hi)
			return -1;
		u->pu_need--;
		u->pu_lo = 0x80;
		u->pu_hi = 0xbf;
		return 0;
	}
	u->pu_lo = 0x80;
	u->pu_hi = 0xbf;
	if (b >= 0xc2 && b <= 0xdf)
		u->pu_need = 1;
	else if (b == 0xe0) {
		u->pu_need = 2;
		u->pu_lo = 0xa0;
	} else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef)
		u->pu_need = 2;
	else if (b == 0xed) {
		u->pu_need = 2; /* no surrogates */
		u->pu_hi = 0x9f;
	} else if (b == 0xf0) {
		u->pu_need = 3;
		u->pu_lo = 0x90;
	} else if (b >= 0xf1 && b <= 0xf3)
		u->pu_need = 3;
	else if (b == 0xf4) {
		u->pu_need = 3;
		u->pu_hi = 0x8f;
	} else
		return -1; /* stray continuation, C0, C1, F5..FF */
	return 0;
}

/*
 * Pass 1: copy raw into out, decoding unreserved escapes and validating
 * everything else.  out has room for strlen(raw) + 1.
 */
static int
path_decode(const char *raw, char *out, struct gh_error *err)
{
	struct path_utf8 u;
	const unsigned char *r = (const unsigned char *)raw;
	size_t w = 0;
	int hi, lo, v;

	memset(&u, 0, sizeof(u));
	for (; *r != '\0'; r++) {
		if (*r != '%') {
			if (u.pu_need > 0)
				goto badutf8;
			/* Security: a raw '\' is a separator on some
			 * upstreams (IIS, Windows file servers). */
			if (*r < 0x20 || *r == 0x7f) {
				gh_error_set(err, "path_control",
				    "control character in path");
				return -1;
			}
			if (*r >= 0x80) {
				gh_error_set(err, "path_non_ascii",
				    "raw non-ASCII byte in path");
				return -1;
			}
			if (*r == '\\' || *r == ' ' || *r == '?' || *r == '#') {
				gh_error_set(err, "path_bad_char",
				    "character '%c' not allowed in path", *r);
				return -1;
			}
			out[w++] = (char)*r;
			continue;
		}
		hi = crypto_hex_value(r[1]);
		lo = hi == -1 ? -1 : crypto_hex_value(r[2]);
		if (hi == -1 || lo == -1) {
			gh_error_set(err, "path_bad_escape",
			    "invalid percent escape in path");
			return -1;
		}
		v = hi * 16 + lo;
		r += 2;
		if (v >= 0x80) {
			if (path_utf8_feed(&u, (unsigned char)v) == -1)
				goto badutf8;
		} else if (u.pu_need > 0)
			goto badutf8;
		if (v == 0 || v < 0x20 || v == 0x7f) {
			gh_error_set(err, "path_control",
			    "encoded control character in path");
			return -1;
		}
		/* Security: an encoded separator would be one path to us and
		 * another to an upstream that decodes before routing. */
		if (v == '/' || v == '\\') {
			gh_error_set(err, "path_encoded_slash",
			    "encoded '%c' in path", v);
			return -1;
		}
		if (path_unreserved(v)) {
			out[w++] = (char)v;
			continue;
		}
		out[w++] = '%';
		out[w++] = "0123456789ABCDEF"[v >> 4];
		out[w++] = "0123456789ABCDEF"[v & 15];
	}
	if (u.pu_need > 0)
		goto badutf8;
	out[w] = '\0';
	return 0;
badutf8:
	gh_error_set(err, "path_bad_utf8",
	    "percent-encoded bytes are not well-formed UTF-8");
	return -1;
}

/*
 * Security: ';' parameters are stripped by servlet containers before
 * routing, and some frameworks decode %3B first and strip after, so both
 * end a segment's name.
 */
size_t
path_segment_name_len(const char *seg, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (seg[i] == ';')
			return i;
		if (seg[i] == '%' && i + 2 < len && seg[i + 1] == '3' &&
		    (seg[i + 2] == 'B' || seg[i + 2] == 'b'))
			return i;
	}
	return len;
}

static int
path_is_dots(const char *s, size_t len)
{
	return (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.');
}

/*
 * Pass 2, in place: remove dot segments and empty segments.  The write
 * position never passes the read position, since every segment written
 * consumed at least its own bytes and one '/'.
 */
static int
path_resolve(char *buf, struct gh_error *err)
{
	size_t r = 0, w = 0, len, keylen;
	int slash_end = 0;

	while (buf[r] != '\0') {
		while (buf[r] == '/')
			r++;
		if (buf[r] == '\0')
			break;
		len = strcspn(buf + r, "/");
		keylen = path_segment_name_len(buf + r, len);
		slash_end = buf[r + len] == '/';
		if (len == 1 && buf[r] == '.') {
			slash_end = 1;
		} else if (len == 2 && buf[r] == '.' && buf[r + 1] == '.') {
			if (w == 0) {
				gh_error_set(err, "path_above_root",
				    "'..' climbs above the root");
				return -1;
			}
			while (w > 0 && buf[w - 1] != '/')
				w--;
			w--; /* the '/' before the removed segment */
			slash_end = 1;
		} else if (keylen == 0 || path_is_dots(buf + r, keylen)) {
			/* Security: servlet containers strip ";params"
			 * before routing, so /..;/ would be '..' to them
			 * and /;x/ an empty segment, while we saw names. */
			gh_error_set(err, "path_param_segment",
			    "empty or dot segment with ';' parameters");
			return -1;
		} else {
			buf[w++] = '/';
			memmove(buf + w, buf + r, len);
			w += len;
		}
		r += len;
	}
	if (w == 0 || slash_end)
		buf[w++] = '/';
	buf[w] = '\0';
	return 0;
}

static void
path_fold(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '%' && s[1] != '\0' && s[2] != '\0')
			s += 2;
		else if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

int
path_normalise(const char *raw_path, int flags, char *out, size_t outsize,
    struct gh_error *err)
{
	if (raw_path == NULL || raw_path[0] != '/') {
		gh_error_set(
		    err, "path_not_absolute", "path must start with '/'");
		goto fail;
	}
	if (strlen(raw_path) >= outsize) {
		gh_error_set(err, "path_too_long", "path too long");
		goto fail;
	}
	if (path_decode(raw_path, out, err) == -1)
		goto fail;
	if (path_resolve(out, err) == -1)
		goto fail;
	if (flags & PATH_FOLD_CASE)
		path_fold(out);
	return 0;
fail:
	if (outsize > 0)
		out[0] = '\0';
	return -1;
}

char *
path_normalise_dup(const char *raw_path, int flags, struct gh_error *err)
{
	char *out;
	size_t size;

	if (raw_path == NULL) {
		gh_error_set(
		    err, "path_not_absolute", "path must start with '/'");
		return NULL;
	}
	size = strlen(raw_path) + 2; /* room for "/" when raw is "" */
	out = malloc(size);
	if (out == NULL) {
		gh_error_set(err, "path_nomem", "out of memory");
		return NULL;
	}
	if (path_normalise(raw_path, flags, out, size, err) == -1) {
		free(out);
		out = NULL;
	}
	return out;
}

int
path_target_normalise(
    const char *target, char **normpath, char **path, struct gh_error *err)
{
	const char *q = strchr(target, '?');
	size_t rl = q != NULL ? (size_t)(q - target) : strlen(target), nl, ql;
	char *raw = NULL;

	*normpath = *path = NULL;
	if (q == NULL) {
		*normpath = path_normalise_dup(target, 0, err);
	} else {
		raw = strndup(target, rl);
		if (raw == NULL) {
			gh_error_set(err, "path_nomem", "out of memory");
			return -1;
		}
		*normpath = path_normalise_dup(raw, 0, err);
		free(raw);
	}
	if (*normpath == NULL)
		return -1;
	/* The query goes on exactly as sent: only the path is matched. */
	nl = strlen(*normpath);
	ql = q != NULL ? strlen(q) : 0;
	*path = malloc(nl + ql + 1);
	if (*path == NULL) {
		free(*normpath);
		*normpath = NULL;
		gh_error_set(err, "path_nomem", "out of memory");
		return -1;
	}
	memcpy(*path, *normpath, nl);
	memcpy(*path + nl, q != NULL ? q : "", ql + 1);
	return 0;
}
