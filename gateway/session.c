/* SPDX-License-Identifier: ISC */
/*
 * session.c: session records in the store, the process's keys, and the
 * small sealed values the sign-in flow keeps in cookies.
 */
#include <sys/stat.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "config.h"
#include "crypto.h"
#include "error.h"
#include "headers.h"
#include "log.h"
#include "session.h"
#include "store.h"

#define SESSION_MAGIC "GHS2"
#define SESSION_HDR_LEN (4 + 5 * 8 + 3 * 4)
#define SESSION_TOUCH_EVERY 60 /* seconds between last_seen updates */
/* The smallest map worth opening: a few hundred sessions of a few KiB.
 * Below it a value like "64" (meant as 64M) would give a store that is
 * full before the first sign-in. */
#define SESSION_MAP_SIZE_MIN (1024 * 1024)

static int session_parse_map_size(struct config *, const struct config_key *,
    const char *, int, const char **);

/* Sorted by name (S17). */
const struct config_key session_keys[] = {
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
const size_t session_nkeys = sizeof(session_keys) / sizeof(session_keys[0]);

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
static struct secret session_cookie_key;
static struct secret session_token_key;

/* Create the key file's directory (0700) when missing, like the store's:
 * a first start needs no preparation. */
static void
session_mkdir_parent(const char *path)
{
	char buf[4096], *p;

	if (strlen(path) >= sizeof(buf))
		return;
	strcpy(buf, path);
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(buf, 0700);
		*p = '/';
	}
}

int
session_init(const struct config *cfg, struct gh_error *err)
{
	struct secret master = {NULL, 0};
	int rc = -1;

	session_mkdir_parent(cfg->cf_session_key_file);
	if (crypto_key_file_load(cfg->cf_session_key_file, &master, err) == -1)
		return -1;
	if (crypto_secret_derive(
	        &master, CRYPTO_INFO_COOKIE, &session_cookie_key) == -1 ||
	    crypto_secret_derive(
	        &master, CRYPTO_INFO_TOKEN, &session_token_key) == -1) {
		gh_error_set(err, "key_derive", "cannot derive session keys");
		goto done;
	}
	session_store = store_open(
	    "lmdb", cfg->cf_session_store, cfg->cf_session_map_size, err);
	if (session_store == NULL)
		goto done;
	rc = 0;
done:
	crypto_secret_cleanup(&master);
	return rc;
}

void
session_shutdown(void)
{
	store_close(session_store);
	session_store = NULL;
	crypto_secret_cleanup(&session_cookie_key);
	crypto_secret_cleanup(&session_token_key);
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
	return s;
}

void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	free(s->se_claims_json);
	free(s->se_ident);
	free(s->se_sealed);
	json_decref(s->se_claims);
	crypto_secret_cleanup(&s->se_access);
	crypto_secret_cleanup(&s->se_refresh);
	crypto_secret_cleanup(&s->se_idtoken);
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

static uint32_t
session_get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* Record: magic, created, last_seen, expires, at_expires, then the lengths
 * of claims, identity block and sealed tokens, then those bytes.  The
 * store keeps its own expiry in front so its sweep never parses this. */
static unsigned char *
session_format(const struct session *s, size_t *len)
{
	uint32_t cl = (uint32_t)strlen(
	             s->se_claims_json ? s->se_claims_json : ""),
	         il = (uint32_t)strlen(s->se_ident ? s->se_ident : ""),
	         sl = (uint32_t)s->se_sealed_len;
	unsigned char *buf, *p;

	*len = SESSION_HDR_LEN + cl + il + sl;
	buf = malloc(*len);
	if (buf == NULL)
		return NULL;
	p = buf;
	memcpy(p, SESSION_MAGIC, 4);
	p += 4;
	session_put64(p, s->se_created);
	session_put64(p + 8, s->se_last_seen);
	session_put64(p + 16, s->se_expires);
	session_put64(p + 24, s->se_at_expires);
	session_put64(p + 32, s->se_at_lifetime);
	p += 40;
	memcpy(p, &cl, 4);
	memcpy(p + 4, &il, 4);
	memcpy(p + 8, &sl, 4);
	p += 12;
	memcpy(p, s->se_claims_json, cl);
	p += cl;
	memcpy(p, s->se_ident, il);
	p += il;
	if (sl > 0)
		memcpy(p, s->se_sealed, sl);
	return buf;
}

static int
session_parse(struct session *s, const unsigned char *buf, size_t len)
{
	uint32_t cl, il, sl;
	const unsigned char *p;

	if (len < SESSION_HDR_LEN || memcmp(buf, SESSION_MAGIC, 4) != 0)
		return -1;
	p = buf + 4;
	s->se_created = session_get64(p);
	s->se_last_seen = session_get64(p + 8);
	s->se_expires = session_get64(p + 16);
	s->se_at_expires = session_get64(p + 24);
	s->se_at_lifetime = session_get64(p + 32);
	p += 40;
	cl = session_get32(p);
	il = session_get32(p + 4);
	sl = session_get32(p + 8);
	p += 12;
	if ((size_t)cl + il + sl != len - SESSION_HDR_LEN)
		return -1;
	free(s->se_claims_json);
	free(s->se_ident);
	free(s->se_sealed);
	s->se_claims_json = strndup((const char *)p, cl);
	s->se_ident = strndup((const char *)p + cl, il);
	s->se_sealed = malloc(sl > 0 ? sl : 1);
	if (s->se_claims_json == NULL || s->se_ident == NULL ||
	    s->se_sealed == NULL)
		return -1;
	memcpy(s->se_sealed, p + cl + il, sl);
	s->se_sealed_len = sl;
	json_decref(s->se_claims);
	s->se_claims = NULL;
	s->se_open = 0;
	return 0;
}

enum session_result
session_save(struct session *s)
{
	unsigned char *buf;
	size_t len;
	int rc;

	buf = session_format(s, &len);
	if (buf == NULL)
		return SESSION_ERR;
	rc = store_put(
	    session_store, s->se_key, (time_t)s->se_expires, buf, len);
	free(buf);
	if (rc == STORE_FULL)
		return SESSION_FULL;
	return rc == STORE_OK ? SESSION_OK : SESSION_ERR;
}

static enum session_result
session_fetch(struct store_reader *reader, struct session *s, time_t now,
    const struct config *cfg)
{
	unsigned char *val = NULL;
	size_t len;
	int rc;

	rc = reader != NULL
	    ? store_reader_get(reader, s->se_key, now, &val, &len)
	    : store_get(session_store, s->se_key, now, &val, &len);
	if (rc == STORE_NOTFOUND)
		return SESSION_NONE;
	if (rc != STORE_OK)
		return SESSION_ERR;
	rc = session_parse(s, val, len);
	free(val);
	if (rc == -1)
		return SESSION_NONE; /* unreadable: treat as signed out */
	if (now >= s->se_expires ||
	    now - s->se_last_seen > cfg->cf_session_idle_timeout)
		return SESSION_NONE;
	return SESSION_OK;
}

enum session_result
session_load(struct store_reader *reader, const char *cookie, time_t now,
    const struct config *cfg, struct session **out)
{
	unsigned char id[33];
	struct session *s;
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
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return SESSION_ERR;
	crypto_sha256(id, 32, s->se_key);
	r = session_fetch(reader, s, now, cfg);
	if (r != SESSION_OK) {
		session_free(s);
		return r;
	}
	if (now - s->se_last_seen >= SESSION_TOUCH_EVERY) {
		s->se_last_seen = now;
		(void)session_save(s);
	}
	*out = s;
	return SESSION_OK;
}

enum session_result
session_reload(struct store_reader *reader, struct session *s, time_t now,
    const struct config *cfg)
{
	crypto_secret_cleanup(&s->se_access);
	crypto_secret_cleanup(&s->se_refresh);
	crypto_secret_cleanup(&s->se_idtoken);
	return session_fetch(reader, s, now, cfg);
}

int
session_set_claims(struct session *s, const char *claims_json)
{
	json_error_t jerr;

	free(s->se_claims_json);
	free(s->se_ident);
	s->se_ident = NULL;
	json_decref(s->se_claims);
	s->se_claims_json = strdup(claims_json);
	s->se_claims = json_loads(claims_json, 0, &jerr);
	if (s->se_claims_json == NULL || s->se_claims == NULL)
		return -1;
	s->se_ident = headers_identity_block(s->se_claims);
	return s->se_ident == NULL ? -1 : 0;
}

json_t *
session_claims(struct session *s)
{
	json_error_t jerr;

	if (s->se_claims == NULL && s->se_claims_json != NULL)
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
	if (crypto_aead_seal(&session_token_key, s->se_key, sizeof(s->se_key),
	        pt, ptlen, out, ptlen + CRYPTO_AEAD_OVERHEAD, &outlen) == -1)
		goto done;
	free(s->se_sealed);
	s->se_sealed = out;
	s->se_sealed_len = outlen;
	out = NULL;
	s->se_at_expires = at_expires;
	s->se_at_lifetime = at_expires > 0 ? at_expires - time(NULL) : 0;
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
	if (s->se_sealed_len < CRYPTO_AEAD_OVERHEAD)
		return -1;
	pt = malloc(s->se_sealed_len);
	if (pt == NULL)
		return -1;
	if (crypto_aead_open(&session_token_key, s->se_key, sizeof(s->se_key),
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

/*
 * Used sign-in states, in memory and shared by the workers.  A state is
 * single use: a second callback with it is refused.  This needs no disk
 * (it saved one fsync'd commit per sign-in): the window is the flow's ten
 * minutes, and a replay after a restart still fails at the provider, where
 * the code is single use too.  Full slots evict the entry nearest expiry.
 */
#define SESSION_USED_SLOTS 65536
#define SESSION_USED_PROBE 32
static pthread_mutex_t session_used_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned char su_hash[16];
	time_t su_until;
} session_used[SESSION_USED_SLOTS];

int
session_state_consume(const char *state, time_t now, time_t until)
{
	unsigned char h[32];
	size_t i, idx, victim;
	uint32_t start;
	int rc = 0;

	if (crypto_sha256(state, strlen(state), h) == -1)
		return -1;
	memcpy(&start, h, sizeof(start));
	pthread_mutex_lock(&session_used_mu);
	victim = start % SESSION_USED_SLOTS;
	for (i = 0; i < SESSION_USED_PROBE; i++) {
		idx = (start + i) % SESSION_USED_SLOTS;
		if (session_used[idx].su_until > now &&
		    memcmp(session_used[idx].su_hash, h, 16) == 0) {
			rc = 1;
			goto done;
		}
		if (session_used[idx].su_until < session_used[victim].su_until)
			victim = idx;
	}
	memcpy(session_used[victim].su_hash, h, 16);
	session_used[victim].su_until = until;
done:
	pthread_mutex_unlock(&session_used_mu);
	return rc;
}

char *
session_seal_cookie(const char *aad, const void *pt, size_t len)
{
	unsigned char *sealed;
	char *out = NULL;
	size_t slen, olen, cap;

	sealed = malloc(len + CRYPTO_AEAD_OVERHEAD);
	if (sealed == NULL)
		return NULL;
	if (crypto_aead_seal(&session_cookie_key, aad, strlen(aad), pt, len,
	        sealed, len + CRYPTO_AEAD_OVERHEAD, &slen) == 0) {
		cap = CRYPTO_B64URL_ENCLEN(slen) + 1;
		out = malloc(cap);
		if (out != NULL &&
		    crypto_b64url_encode(sealed, slen, out, cap, &olen) == -1) {
			free(out);
			out = NULL;
		}
	}
	free(sealed);
	return out;
}

char *
session_open_cookie(const char *aad, const char *b64, size_t *len)
{
	unsigned char *sealed = NULL, *pt = NULL;
	size_t blen = strlen(b64), slen, cap;

	cap = CRYPTO_B64URL_DECLEN(blen) + 1;
	sealed = malloc(cap);
	pt = malloc(cap + 1);
	if (sealed == NULL || pt == NULL ||
	    crypto_b64url_decode(b64, blen, sealed, cap, &slen) == -1 ||
	    crypto_aead_open(&session_cookie_key, aad, strlen(aad), sealed,
	        slen, pt, cap, len) == -1) {
		free(sealed);
		free(pt);
		return NULL;
	}
	free(sealed);
	pt[*len] = '\0';
	return (char *)pt;
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
