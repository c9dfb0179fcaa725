/* SPDX-License-Identifier: ISC */
/*
 * store_lmdb.c: the default session-store backend.  One LMDB environment
 * per process shared by the worker threads, one short transaction per
 * call, values handed to the caller's callback before the transaction ends
 * (LMDB's values are valid only inside it).
 *
 * Record layout (format 2).  The caller's 16-byte key k splits into a
 * prefix p, k[0..7] read as a native 64-bit integer with its lowest bit
 * cleared, and a check c, k[8..15].  A record is two entries of the one
 * unnamed database (MDB_INTEGERKEY), next to each other in key order:
 *   p      ->  expiry (8 bytes, big-endian unix seconds) || c || hot
 *   p | 1  ->  cold
 * A lookup reads the hot entry only.  With a hot part of up to
 * STORE_HOT_INLINE_MAX bytes it sits inside its B-tree leaf page (LMDB
 * moves a node above 2038 bytes to overflow pages of its own, 4 KiB each),
 * so the lookup touches the branch pages, one leaf page and nothing else;
 * the cold part, large and on an overflow page, is read only when asked
 * for.  The 8-byte integer keys keep branch nodes small (18 bytes, against
 * 44 for the 32-byte keys of format 1), so at a million records the
 * lowest branch level is about 16 MiB rather than 40 and more of it stays
 * in the CPU caches, and LMDB compares them without calling memcmp.
 *
 * The check c, compared on every get, put_hot and del, keeps a 127-bit
 * key: a cookie whose key shares p with a stored record but not c finds
 * nothing.  Two records whose keys share p cannot both be stored: the
 * later put replaces the earlier (its user signs in again).  For random
 * keys that happens with probability n / 2^63 per put among n records
 * (about 1e-13 at a million).
 *
 * The sweep reads the expiry of hot entries only, and deletes a cold entry
 * with its hot one.  Format 1 (32-byte keys, one entry per record, no
 * MDB_INTEGERKEY) is recognised by the database's flags when the store is
 * opened and its records are dropped there: their users sign in again.
 *
 * Tags (provider logout) live in a second environment, in the store's
 * subdirectory "tags": LMDB refuses named databases beside an unnamed
 * one that has MDB_INTEGERKEY (MDB_INCOMPATIBLE), and the records' layout
 * stays as it is.  Its one database is MDB_DUPSORT | MDB_DUPFIXED, every
 * key and value 17 bytes (a kind byte and 16 bytes):
 *   's' | sid tag  ->  'k' | record    (one value per record)
 *   'u' | sub tag  ->  'k' | record
 *   'k' | record   ->  's' | sid tag, 'u' | sub tag  (to drop them)
 *   'j' | key      ->  'e' | expiry (8 bytes, big-endian) | 8 zero bytes
 * where "record" is the record's key with the lowest bit of its prefix
 * cleared (what the sweep can rebuild from an entry).  Two environments
 * are two transactions, so they are ordered to keep one promise: a record
 * never exists without its tags.  A tagged put commits the tags first,
 * then the record; a delete, a sweep and an end commit the records'
 * deletion first, then drop their tags ('k' entries and the values naming
 * them).  A crash between the two leaves tags naming no record, which an
 * end passes by and a later delete of that key drops.  An entry of once
 * ('j') is dropped by a later once that passes it expired.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "core/error.h"
#include "core/log.h"
#include "store.h"

#define LMDB_EXPIRY_LEN 8
#define LMDB_PREFIX_LEN 8 /* k[0..7]: the LMDB key */
#define LMDB_CHECK_LEN (STORE_KEY_LEN - LMDB_PREFIX_LEN) /* k[8..15] */
#define LMDB_HOT_HDR_LEN (LMDB_EXPIRY_LEN + LMDB_CHECK_LEN)
#define LMDB_PART_HOT 0x00
#define LMDB_PART_COLD 0x01
#define LMDB_CACHE_LINE 64
/* Reader slots: one per worker's reader plus transient ones for store_get
 * and for other processes (mdb_stat, a second gatehouse during a restart). */
#define LMDB_MAX_READERS 512
#define LMDB_SWEEP_VISIT_FACTOR 16
#define LMDB_SWEEP_VISIT_MIN 256
#define LMDB_TAG_DIR "/tags"
#define LMDB_TAG_ENTRY (1 + STORE_TAG_LEN) /* kind byte and 16 bytes */
#define LMDB_TAG_RECORD 'k'
#define LMDB_TAG_ONCE 'j'
#define LMDB_TAG_EXPIRY 'e'
#define LMDB_ONCE_VISIT 16 /* expired once entries looked at per once */
#define LMDB_END_MAX 4096  /* records one end_tagged deletes at most */
_Static_assert(STORE_TAG_LEN == STORE_KEY_LEN, "one entry size");

struct store_lmdb {
	MDB_env *sl_env;
	MDB_dbi sl_dbi;
	/* Where the next sweep starts; only read and written while holding
	 * LMDB's write lock (inside a write transaction). */
	size_t sl_sweep_key; /* a hot entry's key */
	int sl_sweep_have;
	MDB_env *sl_tenv; /* the tags' environment */
	MDB_dbi sl_tags;
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

/* MDB_INTEGERKEY keys are size_t: 8 bytes here, or the prefix is weak. */
_Static_assert(sizeof(size_t) == LMDB_PREFIX_LEN, "64-bit size_t needed");

/* Point k at *buf, set to the LMDB key of part `part` of key's record. */
static void
lmdb_key_make(MDB_val *k, size_t *buf, const unsigned char *key, size_t part)
{
	memcpy(buf, key, sizeof(*buf));
	*buf = (*buf & ~(size_t)1) | part;
	k->mv_size = sizeof(*buf);
	k->mv_data = buf;
}

/* The integer of an LMDB key; 0 if it is not one of ours (wrong size). */
static size_t
lmdb_key_value(const MDB_val *k)
{
	size_t v = 0;

	if (k->mv_size == sizeof(v))
		memcpy(&v, k->mv_data, sizeof(v));
	return v;
}

/* 1 if hot entry d is one of ours and belongs to key (its check matches). */
static int
lmdb_hot_mine(const MDB_val *d, const unsigned char *key)
{
	return d->mv_size >= LMDB_HOT_HDR_LEN &&
	    memcmp((const unsigned char *)d->mv_data + LMDB_EXPIRY_LEN,
	        key + LMDB_PREFIX_LEN, LMDB_CHECK_LEN) == 0;
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

/*
 * Open the database in txn (a write transaction) as format 2.  A database
 * without MDB_INTEGERKEY holds format-1 records (or nothing): they are
 * dropped, since format 2 cannot read them and its integer key order
 * cannot share a tree with their byte order.  0 or an LMDB error.
 */
static int
lmdb_format_check(MDB_txn *txn, MDB_dbi *dbi, const char *path)
{
	unsigned int flags = 0;
	MDB_stat ms;
	int rc;

	rc = mdb_dbi_open(txn, NULL, 0, dbi);
	if (rc == 0)
		rc = mdb_dbi_flags(txn, *dbi, &flags);
	if (rc != 0 || (flags & MDB_INTEGERKEY))
		return rc;
	rc = mdb_stat(txn, *dbi, &ms);
	if (rc == 0 && ms.ms_entries > 0) {
		log_info("session store %s: dropping %zu records of an older "
		         "format; their users sign in again",
		    path, ms.ms_entries);
		rc = mdb_drop(txn, *dbi, 0);
	}
	if (rc == 0)
		rc = mdb_dbi_open(txn, NULL, MDB_INTEGERKEY, dbi);
	return rc;
}

/* The tags' environment, in path's subdirectory "tags": 0, or -1 with
 * err set. */
static int
lmdb_tags_open(struct store_lmdb *sl, const char *path, size_t map_size,
    struct gh_error *err)
{
	char *dir = NULL;
	MDB_txn *txn = NULL;
	int rc;

	if (asprintf(&dir, "%s%s", path, LMDB_TAG_DIR) == -1) {
		gh_error_set(err, "store_open", "out of memory");
		return -1;
	}
	if (lmdb_dir_make(dir, err) == -1)
		goto fail;
	rc = mdb_env_create(&sl->sl_tenv);
	if (rc != 0) {
		sl->sl_tenv = NULL;
		goto lmdb_fail;
	}
	rc = mdb_env_set_mapsize(sl->sl_tenv, map_size);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(sl->sl_tenv, LMDB_MAX_READERS);
	/* The same flags as the records' environment (see above). */
	if (rc == 0)
		rc = mdb_env_open(sl->sl_tenv, dir,
		    MDB_NOTLS | MDB_NOMETASYNC | MDB_NORDAHEAD, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(sl->sl_tenv, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(
		    txn, NULL, MDB_DUPSORT | MDB_DUPFIXED, &sl->sl_tags);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc != 0)
		goto lmdb_fail;
	free(dir);
	return 0;
lmdb_fail:
	gh_error_set(err, "store_open", "%s: %s", dir, mdb_strerror(rc));
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (sl->sl_tenv != NULL)
		mdb_env_close(sl->sl_tenv);
	sl->sl_tenv = NULL;
	free(dir);
	return -1;
}

static void *
store_lmdb_open(
    const char *path, const struct store_options *opt, struct gh_error *err)
{
	size_t map_size = opt->so_map_size;
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
	 * MDB_NORDAHEAD: lookups are random by construction (hashed keys),
	 * so when the store is not in the page cache, the kernel's
	 * readahead would read neighbouring pages no lookup asked for and
	 * push useful ones out.  Not MDB_NOMEMINIT: it would let stale heap
	 * bytes of this process reach the unused parts of written pages.
	 */
	rc = mdb_env_open(
	    sl->sl_env, path, MDB_NOTLS | MDB_NOMETASYNC | MDB_NORDAHEAD, 0600);
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
		rc = lmdb_format_check(txn, &sl->sl_dbi, path);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc != 0) {
		gh_error_set(err, "store_open", "%s: opening the database: %s",
		    path, mdb_strerror(rc));
		goto fail;
	}
	if (lmdb_tags_open(sl, path, map_size, err) == -1)
		goto fail;
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
	mdb_env_close(sl->sl_tenv);
	sl->sl_tenv = NULL;
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

/* Begin a read transaction for one lookup: the reader's, renewed, or a
 * new one when rd is NULL.  NULL on failure (logged). */
static MDB_txn *
lmdb_read_begin(struct store_lmdb *sl, struct store_lmdb_reader *rd)
{
	MDB_txn *txn = NULL;
	int rc;

	if (rd != NULL)
		return lmdb_reader_txn(sl, rd);
	rc = mdb_txn_begin(sl->sl_env, NULL, MDB_RDONLY, &txn);
	if (rc != 0) {
		log_warnx("session store: mdb_txn_begin: %s", mdb_strerror(rc));
		return NULL;
	}
	return txn;
}

/* Start loading the lines of a value the callback is about to read: they
 * arrive while it does its own work (an allocation) before it copies. */
static void
lmdb_prefetch(const MDB_val *d)
{
	const unsigned char *p = d->mv_data;
	size_t off;

	for (off = LMDB_CACHE_LINE; off < d->mv_size; off += LMDB_CACHE_LINE)
		__builtin_prefetch(p + off);
}

static int
store_lmdb_get(void *h, void *rdh, const unsigned char *key, time_t now,
    int flags, store_get_fn *fn, void *arg)
{
	struct store_lmdb *sl = h;
	struct store_lmdb_reader *rd = rdh;
	size_t kb;
	MDB_txn *txn;
	MDB_val k, hot, cold = {0, NULL};
	int rc, ret = STORE_ERR;

	txn = lmdb_read_begin(sl, rd);
	if (txn == NULL)
		return STORE_ERR;
	lmdb_key_make(&k, &kb, key, LMDB_PART_HOT);
	rc = mdb_get(txn, sl->sl_dbi, &k, &hot);
	if (rc == MDB_NOTFOUND) {
		ret = STORE_NOTFOUND;
		goto done;
	}
	if (rc != 0) {
		log_warnx("session store: mdb_get: %s", mdb_strerror(rc));
		goto done;
	}
	lmdb_prefetch(&hot);
	if (hot.mv_size < LMDB_HOT_HDR_LEN) {
		/* Not one of ours: reads as no record; the sweep drops it. */
		log_warnx("session store: record of %zu bytes is too short",
		    hot.mv_size);
		ret = STORE_NOTFOUND;
		goto done;
	}
	/* Another key with the same prefix (see the top of this file). */
	if (!lmdb_hot_mine(&hot, key) ||
	    lmdb_expiry_decode(hot.mv_data) <= now) {
		ret = STORE_NOTFOUND;
		goto done;
	}
	if (flags & STORE_COLD) {
		kb |= LMDB_PART_COLD;
		rc = mdb_get(txn, sl->sl_dbi, &k, &cold);
		if (rc == MDB_NOTFOUND) {
			/* Both parts are written and deleted together, so
			 * only damage gets here: no record. */
			log_warnx("session store: a record has no cold part");
			ret = STORE_NOTFOUND;
			goto done;
		}
		if (rc != 0) {
			log_warnx(
			    "session store: mdb_get: %s", mdb_strerror(rc));
			goto done;
		}
		lmdb_prefetch(&cold);
	}
	/* hot and cold point into the map and are only valid until the
	 * transaction ends just below: the callback copies. */
	rc = fn(arg, (const unsigned char *)hot.mv_data + LMDB_HOT_HDR_LEN,
	    hot.mv_size - LMDB_HOT_HDR_LEN, cold.mv_data, cold.mv_size);
	ret = rc == 0 ? STORE_OK : STORE_ERR;
done:
	if (rd != NULL)
		mdb_txn_reset(txn);
	else
		mdb_txn_abort(txn);
	return ret;
}

/* Write one entry of plen + len bytes (prefix, then val) under k in txn,
 * without a second copy (MDB_RESERVE). */
static int
lmdb_entry_put(struct store_lmdb *sl, MDB_txn *txn, MDB_val *k,
    const unsigned char *prefix, size_t plen, const void *val, size_t len)
{
	MDB_val d;
	int rc;

	d.mv_size = plen + len;
	d.mv_data = NULL;
	rc = mdb_put(txn, sl->sl_dbi, k, &d, MDB_RESERVE);
	if (rc != 0)
		return rc;
	if (plen > 0)
		memcpy(d.mv_data, prefix, plen);
	if (len > 0)
		memcpy((unsigned char *)d.mv_data + plen, val, len);
	return 0;
}

/* Both entries of key's record in txn (a write transaction): 0 or an
 * LMDB error (the caller aborts).  With `existing` only over key's own
 * record, checked in the same transaction: MDB_NOTFOUND when it went
 * meanwhile (it stays deleted). */
static int
lmdb_record_put(struct store_lmdb *sl, MDB_txn *txn, const unsigned char *key,
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen, int existing)
{
	unsigned char hdr[LMDB_HOT_HDR_LEN];
	size_t kb;
	MDB_val k, d;
	int rc;

	lmdb_expiry_encode(hdr, expiry);
	memcpy(hdr + LMDB_EXPIRY_LEN, key + LMDB_PREFIX_LEN, LMDB_CHECK_LEN);
	lmdb_key_make(&k, &kb, key, LMDB_PART_HOT);
	if (existing) {
		rc = mdb_get(txn, sl->sl_dbi, &k, &d);
		if (rc == 0 && !lmdb_hot_mine(&d, key))
			rc = MDB_NOTFOUND;
		if (rc != 0)
			return rc;
	}
	rc = lmdb_entry_put(sl, txn, &k, hdr, sizeof(hdr), hot, hotlen);
	if (rc == 0) {
		kb |= LMDB_PART_COLD;
		rc = lmdb_entry_put(sl, txn, &k, NULL, 0, cold, coldlen);
	}
	return rc;
}

/* put, or with `existing` replace. */
static int
lmdb_put(struct store_lmdb *sl, const unsigned char *key, time_t expiry,
    const void *hot, size_t hotlen, const void *cold, size_t coldlen,
    int existing)
{
	MDB_txn *txn = NULL;
	int rc;

	if (hotlen > SIZE_MAX - LMDB_HOT_HDR_LEN)
		return STORE_ERR;
	rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_write_result("mdb_txn_begin", rc);
	rc = lmdb_record_put(
	    sl, txn, key, expiry, hot, hotlen, cold, coldlen, existing);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return STORE_NOTFOUND;
	}
	if (rc != 0) {
		/* MDB_MAP_FULL lands here; aborting leaves the store as it
		 * was (neither part written), so it stays usable. */
		mdb_txn_abort(txn);
		return lmdb_write_result("mdb_put", rc);
	}
	rc = mdb_txn_commit(txn);
	return lmdb_write_result("mdb_txn_commit", rc);
}

static int
store_lmdb_put(void *h, const unsigned char *key, time_t expiry,
    const void *hot, size_t hotlen, const void *cold, size_t coldlen)
{
	return lmdb_put(h, key, expiry, hot, hotlen, cold, coldlen, 0);
}

static int
store_lmdb_replace(void *h, const unsigned char *key, time_t expiry,
    const void *hot, size_t hotlen, const void *cold, size_t coldlen)
{
	return lmdb_put(h, key, expiry, hot, hotlen, cold, coldlen, 1);
}

static int
store_lmdb_put_hot(
    void *h, const unsigned char *key, const void *hot, size_t hotlen)
{
	struct store_lmdb *sl = h;
	unsigned char hdr[LMDB_HOT_HDR_LEN];
	size_t kb;
	MDB_txn *txn = NULL;
	MDB_val k, d;
	int rc;

	if (hotlen > SIZE_MAX - LMDB_HOT_HDR_LEN)
		return STORE_ERR;
	rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_write_result("mdb_txn_begin", rc);
	lmdb_key_make(&k, &kb, key, LMDB_PART_HOT);
	rc = mdb_get(txn, sl->sl_dbi, &k, &d);
	if (rc == MDB_NOTFOUND || (rc == 0 && !lmdb_hot_mine(&d, key))) {
		/* Deleted meanwhile (logout, sweep): stays deleted. */
		mdb_txn_abort(txn);
		return STORE_NOTFOUND;
	}
	if (rc == 0) {
		/* Keep expiry and check; d is invalid once the put runs. */
		memcpy(hdr, d.mv_data, sizeof(hdr));
		rc = lmdb_entry_put(sl, txn, &k, hdr, sizeof(hdr), hot, hotlen);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_write_result("mdb_put", rc);
	}
	rc = mdb_txn_commit(txn);
	return lmdb_write_result("mdb_txn_commit", rc);
}

static void lmdb_tags_forget(
    struct store_lmdb *sl, const unsigned char *keys, size_t n);

/*
 * Delete key's record (both entries) in txn (its tags go after the
 * commit, lmdb_tags_forget): 0 (*found says
 * whether there was a hot entry), MDB_NOTFOUND when the hot entry under
 * its prefix is another key's (left alone), or another LMDB error.
 */
static int
lmdb_record_del(
    struct store_lmdb *sl, MDB_txn *txn, const unsigned char *key, int *found)
{
	size_t kb;
	MDB_val k, d;
	int rc;

	*found = 0;
	lmdb_key_make(&k, &kb, key, LMDB_PART_HOT);
	rc = mdb_get(txn, sl->sl_dbi, &k, &d);
	if (rc == 0 && !lmdb_hot_mine(&d, key) &&
	    d.mv_size >= LMDB_HOT_HDR_LEN) {
		/* Another key's record under the same prefix: not ours to
		 * delete. */
		return MDB_NOTFOUND;
	}
	*found = rc == 0;
	if (rc == 0)
		rc = mdb_del(txn, sl->sl_dbi, &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND) {
		/* The cold entry goes too, even without a hot one. */
		kb |= LMDB_PART_COLD;
		rc = mdb_del(txn, sl->sl_dbi, &k, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	return rc;
}

static int
store_lmdb_del(void *h, const unsigned char *key)
{
	struct store_lmdb *sl = h;
	MDB_txn *txn = NULL;
	int rc, found;

	rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_write_result("mdb_txn_begin", rc);
	rc = lmdb_record_del(sl, txn, key, &found);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return STORE_NOTFOUND;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_write_result("mdb_del", rc);
	}
	rc = mdb_txn_commit(txn);
	rc = lmdb_write_result("mdb_txn_commit", rc);
	if (rc == STORE_OK)
		lmdb_tags_forget(sl, key, 1);
	return rc == STORE_OK && !found ? STORE_NOTFOUND : rc;
}

/* What the sweep does with one entry. */
enum lmdb_sweep_verdict {
	LMDB_SWEEP_KEEP,
	LMDB_SWEEP_DROP,     /* a record (or stray entry) to delete */
	LMDB_SWEEP_DROP_PAIR /* the cold entry of a hot one just deleted */
};

/* The sweep's view of the entries it has walked past in this step. */
struct lmdb_sweep_pos {
	size_t lp_prev; /* key of the last hot entry */
	int lp_have;    /* lp_prev is set (not at the start, no wrap since) */
	int lp_live;    /* that hot entry stays */
};

/*
 * Judge the entry under k (data d).  Hot entries go when expired; a cold
 * entry stays only right after its own hot entry, when that one stays;
 * anything else is not ours (damage) and goes.  A cold entry always
 * directly follows its hot entry in key order (p < p | 1), so one look
 * back is enough.
 */
static enum lmdb_sweep_verdict
lmdb_sweep_judge(
    struct lmdb_sweep_pos *lp, const MDB_val *k, const MDB_val *d, time_t now)
{
	size_t v = lmdb_key_value(k);
	int mine, gone;

	if (k->mv_size != sizeof(v)) {
		lp->lp_have = 0;
		return LMDB_SWEEP_DROP;
	}
	if ((v & 1) == LMDB_PART_HOT) {
		gone = d->mv_size < LMDB_HOT_HDR_LEN ||
		    lmdb_expiry_decode(d->mv_data) <= now;
		lp->lp_prev = v;
		lp->lp_have = 1;
		lp->lp_live = !gone;
		return gone ? LMDB_SWEEP_DROP : LMDB_SWEEP_KEEP;
	}
	mine = lp->lp_have && lp->lp_prev == (v & ~(size_t)1);
	lp->lp_have = 0;
	if (!mine)
		return LMDB_SWEEP_DROP;
	return lp->lp_live ? LMDB_SWEEP_KEEP : LMDB_SWEEP_DROP_PAIR;
}

/* When the entry the sweep drops is a record's hot entry, which may have
 * tags, append its key (prefix with the lowest bit clear) to *recs (n
 * of them).  0, or -1 out of memory. */
static int
lmdb_sweep_tagged(
    const MDB_val *k, const MDB_val *d, unsigned char **recs, size_t *n)
{
	size_t v = lmdb_key_value(k);
	unsigned char *p;

	if (k->mv_size != sizeof(v) || (v & 1) != LMDB_PART_HOT ||
	    d->mv_size < LMDB_HOT_HDR_LEN)
		return 0;
	if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
		p = realloc(*recs, (*n == 0 ? 1 : 2 * *n) * STORE_KEY_LEN);
		if (p == NULL)
			return -1;
		*recs = p;
	}
	p = *recs + *n * STORE_KEY_LEN;
	memcpy(p, &v, sizeof(v));
	memcpy(p + LMDB_PREFIX_LEN,
	    (const unsigned char *)d->mv_data + LMDB_EXPIRY_LEN,
	    LMDB_CHECK_LEN);
	(*n)++;
	return 0;
}

/*
 * One bounded step of the sweep: start at the remembered key (or the
 * first), delete expired records, wrap around once, and stop after `max`
 * deletions, after the visit budget, or on coming back to the start.  A
 * step resumes on a record's hot key (a stop on a cold entry remembers
 * its hot key), so a cold entry is always judged after the hot entry
 * before it, and never stops between a deleted hot entry and its cold one.
 */
static int
store_lmdb_sweep(void *h, time_t now, size_t max, size_t *deleted)
{
	struct store_lmdb *sl = h;
	struct lmdb_sweep_pos lp;
	size_t start;
	enum lmdb_sweep_verdict v;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	unsigned char *recs = NULL; /* the records deleted, for their tags */
	size_t nrecs = 0;
	size_t n = 0, visited = 0, budget;
	int rc, have_start, wrapped, changed = 0, ret = STORE_ERR;

	*deleted = 0;
	if (max == 0)
		return STORE_OK;
	budget = max > SIZE_MAX / LMDB_SWEEP_VISIT_FACTOR
	    ? SIZE_MAX
	    : max * LMDB_SWEEP_VISIT_FACTOR;
	if (budget < LMDB_SWEEP_VISIT_MIN)
		budget = LMDB_SWEEP_VISIT_MIN;
	memset(&lp, 0, sizeof(lp));
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
	start = sl->sl_sweep_key;
	sl->sl_sweep_have = 0;
	if (have_start) {
		k.mv_size = sizeof(start);
		k.mv_data = &start;
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
			lp.lp_have = 0;
			rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
			continue;
		}
		if (rc != 0) {
			ret = lmdb_write_result("mdb_cursor_get", rc);
			goto fail;
		}
		if (have_start && wrapped && lmdb_key_value(&k) >= start)
			break;
		v = lmdb_sweep_judge(&lp, &k, &d, now);
		if (v != LMDB_SWEEP_DROP_PAIR &&
		    (n == max || visited == budget)) {
			if (k.mv_size == sizeof(start)) {
				sl->sl_sweep_key =
				    lmdb_key_value(&k) & ~(size_t)1;
				sl->sl_sweep_have = 1;
			}
			break;
		}
		visited++;
		if (v == LMDB_SWEEP_DROP &&
		    lmdb_sweep_tagged(&k, &d, &recs, &nrecs) == -1) {
			ret = STORE_ERR;
			goto fail;
		}
		if (v != LMDB_SWEEP_KEEP) {
			rc = mdb_cursor_del(cur, 0);
			if (rc != 0) {
				ret = lmdb_write_result("mdb_cursor_del", rc);
				goto fail;
			}
			changed = 1;
			if (v == LMDB_SWEEP_DROP)
				n++;
		}
		/* After mdb_cursor_del the cursor already sits on the next
		 * entry, and MDB_NEXT returns that one (LMDB's C_DEL). */
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (!changed) {
		/* Nothing changed: no commit, no fsync. */
		mdb_txn_abort(txn);
		free(recs);
		return STORE_OK;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	ret = lmdb_write_result("mdb_txn_commit", rc);
	if (ret == STORE_OK) {
		*deleted = n;
		lmdb_tags_forget(sl, recs, nrecs);
	}
	free(recs);
	return ret;
fail:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	free(recs);
	return ret;
}

/* --- tags (provider logout) and once ------------------------------ */

/* A 17-byte entry of the tags database: kind byte, then 16 bytes (a
 * record's key with its prefix's lowest bit clear, for 'k'). */
static void
lmdb_tag_entry(unsigned char *out, int kind, const unsigned char *bytes)
{
	size_t p;

	out[0] = (unsigned char)kind;
	memcpy(out + 1, bytes, STORE_KEY_LEN);
	if (kind == LMDB_TAG_RECORD) {
		memcpy(&p, bytes, sizeof(p));
		p &= ~(size_t)1;
		memcpy(out + 1, &p, sizeof(p));
	}
}

static const int lmdb_tag_kinds[STORE_TAG_KINDS] = {'s', 'u'};

/* Drop the tags of key's record in txn (of the tags' environment): its
 * 'k' entry and the values naming it under each tag.  0 or an LMDB
 * error. */
static int
lmdb_tags_drop(struct store_lmdb *sl, MDB_txn *txn, const unsigned char *key)
{
	unsigned char rec[LMDB_TAG_ENTRY], tags[4][LMDB_TAG_ENTRY];
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	size_t n = 0, i;
	int rc;

	lmdb_tag_entry(rec, LMDB_TAG_RECORD, key);
	rc = mdb_cursor_open(txn, sl->sl_tags, &cur);
	if (rc != 0)
		return rc;
	k.mv_size = sizeof(rec);
	k.mv_data = rec;
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
	while (rc == 0 && n < sizeof(tags) / sizeof(tags[0])) {
		if (d.mv_size == LMDB_TAG_ENTRY)
			memcpy(tags[n++], d.mv_data, LMDB_TAG_ENTRY);
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	for (i = 0; i < n; i++) {
		k.mv_size = LMDB_TAG_ENTRY;
		k.mv_data = tags[i];
		d.mv_size = sizeof(rec);
		d.mv_data = rec;
		rc = mdb_del(txn, sl->sl_tags, &k, &d);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	k.mv_size = sizeof(rec);
	k.mv_data = rec;
	rc = mdb_del(txn, sl->sl_tags, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* After the records of the n keys (16 bytes each) were deleted: drop
 * their tags, in one transaction.  A failure leaves tags that name no
 * record (an end passes them by): logged, nothing more. */
static void
lmdb_tags_forget(struct store_lmdb *sl, const unsigned char *keys, size_t n)
{
	MDB_txn *txn = NULL;
	size_t i;
	int rc;

	if (n == 0)
		return;
	rc = mdb_txn_begin(sl->sl_tenv, NULL, 0, &txn);
	for (i = 0; rc == 0 && i < n; i++)
		rc = lmdb_tags_drop(sl, txn, keys + i * STORE_KEY_LEN);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_MAP_FULL)
		log_warnx("session store: dropping tags: %s", mdb_strerror(rc));
}

/* Whether key's record has exactly the tags of `tags` in txn. */
static int
lmdb_tags_same(struct store_lmdb *sl, MDB_txn *txn, const unsigned char *key,
    const struct store_tags *tags)
{
	unsigned char rec[LMDB_TAG_ENTRY], tag[LMDB_TAG_ENTRY];
	MDB_val k, d;
	size_t have = 0, want = 0;
	MDB_cursor *cur = NULL;
	int i, rc;

	lmdb_tag_entry(rec, LMDB_TAG_RECORD, key);
	if (mdb_cursor_open(txn, sl->sl_tags, &cur) != 0)
		return 0;
	for (i = 0; i < STORE_TAG_KINDS; i++) {
		if (!tags->stg_have[i])
			continue;
		want++;
		lmdb_tag_entry(tag, lmdb_tag_kinds[i], tags->stg_tag[i]);
		k.mv_size = d.mv_size = LMDB_TAG_ENTRY;
		k.mv_data = rec;
		d.mv_data = tag;
		if (mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH) == 0)
			have++;
	}
	k.mv_size = LMDB_TAG_ENTRY;
	k.mv_data = rec;
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
	if (rc == 0) {
		size_t count = 0;

		if (mdb_cursor_count(cur, &count) != 0)
			count = SIZE_MAX;
		have = have == want && count == want ? have : SIZE_MAX;
	}
	mdb_cursor_close(cur);
	return have == want;
}

/* File key's record under each of tags in txn.  0 or an LMDB error. */
static int
lmdb_tags_add(struct store_lmdb *sl, MDB_txn *txn, const unsigned char *key,
    const struct store_tags *tags)
{
	unsigned char rec[LMDB_TAG_ENTRY], tag[LMDB_TAG_ENTRY];
	MDB_val k, d;
	int i, rc;

	lmdb_tag_entry(rec, LMDB_TAG_RECORD, key);
	for (i = 0; i < STORE_TAG_KINDS; i++) {
		if (!tags->stg_have[i])
			continue;
		lmdb_tag_entry(tag, lmdb_tag_kinds[i], tags->stg_tag[i]);
		k.mv_size = d.mv_size = LMDB_TAG_ENTRY;
		k.mv_data = tag;
		d.mv_data = rec;
		rc = mdb_put(txn, sl->sl_tags, &k, &d, MDB_NODUPDATA);
		if (rc != 0 && rc != MDB_KEYEXIST)
			return rc;
		k.mv_data = rec;
		d.mv_data = tag;
		rc = mdb_put(txn, sl->sl_tags, &k, &d, MDB_NODUPDATA);
		if (rc != 0 && rc != MDB_KEYEXIST)
			return rc;
	}
	return 0;
}

static int
store_lmdb_put_tagged(void *h, const unsigned char *key, time_t expiry,
    const void *hot, size_t hotlen, const void *cold, size_t coldlen,
    const struct store_tags *tags, int existing)
{
	struct store_lmdb *sl = h;
	MDB_txn *txn = NULL;
	int rc, filed = 0;

	if (hotlen > SIZE_MAX - LMDB_HOT_HDR_LEN)
		return STORE_ERR;
	/* The tags first (see the top of the file); a save that does not
	 * change them (a refresh) writes nothing there. */
	rc = mdb_txn_begin(sl->sl_tenv, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_write_result("mdb_txn_begin", rc);
	if (lmdb_tags_same(sl, txn, key, tags)) {
		mdb_txn_abort(txn);
		txn = NULL;
	} else {
		rc = lmdb_tags_drop(sl, txn, key);
		if (rc == 0)
			rc = lmdb_tags_add(sl, txn, key, tags);
		if (rc != 0) {
			mdb_txn_abort(txn);
			return lmdb_write_result("mdb_put", rc);
		}
		rc = mdb_txn_commit(txn);
		if (rc != 0)
			return lmdb_write_result("mdb_txn_commit", rc);
		filed = 1;
	}
	rc = lmdb_put(sl, key, expiry, hot, hotlen, cold, coldlen, existing);
	/* A record deleted meanwhile stays deleted: so do its tags. */
	if (rc == STORE_NOTFOUND && filed)
		lmdb_tags_forget(sl, key, 1);
	return rc;
}

/* The records (16 bytes each, new array) filed under the tag entry
 * `tag`, at most LMDB_END_MAX.  0 or an LMDB error. */
static int
lmdb_tag_records(struct store_lmdb *sl, const unsigned char *tag,
    unsigned char **out, size_t *n)
{
	unsigned char *recs = NULL, *p;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = mdb_txn_begin(sl->sl_tenv, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_open(txn, sl->sl_tags, &cur);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	k.mv_size = LMDB_TAG_ENTRY;
	k.mv_data = (void *)tag;
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
	while (rc == 0 && *n < LMDB_END_MAX) {
		if (d.mv_size == LMDB_TAG_ENTRY) {
			if (*n == cap) {
				cap = cap == 0 ? 8 : cap * 2;
				p = realloc(recs, cap * STORE_KEY_LEN);
				if (p == NULL) {
					rc = ENOMEM;
					break;
				}
				recs = p;
			}
			memcpy(recs + *n * STORE_KEY_LEN,
			    (const unsigned char *)d.mv_data + 1,
			    STORE_KEY_LEN);
			(*n)++;
		}
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(recs);
		*n = 0;
		return rc;
	}
	*out = recs;
	return 0;
}

static int
store_lmdb_end_tagged(
    void *h, enum store_tag_kind kind, const unsigned char *tag, size_t *ended)
{
	struct store_lmdb *sl = h;
	unsigned char entry[LMDB_TAG_ENTRY], *recs = NULL;
	MDB_txn *txn = NULL;
	size_t n = 0, i, count = 0;
	int rc, found;

	*ended = 0;
	if ((int)kind < 0 || kind >= STORE_TAG_KINDS)
		return STORE_ERR;
	lmdb_tag_entry(entry, lmdb_tag_kinds[kind], tag);
	rc = lmdb_tag_records(sl, entry, &recs, &n);
	if (rc != 0)
		return lmdb_write_result("reading tags", rc);
	if (n == 0)
		return STORE_OK;
	/* Every record in one transaction: all end, or none. */
	rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
	for (i = 0; rc == 0 && i < n; i++) {
		rc = lmdb_record_del(sl, txn, recs + i * STORE_KEY_LEN, &found);
		if (rc == MDB_NOTFOUND) /* another key's record now */
			rc = 0;
		else if (rc == 0 && found)
			count++;
	}
	if (rc != 0) {
		if (txn != NULL)
			mdb_txn_abort(txn);
		free(recs);
		return lmdb_write_result("mdb_del", rc);
	}
	rc = mdb_txn_commit(txn);
	rc = lmdb_write_result("mdb_txn_commit", rc);
	if (rc == STORE_OK) {
		*ended = count;
		lmdb_tags_forget(sl, recs, n);
	}
	free(recs);
	return rc;
}

/* Drop up to LMDB_ONCE_VISIT entries of once after `from` that have
 * expired, in txn: so they go without a sweep of their own (each once
 * cleans a little at a random place, its key being a hash).  0 or an
 * LMDB error. */
static int
lmdb_once_clean(
    struct store_lmdb *sl, MDB_txn *txn, const unsigned char *from, time_t now)
{
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	int i, rc;

	rc = mdb_cursor_open(txn, sl->sl_tags, &cur);
	if (rc != 0)
		return rc;
	k.mv_size = LMDB_TAG_ENTRY;
	k.mv_data = (void *)from;
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	for (i = 0; rc == 0 && i < LMDB_ONCE_VISIT; i++) {
		if (k.mv_size != LMDB_TAG_ENTRY ||
		    ((const unsigned char *)k.mv_data)[0] != LMDB_TAG_ONCE)
			break;
		if (d.mv_size == LMDB_TAG_ENTRY &&
		    lmdb_expiry_decode((const unsigned char *)d.mv_data + 1) <=
		        now) {
			rc = mdb_cursor_del(cur, 0);
			if (rc != 0)
				break;
			/* After mdb_cursor_del, MDB_NEXT returns the entry
			 * that followed the one deleted (LMDB's C_DEL). */
		}
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == EINVAL ? 0 : rc;
}

static int
store_lmdb_once(void *h, const unsigned char *key, time_t expiry)
{
	struct store_lmdb *sl = h;
	unsigned char jk[LMDB_TAG_ENTRY], jv[LMDB_TAG_ENTRY];
	time_t now = time(NULL);
	MDB_txn *txn = NULL;
	MDB_val k, d;
	int rc;

	lmdb_tag_entry(jk, LMDB_TAG_ONCE, key);
	memset(jv, 0, sizeof(jv));
	jv[0] = LMDB_TAG_EXPIRY;
	lmdb_expiry_encode(jv + 1, expiry);
	rc = mdb_txn_begin(sl->sl_tenv, NULL, 0, &txn);
	if (rc != 0)
		return lmdb_write_result("mdb_txn_begin", rc);
	k.mv_size = sizeof(jk);
	k.mv_data = jk;
	rc = mdb_get(txn, sl->sl_tags, &k, &d);
	if (rc == 0 && d.mv_size == LMDB_TAG_ENTRY &&
	    lmdb_expiry_decode((const unsigned char *)d.mv_data + 1) > now) {
		mdb_txn_abort(txn);
		return STORE_BUSY;
	}
	if (rc == 0) /* expired (or damaged): it is used once more */
		rc = mdb_del(txn, sl->sl_tags, &k, NULL);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0) {
		d.mv_size = sizeof(jv);
		d.mv_data = jv;
		rc = mdb_put(txn, sl->sl_tags, &k, &d, 0);
	}
	if (rc == 0)
		rc = lmdb_once_clean(sl, txn, jk, now);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_write_result("mdb_put", rc);
	}
	rc = mdb_txn_commit(txn);
	return lmdb_write_result("mdb_txn_commit", rc);
}

static void *
store_lmdb_reader_new(void *h, struct event_base *base)
{
	struct store_lmdb *sl = h;
	struct store_lmdb_reader *rd;
	int rc;

	(void)base; /* every call completes at once: no event loop needed */
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

/* Each record is two entries (hot and cold); mdb_env_stat reads the
 * main database's count from the meta page, with no transaction. */
static long
store_lmdb_count(void *h)
{
	struct store_lmdb *sl = h;
	MDB_stat ms;

	if (mdb_env_stat(sl->sl_env, &ms) != 0)
		return -1;
	return (long)(ms.ms_entries / 2);
}

/* --- the admin command's walk (store_scan) --------------------------- */

#define LMDB_SCAN_DEL_BATCH 512 /* records per write transaction */

/* Keys the walk was asked to delete, deleted once its read transaction
 * has ended (a process holds one transaction at a time). */
struct lmdb_scan_dels {
	unsigned char (*ld_keys)[STORE_KEY_LEN];
	size_t ld_n, ld_cap;
};

static int
lmdb_scan_dels_add(struct lmdb_scan_dels *ld, const unsigned char *key)
{
	unsigned char(*keys)[STORE_KEY_LEN];
	size_t cap;

	if (ld->ld_n == ld->ld_cap) {
		cap = ld->ld_cap == 0 ? 64 : 2 * ld->ld_cap;
		keys = reallocarray(ld->ld_keys, cap, sizeof(*keys));
		if (keys == NULL)
			return -1;
		ld->ld_keys = keys;
		ld->ld_cap = cap;
	}
	memcpy(ld->ld_keys[ld->ld_n++], key, STORE_KEY_LEN);
	return 0;
}

/* The record key of the hot entry (k, d): the prefix as stored (its
 * lowest bit is the part, so it reads as 0) and the check. */
static void
lmdb_scan_key(const MDB_val *k, const MDB_val *d, unsigned char *key)
{
	size_t v = lmdb_key_value(k);

	memcpy(key, &v, LMDB_PREFIX_LEN);
	memcpy(key + LMDB_PREFIX_LEN,
	    (const unsigned char *)d->mv_data + LMDB_EXPIRY_LEN,
	    LMDB_CHECK_LEN);
}

/* Delete the records of ld, LMDB_SCAN_DEL_BATCH per write transaction
 * (not one commit each: --all may end many).  A record found under its
 * prefix with another check is another key's and stays. */
static int
lmdb_scan_delete(struct store_lmdb *sl, const struct lmdb_scan_dels *ld,
    size_t *deleted, struct gh_error *err)
{
	MDB_txn *txn = NULL;
	MDB_val k, d;
	size_t i, kb, n = 0, batch = 0;
	int rc;

	for (i = 0; i < ld->ld_n; i++) {
		if (txn == NULL) {
			rc = mdb_txn_begin(sl->sl_env, NULL, 0, &txn);
			if (rc != 0)
				goto fail;
			batch = 0;
		}
		lmdb_key_make(&k, &kb, ld->ld_keys[i], LMDB_PART_HOT);
		rc = mdb_get(txn, sl->sl_dbi, &k, &d);
		if (rc == MDB_NOTFOUND ||
		    (rc == 0 && !lmdb_hot_mine(&d, ld->ld_keys[i])))
			continue; /* gone meanwhile (sign-out, sweep) */
		if (rc == 0)
			rc = mdb_del(txn, sl->sl_dbi, &k, NULL);
		if (rc == 0) {
			kb |= LMDB_PART_COLD;
			rc = mdb_del(txn, sl->sl_dbi, &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
		}
		if (rc != 0)
			goto fail;
		batch++;
		if (batch == LMDB_SCAN_DEL_BATCH || i + 1 == ld->ld_n) {
			rc = mdb_txn_commit(txn);
			txn = NULL;
			if (rc != 0)
				goto fail;
			n += batch;
			batch = 0;
		}
	}
	if (txn != NULL) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
		if (rc != 0)
			goto fail;
		n += batch;
	}
	/* Their provider-logout tags go too (see lmdb_tags_forget). */
	if (ld->ld_n > 0)
		lmdb_tags_forget(sl, ld->ld_keys[0], ld->ld_n);
	*deleted = n;
	return STORE_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	*deleted = n;
	gh_error_set(
	    err, "store_scan", "session store: deleting: %s", mdb_strerror(rc));
	return rc == MDB_MAP_FULL ? STORE_FULL : STORE_ERR;
}

static int
store_lmdb_scan(void *h, time_t now, store_scan_fn *fn, void *arg,
    size_t *deleted, struct gh_error *err)
{
	struct store_lmdb *sl = h;
	struct lmdb_scan_dels ld = {NULL, 0, 0};
	unsigned char key[STORE_KEY_LEN];
	size_t v, cb;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d, ck, cd;
	int rc, verdict, ret = STORE_ERR;

	*deleted = 0;
	rc = mdb_txn_begin(sl->sl_env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, sl->sl_dbi, &cur);
	if (rc != 0) {
		gh_error_set(
		    err, "store_scan", "session store: %s", mdb_strerror(rc));
		goto done;
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		v = lmdb_key_value(&k);
		/* Cold entries are read with their hot one; what is not
		 * ours, or has ended, is the sweep's. */
		if (k.mv_size != sizeof(v) || (v & 1) != LMDB_PART_HOT ||
		    d.mv_size < LMDB_HOT_HDR_LEN ||
		    lmdb_expiry_decode(d.mv_data) <= now)
			continue;
		cb = v | LMDB_PART_COLD;
		ck.mv_size = sizeof(cb);
		ck.mv_data = &cb;
		if (mdb_get(txn, sl->sl_dbi, &ck, &cd) != 0)
			continue; /* no cold part: damage, no record */
		lmdb_scan_key(&k, &d, key);
		verdict = fn(arg, key,
		    (const unsigned char *)d.mv_data + LMDB_HOT_HDR_LEN,
		    d.mv_size - LMDB_HOT_HDR_LEN, cd.mv_data, cd.mv_size);
		if (verdict == -1)
			goto done;
		if (verdict == STORE_SCAN_DELETE &&
		    lmdb_scan_dels_add(&ld, key) == -1) {
			gh_error_set(err, "store_scan", "out of memory");
			goto done;
		}
	}
	if (rc != MDB_NOTFOUND) {
		gh_error_set(
		    err, "store_scan", "session store: %s", mdb_strerror(rc));
		goto done;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	mdb_txn_abort(txn);
	txn = NULL;
	ret = lmdb_scan_delete(sl, &ld, deleted, err);
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(ld.ld_keys);
	return ret;
}

const struct store_backend store_lmdb_backend = {
    .name = "lmdb",
    .open = store_lmdb_open,
    .close = store_lmdb_close,
    .get = store_lmdb_get,
    .put = store_lmdb_put,
    .put_hot = store_lmdb_put_hot,
    .del = store_lmdb_del,
    .replace = store_lmdb_replace,
    .sweep = store_lmdb_sweep,
    .reader_new = store_lmdb_reader_new,
    .reader_free = store_lmdb_reader_free,
    .count = store_lmdb_count,
    .put_tagged = store_lmdb_put_tagged,
    .end_tagged = store_lmdb_end_tagged,
    .once = store_lmdb_once,
    .scan = store_lmdb_scan,
};
