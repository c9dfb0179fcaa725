/* SPDX-License-Identifier: ISC */
/* log.c: line-at-a-time logging to stderr, safe from several threads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/log_json.h"

int log_level = LOG_LEVEL_INFO;
int log_format = LOG_FORMAT_TEXT;

static const char *const log_names[] = {"error", "warn", "info", "debug"};

int
log_level_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(name, log_names[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * A worker buffers its access lines and writes them in one go when the
 * buffer fills or its flush timer fires: one write(2) per request was a
 * large part of a proxied request's cost.  Other lines flush the buffer
 * first, so the order of lines is kept.
 */
#define LOG_BUF_SIZE (32 * 1024)
static __thread char *log_buf;
static __thread size_t log_len;

void
log_buffer_start(void)
{
	log_buf = malloc(LOG_BUF_SIZE);
	log_len = 0;
}

void
log_buffer_flush(void)
{
	if (log_buf != NULL && log_len > 0) {
		if (write(STDERR_FILENO, log_buf, log_len) < 0)
			(void)0;
		log_len = 0;
	}
}

void
log_buffer_stop(void)
{
	log_buffer_flush();
	free(log_buf);
	log_buf = NULL;
}

/* Hand one whole line to the thread's access buffer or to stderr. */
static void
log_emit(const char *line, size_t n, int access)
{
	if (log_buf != NULL && access) {
		if (log_len + n > LOG_BUF_SIZE)
			log_buffer_flush();
		memcpy(log_buf + log_len, line, n);
		log_len += n;
		return;
	}
	log_buffer_flush();
	/* One write per line keeps lines whole across threads. */
	if (write(STDERR_FILENO, line, n) < 0)
		(void)0;
}

/* The time as RFC 3339 UTC with milliseconds, into buf (at least
 * LOG_STAMP_LEN + 1 bytes).  The date and time of day are formatted once
 * per second per thread: an access line is written for every request. */
#define LOG_STAMP_LEN 24
static size_t
log_stamp(char *buf)
{
	static __thread time_t sec = -1;
	static __thread char day[64];
	struct timespec ts;
	struct tm tm;
	long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != sec) {
		gmtime_r(&ts.tv_sec, &tm);
		snprintf(day, sizeof(day), "%04d-%02d-%02dT%02d:%02d:%02d",
		    (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday,
		    tm.tm_hour, tm.tm_min, tm.tm_sec);
		sec = ts.tv_sec;
	}
	ms = ts.tv_nsec / 1000000;
	memcpy(buf, day, 19);
	buf[19] = '.';
	buf[20] = (char)('0' + ms / 100);
	buf[21] = (char)('0' + ms / 10 % 10);
	buf[22] = (char)('0' + ms % 10);
	buf[23] = 'Z';
	buf[24] = '\0';
	return LOG_STAMP_LEN;
}

static void log_vjson(const char *, const char *, va_list, int)
    __attribute__((format(printf, 2, 0)));

/* The line of log_vline as JSON: the text is formatted first, then
 * turned into fields (log_json_line); an access line is a JSON one too. */
static void
log_vjson(const char *tag, const char *fmt, va_list ap, int with_errno)
{
	char msg[4096], line[8192], ts[96];
	int saved = errno;
	size_t n;

	log_stamp(ts);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	n = log_json_line(line, sizeof(line), ts, tag, msg,
	    with_errno ? strerror(saved) : NULL);
	log_emit(line, n, 0);
	errno = saved;
}

static void log_vline(const char *, const char *, va_list, int)
    __attribute__((format(printf, 2, 0)));

static void
log_vline(const char *tag, const char *fmt, va_list ap, int with_errno)
{
	char line[4096];
	int saved = errno, n, m;

	if (log_format == LOG_FORMAT_JSON) {
		log_vjson(tag, fmt, ap, with_errno);
		return;
	}
	n = (int)log_stamp(line);
	n += snprintf(line + n, sizeof(line) - n, " %s ", tag);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	if (with_errno) {
		m = snprintf(
		    line + n, sizeof(line) - n, ": %s", strerror(saved));
		n += m;
		if (n > (int)sizeof(line) - 2)
			n = (int)sizeof(line) - 2;
	}
	line[n++] = '\n';
	log_emit(line, n, 0);
	errno = saved;
}

/* An append-only line in a caller's buffer: what does not fit is cut,
 * always leaving the last byte for the newline. */
struct log_text {
	char *lt_buf;
	size_t lt_len, lt_max;
};

static void
lt_put(struct log_text *t, const char *s, size_t n)
{
	if (n > t->lt_max - t->lt_len)
		n = t->lt_max - t->lt_len;
	memcpy(t->lt_buf + t->lt_len, s, n);
	t->lt_len += n;
}

static void
lt_str(struct log_text *t, const char *s)
{
	lt_put(t, s, strlen(s));
}

/* s with what log_sanitize replaces replaced, so a client cannot forge a
 * line or end a quoted field. */
static void
lt_safe(struct log_text *t, const char *s)
{
	unsigned char c;

	for (; s != NULL && *s != '\0' && t->lt_len < t->lt_max; s++) {
		c = (unsigned char)*s;
		t->lt_buf[t->lt_len++] =
		    (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?'
		                                                     : (char)c;
	}
}

static void
lt_uint(struct log_text *t, unsigned long long v)
{
	char d[24];
	size_t i = sizeof(d);

	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	lt_put(t, d + i, sizeof(d) - i);
}

/* Milliseconds with one decimal, rounded to nearest. */
static void
lt_ms(struct log_text *t, double ms)
{
	unsigned long long tenths;

	if (!(ms >= 0))
		ms = 0;
	if (ms > 1e15)
		ms = 1e15;
	tenths = (unsigned long long)(ms * 10 + 0.5);
	lt_uint(t, tenths / 10);
	lt_put(t, ".", 1);
	lt_put(t, &"0123456789"[tenths % 10], 1);
}

size_t
log_text_access(char *buf, size_t size, const struct log_access_rec *r)
{
	struct log_text t = {buf, 0, size - 1};

	t.lt_len = log_stamp(buf);
	lt_str(&t, " access id=");
	lt_safe(&t, r->la_id);
	lt_str(&t, " event=");
	lt_safe(&t, r->la_action);
	lt_str(&t, " client=");
	lt_safe(&t, r->la_client);
	lt_str(&t, " method=");
	lt_safe(&t, r->la_method);
	lt_str(&t, " path=\"");
	lt_safe(&t, r->la_path);
	lt_str(&t, "\" status=");
	lt_uint(&t, (unsigned)r->la_status);
	lt_str(&t, " bytes=");
	lt_uint(&t, r->la_bytes);
	/* Optional fields are left out rather than given placeholders. */
	if (r->la_user != NULL && r->la_user[0] != '\0') {
		lt_str(&t, " user=\"");
		lt_safe(&t, r->la_user);
		lt_str(&t, "\"");
	}
	if (r->la_route_line > 0) {
		lt_str(&t, " route=");
		lt_uint(&t, (unsigned)r->la_route_line);
	}
	if (r->la_deny != NULL && r->la_deny[0] != '\0') {
		lt_str(&t, " deny=");
		lt_safe(&t, r->la_deny);
	}
	if (r->la_up_ms >= 0) {
		lt_str(&t, " up_ms=");
		lt_ms(&t, r->la_up_ms);
	}
	lt_str(&t, " ms=");
	lt_ms(&t, r->la_ms);
	buf[t.lt_len++] = '\n';
	return t.lt_len;
}

void
log_access_rec(const struct log_access_rec *r)
{
	char line[8192], ts[LOG_STAMP_LEN + 1];
	int saved = errno;

	if (log_format == LOG_FORMAT_JSON) {
		log_stamp(ts);
		log_emit(line, log_json_access(line, sizeof(line), ts, r), 1);
	} else
		log_emit(line, log_text_access(line, sizeof(line), r), 1);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LEVEL_WARN)
		return;
	va_start(ap, fmt);
	log_vline("warn", fmt, ap, 1);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LEVEL_WARN)
		return;
	va_start(ap, fmt);
	log_vline("warn", fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	log_vline("info", fmt, ap, 0);
	va_end(ap);
}

void
log_debug_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("debug", fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("fatal", fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("fatal", fmt, ap, 0);
	va_end(ap);
	exit(1);
}

char *
log_sanitize(char *buf, size_t size, const char *s)
{
	size_t i;

	if (size == 0)
		return buf;
	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
		    ? '?'
		    : (char)c;
	}
	buf[i] = '\0';
	return buf;
}

int
log_limit_pass(struct log_limit *ll, int every, unsigned *missed)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (ll->ll_next != 0 && now.tv_sec < ll->ll_next) {
		ll->ll_missed++;
		return 0;
	}
	ll->ll_next = (long)now.tv_sec + every;
	*missed = ll->ll_missed;
	ll->ll_missed = 0;
	return 1;
}
