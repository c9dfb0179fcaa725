/* SPDX-License-Identifier: ISC */
/* rmtree.h: remove a unit test's temporary directory and all under it. */
#ifndef GATEHOUSE_TEST_RMTREE_H
#define GATEHOUSE_TEST_RMTREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int
test_rmtree_cb(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
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
