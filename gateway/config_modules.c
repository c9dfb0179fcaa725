/* SPDX-License-Identifier: ISC */
/*
 * config_modules.c: the list of modules that own configuration keys.  It
 * is the one place that names them, above them all, so that config.c
 * (below every module) includes none of their headers.  The order is the
 * order of the keys in --help and in gateway.conf.sample.
 */
#include <stddef.h>

#include "core/config.h"
#include "http/errpage_theme.h"
#include "http/tls.h"
#include "metrics_server.h"
#include "oidc/groups.h"
#include "oidc/oidc.h"
#include "oidc/token_profile.h"
#include "policy.h"
#include "route/easyauth.h"
#include "route/forward_auth.h"
#include "route/headers.h"
#include "route/router.h"
#include "route/upstream.h"
#include "route/upstream_named.h"
#include "route/websocket.h"
#include "server.h"
#include "session/cookie.h"
#include "session/session_config.h"

const struct config_module *const config_modules_list[] = {
    &server_config_module,
    &tls_config_module,
    &metrics_server_config_module,
    &upstream_config_module,
    &upstream_named_config_module,
    &websocket_config_module,
    &headers_config_module,
    &easyauth_config_module,
    &router_config_module,
    &forward_auth_config_module,
    &policy_config_module,
    &oidc_config_module,
    &token_profile_config_module,
    &session_config_module,
    &cookie_config_module,
    &groups_config_module,
    &errpage_theme_config_module,
    NULL,
};
