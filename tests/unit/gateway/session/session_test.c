/* SPDX-License-Identifier: ISC */
/*
 * session_test.c: session records in a real LMDB store in a temp dir: the
 * hot part read by session_load, the cold part read lazily, expiry, touch,
 * delete, sweep, and damaged or foreign records reading as no session.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <lmdb.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/error.h"
#include "lmdb_raw.h"
#include "session/identity.h"
#include "session/session.h"
#include "store.h"
#include "tap.h"
#include "tmpdir.h"

#define SESSION_TEST_MAP ((size_t)64 << 20)

static char tmpdir[128], store_path[256], key_path[256];
static struct config cfg;

/* The tests' "now": the real time, since the lazy cold read checks the
 * store's expiry against the clock. */
static time_t NOW;
#define CLAIMS1                                                                \
	"{\"sub\":\"s-1\",\"oid\":\"o-1\",\"email\":\"ann@example.com\","      \
	"\"preferred_username\":\"ann@example.com\",\"roles\":[\"Admin\"]}"
#define CLAIMS2                                                                \
	"{\"sub\":\"s-1\",\"oid\":\"o-1\",\"email\":\"ann@example.org\","      \
	"\"preferred_username\":\"ann@example.org\",\"groups\":[\"g1\"]}"

static int
store_start(void)
{
	struct gh_error err;

	memset(&err, 0, sizeof(err));
	if (session_init(&cfg, &err) == -1) {
		printf("# session_init: %s\n", err.ge_msg);
		return -1;
	}
	return 0;
}

/* A new session with CLAIMS1 and three tokens, saved; its cookie in
 * cookie.  The session is freed. */
static int
make_session(time_t now, char cookie[SESSION_ID_B64_LEN + 1])
{
	struct session *s;
	int rc = -1;

	s = session_new(now, &cfg);
	if (s == NULL)
		return -1;
	if (session_set_claims(s, CLAIMS1) == 0 &&
	    session_set_tokens(s, "access-1", "refresh-1", "id-1", now + 600) ==
	        0 &&
	    session_save(s) == SESSION_OK) {
		memcpy(cookie, s->se_cookie, SESSION_ID_B64_LEN + 1);
		rc = 0;
	}
	session_free(s);
	return rc;
}

/* The identity block identity.c builds for claims. */
static char *
ident_of(const char *claims)
{
	json_error_t jerr;
	json_t *j;
	char *b;

	j = json_loads(claims, 0, &jerr);
	b = j != NULL ? identity_block(j, 0) : NULL;
	json_decref(j);
	return b;
}

/*
 * Direct LMDB access to the store's files, to look at and damage what was
 * written; only between session_shutdown and store_start.  The LMDB key of
 * a part is the first 8 bytes of the session's store key as an integer,
 * its lowest bit the part (0 hot, 1 cold); a hot entry is expiry (8) ||
 * check (8) || hot part.
 */
static MDB_env *
raw_open(MDB_txn **txn, MDB_dbi *dbi, int rdonly)
{
	return test_lmdb_open(store_path, SESSION_TEST_MAP, txn, dbi, rdonly);
}

static long
raw_entries(void)
{
	return test_lmdb_entries(store_path, SESSION_TEST_MAP);
}

/* The store key of the session named by cookie. */
static void
cookie_key(const char *cookie, unsigned char key[32])
{
	unsigned char id[33];
	size_t n;

	crypto_b64url_decode(cookie, SESSION_ID_B64_LEN, id, sizeof(id), &n);
	crypto_sha256(id, 32, key);
}

/*
 * Change part `part` of cookie's record: delete it (len == (size_t)-1),
 * truncate it to len bytes (len < its size), or overwrite bytes at `off`
 * with `patch` (patch != NULL).  0 or -1.
 */
static int
raw_damage(const char *cookie, unsigned char part, size_t len, size_t off,
    const char *patch)
{
	unsigned char key[32], *copy = NULL;
	size_t kb;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, d;
	int rc;

	cookie_key(cookie, key);
	memcpy(&kb, key, sizeof(kb));
	kb = (kb & ~(size_t)1) | part;
	k.mv_size = sizeof(kb);
	k.mv_data = &kb;
	env = raw_open(&txn, &dbi, 0);
	if (env == NULL)
		return -1;
	rc = mdb_get(txn, dbi, &k, &d);
	if (rc == 0 && len == (size_t)-1) {
		rc = mdb_del(txn, dbi, &k, NULL);
	} else if (rc == 0) {
		copy = malloc(d.mv_size);
		if (copy == NULL)
			rc = -1;
		else {
			memcpy(copy, d.mv_data, d.mv_size);
			if (patch != NULL && off + strlen(patch) <= d.mv_size)
				memcpy(copy + off, patch, strlen(patch));
			else if (len < d.mv_size)
				d.mv_size = len;
			d.mv_data = copy;
			rc = mdb_put(txn, dbi, &k, &d, 0);
		}
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	free(copy);
	return rc == 0 ? 0 : -1;
}

/* Damage cookie's record with the store closed, then reopen it. */
static int
damage(const char *cookie, unsigned char part, size_t len, size_t off,
    const char *patch)
{
	int rc;

	session_shutdown();
	rc = raw_damage(cookie, part, len, off, patch);
	if (store_start() == -1)
		return -1;
	return rc;
}

static void
test_hot_then_cold(void)
{
	char cookie[SESSION_ID_B64_LEN + 1], *ident;
	struct store_reader *rd;
	struct session *s = NULL;
	json_t *claims;

	ok(make_session(NOW, cookie) == 0, "sign-in: session saved");
	rd = session_reader_new(NULL);
	ok(rd != NULL, "reader");
	is_int(session_load(rd, cookie, NOW + 1, &cfg, &s), SESSION_OK,
	    "session_load");
	if (s == NULL)
		return;
	ident = ident_of(CLAIMS1);
	is_str(s->se_ident, ident, "the hot part carries the identity block");
	is_str(session_sub(s), "s-1",
	    "and the sub, for the access log, without a cold read");
	is_int(s->se_expires, NOW + cfg.cf_session_lifetime, "and the end");
	is_int(s->se_at_expires, NOW + 600, "and the token expiry");
	is_int(s->se_cold, SESSION_COLD_UNREAD, "the cold part is not read");
	ok(s->se_claims_json == NULL && s->se_sealed == NULL &&
	        s->se_claims == NULL && !s->se_open,
	    "no claims, no sealed tokens in memory after the lookup");
	claims = session_claims(s);
	ok(claims != NULL &&
	        strcmp(json_string_value(json_object_get(claims, "email")),
	            "ann@example.com") == 0,
	    "session_claims reads the cold part lazily");
	is_int(s->se_cold, SESSION_COLD_LOADED, "now loaded");
	ok(session_claims(s) == claims, "parsed once");
	ok(!s->se_open, "tokens still sealed");
	ok(session_open_tokens(s) == 0 && s->se_access.len == 8 &&
	        memcmp(s->se_access.buf, "access-1", 8) == 0 &&
	        memcmp(s->se_refresh.buf, "refresh-1", 9) == 0 &&
	        memcmp(s->se_idtoken.buf, "id-1", 4) == 0,
	    "session_open_tokens decrypts them");
	session_free(s);
	s = NULL;

	/* Tokens first, without claims; and without a reader. */
	is_int(session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_OK,
	    "session_load without a reader");
	if (s != NULL) {
		ok(session_open_tokens(s) == 0 && s->se_access.len == 8,
		    "open_tokens reads the cold part itself");
		ok(s->se_claims == NULL && s->se_claims_json != NULL,
		    "claims read but not parsed");
	}
	session_free(s);
	free(ident);
	session_reader_free(rd);
}

/* Another worker rewrites the record between a lookup and the lazy cold
 * read: the cold read takes the hot part of the same commit too. */
/* Profile tokens: kept sealed beside the session's own, each with its
 * expiry and flags, through a save and a new load; the session's own
 * tokens changing keeps them, and the refresh token can rotate alone. */
static void
test_profile_tokens(void)
{
	char cookie[SESSION_ID_B64_LEN + 1];
	const struct session_ptok *t;
	struct session *s = NULL;

	make_session(NOW, cookie);
	is_int(
	    session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_OK, "load");
	if (s == NULL)
		return;
	ok(session_ptok_get(s, "graph") == NULL, "no profile token yet");
	ok(session_set_ptok(s, "graph", "g-tok", NOW + 600, 0) == 0 &&
	        session_set_ptok(s, "orders", NULL, 0,
	            SESSION_PTOK_REFUSED | SESSION_PTOK_ASKED) == 0 &&
	        session_set_refresh(s, "refresh-rotated") == 0 &&
	        session_set_tokens(s, "access-3",
	            (const char *)s->se_refresh.buf, "id-3", NOW + 900) == 0 &&
	        session_save(s) == SESSION_OK,
	    "two profiles, a rotated refresh token, new own tokens, saved");
	session_free(s);
	s = NULL;
	is_int(session_load(NULL, cookie, NOW + 2, &cfg, &s), SESSION_OK,
	    "load again");
	if (s == NULL)
		return;
	t = session_ptok_get(s, "graph");
	ok(t != NULL && t->sp_token.len == 5 &&
	        memcmp(t->sp_token.buf, "g-tok", 5) == 0 &&
	        t->sp_expires == NOW + 600 && t->sp_flags == 0,
	    "the graph token and its expiry");
	t = session_ptok_get(s, "orders");
	ok(t != NULL && t->sp_token.len == 0 &&
	        t->sp_flags == (SESSION_PTOK_REFUSED | SESSION_PTOK_ASKED),
	    "the refused profile and its flags");
	is_str((const char *)s->se_refresh.buf, "refresh-rotated",
	    "the rotated refresh token");
	is_str((const char *)s->se_access.buf, "access-3", "the own token");
	ok(session_set_ptok(s, "graph", "g-tok-2", NOW + 700, 0) == 0 &&
	        s->se_nptoks == 2,
	    "a profile's token replaced in place");
	session_free(s);
}

static void
test_cold_follows_update(void)
{
	char cookie[SESSION_ID_B64_LEN + 1], *ident;
	struct session *s1 = NULL, *s2 = NULL;

	make_session(NOW, cookie);
	is_int(
	    session_load(NULL, cookie, NOW + 1, &cfg, &s1), SESSION_OK, "load");
	is_int(session_load(NULL, cookie, NOW + 1, &cfg, &s2), SESSION_OK,
	    "load again (another request)");
	if (s1 == NULL || s2 == NULL)
		goto done;
	ok(session_set_claims(s2, CLAIMS2) == 0 &&
	        session_set_tokens(
	            s2, "access-2", "refresh-2", "id-2", NOW + 900) == 0 &&
	        session_save(s2) == SESSION_OK,
	    "the other request refreshes the tokens and claims");
	ident = ident_of(CLAIMS2);
	ok(session_claims(s1) != NULL &&
	        strcmp(json_string_value(
	                   json_object_get(session_claims(s1), "email")),
	            "ann@example.org") == 0,
	    "the first sees the new claims");
	is_str(
	    s1->se_ident, ident, "and the identity block of the same commit");
	is_int(s1->se_at_expires, NOW + 900, "and the new token expiry");
	ok(session_open_tokens(s1) == 0 &&
	        memcmp(s1->se_access.buf, "access-2", 8) == 0,
	    "and the new tokens");
	free(ident);
done:
	session_free(s1);
	session_free(s2);
}

static void
test_times(void)
{
	char cookie[SESSION_ID_B64_LEN + 1];
	struct session *s = NULL;
	time_t end;

	make_session(NOW, cookie);
	end = NOW + cfg.cf_session_lifetime;
	is_int(session_load(NULL, cookie, NOW + 30, &cfg, &s), SESSION_OK,
	    "load before a minute has passed");
	if (s != NULL)
		is_int(s->se_last_seen, NOW, "last_seen not touched yet");
	session_free(s);
	s = NULL;
	/* A touch: only the hot part is rewritten. */
	is_int(session_load(NULL, cookie, NOW + 100, &cfg, &s), SESSION_OK,
	    "load after a minute: touched");
	session_free(s);
	s = NULL;
	is_int(session_load(NULL, cookie, NOW + 101, &cfg, &s), SESSION_OK,
	    "load again");
	if (s != NULL) {
		is_int(s->se_last_seen, NOW + 100, "last_seen was written");
		ok(session_open_tokens(s) == 0 &&
		        memcmp(s->se_access.buf, "access-1", 8) == 0 &&
		        session_claims(s) != NULL,
		    "the cold part survived the touch");
	}
	session_free(s);
	s = NULL;
	/* Used last at NOW + 101, its last_seen NOW + 100: still within the
	 * timeout of that use, so it holds (last_seen lags by less than a
	 * touch interval, which the check allows for). */
	is_int(session_load(NULL, cookie,
	           NOW + 101 + cfg.cf_session_idle_timeout, &cfg, &s),
	    SESSION_OK, "idle just the timeout since its last use: kept");
	session_free(s);
	s = NULL;
	/* That load touched: last_seen is NOW + 701 now. */
	is_int(session_load(NULL, cookie,
	           NOW + 701 + cfg.cf_session_idle_timeout + 61, &cfg, &s),
	    SESSION_NONE, "idle too long (and a touch interval): no session");
	cfg.cf_session_idle_timeout = 0;
	is_int(session_load(NULL, cookie, NOW + 701 + 600 + 61, &cfg, &s),
	    SESSION_OK, "session_idle_timeout off: kept");
	if (s != NULL)
		ok(session_validated(s) >= NOW &&
		        session_validated(s) <= time(NULL),
		    "validated at its token grant");
	session_free(s);
	s = NULL;
	cfg.cf_session_idle_timeout = 600;
	is_int(session_load(NULL, cookie, end, &cfg, &s), SESSION_NONE,
	    "at its end: no session");
	ok(s == NULL, "and *out NULL");
	is_int(session_load(NULL, "not-a-cookie", NOW, &cfg, &s), SESSION_NONE,
	    "junk cookie: no session");
	is_int(session_load(NULL, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	           NOW, &cfg, &s),
	    SESSION_NONE, "unknown id: no session");
}

static void
test_delete_and_sweep(void)
{
	char cookie[SESSION_ID_B64_LEN + 1], c2[SESSION_ID_B64_LEN + 1];
	struct session *s = NULL, *old = NULL;
	long before, after;
	size_t n;

	session_shutdown();
	before = raw_entries();
	store_start();
	make_session(NOW, cookie);
	session_shutdown();
	after = raw_entries();
	store_start();
	is_int(after - before, 2, "a session is two entries (hot, cold)");
	is_int(
	    session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_OK, "load");
	is_int(session_load(NULL, cookie, NOW + 1, &cfg, &old), SESSION_OK,
	    "load (a request still holding it)");
	if (s != NULL)
		session_delete(s);
	session_free(s);
	s = NULL;
	is_int(session_load(NULL, cookie, NOW + 2, &cfg, &s), SESSION_NONE,
	    "logged out: no session");
	session_shutdown();
	is_int(raw_entries(), before, "delete removed both parts");
	store_start();
	if (old != NULL) {
		old->se_last_seen = NOW + 100;
		is_int(session_save(old), SESSION_NONE,
		    "a touch of the deleted record: SESSION_NONE");
		ok(session_claims(old) == NULL &&
		        session_open_tokens(old) == -1,
		    "and its cold part reads as no session");
		is_int(old->se_cold, SESSION_COLD_GONE, "gone");
	}
	session_free(old);
	is_int(session_load(NULL, cookie, NOW + 101, &cfg, &s), SESSION_NONE,
	    "the touch did not bring it back");

	/* The sweep: both parts of an ended session go. */
	make_session(NOW, cookie);
	make_session(NOW + 5000, c2);
	session_shutdown();
	before = raw_entries();
	store_start();
	n = 0;
	while (session_sweep(NOW + cfg.cf_session_lifetime, 1000) > 0)
		n++;
	ok(n >= 1, "the sweep deleted the ended session(s)");
	session_shutdown();
	after = raw_entries();
	store_start();
	ok(after <= before - 2 && after % 2 == 0,
	    "both parts of each swept session went (%ld -> %ld entries)",
	    before, after);
	is_int(session_load(NULL, c2, NOW + 5001, &cfg, &s), SESSION_OK,
	    "a live session survives the sweep");
	if (s != NULL)
		ok(session_claims(s) != NULL, "with its cold part");
	session_free(s);
}

/* Damaged and foreign records read as no session. */
static void
test_damage(void)
{
	char cookie[SESSION_ID_B64_LEN + 1], old_path[256],
	    store_path_save[256];
	unsigned char key[32], kb[32];
	struct session *s = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, d;

	/* Hot part: 16 bytes of store header, then "GHS3". */
	make_session(NOW, cookie);
	ok(damage(cookie, 0, 40, 0, NULL) == 0, "truncate a hot part");
	is_int(session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_NONE,
	    "truncated hot part: no session");
	make_session(NOW, cookie);
	ok(damage(cookie, 0, 0, 16, "GHS2") == 0, "old magic in a hot part");
	is_int(session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_NONE,
	    "format version mismatch (hot): no session");
	make_session(NOW, cookie);
	ok(damage(cookie, 0, 0, 20, "\xff\xff") == 0, "garble a length");
	is_int(session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_NONE,
	    "garbled hot part: no session");

	/* Cold part: the hot part alone still loads (it is all an `allow
	 * authenticated` route reads), but anything needing the cold part
	 * finds no session. */
	make_session(NOW, cookie);
	ok(damage(cookie, 1, (size_t)-1, 0, NULL) == 0, "drop a cold part");
	is_int(session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_OK,
	    "cold part missing: the lookup still works");
	if (s != NULL) {
		ok(session_claims(s) == NULL, "no claims: no session");
		is_int(session_open_tokens(s), -1, "no tokens: no session");
		is_int(s->se_cold, SESSION_COLD_GONE, "marked gone");
		is_int(session_set_claims(s, CLAIMS2), -1,
		    "and it cannot be rewritten half");
	}
	session_free(s);
	s = NULL;
	make_session(NOW, cookie);
	ok(damage(cookie, 1, 10, 0, NULL) == 0, "truncate a cold part");
	is_int(
	    session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_OK, "load");
	if (s != NULL)
		ok(session_claims(s) == NULL && session_open_tokens(s) == -1,
		    "truncated cold part: no session");
	session_free(s);
	s = NULL;
	make_session(NOW, cookie);
	ok(damage(cookie, 1, 0, 0, "GHC2") == 0, "old magic in a cold part");
	is_int(
	    session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_OK, "load");
	if (s != NULL)
		ok(session_claims(s) == NULL,
		    "format version mismatch (cold): no session");
	session_free(s);
	s = NULL;

	/* A store of format 1 (the previous layout: the whole SHA-256 as
	 * the key, one "GHS2" value, no MDB_INTEGERKEY) with this cookie's
	 * record: it reads as no session, and opening drops it. */
	session_shutdown();
	cookie_key(cookie, key);
	memcpy(kb, key, sizeof(kb));
	snprintf(old_path, sizeof(old_path), "%s/old-sessions", tmpdir);
	mkdir(old_path, 0700);
	cfg.cf_session_store = old_path;
	memcpy(store_path_save, store_path, sizeof(store_path));
	memcpy(store_path, old_path, sizeof(store_path));
	env = raw_open(&txn, &dbi, 0);
	k.mv_size = sizeof(kb);
	k.mv_data = kb;
	d.mv_size = 8 + 56;
	d.mv_data = calloc(1, d.mv_size);
	if (env != NULL && d.mv_data != NULL) {
		memset(d.mv_data, 0x7f, 8); /* far future expiry */
		memcpy((char *)d.mv_data + 8, "GHS2", 4);
		ok(mdb_put(txn, dbi, &k, &d, 0) == 0 &&
		        mdb_txn_commit(txn) == 0,
		    "a format-1 store");
		mdb_env_close(env);
	}
	free(d.mv_data);
	store_start();
	is_int(session_load(NULL, cookie, NOW + 1, &cfg, &s), SESSION_NONE,
	    "a format-1 record reads as no session");
	session_shutdown();
	is_int(raw_entries(), 0, "opening the store dropped it");
	memcpy(store_path, store_path_save, sizeof(store_path));
	cfg.cf_session_store = store_path;
	store_start();
}

static void
test_rewrite(void)
{
	char cookie[SESSION_ID_B64_LEN + 1];
	struct store_reader *rd;
	struct session *s = NULL;

	make_session(NOW, cookie);
	rd = session_reader_new(NULL);
	is_int(session_load(rd, cookie, NOW + 1, &cfg, &s), SESSION_OK, "load");
	if (s == NULL)
		goto done;
	/* Claims change (group overage) on a session whose cold part was
	 * not read: the save must keep its tokens. */
	ok(session_set_claims(s, CLAIMS2) == 0 && session_save(s) == SESSION_OK,
	    "set_claims + save on a freshly loaded session");
	session_free(s);
	s = NULL;
	is_int(session_load(rd, cookie, NOW + 2, &cfg, &s), SESSION_OK,
	    "load again");
	if (s == NULL)
		goto done;
	ok(session_open_tokens(s) == 0 &&
	        memcmp(s->se_refresh.buf, "refresh-1", 9) == 0,
	    "tokens kept");
	ok(session_claims(s) != NULL &&
	        json_object_get(session_claims(s), "groups") != NULL,
	    "claims replaced");
	/* Reload drops what was read and decrypted. */
	is_int(session_reload(rd, s, NOW + 3, &cfg), SESSION_OK, "reload");
	ok(!s->se_open && s->se_claims == NULL &&
	        s->se_cold == SESSION_COLD_UNREAD,
	    "reload: cold part to be read again");
	ok(session_open_tokens(s) == 0 && session_claims(s) != NULL,
	    "and it reads again");
done:
	session_free(s);
	session_reader_free(rd);
}

/*
 * A million forged session ids, each of the exact shape of a real one
 * (32 random bytes, base64url): every one is no session, the store neither
 * grows nor changes (a lookup never writes), and the real sessions among
 * them still load.  The id itself is never compared with anything: its
 * SHA-256 is the key, so a guess learns nothing from how a lookup ends.
 */
static void
test_forged_ids(void)
{
	struct store_reader *rd = NULL;
	char real[8][SESSION_ID_B64_LEN + 1], forged[SESSION_ID_B64_LEN + 1];
	unsigned char id[32];
	struct session *s = NULL;
	struct stat before, after;
	char data[300];
	long entries;
	size_t n, hits = 0, i, real_ok = 0;

	for (i = 0; i < 8; i++)
		if (make_session(NOW, real[i]) == -1)
			goto done;
	entries = raw_entries();
	snprintf(data, sizeof(data), "%s/data.mdb", store_path);
	if (!ok(stat(data, &before) == 0, "stat the store"))
		goto done;
	/* After raw_entries: closing its second environment would free this
	 * process's reader slots (LMDB: one environment per process). */
	rd = session_reader_new(NULL);
	for (i = 0; i < 1000000; i++) {
		if (crypto_random(id, sizeof(id)) == -1 ||
		    crypto_b64url_encode(
		        id, sizeof(id), forged, sizeof(forged), &n) == -1)
			break;
		if (session_load(rd, forged, NOW + 1, &cfg, &s) != SESSION_NONE)
			hits++;
		session_free(s);
		s = NULL;
		/* The real ones, between the forged ones. */
		if (i % 125000 == 0 &&
		    session_load(rd, real[i / 125000], NOW + 1, &cfg, &s) ==
		        SESSION_OK)
			real_ok++;
		session_free(s);
		s = NULL;
	}
	is_int(i, 1000000, "a million forged ids tried");
	is_int(hits, 0, "none of them is a session");
	is_int(real_ok, 8, "the real sessions among them load");
	session_reader_free(rd);
	rd = NULL;
	is_int(raw_entries(), entries, "no new record");
	ok(stat(data, &after) == 0 && after.st_size == before.st_size &&
	        after.st_blocks == before.st_blocks &&
	        after.st_mtime == before.st_mtime,
	    "the store file is unchanged");
done:
	session_reader_free(rd);
}

int
main(void)
{
	if (test_tmpdir(tmpdir, sizeof(tmpdir), "session_test") == -1) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return done_testing();
	}
	NOW = time(NULL);
	snprintf(store_path, sizeof(store_path), "%s/sessions", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/session.key", tmpdir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.cf_session_store = store_path;
	cfg.cf_session_key_file = key_path;
	cfg.cf_session_lifetime = 3600;
	cfg.cf_session_idle_timeout = 600;
	cfg.cf_session_map_size = SESSION_TEST_MAP;
	if (store_start() == -1) {
		ok(0, "session_init");
		return done_testing();
	}
	/* First: the damage tests open the store a second time in this
	 * process, which LMDB's reader table does not expect. */
	test_forged_ids();
	test_hot_then_cold();
	test_cold_follows_update();
	test_profile_tokens();
	test_times();
	test_delete_and_sweep();
	test_damage();
	test_rewrite();
	session_shutdown();
	ok(test_rmtree(tmpdir) == 0, "cleanup");
	return done_testing();
}
