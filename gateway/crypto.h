/* SPDX-License-Identifier: ISC */
/*
 * crypto.h: OpenSSL wrappers and the secret type (S15).  Key material and
 * tokens live in struct secret, never in a char *, so that a "%s" in a log
 * call cannot compile against them.
 */
#ifndef GATEHOUSE_CRYPTO_H
#define GATEHOUSE_CRYPTO_H

#include <stddef.h>

struct secret {
	unsigned char *buf;
	size_t len;
};

/* Copy len bytes into s (replacing and cleansing what it held).  0 or -1. */
int crypto_secret_set(struct secret *s, const void *buf, size_t len);

/* Cleanse and free the secret's buffer; the struct itself is not freed. */
void crypto_secret_cleanup(struct secret *s);

#endif
