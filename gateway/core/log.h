/* SPDX-License-Identifier: ISC */
/*
 * log.h: the logging API (relayd's, with format checks and a lazy debug).
 * Every call writes one whole line to stderr with a single write(2), so
 * lines from several worker threads never interleave.  Never pass a cookie,
 * token, Authorization value or secret to any of these.
 */
#ifndef GATEHOUSE_LOG_H
#define GATEHOUSE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

/* The current level; read without a lock (an int store is atomic enough). */
extern int log_level;

/* How lines are written: key=value text (the default) or one JSON object
 * per line (log_json.h).  Set once by main, before any thread starts. */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };
extern int log_format;

/* Set the level from its name ("error", "warn", "info", "debug"); -1 if
 * unknown. */
int log_level_parse(const char *name);

/* Warning with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Warning without errno. */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The access log: one line per request from its fields (log_json.h),
 * key=value text or, with log_format = json, a JSON object. */
struct log_access_rec;
void log_access_rec(const struct log_access_rec *r);
/* Write into buf (size bytes, at least 64) the text access line for r,
 * time stamp first and newline included, every field a client can choose
 * sanitised as log_sanitize does; a line that does not fit is cut.
 * Returns its length (no NUL).  Formatted by hand: it is written for
 * every request, and printf was a visible share of one. */
size_t log_text_access(char *buf, size_t size, const struct log_access_rec *r);

/* Debug lines start with the function name; arguments are only evaluated
 * when debug logging is on. */
#define log_debug(fmt, ...)                                                    \
	do {                                                                   \
		if (log_level >= LOG_LEVEL_DEBUG)                              \
			log_debug_("%s: " fmt, __func__, ##__VA_ARGS__);       \
	} while (0)

/*
 * Per-thread buffering of access lines (a worker calls start when its loop
 * begins, flush from a timer, stop when it ends).  Other lines are never
 * buffered and flush what is pending first.
 */
void log_buffer_start(void);
void log_buffer_flush(void);
void log_buffer_stop(void);

/*
 * A rate limit for one kind of line that a client can cause at will (a
 * forged cookie, a refused return URL): at most one line per `every`
 * seconds per thread, saying how many were held back since the last.  A
 * struct log_limit is per thread (declare it static __thread) and starts
 * zeroed.
 */
struct log_limit {
	long ll_next;       /* the monotonic second the next line may go */
	unsigned ll_missed; /* lines held back since the last one */
};

/* 1 when a line may be written now, with *missed set to how many were
 * held back before it (and the count reset); else 0 (counted). */
int log_limit_pass(struct log_limit *ll, int every, unsigned *missed);

/* Before the event loop only: log and exit(1). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Write `s` into `buf` (size `size`) with every byte outside printable ASCII,
 * and the characters '"' and '\\', replaced by '?', truncated to fit.
 * For quoting client-controlled text (paths, methods) in log lines so a
 * request can never forge a log line.  Returns buf.
 */
char *log_sanitize(char *buf, size_t size, const char *s);

#endif
