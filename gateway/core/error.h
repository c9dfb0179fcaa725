/* SPDX-License-Identifier: ISC */
/*
 * error.h: struct gh_error, the detail that travels beside a -1 from the
 * deep layers (jose, oidc, config) up to the one place that logs a line and
 * shows a page.  Never put a token, cookie or secret into one.
 */
#ifndef GATEHOUSE_ERROR_H
#define GATEHOUSE_ERROR_H

#include <stdarg.h>
#include <stdio.h>

struct gh_error {
	char ge_msg[256];    /* one line, for the log; may be shown escaped */
	const char *ge_code; /* a short fixed token, e.g. "iss_mismatch" */
	const char *ge_file; /* source position that set it */
	int ge_line;
};

static inline void gh_error_setf(struct gh_error *, const char *, int,
    const char *, const char *, ...) __attribute__((format(printf, 5, 6)));

static inline void
gh_error_setf(struct gh_error *err, const char *file, int line,
    const char *code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->ge_code = code;
	err->ge_file = file;
	err->ge_line = line;
	va_start(ap, fmt);
	vsnprintf(err->ge_msg, sizeof(err->ge_msg), fmt, ap);
	va_end(ap);
}

/* gh_error_set(err, "code", "printf format", ...) records where it was set. */
#define gh_error_set(err, code, ...)                                           \
	gh_error_setf((err), __FILE__, __LINE__, (code), __VA_ARGS__)

#endif
