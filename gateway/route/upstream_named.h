/* SPDX-License-Identifier: ISC */
/*
 * upstream_named.h: named upstreams, `upstream.NAME = URL`, and the
 * routes that pick one with `upstream=NAME`.  Their pools are
 * upstream.h's.
 */
#ifndef GATEHOUSE_UPSTREAM_NAMED_H
#define GATEHOUSE_UPSTREAM_NAMED_H

#include <stdio.h>

#include "core/config.h"

/*
 * Its configuration key, upstream.NAME (config_modules.c lists it).  Its
 * check refuses a route naming an upstream no upstream.NAME line sets
 * (with the route's line), and gives every other route naming one the
 * index upstream_pool_pick takes (policy_table_set_upstream_index).
 */
extern const struct config_module upstream_named_config_module;

/*
 * Write "FILE:LINE: warning: ..." to f for each named upstream of cfg
 * no route names (not an error: a route may be on its way).  Returns
 * how many.  Main thread.
 */
int upstream_named_warn_unused(const struct config *cfg, FILE *f);

#endif
