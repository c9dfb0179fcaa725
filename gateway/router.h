/* SPDX-License-Identifier: ISC */
/*
 * router.h: the evhttp generic callback.  /.auth/... goes to gatehouse's
 * own endpoints, everything else down the proxy pipeline.
 */
#ifndef GATEHOUSE_ROUTER_H
#define GATEHOUSE_ROUTER_H

#include <stddef.h>

#include "config.h"

struct evhttp_request;

extern const struct config_key router_keys[];
extern const size_t router_nkeys;

int router_config_check(
    struct config *cfg, config_report_fn *report, void *arg);

/* The evhttp gencb; arg is the struct worker.  Worker thread. */
void router_request_cb(struct evhttp_request *req, void *arg);

#endif
