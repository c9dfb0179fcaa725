/* SPDX-License-Identifier: ISC */
/*
 * token_profile.h: downstream token profiles.  `token.NAME = SCOPES`
 * names the scopes of one resource (Entra: one API); a route that ends
 * with token=NAME forwards an access token for them, redeemed with the
 * session's refresh token (oidc_refresh.c) and kept in the session.  The
 * profiles are part of the read-only configuration: any thread.
 */
#ifndef GATEHOUSE_TOKEN_PROFILE_H
#define GATEHOUSE_TOKEN_PROFILE_H

#include <stddef.h>

#include "core/config.h"

/* At most this many profiles (each may sit in every session). */
#define TOKEN_PROFILE_MAX 16

struct token_profile {
	char *tp_name;   /* NAME of token.NAME */
	char *tp_scopes; /* the scopes, single-spaced */
	int tp_line;
};

/* The `token.` key family and the check that every route's token=NAME
 * names one (config_modules.c lists it). */
extern const struct config_module token_profile_config_module;

/* The profile called name (borrowed from cfg), or NULL. */
const struct token_profile *token_profile_find(
    const struct config *cfg, const char *name);

#endif
