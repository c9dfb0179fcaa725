/* SPDX-License-Identifier: ISC */
/*
 * session.h: the signed-in session.  The browser holds only a random id
 * (32 bytes from the CSPRNG, base64url in the cookie); the store is keyed by
 * SHA-256 of the id (its first 16 bytes), never the id.  A record has two
 * parts (see store.h):
 *   - hot, read by every signed-in request: the times (created, last seen,
 *     end, access-token expiry) and the identity header block, laid out so
 *     a lookup copies the block once and parses nothing else;
 *   - cold, read only when needed (session_claims, session_open_tokens,
 *     session_set_*): the claims JSON, for routes with criteria and
 *     /.auth/me, and the tokens sealed with AES-256-GCM, decrypted only
 *     when they are used (forwarded, refreshed, logged out).
 * A record of another format version (the magic in each part) reads as no
 * session: its user signs in again.
 *
 * Threads: a struct session belongs to one request (or refresh) on one
 * worker thread; the session_* functions below that take one may only be
 * called there.
 */
#ifndef GATEHOUSE_SESSION_H
#define GATEHOUSE_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "core/config.h"
#include "core/crypto.h"

struct event_base;
struct gh_error;
struct store_reader;

#define SESSION_ID_B64_LEN 43 /* base64url of 32 bytes */

/*
 * A downstream token of a profile (token.NAME), kept sealed with the
 * session's other tokens (after them: a record written before profiles
 * existed reads with none).
 */
#define SESSION_PTOK_NAME_MAX 64
#define SESSION_PTOK_MAX 16
/* The provider refused this profile's refresh (consent missing, or the
 * user must interact): no new try until a sign-in asks consent for it. */
#define SESSION_PTOK_REFUSED 0x1
/* The sign-in that made this session asked consent for this profile:
 * a refusal now is final (no second trip to the provider). */
#define SESSION_PTOK_ASKED 0x2

struct session_ptok {
	char sp_name[SESSION_PTOK_NAME_MAX + 1];
	struct secret sp_token; /* empty when none */
	int64_t sp_expires;     /* 0 when none */
	int64_t sp_lifetime;    /* its lifetime when it was issued */
	uint32_t sp_flags;      /* SESSION_PTOK_* */
};

struct session {
	unsigned char se_key[32];               /* SHA-256(id); store key */
	char se_cookie[SESSION_ID_B64_LEN + 1]; /* only set by session_new */
	int64_t se_created;
	int64_t se_last_seen;
	int64_t se_expires;     /* absolute end */
	int64_t se_at_expires;  /* access token expiry; 0 if none */
	int64_t se_at_lifetime; /* its lifetime when it was issued */
	/* Identity header block (hot part), NUL-terminated, never NULL after
	 * session_load; owned by s (see se_ident_inline). */
	char *se_ident;
	size_t se_ident_len; /* its bytes: the block, then NUL and the sub */
	/* The cold part, valid once se_cold is SESSION_COLD_LOADED; read
	 * through session_claims / session_open_tokens, not directly. */
	char *se_claims_json;     /* new */
	unsigned char *se_sealed; /* sealed tokens (new) */
	size_t se_sealed_len;
	json_t *se_claims; /* parsed on demand; new reference */
	int se_open;       /* tokens below are decrypted */
	struct secret se_access;
	struct secret se_refresh;
	struct secret se_idtoken;
	struct session_ptok *se_ptoks; /* opened with the tokens */
	size_t se_nptoks;
	/* Private to session.c. */
	struct store_reader *se_reader; /* borrowed: for the lazy cold read */
	int se_cold;                    /* enum session_cold */
	int se_cold_dirty; /* claims or tokens changed since the last save */
	/* Read from the store (or saved there): a whole save replaces the
	 * record only if it is still there, so a session deleted meanwhile
	 * (sign-out, the admin command's revoke) is not written back. */
	int se_in_store;
	int se_ident_inline; /* se_ident lies in s's own allocation */
	/* cfg's trust_unverified_email, for the identity block that
	 * session_set_claims builds. */
	int se_trust_unverified_email;
};

/* Where a session's cold part stands. */
enum session_cold {
	SESSION_COLD_UNREAD, /* in the store, not read yet */
	SESSION_COLD_LOADED, /* in s (or s is new: nothing to read) */
	SESSION_COLD_GONE    /* the record ended or is damaged: no session */
};

enum session_result {
	SESSION_OK,
	SESSION_NONE,    /* no such session (or it ended) */
	SESSION_FULL,    /* the store is full (LMDB) */
	SESSION_ERR,     /* the store failed (logged by it) */
	SESSION_UNAVAIL, /* the store cannot be reached now (Redis) */
	SESSION_PENDING, /* a *_start call is under way: its done runs later */
	SESSION_BUSY     /* a lock is held by another owner */
};

/*
 * Load the process's keys (keyfile_init: the key file is created 0600 when
 * absent), read the Redis password file if any, and open the store (LMDB
 * or Redis, as session_store says).  Main thread, before the workers
 * start.  0 or -1 with err (never a password).
 */
int session_init(const struct config *cfg, struct gh_error *err);
void session_shutdown(void);

/* Open the store only (session_init without the key file): for the
 * sessions admin command, which never opens a token.  Main thread.  0,
 * or -1 with err. */
int session_store_open(const struct config *cfg, struct gh_error *err);

/* A fresh session with a new random id (se_cookie set).  New or NULL. */
/* MSAL's identity package counts a user signed in until the ID token's
 * exp plus this many seconds. */
#define SESSION_ID_TOKEN_ALLOWANCE 210

/* session_lifetime = id_token: the session ends at the ID token's exp
 * (claims, JSON) plus SESSION_ID_TOKEN_ALLOWANCE; nothing when the claims
 * have no exp.  Others: nothing. */
void session_follow_id_token(
    struct session *s, const struct config *cfg, const char *claims);

struct session *session_new(time_t now, const struct config *cfg);
void session_free(struct session *s);

/*
 * The session named by a cookie value, if it exists and is neither expired
 * nor idle too long.  `reader` is the worker's read handle (may be NULL:
 * each read then opens its own transaction).  Reads the hot part only,
 * in one short read transaction, and copies the identity block once; the
 * cold part is read later, when needed, through the same reader, so s
 * keeps `reader` (borrowed): use s only on the reader's thread, and not
 * after the reader is freed.  Refreshes last_seen at most once a minute
 * (a write of the hot part only).  SESSION_OK with *out (new),
 * SESSION_NONE (no such session, ended, or a record this version cannot
 * read), or SESSION_ERR.
 */
enum session_result session_load(struct store_reader *reader,
    const char *cookie, time_t now, const struct config *cfg,
    struct session **out);

/*
 * Reload s's record under s->se_key (after another worker refreshed it):
 * the hot part now, the cold part again when next needed; decrypted
 * tokens and parsed claims are dropped (pointers from session_claims
 * become invalid).  s keeps `reader` as for session_load.  SESSION_OK,
 * SESSION_NONE or SESSION_ERR; on anything but SESSION_OK, free s.
 */
enum session_result session_reload(struct store_reader *reader,
    struct session *s, time_t now, const struct config *cfg);

/* Set the claims (JSON text, copied) and the identity header block.  Reads
 * the cold part first if needed (so a save keeps the tokens).  0 or -1. */
int session_set_claims(struct session *s, const char *claims_json);
/* The same with claims already parsed from claims_json (a sign-in has
 * them from the ID token: parsing its own dump again cost it a twentieth
 * of its CPU).  The session takes a reference to claims; nothing may
 * change them afterwards. */
int session_set_claims_parsed(
    struct session *s, const char *claims_json, json_t *claims);

/* Seal the tokens into s (any may be NULL/empty), with s's profile
 * tokens kept.  Reads the cold part first if needed (so a save keeps the
 * claims).  0 or -1. */
int session_set_tokens(struct session *s, const char *access,
    const char *refresh, const char *idtoken, int64_t at_expires);

/*
 * Decrypt the tokens into se_access/se_refresh/se_idtoken, reading the
 * cold part first if needed.  0, or -1 (also when the record has ended or
 * its cold part is missing or unreadable: treat as no session).
 *
 * The lazy cold read (here, in session_claims and session_set_*) reads
 * the hot part again in the same transaction and takes it too, so claims,
 * tokens, se_ident and the times of s always come from one commit (another
 * worker may have refreshed the record since the lookup): a se_ident
 * pointer taken before the call may be stale after it.
 */
int session_open_tokens(struct session *s);

/* The profile token called name in s (borrowed from s, valid until its
 * tokens change or s is freed or reloaded), decrypting the tokens first
 * if need be; NULL when s has none for that profile (or cannot be
 * read). */
const struct session_ptok *session_ptok_get(
    struct session *s, const char *name);

/*
 * Set the token of profile name (access may be NULL: none, expires 0)
 * and its flags, keeping every other token of s; seals them again.
 * expires is absolute; the lifetime is counted from now.  0 or -1.
 */
int session_set_ptok(struct session *s, const char *name, const char *access,
    int64_t expires, uint32_t flags);

/* Replace the refresh token only (rotation by a profile's refresh), and
 * seal again.  0 or -1. */
int session_set_refresh(struct session *s, const char *refresh);

/* When the provider last vouched for s: the time of its last token grant
 * (sign-in or refresh), or its creation when it has no access token.
 * From the hot part only (no store read, no format change). */
int64_t session_validated(const struct session *s);

/* Whether s has a refresh token: 1 or 0, or -1 when knowing would take a
 * store read (its cold part is not loaded yet: LMDB reads it lazily).
 * Decrypts the tokens when they are there. */
int session_has_refresh(struct session *s);

/* The claims as JSON (borrowed, valid until s is freed or reloaded;
 * parsed once), reading the cold part first if needed; NULL when the
 * record has ended or its cold part is missing or unreadable (a route
 * with criteria then asks to sign in: policy_eval's NEED_LOGIN). */
json_t *session_claims(struct session *s);

/* The user's sub (the "sub" claim, kept beside the identity block for
 * the access log; borrowed from s, valid until s is freed or reloaded),
 * "" when unknown; s may be NULL.  No store read. */
const char *session_sub(const struct session *s);

/* Write s to the store: both parts when the claims or tokens changed (or s
 * is new), else the hot part only.  SESSION_OK, SESSION_NONE (s was read
 * from the store, and its record was deleted meanwhile: it stays deleted,
 * whichever parts were to be written),
 * SESSION_FULL (map full) or SESSION_ERR. */
enum session_result session_save(struct session *s);

/* Delete the record of s, both parts (logout). */
void session_delete(struct session *s);

/* About how many sessions the store holds (store_count), or -1 when there
 * is no store or it cannot count.  Any thread. */
long session_count(void);

/* A worker's handle on the store: the reused read transaction (LMDB),
 * or the worker's connection on its event base (Redis; base must not be
 * NULL then).  New, or NULL (also when no store is open). */
struct store_reader *session_reader_new(struct event_base *base);
void session_reader_free(struct store_reader *r);

/* Whether several processes (replicas) share the store (Redis). */
int session_store_shared(void);

/* Whether the store can be used now (readiness): always for LMDB; for
 * Redis, every worker's connection is up.  0 for a NULL r. */
int session_store_ready(struct store_reader *r);

/*
 * The asynchronous calls, for a store that answers later (Redis; see
 * store.h): each returns its result when it completed during the call
 * (always with LMDB: these then are session_load, session_reload,
 * session_save and session_delete), or SESSION_PENDING: done(arg, r)
 * runs once, later, on the reader's thread, unless session_op_cancel(*op)
 * came first, and *op is the call's handle until then (NULL otherwise).
 * SESSION_UNAVAIL: the store could not be asked or did not answer.
 *
 * With Redis a load or reload reads both parts at once (one round trip),
 * so the claims and tokens of the session are there without another
 * read; the lazy cold read of the synchronous functions never happens
 * (except after session_load_hot_start, below).
 */
typedef void session_done_fn(void *arg, enum session_result r);
struct session_op;

/* session_load: *out (which must stay valid until done) is set before
 * done runs. */
enum session_result session_load_start(struct store_reader *reader,
    const char *cookie, time_t now, const struct config *cfg,
    struct session **out, session_done_fn *done, void *arg,
    struct session_op **op);

/* session_load_start reading only the hot part from a store across the
 * network (Redis), for a request that uses only the identity block and
 * the times (no claims, no tokens): the sealed tokens and the claims
 * then do not travel on every request.  With such a store,
 * session_claims and session_open_tokens find nothing afterwards (NULL,
 * -1): the lazy read cannot cross the network.  With LMDB it is
 * session_load_start (the cold part stays readable lazily). */
enum session_result session_load_hot_start(struct store_reader *reader,
    const char *cookie, time_t now, const struct config *cfg,
    struct session **out, session_done_fn *done, void *arg,
    struct session_op **op);

/* session_reload: s must not be used (or freed) until done has run; on
 * anything but SESSION_OK, free s. */
enum session_result session_reload_start(struct store_reader *reader,
    struct session *s, time_t now, const struct config *cfg,
    session_done_fn *done, void *arg, struct session_op **op);

/* session_save: s must stay until done has run.  done may be NULL: a
 * save nobody waits for (s may then go at once; its failure is logged by
 * the store). */
enum session_result session_save_start(struct store_reader *reader,
    struct session *s, session_done_fn *done, void *arg,
    struct session_op **op);

/* session_delete: SESSION_OK or SESSION_NONE when the record is gone;
 * anything else leaves it behind (logged: a copied cookie keeps
 * working).  s may go once the call returns. */
enum session_result session_delete_start(struct store_reader *reader,
    struct session *s, session_done_fn *done, void *arg,
    struct session_op **op);

/*
 * A short lock on a session's record across every replica sharing the
 * store (for its refresh), owned by owner (SESSION_OWNER_LEN random bytes
 * the caller made), for ttl_ms: SESSION_OK (ours), SESSION_BUSY (another
 * replica's), SESSION_UNAVAIL, SESSION_ERR, or SESSION_PENDING.  Unlock:
 * SESSION_OK, or SESSION_NONE when it was not ours any more (expired).
 * done may be NULL for an unlock nobody waits for.  A store that is not
 * shared (LMDB) answers SESSION_OK at once.
 */
#define SESSION_OWNER_LEN 16
enum session_result session_lock_start(struct store_reader *reader,
    const unsigned char key[32], const unsigned char owner[SESSION_OWNER_LEN],
    int ttl_ms, session_done_fn *done, void *arg, struct session_op **op);
enum session_result session_unlock_start(struct store_reader *reader,
    const unsigned char key[32], const unsigned char owner[SESSION_OWNER_LEN],
    session_done_fn *done, void *arg, struct session_op **op);

/* Forget a call under way: done never runs (a write may still happen).
 * NULL is a no-op. */
void session_op_cancel(struct session_op *op);

/*
 * Provider logout.  A session is filed in the store under tags derived
 * from its claims (session_tags.c): its ID token's sid and its sub, each
 * bound to its iss and hashed (the store never holds either value).
 * session_save files it when it writes the claims.
 *
 * session_end_start ends every session filed under `value` (a sid or a
 * sub of issuer iss; both borrowed), on every worker, and with a shared
 * store on every replica: SESSION_OK with *ended (set before done; keep
 * it valid until then) the number of sessions deleted, 0 when none
 * matched; SESSION_ERR, SESSION_FULL, SESSION_UNAVAIL; or
 * SESSION_PENDING.
 *
 * session_once_start records `what` (len bytes, hashed; for a token's
 * iss and jti) until `expiry`: SESSION_OK the first time, SESSION_BUSY
 * when it was recorded before and has not expired, or as above.  The
 * record is in the store, so replicas sharing it share it.
 */
enum session_tag_kind { SESSION_TAG_SID, SESSION_TAG_SUB };
struct store_tags;

/* The tags of a session whose claims are `claims` (borrowed), into t:
 * 0, or -1 when the claims name no iss (t then has no tag). */
int session_tags_fill(const json_t *claims, struct store_tags *t);

/* The store's tag (16 bytes) of `value` of issuer iss, as
 * session_tags_fill files it: 0, or -1 when nothing can be filed under
 * it (empty, or over 1 KiB). */
int session_tags_for(enum session_tag_kind kind, const char *iss,
    const char *value, unsigned char out[16]);

enum session_result session_end_start(struct store_reader *reader,
    enum session_tag_kind kind, const char *iss, const char *value,
    size_t *ended, session_done_fn *done, void *arg, struct session_op **op);
enum session_result session_once_start(struct store_reader *reader,
    const void *what, size_t len, time_t expiry, session_done_fn *done,
    void *arg, struct session_op **op);

/*
 * What the sessions admin command sees of a record: the times, the user
 * and the provider's session id, never a token or the cookie (its id is
 * only in the browser; the key is a hash of it).  Strings are borrowed,
 * valid during the session_scan_fn call only.
 */
#define SESSION_STORE_KEY_LEN 16 /* store.h's STORE_KEY_LEN */
struct session_info {
	unsigned char si_key[SESSION_STORE_KEY_LEN]; /* the record's key */
	int64_t si_created;
	int64_t si_last_seen;
	int64_t si_expires;
	const char *si_sub;  /* "" when unknown */
	const char *si_name; /* identity_user of the claims; "" */
	const char *si_sid;  /* the ID token's sid claim, or NULL */
	int si_live;         /* neither ended nor idle too long */
};

/* Return SESSION_SCAN_KEEP, SESSION_SCAN_DELETE, or -1 to stop. */
#define SESSION_SCAN_KEEP 0
#define SESSION_SCAN_DELETE 1
typedef int session_scan_fn(void *arg, const struct session_info *si);

/*
 * Call fn on each record of the store opened by session_store_open (see
 * store_scan: a running gatehouse may keep writing beside it), decoded
 * with this module's own record checks; records it cannot read are
 * skipped.  Those fn asks for are deleted; *deleted counts them.
 * SESSION_OK, SESSION_UNAVAIL or SESSION_ERR (err says why unless fn
 * stopped the walk).  Main thread of the command line.
 */
enum session_result session_scan(const struct config *cfg, time_t now,
    session_scan_fn *fn, void *arg, size_t *deleted, struct gh_error *err);

/* Delete up to max expired records; returns how many went. */
size_t session_sweep(time_t now, size_t max);

#endif
