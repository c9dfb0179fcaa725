/* SPDX-License-Identifier: ISC */
/*
 * tmpdir.h: a unit test's temporary directory, made under $TMPDIR (or
 * /tmp) with a name that says which test left it, and removed with all
 * under it.
 */
#ifndef GATEHOUSE_TEST_TMPDIR_H
#define GATEHOUSE_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/*
 * Make a new directory $TMPDIR/NAME.XXXXXX (mode 0700) and put its path in
 * dir (size bytes).  0, or -1 when the path does not fit or mkdtemp fails
 * (errno says why).
 */
static inline int
test_tmpdir(char *dir, size_t size, const char *name)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	n = snprintf(dir, size, "%s/%s.XXXXXX", base, name);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static inline int
test_rmtree_cb(
    const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* 0, or -1 when something could not be removed. */
static inline int
test_rmtree(const char *dir)
{
	return nftw(dir, test_rmtree_cb, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0
	                                                                : -1;
}

#endif
