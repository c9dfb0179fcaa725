/* SPDX-License-Identifier: ISC */
/*
 * lmdb_raw.h: direct LMDB access to a session store's files, for tests that
 * look at or damage what storage/store_lmdb.c wrote.  Only while the store
 * is not open in this process: LMDB does not expect one process to open an
 * environment twice.
 */
#ifndef GATEHOUSE_TEST_LMDB_RAW_H
#define GATEHOUSE_TEST_LMDB_RAW_H

#include <lmdb.h>

/*
 * The environment at path (map size map_size) with a transaction on its
 * main database in *txn, *dbi; read-only when rdonly.  The caller ends the
 * transaction, then closes the environment.  NULL when it cannot be opened.
 */
static inline MDB_env *
test_lmdb_open(
    const char *path, size_t map_size, MDB_txn **txn, MDB_dbi *dbi, int rdonly)
{
	MDB_env *env = NULL;

	if (mdb_env_create(&env) != 0)
		return NULL;
	mdb_env_set_mapsize(env, map_size);
	if (mdb_env_open(env, path, MDB_NOTLS, 0600) != 0 ||
	    mdb_txn_begin(env, NULL, rdonly ? MDB_RDONLY : 0, txn) != 0) {
		mdb_env_close(env);
		return NULL;
	}
	if (mdb_dbi_open(*txn, NULL, 0, dbi) != 0) {
		mdb_txn_abort(*txn);
		mdb_env_close(env);
		return NULL;
	}
	return env;
}

/* Entries in the store's database at path (a record's two parts count as
 * two), or -1. */
static inline long
test_lmdb_entries(const char *path, size_t map_size)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat ms;
	long n = -1;

	env = test_lmdb_open(path, map_size, &txn, &dbi, 1);
	if (env == NULL)
		return -1;
	if (mdb_stat(txn, dbi, &ms) == 0)
		n = (long)ms.ms_entries;
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return n;
}

#endif
