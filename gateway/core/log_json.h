/* SPDX-License-Identifier: ISC */
/*
 * log_json.h: log lines as JSON objects (log_format = json), one per line.
 * Pure formatting into a caller's buffer: log.c decides when and where a
 * line goes.  Every string is escaped for JSON: quotes, backslashes and
 * control characters, U+2028 and U+2029 (which break JavaScript readers),
 * and each byte that is not part of a well-formed UTF-8 sequence becomes
 * U+FFFD, so the output is always valid UTF-8 JSON whatever the bytes in.
 * A line that does not fit is cut at a field or character boundary and
 * still closed, so it stays valid JSON.
 */
#ifndef GATEHOUSE_LOG_JSON_H
#define GATEHOUSE_LOG_JSON_H

#include <stddef.h>

/*
 * One request's access line (log.h's log_access_rec writes it).  Strings
 * are borrowed; NULL or "" leaves an optional field out.
 */
struct log_access_rec {
	const char *la_id;     /* request id */
	const char *la_action; /* the text line's event=: proxy, deny, ... */
	const char *la_client;
	const char *la_method;
	const char *la_path; /* normalised path, never the query */
	int la_status;
	unsigned long long la_bytes;
	const char *la_user;  /* optional: log_user's choice */
	const char *la_route; /* the route label (metrics_route_name) */
	int la_route_line;    /* 0: none */
	const char *la_deny;  /* optional: the criterion that refused */
	double la_up_ms;      /* < 0: no upstream */
	double la_ms;
};

/*
 * Write into buf (size bytes, at least 64) the JSON line, newline
 * included, for a message `msg` of level `level` ("info", "warn", ...)
 * at time `ts` (RFC 3339 text).  The message is gatehouse's key=value
 * text: when it starts with a word, the word is "event"; each key=value
 * or key="value" in it becomes a field of that name ("id" becomes
 * "request_id"), with string values; when it has more than the event and
 * its fields, the whole text is "msg" too.  errtext (may be NULL) is an
 * errno's text, written as "error".  Returns the length written (no NUL).
 */
size_t log_json_line(char *buf, size_t size, const char *ts, const char *level,
    const char *msg, const char *errtext);

/*
 * Write into buf the JSON access line for r at time ts (level "info",
 * event "access"): request_id, action, client, method, path, status,
 * bytes, user, route, route_line, deny, upstream_ms and duration_ms
 * (milliseconds, numbers).  Returns the length written (no NUL).
 */
size_t log_json_access(
    char *buf, size_t size, const char *ts, const struct log_access_rec *r);

/*
 * Append s[0..n) to buf as the body of a JSON string (no quotes),
 * escaped as above; stops before a character that would leave less than
 * `keep` bytes free of size.  *len is the used length, updated.  Returns 0,
 * or -1 when it stopped early.  For the two functions above and tests.
 */
int log_json_escape(
    char *buf, size_t size, size_t *len, size_t keep, const char *s, size_t n);

#endif
