/* SPDX-License-Identifier: ISC */
/*
 * config.h: the configuration file format and the immutable struct config.
 * config.c knows the format (key = value, #, ${NAME}, GATEHOUSE_<KEY>, .env);
 * each module owns its keys: a sorted table of struct config_key, its
 * parsers, its cross-key check and its free hook, exported as one struct
 * config_module.  config_modules.c, above every module, lists them; config.c
 * only walks that list and names no module.
 */
#ifndef GATEHOUSE_CONFIG_H
#define GATEHOUSE_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/crypto.h"

struct client_cert;
struct config;
struct ssl_ctx_st;
struct config_key;
struct policy_table;
struct token_profile;

/*
 * A value parser: parse `value`, found on `line` of the file (0 when it
 * came from a default or the environment), into cfg (usually at
 * key->ck_off).  Returns 0, or -1 with *errstr set to a static message.
 */
typedef int config_parse_fn(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr);

/*
 * How a cross-key check reports a problem: `line` is the line it concerns,
 * or 0 for the file as a whole.
 */
typedef void config_report_fn(void *arg, int line, const char *msg);

/* A module's cross-key check, run once every key is read; returns the
 * number of problems reported. */
typedef int config_check_fn(
    struct config *cfg, config_report_fn *report, void *arg);

/* A module's release of what its own parsers and check allocated in cfg
 * (the fields that no generic parser filled); the rest is left as is. */
typedef void config_free_fn(struct config *cfg);

#define CONFIG_REQUIRED 0x01 /* a value must be given */
#define CONFIG_MULTI 0x02    /* may repeat; each line is parsed in turn */
#define CONFIG_SECRET 0x04   /* never printed or logged */
#define CONFIG_TEXT                                                            \
	0x08 /* words for people (a product name): any                         \
	        text, "<...>" included, is a real value */
/* A family of keys: ck_name ends in '.' and "NAME.SUFFIX" lines all go to
 * it; its parser gets "SUFFIX VALUE" (SUFFIX checked by config.c: letters,
 * digits, '_' and '-', at most CONFIG_SUFFIX_MAX).  Set from the file only,
 * never from the environment (a variable's name cannot hold the dot). */
#define CONFIG_PREFIX 0x10
#define CONFIG_SUFFIX_MAX 64

struct config_key {
	const char *ck_name;
	config_parse_fn *ck_parse;
	size_t ck_off; /* offset in struct config for the generic parsers */
	const char *ck_default; /* text parsed before the file; NULL for none */
	const char *ck_help;    /* one sentence for --help and the sample */
	int ck_flags;
};

/*
 * One module's configuration.  config_free releases the field of every key
 * whose parser is a generic one (config_parse_str and config_parse_url own a
 * char *, config_parse_secret a struct secret; the others store values that
 * need no freeing), then calls cm_free for the rest.
 */
struct config_module {
	const char *cm_name;
	const struct config_key *cm_keys; /* sorted by name */
	size_t cm_nkeys;
	config_check_fn *cm_check; /* NULL for none */
	config_free_fn *cm_free;   /* NULL for none */
};

/*
 * Every module's configuration, in the order --help and the sample show
 * their keys; NULL-terminated.  Defined in config_modules.c, the one file
 * that names the modules, so that config.c includes none of them.
 */
extern const struct config_module *const config_modules_list[];

/* One CIDR block of an address list (trusted_proxies, ...). */
struct config_cidr {
	int cc_family; /* AF_INET or AF_INET6 */
	uint8_t cc_addr[16];
	int cc_prefix;
};

#define CONFIG_MAX_CIDRS 64

/* An address list: config_parse_cidrs fills it, config_cidrs_contains
 * asks it. */
struct config_cidrs {
	struct config_cidr cs_v[CONFIG_MAX_CIDRS];
	int cs_n;
};

/* The upstream: a TCP host:port or a unix socket, with an optional prefix. */
struct config_upstream {
	char *cu_host; /* host name or address; NULL for unix */
	int cu_port;
	char *cu_unix;     /* unix socket path, or NULL */
	char *cu_prefix;   /* path prefix without trailing '/', "" for none */
	char *cu_hostport; /* Host header value for the upstream */
	/* where to connect, resolved once per configuration
	 * (upstream_resolve), before the workers use it */
	struct sockaddr_storage cu_addr;
	socklen_t cu_addrlen;
	/* named upstreams (upstream.NAME) only */
	char *cu_name; /* NULL for the default upstream */
	int cu_line;   /* the line that names it */
	int cu_failed; /* its URL was refused: routes naming it get no
	                * second error */
	int cu_used;   /* some route names it (set by the check) */
};

/*
 * The whole configuration.  Built once by config_load(), then read-only: the
 * workers share it without locks.  Members use the cf_ prefix.
 */
/* Who an access line names (log_user). */
enum config_log_user {
	CONFIG_LOG_USER_SUB,  /* the "sub" claim: stable, not a person's name */
	CONFIG_LOG_USER_NAME, /* the user name sent as X-Forwarded-User */
	CONFIG_LOG_USER_OFF   /* nobody */
};

struct config {
	char *cf_file; /* the path it was read from */

	/* server */
	char *cf_listen_host;
	int cf_listen_port;
	int cf_listen_tls;      /* `listen = host:port tls` */
	char *cf_redirect_host; /* listen_http_redirect; NULL = off */
	int cf_redirect_port;
	int cf_workers;
	size_t cf_max_request_body;
	size_t cf_max_buffered_bodies;
	size_t cf_max_header_size;
	int cf_max_headers;
	size_t cf_max_request_line;
	int cf_idle_timeout;   /* seconds */
	int cf_header_timeout; /* seconds */
	int cf_drain_timeout;  /* seconds */

	/* proxy */
	struct config_upstream cf_upstream;   /* the default upstream */
	struct config_upstream *cf_upstreams; /* upstream.NAME, file order */
	size_t cf_nupstreams;
	int cf_upstream_timeout;         /* seconds */
	int cf_upstream_connect_timeout; /* seconds */
	/* Idle connections kept per worker and upstream; -1 (auto): as many
	 * as the load used, each closed after cf_upstream_keepalive_timeout
	 * unused. */
	int cf_upstream_keepalive;
	int cf_upstream_keepalive_timeout; /* seconds */
	/* Connections per worker and upstream (0: no limit); a request over
	 * it waits up to cf_upstream_queue_timeout seconds for one. */
	int cf_upstream_max_connections;
	int cf_upstream_queue_timeout;

	/* websocket */
	int cf_ws_idle_timeout;  /* seconds without a byte either way */
	int cf_ws_session_check; /* seconds between session checks */
	int cf_ws_origin_check;  /* refuse a cross-site handshake */

	/* headers */
	struct config_cidrs cf_trusted;

	/* router */
	char *cf_auth_prefix;

	/* forward_auth */
	struct config_cidrs cf_forward_auth_peers;
	int cf_forward_auth_tokens;

	/* policies: the route table, built line by line */
	struct policy_table *cf_routes;
	/* token.NAME lines (oidc/token_profile.c), in file order */
	struct token_profile *cf_token_profiles;
	size_t cf_ntoken_profiles;
	int cf_route_case_insensitive;
	int cf_trust_unverified_email; /* also read by headers */

	/* log */
	int cf_log_level;
	int cf_access_log;
	int cf_log_user;   /* enum config_log_user */
	int cf_log_format; /* enum log_format */

	/* tls: the listener's certificate, read and checked by the tls
	 * check into cf_tls_ctx (NULL without a tls listener) */
	char *cf_tls_certificate;
	char *cf_tls_certificate_key;
	int cf_tls_certificate_line; /* where each was set, for errors */
	int cf_tls_certificate_key_line;
	struct ssl_ctx_st *cf_tls_ctx;

	/* metrics: the /metrics listener; no host = off */
	char *cf_metrics_host;
	int cf_metrics_port;

	/* oidc: the provider and this client */
	char *cf_authority;   /* Entra style; discovery under /v2.0 */
	char *cf_oidc_issuer; /* generic; discovery under the issuer */
	char *cf_client_id;
	struct secret cf_client_secret; /* or read from cf_client_secret_file */
	char *cf_client_secret_file;
	char *cf_client_certificate;     /* PEM file: the certificate */
	char *cf_client_certificate_key; /* PEM file: its private key */
	int cf_client_assertion_alg;     /* CLIENT_CERT_PS256 or _RS256 */
	/* both files, read and checked by the oidc check; NULL without */
	struct client_cert *cf_client_cert;
	char *cf_redirect_uri;
	char *cf_scopes;      /* beyond openid profile offline_access */
	int cf_response_mode; /* OIDC_RESPONSE_QUERY or _FORM_POST */
	int cf_token_auth;    /* OIDC_AUTH_* */
	char *cf_ca_file;
	char *cf_provider_resolve; /* HOST:PORT:ADDRESS ... */
	int cf_offline_access;     /* 0, 1 or OIDC_OFFLINE_AUTO */
	int cf_provider_timeout;   /* seconds */
	int cf_clock_skew;         /* seconds */
	int cf_discovery_refresh;  /* seconds */
	char *cf_post_logout_redirect_uri;
	int cf_max_pending_logins;
	char *cf_api_audience;   /* the key's text */
	char **cf_api_audiences; /* parsed; NULL-terminated */
	int cf_napi_audiences;
	/* derived from redirect_uri by the oidc check */
	char *cf_public_base; /* scheme://host[:port] */
	int cf_public_https;
	char *cf_callback_path;
	char *cf_discovery_url;

	/* session */
	char *cf_session_store; /* a path, or a Redis URL: may hold a password,
	                           never print it */
	char *cf_session_key_file;
	int cf_session_key_file_set; /* given, not the built-in default */
	char *cf_redis_password_file;
	char *cf_redis_sentinel_password_file; /* the sentinels' own AUTH */
	int cf_redis_timeout_ms;
	int cf_session_lifetime;     /* seconds */
	int cf_session_id_token;     /* session_lifetime = id_token */
	int cf_session_idle_timeout; /* seconds; 0: off */
	int cf_session_revalidate;   /* seconds; 0: off */
	size_t cf_session_map_size;
	char *cf_cookie_name;
	char *cf_cookie_domain;

	/* forwarding */
	int cf_msal_sample_paths; /* /login, /logout as the sample's */
	int cf_from_dotenv;       /* .env supplied a key */
	int cf_forward_access_token;
	int cf_forward_authorization;
	int cf_refresh_before; /* seconds */
	int cf_me_includes_tokens;
	int cf_me_format;        /* EASYAUTH_ME_*: the shape of /.auth/me */
	int cf_forward_id_token; /* X-MS-TOKEN-AAD-ID-TOKEN upstream */

	/* pages: branding, and error_page_dir's page.html (read by the
	 * pages' check) */
	char *cf_error_page_dir;
	char *cf_brand_name;
	char *cf_brand_logo_url;
	char *cf_brand_support;
	char *cf_page_template;

	/* groups */
	int cf_groups_overage;
	char *cf_graph_endpoint;
};

/*
 * Load the configuration from `path`, then the .env beside it (or in the
 * working directory), then GATEHOUSE_<KEY> environment overrides.  Every
 * error is printed to `errf` as "file:line: message" and parsing goes on;
 * returns a new config (free with config_free) or NULL if there was any
 * error.  Main thread only, before the workers start.
 */
struct config *config_load(const char *path, FILE *errf);

/* Free a config; NULL is a no-op. */
void config_free(struct config *cfg);

/* Print every key with its default and help line, from the key tables. */
void config_print_keys(FILE *f);

/* Look up a key by name across every module's table; NULL if unknown. */
const struct config_key *config_key_find(const char *name);

/* Call fn for every key of every table, in table order. */
void config_key_foreach(
    void (*fn)(const struct config_key *, void *), void *arg);

/* Generic parsers for the tables (value stored at ck_off). */
config_parse_fn config_parse_str;    /* char * (new copy) */
config_parse_fn config_parse_secret; /* struct secret */
config_parse_fn config_parse_int;    /* int >= 0 */
config_parse_fn config_parse_bool;   /* int: on/off, yes/no, true/false, 1/0 */
config_parse_fn config_parse_duration; /* int seconds: 30, 30s, 5m, 2h, 1d */
config_parse_fn config_parse_size;     /* size_t bytes: 512, 64k, 16M, 1G */
config_parse_fn config_parse_url;      /* char *: absolute http(s) URL */
/* struct config_cidrs: IP addresses or CIDR blocks, space or comma
 * separated; an empty value is an empty list. */
config_parse_fn config_parse_cidrs;

/* 1 if addr (an IPv4 or IPv6 address as text) is inside one of the blocks
 * of list, else 0 (also for NULL or text that is no address). */
int config_cidrs_contains(const struct config_cidrs *list, const char *addr);

/*
 * Parse an absolute http or https URL into its parts; any output may be NULL.
 * Returns 0 or -1 with *errstr.  *host and *path are new strings.
 */
int config_url_split(const char *url, int *https, char **host, int *port,
    char **path, const char **errstr);

#endif
