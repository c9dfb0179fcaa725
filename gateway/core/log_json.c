/* SPDX-License-Identifier: ISC */
/* log_json.c: log lines as one JSON object each, escaped byte by byte. */
#include <stdio.h>
#include <string.h>

#include "core/log_json.h"
#include "core/utf8.h"

/* Room always kept for the closing "}\n" and a NUL. */
#define LJ_TAIL 3
#define LJ_MAX_TOKENS 64

/* A line being written. */
struct lj {
	char *lj_buf;
	size_t lj_size;
	size_t lj_len;
	int lj_full; /* something did not fit: no more fields */
};

int
log_json_escape(
    char *buf, size_t size, size_t *len, size_t keep, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, l = *len, ul, adv, sl;
	const char *u;
	char tmp[8];

	while (i < n) {
		unsigned char c = p[i];

		adv = 1;
		ul = 2;
		switch (c) {
		case '"':
			u = "\\\"";
			break;
		case '\\':
			u = "\\\\";
			break;
		case '\n':
			u = "\\n";
			break;
		case '\r':
			u = "\\r";
			break;
		case '\t':
			u = "\\t";
			break;
		case '\b':
			u = "\\b";
			break;
		case '\f':
			u = "\\f";
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				/* DEL too: a log read on a terminal. */
				snprintf(tmp, sizeof(tmp), "\\u%04x", c);
				u = tmp;
				ul = 6;
			} else if (c < 0x80) {
				u = (const char *)p + i;
				ul = 1;
			} else if ((sl = utf8_seq_len(p + i, n - i)) > 0) {
				u = (const char *)p + i;
				ul = adv = sl;
				/* U+2028 and U+2029 end a line in JavaScript.
				 */
				if (sl == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
				    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
					u = p[i + 2] == 0xa8 ? "\\u2028"
					                     : "\\u2029";
					ul = 6;
				}
			} else {
				/* Not UTF-8: the replacement character, so
				 * the line stays valid and the byte shows
				 * it was there. */
				u = "\\ufffd";
				ul = 6;
			}
			break;
		}
		if (l + ul + keep > size) {
			*len = l;
			return -1;
		}
		memcpy(buf + l, u, ul);
		l += ul;
		i += adv;
	}
	*len = l;
	return 0;
}

static void
lj_raw(struct lj *j, const char *s)
{
	size_t n = strlen(s);

	if (j->lj_full || j->lj_len + n + LJ_TAIL > j->lj_size) {
		j->lj_full = 1;
		return;
	}
	memcpy(j->lj_buf + j->lj_len, s, n);
	j->lj_len += n;
}

/* A quoted string; cut (and closed) when it does not fit. */
static void
lj_string(struct lj *j, const char *s, size_t n)
{
	if (j->lj_full || j->lj_len + 2 + LJ_TAIL > j->lj_size) {
		j->lj_full = 1;
		return;
	}
	j->lj_buf[j->lj_len++] = '"';
	if (log_json_escape(
	        j->lj_buf, j->lj_size, &j->lj_len, 1 + LJ_TAIL, s, n) == -1)
		j->lj_full = 1;
	j->lj_buf[j->lj_len++] = '"';
}

/* ,"key": with room for at least an empty value after it, or nothing. */
static int
lj_key(struct lj *j, const char *key, size_t keylen)
{
	size_t save = j->lj_len;

	if (j->lj_full)
		return -1;
	if (j->lj_len + keylen + 6 + LJ_TAIL > j->lj_size) {
		j->lj_full = 1;
		return -1;
	}
	if (save > 1)
		j->lj_buf[j->lj_len++] = ',';
	lj_string(j, key, keylen);
	j->lj_buf[j->lj_len++] = ':';
	return 0;
}

static void
lj_field(struct lj *j, const char *key, const char *val)
{
	if (val == NULL || val[0] == '\0')
		return;
	if (lj_key(j, key, strlen(key)) == 0)
		lj_string(j, val, strlen(val));
}

/* A number, whole or not at all. */
static void
lj_number(struct lj *j, const char *key, const char *text)
{
	size_t save = j->lj_len;

	if (lj_key(j, key, strlen(key)) == -1)
		return;
	lj_raw(j, text);
	if (j->lj_full)
		j->lj_len = save;
}

/* Open the object with its first three fields. */
static void
lj_open(struct lj *j, char *buf, size_t size, const char *ts, const char *level,
    const char *event, size_t eventlen)
{
	j->lj_buf = buf;
	j->lj_size = size;
	j->lj_len = 0;
	j->lj_full = 0;
	lj_raw(j, "{");
	lj_field(j, "ts", ts);
	lj_field(j, "level", level);
	if (lj_key(j, "event", 5) == 0)
		lj_string(j, event, eventlen);
}

static size_t
lj_close(struct lj *j)
{
	/* LJ_TAIL kept this room free. */
	memcpy(j->lj_buf + j->lj_len, "}\n", 3);
	return j->lj_len + 2;
}

/* One token of a message: key=value, key="value", or a bare word. */
struct lj_tok {
	const char *t_key; /* NULL for a bare word */
	size_t t_keylen;
	const char *t_val;
	size_t t_vallen;
};

static size_t
lj_name_len(const char *s)
{
	size_t i = 0;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	        s[0] == '_'))
		return 0;
	while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
	    (s[i] >= '0' && s[i] <= '9') || s[i] == '_')
		i++;
	return i;
}

/* Split msg at spaces; a quoted value runs to the quote that is followed
 * by a space or the end.  Returns the number of tokens, or -1 when there
 * are more than fit. */
static int
lj_tokens(const char *msg, struct lj_tok *tok, int max)
{
	const char *p = msg, *q;
	size_t kl;
	int n = 0;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		kl = lj_name_len(p);
		if (kl > 0 && p[kl] == '=') {
			tok[n].t_key = p;
			tok[n].t_keylen = kl;
			p += kl + 1;
			if (*p == '"') {
				p++;
				for (q = p; *q != '\0'; q++)
					if (*q == '"' &&
					    (q[1] == ' ' || q[1] == '\0'))
						break;
				tok[n].t_val = p;
				tok[n].t_vallen = q - p;
				p = *q == '"' ? q + 1 : q;
				n++;
				continue;
			}
		} else
			tok[n].t_key = NULL;
		q = p + strcspn(p, " ");
		tok[n].t_val = p;
		tok[n].t_vallen = q - p;
		p = q;
		n++;
	}
}

/* 1 if a field of this name must not be written: one of the line's own,
 * or one already written. */
static int
lj_taken(const struct lj_tok *tok, int i, const char *name, size_t len)
{
	static const char *const own[] = {
	    "ts", "level", "event", "msg", "error"};
	size_t k;
	int m;

	for (k = 0; k < sizeof(own) / sizeof(own[0]); k++)
		if (strlen(own[k]) == len && memcmp(own[k], name, len) == 0)
			return 1;
	for (m = 0; m < i; m++) {
		const char *o = tok[m].t_key;
		size_t ol = tok[m].t_keylen;

		if (o == NULL)
			continue;
		if (ol == 2 && memcmp(o, "id", 2) == 0) {
			o = "request_id";
			ol = 10;
		}
		if (ol == len && memcmp(o, name, len) == 0)
			return 1;
	}
	return 0;
}

size_t
log_json_line(char *buf, size_t size, const char *ts, const char *level,
    const char *msg, const char *errtext)
{
	struct lj_tok tok[LJ_MAX_TOKENS];
	const char *event = "message", *name;
	size_t evlen = 7, len;
	int n, i, mixed = 0;
	struct lj j;

	n = lj_tokens(msg, tok, LJ_MAX_TOKENS);
	if (n < 0) {
		mixed = 1;
		n = LJ_MAX_TOKENS;
	}
	if (n > 0 && tok[0].t_key == NULL) {
		len = tok[0].t_vallen;
		/* "reload: ..." names its event with a colon. */
		if (len > 1 && tok[0].t_val[len - 1] == ':')
			len--;
		if (lj_name_len(tok[0].t_val) == len) {
			event = tok[0].t_val;
			evlen = len;
		}
		if (len != tok[0].t_vallen)
			mixed = 1;
	} else
		mixed = 1;
	for (i = 1; i < n; i++)
		if (tok[i].t_key == NULL)
			mixed = 1;
	lj_open(&j, buf, size, ts, level, event, evlen);
	if (mixed)
		lj_field(&j, "msg", msg);
	for (i = n > 0 && tok[0].t_key == NULL ? 1 : 0; i < n; i++) {
		if (tok[i].t_key == NULL)
			continue;
		name = tok[i].t_key;
		len = tok[i].t_keylen;
		if (len == 2 && memcmp(name, "id", 2) == 0) {
			name = "request_id";
			len = 10;
		}
		if (lj_taken(tok, i, name, len))
			continue;
		if (lj_key(&j, name, len) == 0)
			lj_string(&j, tok[i].t_val, tok[i].t_vallen);
	}
	lj_field(&j, "error", errtext);
	return lj_close(&j);
}

size_t
log_json_access(
    char *buf, size_t size, const char *ts, const struct log_access_rec *r)
{
	struct lj j;
	char num[32];

	lj_open(&j, buf, size, ts, "info", "access", 6);
	lj_field(&j, "request_id", r->la_id);
	lj_field(&j, "action", r->la_action);
	lj_field(&j, "client", r->la_client);
	lj_field(&j, "method", r->la_method);
	lj_field(&j, "route", r->la_route);
	snprintf(num, sizeof(num), "%d", r->la_status);
	lj_number(&j, "status", num);
	lj_field(&j, "user", r->la_user);
	snprintf(num, sizeof(num), "%.3f", r->la_ms);
	lj_number(&j, "duration_ms", num);
	if (r->la_up_ms >= 0) {
		snprintf(num, sizeof(num), "%.3f", r->la_up_ms);
		lj_number(&j, "upstream_ms", num);
	}
	snprintf(num, sizeof(num), "%llu", r->la_bytes);
	lj_number(&j, "bytes", num);
	if (r->la_route_line > 0) {
		snprintf(num, sizeof(num), "%d", r->la_route_line);
		lj_number(&j, "route_line", num);
	}
	lj_field(&j, "deny", r->la_deny);
	/* Last: the longest field, and the one a client chooses. */
	lj_field(&j, "path", r->la_path);
	return lj_close(&j);
}
