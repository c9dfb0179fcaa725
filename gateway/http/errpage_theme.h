/* SPDX-License-Identifier: ISC */
/*
 * errpage_theme.h: the operator's branding of the pages gatehouse shows
 * (error pages, the sign-out confirmation, the signed-out page): the
 * brand_* keys and error_page_dir's page.html template, read and checked
 * once with the configuration.
 */
#ifndef GATEHOUSE_ERRPAGE_THEME_H
#define GATEHOUSE_ERRPAGE_THEME_H

#include "core/config.h"

struct evbuffer;

/* What one page says.  Every string is plain text and is escaped where it
 * is inserted, except ef_actions: HTML that errpage.c built from escaped
 * values. */
struct errpage_fields {
	int ef_status;
	const char *ef_title;
	const char *ef_heading;
	const char *ef_message;
	const char *ef_actions;
	const char *ef_request_id;
};

/*
 * Render the page through the operator's page.html into out.  Returns 0,
 * or -1 when there is no template (error_page_dir unset, or without a
 * page.html): the caller then shows its built-in page.  `cfg` borrowed.
 */
int errpage_theme_render(const struct config *cfg,
    const struct errpage_fields *f, struct evbuffer *out);

/* Append `s` to buf with &, <, >, ", ' escaped: safe as element text and
 * as a quoted attribute value. */
void errpage_theme_escape(struct evbuffer *buf, const char *s);

extern const struct config_module errpage_theme_config_module;

#endif
