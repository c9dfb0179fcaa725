/* SPDX-License-Identifier: ISC */
/*
 * http_client.h: outbound HTTP(S) to the OpenID Provider (discovery, JWKS,
 * token, refresh) over libcurl's multi interface, driven by a worker's
 * event_base in the shape of curl's hiperfifo example.  The event
 * loop never blocks and no error exits: every failure reaches the
 * transfer's done callback.
 *
 * Threads: curl_global_init() is process-wide and not thread-safe, so
 * main calls httpc_global_init() once before any worker starts (and
 * httpc_global_cleanup() after they all stopped).  Each worker owns one
 * struct httpc on its own event_base; every other function below is called
 * only from the thread running that event_base.  Nothing is shared between
 * two struct httpc.
 *
 * Security: only http and https, redirects are never followed (a 3xx is
 * returned as a response), TLS peer and host verification are always on,
 * no proxy is taken from the environment, and nothing of a request (URL
 * query, body, headers) is ever logged: bodies carry client secrets and
 * authorization codes, headers carry Basic credentials.
 */
#ifndef GATEHOUSE_HTTP_CLIENT_H
#define GATEHOUSE_HTTP_CLIENT_H

#include <stddef.h>

#include "core/error.h"

struct event_base;
struct evbuffer;
struct httpc;
struct httpc_xfer;

#define HTTPC_DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define HTTPC_DEFAULT_TIMEOUT_MS 10000L
#define HTTPC_DEFAULT_MAX_RESPONSE_SIZE (1024 * 1024)

/* Options of one client; borrowed during httpc_new only (copied). */
struct httpc_options {
	const char *ho_ca_file;      /* PEM bundle; NULL = the system CAs */
	long ho_connect_timeout_ms;  /* 0 = HTTPC_DEFAULT_CONNECT_TIMEOUT_MS */
	long ho_timeout_ms;          /* whole transfer; 0 = HTTPC_DEFAULT_... */
	size_t ho_max_response_size; /* body bytes; 0 = 1 MiB */
	const char *ho_user_agent;   /* NULL = "gatehouse/<version>" */
	const char *ho_proxy;        /* NULL or "" = no proxy at all */
	/* NULL, or HOST:PORT:ADDRESS entries (curl's --resolve), separated
	 * by spaces: that host and port connect to that address, checked
	 * (oidc_config.c) before it gets here. */
	const char *ho_resolve;
};

enum httpc_status {
	HTTPC_OK,        /* an HTTP response arrived, whatever its code */
	HTTPC_TIMEOUT,   /* connect or whole-transfer timeout */
	HTTPC_DNS,       /* the host name was not found */
	HTTPC_CONNECT,   /* refused, reset, closed without a response */
	HTTPC_TLS,       /* handshake or certificate verification failed */
	HTTPC_TOO_LARGE, /* body over max_response_size (aborted early) */
	HTTPC_ERROR      /* anything else (bad URL, disallowed scheme, ...) */
};

/*
 * What a transfer ended with.  Everything is borrowed and valid during the
 * done callback only: copy what must outlive it.  The body buffer is
 * cleansed after the callback (token responses carry tokens).
 */
struct httpc_result {
	enum httpc_status hr_status;
	long hr_code;                /* HTTP status; 0 if no response */
	const char *hr_body;         /* NUL-terminated; "" unless HTTPC_OK */
	size_t hr_len;               /* body length without the NUL */
	const char *hr_content_type; /* NULL if none */
	const char *hr_error; /* NULL if HTTPC_OK; curl's message, for logs */
	int hr_errno;         /* the system's error of a failed connect, or 0 */
	double hr_seconds;    /* total time of the transfer */
};

/*
 * Called exactly once per transfer that was neither cancelled nor dropped
 * by httpc_free, always from the event loop (never from inside
 * httpc_request).  It may start new transfers, cancel other transfers and
 * even httpc_free() the client.  After it returns the struct httpc_xfer is
 * gone.
 */
typedef void httpc_done_fn(const struct httpc_result *res, void *arg);

/* One request; borrowed during httpc_request only (copied). */
struct httpc_req {
	const char *hq_method; /* "GET" or "POST" */
	const char *hq_url;    /* http:// or https:// only */
	const char *hq_body;   /* POST body, form-encoded unless a header says
	                          otherwise; NULL = empty */
	size_t hq_body_len;
	/* NULL-terminated list of "Name: value" lines, or NULL; e.g.
	 * "Authorization: Basic ...", "Accept: application/json". */
	const char *const *hq_headers;
	long hq_timeout_ms; /* 0 = the client's default */
};

/*
 * Once per process, in main before any worker thread exists: wraps
 * curl_global_init().  0 or -1.
 */
int httpc_global_init(void);
/* Once per process, after every struct httpc has been freed. */
void httpc_global_cleanup(void);

/*
 * A new client on `base` (borrowed: it must outlive the client).  opt may
 * be NULL for all defaults.  Returns new (httpc_free) or NULL with err set.
 * The thread running base only.
 */
struct httpc *httpc_new(struct event_base *base,
    const struct httpc_options *opt, struct gh_error *err);

/*
 * Free the client.  Pending transfers are dropped WITHOUT calling their
 * done callbacks (their owners must not wait for them: a worker frees its
 * client only when it stops), their memory is freed, connections closed.
 * Every struct httpc_xfer of the client is invalid afterwards.  May be
 * called from inside a done callback (the free then completes when that
 * callback returns).  httpc_free(NULL) is a no-op.
 */
void httpc_free(struct httpc *h);

/*
 * Start a transfer.  The request is copied (the body and headers into
 * buffers cleansed when the transfer ends).  Returns a borrowed handle,
 * valid until done has returned or until httpc_cancel/httpc_free, or NULL
 * with err set on an immediate failure (done is then never called).
 */
struct httpc_xfer *httpc_request(struct httpc *h, const struct httpc_req *req,
    httpc_done_fn *done, void *arg, struct gh_error *err);

/*
 * Abort a pending transfer and free it; its done callback is never called.
 * Safe from inside another transfer's done callback; a no-op for NULL or
 * for the transfer whose done callback is running.
 */
void httpc_cancel(struct httpc_xfer *x);

/* A short name for a status, for log lines ("ok", "timeout", ...). */
const char *httpc_status_str(enum httpc_status st);

/*
 * Append "name=value" (with a leading '&' if buf is not empty) to buf,
 * both escaped as application/x-www-form-urlencoded: ALPHA DIGIT "*-._"
 * kept, space as '+', every other byte as %XX.  0 or -1 (out of memory).
 * Note: buf is not cleansed by anyone; a caller putting a secret in it
 * should drain it with care.
 */
int httpc_form_add(struct evbuffer *buf, const char *name, const char *value);

/*
 * s escaped as application/x-www-form-urlencoded (as httpc_form_add), e.g.
 * for a client id and secret before HTTP Basic (RFC 6749 section 2.3.1).
 * Returns new (free()) or NULL if out of memory.
 */
char *httpc_form_escape(const char *s);

/*
 * s percent-encoded for a URL query or path segment (RFC 3986: ALPHA DIGIT
 * "-._~" kept, every other byte as %XX, space as %20).  Returns new
 * (free()) or NULL if out of memory.
 */
char *httpc_url_escape(const char *s);

#endif
