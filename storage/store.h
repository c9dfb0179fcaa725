/* SPDX-License-Identifier: ISC */
/*
 * store.h: the session store.  One interface (struct store_backend, a
 * vtable), backends chosen by name ("lmdb", the default, in
 * store_lmdb.c; "redis", in store_redis.c, for several replicas sharing
 * their sessions), and the store_* calls the rest of gatehouse uses.
 *
 * Records: a key is STORE_KEY_LEN (16) binary bytes, which the caller
 * derives from SHA-256 of the session id (its first 16 bytes), so the store
 * never sees an id; keys must be uniformly random (a hash), since a backend
 * may index by part of them (the LMDB backend: 63 bits, checking the rest;
 * see store_put).  A record has an expiry in unix seconds and two parts,
 * both opaque byte strings that the caller formats (and seals: tokens are
 * encrypted at rest):
 *   - the hot part, read by every lookup: keep it small (the LMDB backend
 *     keeps a hot part of up to STORE_HOT_INLINE_MAX bytes inside its
 *     B-tree leaf, so a lookup touches one leaf page and nothing else);
 *   - the cold part, read only when asked for (STORE_COLD), in its own
 *     short transaction, which reads the hot part again with it so the two
 *     always come from the same commit.
 * The store copies values in on put.  On get it hands them to a callback
 * inside its read transaction (borrowed pointers, valid only during the
 * callback), so a lookup copies what it keeps once, straight from the
 * store's memory, and allocates nothing of its own.
 *
 * Threads: one struct store per process, opened before the workers start
 * and closed after they stop.  get, put, del and sweep may be called from
 * any thread at the same time.  Each call is one short transaction that
 * ends before the call returns, so no transaction ever spans an
 * event-loop turn.  A struct store_reader belongs to one thread at a time
 * (normally one per worker).
 *
 * Asynchronous calls (store_async_*): a store across the network (Redis)
 * answers later, on the worker's event loop, so each worker reaches it
 * through its reader (a connection on the worker's event base), and a
 * call either completes during the call (its result is returned, and the
 * done callback is not called) or returns STORE_PENDING and calls
 * done(arg, result) once, later, from the reader's event loop, unless the
 * operation is cancelled first (store_op_cancel).  The LMDB backend
 * always completes during the call, through the same code as the
 * synchronous calls: it pays one test of a function pointer, nothing more.
 */
#ifndef GATEHOUSE_STORE_H
#define GATEHOUSE_STORE_H

#include <stddef.h>
#include <time.h>

struct event_base;
struct gh_error;
struct secret;

#define STORE_KEY_LEN 16
#define STORE_OWNER_LEN 16 /* a lock owner's token: random bytes */
#define STORE_BACKEND_DEFAULT "lmdb"
#define STORE_MAP_SIZE_DEFAULT ((size_t)1 << 30) /* 1 GiB */
/* The largest hot part the LMDB backend keeps inline in a leaf page (4 KiB
 * pages); a larger one still works, on an overflow page of its own. */
#define STORE_HOT_INLINE_MAX 2006

enum store_result {
	STORE_OK = 0,
	STORE_NOTFOUND, /* no such key, its record has expired, or (with
	                   STORE_COLD) its cold part is missing */
	STORE_FULL,     /* no room (LMDB map full); the store stays usable; not
	                   logged by the backend (the caller says what failed) */
	STORE_ERR,      /* anything else, or the callback refused the record;
	                   store errors are logged by the backend */
	STORE_UNAVAIL,  /* the store cannot be reached now (Redis down, no
	                   answer within its timeout, our handshake refused):
	                   the change may or may not have been made; the
	                   backend logs each change of availability once */
	STORE_PENDING,  /* an asynchronous call is under way (see above) */
	STORE_BUSY      /* a lock is held by another owner */
};

/* Flags of get. */
#define STORE_COLD 0x1 /* read the cold part too */

/*
 * Called by get inside the store's read transaction with the record's
 * parts: hot (hotlen bytes) always, cold (coldlen bytes) when STORE_COLD
 * was asked for, else NULL and 0.  Both pointers are borrowed and valid
 * only until the callback returns (they point into the store's memory
 * map, which may be read-only): copy what must outlive it, and do not call
 * the store from it.  Return 0 to accept the record, -1 to refuse it (get
 * then returns STORE_ERR and logs nothing).
 */
typedef int store_get_fn(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t coldlen);

/*
 * Called by store_scan once for each live record: key is the record's key
 * as the store holds it (the LMDB backend keeps 127 of its 128 bits: the
 * lowest bit of key[0]'s 64-bit word reads as 0), hot and cold its two
 * parts, all borrowed and valid only until the callback returns; do not
 * call the store from it.  Return STORE_SCAN_KEEP, STORE_SCAN_DELETE (the
 * store deletes the record before store_scan returns) or -1 to stop the
 * walk (store_scan then returns STORE_ERR and logs nothing).
 */
#define STORE_SCAN_KEEP 0
#define STORE_SCAN_DELETE 1
typedef int store_scan_fn(void *arg, const unsigned char key[STORE_KEY_LEN],
    const unsigned char *hot, size_t hotlen, const unsigned char *cold,
    size_t coldlen);

/* The end of an asynchronous call that returned STORE_PENDING: result is
 * what the synchronous call would have returned (or STORE_UNAVAIL).  For
 * a get, the store_get_fn has run before it when the record was there. */
typedef void store_done_fn(void *arg, int result);

/* An asynchronous call under way (the backend's own type). */
struct store_op;

/*
 * Who a record belongs to, for the provider's logout (store_put_tagged,
 * store_async_end_tagged): up to one tag per kind, each STORE_TAG_LEN
 * bytes the caller derives from a hash of the provider's session id (sid)
 * or of the user's subject (sub), so the store never sees either value.
 */
#define STORE_TAG_LEN 16
enum store_tag_kind { STORE_TAG_SID, STORE_TAG_SUB, STORE_TAG_KINDS };
struct store_tags {
	unsigned char stg_tag[STORE_TAG_KINDS][STORE_TAG_LEN];
	int stg_have[STORE_TAG_KINDS];
};

/* How to open a store, beside where it is. */
struct store_options {
	size_t so_map_size; /* LMDB: most bytes held (0: the default) */
	/* Redis: the AUTH password (borrowed, copied), or NULL (or empty)
	 * for the URL's own, if any. */
	const struct secret *so_password;
	/* Redis Sentinel: the sentinels' own password (borrowed, copied),
	 * or NULL (or empty): they are asked without AUTH. */
	const struct secret *so_sentinel_password;
	int so_timeout_ms; /* Redis: each command's deadline (0: 1000) */
};

/*
 * A backend.  `h` is the backend's handle from open, `rd` its per-thread
 * reader from reader_new (NULL: the call opens its own transaction).  The
 * semantics of each entry are those of the store_* function of the same
 * name below.  A backend that only answers asynchronously (Redis) leaves
 * get, put, replace, put_hot and del NULL (those calls then fail with
 * STORE_ERR); one that always answers at once (LMDB) leaves the async_*
 * entries, op_cancel and ready NULL (and has no locks: it is not shared).
 */
struct store_backend {
	const char *name;
	int shared; /* several processes (replicas) share the records */
	void *(*open)(const char *where, const struct store_options *opt,
	    struct gh_error *err);
	void (*close)(void *h);
	int (*get)(void *h, void *rd, const unsigned char *key, time_t now,
	    int flags, store_get_fn *fn, void *arg);
	int (*put)(void *h, const unsigned char *key, time_t expiry,
	    const void *hot, size_t hotlen, const void *cold, size_t coldlen);
	int (*put_hot)(
	    void *h, const unsigned char *key, const void *hot, size_t hotlen);
	int (*del)(void *h, const unsigned char *key);
	int (*sweep)(void *h, time_t now, size_t max, size_t *deleted);
	void *(*reader_new)(void *h, struct event_base *base);
	void (*reader_free)(void *h, void *rd);
	int (*async_get)(void *h, void *rd, const unsigned char *key,
	    time_t now, int flags, store_get_fn *fn, store_done_fn *done,
	    void *arg, struct store_op **op);
	int (*async_put)(void *h, void *rd, const unsigned char *key,
	    time_t expiry, const void *hot, size_t hotlen, const void *cold,
	    size_t coldlen, store_done_fn *done, void *arg,
	    struct store_op **op);
	int (*async_put_hot)(void *h, void *rd, const unsigned char *key,
	    const void *hot, size_t hotlen, store_done_fn *done, void *arg,
	    struct store_op **op);
	int (*async_del)(void *h, void *rd, const unsigned char *key,
	    store_done_fn *done, void *arg, struct store_op **op);
	int (*async_lock)(void *h, void *rd, const unsigned char *key,
	    const unsigned char *owner, int ttl_ms, store_done_fn *done,
	    void *arg, struct store_op **op);
	int (*async_unlock)(void *h, void *rd, const unsigned char *key,
	    const unsigned char *owner, store_done_fn *done, void *arg,
	    struct store_op **op);
	void (*op_cancel)(void *h, void *rd, struct store_op *op);
	int (*ready)(void *h, void *rd);
	long (*count)(void *h); /* may be NULL: cannot count */
	/* Provider logout (may be NULL: put_tagged falls back to put, the
	 * others fail with STORE_ERR).  LMDB fills the synchronous three,
	 * Redis the async_ ones. */
	int (*put_tagged)(void *h, const unsigned char *key, time_t expiry,
	    const void *hot, size_t hotlen, const void *cold, size_t coldlen,
	    const struct store_tags *tags, int existing);
	int (*end_tagged)(void *h, enum store_tag_kind kind,
	    const unsigned char *tag, size_t *ended);
	int (*once)(void *h, const unsigned char *key, time_t expiry);
	int (*async_put_tagged)(void *h, void *rd, const unsigned char *key,
	    time_t expiry, const void *hot, size_t hotlen, const void *cold,
	    size_t coldlen, const struct store_tags *tags, int existing,
	    store_done_fn *done, void *arg, struct store_op **op);
	int (*async_end_tagged)(void *h, void *rd, enum store_tag_kind kind,
	    const unsigned char *tag, size_t *ended, store_done_fn *done,
	    void *arg, struct store_op **op);
	int (*async_once)(void *h, void *rd, const unsigned char *key,
	    time_t expiry, store_done_fn *done, void *arg,
	    struct store_op **op);
	/* store_replace (the synchronous backend) and store_async_replace
	 * (the asynchronous one); a backend without them cannot be used
	 * for sessions that already exist (STORE_ERR). */
	int (*replace)(void *h, const unsigned char *key, time_t expiry,
	    const void *hot, size_t hotlen, const void *cold, size_t coldlen);
	int (*async_replace)(void *h, void *rd, const unsigned char *key,
	    time_t expiry, const void *hot, size_t hotlen, const void *cold,
	    size_t coldlen, store_done_fn *done, void *arg,
	    struct store_op **op);
	/* The admin command's walk over every record (store_scan); may be
	 * NULL: the backend cannot list. */
	int (*scan)(void *h, time_t now, store_scan_fn *fn, void *arg,
	    size_t *deleted, struct gh_error *err);
};

/* The backends compiled in (store.c's registry lists them). */
extern const struct store_backend store_lmdb_backend;
extern const struct store_backend store_redis_backend;

struct store;
struct store_reader;

/* The backend registered as `name` (borrowed, static), or NULL. */
const struct store_backend *store_backend_find(const char *name);

/* The name of the backend a session_store value means: "redis" for a
 * redis:// or redis-sentinel:// URL, else "lmdb" (a path).  Static. */
const char *store_backend_for(const char *where);

/*
 * Open the store of backend `backend` (NULL: STORE_BACKEND_DEFAULT) at
 * `path`, a directory created with mode 0700 when missing.  map_size is
 * the most the store may hold in bytes (0: STORE_MAP_SIZE_DEFAULT).
 * Returns a new store (store_close), or NULL with err set.  Main thread,
 * before the workers start.
 *
 * Records of an older format (the LMDB backend's single-part records of
 * 32-byte keys) are never found by get, and the sweep deletes them: their
 * users sign in again.
 */
struct store *store_open(const char *backend, const char *path, size_t map_size,
    struct gh_error *err);

/* store_open with every option (opt may be NULL for the defaults), at
 * `where`: the LMDB directory, or the Redis URL (see redis_url.h). */
struct store *store_open_with(const char *backend, const char *where,
    const struct store_options *opt, struct gh_error *err);

/* Whether st's records are shared by several processes (Redis): then an
 * in-process lock is not enough to do something once per session. */
int store_shared(const struct store *st);

/* Close st (takes it); NULL is a no-op.  Every reader must have been freed
 * and no other thread may be using st. */
void store_close(struct store *st);

/*
 * Look up key and call fn(arg, ...) with its record (see store_get_fn),
 * the cold part only when flags has STORE_COLD.  Returns STORE_OK when
 * fn accepted it; STORE_NOTFOUND when there is no record, when its expiry
 * is <= now (the sweep removes it later), or when STORE_COLD was asked for
 * and the record has no cold part (it reads as no record; fn is not
 * called); STORE_ERR when fn refused it or the store failed.  Any thread.
 */
int store_get(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t now, int flags, store_get_fn *fn, void *arg);

/*
 * Insert or replace key's whole record: the hot part (hotlen bytes of hot)
 * and the cold part (coldlen bytes of cold; either may be empty), both
 * borrowed and copied in, expiring at `expiry` (unix seconds), in one
 * transaction: a get never sees the hot part of one put with the cold part
 * of another.  Returns STORE_OK once the record is committed, STORE_FULL
 * when there is no room (nothing changed; records already there stay
 * readable, and del and sweep still work), or STORE_ERR.  Any thread.
 *
 * The LMDB backend indexes a record by 63 bits of its key and checks 64
 * more on every get, put_hot and del (127 of the 128 bits count), so a key
 * never reads, touches or deletes another key's record; but a put
 * replaces a record whose key shares those 63 bits (its user signs in
 * again): with random keys, probability n / 2^63 per put among n records,
 * about 1e-13 at a million.
 *
 * Durability of the LMDB backend: after STORE_OK the record survives the
 * process being killed (even by SIGKILL) because the commit has reached
 * the kernel.  The data file is fsync'd on each commit but the meta page is
 * not (MDB_NOMETASYNC), so a power cut or kernel crash can lose the last
 * transaction(s) committed before it, never the database's integrity (and
 * never one part of a record without the other): the affected users sign
 * in again, or see the record as it was before their last update.
 */
int store_put(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen);

/*
 * Replace only the hot part of key's existing record (hotlen bytes of hot,
 * borrowed, copied in); its cold part and expiry stay.  Cheaper than
 * store_put when only the small part changed (a last-seen time).  Returns
 * STORE_OK once committed, STORE_NOTFOUND when key has no record (it is
 * not created: a record deleted meanwhile stays deleted), STORE_FULL or
 * STORE_ERR as for store_put, with the same durability.  Any thread.
 */
int store_put_hot(struct store *st, const unsigned char key[STORE_KEY_LEN],
    const void *hot, size_t hotlen);

/*
 * store_put, but only over a record that is there: STORE_NOTFOUND when key
 * has none (nothing is written).  For a record read earlier and written
 * back whole (a refresh's new tokens), so that one deleted meanwhile (by
 * a sign-out, a revoke of the admin command, another replica) stays
 * deleted.  Same results and durability as store_put otherwise.  Any
 * thread.
 */
int store_replace(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen);

/* Delete key's record, both parts, in one transaction: STORE_OK,
 * STORE_NOTFOUND, STORE_FULL (in theory: no page left even for the
 * copy-on-write a delete needs) or STORE_ERR.  Any thread. */
int store_del(struct store *st, const unsigned char key[STORE_KEY_LEN]);

/*
 * Delete records (both parts) whose expiry is <= now, at most `max` of
 * them, in one short write transaction; a cold part without its hot part,
 * and a record of an older format, count as expired.  To keep that
 * transaction short the call also visits at most about 16 * max stored
 * parts (at least 256), starting where the previous call stopped and
 * wrapping around, so a timer calling it every few seconds sweeps the whole
 * store in small steps.  *deleted (may be NULL) gets the number of records
 * removed; *deleted < max means the pass reached its start again, or its
 * visit budget.  STORE_OK, STORE_FULL (as for del) or STORE_ERR.  Any
 * thread.
 */
int store_sweep(struct store *st, time_t now, size_t max, size_t *deleted);

/*
 * About how many records the store holds, expired ones included until
 * they are swept (for the sessions gauge): cheap, no scan.  -1 when the
 * backend cannot say.  Any thread.
 */
long store_count(struct store *st);

/*
 * Walk every record whose expiry is > now and that has both parts, and
 * call fn on each (see store_scan_fn), for the `sessions` admin command:
 * never on the request path.  The LMDB backend reads all of them in one
 * read transaction (a snapshot; a running gatehouse keeps writing beside
 * it, as LMDB serves several processes) and deletes what fn asked for
 * afterwards, in write transactions of its own; the Redis backend opens a
 * synchronous connection of its own (for Sentinel, to the master the
 * sentinels name), walks the keys with SCAN (never KEYS, which would stop
 * the server while it runs), reads each record with HMGET, deletes it
 * with DEL when fn asks, and sees each record at most once (SCAN may
 * return a key twice; they are made unique first).  A record written or
 * deleted during the walk may or may not be seen.  *deleted (may be
 * NULL) gets how many records were deleted (one that was gone meanwhile
 * does not count).  STORE_OK, STORE_UNAVAIL (Redis could not be reached
 * or stopped answering; err says why), or STORE_ERR (fn stopped the walk,
 * or the store failed: err says why unless fn stopped it).  Main thread
 * of a process that runs no workers (the command line).
 */
int store_scan(struct store *st, time_t now, store_scan_fn *fn, void *arg,
    size_t *deleted, struct gh_error *err);

/*
 * A reader: a per-thread fast path for store lookups, and a worker's
 * handle for the asynchronous calls.  The LMDB backend keeps one read
 * transaction in it, opened once (the environment uses MDB_NOTLS, so it
 * is not tied to a thread) and reset after each lookup with
 * mdb_txn_reset, renewed before the next with mdb_txn_renew, so a lookup
 * costs no reader-slot allocation.  Each lookup sees the latest committed
 * data; between lookups the reader pins no snapshot.  The Redis backend
 * keeps the worker's connection in it, on `base` (the worker's event
 * base; the LMDB backend ignores it and it may be NULL there).
 *
 * store_reader_new returns a new reader (store_reader_free) or NULL.  A
 * reader is used by one thread at a time, must not outlive st, and is
 * created and freed on the thread that uses it (any thread; for Redis the
 * thread that runs base, and freeing it fails what is still pending).
 */
struct store_reader *store_reader_new(
    struct store *st, struct event_base *base);

/* Free rd (takes it); NULL is a no-op. */
void store_reader_free(struct store_reader *rd);

/* store_get through rd: same contract and results, one short read
 * transaction per call (renewed and reset, never held after it). */
int store_reader_get(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t now, int flags,
    store_get_fn *fn, void *arg);

/* Whether rd's calls may answer later (STORE_PENDING): the Redis
 * backend.  0 for NULL. */
int store_reader_async(const struct store_reader *rd);

/*
 * The asynchronous calls, through rd, on rd's thread: the contracts of
 * store_get (fn borrowed pointers valid during fn only), store_put,
 * store_replace, store_put_hot and store_del, with the results they list, plus
 * STORE_UNAVAIL, or STORE_PENDING: done(arg, result) runs later (fn first,
 * for a get that found the record), and *op (may be NULL) is the call's
 * handle until then.  Values are copied before the call returns.  done
 * may be NULL (a write nobody waits for; its failure is only logged).
 * Otherwise neither done is called nor *op set (NULL).
 */
int store_async_get(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t now, int flags,
    store_get_fn *fn, store_done_fn *done, void *arg, struct store_op **op);
int store_async_put(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t expiry, const void *hot,
    size_t hotlen, const void *cold, size_t coldlen, store_done_fn *done,
    void *arg, struct store_op **op);
int store_async_replace(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t expiry, const void *hot,
    size_t hotlen, const void *cold, size_t coldlen, store_done_fn *done,
    void *arg, struct store_op **op);
int store_async_put_hot(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], const void *hot, size_t hotlen,
    store_done_fn *done, void *arg, struct store_op **op);
int store_async_del(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], store_done_fn *done, void *arg,
    struct store_op **op);

/*
 * A short lock per key, for work that must happen once across every
 * process sharing the store (a refresh that rotates the refresh token):
 * lock takes key's lock for owner (STORE_OWNER_LEN random bytes the
 * caller made) for ttl_ms, unless another owner holds it: STORE_OK (ours
 * now), STORE_BUSY (held by another), STORE_UNAVAIL or STORE_ERR; unlock
 * releases it if owner still holds it: STORE_OK, or STORE_NOTFOUND (it
 * expired, and maybe another owner took it since: never released then).
 * The lock is its own record beside key's session record and expires by
 * itself after ttl_ms, so an owner that dies does not hold it forever.
 * A backend that is not shared (LMDB: one process, whose own table of
 * refreshes suffices) answers STORE_OK at once to both.  Asynchronous
 * like the calls above.
 */
int store_async_lock(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN],
    const unsigned char owner[STORE_OWNER_LEN], int ttl_ms, store_done_fn *done,
    void *arg, struct store_op **op);
int store_async_unlock(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN],
    const unsigned char owner[STORE_OWNER_LEN], store_done_fn *done, void *arg,
    struct store_op **op);

/*
 * Provider logout.  store_put_tagged is store_put (with `existing`,
 * store_replace: STORE_NOTFOUND for a record deleted meanwhile, which
 * stays deleted, its tags too) that also files the record under each tag
 * tags has (borrowed; NULL or no tag: store_put or store_replace),
 * replacing the tags it had; deleting the record (del, sweep, expiry)
 * drops them (Redis: lazily, see store_redis.c).  A backend without tags
 * stores the record untagged.
 *
 * store_async_end_tagged deletes every record filed under tag (of
 * `kind`), whichever process or thread made it: STORE_OK with *ended
 * (set before done runs; the caller keeps it valid until then) the
 * number of records deleted (0: none), or the results of store_del.
 *
 * store_async_once records key (a hash of something that must be used
 * once, such as a token's jti) until `expiry`: STORE_OK the first time,
 * STORE_BUSY when it is already there and not expired, or STORE_FULL,
 * STORE_ERR, STORE_UNAVAIL.  The entries of once live beside the
 * records, never among them (a scan of the sessions never sees one).
 *
 * Both are asynchronous like the calls above (LMDB answers at once).
 */
int store_put_tagged(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen, const struct store_tags *tags, int existing);
int store_async_put_tagged(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t expiry, const void *hot,
    size_t hotlen, const void *cold, size_t coldlen,
    const struct store_tags *tags, int existing, store_done_fn *done, void *arg,
    struct store_op **op);
int store_async_end_tagged(struct store_reader *rd, enum store_tag_kind kind,
    const unsigned char tag[STORE_TAG_LEN], size_t *ended, store_done_fn *done,
    void *arg, struct store_op **op);
int store_async_once(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t expiry, store_done_fn *done,
    void *arg, struct store_op **op);

/* Cancel an asynchronous call before its done ran: neither fn nor done
 * will be called; a write may still happen.  NULL is a no-op. */
void store_op_cancel(struct store_reader *rd, struct store_op *op);

/* Whether the store can be used now, as rd's thread sees it (every
 * worker's Redis connection is up; always for LMDB). */
int store_ready(struct store_reader *rd);

#endif
