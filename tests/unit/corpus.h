/* SPDX-License-Identifier: ISC */
/*
 * corpus.h: reading test inputs: a whole file at once, and every file of a
 * seed corpus (tests/corpus/NAME, read from the repository root) handed to
 * a callback in name order.  Uses tap.h: a file that cannot be read is a
 * failed test, never a silent skip.
 */
#ifndef GATEHOUSE_TEST_CORPUS_H
#define GATEHOUSE_TEST_CORPUS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

/*
 * The whole of path, NUL-terminated (malloc'ed, the caller frees), its
 * length in *len (the NUL not counted; the file may hold NUL bytes of its
 * own).  NULL when it cannot be read.
 */
static inline char *
test_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)n, f);
		if (*len != (size_t)n || ferror(f)) {
			free(buf);
			buf = NULL;
		} else
			buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

/* A corpus file: its name in the directory, its content (NUL-terminated,
 * len bytes without the NUL, the callback may change it; freed after the
 * callback returns). */
typedef void test_corpus_fn(const char *name, char *buf, size_t len, void *arg);

static inline int
test_corpus_visible(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/*
 * fn(name, content, length, arg) for each file of dir whose name does not
 * start with '.', in name order (the C locale's).  A file that cannot be
 * read is reported as "not ok - read DIR/NAME" and skipped.  Returns the
 * number of files handed to fn, or -1 when dir cannot be opened (not
 * reported here: each test says it in its own words).
 */
static inline int
test_corpus_walk(const char *dir, test_corpus_fn *fn, void *arg)
{
	struct dirent **names;
	char path[1024];
	size_t len;
	char *buf;
	int i, n, done = 0;

	n = scandir(dir, &names, test_corpus_visible, alphasort);
	if (n == -1)
		return -1;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		buf = test_slurp(path, &len);
		if (buf == NULL)
			ok(0, "read %s", path);
		else {
			fn(names[i]->d_name, buf, len, arg);
			free(buf);
			done++;
		}
		free(names[i]);
	}
	free(names);
	return done;
}

/*
 * A table of expected outcomes, one row per corpus file, its first member
 * the file's name: the index of name's row, or the number of rows when it
 * has none.
 */
static inline size_t
test_corpus_row(
    const void *table, size_t nrows, size_t rowsize, const char *name)
{
	const char *row = table;
	size_t i;

	for (i = 0; i < nrows; i++, row += rowsize)
		if (strcmp(*(const char *const *)(const void *)row, name) == 0)
			break;
	return i;
}
#define TEST_CORPUS_ROW(table, name)                                           \
	test_corpus_row((table), sizeof(table) / sizeof((table)[0]),           \
	    sizeof((table)[0]), (name))

/*
 * The walk of a corpus whose every file must have a row in a table of
 * nrows expected outcomes (fn checks that its file has one): the directory
 * must open, and the files must be as many as the rows, so a row whose
 * file is gone fails too.
 */
static inline void
test_corpus_table(const char *dir, test_corpus_fn *fn, void *arg, size_t nrows)
{
	int n = test_corpus_walk(dir, fn, arg);

	if (ok(n != -1, "open %s (run from the repository root)", dir))
		is_int(n, nrows, "every row has its file");
}

#endif
