/* SPDX-License-Identifier: ISC */
/*
 * store_bench.c: the cost of a session lookup as the store grows, for
 * make bench.  Fills an LMDB session store through storage/store.h (one
 * store_put per record, as gateway/session.c writes them) and times
 * store_reader_get of random existing keys, the lookup every signed-in
 * request makes.
 *
 *   store_bench DIR COUNT VALUE_BYTES LOOKUPS
 *
 * DIR must not exist or be empty; it is left in place (the caller measures
 * it with du and removes it).  Keys are SHA-256-sized pseudo-random bytes
 * derived from the record's index, so any record can be looked up again
 * without keeping the keys; values are random bytes (sealed tokens do not
 * compress).  Prints one JSON object on stdout.
 */
#include <sys/stat.h>

#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "store.h"

static uint64_t
bench_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void
bench_key(uint64_t i, unsigned char key[STORE_KEY_LEN])
{
	uint64_t w;
	size_t j;

	for (j = 0; j < STORE_KEY_LEN / 8; j++) {
		w = bench_mix(i * 4 + j);
		memcpy(key + j * 8, &w, 8);
	}
}

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct gh_error e;
	struct store *st;
	struct store_reader *rd;
	struct stat sb;
	unsigned char key[STORE_KEY_LEN], *val, *got;
	char path[4096];
	size_t vlen, glen, count, lookups, i, j, found = 0;
	uint64_t r = 12345;
	time_t now = time(NULL);
	double t0, fill_s, look_s, warm_s;

	if (argc != 5)
		errx(2, "usage: store_bench DIR COUNT VALUE_BYTES LOOKUPS");
	count = strtoul(argv[2], NULL, 10);
	vlen = strtoul(argv[3], NULL, 10);
	lookups = strtoul(argv[4], NULL, 10);
	if (count == 0 || vlen == 0)
		errx(2, "COUNT and VALUE_BYTES must be positive");
	memset(&e, 0, sizeof(e));
	/* Room for a page-and-a-bit per record, whatever the value size. */
	st = store_open(NULL, argv[1],
	    (size_t)count * (vlen + 4096 + 512) + ((size_t)64 << 20), &e);
	if (st == NULL)
		errx(1, "store_open: %s", e.ge_msg);
	if ((val = malloc(vlen)) == NULL)
		err(1, "malloc");

	t0 = bench_now();
	for (i = 0; i < count; i++) {
		for (j = 0; j < vlen; j += 8) {
			uint64_t w = bench_mix(i * 1000003 + j);
			memcpy(val + j, &w, vlen - j < 8 ? vlen - j : 8);
		}
		bench_key(i, key);
		if (store_put(st, key, now + 86400, val, vlen) != STORE_OK)
			errx(1, "store_put failed at record %zu", i);
	}
	fill_s = bench_now() - t0;

	if ((rd = store_reader_new(st)) == NULL)
		errx(1, "store_reader_new failed");
	/* Warm-up: the same number of random lookups, not timed. */
	t0 = bench_now();
	for (i = 0; i < lookups; i++) {
		r = bench_mix(r);
		bench_key(r % count, key);
		if (store_reader_get(rd, key, now, &got, &glen) == STORE_OK)
			free(got);
	}
	warm_s = bench_now() - t0;
	t0 = bench_now();
	for (i = 0; i < lookups; i++) {
		r = bench_mix(r);
		bench_key(r % count, key);
		if (store_reader_get(rd, key, now, &got, &glen) == STORE_OK) {
			found += glen == vlen;
			free(got);
		}
	}
	look_s = bench_now() - t0;
	store_reader_free(rd);
	store_close(st);
	free(val);

	snprintf(path, sizeof(path), "%s/data.mdb", argv[1]);
	if (stat(path, &sb) == -1)
		err(1, "%s", path);
	printf("{\"count\": %zu, \"value_bytes\": %zu, \"lookups\": %zu, "
	       "\"found\": %zu, \"fill_s\": %.3f, \"put_us\": %.2f, "
	       "\"first_pass_ns\": %.1f, \"lookup_ns\": %.1f, "
	       "\"data_bytes\": %lld}\n",
	    count, vlen, lookups, found, fill_s, fill_s * 1e6 / (double)count,
	    warm_s * 1e9 / (double)lookups, look_s * 1e9 / (double)lookups,
	    (long long)sb.st_blocks * 512);
	return found == lookups ? 0 : 1;
}
