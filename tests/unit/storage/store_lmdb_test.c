/* SPDX-License-Identifier: ISC */
/* store_lmdb_test.c: the session store on a real LMDB in a temp dir. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "store.h"
#include "tap.h"

static char tmpdir[] = "/tmp/store_lmdb_test.XXXXXX";

/* A well-spread 32-byte key for number i (stands in for SHA-256). */
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

static int
get_is(struct store *st, unsigned int i, time_t now, const char *want)
{
	unsigned char key[STORE_KEY_LEN], *val = NULL;
	size_t len = 0;
	int rc, same;

	make_key(key, i);
	rc = store_get(st, key, now, &val, &len);
	if (want == NULL) {
		free(val);
		return rc == STORE_NOTFOUND && val == NULL;
	}
	same = rc == STORE_OK && len == strlen(want) &&
	    memcmp(val, want, len) == 0;
	free(val);
	return same;
}

static int
put(struct store *st, unsigned int i, time_t expiry, const char *s)
{
	unsigned char key[STORE_KEY_LEN];

	make_key(key, i);
	return store_put(st, key, expiry, s, strlen(s));
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
	ok(store_backend_find("redis") == NULL, "unknown backend not found");
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
	unsigned char key[STORE_KEY_LEN], *val = NULL, big[200000];
	size_t len = 0, i;
	struct store *st;
	int rc;

	st = open_at("basic", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	ok(get_is(st, 1, 1000, NULL), "get of a missing key: NOTFOUND");
	is_int(put(st, 1, 2000, "one"), STORE_OK, "put");
	ok(get_is(st, 1, 1000, "one"), "get returns the value");
	is_int(put(st, 1, 2000, "uno"), STORE_OK, "put replaces");
	ok(get_is(st, 1, 1000, "uno"), "get returns the new value");
	ok(get_is(st, 2, 1000, NULL), "other key still NOTFOUND");
	make_key(key, 1);
	is_int(store_del(st, key), STORE_OK, "del");
	ok(get_is(st, 1, 1000, NULL), "gone after del");
	is_int(store_del(st, key), STORE_NOTFOUND, "del of a missing key");

	/* Empty and large values. */
	make_key(key, 3);
	is_int(store_put(st, key, 2000, "", 0), STORE_OK, "put empty value");
	rc = store_get(st, key, 1000, &val, &len);
	ok(rc == STORE_OK && val != NULL && len == 0, "get empty value");
	free(val);
	val = NULL;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 3);
	make_key(key, 4);
	is_int(store_put(st, key, 2000, big, sizeof(big)), STORE_OK,
	    "put 200 kB value");
	rc = store_get(st, key, 1000, &val, &len);
	ok(rc == STORE_OK && len == sizeof(big) && memcmp(val, big, len) == 0,
	    "get 200 kB value");
	free(val);
	val = NULL;

	/* Expiry: exactly at `expiry` the record is gone for get. */
	is_int(put(st, 5, 1500, "short"), STORE_OK, "put expiring record");
	ok(get_is(st, 5, 1499, "short"), "found before expiry");
	ok(get_is(st, 5, 1500, NULL), "NOTFOUND at expiry");
	ok(get_is(st, 5, 9999, NULL), "NOTFOUND after expiry");
	ok(get_is(st, 5, 0, "short"), "still stored until swept");
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
	ok(calls > 1 && calls <= 20, "in a bounded number of calls (%zu)",
	    calls);
	make_key(key, 1001);
	ok(get_is(st, 1001, 1000, "y"), "live record survives sweeps");
	is_int(store_sweep(st, 1000, 0, &deleted), STORE_OK, "sweep max 0");
	is_int(deleted, 0, "sweep max 0 deletes nothing");
	store_close(st);
}

static void
test_copy_out(void)
{
	unsigned char key[STORE_KEY_LEN], *val = NULL, *val2 = NULL;
	char buf[64];
	size_t len = 0, len2 = 0;
	unsigned int i;
	struct store *st;
	int rc;

	st = open_at("copy", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	make_key(key, 7);
	store_put(st, key, 5000, "original value", 14);
	rc = store_get(st, key, 1000, &val, &len);
	ok(rc == STORE_OK, "get");
	/* Rewrite, delete and churn so LMDB reuses the pages. */
	store_put(st, key, 5000, "XXXXXXXXXXXXXX", 14);
	store_del(st, key);
	for (i = 0; i < 500; i++) {
		snprintf(buf, sizeof(buf), "churn %u ZZZZZZZZZZZZZZZZZZ", i);
		put(st, 10000 + i, i % 2 ? 900 : 5000, buf);
	}
	store_sweep(st, 1000, 1000, NULL);
	ok(val != NULL && len == 14 && memcmp(val, "original value", 14) == 0,
	    "value copied out stays valid after later transactions");
	rc = store_get(st, key, 1000, &val2, &len2);
	ok(rc == STORE_NOTFOUND && val2 == NULL && len2 == 0,
	    "NOTFOUND leaves *val NULL");
	free(val);
	store_close(st);
}

static void
test_reader(void)
{
	unsigned char key[STORE_KEY_LEN], *val = NULL;
	struct store_reader *rd, *rd2;
	size_t len = 0;
	unsigned int i, bad = 0;
	struct store *st;
	int rc;

	st = open_at("reader", 0);
	ok(st != NULL, "open");
	if (st == NULL)
		return;
	rd = store_reader_new(st);
	rd2 = store_reader_new(st);
	ok(rd != NULL && rd2 != NULL, "readers");
	make_key(key, 1);
	rc = store_reader_get(rd, key, 1000, &val, &len);
	ok(rc == STORE_NOTFOUND && val == NULL, "reader: NOTFOUND");
	for (i = 0; i < 100; i++)
		put(st, i, i < 50 ? 5000 : 900, "r");
	/* The reader sees commits made after it was created. */
	rc = store_reader_get(rd, key, 1000, &val, &len);
	ok(rc == STORE_OK && len == 1 && val[0] == 'r',
	    "reader sees a later commit");
	free(val);
	val = NULL;
	for (i = 0; i < 20000; i++) {
		make_key(key, i % 200);
		rc = store_reader_get(i % 2 ? rd : rd2, key, 1000, &val, &len);
		if (i % 200 < 50 ? rc != STORE_OK || len != 1 || val[0] != 'r'
		                 : rc != STORE_NOTFOUND || val != NULL)
			bad++;
		free(val);
		val = NULL;
		if (i == 10000)
			put(st, 60, 5000, "late");
	}
	/* Key 60 turned live at i == 10000; lookups of it after that
	 * counted as "bad" (50 of them) and show the reader is fresh. */
	is_int(bad, 50, "20000 reader lookups, fresh after each commit");
	make_key(key, 60);
	rc = store_reader_get(rd, key, 1000, &val, &len);
	ok(rc == STORE_OK && len == 4 && memcmp(val, "late", 4) == 0,
	    "reader reads the late record");
	free(val);
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

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct store_reader *rd;
	unsigned char key[STORE_KEY_LEN], *val;
	char buf[64];
	size_t len;
	unsigned int i;
	int rc;

	rd = store_reader_new(w->st);
	if (rd == NULL) {
		w->errors++;
		return NULL;
	}
	for (i = 0; i < 400; i++) {
		snprintf(buf, sizeof(buf), "value %u", w->base + i);
		make_key(key, w->base + i);
		if (store_put(w->st, key, 5000, buf, strlen(buf)) != STORE_OK)
			w->errors++;
		val = NULL;
		rc = store_reader_get(rd, key, 1000, &val, &len);
		if (rc != STORE_OK || len != strlen(buf) ||
		    memcmp(val, buf, len) != 0)
			w->errors++;
		free(val);
		/* And a lookup without the reader, of anybody's key. */
		val = NULL;
		make_key(key, (w->base ^ 0x10000) + i / 2);
		rc = store_get(w->st, key, 1000, &val, &len);
		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			w->errors++;
		free(val);
		if (i % 50 == 0 &&
		    store_sweep(w->st, 1000, 10, NULL) != STORE_OK)
			w->errors++;
	}
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
		rc = store_put(st, key, 5000, val, sizeof(val));
		if (rc != STORE_OK)
			break;
		n++;
	}
	is_int(rc, STORE_FULL, "put into a full map: STORE_FULL");
	ok(n > 5 && n < 1000, "%u records fitted first", n);
	for (i = 0; i < n; i++) {
		unsigned char *v = NULL;
		size_t len = 0;

		make_key(key, i);
		if (store_get(st, key, 1000, &v, &len) != STORE_OK ||
		    len != sizeof(val) || memcmp(v, val, len) != 0)
			bad++;
		free(v);
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
	is_int(store_put(st, key, 5000, "small", 5), STORE_OK,
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
	ok(get_is(st, 42, 1000, "durable"), "the record survived kill -9");
	make_key(key, 43);
	is_int(store_put(st, key, 5000, "after", 5), STORE_OK,
	    "store writable after the kill");
	store_close(st);
}

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return done_testing();
	}
	test_registry();
	test_basic();
	test_sweep();
	test_copy_out();
	test_reader();
	test_threads();
	test_map_full();
	test_kill9();
	ok(nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS) == 0, "cleanup");
	return done_testing();
}
