/* SPDX-License-Identifier: ISC */
/* store_lmdb_test.c: the session store on a real LMDB in a temp dir. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "core/error.h"
#include "lmdb_raw.h"
#include "store.h"
#include "tap.h"
#include "tmpdir.h"

static char tmpdir[128];

/* A well-spread key for number i (stands in for SHA-256). */
static void
make_key(unsigned char key[STORE_KEY_LEN], unsigned int i)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (i + 1);
	size_t j;

	for (j = 0; j < STORE_KEY_LEN; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		key[j] = (unsigned char)(x >> 24);
	}
}

static struct store *
open_at(const char *name, size_t map_size)
{
	char path[256];
	struct gh_error err;
	struct store *st;

	memset(&err, 0, sizeof(err));
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	st = store_open(NULL, path, map_size, &err);
	if (st == NULL)
		printf("# store_open %s: %s\n", path, err.ge_msg);
	return st;
}

/* What a get handed to its callback, copied out. */
struct got {
	unsigned char *hot, *cold;
	size_t hotlen, coldlen;
	int calls, have_cold, refuse;
};

static int
got_cb(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t coldlen)
{
	struct got *g = arg;

	g->calls++;
	if (g->refuse)
		return -1;
	free(g->hot);
	free(g->cold);
	g->hot = malloc(hotlen + 1);
	g->cold = malloc(coldlen + 1);
	if (g->hot == NULL || g->cold == NULL)
		return -1;
	memcpy(g->hot, hot, hotlen);
	g->hot[hotlen] = '\0';
	g->hotlen = hotlen;
	g->have_cold = cold != NULL;
	if (coldlen > 0)
		memcpy(g->cold, cold, coldlen);
	g->cold[coldlen] = '\0';
	g->coldlen = coldlen;
	return 0;
}

static void
got_clear(struct got *g)
{
	free(g->hot);
	free(g->cold);
	memset(g, 0, sizeof(*g));
}

static int
get_rc(struct store *st, unsigned int i, time_t now, int flags, struct got *g)
{
	unsigned char key[STORE_KEY_LEN];

	make_key(key, i);
	return store_get(st, key, now, flags, got_cb, g);
}

/* 1 if record i reads as hot `want` (NULL: NOTFOUND, callback not
 * called) without STORE_COLD. */
static int
get_is(struct store *st, unsigned int i, time_t now, const char *want)
{
	struct got g;
	int rc, same;

	memset(&g, 0, sizeof(g));
	rc = get_rc(st, i, now, 0, &g);
	if (want == NULL)
		same = rc == STORE_NOTFOUND && g.calls == 0;
	else
		same = rc == STORE_OK && g.calls == 1 && !g.have_cold &&
		    g.hotlen == strlen(want) &&
		    memcmp(g.hot, want, g.hotlen) == 0;
	got_clear(&g);
	return same;
}

/* 1 if record i reads as hot `hot` and cold `cold` with STORE_COLD. */
static int
get_both_is(struct store *st, unsigned int i, time_t now, const char *hot,
    const char *cold)
{
	struct got g;
	int rc, same;

	memset(&g, 0, sizeof(g));
	rc = get_rc(st, i, now, STORE_COLD, &g);
	same = rc == STORE_OK && g.calls == 1 && g.have_cold &&
	    g.hotlen == strlen(hot) && memcmp(g.hot, hot, g.hotlen) == 0 &&
	    g.coldlen == strlen(cold) && memcmp(g.cold, cold, g.coldlen) == 0;
	got_clear(&g);
	return same;
}

static int
put2(struct store *st, unsigned int i, time_t expiry, const char *hot,
    const char *cold)
{
	unsigned char key[STORE_KEY_LEN];

	make_key(key, i);
	return store_put(st, key, expiry, hot, strlen(hot), cold, strlen(cold));
}

static int
put(struct store *st, unsigned int i, time_t expiry, const char *s)
{
	return put2(st, i, expiry, s, "cold");
}

/*
 * Direct LMDB access to a store's files, to look at and damage what the
 * backend wrote.  Only while no struct store is open on the directory (one
 * process must not open an environment twice).
 */
static MDB_env *
raw_open(const char *name, MDB_txn **txn, MDB_dbi *dbi, int rdonly)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return test_lmdb_open(path, (size_t)1 << 30, txn, dbi, rdonly);
}

/* Entries in the store's database (both parts count), or -1. */
static long
raw_entries(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return test_lmdb_entries(path, (size_t)1 << 30);
}

/* The LMDB key of part `part` (0 hot, 1 cold) of record i: the first 8
 * bytes of its key as an integer, its lowest bit the part (store_lmdb.c's
 * format 2). */
static void
raw_key(MDB_val *k, size_t *buf, unsigned int i, size_t part)
{
	unsigned char key[STORE_KEY_LEN];

	make_key(key, i);
	memcpy(buf, key, sizeof(*buf));
	*buf = (*buf & ~(size_t)1) | part;
	k->mv_size = sizeof(*buf);
	k->mv_data = buf;
}

/* Delete (val NULL) or overwrite one raw entry.  0 or -1. */
static int
raw_set(const char *name, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, d;
	int rc;

	env = raw_open(name, &txn, &dbi, 0);
	if (env == NULL)
		return -1;
	k.mv_size = klen;
	k.mv_data = (void *)(uintptr_t)key;
	d.mv_size = vlen;
	d.mv_data = (void *)(uintptr_t)val;
	rc = val == NULL ? mdb_del(txn, dbi, &k, NULL)
	                 : mdb_put(txn, dbi, &k, &d, 0);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc == 0 ? 0 : -1;
}

static void
test_registry(void)
{
	struct gh_error err;
	struct stat sb;
	char path[256];
	struct store *st;

	ok(store_backend_find("lmdb") == &store_lmdb_backend,
	    "lmdb is registered");
	ok(store_backend_find("nosuch") == NULL, "unknown backend not found");
	is_str(store_backend_for("/var/lib/x"), "lmdb", "a path is LMDB");
	is_str(store_backend_for("redis://h:1"), "redis", "a URL is Redis");
	memset(&err, 0, sizeof(err));
	snprintf(path, sizeof(path), "%s/x", tmpdir);
	ok(store_open("nosuch", path, 0, &err) == NULL &&
	        strstr(err.ge_msg, "nosuch") != NULL,
	    "unknown backend refused: %s", err.ge_msg);

	st = open_at("a/b/c", 0);
	ok(st != NULL, "open creates missing directories");
	snprintf(path, sizeof(path), "%s/a/b/c", tmpdir);
	ok(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	        (sb.st_mode & 0777) == 0700,
	    "store directory is 0700");
	snprintf(path, sizeof(path), "%s/a/b/c/data.mdb", tmpdir);
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
	    "data file is 0600");
	store_close(st);
	store_close(NULL);

	snprintf(path, sizeof(path), "%s/a/b/c/data.mdb/sub", tmpdir);
	memset(&err, 0, sizeof(err));
	ok(store_open(NULL, path, 0, &err) == NULL && err.ge_msg[0] != '\0',
	    "a path under a file is refused: %s", err.ge_msg);
}

static void
test_basic(void)
{
	unsigned char key[STORE_KEY_LEN], *big;
	struct got g;
	size_t i, bigsz = 200000;
	struct store *st;
	int rc;

	st = open_at("basic", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	ok(get_is(st, 1, 1000, NULL), "get of a missing key: NOTFOUND");
	is_int(put2(st, 1, 2000, "one", "ONE"), STORE_OK, "put");
	ok(get_is(st, 1, 1000, "one"), "get: the hot part, no cold part");
	ok(get_both_is(st, 1, 1000, "one", "ONE"),
	    "get with STORE_COLD: both parts");
	is_int(put2(st, 1, 2000, "uno", "UNO"), STORE_OK, "put replaces");
	ok(get_both_is(st, 1, 1000, "uno", "UNO"), "both parts replaced");
	ok(get_is(st, 2, 1000, NULL), "other key still NOTFOUND");
	make_key(key, 1);
	is_int(store_del(st, key), STORE_OK, "del");
	ok(get_is(st, 1, 1000, NULL), "gone after del");
	memset(&g, 0, sizeof(g));
	is_int(get_rc(st, 1, 1000, STORE_COLD, &g), STORE_NOTFOUND,
	    "cold part gone after del");
	is_int(g.calls, 0, "callback not called for NOTFOUND");
	is_int(store_del(st, key), STORE_NOTFOUND, "del of a missing key");

	/* The callback refusing a record. */
	put2(st, 6, 2000, "six", "SIX");
	memset(&g, 0, sizeof(g));
	g.refuse = 1;
	is_int(get_rc(st, 6, 1000, 0, &g), STORE_ERR, "refused: STORE_ERR");
	is_int(g.calls, 1, "after one call");
	got_clear(&g);

	/* put_hot: the hot part changes, the cold part and expiry stay. */
	make_key(key, 6);
	is_int(store_put_hot(st, key, "SEIS", 4), STORE_OK, "put_hot");
	ok(get_both_is(st, 6, 1000, "SEIS", "SIX"), "cold part kept");
	ok(get_is(st, 6, 1999, "SEIS") && get_is(st, 6, 2000, NULL),
	    "expiry kept");
	make_key(key, 7);
	is_int(store_put_hot(st, key, "x", 1), STORE_NOTFOUND,
	    "put_hot of a missing key: NOTFOUND");
	ok(get_is(st, 7, 1000, NULL), "and nothing created");

	/* Empty and large parts. */
	make_key(key, 3);
	is_int(store_put(st, key, 2000, "", 0, "", 0), STORE_OK,
	    "put empty parts");
	memset(&g, 0, sizeof(g));
	rc = get_rc(st, 3, 1000, STORE_COLD, &g);
	ok(rc == STORE_OK && g.hotlen == 0 && g.coldlen == 0 && g.have_cold,
	    "get empty parts");
	got_clear(&g);
	big = malloc(bigsz);
	if (big == NULL)
		return;
	for (i = 0; i < bigsz; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	make_key(key, 4);
	is_int(store_put(st, key, 2000, big, bigsz, big + 1, bigsz - 1),
	    STORE_OK, "put 200 kB parts");
	memset(&g, 0, sizeof(g));
	rc = get_rc(st, 4, 1000, STORE_COLD, &g);
	ok(rc == STORE_OK && g.hotlen == bigsz &&
	        memcmp(g.hot, big, bigsz) == 0 && g.coldlen == bigsz - 1 &&
	        memcmp(g.cold, big + 1, bigsz - 1) == 0,
	    "get 200 kB parts");
	got_clear(&g);
	free(big);

	/* Expiry: exactly at `expiry` the record is gone for get. */
	is_int(put(st, 5, 1500, "short"), STORE_OK, "put expiring record");
	ok(get_is(st, 5, 1499, "short"), "found before expiry");
	ok(get_is(st, 5, 1500, NULL), "NOTFOUND at expiry");
	memset(&g, 0, sizeof(g));
	is_int(get_rc(st, 5, 1500, STORE_COLD, &g), STORE_NOTFOUND,
	    "NOTFOUND at expiry with STORE_COLD too");
	ok(get_is(st, 5, 9999, NULL), "NOTFOUND after expiry");
	ok(get_is(st, 5, 0, "short"), "still stored until swept");
	store_close(st);
}

/* The LMDB layout: two entries a record, inline hot parts, nothing left
 * by del; damage and old formats read as no record. */
static void
test_layout(void)
{
	unsigned char old[32], hot[STORE_HOT_INLINE_MAX],
	    big_hot[STORE_HOT_INLINE_MAX + 1];
	unsigned char key[STORE_KEY_LEN];
	char path[256];
	size_t kb;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat ms;
	MDB_val k;
	struct store *st;
	struct got g;
	size_t deleted = 0;

	st = open_at("layout", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	memset(hot, 'h', sizeof(hot));
	memset(big_hot, 'H', sizeof(big_hot));
	make_key(key, 1);
	store_put(st, key, 5000, hot, sizeof(hot), "cold", 4);
	make_key(key, 2);
	store_put(st, key, 5000, hot, sizeof(hot), "cold", 4);
	store_close(st);
	is_int(raw_entries("layout"), 4, "two records are four entries");
	env = raw_open("layout", &txn, &dbi, 1);
	ok(env != NULL && mdb_stat(txn, dbi, &ms) == 0 &&
	        ms.ms_overflow_pages == 0,
	    "a hot part of STORE_HOT_INLINE_MAX bytes stays inline (%zu "
	    "overflow pages)",
	    env != NULL ? ms.ms_overflow_pages : 0);
	if (env != NULL) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
	}
	st = open_at("layout", 0);
	ok(st != NULL, "reopen");
	if (st == NULL)
		return;
	make_key(key, 9);
	store_put(st, key, 5000, big_hot, sizeof(big_hot), "cold", 4);
	store_del(st, key);
	store_close(st);
	env = raw_open("layout", &txn, &dbi, 1);
	ok(env != NULL && mdb_stat(txn, dbi, &ms) == 0 &&
	        ms.ms_overflow_pages == 0,
	    "still no overflow page after a larger one came and went");
	if (env != NULL) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
	}
	st = open_at("layout", 0);
	if (st == NULL)
		return;
	store_put(st, key, 5000, big_hot, sizeof(big_hot), "cold", 4);
	store_close(st);
	env = raw_open("layout", &txn, &dbi, 1);
	ok(env != NULL && mdb_stat(txn, dbi, &ms) == 0 &&
	        ms.ms_overflow_pages == 1,
	    "one byte more and the hot part takes an overflow page");
	if (env != NULL) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
	}
	st = open_at("layout", 0);
	if (st == NULL)
		return;
	store_del(st, key);
	store_close(st);

	/* A record without its cold part; a hot part too short for its
	 * header; an orphan cold part. */
	raw_key(&k, &kb, 2, 1);
	ok(raw_set("layout", &kb, sizeof(kb), NULL, 0) == 0,
	    "drop a cold part");
	raw_key(&k, &kb, 3, 0);
	raw_set("layout", &kb, sizeof(kb), "abc", 3);
	raw_key(&k, &kb, 3, 1);
	raw_set("layout", &kb, sizeof(kb), "cold", 4);
	raw_key(&k, &kb, 8, 1);
	raw_set("layout", &kb, sizeof(kb), "orphan", 6);
	st = open_at("layout", 0);
	ok(st != NULL, "reopen");
	if (st == NULL)
		return;
	memset(&g, 0, sizeof(g));
	ok(get_rc(st, 2, 1000, 0, &g) == STORE_OK && g.hotlen == sizeof(hot),
	    "no cold part: the hot part alone still reads");
	got_clear(&g);
	is_int(get_rc(st, 2, 1000, STORE_COLD, &g), STORE_NOTFOUND,
	    "no cold part: NOTFOUND with STORE_COLD");
	is_int(g.calls, 0, "and no callback");
	ok(get_is(st, 3, 1000, NULL),
	    "a hot part shorter than its expiry: "
	    "NOTFOUND");
	is_int(store_sweep(st, 1000, 100, &deleted), STORE_OK, "sweep");
	/* 2's cold is gone already; 3 (too short) and 8's cold go. */
	is_int(deleted, 2, "sweep drops the damaged record and the orphan");
	ok(get_rc(st, 1, 1000, STORE_COLD, &g) == STORE_OK &&
	        g.hotlen == sizeof(hot) && g.coldlen == 4,
	    "live record untouched by the sweep");
	got_clear(&g);
	make_key(key, 1);
	is_int(store_del(st, key), STORE_OK, "del");
	make_key(key, 2);
	is_int(store_del(st, key), STORE_OK, "del of a record without cold");
	store_close(st);
	is_int(raw_entries("layout"), 0, "del leaves no entry behind");

	/* A format-1 store: 32-byte keys, one entry per record, no
	 * MDB_INTEGERKEY.  Opening it drops the old records. */
	snprintf(path, sizeof(path), "%s/old", tmpdir);
	mkdir(path, 0700);
	memset(old, 0x42, sizeof(old));
	ok(raw_set("old", old, sizeof(old), "\0\0\0\0\x7f\0\0\0GHS2 old record",
	       23) == 0,
	    "a format-1 store");
	st = open_at("old", 0);
	ok(st != NULL, "opens");
	if (st == NULL)
		return;
	make_key(key, 1);
	is_int(store_put(st, key, 5000, "new", 3, "", 0), STORE_OK,
	    "takes new records");
	store_close(st);
	is_int(raw_entries("old"), 2, "and kept none of the old ones");
}

/* Two keys that share the 8 bytes the LMDB key keeps: the other 8 are
 * checked, so neither reads, touches or deletes the other's record. */
static void
test_shared_prefix(void)
{
	unsigned char a[STORE_KEY_LEN], b[STORE_KEY_LEN];
	struct store *st;
	struct got g;
	int rc;

	st = open_at("prefix", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	make_key(a, 1);
	memcpy(b, a, sizeof(b));
	b[STORE_KEY_LEN - 1] ^= 0x01;
	is_int(store_put(st, a, 5000, "A", 1, "AA", 2), STORE_OK, "put a");
	memset(&g, 0, sizeof(g));
	is_int(store_get(st, b, 1000, STORE_COLD, got_cb, &g), STORE_NOTFOUND,
	    "a key differing in its last byte finds nothing");
	is_int(g.calls, 0, "and its callback is not called");
	is_int(store_put_hot(st, b, "B", 1), STORE_NOTFOUND,
	    "put_hot of it: NOTFOUND");
	is_int(store_del(st, b), STORE_NOTFOUND, "del of it: NOTFOUND");
	rc = store_get(st, a, 1000, STORE_COLD, got_cb, &g);
	ok(rc == STORE_OK && g.hotlen == 1 && g.hot[0] == 'A' && g.coldlen == 2,
	    "the first record is untouched");
	/* A put of the second replaces the first (probability n / 2^64). */
	is_int(store_put(st, b, 5000, "B", 1, "BB", 2), STORE_OK, "put b");
	is_int(store_get(st, a, 1000, 0, got_cb, &g), STORE_NOTFOUND,
	    "then the first is gone");
	rc = store_get(st, b, 1000, STORE_COLD, got_cb, &g);
	ok(rc == STORE_OK && g.hot[0] == 'B' && g.coldlen == 2 &&
	        g.cold[0] == 'B',
	    "and the second reads whole");
	got_clear(&g);
	store_close(st);
}

static void
test_sweep(void)
{
	unsigned char key[STORE_KEY_LEN];
	size_t deleted = 0, total, calls;
	unsigned int i, present;
	struct store *st;
	int bad;

	st = open_at("sweep", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	/* 20 records, even ones expired at now = 1000. */
	bad = 0;
	for (i = 0; i < 20; i++)
		if (put(st, i, i % 2 == 0 ? 900 : 5000, "v") != STORE_OK)
			bad++;
	is_int(bad, 0, "20 puts");
	is_int(store_sweep(st, 1000, 3, &deleted), STORE_OK, "sweep");
	is_int(deleted, 3, "sweep deletes at most max (1)");
	is_int(store_sweep(st, 1000, 3, &deleted), STORE_OK, "sweep");
	is_int(deleted, 3, "sweep deletes at most max (2)");
	is_int(store_sweep(st, 1000, 3, &deleted), STORE_OK, "sweep");
	is_int(deleted, 3, "sweep deletes at most max (3)");
	is_int(store_sweep(st, 1000, 3, &deleted), STORE_OK, "sweep");
	is_int(deleted, 1, "sweep deletes the last expired one");
	is_int(store_sweep(st, 1000, 3, &deleted), STORE_OK, "sweep");
	is_int(deleted, 0, "nothing left to sweep");
	present = 0;
	bad = 0;
	for (i = 0; i < 20; i++) {
		if (get_is(st, i, 0, "v"))
			present++;
		if (i % 2 == 1 && !get_is(st, i, 1000, "v"))
			bad++;
	}
	is_int(present, 10, "swept records are really deleted");
	is_int(bad, 0, "live records untouched");

	/* Consecutive expired records in one call (delete-then-next). */
	bad = 0;
	for (i = 100; i < 300; i++)
		if (put(st, i, 900, "x") != STORE_OK)
			bad++;
	is_int(bad, 0, "200 more puts");
	is_int(store_sweep(st, 1000, 1000, &deleted), STORE_OK, "big sweep");
	is_int(deleted, 200, "all 200 expired records swept at once");
	present = 0;
	for (i = 100; i < 300; i++)
		if (!get_is(st, i, 0, NULL))
			present++;
	is_int(present, 0, "none of them is left");

	/* Many live records, few expired: the visit budget bounds a call,
	 * and the next call continues where this one stopped. */
	bad = 0;
	for (i = 1000; i < 3000; i++)
		if (put(st, i, i % 200 == 0 ? 900 : 5000, "y") != STORE_OK)
			bad++;
	is_int(bad, 0, "2000 more puts");
	total = 0;
	for (calls = 0; calls < 100 && total < 10; calls++) {
		if (store_sweep(st, 1000, 1, &deleted) != STORE_OK)
			break;
		total += deleted;
	}
	is_int(total, 10, "repeated small sweeps find all 10 expired");
	/* 2010 records are 4020 entries; a call visits 256 of them. */
	ok(calls > 1 && calls <= 40, "in a bounded number of calls (%zu)",
	    calls);
	make_key(key, 1001);
	ok(get_is(st, 1001, 1000, "y"), "live record survives sweeps");
	is_int(store_sweep(st, 1000, 0, &deleted), STORE_OK, "sweep max 0");
	is_int(deleted, 0, "sweep max 0 deletes nothing");
	store_close(st);
	/* 10 + 1990 live records, two entries each: no part left over. */
	is_int(raw_entries("sweep"), 2 * 2000,
	    "the sweep removed both parts of every record");
}

/* The callback sees the record as committed, and only during the call:
 * what it copied stays valid after later transactions. */
static void
test_callback(void)
{
	char buf[64];
	unsigned int i;
	struct store *st;
	struct got g;
	int rc;

	st = open_at("copy", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	put2(st, 7, 5000, "original value", "original cold");
	memset(&g, 0, sizeof(g));
	rc = get_rc(st, 7, 1000, STORE_COLD, &g);
	ok(rc == STORE_OK, "get");
	/* Rewrite, delete and churn so LMDB reuses the pages. */
	put2(st, 7, 5000, "XXXXXXXXXXXXXX", "YYYYYYYYYYYYY");
	for (i = 0; i < 500; i++) {
		snprintf(buf, sizeof(buf), "churn %u ZZZZZZZZZZZZZZZZZZ", i);
		put(st, 10000 + i, i % 2 ? 900 : 5000, buf);
	}
	store_sweep(st, 1000, 1000, NULL);
	ok(g.hotlen == 14 && memcmp(g.hot, "original value", 14) == 0 &&
	        g.coldlen == 13 && memcmp(g.cold, "original cold", 13) == 0,
	    "what the callback copied stays valid after later transactions");
	got_clear(&g);
	ok(get_both_is(st, 7, 1000, "XXXXXXXXXXXXXX", "YYYYYYYYYYYYY"),
	    "a get sees the later commit");
	store_close(st);
}

static void
test_reader(void)
{
	unsigned char key[STORE_KEY_LEN];
	struct store_reader *rd, *rd2;
	unsigned int i, bad = 0;
	struct store *st;
	struct got g;
	int rc;

	st = open_at("reader", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	rd = store_reader_new(st, NULL);
	rd2 = store_reader_new(st, NULL);
	ok(rd != NULL && rd2 != NULL, "readers");
	memset(&g, 0, sizeof(g));
	make_key(key, 1);
	rc = store_reader_get(rd, key, 1000, 0, got_cb, &g);
	ok(rc == STORE_NOTFOUND && g.calls == 0, "reader: NOTFOUND");
	for (i = 0; i < 100; i++)
		put(st, i, i < 50 ? 5000 : 900, "r");
	/* The reader sees commits made after it was created. */
	rc = store_reader_get(rd, key, 1000, 0, got_cb, &g);
	ok(rc == STORE_OK && g.hotlen == 1 && g.hot[0] == 'r' && !g.have_cold,
	    "reader sees a later commit");
	rc = store_reader_get(rd, key, 1000, STORE_COLD, got_cb, &g);
	ok(rc == STORE_OK && g.hotlen == 1 && g.coldlen == 4 &&
	        memcmp(g.cold, "cold", 4) == 0,
	    "reader reads the cold part when asked");
	got_clear(&g);
	for (i = 0; i < 20000; i++) {
		make_key(key, i % 200);
		g.calls = 0;
		rc = store_reader_get(i % 2 ? rd : rd2, key, 1000,
		    i % 3 == 0 ? STORE_COLD : 0, got_cb, &g);
		if (i % 200 < 50
		        ? rc != STORE_OK || g.hotlen != 1 || g.hot[0] != 'r'
		        : rc != STORE_NOTFOUND || g.calls != 0)
			bad++;
		if (i == 10000)
			put(st, 60, 5000, "late");
	}
	got_clear(&g);
	/* Key 60 turned live at i == 10000; lookups of it after that
	 * counted as "bad" (50 of them) and show the reader is fresh. */
	is_int(bad, 50, "20000 reader lookups, fresh after each commit");
	make_key(key, 60);
	rc = store_reader_get(rd, key, 1000, 0, got_cb, &g);
	ok(rc == STORE_OK && g.hotlen == 4 && memcmp(g.hot, "late", 4) == 0,
	    "reader reads the late record");
	got_clear(&g);
	store_reader_free(rd);
	store_reader_free(rd2);
	store_reader_free(NULL);
	store_close(st);
}

struct worker {
	struct store *st;
	unsigned int base;
	int errors;
};

/* A record's two parts carry the same version: a get that sees the hot
 * part of one put and the cold part of another is a torn read. */
static int
pair_cb(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t coldlen)
{
	int *torn = arg;

	if (hotlen != coldlen || memcmp(hot, cold, hotlen) != 0)
		(*torn)++;
	return 0;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct store_reader *rd;
	unsigned char key[STORE_KEY_LEN];
	char buf[64];
	unsigned int i;
	struct got g;
	int rc, torn = 0;

	rd = store_reader_new(w->st, NULL);
	if (rd == NULL) {
		w->errors++;
		return NULL;
	}
	memset(&g, 0, sizeof(g));
	for (i = 0; i < 400; i++) {
		snprintf(buf, sizeof(buf), "value %u", w->base + i);
		make_key(key, w->base + i);
		if (store_put(w->st, key, 5000, buf, strlen(buf), buf,
		        strlen(buf)) != STORE_OK)
			w->errors++;
		rc = store_reader_get(rd, key, 1000, STORE_COLD, got_cb, &g);
		if (rc != STORE_OK || g.hotlen != strlen(buf) ||
		    memcmp(g.hot, buf, g.hotlen) != 0)
			w->errors++;
		/* Both threads rewrite one shared record and read it back
		 * whole: never a torn pair. */
		make_key(key, 0x7777);
		if (store_put(w->st, key, 5000, buf, strlen(buf), buf,
		        strlen(buf)) != STORE_OK ||
		    store_reader_get(
		        rd, key, 1000, STORE_COLD, pair_cb, &torn) != STORE_OK)
			w->errors++;
		/* And a lookup without the reader, of anybody's key. */
		make_key(key, (w->base ^ 0x10000) + i / 2);
		rc = store_get(w->st, key, 1000, 0, got_cb, &g);
		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			w->errors++;
		if (i % 50 == 0 &&
		    store_sweep(w->st, 1000, 10, NULL) != STORE_OK)
			w->errors++;
	}
	got_clear(&g);
	w->errors += torn;
	store_reader_free(rd);
	return NULL;
}

static void
test_threads(void)
{
	struct worker w[2];
	pthread_t t[2];
	unsigned int i, bad = 0;
	struct store *st;
	char buf[64];
	int j;

	st = open_at("threads", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	for (j = 0; j < 2; j++) {
		w[j].st = st;
		w[j].base = j == 0 ? 0 : 0x10000;
		w[j].errors = 0;
		pthread_create(&t[j], NULL, worker_run, &w[j]);
	}
	for (j = 0; j < 2; j++)
		pthread_join(t[j], NULL);
	is_int(w[0].errors + w[1].errors, 0,
	    "two threads put and get concurrently without errors");
	for (j = 0; j < 2; j++)
		for (i = 0; i < 400; i++) {
			snprintf(buf, sizeof(buf), "value %u", w[j].base + i);
			if (!get_is(st, w[j].base + i, 1000, buf))
				bad++;
		}
	is_int(bad, 0, "all 800 records are there afterwards");
	store_close(st);
}

static void
test_map_full(void)
{
	unsigned char key[STORE_KEY_LEN], val[8192];
	unsigned int i, n = 0, bad = 0;
	struct store *st;
	int rc = STORE_OK;

	/* 256 kB map: room for a few dozen 8 kB values. */
	st = open_at("full", 256 * 1024);
	ok(st != NULL, "open small map");
	if (st == NULL)
		return;
	memset(val, 'f', sizeof(val));
	for (i = 0; i < 1000; i++) {
		make_key(key, i);
		rc = store_put(st, key, 5000, "h", 1, val, sizeof(val));
		if (rc != STORE_OK)
			break;
		n++;
	}
	is_int(rc, STORE_FULL, "put into a full map: STORE_FULL");
	ok(n > 5 && n < 1000, "%u records fitted first", n);
	for (i = 0; i < n; i++) {
		struct got g;

		memset(&g, 0, sizeof(g));
		if (get_rc(st, i, 1000, STORE_COLD, &g) != STORE_OK ||
		    g.coldlen != sizeof(val) ||
		    memcmp(g.cold, val, g.coldlen) != 0)
			bad++;
		got_clear(&g);
	}
	is_int(bad, 0, "every earlier record still readable");
	make_key(key, n);
	ok(get_is(st, n, 1000, NULL), "the failed put left nothing");
	make_key(key, 0);
	is_int(store_del(st, key), STORE_OK, "del works on a full map");
	ok(get_is(st, 0, 1000, NULL), "deleted");
	make_key(key, 1);
	is_int(store_del(st, key), STORE_OK, "second del works");
	make_key(key, n + 1);
	is_int(store_put(st, key, 5000, "small", 5, "", 0), STORE_OK,
	    "a put fits again after deletions");
	ok(get_is(st, n + 1, 1000, "small"), "and reads back");
	store_close(st);
}

static void
test_kill9(void)
{
	unsigned char key[STORE_KEY_LEN];
	struct store *st;
	int fds[2], status = 0;
	char c = 0;
	pid_t pid;

	if (pipe(fds) == -1) {
		ok(0, "pipe");
		return;
	}
	/* The parent has no environment open across fork (LMDB forbids
	 * using one in a child). */
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		st = open_at("kill9", 0);
		if (st != NULL && put(st, 42, 5000, "durable") == STORE_OK)
			c = 'y';
		else
			c = 'n';
		if (write(fds[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	ok(pid > 0 && read(fds[0], &c, 1) == 1 && c == 'y',
	    "child put a record");
	close(fds[0]);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "child was killed with SIGKILL");
	st = open_at("kill9", 0);
	ok(st != NULL, "reopen after the kill");
	if (st == NULL)
		return;
	ok(get_both_is(st, 42, 1000, "durable", "cold"),
	    "the record, both parts, survived kill -9");
	make_key(key, 43);
	is_int(store_put(st, key, 5000, "after", 5, "", 0), STORE_OK,
	    "store writable after the kill");
	store_close(st);
}

/* What store_scan handed over, by record number (the hot part is "r%u"). */
struct scan_seen {
	unsigned int calls, bad_key, bad_cold;
	unsigned char seen[64];
	int delete_even, stop;
};

static int
scan_cb(void *arg, const unsigned char key[STORE_KEY_LEN],
    const unsigned char *hot, size_t hotlen, const unsigned char *cold,
    size_t coldlen)
{
	struct scan_seen *ss = arg;
	unsigned char want[STORE_KEY_LEN];
	char buf[16];
	unsigned int i;
	uint64_t a, b;

	ss->calls++;
	if (ss->stop)
		return -1;
	if (hotlen >= sizeof(buf) || coldlen != hotlen + 1)
		return -1;
	memcpy(buf, hot, hotlen);
	buf[hotlen] = '\0';
	if (sscanf(buf, "r%u", &i) != 1 || i >= sizeof(ss->seen))
		return -1;
	ss->seen[i]++;
	/* 127 bits of the key: the prefix word's lowest bit is the part. */
	make_key(want, i);
	memcpy(&a, want, 8);
	memcpy(&b, key, 8);
	if ((a & ~(uint64_t)1) != b ||
	    memcmp(want + 8, key + 8, STORE_KEY_LEN - 8) != 0)
		ss->bad_key++;
	if (cold[0] != 'C' || memcmp(cold + 1, hot, hotlen) != 0)
		ss->bad_cold++;
	return ss->delete_even && i % 2 == 0 ? STORE_SCAN_DELETE
	                                     : STORE_SCAN_KEEP;
}

static void
test_scan(void)
{
	struct scan_seen ss;
	struct gh_error err;
	char hot[16], cold[24];
	unsigned char key[STORE_KEY_LEN];
	size_t deleted = 99;
	unsigned int i, once, live;
	struct store *st;

	st = open_at("scan", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	memset(&err, 0, sizeof(err));
	memset(&ss, 0, sizeof(ss));
	is_int(store_scan(st, 1000, scan_cb, &ss, &deleted, &err), STORE_OK,
	    "scan of an empty store");
	ok(ss.calls == 0 && deleted == 0, "calls nothing, deletes nothing");
	/* 30 records, every third one ended at now = 1000. */
	for (i = 0; i < 30; i++) {
		snprintf(hot, sizeof(hot), "r%u", i);
		snprintf(cold, sizeof(cold), "C%s", hot);
		make_key(key, i);
		store_put(st, key, i % 3 == 0 ? 900 : 5000, hot, strlen(hot),
		    cold, strlen(cold));
	}
	memset(&ss, 0, sizeof(ss));
	is_int(store_scan(st, 1000, scan_cb, &ss, &deleted, &err), STORE_OK,
	    "scan");
	for (i = 0, once = 0, live = 0; i < 30; i++) {
		once += ss.seen[i] == (i % 3 == 0 ? 0 : 1);
		live += i % 3 != 0;
	}
	is_int(ss.calls, live, "one call per live record");
	is_int(once, 30, "each live record once, no ended one");
	is_int(ss.bad_key, 0, "each with its key (127 bits)");
	is_int(ss.bad_cold, 0, "and its own cold part");
	is_int(deleted, 0, "nothing deleted when nothing was asked");

	memset(&ss, 0, sizeof(ss));
	ss.delete_even = 1;
	is_int(store_scan(st, 1000, scan_cb, &ss, &deleted, &err), STORE_OK,
	    "scan deleting the even ones");
	is_int(deleted, 10, "10 live even records deleted");
	for (i = 0, once = 0; i < 30; i++) {
		snprintf(hot, sizeof(hot), "r%u", i);
		/* Odd live ones stay; even ones were deleted, ended ones
		 * read as none. */
		once +=
		    get_is(st, i, 1000, i % 3 != 0 && i % 2 == 1 ? hot : NULL);
	}
	is_int(once, 30, "exactly those are gone, the others read as before");
	ok(get_is(st, 6, 0, "r6") && get_is(st, 2, 0, NULL),
	    "an ended record is left to the sweep, a deleted one is gone");

	/* replace: only over a record that is there (one deleted above
	 * stays deleted), never a new one. */
	make_key(key, 2);
	is_int(store_replace(st, key, 5000, "r2", 2, "Cr2", 3), STORE_NOTFOUND,
	    "replace of a deleted record: NOTFOUND");
	ok(get_is(st, 2, 0, NULL), "and it was not written back");
	make_key(key, 1);
	is_int(store_replace(st, key, 6000, "x1", 2, "Cx1", 3), STORE_OK,
	    "replace of a record that is there");
	ok(get_both_is(st, 1, 5500, "x1", "Cx1"),
	    "both parts and the expiry replaced");

	memset(&ss, 0, sizeof(ss));
	ss.stop = 1;
	is_int(store_scan(st, 1000, scan_cb, &ss, &deleted, &err), STORE_ERR,
	    "a callback that stops the walk: STORE_ERR");
	is_int(ss.calls, 1, "after one call");
	store_close(st);
	/* 10 live odd + 10 ended records left, two entries each. */
	is_int(
	    raw_entries("scan"), 2 * 20, "both parts of each deleted one went");
}

int
main(void)
{
	if (test_tmpdir(tmpdir, sizeof(tmpdir), "store_lmdb_test") == -1) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return done_testing();
	}
	test_registry();
	test_basic();
	test_layout();
	test_shared_prefix();
	test_sweep();
	test_scan();
	test_callback();
	test_reader();
	test_threads();
	test_map_full();
	test_kill9();
	ok(test_rmtree(tmpdir) == 0, "cleanup");
	return done_testing();
}
