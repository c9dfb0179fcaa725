/* SPDX-License-Identifier: ISC */
/* hex.h: lower-case hex text of bytes, for unit tests' expected values. */
#ifndef GATEHOUSE_TEST_HEX_H
#define GATEHOUSE_TEST_HEX_H

#include <stdio.h>

/* out must hold 2 * len + 1 bytes. */
static inline void
hex_encode(const unsigned char *in, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
	out[2 * len] = '\0';
}

#endif
