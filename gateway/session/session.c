/* SPDX-License-Identifier: ISC */
/*
 * session.c: session records in the store, their tokens sealed with
 * keyfile.c's token key.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/keyfile.h"
#include "core/log.h"
#include "core/magic.h"
#include "session/identity.h"
#include "session/session.h"
#include "session/session_config.h"
#include "store.h"

#define SESSION_TOUCH_EVERY 60 /* seconds between last_seen updates */

/*
 * Seconds between two writes of last_seen: at most once a minute, so a
 * busy session costs no store write per request; a quarter of a shorter
 * idle timeout, so that one is still measured to a quarter of itself.
 */
static int64_t
session_touch_every(const struct config *cfg)
{
	int64_t t = cfg->cf_session_idle_timeout / 4;

	if (cfg->cf_session_idle_timeout <= 0 || t > SESSION_TOUCH_EVERY)
		return SESSION_TOUCH_EVERY;
	return t < 1 ? 1 : t;
}

/*
 * Whether s has been idle too long.  The stored last_seen lags the last
 * request by less than one touch interval (a request writes it once the
 * stored one is that old), so the timeout is counted from last_seen plus
 * that interval: a session used within session_idle_timeout never ends
 * for idleness, and one unused ends at most one interval later.
 */
static int
session_idle_over(const struct session *s, time_t now, const struct config *cfg)
{
	if (cfg->cf_session_idle_timeout <= 0)
		return 0;
	return now - s->se_last_seen >
	    cfg->cf_session_idle_timeout + session_touch_every(cfg);
}

int64_t
session_validated(const struct session *s)
{
	/* The last token grant: session_set_tokens keeps the access token's
	 * lifetime beside its expiry, so their difference is when it was
	 * issued (sign-in or refresh).  No new field: the hot format stays
	 * as it is, and every record written before reads right. */
	if (s->se_at_expires > 0 && s->se_at_lifetime > 0)
		return s->se_at_expires - s->se_at_lifetime;
	return s->se_created;
}

/* Process-wide and read-only once the workers run. */
static struct store *session_store;

int
session_init(const struct config *cfg, struct gh_error *err)
{
	if (keyfile_init(cfg->cf_session_key_file, err) == -1)
		return -1;
	return session_store_open(cfg, err);
}

int
session_store_open(const struct config *cfg, struct gh_error *err)
{
	struct store_options o;
	struct secret pw = {NULL, 0}, spw = {NULL, 0};

	if (cfg->cf_redis_password_file != NULL &&
	    session_config_password_read("redis_password_file",
	        cfg->cf_redis_password_file, &pw, err) == -1)
		return -1;
	if (cfg->cf_redis_sentinel_password_file != NULL &&
	    session_config_password_read("redis_sentinel_password_file",
	        cfg->cf_redis_sentinel_password_file, &spw, err) == -1) {
		crypto_secret_cleanup(&pw);
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.so_map_size = cfg->cf_session_map_size;
	o.so_password = &pw;
	o.so_sentinel_password = &spw;
	o.so_timeout_ms = cfg->cf_redis_timeout_ms;
	session_store =
	    store_open_with(store_backend_for(cfg->cf_session_store),
	        cfg->cf_session_store, &o, err);
	crypto_secret_cleanup(&pw);
	crypto_secret_cleanup(&spw);
	return session_store == NULL ? -1 : 0;
}

void
session_shutdown(void)
{
	store_close(session_store);
	session_store = NULL;
	keyfile_shutdown();
}

long
session_count(void)
{
	return session_store == NULL ? -1 : store_count(session_store);
}

struct store_reader *
session_reader_new(struct event_base *base)
{
	return session_store == NULL ? NULL
	                             : store_reader_new(session_store, base);
}

int
session_store_shared(void)
{
	return session_store != NULL && store_shared(session_store);
}

int
session_store_ready(struct store_reader *r)
{
	return store_ready(r);
}

void
session_reader_free(struct store_reader *r)
{
	store_reader_free(r);
}

struct session *
session_new(time_t now, const struct config *cfg)
{
	unsigned char id[32];
	struct session *s;
	size_t n;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	if (crypto_random(id, sizeof(id)) == -1 ||
	    crypto_b64url_encode(
	        id, sizeof(id), s->se_cookie, sizeof(s->se_cookie), &n) == -1 ||
	    crypto_sha256(id, sizeof(id), s->se_key) == -1) {
		free(s);
		return NULL;
	}
	s->se_created = s->se_last_seen = now;
	s->se_expires = now + cfg->cf_session_lifetime;
	s->se_trust_unverified_email = cfg->cf_trust_unverified_email;
	/* Nothing in the store yet: the first save writes both parts. */
	s->se_cold = SESSION_COLD_LOADED;
	s->se_cold_dirty = 1;
	return s;
}

void
session_follow_id_token(
    struct session *s, const struct config *cfg, const char *claims)
{
	json_t *doc, *exp;

	if (!cfg->cf_session_id_token || claims == NULL)
		return;
	doc = json_loads(claims, 0, NULL);
	exp = json_object_get(doc, "exp");
	if (json_is_integer(exp) && json_integer_value(exp) > 0)
		s->se_expires =
		    json_integer_value(exp) + SESSION_ID_TOKEN_ALLOWANCE;
	json_decref(doc);
}

static void
session_ptoks_clear(struct session *s)
{
	size_t i;

	for (i = 0; i < s->se_nptoks; i++)
		crypto_secret_cleanup(&s->se_ptoks[i].sp_token);
	free(s->se_ptoks);
	s->se_ptoks = NULL;
	s->se_nptoks = 0;
}

/* Drop the cold part s holds (claims, sealed and opened tokens). */
static void
session_cold_clear(struct session *s)
{
	free(s->se_claims_json);
	s->se_claims_json = NULL;
	free(s->se_sealed);
	s->se_sealed = NULL;
	s->se_sealed_len = 0;
	json_decref(s->se_claims);
	s->se_claims = NULL;
	crypto_secret_cleanup(&s->se_access);
	crypto_secret_cleanup(&s->se_refresh);
	crypto_secret_cleanup(&s->se_idtoken);
	session_ptoks_clear(s);
	s->se_open = 0;
}

/* Replace s's identity block with one it owns (takes ident, len bytes
 * before its final NUL: the block, then NUL and the sub when there is
 * one). */
static void
session_ident_take(struct session *s, char *ident, size_t len)
{
	if (!s->se_ident_inline)
		free(s->se_ident);
	s->se_ident = ident;
	s->se_ident_len = len;
	s->se_ident_inline = 0;
}

const char *
session_sub(const struct session *s)
{
	size_t n;

	if (s == NULL || s->se_ident == NULL)
		return "";
	n = strlen(s->se_ident);
	return n < s->se_ident_len ? s->se_ident + n + 1 : "";
}

void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	session_cold_clear(s);
	session_ident_take(s, NULL, 0);
	memset(s->se_cookie, 0, sizeof(s->se_cookie));
	free(s);
}

static void
session_put64(unsigned char *p, int64_t v)
{
	memcpy(p, &v, 8);
}

static int64_t
session_get64(const unsigned char *p)
{
	int64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void
session_put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t
session_get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/*
 * The two parts of a record (host byte order: a store is not moved
 * between machines).  The store keeps its own expiry in front of the hot
 * part, so its sweep never parses either.
 *
 * Hot, SESSION_HOT_HDR_LEN + ident bytes, read by every lookup:
 *   "GHS3", u32 ident length, i64 created, last_seen, expires,
 *   at_expires, at_lifetime, then the identity header block and, after
 *   a NUL, the user's sub (for the access log; the block itself never
 *   holds a NUL, and a block without one is a record written before the
 *   sub was kept: it reads with an empty sub, and a reader that predates
 *   it sends the block up to the NUL).
 * Everything a lookup needs sits at fixed offsets in the first cache line,
 * and the block is copied out as is (no NUL stored: the copy adds it).
 *
 * Cold, SESSION_COLD_HDR_LEN + claims + sealed bytes:
 *   "GHC3", u32 claims length, u32 sealed length, the claims JSON, the
 *   sealed tokens.
 *
 * A new layout gets new magics: a record of any other version reads as no
 * session.
 */
#define SESSION_HOT_MAGIC "GHS3"
#define SESSION_COLD_MAGIC "GHC3"
#define SESSION_HOT_HDR_LEN (4 + 4 + 5 * 8)
#define SESSION_COLD_HDR_LEN (4 + 2 * 4)

static unsigned char *
session_hot_format(const struct session *s, size_t *len)
{
	size_t il = s->se_ident != NULL ? s->se_ident_len : 0;
	unsigned char *buf, *p;

	if (il > UINT32_MAX)
		return NULL;
	*len = SESSION_HOT_HDR_LEN + il;
	buf = malloc(*len);
	if (buf == NULL)
		return NULL;
	p = buf;
	memcpy(p, SESSION_HOT_MAGIC, 4);
	session_put32(p + 4, (uint32_t)il);
	session_put64(p + 8, s->se_created);
	session_put64(p + 16, s->se_last_seen);
	session_put64(p + 24, s->se_expires);
	session_put64(p + 32, s->se_at_expires);
	session_put64(p + 40, s->se_at_lifetime);
	if (il > 0)
		memcpy(p + SESSION_HOT_HDR_LEN, s->se_ident, il);
	return buf;
}

static unsigned char *
session_cold_format(const struct session *s, size_t *len)
{
	size_t cl = s->se_claims_json != NULL ? strlen(s->se_claims_json) : 0,
	       sl = s->se_sealed_len;
	unsigned char *buf, *p;

	if (cl > UINT32_MAX || sl > UINT32_MAX)
		return NULL;
	*len = SESSION_COLD_HDR_LEN + cl + sl;
	buf = malloc(*len);
	if (buf == NULL)
		return NULL;
	p = buf;
	memcpy(p, SESSION_COLD_MAGIC, 4);
	session_put32(p + 4, (uint32_t)cl);
	session_put32(p + 8, (uint32_t)sl);
	p += SESSION_COLD_HDR_LEN;
	if (cl > 0)
		memcpy(p, s->se_claims_json, cl);
	if (sl > 0)
		memcpy(p + cl, s->se_sealed, sl);
	return buf;
}

/* The identity block's length if hot is a well-formed hot part, else -1. */
static ssize_t
session_hot_check(const unsigned char *hot, size_t len)
{
	uint32_t il;

	if (len < SESSION_HOT_HDR_LEN || memcmp(hot, SESSION_HOT_MAGIC, 4) != 0)
		return -1;
	il = session_get32(hot + 4);
	if (il != len - SESSION_HOT_HDR_LEN)
		return -1;
	return (ssize_t)il;
}

static void
session_hot_times(struct session *s, const unsigned char *hot)
{
	s->se_created = session_get64(hot + 8);
	s->se_last_seen = session_get64(hot + 16);
	s->se_expires = session_get64(hot + 24);
	s->se_at_expires = session_get64(hot + 32);
	s->se_at_lifetime = session_get64(hot + 40);
}

/* What a get callback of this file found, beside its 0 / -1. */
struct session_get {
	struct session *sg_s; /* NULL: the hot callback allocates it */
	const unsigned char *sg_key;
	struct store_reader *sg_reader;
	int sg_garbled; /* the record is not one this version can read */
};

/*
 * Hot-part callback, inside the store's read transaction: check the part,
 * then copy the identity block out once.  For session_load the session is
 * allocated here with the block in the same allocation (one malloc per
 * lookup); for session_reload the block replaces s's.
 */
static int
session_hot_cb(void *arg, const unsigned char *hot, size_t len,
    const unsigned char *cold, size_t coldlen)
{
	struct session_get *sg = arg;
	struct session *s = sg->sg_s;
	ssize_t il;
	char *ident;

	(void)cold;
	(void)coldlen;
	il = session_hot_check(hot, len);
	if (il == -1) {
		sg->sg_garbled = 1;
		return -1;
	}
	if (s == NULL) {
		s = malloc(sizeof(*s) + (size_t)il + 1);
		if (s == NULL)
			return -1;
		memset(s, 0, sizeof(*s));
		ident = (char *)(s + 1);
		s->se_ident = ident;
		s->se_ident_len = (size_t)il;
		s->se_ident_inline = 1;
		memcpy(s->se_key, sg->sg_key, sizeof(s->se_key));
		sg->sg_s = s;
	} else {
		ident = malloc((size_t)il + 1);
		if (ident == NULL)
			return -1;
		session_ident_take(s, ident, (size_t)il);
	}
	memcpy(ident, hot + SESSION_HOT_HDR_LEN, (size_t)il);
	ident[il] = '\0';
	session_hot_times(s, hot);
	s->se_reader = sg->sg_reader;
	s->se_in_store = 1;
	s->se_cold = SESSION_COLD_UNREAD;
	s->se_cold_dirty = 0;
	return 0;
}

static int
session_get(struct store_reader *reader, const unsigned char *key, time_t now,
    int flags, store_get_fn *fn, void *arg)
{
	return reader != NULL
	    ? store_reader_get(reader, key, now, flags, fn, arg)
	    : store_get(session_store, key, now, flags, fn, arg);
}

/* What a get of sg's record found (rc, the store's result): a session
 * whose times still hold, or why not. */
static enum session_result
session_fetched(
    struct session_get *sg, int rc, time_t now, const struct config *cfg)
{
	struct session *s;

	if (rc == STORE_NOTFOUND || sg->sg_garbled)
		return SESSION_NONE; /* unreadable: treat as signed out */
	if (rc == STORE_UNAVAIL)
		return SESSION_UNAVAIL;
	if (rc != STORE_OK)
		return SESSION_ERR;
	s = sg->sg_s;
	if (now >= s->se_expires || session_idle_over(s, now, cfg))
		return SESSION_NONE;
	return SESSION_OK;
}

/* Read the hot part of sg->sg_key's record into sg->sg_s (allocating it
 * when NULL) and check its times. */
static enum session_result
session_fetch(struct session_get *sg, time_t now, const struct config *cfg)
{
	int rc;

	rc = session_get(sg->sg_reader, sg->sg_key, now, 0, session_hot_cb, sg);
	return session_fetched(sg, rc, now, cfg);
}

/* A store write's result as the session's. */
static enum session_result
session_write_result(int rc)
{
	switch (rc) {
	case STORE_OK:
		return SESSION_OK;
	case STORE_NOTFOUND:
		return SESSION_NONE;
	case STORE_FULL:
		return SESSION_FULL;
	case STORE_UNAVAIL:
		return SESSION_UNAVAIL;
	default:
		return SESSION_ERR;
	}
}

/* The tags the store files s under (its sid and sub), into t, or NULL
 * when its claims give none. */
static const struct store_tags *
session_tags(struct session *s, struct store_tags *t)
{
	json_t *claims = session_claims(s);

	if (claims == NULL || session_tags_fill(claims, t) == -1)
		return NULL;
	return t;
}

enum session_result
session_save(struct session *s)
{
	struct store_tags tags;
	unsigned char *hot, *cold = NULL;
	size_t hlen, clen = 0;
	int rc;

	hot = session_hot_format(s, &hlen);
	if (hot == NULL)
		return SESSION_ERR;
	if (s->se_cold_dirty) {
		cold = session_cold_format(s, &clen);
		if (cold == NULL) {
			free(hot);
			return SESSION_ERR;
		}
		rc = store_put_tagged(session_store, s->se_key,
		    (time_t)s->se_expires, hot, hlen, cold, clen,
		    session_tags(s, &tags), s->se_in_store);
		if (rc == STORE_OK) {
			s->se_cold_dirty = 0;
			s->se_in_store = 1;
		}
	} else {
		/* A touch: the cold part, large, is not rewritten. */
		rc = store_put_hot(session_store, s->se_key, hot, hlen);
	}
	free(hot);
	free(cold);
	return session_write_result(rc);
}

/* The store key a cookie value names: SESSION_OK, SESSION_NONE (not the
 * shape of an id: no store lookup for junk) or SESSION_ERR. */
static enum session_result
session_cookie_key(const char *cookie, unsigned char key[32])
{
	unsigned char id[33];
	size_t n;
	int rc;

	if (strlen(cookie) != SESSION_ID_B64_LEN ||
	    crypto_b64url_decode(
	        cookie, SESSION_ID_B64_LEN, id, sizeof(id), &n) == -1 ||
	    n != 32)
		return SESSION_NONE;
	rc = crypto_sha256(id, 32, key);
	return rc == -1 ? SESSION_ERR : SESSION_OK;
}

enum session_result
session_load(struct store_reader *reader, const char *cookie, time_t now,
    const struct config *cfg, struct session **out)
{
	unsigned char key[32];
	struct session_get sg;
	enum session_result r;

	*out = NULL;
	r = session_cookie_key(cookie, key);
	if (r != SESSION_OK)
		return r;
	memset(&sg, 0, sizeof(sg));
	sg.sg_key = key;
	sg.sg_reader = reader;
	r = session_fetch(&sg, now, cfg);
	if (r != SESSION_OK) {
		session_free(sg.sg_s);
		return r;
	}
	sg.sg_s->se_trust_unverified_email = cfg->cf_trust_unverified_email;
	if (now - sg.sg_s->se_last_seen >= session_touch_every(cfg)) {
		sg.sg_s->se_last_seen = now;
		(void)session_save(sg.sg_s);
	}
	*out = sg.sg_s;
	return SESSION_OK;
}

enum session_result
session_reload(struct store_reader *reader, struct session *s, time_t now,
    const struct config *cfg)
{
	struct session_get sg;

	session_cold_clear(s);
	memset(&sg, 0, sizeof(sg));
	sg.sg_s = s;
	sg.sg_key = s->se_key;
	sg.sg_reader = reader;
	return session_fetch(&sg, now, cfg);
}

/*
 * Cold-part callback, inside the store's read transaction, which read the
 * hot part again with it: both come from the same commit, so s takes the
 * hot part's times and identity block too (another worker may have
 * refreshed the record since s was loaded).  Checks everything before
 * changing s.
 */
static int
session_cold_cb(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t len)
{
	struct session_get *sg = arg;
	struct session *s = sg->sg_s;
	uint32_t cl, sl;
	ssize_t il;
	char *claims = NULL, *ident = NULL;
	unsigned char *sealed = NULL;

	il = session_hot_check(hot, hotlen);
	if (il == -1 || len < SESSION_COLD_HDR_LEN ||
	    memcmp(cold, SESSION_COLD_MAGIC, 4) != 0) {
		sg->sg_garbled = 1;
		return -1;
	}
	cl = session_get32(cold + 4);
	sl = session_get32(cold + 8);
	if ((uint64_t)cl + sl != len - SESSION_COLD_HDR_LEN) {
		sg->sg_garbled = 1;
		return -1;
	}
	claims = strndup((const char *)cold + SESSION_COLD_HDR_LEN, cl);
	sealed = malloc(sl > 0 ? sl : 1);
	if ((size_t)il != s->se_ident_len ||
	    memcmp(s->se_ident, hot + SESSION_HOT_HDR_LEN, (size_t)il) != 0) {
		/* Not strndup: the sub follows the block's NUL. */
		ident = malloc((size_t)il + 1);
		if (ident != NULL) {
			memcpy(ident, hot + SESSION_HOT_HDR_LEN, (size_t)il);
			ident[il] = '\0';
		}
	} else
		ident = s->se_ident;
	if (claims == NULL || sealed == NULL || ident == NULL) {
		free(claims);
		free(sealed);
		if (ident != s->se_ident)
			free(ident);
		return -1;
	}
	if (sl > 0)
		memcpy(sealed, cold + SESSION_COLD_HDR_LEN + cl, sl);
	if (ident != s->se_ident)
		session_ident_take(s, ident, (size_t)il);
	session_hot_times(s, hot);
	session_cold_clear(s);
	s->se_claims_json = claims;
	s->se_sealed = sealed;
	s->se_sealed_len = sl;
	s->se_cold = SESSION_COLD_LOADED;
	return 0;
}

/* Make s's cold part available: read it (with the hot part again) in one
 * short read transaction through s's reader.  0, or -1 (the record ended,
 * or its cold part is missing or unreadable: SESSION_COLD_GONE, which
 * reads as no session; or an error). */
static int
session_cold_load(struct session *s)
{
	struct session_get sg;
	int rc;

	if (s->se_cold == SESSION_COLD_LOADED)
		return 0;
	if (s->se_cold == SESSION_COLD_GONE)
		return -1;
	/* A store across the network answers on the event loop, never
	 * inside this call: a session loaded hot-only from it has no cold
	 * part to read here (see session_load_hot_start). */
	if (store_reader_async(s->se_reader))
		return -1;
	memset(&sg, 0, sizeof(sg));
	sg.sg_s = s;
	rc = session_get(s->se_reader, s->se_key, time(NULL), STORE_COLD,
	    session_cold_cb, &sg);
	if (rc == STORE_OK)
		return 0;
	if (rc == STORE_NOTFOUND || sg.sg_garbled)
		s->se_cold = SESSION_COLD_GONE;
	return -1;
}

/* The block (taken) with NUL and the claims' sub after it, new, its
 * length in *len; NULL when out of memory. */
static char *
session_ident_with_sub(char *block, const json_t *claims, size_t *len)
{
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	size_t bl = strlen(block), sl = sub != NULL ? strlen(sub) : 0;
	char *out;

	if (sl == 0) {
		*len = bl;
		return block;
	}
	out = realloc(block, bl + 1 + sl + 1);
	if (out == NULL) {
		free(block);
		return NULL;
	}
	memcpy(out + bl + 1, sub, sl + 1);
	*len = bl + 1 + sl;
	return out;
}

int
session_set_claims(struct session *s, const char *claims_json)
{
	json_error_t jerr;
	json_t *claims = json_loads(claims_json, 0, &jerr);
	int rc;

	if (claims == NULL)
		return -1;
	rc = session_set_claims_parsed(s, claims_json, claims);
	json_decref(claims);
	return rc;
}

int
session_set_claims_parsed(
    struct session *s, const char *claims_json, json_t *claims)
{
	char *copy, *ident;
	size_t ilen = 0;

	if (session_cold_load(s) == -1)
		return -1;
	copy = strdup(claims_json);
	ident = claims != NULL
	    ? identity_block(claims, s->se_trust_unverified_email)
	    : NULL;
	if (ident != NULL)
		ident = session_ident_with_sub(ident, claims, &ilen);
	if (copy == NULL || claims == NULL || ident == NULL) {
		free(copy);
		free(ident);
		return -1;
	}
	free(s->se_claims_json);
	s->se_claims_json = copy;
	json_decref(s->se_claims);
	s->se_claims = json_incref(claims);
	session_ident_take(s, ident, ilen);
	s->se_cold_dirty = 1;
	return 0;
}

json_t *
session_claims(struct session *s)
{
	json_error_t jerr;

	if (s->se_claims == NULL && session_cold_load(s) == 0 &&
	    s->se_claims_json != NULL)
		s->se_claims = json_loads(s->se_claims_json, 0, &jerr);
	return s->se_claims;
}

static void
session_add_field(unsigned char **p, const void *v, size_t n)
{
	uint32_t n32 = (uint32_t)n;

	memcpy(*p, &n32, 4);
	if (n > 0)
		memcpy(*p + 4, v, n);
	*p += 4 + n;
}

/* Each profile token after the three fields: its name, its token, then
 * expiry, lifetime and flags. */
#define SESSION_PTOK_FIXED (4 + 4 + 8 + 8 + 4)

/* Seal s's opened tokens (its secrets and profile tokens) into
 * se_sealed.  0 or -1. */
static int
session_seal(struct session *s)
{
	size_t ptlen, outlen, i, nl;
	unsigned char *pt, *p, *out;
	struct session_ptok *t;
	int rc = -1;

	ptlen = 12 + s->se_access.len + s->se_refresh.len + s->se_idtoken.len;
	for (i = 0; i < s->se_nptoks; i++)
		ptlen += SESSION_PTOK_FIXED + strlen(s->se_ptoks[i].sp_name) +
		    s->se_ptoks[i].sp_token.len;
	pt = malloc(ptlen);
	out = malloc(ptlen + CRYPTO_AEAD_OVERHEAD);
	if (pt == NULL || out == NULL)
		goto done;
	p = pt;
	session_add_field(&p, s->se_access.buf, s->se_access.len);
	session_add_field(&p, s->se_refresh.buf, s->se_refresh.len);
	session_add_field(&p, s->se_idtoken.buf, s->se_idtoken.len);
	for (i = 0; i < s->se_nptoks; i++) {
		t = &s->se_ptoks[i];
		nl = strlen(t->sp_name);
		session_add_field(&p, t->sp_name, nl);
		session_add_field(&p, t->sp_token.buf, t->sp_token.len);
		session_put64(p, t->sp_expires);
		session_put64(p + 8, t->sp_lifetime);
		session_put32(p + 16, t->sp_flags);
		p += 20;
	}
	/* Bound to this record's key, so a sealed blob cannot be moved to
	 * another session. */
	if (crypto_aead_seal(keyfile_token_key(), s->se_key, sizeof(s->se_key),
	        pt, ptlen, out, ptlen + CRYPTO_AEAD_OVERHEAD, &outlen) == -1)
		goto done;
	free(s->se_sealed);
	s->se_sealed = out;
	s->se_sealed_len = outlen;
	out = NULL;
	s->se_cold_dirty = 1;
	s->se_open = 1;
	rc = 0;
done:
	if (pt != NULL) {
		OPENSSL_cleanse(pt, ptlen);
		free(pt);
	}
	free(out);
	return rc;
}

/* Make s's tokens (and profile tokens) readable before some of them
 * change: decrypted when s has sealed ones, else none yet (a new
 * session).  0 or -1. */
static int
session_tokens_ready(struct session *s)
{
	/* The claims must be there for the save that writes the tokens. */
	if (session_cold_load(s) == -1)
		return -1;
	if (s->se_open || s->se_sealed_len == 0)
		return 0;
	return session_open_tokens(s);
}

int
session_set_tokens(struct session *s, const char *access, const char *refresh,
    const char *idtoken, int64_t at_expires)
{
	size_t al = access ? strlen(access) : 0,
	       rl = refresh ? strlen(refresh) : 0,
	       il = idtoken ? strlen(idtoken) : 0;

	if (session_tokens_ready(s) == -1)
		return -1;
	/* The arguments may be s's own secrets: each set copies first. */
	if (crypto_secret_set(&s->se_access, access ? access : "", al) == -1 ||
	    crypto_secret_set(&s->se_refresh, refresh ? refresh : "", rl) ==
	        -1 ||
	    crypto_secret_set(&s->se_idtoken, idtoken ? idtoken : "", il) ==
	        -1 ||
	    session_seal(s) == -1)
		return -1;
	s->se_at_expires = at_expires;
	s->se_at_lifetime = at_expires > 0 ? at_expires - time(NULL) : 0;
	return 0;
}

int
session_set_refresh(struct session *s, const char *refresh)
{
	if (session_tokens_ready(s) == -1 ||
	    crypto_secret_set(&s->se_refresh, refresh, strlen(refresh)) == -1)
		return -1;
	return session_seal(s);
}

const struct session_ptok *
session_ptok_get(struct session *s, const char *name)
{
	size_t i;

	if (session_open_tokens(s) == -1)
		return NULL;
	for (i = 0; i < s->se_nptoks; i++)
		if (strcmp(s->se_ptoks[i].sp_name, name) == 0)
			return &s->se_ptoks[i];
	return NULL;
}

int
session_set_ptok(struct session *s, const char *name, const char *access,
    int64_t expires, uint32_t flags)
{
	struct session_ptok *t = NULL, *v;
	size_t i, al = access != NULL ? strlen(access) : 0;

	if (strlen(name) > SESSION_PTOK_NAME_MAX ||
	    session_tokens_ready(s) == -1)
		return -1;
	for (i = 0; i < s->se_nptoks && t == NULL; i++)
		if (strcmp(s->se_ptoks[i].sp_name, name) == 0)
			t = &s->se_ptoks[i];
	if (t == NULL) {
		if (s->se_nptoks == SESSION_PTOK_MAX)
			return -1;
		v = reallocarray(s->se_ptoks, s->se_nptoks + 1, sizeof(*v));
		if (v == NULL)
			return -1;
		s->se_ptoks = v;
		t = &v[s->se_nptoks++];
		memset(t, 0, sizeof(*t));
		memcpy(t->sp_name, name, strlen(name) + 1);
	}
	if (crypto_secret_set(&t->sp_token, access != NULL ? access : "", al) ==
	    -1)
		return -1;
	t->sp_expires = expires;
	t->sp_lifetime = expires > 0 ? expires - time(NULL) : 0;
	t->sp_flags = flags;
	return session_seal(s);
}

static int
session_take_field(
    const unsigned char **p, const unsigned char *end, struct secret *out)
{
	uint32_t n;

	if (end - *p < 4)
		return -1;
	memcpy(&n, *p, 4);
	if ((size_t)(end - *p - 4) < n)
		return -1;
	if (crypto_secret_set(out, *p + 4, n) == -1)
		return -1;
	*p += 4 + n;
	return 0;
}

/* The profile tokens after the three fields (none in a record written
 * before them). */
static int
session_take_ptoks(
    struct session *s, const unsigned char *p, const unsigned char *end)
{
	struct secret name = {NULL, 0};
	struct session_ptok *t, *v;

	session_ptoks_clear(s);
	while (p < end) {
		if (s->se_nptoks == SESSION_PTOK_MAX ||
		    session_take_field(&p, end, &name) == -1 || name.len == 0 ||
		    name.len > SESSION_PTOK_NAME_MAX)
			goto fail;
		v = reallocarray(s->se_ptoks, s->se_nptoks + 1, sizeof(*v));
		if (v == NULL)
			goto fail;
		s->se_ptoks = v;
		t = &v[s->se_nptoks++];
		memset(t, 0, sizeof(*t));
		memcpy(t->sp_name, name.buf, name.len);
		crypto_secret_cleanup(&name);
		if (session_take_field(&p, end, &t->sp_token) == -1 ||
		    end - p < 20)
			goto fail;
		t->sp_expires = session_get64(p);
		t->sp_lifetime = session_get64(p + 8);
		t->sp_flags = session_get32(p + 16);
		p += 20;
	}
	return 0;
fail:
	crypto_secret_cleanup(&name);
	session_ptoks_clear(s);
	return -1;
}

int
session_open_tokens(struct session *s)
{
	unsigned char *pt;
	const unsigned char *p;
	size_t ptlen;
	int rc = -1;

	if (s->se_open)
		return 0;
	if (session_cold_load(s) == -1 ||
	    s->se_sealed_len < CRYPTO_AEAD_OVERHEAD)
		return -1;
	pt = malloc(s->se_sealed_len);
	if (pt == NULL)
		return -1;
	if (crypto_aead_open(keyfile_token_key(), s->se_key, sizeof(s->se_key),
	        s->se_sealed, s->se_sealed_len, pt, s->se_sealed_len,
	        &ptlen) == -1)
		goto done;
	p = pt;
	if (session_take_field(&p, pt + ptlen, &s->se_access) == -1 ||
	    session_take_field(&p, pt + ptlen, &s->se_refresh) == -1 ||
	    session_take_field(&p, pt + ptlen, &s->se_idtoken) == -1 ||
	    session_take_ptoks(s, p, pt + ptlen) == -1)
		goto done;
	s->se_open = 1;
	rc = 0;
done:
	OPENSSL_cleanse(pt, s->se_sealed_len);
	free(pt);
	return rc;
}

/* A delete's result (rc, the store's): gone (SESSION_OK, also when it
 * was gone already), or left behind. */
static enum session_result
session_deleted(int rc)
{
	if (rc == STORE_OK || rc == STORE_NOTFOUND)
		return SESSION_OK;
	/* Security: a record left behind keeps a copied cookie working, so
	 * an operator must hear of it. */
	log_warnx("session store: a session could not be deleted: %s",
	    rc == STORE_FULL          ? "the store is full"
	        : rc == STORE_UNAVAIL ? "the store is unavailable"
	                              : "write failed");
	return session_write_result(rc);
}

int
session_has_refresh(struct session *s)
{
	if (s->se_cold != SESSION_COLD_LOADED)
		return -1;
	if (session_open_tokens(s) == -1)
		return 0;
	return s->se_refresh.len > 0;
}

void
session_delete(struct session *s)
{
	(void)session_deleted(store_del(session_store, s->se_key));
}

size_t
session_sweep(time_t now, size_t max)
{
	size_t n = 0;

	if (session_store == NULL)
		return 0;
	(void)store_sweep(session_store, now, max, &n);
	return n;
}

/* --- the asynchronous calls (a store that answers later: Redis) ------ */

#define SESSION_OP_MAGIC 0x5345534fu /* "SESO" */

enum session_op_kind {
	SO_LOAD,
	SO_RELOAD,
	SO_SAVE,
	SO_SAVE_HOT,
	SO_DELETE,
	SO_LOCK,
	SO_END
};

struct session_op {
	uint32_t so_magic;
	enum session_op_kind so_kind;
	struct session_get so_get; /* load and reload */
	unsigned char so_key[32];
	struct session **so_out; /* load */
	struct session *so_s;    /* reload and save */
	const struct config *so_cfg;
	time_t so_now;
	struct store_reader *so_reader;
	struct store_op *so_store;
	session_done_fn *so_done;
	void *so_arg;
};

static struct session_op *
session_op_cast(void *arg)
{
	return MAGIC_CAST(struct session_op, so_magic, SESSION_OP_MAGIC, arg);
}

static struct session_op *
session_op_new(enum session_op_kind kind, struct store_reader *reader,
    session_done_fn *done, void *arg)
{
	struct session_op *op;

	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->so_magic = SESSION_OP_MAGIC;
	op->so_kind = kind;
	op->so_reader = reader;
	op->so_done = done;
	op->so_arg = arg;
	op->so_get.sg_reader = reader;
	return op;
}

static void
session_op_free(struct session_op *op)
{
	op->so_magic = 0;
	free(op);
}

/* Both parts at once (one round trip): the hot part's callback, then the
 * cold part's, which takes the same reply's hot part again.  arg is the
 * op (the store hands the same arg to this and to done). */
static int
session_both_cb(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t coldlen)
{
	struct session_op *op = session_op_cast(arg);

	if (session_hot_cb(&op->so_get, hot, hotlen, NULL, 0) == -1)
		return -1;
	return session_cold_cb(&op->so_get, hot, hotlen, cold, coldlen);
}

/* A touch nobody waits for: a lost one only makes the next request touch
 * again. */
static void
session_touch_async(struct store_reader *reader, struct session *s)
{
	unsigned char *hot;
	size_t hlen;

	hot = session_hot_format(s, &hlen);
	if (hot == NULL)
		return;
	(void)store_async_put_hot(
	    reader, s->se_key, hot, hlen, NULL, NULL, NULL);
	free(hot);
}

/* The end of a load's get (rc, the store's result): the session, touched
 * when it is due, in *so_out. */
static enum session_result
session_load_end(struct session_op *op, int rc)
{
	struct session_get *sg = &op->so_get;
	enum session_result r;
	struct session *s;

	r = session_fetched(sg, rc, op->so_now, op->so_cfg);
	if (r != SESSION_OK) {
		session_free(sg->sg_s);
		sg->sg_s = NULL;
		return r;
	}
	s = sg->sg_s;
	s->se_trust_unverified_email = op->so_cfg->cf_trust_unverified_email;
	if (op->so_now - s->se_last_seen >= session_touch_every(op->so_cfg)) {
		s->se_last_seen = op->so_now;
		session_touch_async(op->so_reader, s);
	}
	*op->so_out = s;
	return SESSION_OK;
}

/* What a call's store result rc means, for each kind. */
static enum session_result
session_op_end(struct session_op *op, int rc)
{
	switch (op->so_kind) {
	case SO_LOAD:
		return session_load_end(op, rc);
	case SO_RELOAD:
		return session_fetched(&op->so_get, rc, op->so_now, op->so_cfg);
	case SO_SAVE:
		if (rc == STORE_OK) {
			op->so_s->se_cold_dirty = 0;
			op->so_s->se_in_store = 1;
		}
		return session_write_result(rc);
	case SO_SAVE_HOT:
		return session_write_result(rc);
	case SO_END:
		return session_write_result(rc);
	case SO_LOCK:
		return rc == STORE_OK  ? SESSION_OK
		    : rc == STORE_BUSY ? SESSION_BUSY
		                       : session_write_result(rc);
	case SO_DELETE:
	default:
		return session_deleted(rc);
	}
}

static void
session_op_done_cb(void *arg, int rc)
{
	struct session_op *op = session_op_cast(arg);
	session_done_fn *done = op->so_done;
	void *darg = op->so_arg;
	enum session_result r;

	op->so_store = NULL;
	r = session_op_end(op, rc);
	session_op_free(op);
	if (done != NULL)
		done(darg, r);
}

/* After a store call: parked (op handed out), or ended now. */
static enum session_result
session_op_started(struct session_op *op, int rc, struct session_op **out)
{
	enum session_result r;

	if (rc == STORE_PENDING) {
		*out = op;
		return SESSION_PENDING;
	}
	r = session_op_end(op, rc);
	session_op_free(op);
	return r;
}

/* A hot-only load's get: the hot part's callback on the op's get. */
static int
session_hot_op_cb(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t coldlen)
{
	struct session_op *op = session_op_cast(arg);

	return session_hot_cb(&op->so_get, hot, hotlen, cold, coldlen);
}

static enum session_result
session_load_begin(struct store_reader *reader, const char *cookie, time_t now,
    const struct config *cfg, int flags, struct session **out,
    session_done_fn *done, void *arg, struct session_op **opp)
{
	struct session_op *op;
	enum session_result r;
	int rc;

	*opp = NULL;
	if (!store_reader_async(reader))
		return session_load(reader, cookie, now, cfg, out);
	*out = NULL;
	op = session_op_new(SO_LOAD, reader, done, arg);
	if (op == NULL)
		return SESSION_ERR;
	r = session_cookie_key(cookie, op->so_key);
	if (r != SESSION_OK) {
		session_op_free(op);
		return r;
	}
	op->so_get.sg_key = op->so_key;
	op->so_out = out;
	op->so_cfg = cfg;
	op->so_now = now;
	rc = store_async_get(reader, op->so_key, now, flags,
	    (flags & STORE_COLD) ? session_both_cb : session_hot_op_cb,
	    session_op_done_cb, op, &op->so_store);
	return session_op_started(op, rc, opp);
}

enum session_result
session_load_start(struct store_reader *reader, const char *cookie, time_t now,
    const struct config *cfg, struct session **out, session_done_fn *done,
    void *arg, struct session_op **opp)
{
	return session_load_begin(
	    reader, cookie, now, cfg, STORE_COLD, out, done, arg, opp);
}

enum session_result
session_load_hot_start(struct store_reader *reader, const char *cookie,
    time_t now, const struct config *cfg, struct session **out,
    session_done_fn *done, void *arg, struct session_op **opp)
{
	return session_load_begin(
	    reader, cookie, now, cfg, 0, out, done, arg, opp);
}

enum session_result
session_reload_start(struct store_reader *reader, struct session *s, time_t now,
    const struct config *cfg, session_done_fn *done, void *arg,
    struct session_op **opp)
{
	struct session_op *op;
	int rc;

	*opp = NULL;
	if (!store_reader_async(reader))
		return session_reload(reader, s, now, cfg);
	session_cold_clear(s);
	op = session_op_new(SO_RELOAD, reader, done, arg);
	if (op == NULL)
		return SESSION_ERR;
	op->so_s = op->so_get.sg_s = s;
	op->so_get.sg_key = s->se_key;
	op->so_cfg = cfg;
	op->so_now = now;
	rc = store_async_get(reader, s->se_key, now, STORE_COLD,
	    session_both_cb, session_op_done_cb, op, &op->so_store);
	return session_op_started(op, rc, opp);
}

enum session_result
session_save_start(struct store_reader *reader, struct session *s,
    session_done_fn *done, void *arg, struct session_op **opp)
{
	unsigned char *hot, *cold = NULL;
	size_t hlen, clen = 0;
	struct session_op *op = NULL;
	struct store_tags tags;
	int rc, full = s->se_cold_dirty;

	*opp = NULL;
	if (!store_reader_async(reader))
		return session_save(s);
	hot = session_hot_format(s, &hlen);
	if (full)
		cold = session_cold_format(s, &clen);
	/* Nobody waiting: no op, so nothing refers to s afterwards. */
	if (done != NULL)
		op = session_op_new(
		    full ? SO_SAVE : SO_SAVE_HOT, reader, done, arg);
	if (hot == NULL || (full && cold == NULL) ||
	    (done != NULL && op == NULL)) {
		free(hot);
		free(cold);
		free(op);
		return SESSION_ERR;
	}
	if (op != NULL)
		op->so_s = s;
	rc = full
	    ? store_async_put_tagged(reader, s->se_key, (time_t)s->se_expires,
	          hot, hlen, cold, clen, session_tags(s, &tags), s->se_in_store,
	          op != NULL ? session_op_done_cb : NULL, op,
	          op != NULL ? &op->so_store : NULL)
	    : store_async_put_hot(reader, s->se_key, hot, hlen,
	          op != NULL ? session_op_done_cb : NULL, op,
	          op != NULL ? &op->so_store : NULL);
	free(hot);
	free(cold);
	if (op == NULL)
		return rc == STORE_PENDING ? SESSION_PENDING
		                           : session_write_result(rc);
	return session_op_started(op, rc, opp);
}

enum session_result
session_delete_start(struct store_reader *reader, struct session *s,
    session_done_fn *done, void *arg, struct session_op **opp)
{
	struct session_op *op;
	int rc;

	*opp = NULL;
	if (!store_reader_async(reader))
		return session_deleted(store_del(session_store, s->se_key));
	op = session_op_new(SO_DELETE, reader, done, arg);
	if (op == NULL)
		return SESSION_ERR;
	rc = store_async_del(
	    reader, s->se_key, session_op_done_cb, op, &op->so_store);
	return session_op_started(op, rc, opp);
}

enum session_result
session_lock_start(struct store_reader *reader, const unsigned char key[32],
    const unsigned char owner[SESSION_OWNER_LEN], int ttl_ms,
    session_done_fn *done, void *arg, struct session_op **opp)
{
	struct session_op *op;
	int rc;

	*opp = NULL;
	op = session_op_new(SO_LOCK, reader, done, arg);
	if (op == NULL)
		return SESSION_ERR;
	rc = store_async_lock(
	    reader, key, owner, ttl_ms, session_op_done_cb, op, &op->so_store);
	return session_op_started(op, rc, opp);
}

enum session_result
session_unlock_start(struct store_reader *reader, const unsigned char key[32],
    const unsigned char owner[SESSION_OWNER_LEN], session_done_fn *done,
    void *arg, struct session_op **opp)
{
	struct session_op *op = NULL;
	int rc;

	*opp = NULL;
	/* Nobody waiting: no op; the lock's own expiry covers a loss. */
	if (done != NULL) {
		op = session_op_new(SO_LOCK, reader, done, arg);
		if (op == NULL)
			return SESSION_ERR;
	}
	rc = store_async_unlock(reader, key, owner,
	    op != NULL ? session_op_done_cb : NULL, op,
	    op != NULL ? &op->so_store : NULL);
	if (op == NULL)
		return rc == STORE_PENDING ? SESSION_PENDING
		                           : session_write_result(rc);
	return session_op_started(op, rc, opp);
}

enum session_result
session_end_start(struct store_reader *reader, enum session_tag_kind kind,
    const char *iss, const char *value, size_t *ended, session_done_fn *done,
    void *arg, struct session_op **opp)
{
	unsigned char tag[STORE_TAG_LEN];
	struct session_op *op;
	int rc;

	*opp = NULL;
	*ended = 0;
	if (session_tags_for(kind, iss, value, tag) == -1)
		return SESSION_OK; /* nothing was ever filed under it */
	op = session_op_new(SO_END, reader, done, arg);
	if (op == NULL)
		return SESSION_ERR;
	rc = store_async_end_tagged(reader,
	    kind == SESSION_TAG_SID ? STORE_TAG_SID : STORE_TAG_SUB, tag, ended,
	    session_op_done_cb, op, &op->so_store);
	return session_op_started(op, rc, opp);
}

enum session_result
session_once_start(struct store_reader *reader, const void *what, size_t len,
    time_t expiry, session_done_fn *done, void *arg, struct session_op **opp)
{
	unsigned char md[CRYPTO_SHA256_LEN];
	struct session_op *op;
	int rc;

	*opp = NULL;
	if (crypto_sha256(what, len, md) == -1)
		return SESSION_ERR;
	op = session_op_new(SO_LOCK, reader, done, arg);
	if (op == NULL)
		return SESSION_ERR;
	rc = store_async_once(
	    reader, md, expiry, session_op_done_cb, op, &op->so_store);
	return session_op_started(op, rc, opp);
}

void
session_op_cancel(struct session_op *op)
{
	if (op == NULL)
		return;
	op = session_op_cast(op);
	store_op_cancel(op->so_reader, op->so_store);
	session_op_free(op);
}

/* --- the sessions admin command's view of the records ---------------- */

_Static_assert(SESSION_STORE_KEY_LEN == STORE_KEY_LEN, "session.h's copy");

struct session_scan_ctx {
	const struct config *ss_cfg;
	time_t ss_now;
	session_scan_fn *ss_fn;
	void *ss_arg;
};

/*
 * One record as session_info (no token: the sealed part is never opened),
 * with the checks a lookup makes (session_hot_check, the cold header).  A
 * record this version cannot read is skipped, as a lookup would not see
 * it either.
 */
static int
session_scan_cb(void *arg, const unsigned char key[STORE_KEY_LEN],
    const unsigned char *hot, size_t hotlen, const unsigned char *cold,
    size_t coldlen)
{
	struct session_scan_ctx *ss = arg;
	struct session_info si;
	struct session s;
	json_t *claims = NULL, *sid;
	char *claims_json = NULL, *ident = NULL;
	ssize_t il;
	uint32_t cl;
	int rc;

	il = session_hot_check(hot, hotlen);
	if (il == -1 || coldlen < SESSION_COLD_HDR_LEN ||
	    memcmp(cold, SESSION_COLD_MAGIC, 4) != 0)
		return STORE_SCAN_KEEP;
	cl = session_get32(cold + 4);
	if ((uint64_t)cl + session_get32(cold + 8) !=
	    coldlen - SESSION_COLD_HDR_LEN)
		return STORE_SCAN_KEEP;
	memset(&s, 0, sizeof(s));
	session_hot_times(&s, hot);
	ident = malloc((size_t)il + 1);
	claims_json = strndup((const char *)cold + SESSION_COLD_HDR_LEN, cl);
	if (ident == NULL || claims_json == NULL) {
		rc = -1;
		goto done;
	}
	memcpy(ident, hot + SESSION_HOT_HDR_LEN, (size_t)il);
	ident[il] = '\0';
	s.se_ident = ident;
	s.se_ident_len = (size_t)il;
	claims = json_loads(claims_json, 0, NULL);
	sid = json_object_get(claims, "sid");
	memset(&si, 0, sizeof(si));
	memcpy(si.si_key, key, STORE_KEY_LEN);
	si.si_created = s.se_created;
	si.si_last_seen = s.se_last_seen;
	si.si_expires = s.se_expires;
	si.si_sub = session_sub(&s);
	if (*si.si_sub == '\0' &&
	    json_is_string(json_object_get(claims, "sub")))
		si.si_sub = json_string_value(json_object_get(claims, "sub"));
	si.si_name = claims != NULL ? identity_user(claims) : "";
	si.si_sid = json_is_string(sid) ? json_string_value(sid) : NULL;
	/* The rule of session_fetched: what a request would still accept. */
	si.si_live = ss->ss_now < s.se_expires &&
	    ss->ss_now - s.se_last_seen <= ss->ss_cfg->cf_session_idle_timeout;
	rc = ss->ss_fn(ss->ss_arg, &si);
done:
	json_decref(claims);
	free(claims_json);
	free(ident);
	return rc;
}

enum session_result
session_scan(const struct config *cfg, time_t now, session_scan_fn *fn,
    void *arg, size_t *deleted, struct gh_error *err)
{
	struct session_scan_ctx ss;
	int rc;

	*deleted = 0;
	if (session_store == NULL) {
		gh_error_set(err, "store_scan", "no session store is open");
		return SESSION_ERR;
	}
	ss.ss_cfg = cfg;
	ss.ss_now = now;
	ss.ss_fn = fn;
	ss.ss_arg = arg;
	rc = store_scan(session_store, now, session_scan_cb, &ss, deleted, err);
	return session_write_result(rc);
}
