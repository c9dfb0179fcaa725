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

/* The time as RFC 3339 UTC with milliseconds. */
static void
log_time(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000);
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

	log_time(ts, sizeof(ts));
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	n = log_json_line(line, sizeof(line), ts, tag[0] == 'a' ? "info" : tag,
	    msg, with_errno ? strerror(saved) : NULL);
	log_emit(line, n, tag[0] == 'a');
	errno = saved;
}

static void log_vline(const char *, const char *, va_list, int)
    __attribute__((format(printf, 2, 0)));

static void
log_vline(const char *tag, const char *fmt, va_list ap, int with_errno)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	int saved = errno, n, m;

	if (log_format == LOG_FORMAT_JSON) {
		log_vjson(tag, fmt, ap, with_errno);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, tag);
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
	log_emit(line, n, tag[0] == 'a');
	errno = saved;
}

void
log_access_rec(const struct log_access_rec *r)
{
	char line[8192], ts[96];
	int saved = errno;

	log_time(ts, sizeof(ts));
	log_emit(line, log_json_access(line, sizeof(line), ts, r), 1);
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
log_access(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("access", fmt, ap, 0);
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
