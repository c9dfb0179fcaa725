/* SPDX-License-Identifier: ISC */
/*
 * hdrs.h: request heads for unit tests, built field by field the way
 * gateway/http/http1.c leaves them after parsing (borrowed strings).
 */
#ifndef GATEHOUSE_TEST_HDRS_H
#define GATEHOUSE_TEST_HDRS_H

#include <string.h>

#include "http/http1.h"

#define TEST_HDRS_MAX 256

struct test_hdrs {
	struct http1_hdr th_v[TEST_HDRS_MAX];
	struct http1_req th_req;
};

static inline void
test_hdrs_init(struct test_hdrs *t)
{
	memset(t, 0, sizeof(*t));
	t->th_req.hr_hdrs = t->th_v;
	t->th_req.hr_maxhdrs = TEST_HDRS_MAX;
	t->th_req.hr_method = "GET";
	t->th_req.hr_target = "/";
	t->th_req.hr_minor = 1;
}

/* Add name: value (both borrowed); -1 when full or when the value holds
 * a CR or LF, which the parser would never have let through. */
static inline int
test_hdrs_add(struct test_hdrs *t, const char *name, const char *value)
{
	struct http1_hdr *h;

	if (t->th_req.hr_nhdrs == TEST_HDRS_MAX || strpbrk(value, "\r\n"))
		return -1;
	h = &t->th_v[t->th_req.hr_nhdrs++];
	h->hh_name = name;
	h->hh_nlen = (uint32_t)strlen(name);
	h->hh_value = value;
	h->hh_vlen = (uint32_t)strlen(value);
	return 0;
}

#endif
