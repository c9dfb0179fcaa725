/* SPDX-License-Identifier: ISC */
/*
 * easyauth.h: Azure App Service authentication ("Easy Auth")
 * compatibility for the parts an app's own code calls: /.auth/me in Easy
 * Auth's shape (me_format = easyauth), GET /.auth/refresh from the app's
 * pages, and the ID token upstream as X-MS-TOKEN-AAD-ID-TOKEN
 * (forward_id_token).  Worker thread.
 */
#ifndef GATEHOUSE_EASYAUTH_H
#define GATEHOUSE_EASYAUTH_H

#include <jansson.h>

#include "core/config.h"

struct request_ctx;
struct session;

/* cf_me_format's values. */
#define EASYAUTH_ME_GATEHOUSE 0
#define EASYAUTH_ME_EASYAUTH 1

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module easyauth_config_module;

/*
 * /.auth/me as Easy Auth answers it: an array of one object with
 * provider_name, user_id, user_claims ([{"typ","val"}], one entry per
 * value), expires_on, and the tokens (id_token, access_token) only with
 * `tokens`.  s's claims must be loaded (session_claims not NULL).  A new
 * reference (it may hold tokens: cleanse its text), or NULL when out of
 * memory.
 */
json_t *easyauth_me_doc(struct session *s, int tokens);

/*
 * Whether a GET /.auth/refresh comes from this site's own pages (see
 * easyauth.c for the evidence taken).  1 yes, 0 no.
 */
int easyauth_refresh_get_allowed(struct request_ctx *rq);

/*
 * Append "X-MS-TOKEN-AAD-ID-TOKEN: <idt>\r\n" to the header block *hdrs
 * (new, NUL-terminated; replaced by a new one, the old cleansed and
 * freed).  Nothing is added when idt is empty.  0, or -1 when out of
 * memory (*hdrs is then cleansed, freed and NULL).
 */
int easyauth_id_token_add(char **hdrs, const struct secret *idt);

#endif
