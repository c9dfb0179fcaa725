/* SPDX-License-Identifier: ISC */
/*
 * store.h: the session store.  One interface (struct store_backend, a
 * vtable), backends chosen by name ("lmdb", the default, in
 * store_lmdb.c), and the store_* calls the rest of gatehouse uses.
 *
 * Records: a key is STORE_KEY_LEN (32) binary bytes, which the caller
 * derives as SHA-256 of the session id, so the store never sees an id.  A
 * value is an opaque byte string (the caller seals it: tokens are encrypted
 * at rest) with an expiry in unix seconds.  The store copies values in on
 * put and out on get; it never hands out a pointer into its own memory.
 *
 * Threads: one struct store per process, opened before the workers start
 * and closed after they stop.  get, put, del and sweep may be called from
 * any thread at the same time.  Each call is one short transaction that
 * ends before the call returns (S13), so no transaction ever spans an
 * event-loop turn.  A struct store_reader belongs to one thread at a time
 * (normally one per worker).
 */
#ifndef GATEHOUSE_STORE_H
#define GATEHOUSE_STORE_H

#include <stddef.h>
#include <time.h>

struct gh_error;

#define STORE_KEY_LEN 32
#define STORE_BACKEND_DEFAULT "lmdb"
#define STORE_MAP_SIZE_DEFAULT ((size_t)1 << 30) /* 1 GiB */

enum store_result {
	STORE_OK = 0,
	STORE_NOTFOUND, /* no such key, or its record has expired */
	STORE_FULL,     /* no room (LMDB map full); the store stays usable; not
	                   logged by the backend (the caller says what failed) */
	STORE_ERR       /* anything else; logged by the backend */
};

/*
 * A backend.  `h` is the backend's handle from open, `rd` its per-thread
 * reader from reader_new.  The semantics of each entry are those of the
 * store_* function of the same name below; get's *val is new (malloc).
 */
struct store_backend {
	const char *name;
	void *(*open)(const char *path, size_t map_size, struct gh_error *err);
	void (*close)(void *h);
	int (*get)(void *h, void *rd, const unsigned char *key, time_t now,
	    unsigned char **val, size_t *len);
	int (*put)(void *h, const unsigned char *key, time_t expiry,
	    const void *val, size_t len);
	int (*del)(void *h, const unsigned char *key);
	int (*sweep)(void *h, time_t now, size_t max, size_t *deleted);
	void *(*reader_new)(void *h);
	void (*reader_free)(void *h, void *rd);
};

/* The backends compiled in (store.c's registry lists them). */
extern const struct store_backend store_lmdb_backend;

struct store;
struct store_reader;

/* The backend registered as `name` (borrowed, static), or NULL. */
const struct store_backend *store_backend_find(const char *name);

/*
 * Open the store of backend `backend` (NULL: STORE_BACKEND_DEFAULT) at
 * `path`, a directory created with mode 0700 when missing.  map_size is
 * the most the store may hold in bytes (0: STORE_MAP_SIZE_DEFAULT).
 * Returns a new store (store_close), or NULL with err set.  Main thread,
 * before the workers start.
 */
struct store *store_open(const char *backend, const char *path, size_t map_size,
    struct gh_error *err);

/* Close st (takes it); NULL is a no-op.  Every reader must have been freed
 * and no other thread may be using st. */
void store_close(struct store *st);

/*
 * Look up key.  On STORE_OK, *val is a new buffer of *len bytes (free());
 * it is a copy, valid after the store's transaction has ended.  A record
 * whose expiry is <= now is STORE_NOTFOUND (the sweep removes it later).
 * Otherwise STORE_NOTFOUND or STORE_ERR, and *val is NULL.  Any thread.
 */
int store_get(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t now, unsigned char **val, size_t *len);

/*
 * Insert or replace key's record: len bytes of val (borrowed, copied in),
 * expiring at `expiry` (unix seconds).  Returns STORE_OK once the record is
 * committed, STORE_FULL when there is no room (nothing changed; records
 * already there stay readable, and del and sweep still work), or STORE_ERR.
 * Any thread.
 *
 * Durability of the LMDB backend: after STORE_OK the record survives the
 * process being killed (even by SIGKILL) because the commit has reached
 * the kernel.  The data file is fsync'd on each commit but the meta page is
 * not (MDB_NOMETASYNC), so a power cut or kernel crash can lose the last
 * transaction(s) committed before it, never the database's integrity: the
 * affected users sign in again.
 */
int store_put(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *val, size_t len);

/* Delete key's record: STORE_OK, STORE_NOTFOUND, STORE_FULL (in theory:
 * no page left even for the copy-on-write a delete needs) or STORE_ERR.
 * Any thread. */
int store_del(struct store *st, const unsigned char key[STORE_KEY_LEN]);

/*
 * Delete records whose expiry is <= now, at most `max` of them, in one
 * short write transaction.  To keep that transaction short the call also
 * visits at most about 16 * max records (at least 256), starting where the
 * previous call stopped and wrapping around, so a timer calling it every
 * few seconds sweeps the whole store in small steps.  *deleted (may be
 * NULL) gets the number removed; *deleted < max means the pass reached its
 * start again, or its visit budget.  STORE_OK, STORE_FULL (as for del) or
 * STORE_ERR.  Any thread.
 */
int store_sweep(struct store *st, time_t now, size_t max, size_t *deleted);

/*
 * A reader: a per-thread fast path for store lookups.  The LMDB backend
 * keeps one read transaction in it, opened once (the environment uses
 * MDB_NOTLS, so it is not tied to a thread) and reset after each lookup
 * with mdb_txn_reset, renewed before the next with mdb_txn_renew, so a
 * lookup costs no reader-slot allocation.  Each lookup sees the latest
 * committed data; between lookups the reader pins no snapshot.
 *
 * store_reader_new returns a new reader (store_reader_free) or NULL.  A
 * reader is used by one thread at a time, must not outlive st, and is
 * created and freed on the thread that uses it (any thread).
 */
struct store_reader *store_reader_new(struct store *st);

/* Free rd (takes it); NULL is a no-op. */
void store_reader_free(struct store_reader *rd);

/* store_get through rd: same contract, results and ownership. */
int store_reader_get(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t now, unsigned char **val,
    size_t *len);

#endif
