/* SPDX-License-Identifier: ISC */
/*
 * fuzz.h: the libFuzzer entry point every tests/fuzz/<name>_fuzz.c defines.
 * Built two ways: with clang -fsanitize=fuzzer (libFuzzer's main, `make
 * fuzz`), and with replay_main.c and the project's normal flags, which
 * replays a corpus directory as a TAP test (`make unit`).
 */
#ifndef GATEHOUSE_FUZZ_H
#define GATEHOUSE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Run one input: data (size bytes, borrowed for the call, not
 * NUL-terminated) through the target's parsers.  Returns 0; a crash, a
 * sanitizer report, a leak or an abort() on a broken invariant is the
 * finding.  Single-threaded; the target may keep state initialised once.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of data (new; free()); aborts when out of memory,
 * which a fuzzer must not mistake for a parser outcome. */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s;

	s = malloc(size + 1);
	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
