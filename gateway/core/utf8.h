/* SPDX-License-Identifier: ISC */
/*
 * utf8.h: the one UTF-8 rule of the log and metrics writers, which must
 * never pass on a byte sequence that is not UTF-8 (JSON and the
 * Prometheus text format are both UTF-8).
 */
#ifndef GATEHOUSE_UTF8_H
#define GATEHOUSE_UTF8_H

#include <stddef.h>

/*
 * The length (2 to 4) of the well-formed multi-byte UTF-8 sequence at
 * s[0..n), or 0 when s[0] does not start one: an ASCII byte, a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate
 * (U+D800..U+DFFF) or a code point above U+10FFFF (RFC 3629 section 4).
 */
static inline size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* The second byte's range rules out overlongs, surrogates and
	 * values past U+10FFFF. */
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

#endif
