/* SPDX-License-Identifier: ISC */
/*
 * magic.h: the magic-number check of objects passed through a callback's
 * void *.  Each such struct starts with a magic number of its own, set
 * when it is made and cleared when it is freed, so that a callback run on
 * a freed or foreign object stops at once, naming the type, instead of
 * corrupting memory further on.
 */
#ifndef GATEHOUSE_MAGIC_H
#define GATEHOUSE_MAGIC_H

#include <stdio.h>
#include <stdlib.h>

__attribute__((noreturn)) static inline void
magic_abort(const char *type)
{
	fprintf(stderr, "gatehouse: bad magic number in a %s\n", type);
	abort();
}

/* arg as a type *, or abort when it is NULL or its member is not magic. */
#define MAGIC_CAST(type, member, magic, arg)                                   \
	__extension__({                                                        \
		type *magic_p_ = (arg);                                        \
		if (magic_p_ == NULL || magic_p_->member != (magic))           \
			magic_abort(#type);                                    \
		magic_p_;                                                      \
	})

#endif
