/* SPDX-License-Identifier: ISC */
/*
 * session.h: the signed-in session.  The browser holds only a random id
 * (32 bytes from the CSPRNG, base64url in the cookie); the store is keyed by
 * SHA-256 of the id, never the id; the record holds the claims, the
 * identity header block and the tokens sealed with AES-256-GCM.  Tokens are
 * only decrypted when they are used (forwarded, refreshed, logged out).
 */
#ifndef GATEHOUSE_SESSION_H
#define GATEHOUSE_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "crypto.h"

struct gh_error;
struct store_reader;

extern const struct config_key session_keys[];
extern const size_t session_nkeys;

#define SESSION_ID_B64_LEN 43 /* base64url of 32 bytes */

struct session {
	unsigned char se_key[32];               /* store key: SHA-256(id) */
	char se_cookie[SESSION_ID_B64_LEN + 1]; /* only set by session_new */
	int64_t se_created;
	int64_t se_last_seen;
	int64_t se_expires;       /* absolute end */
	int64_t se_at_expires;    /* access token expiry; 0 if none */
	int64_t se_at_lifetime;   /* its lifetime when it was issued */
	char *se_claims_json;     /* new */
	char *se_ident;           /* identity header block (new) */
	unsigned char *se_sealed; /* sealed tokens (new) */
	size_t se_sealed_len;
	json_t *se_claims; /* parsed on demand; new reference */
	int se_open;       /* tokens below are decrypted */
	struct secret se_access;
	struct secret se_refresh;
	struct secret se_idtoken;
};

enum session_result { SESSION_OK, SESSION_NONE, SESSION_FULL, SESSION_ERR };

/*
 * Load the key file (created 0600 when absent) and open the store.  Main
 * thread, before the workers start.  0 or -1 with err.
 */
int session_init(const struct config *cfg, struct gh_error *err);
void session_shutdown(void);

/* A fresh session with a new random id (se_cookie set).  New or NULL. */
struct session *session_new(time_t now, const struct config *cfg);
void session_free(struct session *s);

/*
 * The session named by a cookie value, if it exists and is neither expired
 * nor idle too long.  `reader` is the worker's read handle (may be NULL).
 * Refreshes last_seen at most once a minute.  SESSION_OK with *out (new),
 * SESSION_NONE, or SESSION_ERR.
 */
enum session_result session_load(struct store_reader *reader,
    const char *cookie, time_t now, const struct config *cfg,
    struct session **out);

/* Reload s's record (after another worker refreshed it). */
enum session_result session_reload(struct store_reader *reader,
    struct session *s, time_t now, const struct config *cfg);

/* Set the claims (JSON text, copied) and the identity header block. */
int session_set_claims(struct session *s, const char *claims_json);

/* Seal the tokens into s (any may be NULL/empty). */
int session_set_tokens(struct session *s, const char *access,
    const char *refresh, const char *idtoken, int64_t at_expires);

/* Decrypt the tokens into se_access/se_refresh/se_idtoken.  0 or -1. */
int session_open_tokens(struct session *s);

/* The claims as JSON (borrowed; parsed once), or NULL. */
json_t *session_claims(struct session *s);

/* Write s to the store.  SESSION_OK, SESSION_FULL (map full) or
 * SESSION_ERR. */
enum session_result session_save(struct session *s);

/* Delete the record of s (logout). */
void session_delete(struct session *s);

/*
 * Remember a sign-in `state` as used (single use) until `until`, in memory
 * shared by the workers; returns 1 if it was already used, 0 if now
 * recorded, -1 on error.  Any thread.
 */
int session_state_consume(const char *state, time_t now, time_t until);

/* Seal / open a small value with the cookie key; aad binds it to a
 * context (e.g. the state).  New strings (base64url) or NULL. */
char *session_seal_cookie(const char *aad, const void *pt, size_t len);
char *session_open_cookie(const char *aad, const char *b64, size_t *len);

/* A worker's read handle on the store (reused read transaction). */
struct store_reader *session_reader_new(void);
void session_reader_free(struct store_reader *r);

/* Delete up to max expired records; returns how many went. */
size_t session_sweep(time_t now, size_t max);

#endif
