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

struct store *
store_open(const char *backend, const char *path, size_t map_size,
    struct gh_error *err)
{
	const struct store_backend *be;
	struct store *st = NULL;

	if (backend == NULL)
		backend = STORE_BACKEND_DEFAULT;
	if (map_size == 0)
		map_size = STORE_MAP_SIZE_DEFAULT;
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
	st->st_h = be->open(path, map_size, err);
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
_Static_assert(
    STORE_OK == 0 && STORE_NOTFOUND == 1 && STORE_FULL == 2 && STORE_ERR == 3,
    "metrics.h numbers the store results so");

int
store_get(struct store *st, const unsigned char key[STORE_KEY_LEN], time_t now,
    int flags, store_get_fn *fn, void *arg)
{
	int rc = st->st_be->get(st->st_h, NULL, key, now, flags, fn, arg);

	metrics_store_op(METRICS_STORE_GET, rc);
	return rc;
}

int
store_put(struct store *st, const unsigned char key[STORE_KEY_LEN],
    time_t expiry, const void *hot, size_t hotlen, const void *cold,
    size_t coldlen)
{
	int rc =
	    st->st_be->put(st->st_h, key, expiry, hot, hotlen, cold, coldlen);

	metrics_store_op(METRICS_STORE_PUT, rc);
	return rc;
}

int
store_put_hot(struct store *st, const unsigned char key[STORE_KEY_LEN],
    const void *hot, size_t hotlen)
{
	int rc = st->st_be->put_hot(st->st_h, key, hot, hotlen);

	metrics_store_op(METRICS_STORE_PUT_HOT, rc);
	return rc;
}

int
store_del(struct store *st, const unsigned char key[STORE_KEY_LEN])
{
	int rc = st->st_be->del(st->st_h, key);

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
store_reader_new(struct store *st)
{
	struct store_reader *rd;

	rd = calloc(1, sizeof(*rd));
	if (rd == NULL)
		return NULL;
	rd->sr_store = st;
	rd->sr_h = st->st_be->reader_new(st->st_h);
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
	int rc = st->st_be->get(st->st_h, rd->sr_h, key, now, flags, fn, arg);

	metrics_store_op(METRICS_STORE_GET, rc);
	return rc;
}
