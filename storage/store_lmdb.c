/* SPDX-License-Identifier: ISC */
/*
 * store_lmdb.c: the default session-store backend.  One LMDB environment
 * per process shared by the worker threads, one short transaction per
 * call, values copied out before the transaction ends (S13).
 *
 * Record layout: key = 32 bytes (SHA-256 of the session id, chosen by the
 * caller); data = expiry (8 bytes, big-endian unix seconds) || value.  The
 * sweep reads the first 8 bytes only.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "error.h"
#include "log.h"
#include "store.h"

#define LMDB_EXPIRY_LEN 8
/* Reader slots: one per worker's reader plus transient ones for store_get
 * and for other processes (mdb_stat, a second gatehouse during a restart). */
#define LMDB_MAX_READERS 512
#define LMDB_SWEEP_VISIT_FACTOR 16
#define LMDB_SWEEP_VISIT_MIN 256

struct store_lmdb {
	MDB_env *sl_env;
	MDB_dbi sl_dbi;
	/* Where the next sweep starts; only read and written while holding
	 * LMDB's write lock (inside a write transaction). */
	unsigned char sl_sweep_key[STORE_KEY_LEN];
	int sl_sweep_have;
};

struct store_lmdb_reader {
	MDB_txn *lr_txn; /* reset between lookups; NULL after a failure */
};

static void
lmdb_expiry_encode(unsigned char *p, time_t t)
{
	uint64_t v = (uint64_t)(int64_t)t;
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static time_t
lmdb_expiry_decode(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (time_t)(int64_t)v;
}

/*
 * Map an LMDB error of a write to a store result, logging real errors.  A
 * full map is not logged here: it is an expected state, and the caller
 * logs one line saying what could not be stored.
 */
static int
lmdb_write_result(const char *what, int rc)
{
	if (rc == 0)
		return STORE_OK;
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
		return STORE_FULL;
	log_warnx("session store: %s: %s", what, mdb_strerror(rc));
	return STORE_ERR;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int
lmdb_dir_make(const char *path, struct gh_error *err)
{
	struct stat sb;
	char *p, *s, c;
	int rc = -1;

	p = strdup(path);
	if (p == NULL) {
		gh_error_set(err, "store_open", "out of memory");
		return -1;
	}
	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			gh_error_set(err, "store_open", "%s: cannot create: %s",
			    p, strerror(errno));
			goto fail;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	if (stat(path, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		gh_error_set(err, "store_open", "%s: not a directory", path);
		goto fail;
	}
	rc = 0;
fail:
	free(p);
	p = NULL;
	return rc;
}

static void *
store_lmdb_open(const char *path, size_t map_size, struct gh_error *err)
{
	struct store_lmdb *sl = NULL;
	MDB_txn *txn = NULL;
	int rc, dead = 0;

	if (lmdb_dir_make(path, err) == -1)
		goto fail;
	sl = calloc(1, sizeof(*sl));
	if (sl == NULL) {
		gh_error_set(err, "store_open", "out of memory");
		goto fail;
	}
	rc = mdb_env_create(&sl->sl_env);
	if (rc != 0) {
		sl->sl_env = NULL;
		gh_error_set(err, "store_open", "%s: mdb_env_create: %s", path,
		    mdb_strerror(rc));
		goto fail;
	}
	rc = mdb_env_set_mapsize(sl->sl_env, map_size);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(sl->sl_env, LMDB_MAX_READERS);
	if (rc != 0) {
		gh_error_set(
		    err, "store_open", "%s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	/*
	 * MDB_NOTLS: read transactions belong to a store_reader, not to a
	 * thread.  MDB_NOMETASYNC: one fsync per commit instead of two; a
	 * commit has still reached the kernel when put returns, so it
	 * survives a killed process, and a power cut can lose only the
	 * last commits, never the database's integrity (see store.h).
	 */
	rc = mdb_env_open(sl->sl_env, path, MDB_NOTLS | MDB_NOMETASYNC, 0600);
	if (rc != 0) {
		gh_error_set(err, "store_open", "%s: mdb_env_open: %s", path,
		    mdb_strerror(rc));
		goto fail;
	}
	/*
	 * XXX a second process that opens this store with a larger map_size
	 * grows the map, and our next transaction then fails with
	 * MDB_MAP_RESIZED (STORE_ERR) until restart; give every process
	 * sharing a store the same map size.
	 */
	/* Free reader slots left by processes that died (kill -9). */
	(void)mdb_reader_check(sl->sl_env, &dead);
	if (dead > 0)
		log_info("session store %s: cleared %d stale reader slots",
		    path, dead);
	rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, NULL, 0, &sl->sl_dbi);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc != 0) {
		gh_error_set(err, "store_open", "%s: opening the database: %s",
		    path, mdb_strerror(rc));
		goto fail;
	}
	return sl;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (sl != NULL && sl->sl_env != NULL)
		mdb_env_close(sl->sl_env);
	free(sl);
	return NULL;
}

static void
store_lmdb_close(void *h)
{
	struct store_lmdb *sl = h;

	if (sl == NULL)
		return;
	mdb_env_close(sl->sl_env);
	sl->sl_env = NULL;
	free(sl);
}

/* The reader's transaction, renewed for one lookup, or NULL. */
static MDB_txn *
lmdb_reader_txn(struct store_lmdb *sl, struct store_lmdb_reader *rd)
{
	int rc;

	if (rd->lr_txn != NULL) {
		rc = mdb_txn_renew(rd->lr_txn);
		if (rc == 0)
			return rd->lr_txn;
		log_warnx("session store: mdb_txn_renew: %s", mdb_strerror(rc));
		mdb_txn_abort(rd->lr_txn);
		rd->lr_txn = NULL;
	}
	rc = mdb_txn_begin(sl->sl_env, NULL, MDB_RDONLY, &rd->lr_txn);
	if (rc != 0) {
		rd->lr_txn = NULL;
		log_warnx("session store: mdb_txn_begin: %s", mdb_strerror(rc));
		return NULL;
	}
	return rd->lr_txn;
}

static int
store_lmdb_get(void *h, void *rdh, const unsigned char *key, time_t now,
    unsigned char **val, size_t *len)
{
	struct store_lmdb *sl = h;
	struct store_lmdb_reader *rd = rdh;
	MDB_txn *txn = NULL;
	MDB_val k, d;
	unsigned char *copy;
	size_t n;
	int rc, ret = STORE_ERR;

	*val = NULL;
	*len = 0;
	if (rd != NULL) {
		txn = lmdb_reader_txn(sl, rd);
		if (txn == NULL)
			return STORE_ERR;
	} else {
		rc = mdb_txn_begin(sl->sl_env, NULL, MDB_RDONLY, &txn);
		if (rc != 0) {
			log_warnx("session store: mdb_txn_begin: %s",
			    mdb_strerror(rc));
			return STORE_ERR;
		}
	}
	k.mv_size = STORE_KEY_LEN;
	k.mv_data = (void *)(uintptr_t)key;
	rc = mdb_get(txn, sl->sl_dbi, &k, &d);
	if (rc == MDB_NOTFOUND) {
		ret = STORE_NOTFOUND;
		goto done;
	}
	if (rc != 0) {
		log_warnx("session store: mdb_get: %s", mdb_strerror(rc));
		goto done;
	}
	if (d.mv_size < LMDB_EXPIRY_LEN) {
		log_warnx("session store: record of %zu bytes is too short",
		    d.mv_size);
		goto done;
	}
	if (lmdb_expiry_decode(d.mv_data) <= now) {
		ret = STORE_NOTFOUND;
		goto done;
	}
	/* d points into the map and is only valid until the transaction
	 * ends just below: copy it out (S13). */
	n = d.mv_size - LMDB_EXPIRY_LEN;
	copy = malloc(n > 0 ? n : 1);
	if (copy == NULL) {
		log_warnx("session store: out of memory");
		goto done;
	}
	memcpy(copy, (unsigned char *)d.mv_data + LMDB_EXPIRY_LEN, n);
	*val = copy;
	*len = n;
	ret = STORE_OK;
done:
	if (rd != NULL)
		mdb_txn_reset(txn);
	else
		mdb_txn_abort(txn);
	return ret;
}

static int
store_lmdb_put(void *h, const unsigned char *key, time_t expiry,
    const void *val, size_t len)
{
	struct store_lmdb *sl = h;
	MDB_txn *txn = NULL;
	MDB_val k, d;
	int rc;

	if (len > SIZE_MAX - LMDB_EXPIRY_LEN)
		return STORE_ERR;
	rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_write_result("mdb_txn_begin", rc);
	k.mv_size = STORE_KEY_LEN;
	k.mv_data = (void *)(uintptr_t)key;
	d.mv_size = LMDB_EXPIRY_LEN + len;
	d.mv_data = NULL;
	rc = mdb_put(txn, sl->sl_dbi, &k, &d, MDB_RESERVE);
	if (rc != 0) {
		/* MDB_MAP_FULL lands here; aborting leaves the store as it
		 * was, so it stays usable. */
		mdb_txn_abort(txn);
		return lmdb_write_result("mdb_put", rc);
	}
	lmdb_expiry_encode(d.mv_data, expiry);
	if (len > 0)
		memcpy((unsigned char *)d.mv_data + LMDB_EXPIRY_LEN, val, len);
	rc = mdb_txn_commit(txn);
	return lmdb_write_result("mdb_txn_commit", rc);
}

static int
store_lmdb_del(void *h, const unsigned char *key)
{
	struct store_lmdb *sl = h;
	MDB_txn *txn = NULL;
	MDB_val k;
	int rc;

	rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_write_result("mdb_txn_begin", rc);
	k.mv_size = STORE_KEY_LEN;
	k.mv_data = (void *)(uintptr_t)key;
	rc = mdb_del(txn, sl->sl_dbi, &k, NULL);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return STORE_NOTFOUND;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_write_result("mdb_del", rc);
	}
	rc = mdb_txn_commit(txn);
	return lmdb_write_result("mdb_txn_commit", rc);
}

/*
 * One bounded step of the sweep: start at the remembered key (or the
 * first), delete expired records, wrap around once, and stop after `max`
 * deletions, after the visit budget, or on coming back to the start.
 */
static int
store_lmdb_sweep(void *h, time_t now, size_t max, size_t *deleted)
{
	struct store_lmdb *sl = h;
	unsigned char start[STORE_KEY_LEN];
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	size_t n = 0, visited = 0, budget;
	int rc, have_start, wrapped, ret = STORE_ERR;

	*deleted = 0;
	if (max == 0)
		return STORE_OK;
	budget = max > SIZE_MAX / LMDB_SWEEP_VISIT_FACTOR
	    ? SIZE_MAX
	    : max * LMDB_SWEEP_VISIT_FACTOR;
	if (budget < LMDB_SWEEP_VISIT_MIN)
		budget = LMDB_SWEEP_VISIT_MIN;
	rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_write_result("mdb_txn_begin", rc);
	rc = mdb_cursor_open(txn, sl->sl_dbi, &cur);
	if (rc != 0) {
		ret = lmdb_write_result("mdb_cursor_open", rc);
		goto fail;
	}
	/* We hold the write lock now, so the sweep position is ours. */
	have_start = sl->sl_sweep_have;
	memcpy(start, sl->sl_sweep_key, sizeof(start));
	sl->sl_sweep_have = 0;
	if (have_start) {
		k.mv_size = sizeof(start);
		k.mv_data = start;
		rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
		wrapped = 0;
	} else {
		rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
		wrapped = 1;
	}
	for (;;) {
		if (rc == MDB_NOTFOUND) {
			if (wrapped)
				break;
			wrapped = 1;
			rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
			continue;
		}
		if (rc != 0) {
			ret = lmdb_write_result("mdb_cursor_get", rc);
			goto fail;
		}
		if (have_start && wrapped && k.mv_size == sizeof(start) &&
		    memcmp(k.mv_data, start, sizeof(start)) >= 0)
			break;
		if (n == max || visited == budget) {
			if (k.mv_size == sizeof(sl->sl_sweep_key)) {
				memcpy(sl->sl_sweep_key, k.mv_data,
				    sizeof(sl->sl_sweep_key));
				sl->sl_sweep_have = 1;
			}
			break;
		}
		visited++;
		if (d.mv_size >= LMDB_EXPIRY_LEN &&
		    lmdb_expiry_decode(d.mv_data) <= now) {
			rc = mdb_cursor_del(cur, 0);
			if (rc != 0) {
				ret = lmdb_write_result("mdb_cursor_del", rc);
				goto fail;
			}
			n++;
		}
		/* After mdb_cursor_del the cursor already sits on the next
		 * record, and MDB_NEXT returns that one (LMDB's C_DEL). */
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (n == 0) {
		/* Nothing changed: no commit, no fsync. */
		mdb_txn_abort(txn);
		return STORE_OK;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	ret = lmdb_write_result("mdb_txn_commit", rc);
	if (ret == STORE_OK)
		*deleted = n;
	return ret;
fail:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return ret;
}

static void *
store_lmdb_reader_new(void *h)
{
	struct store_lmdb *sl = h;
	struct store_lmdb_reader *rd;
	int rc;

	rd = calloc(1, sizeof(*rd));
	if (rd == NULL)
		return NULL;
	/* Take a reader slot now and keep it (reset) between lookups. */
	rc = mdb_txn_begin(sl->sl_env, NULL, MDB_RDONLY, &rd->lr_txn);
	if (rc != 0) {
		log_warnx("session store: mdb_txn_begin: %s", mdb_strerror(rc));
		free(rd);
		return NULL;
	}
	mdb_txn_reset(rd->lr_txn);
	return rd;
}

static void
store_lmdb_reader_free(void *h, void *rdh)
{
	struct store_lmdb_reader *rd = rdh;

	(void)h;
	if (rd == NULL)
		return;
	if (rd->lr_txn != NULL)
		mdb_txn_abort(rd->lr_txn);
	rd->lr_txn = NULL;
	free(rd);
}

const struct store_backend store_lmdb_backend = {
    .name = "lmdb",
    .open = store_lmdb_open,
    .close = store_lmdb_close,
    .get = store_lmdb_get,
    .put = store_lmdb_put,
    .del = store_lmdb_del,
    .sweep = store_lmdb_sweep,
    .reader_new = store_lmdb_reader_new,
    .reader_free = store_lmdb_reader_free,
};
