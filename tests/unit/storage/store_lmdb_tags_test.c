/* SPDX-License-Identifier: ISC */
/*
 * store_lmdb_tags_test.c: the LMDB backend's tags (records filed by sid
 * and sub for the provider's logout) and once entries, on a real LMDB in
 * a temp dir: what end_tagged deletes, and that deletes and sweeps leave
 * no tag behind.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "store.h"
#include "tap.h"
#include "tmpdir.h"

static char tmpdir[128];

static void
fill(unsigned char *p, size_t n, unsigned int seed)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (seed + 1);
	size_t j;

	for (j = 0; j < n; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[j] = (unsigned char)(x >> 24);
	}
}

static int
any_cb(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t coldlen)
{
	(void)arg;
	(void)hot;
	(void)hotlen;
	(void)cold;
	(void)coldlen;
	return 0;
}

static int
present(struct store *st, const unsigned char *key, time_t now)
{
	return store_get(st, key, now, STORE_COLD, any_cb, NULL) == STORE_OK;
}

static void
tags_set(struct store_tags *t, unsigned int sid, unsigned int sub)
{
	memset(t, 0, sizeof(*t));
	if (sid != 0) {
		fill(t->stg_tag[STORE_TAG_SID], STORE_TAG_LEN, 1000 + sid);
		t->stg_have[STORE_TAG_SID] = 1;
	}
	if (sub != 0) {
		fill(t->stg_tag[STORE_TAG_SUB], STORE_TAG_LEN, 2000 + sub);
		t->stg_have[STORE_TAG_SUB] = 1;
	}
}

static void
test_end(void)
{
	char path[256];
	struct gh_error err;
	struct store *st;
	struct store_reader *rd;
	struct store_tags t;
	unsigned char key[6][STORE_KEY_LEN];
	time_t now = time(NULL);
	size_t ended = 0, swept = 0;
	int i;

	memset(&err, 0, sizeof(err));
	snprintf(path, sizeof(path), "%s/end", tmpdir);
	st = store_open(NULL, path, 0, &err);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	rd = store_reader_new(st, NULL);
	ok(rd != NULL, "reader");
	for (i = 0; i < 6; i++)
		fill(key[i], STORE_KEY_LEN, (unsigned int)i);
	/* 0, 1: sid 1 sub 1; 2: sid 2 sub 1; 3: sid 3 sub 2; 4 untagged;
	 * 5: sid 4, already expired (for the sweep). */
	tags_set(&t, 1, 1);
	is_int(store_put_tagged(st, key[0], now + 600, "h", 1, "c", 1, &t, 0),
	    STORE_OK, "put tagged 0");
	is_int(store_put_tagged(st, key[1], now + 600, "h", 1, "c", 1, &t, 0),
	    STORE_OK, "put tagged 1");
	tags_set(&t, 2, 1);
	is_int(store_put_tagged(st, key[2], now + 600, "h", 1, "c", 1, &t, 0),
	    STORE_OK, "put tagged 2");
	tags_set(&t, 3, 2);
	is_int(store_put_tagged(st, key[3], now + 600, "h", 1, "c", 1, &t, 0),
	    STORE_OK, "put tagged 3");
	is_int(store_put(st, key[4], now + 600, "h", 1, "c", 1), STORE_OK,
	    "put untagged 4");
	tags_set(&t, 4, 3);
	is_int(store_put_tagged(st, key[5], now - 1, "h", 1, "c", 1, &t, 0),
	    STORE_OK, "put tagged 5 (expired)");

	tags_set(&t, 1, 0);
	is_int(store_async_end_tagged(rd, STORE_TAG_SID,
	           t.stg_tag[STORE_TAG_SID], &ended, NULL, NULL, NULL),
	    STORE_OK, "end by sid 1");
	is_int((int)ended, 2, "two records of sid 1 ended");
	ok(!present(st, key[0], now) && !present(st, key[1], now),
	    "records 0 and 1 gone");
	ok(present(st, key[2], now) && present(st, key[3], now) &&
	        present(st, key[4], now),
	    "others stay");
	is_int(store_async_end_tagged(rd, STORE_TAG_SID,
	           t.stg_tag[STORE_TAG_SID], &ended, NULL, NULL, NULL),
	    STORE_OK, "end by sid 1 again");
	is_int((int)ended, 0, "nothing left under sid 1");

	/* sub 1 still names record 2 (0 and 1 went with their tags). */
	tags_set(&t, 0, 1);
	is_int(store_async_end_tagged(rd, STORE_TAG_SUB,
	           t.stg_tag[STORE_TAG_SUB], &ended, NULL, NULL, NULL),
	    STORE_OK, "end by sub 1");
	is_int((int)ended, 1, "one record left under sub 1");
	ok(!present(st, key[2], now) && present(st, key[3], now),
	    "record 2 gone, 3 stays");

	/* A deleted record leaves no tag: ending its sid finds nothing. */
	is_int(store_del(st, key[3]), STORE_OK, "del 3");
	is_int(store_put(st, key[3], now + 600, "h", 1, "c", 1), STORE_OK,
	    "put 3 again untagged");
	tags_set(&t, 3, 0);
	is_int(store_async_end_tagged(rd, STORE_TAG_SID,
	           t.stg_tag[STORE_TAG_SID], &ended, NULL, NULL, NULL),
	    STORE_OK, "end by sid 3");
	is_int((int)ended, 0, "the delete dropped its tags");
	ok(present(st, key[3], now), "the new untagged record stays");

	/* The sweep drops the expired record 5 and its tags, and keeps the
	 * tags' own database. */
	is_int(store_sweep(st, now, 100, &swept), STORE_OK, "sweep");
	is_int((int)swept, 1, "one expired record swept");
	is_int(store_sweep(st, now, 100, &swept), STORE_OK, "sweep again");
	is_int((int)swept, 0, "nothing else to sweep");
	tags_set(&t, 4, 0);
	is_int(store_put(st, key[5], now + 600, "h", 1, "c", 1), STORE_OK,
	    "put 5 again untagged");
	is_int(store_async_end_tagged(rd, STORE_TAG_SID,
	           t.stg_tag[STORE_TAG_SID], &ended, NULL, NULL, NULL),
	    STORE_OK, "end by sid 4");
	is_int((int)ended, 0, "the sweep dropped its tags");
	is_int((int)store_count(st), 3, "three records counted");

	/* A replace (existing) over a record deleted meanwhile writes
	 * nothing: neither the record nor its tags. */
	tags_set(&t, 5, 0);
	is_int(store_put_tagged(st, key[0], now + 600, "h", 1, "c", 1, &t, 1),
	    STORE_NOTFOUND, "replace tagged over a deleted record");
	ok(!present(st, key[0], now), "the deleted record stays deleted");
	is_int(store_put(st, key[0], now + 600, "h", 1, "c", 1), STORE_OK,
	    "put 0 again untagged");
	is_int(store_async_end_tagged(rd, STORE_TAG_SID,
	           t.stg_tag[STORE_TAG_SID], &ended, NULL, NULL, NULL),
	    STORE_OK, "end by sid 5");
	is_int((int)ended, 0, "the refused replace filed no tag");
	is_int(store_put_tagged(st, key[0], now + 600, "h", 1, "c", 1, &t, 1),
	    STORE_OK, "replace tagged over a record that is there");
	is_int(store_async_end_tagged(rd, STORE_TAG_SID,
	           t.stg_tag[STORE_TAG_SID], &ended, NULL, NULL, NULL),
	    STORE_OK, "end by sid 5 again");
	is_int((int)ended, 1, "the replace filed its tag");
	store_reader_free(rd);
	store_close(st);
	/* Opened again: the tags database is there. */
	st = store_open(NULL, path, 0, &err);
	ok(st != NULL, "open again");
	store_close(st);
}

static void
test_once(void)
{
	char path[256];
	struct gh_error err;
	struct store *st;
	struct store_reader *rd;
	unsigned char a[STORE_KEY_LEN], b[STORE_KEY_LEN];
	time_t now = time(NULL);

	memset(&err, 0, sizeof(err));
	snprintf(path, sizeof(path), "%s/once", tmpdir);
	st = store_open(NULL, path, 0, &err);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	rd = store_reader_new(st, NULL);
	fill(a, sizeof(a), 77);
	fill(b, sizeof(b), 78);
	is_int(store_async_once(rd, a, now + 600, NULL, NULL, NULL), STORE_OK,
	    "once a: first");
	is_int(store_async_once(rd, a, now + 600, NULL, NULL, NULL), STORE_BUSY,
	    "once a: seen");
	is_int(store_async_once(rd, b, now - 1, NULL, NULL, NULL), STORE_OK,
	    "once b (already expired)");
	is_int(store_async_once(rd, b, now + 600, NULL, NULL, NULL), STORE_OK,
	    "once b again: the expired entry does not count");
	is_int((int)store_count(st), 0, "once entries are not records");
	store_reader_free(rd);
	store_close(st);
}

int
main(void)
{
	if (test_tmpdir(tmpdir, sizeof(tmpdir), "store_lmdb_tags_test") == -1) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return done_testing();
	}
	test_end();
	test_once();
	ok(test_rmtree(tmpdir) == 0, "cleanup");
	return done_testing();
}
