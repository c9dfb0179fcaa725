/* SPDX-License-Identifier: ISC */
/* crypto.c: OpenSSL wrappers and the secret type (S15). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"

int
crypto_secret_set(struct secret *s, const void *buf, size_t len)
{
	unsigned char *p;

	p = malloc(len + 1);
	if (p == NULL)
		return -1;
	memcpy(p, buf, len);
	p[len] = '\0';
	crypto_secret_cleanup(s);
	s->buf = p;
	s->len = len;
	return 0;
}

void
crypto_secret_cleanup(struct secret *s)
{
	if (s->buf != NULL) {
		OPENSSL_cleanse(s->buf, s->len);
		free(s->buf);
	}
	s->buf = NULL;
	s->len = 0;
}
