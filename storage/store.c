/* SPDX-License-Identifier: ISC */
/*
 * store.c: the session store's backend registry and the store_* calls,
 * which forward to the chosen backend's vtable and count each call with
 * its result for the metrics.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/metrics.h"
#include "redis_url.h"
#include "store.h"

struct store {
	const struct store_backend *st_be;
	void *st_h;
};

struct store_reader {
	struct store *sr_store;
	void *sr_h;
};

/* The registry; add a backend here and in store.h. */
static const struct store_backend *const store_backends[] = {
    &store_lmdb_backend,
    &store_redis_backend,
};

const struct store_backend *
store_backend_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++)
		if (strcmp(store_backends[i]->name, name) == 0)
			return store_backends[i];
	return NULL;
}

const char *
store_backend_for(const char *where)
{
	return where != NULL && redis_url_is(where) ? "redis" : "lmdb";
}

struct store *
store_open(const char *backend, const char *path, size_t map_size,
    struct gh_error *err)
{
	struct store_options o;

	memset(&o, 0, sizeof(o));
	o.so_map_size = map_size;
	return store_open_with(backend, path, &o, err);
}

struct store *
store_open_with(const char *backend, const char *path,
    const struct store_options *opt, struct gh_error *err)
{
	const struct store_backend *be;
	struct store_options o;
	struct store *st = NULL;

	if (backend == NULL)
		backend = STORE_BACKEND_DEFAULT;
	memset(&o, 0, sizeof(o));
	if (opt != NULL)
		o = *opt;
	if (o.so_map_size == 0)
		o.so_map_size = STORE_MAP_SIZE_DEFAULT;
	be = store_backend_find(backend);
	if (be == NULL) {
		gh_error_set(err, "store_backend",
		    "unknown session store backend \"%s\"", backend);
		goto fail;
	}
	if (path == NULL || *path == '\0') {
		gh_error_set(err, "store_path", "no session store path");
		goto fail;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		gh_error_set(err, "store_open", "out of memory");
		goto fail;
	}
	st->st_be = be;
	st->st_h = be->open(path, &o, err);
	if (st->st_h == NULL)
		goto fail;
	return st;
fail:
	free(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->st_be->close(st->st_h);
	st->st_h = NULL;
	free(st);
}

/* The metrics count each call by the result below. */
_Static_assert(STORE_OK == 0 && STORE_NOTFOUND == 1 && STORE_FULL == 2 &&
        STORE_ERR == 3 && STORE_UNAVAIL == 4 && STORE_BUSY == 6,
    "metrics.h numbers the store results so");

int
store_shared(const struct store *st)
{
	return st->st_be->shared;
}

int
store_get(struct store *st, const unsigned char key[STORE_KEY_LEN], time_t now,
    int flags, store_get_fn *fn, void *arg)
{
	int rc;

	if (st->st_be->get == NULL)
		return STORE_ERR;
	rc = st->st_be->get(st->st_h, NULL, key, now, flags, fn, arg);
	metrics_store_op(METRICS_STORE_GET, rc);
	return rc;
}

int
store_put(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen)
{
	int rc;

	if (st->st_be->put == NULL)
		return STORE_ERR;
	rc = st->st_be->put(st->st_h, key, expiry, hot, hotlen, cold, coldlen);
	metrics_store_op(METRICS_STORE_PUT, rc);
	return rc;
}

int
store_replace(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen)
{
	int rc;

	if (st->st_be->replace == NULL)
		return STORE_ERR;
	rc = st->st_be->replace(
	    st->st_h, key, expiry, hot, hotlen, cold, coldlen);
	metrics_store_op(METRICS_STORE_PUT, rc);
	return rc;
}

int
store_put_hot(struct store *st, const unsigned char key[STORE_KEY_LEN],
    const void *hot, size_t hotlen)
{
	int rc;

	if (st->st_be->put_hot == NULL)
		return STORE_ERR;
	rc = st->st_be->put_hot(st->st_h, key, hot, hotlen);
	metrics_store_op(METRICS_STORE_PUT_HOT, rc);
	return rc;
}

int
store_del(struct store *st, const unsigned char key[STORE_KEY_LEN])
{
	int rc;

	if (st->st_be->del == NULL)
		return STORE_ERR;
	rc = st->st_be->del(st->st_h, key);
	metrics_store_op(METRICS_STORE_DELETE, rc);
	return rc;
}

int
store_sweep(struct store *st, time_t now, size_t max, size_t *deleted)
{
	size_t n = 0;
	int rc;

	rc = st->st_be->sweep(st->st_h, now, max, &n);
	metrics_store_op(METRICS_STORE_SWEEP, rc);
	if (deleted != NULL)
		*deleted = n;
	return rc;
}

long
store_count(struct store *st)
{
	return st->st_be->count != NULL ? st->st_be->count(st->st_h) : -1;
}

struct store_reader *
store_reader_new(struct store *st, struct event_base *base)
{
	struct store_reader *rd;

	rd = calloc(1, sizeof(*rd));
	if (rd == NULL)
		return NULL;
	rd->sr_store = st;
	rd->sr_h = st->st_be->reader_new(st->st_h, base);
	if (rd->sr_h == NULL) {
		free(rd);
		return NULL;
	}
	return rd;
}

void
store_reader_free(struct store_reader *rd)
{
	if (rd == NULL)
		return;
	rd->sr_store->st_be->reader_free(rd->sr_store->st_h, rd->sr_h);
	rd->sr_h = NULL;
	free(rd);
}

int
store_reader_get(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t now, int flags,
    store_get_fn *fn, void *arg)
{
	struct store *st = rd->sr_store;
	int rc;

	if (st->st_be->get == NULL)
		return STORE_ERR;
	rc = st->st_be->get(st->st_h, rd->sr_h, key, now, flags, fn, arg);
	metrics_store_op(METRICS_STORE_GET, rc);
	return rc;
}

int
store_reader_async(const struct store_reader *rd)
{
	return rd != NULL && rd->sr_store->st_be->async_get != NULL;
}

/* An asynchronous call's result when it came at once; a pending one is
 * counted by the backend when its answer comes. */
static int
store_counted(enum metrics_store_op op, int rc)
{
	if (rc != STORE_PENDING)
		metrics_store_op(op, rc);
	return rc;
}

/*
 * The asynchronous calls: a backend without async entries answers through
 * its synchronous ones, at once, so LMDB's path stays what it was.
 */
int
store_async_get(struct store_reader *rd, const unsigned char key[STORE_KEY_LEN],
    time_t now, int flags, store_get_fn *fn, store_done_fn *done, void *arg,
    struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_get == NULL)
		return store_reader_get(rd, key, now, flags, fn, arg);
	return store_counted(METRICS_STORE_GET,
	    st->st_be->async_get(
	        st->st_h, rd->sr_h, key, now, flags, fn, done, arg, op));
}

int
store_async_put(struct store_reader *rd, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen, store_done_fn *done, void *arg, struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_put == NULL)
		return store_put(st, key, expiry, hot, hotlen, cold, coldlen);
	return store_counted(METRICS_STORE_PUT,
	    st->st_be->async_put(st->st_h, rd->sr_h, key, expiry, hot, hotlen,
	        cold, coldlen, done, arg, op));
}

int
store_async_replace(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t expiry, const void *hot,
    size_t hotlen, const void *cold, size_t coldlen, store_done_fn *done,
    void *arg, struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_replace == NULL)
		return store_replace(
		    st, key, expiry, hot, hotlen, cold, coldlen);
	return store_counted(METRICS_STORE_PUT,
	    st->st_be->async_replace(st->st_h, rd->sr_h, key, expiry, hot,
	        hotlen, cold, coldlen, done, arg, op));
}

int
store_async_put_hot(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], const void *hot, size_t hotlen,
    store_done_fn *done, void *arg, struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_put_hot == NULL)
		return store_put_hot(st, key, hot, hotlen);
	return store_counted(METRICS_STORE_PUT_HOT,
	    st->st_be->async_put_hot(
	        st->st_h, rd->sr_h, key, hot, hotlen, done, arg, op));
}

int
store_async_del(struct store_reader *rd, const unsigned char key[STORE_KEY_LEN],
    store_done_fn *done, void *arg, struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_del == NULL)
		return store_del(st, key);
	return store_counted(METRICS_STORE_DELETE,
	    st->st_be->async_del(st->st_h, rd->sr_h, key, done, arg, op));
}

int
store_async_lock(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN],
    const unsigned char owner[STORE_OWNER_LEN], int ttl_ms, store_done_fn *done,
    void *arg, struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_lock == NULL)
		return STORE_OK;
	return store_counted(METRICS_STORE_LOCK,
	    st->st_be->async_lock(
	        st->st_h, rd->sr_h, key, owner, ttl_ms, done, arg, op));
}

int
store_async_unlock(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN],
    const unsigned char owner[STORE_OWNER_LEN], store_done_fn *done, void *arg,
    struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_unlock == NULL)
		return STORE_OK;
	return store_counted(METRICS_STORE_UNLOCK,
	    st->st_be->async_unlock(
	        st->st_h, rd->sr_h, key, owner, done, arg, op));
}

static int
store_tags_any(const struct store_tags *tags)
{
	int i;

	for (i = 0; tags != NULL && i < STORE_TAG_KINDS; i++)
		if (tags->stg_have[i])
			return 1;
	return 0;
}

int
store_put_tagged(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen, const struct store_tags *tags, int existing)
{
	int rc;

	if (st->st_be->put_tagged == NULL || !store_tags_any(tags))
		return (existing ? store_replace : store_put)(
		    st, key, expiry, hot, hotlen, cold, coldlen);
	rc = st->st_be->put_tagged(
	    st->st_h, key, expiry, hot, hotlen, cold, coldlen, tags, existing);
	metrics_store_op(METRICS_STORE_PUT, rc);
	return rc;
}

int
store_async_put_tagged(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t expiry, const void *hot,
    size_t hotlen, const void *cold, size_t coldlen,
    const struct store_tags *tags, int existing, store_done_fn *done, void *arg,
    struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_put_tagged == NULL || !store_tags_any(tags)) {
		if (st->st_be->async_put == NULL)
			return store_put_tagged(st, key, expiry, hot, hotlen,
			    cold, coldlen, tags, existing);
		return (existing ? store_async_replace : store_async_put)(
		    rd, key, expiry, hot, hotlen, cold, coldlen, done, arg, op);
	}
	return store_counted(METRICS_STORE_PUT,
	    st->st_be->async_put_tagged(st->st_h, rd->sr_h, key, expiry, hot,
	        hotlen, cold, coldlen, tags, existing, done, arg, op));
}

int
store_async_end_tagged(struct store_reader *rd, enum store_tag_kind kind,
    const unsigned char tag[STORE_TAG_LEN], size_t *ended, store_done_fn *done,
    void *arg, struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	*ended = 0;
	if (st->st_be->async_end_tagged != NULL)
		return store_counted(METRICS_STORE_DELETE,
		    st->st_be->async_end_tagged(
		        st->st_h, rd->sr_h, kind, tag, ended, done, arg, op));
	if (st->st_be->end_tagged == NULL)
		return STORE_ERR;
	return store_counted(METRICS_STORE_DELETE,
	    st->st_be->end_tagged(st->st_h, kind, tag, ended));
}

int
store_async_once(struct store_reader *rd,
    const unsigned char key[STORE_KEY_LEN], time_t expiry, store_done_fn *done,
    void *arg, struct store_op **op)
{
	struct store *st = rd->sr_store;

	if (op != NULL)
		*op = NULL;
	if (st->st_be->async_once != NULL)
		return store_counted(METRICS_STORE_LOCK,
		    st->st_be->async_once(
		        st->st_h, rd->sr_h, key, expiry, done, arg, op));
	if (st->st_be->once == NULL)
		return STORE_ERR;
	return store_counted(
	    METRICS_STORE_LOCK, st->st_be->once(st->st_h, key, expiry));
}

void
store_op_cancel(struct store_reader *rd, struct store_op *op)
{
	struct store *st;

	if (op == NULL)
		return;
	st = rd->sr_store;
	if (st->st_be->op_cancel != NULL)
		st->st_be->op_cancel(st->st_h, rd->sr_h, op);
}

int
store_ready(struct store_reader *rd)
{
	struct store *st;

	if (rd == NULL)
		return 0;
	st = rd->sr_store;
	return st->st_be->ready == NULL || st->st_be->ready(st->st_h, rd->sr_h);
}

int
store_scan(struct store *st, time_t now, store_scan_fn *fn, void *arg,
    size_t *deleted, struct gh_error *err)
{
	size_t n = 0;
	int rc;

	if (st->st_be->scan == NULL) {
		gh_error_set(err, "store_scan",
		    "the %s session store cannot list its records",
		    st->st_be->name);
		return STORE_ERR;
	}
	rc = st->st_be->scan(st->st_h, now, fn, arg, &n, err);
	if (deleted != NULL)
		*deleted = n;
	return rc;
}
