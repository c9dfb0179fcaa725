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

#include <openssl/crypto.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/keyfile.h"
#include "core/log.h"
#include "session/identity.h"
#include "session/session.h"
#include "store.h"

#define SESSION_TOUCH_EVERY 60 /* seconds between last_seen updates */
/* The smallest map worth opening: a few hundred sessions of a few KiB.
 * Below it a value like "64" (meant as 64M) would give a store that is
 * full before the first sign-in. */
#define SESSION_MAP_SIZE_MIN (1024 * 1024)

static int session_parse_map_size(struct config *, const struct config_key *,
    const char *, int, const char **);

/* Sorted by name: looked up with bsearch. */
static const struct config_key session_keys[] = {
    {"session_idle_timeout", config_parse_duration,
        offsetof(struct config, cf_session_idle_timeout), "8h",
        "A session unused this long ends.", 0},
    {"session_key_file", config_parse_str,
        offsetof(struct config, cf_session_key_file),
        "/var/lib/gatehouse/session.key",
        "Secret that seals cookies and encrypts tokens at rest; created "
        "(mode 0600) on first start when absent.",
        0},
    {"session_lifetime", config_parse_duration,
        offsetof(struct config, cf_session_lifetime), "24h",
        "A session ends this long after sign-in, used or not.", 0},
    {"session_map_size", session_parse_map_size,
        offsetof(struct config, cf_session_map_size), "1G",
        "Largest size of the session store (LMDB map size), at least 1M; "
        "when it is full, new sign-ins get 503 and existing sessions keep "
        "working.",
        0},
    {"session_store", config_parse_str,
        offsetof(struct config, cf_session_store),
        "/var/lib/gatehouse/sessions",
        "Directory of the LMDB session store (created when absent).", 0},
};
const struct config_module session_config_module = {"session", session_keys,
    sizeof(session_keys) / sizeof(session_keys[0]), NULL, NULL};

static int
session_parse_map_size(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	if (config_parse_size(cfg, key, value, line, errstr) == -1)
		return -1;
	if (cfg->cf_session_map_size < SESSION_MAP_SIZE_MIN) {
		*errstr = "must be at least 1M";
		return -1;
	}
	return 0;
}

/* Process-wide and read-only once the workers run. */
static struct store *session_store;

int
session_init(const struct config *cfg, struct gh_error *err)
{
	if (keyfile_init(cfg->cf_session_key_file, err) == -1)
		return -1;
	session_store = store_open(
	    "lmdb", cfg->cf_session_store, cfg->cf_session_map_size, err);
	return session_store == NULL ? -1 : 0;
}

/*
 * Whether directory `dir` (for key `key`) is there and writable, or could
 * be made: its nearest existing ancestor must be a directory this process
 * may write in.  Only looks (stat, access), as the store and the key file
 * make what is missing when they first open.
 */
static int
session_dir_check(const char *key, const char *dir, struct gh_error *err)
{
	struct stat sb;
	char *p, *slash;
	int rc = -1;

	p = strdup(dir[0] != '\0' ? dir : ".");
	if (p == NULL) {
		gh_error_set(err, "session_check", "out of memory");
		return -1;
	}
	for (;;) {
		if (stat(p, &sb) == 0) {
			if (!S_ISDIR(sb.st_mode)) {
				gh_error_set(err, "session_check",
				    "%s: %s cannot be made: %s is not a "
				    "directory",
				    key, dir, p);
				goto done;
			}
			if (access(p, W_OK | X_OK) == -1) {
				gh_error_set(err, "session_check",
				    "%s: %s: %s%s cannot be written: %s", key,
				    dir,
				    strcmp(p, dir) == 0 ? "" : "directory ",
				    strcmp(p, dir) == 0 ? "it" : p,
				    strerror(errno));
				goto done;
			}
			rc = 0;
			goto done;
		}
		if (errno != ENOENT && errno != ENOTDIR) {
			gh_error_set(err, "session_check", "%s: %s: %s", key, p,
			    strerror(errno));
			goto done;
		}
		/* Missing: one level up ("a/b" to "a", "/a" to "/", "a"
		 * to "."). */
		while (strlen(p) > 1 && p[strlen(p) - 1] == '/')
			p[strlen(p) - 1] = '\0';
		slash = strrchr(p, '/');
		if (slash == p)
			p[1] = '\0';
		else if (slash != NULL)
			*slash = '\0';
		else
			strcpy(p, ".");
	}
done:
	free(p);
	return rc;
}

int
session_check(const struct config *cfg, struct gh_error *err)
{
	const char *kf = cfg->cf_session_key_file;
	struct secret master = {NULL, 0};
	struct stat sb;
	char *dir;
	const char *slash;
	int rc;

	if (session_dir_check("session_store", cfg->cf_session_store, err) ==
	    -1)
		return -1;
	if (lstat(kf, &sb) == 0) {
		/* There: read and check it as start-up will (it exists, so
		 * nothing is created). */
		rc = keyfile_load(kf, &master, err);
		crypto_secret_cleanup(&master);
		return rc;
	}
	slash = strrchr(kf, '/');
	if (slash == NULL)
		dir = strdup(".");
	else if (slash == kf)
		dir = strdup("/");
	else
		dir = strndup(kf, slash - kf);
	if (dir == NULL) {
		gh_error_set(err, "session_check", "out of memory");
		return -1;
	}
	rc = session_dir_check("session_key_file", dir, err);
	free(dir);
	return rc;
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
session_reader_new(void)
{
	return session_store == NULL ? NULL : store_reader_new(session_store);
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

/* Read the hot part of sg->sg_key's record into sg->sg_s (allocating it
 * when NULL) and check its times. */
static enum session_result
session_fetch(struct session_get *sg, time_t now, const struct config *cfg)
{
	struct session *s;
	int rc;

	rc = session_get(sg->sg_reader, sg->sg_key, now, 0, session_hot_cb, sg);
	if (rc == STORE_NOTFOUND || sg->sg_garbled)
		return SESSION_NONE; /* unreadable: treat as signed out */
	if (rc != STORE_OK)
		return SESSION_ERR;
	s = sg->sg_s;
	if (now >= s->se_expires ||
	    now - s->se_last_seen > cfg->cf_session_idle_timeout)
		return SESSION_NONE;
	return SESSION_OK;
}

enum session_result
session_save(struct session *s)
{
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
		rc = store_put(session_store, s->se_key, (time_t)s->se_expires,
		    hot, hlen, cold, clen);
		if (rc == STORE_OK)
			s->se_cold_dirty = 0;
	} else {
		/* A touch: the cold part, large, is not rewritten. */
		rc = store_put_hot(session_store, s->se_key, hot, hlen);
	}
	free(hot);
	free(cold);
	switch (rc) {
	case STORE_OK:
		return SESSION_OK;
	case STORE_NOTFOUND:
		return SESSION_NONE;
	case STORE_FULL:
		return SESSION_FULL;
	default:
		return SESSION_ERR;
	}
}

enum session_result
session_load(struct store_reader *reader, const char *cookie, time_t now,
    const struct config *cfg, struct session **out)
{
	unsigned char id[33], key[32];
	struct session_get sg;
	enum session_result r;
	size_t n;

	*out = NULL;
	/* Anything but the exact shape of an id is no session: no store
	 * lookup for junk. */
	if (strlen(cookie) != SESSION_ID_B64_LEN ||
	    crypto_b64url_decode(
	        cookie, SESSION_ID_B64_LEN, id, sizeof(id), &n) == -1 ||
	    n != 32)
		return SESSION_NONE;
	if (crypto_sha256(id, 32, key) == -1)
		return SESSION_ERR;
	memset(&sg, 0, sizeof(sg));
	sg.sg_key = key;
	sg.sg_reader = reader;
	r = session_fetch(&sg, now, cfg);
	if (r != SESSION_OK) {
		session_free(sg.sg_s);
		return r;
	}
	sg.sg_s->se_trust_unverified_email = cfg->cf_trust_unverified_email;
	if (now - sg.sg_s->se_last_seen >= SESSION_TOUCH_EVERY) {
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
	char *copy, *ident;
	json_t *claims;
	size_t ilen = 0;

	if (session_cold_load(s) == -1)
		return -1;
	copy = strdup(claims_json);
	claims = json_loads(claims_json, 0, &jerr);
	ident = claims != NULL
	    ? identity_block(claims, s->se_trust_unverified_email)
	    : NULL;
	if (ident != NULL)
		ident = session_ident_with_sub(ident, claims, &ilen);
	if (copy == NULL || claims == NULL || ident == NULL) {
		free(copy);
		json_decref(claims);
		free(ident);
		return -1;
	}
	free(s->se_claims_json);
	s->se_claims_json = copy;
	json_decref(s->se_claims);
	s->se_claims = claims;
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
session_add_field(unsigned char **p, const char *v)
{
	uint32_t n = (uint32_t)(v != NULL ? strlen(v) : 0);

	memcpy(*p, &n, 4);
	if (n > 0)
		memcpy(*p + 4, v, n);
	*p += 4 + n;
}

int
session_set_tokens(struct session *s, const char *access, const char *refresh,
    const char *idtoken, int64_t at_expires)
{
	size_t al = access ? strlen(access) : 0,
	       rl = refresh ? strlen(refresh) : 0,
	       il = idtoken ? strlen(idtoken) : 0, ptlen, outlen;
	unsigned char *pt, *p, *out;
	int rc = -1;

	/* The claims must be there for the save that writes the tokens. */
	if (session_cold_load(s) == -1)
		return -1;
	ptlen = 12 + al + rl + il;
	pt = malloc(ptlen);
	out = malloc(ptlen + CRYPTO_AEAD_OVERHEAD);
	if (pt == NULL || out == NULL)
		goto done;
	p = pt;
	session_add_field(&p, access);
	session_add_field(&p, refresh);
	session_add_field(&p, idtoken);
	/* Bound to this record's key, so a sealed blob cannot be moved to
	 * another session. */
	if (crypto_aead_seal(keyfile_token_key(), s->se_key, sizeof(s->se_key),
	        pt, ptlen, out, ptlen + CRYPTO_AEAD_OVERHEAD, &outlen) == -1)
		goto done;
	free(s->se_sealed);
	s->se_sealed = out;
	s->se_sealed_len = outlen;
	out = NULL;
	s->se_at_expires = at_expires;
	s->se_at_lifetime = at_expires > 0 ? at_expires - time(NULL) : 0;
	s->se_cold_dirty = 1;
	crypto_secret_set(&s->se_access, access ? access : "", al);
	crypto_secret_set(&s->se_refresh, refresh ? refresh : "", rl);
	crypto_secret_set(&s->se_idtoken, idtoken ? idtoken : "", il);
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
	    session_take_field(&p, pt + ptlen, &s->se_idtoken) == -1)
		goto done;
	s->se_open = 1;
	rc = 0;
done:
	OPENSSL_cleanse(pt, s->se_sealed_len);
	free(pt);
	return rc;
}

void
session_delete(struct session *s)
{
	int rc;

	rc = store_del(session_store, s->se_key);
	/* Security: a record left behind keeps a copied cookie working, so
	 * an operator must hear of it. */
	if (rc == STORE_FULL || rc == STORE_ERR)
		log_warnx("session store: a session could not be deleted: %s",
		    rc == STORE_FULL ? "the store is full" : "write failed");
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
