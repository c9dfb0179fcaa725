/* SPDX-License-Identifier: ISC */
/*
 * resp_hdrs.c: the header fields of a response gatehouse builds, checked
 * as they are added (resp_hdrs.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "http/http1.h"
#include "http/resp_hdrs.h"

static int
resp_hdrs_value_ok(const char *value, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			return 0;
	return 1;
}

static void
resp_hdr_free(struct resp_hdr *f)
{
	OPENSSL_cleanse(f->rh_value, f->rh_vlen);
	free(f->rh_name);
	f->rh_name = NULL;
	f->rh_value = NULL;
}

void
resp_hdrs_init(struct resp_hdrs *h)
{
	h->rh_v = NULL;
	h->rh_n = 0;
	h->rh_cap = 0;
}

void
resp_hdrs_cleanup(struct resp_hdrs *h)
{
	size_t i;

	for (i = 0; i < h->rh_n; i++)
		resp_hdr_free(&h->rh_v[i]);
	free(h->rh_v);
	resp_hdrs_init(h);
}

int
resp_hdrs_addn(
    struct resp_hdrs *h, const char *name, const char *value, size_t vlen)
{
	size_t nlen = strlen(name), cap;
	struct resp_hdr *v, *f;
	char *p;

	if (!http1_is_token(name, nlen) || !resp_hdrs_value_ok(value, vlen) ||
	    vlen > SIZE_MAX - nlen - 2)
		return -1;
	if (h->rh_n == h->rh_cap) {
		cap = h->rh_cap == 0 ? 8 : h->rh_cap * 2;
		v = reallocarray(h->rh_v, cap, sizeof(*v));
		if (v == NULL)
			return -1;
		h->rh_v = v;
		h->rh_cap = cap;
	}
	p = malloc(nlen + vlen + 2);
	if (p == NULL)
		return -1;
	memcpy(p, name, nlen + 1);
	memcpy(p + nlen + 1, value, vlen);
	p[nlen + 1 + vlen] = '\0';
	f = &h->rh_v[h->rh_n++];
	f->rh_name = p;
	f->rh_value = p + nlen + 1;
	f->rh_nlen = nlen;
	f->rh_vlen = vlen;
	return 0;
}

int
resp_hdrs_add(struct resp_hdrs *h, const char *name, const char *value)
{
	return resp_hdrs_addn(h, name, value, strlen(value));
}

int
resp_hdrs_set(struct resp_hdrs *h, const char *name, const char *value)
{
	resp_hdrs_remove(h, name);
	return resp_hdrs_add(h, name, value);
}

const char *
resp_hdrs_get(const struct resp_hdrs *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->rh_n; i++)
		if (strcasecmp(h->rh_v[i].rh_name, name) == 0)
			return h->rh_v[i].rh_value;
	return NULL;
}

size_t
resp_hdrs_remove(struct resp_hdrs *h, const char *name)
{
	size_t i, j = 0, n = 0;

	for (i = 0; i < h->rh_n; i++) {
		if (strcasecmp(h->rh_v[i].rh_name, name) == 0) {
			resp_hdr_free(&h->rh_v[i]);
			n++;
		} else
			h->rh_v[j++] = h->rh_v[i];
	}
	h->rh_n = j;
	return n;
}
