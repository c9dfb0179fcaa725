/* SPDX-License-Identifier: ISC */
/*
 * cookie.h: reading the Cookie header and writing Set-Cookie.  Cookie
 * values gatehouse sets are random ids or sealed blobs (base64url); a
 * value is never logged.
 */
#ifndef GATEHOUSE_COOKIE_H
#define GATEHOUSE_COOKIE_H

#include <stddef.h>

#include "core/config.h"

struct resp_hdrs;
struct http1_req;

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module cookie_config_module;

#define COOKIE_MAX_VALUE 4096

/*
 * Find cookie `name` in the Cookie headers of request head `in`.  Returns 1 and
 * copies the value into out (NUL-terminated), 0 when absent, -1 when it is
 * there more than once, empty, or longer than outsize - 1 (a forged or broken
 * cookie is treated as no cookie, never half-read).
 */
int cookie_get(
    const struct http1_req *in, const char *name, char *out, size_t outsize);

/*
 * Call fn(name, value, arg) for each cookie whose name starts with prefix;
 * name and value are borrowed for the call.  Returns the number seen.
 */
int cookie_foreach(const struct http1_req *in, const char *prefix,
    void (*fn)(const char *name, const char *value, void *arg), void *arg);

#define COOKIE_LAX 0  /* SameSite=Lax */
#define COOKIE_NONE 1 /* SameSite=None; Secure (cross-site POST) */

/*
 * Add a Set-Cookie header to `out`: HttpOnly, Path=/, SameSite as asked,
 * Secure when the public URL is https (always with COOKIE_NONE), Domain
 * when cookie_domain is set.  max_age < 0: a browser-session cookie;
 * max_age == 0: delete it.
 */
void cookie_set(struct resp_hdrs *out, const struct config *cfg,
    const char *name, const char *value, int max_age, int samesite);

#endif
