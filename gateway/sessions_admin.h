/* SPDX-License-Identifier: ISC */
/*
 * sessions_admin.h: the `sessions` command of the command line: list the
 * signed-in sessions of the configured store, or end some of them, also
 * while gatehouse runs.
 */
#ifndef GATEHOUSE_SESSIONS_ADMIN_H
#define GATEHOUSE_SESSIONS_ADMIN_H

#include <stdio.h>

struct config;

/* The lines of the usage text that describe the command. */
void sessions_admin_usage(FILE *f);

/*
 * Run `sessions ARGS...` (argv[0] is "sessions") against cfg's store
 * (borrowed; file is its name, for messages).  Returns the exit code: 0,
 * 1 (an error, said on stderr: a bad selector, the store unreachable) or
 * 2 (bad arguments: the usage was printed).  Main thread; no workers run.
 */
int sessions_admin_main(
    const char *file, const struct config *cfg, int argc, char *argv[]);

#endif
