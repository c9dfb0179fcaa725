/* SPDX-License-Identifier: ISC */
/*
 * store_bench.c: the cost of a session lookup as the store grows, for
 * make bench.
 *
 *   store_bench DIR COUNT LOOKUPS
 *   store_bench --raw HOT[:COLD] DIR COUNT LOOKUPS
 *
 * The first form fills a session store at DIR/sessions through the real
 * write path (session_new, session_set_claims, session_set_tokens,
 * session_save: one commit per session, both parts) with COUNT sessions
 * shaped like bench/fast_op.mjs's sign-ins (the same claims, an identity
 * block built from them, Entra-sized access, refresh and ID tokens), then
 * times, over random existing sessions:
 *   get_ns         the raw store lookup: store_reader_get of the hot part,
 *                  copied out by the callback (what the store costs);
 *   load_ns        session_load from the cookie value, as oidc_signed_in
 *                  calls it for every signed-in request: base64url decode,
 *                  SHA-256 of the id, the lookup through the worker's
 *                  reader, the one copy of the identity block, the time
 *                  checks, session_free; no claims parsing, no decryption
 *                  (what a request on an `allow authenticated` route pays);
 *   cold_get_ns    the raw lookup of both parts (STORE_COLD), what the
 *                  lazy cold read adds costs the store;
 *   claims_ns      session_load then session_claims (the lazy cold read
 *                  and the JSON parse: a route with criteria, /.auth/me);
 *   active_ns      session_load as load_ns, but over ACTIVE sessions only
 *                  (STORE_BENCH_ACTIVE, 1000 by default), spread at random
 *                  through the store: the users signed in and active now
 *                  among all the sessions the store keeps (idle ones
 *                  included), which is what a gateway's lookups look like
 *                  as its store grows.  load_ns is the other extreme: every
 *                  lookup a random one of all the sessions.
 * The second form fills the store with store_put of records of HOT-byte
 * hot parts and COLD-byte (default 0) cold parts of random bytes, and times
 * get_ns only: with a small HOT, the B-tree walk without a large value.
 *
 * STORE_BENCH_ONLY=get|load|cold|claims|active in the environment times that
 * kind alone (the others print 0), for a profiler; STORE_BENCH_REUSE=1
 * skips the fill when DIR holds a store of an earlier run (its clock is
 * kept in DIR/now, so no lookup counts as a touch), to profile a big store
 * without filling it again.
 *
 * Inputs (keys, cookies) are computed before the clock starts and read in
 * order, so the loop pays no cache miss of its own.  Every page of the
 * store is touched once before timing (a running gateway has long
 * faulted in the pages it uses); the timed lookups then run in ROUNDS
 * interleaved rounds (each kind in turn, fresh random sessions each time)
 * and each figure is the median round.  DIR must not exist or be empty; it
 * is left in place (the caller measures it with du and removes it).
 * Prints one JSON object on stdout.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/error.h"
#include "session/session.h"
#include "store.h"

#define ROUNDS 5
#define COOKIE_LEN (SESSION_ID_B64_LEN + 1)

struct bench_copy {
	unsigned char bc_buf[65536];
	size_t bc_hot, bc_cold;
};

static uint64_t
bench_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Session i's id: 32 pseudo-random bytes, so the bench needs no table. */
static void
bench_id(uint64_t i, unsigned char id[32])
{
	uint64_t w;
	size_t j;

	for (j = 0; j < 4; j++) {
		w = bench_mix(i * 4 + j);
		memcpy(id + j * 8, &w, 8);
	}
}

/* Session i's store key, as session.c derives it. */
static void
bench_key(uint64_t i, unsigned char key[STORE_KEY_LEN])
{
	unsigned char id[32], h[32];

	bench_id(i, id);
	if (crypto_sha256(id, sizeof(id), h) == -1)
		errx(1, "sha256");
	memcpy(key, h, STORE_KEY_LEN);
}

static void
bench_cookie(uint64_t i, char cookie[COOKIE_LEN])
{
	unsigned char id[32];
	size_t n;

	bench_id(i, id);
	if (crypto_b64url_encode(id, sizeof(id), cookie, COOKIE_LEN, &n) == -1)
		errx(1, "b64url");
}

/* n random base64url characters (tokens do not compress). */
static void
bench_b64(char *out, size_t n, uint64_t seed)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_";
	uint64_t w = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (i % 10 == 0)
			w = seed = bench_mix(seed);
		out[i] = a[w & 63];
		w >>= 6;
	}
	out[n] = '\0';
}

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The get callback: copy the parts out, as a caller that keeps them. */
static int
bench_copy_cb(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t coldlen)
{
	struct bench_copy *bc = arg;

	if (hotlen + coldlen > sizeof(bc->bc_buf))
		return -1;
	memcpy(bc->bc_buf, hot, hotlen);
	if (coldlen > 0)
		memcpy(bc->bc_buf + hotlen, cold, coldlen);
	bc->bc_hot = hotlen;
	bc->bc_cold = coldlen;
	return 0;
}

/* Touch the first and last byte of both parts (faults their pages in). */
static int
bench_touch_cb(void *arg, const unsigned char *hot, size_t hotlen,
    const unsigned char *cold, size_t coldlen)
{
	unsigned int *sum = arg;

	if (hotlen > 0)
		*sum += hot[0] + hot[hotlen - 1];
	if (coldlen > 0)
		*sum += cold[0] + cold[coldlen - 1];
	return 0;
}

/* Fill with fast_op.mjs-shaped sessions; returns the seconds it took. */
static double
bench_fill_sessions(size_t count, time_t now, const struct config *cfg)
{
	char claims[2048], user[64], oid[40], access[1700], refresh[1001],
	    idt[940];
	struct session *s;
	unsigned char id[32];
	double t0 = bench_now();
	size_t i;

	for (i = 0; i < count; i++) {
		s = session_new(now, cfg);
		if (s == NULL)
			errx(1, "session_new");
		/* The cookie and key of session i, not session_new's. */
		bench_id(i, id);
		if (crypto_sha256(id, sizeof(id), s->se_key) == -1)
			errx(1, "sha256");
		snprintf(user, sizeof(user), "user%zu@bench.example", i);
		bench_b64(oid, 36, i * 7 + 1);
		/* The ID token claims fast_op.mjs issues. */
		snprintf(claims, sizeof(claims),
		    "{\"aud\":\"bench-client\",\"iss\":\"http://127.0.0.1:"
		    "40123\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"sub\":"
		    "\"%s0123456\",\"oid\":\"%s\",\"tid\":\"bench-tenant\","
		    "\"name\":\"Bench User\",\"preferred_username\":\"%s\","
		    "\"email\":\"%s\",\"nonce\":\"%s0123456\",\"ver\":\"2.0\"}",
		    (long long)now, (long long)now, (long long)now + 3600, oid,
		    oid, user, user, oid);
		/* fast_op.mjs's token sizes: access rnd(200).rnd(800).
		 * rnd(256), refresh rnd(750), an RS256 ID token. */
		bench_b64(access, 1678, i * 3 + 1);
		access[267] = access[1335] = '.';
		bench_b64(refresh, 1000, i * 3 + 2);
		bench_b64(idt, 922, i * 3 + 3);
		if (session_set_claims(s, claims) == -1 ||
		    session_set_tokens(s, access, refresh, idt, now + 3600) ==
		        -1)
			errx(1, "session_set_*");
		if (session_save(s) != SESSION_OK)
			errx(1, "session_save failed at session %zu", i);
		session_free(s);
	}
	return bench_now() - t0;
}

static double
bench_fill_raw(
    struct store *st, size_t count, size_t bytes, size_t cold, time_t now)
{
	unsigned char key[STORE_KEY_LEN], *val;
	double t0;
	size_t i, j;
	uint64_t w;

	if ((val = malloc(bytes + cold)) == NULL)
		err(1, "malloc");
	t0 = bench_now();
	for (i = 0; i < count; i++) {
		for (j = 0; j < bytes + cold; j += 8) {
			w = bench_mix(i * 1000003 + j);
			memcpy(val + j, &w,
			    bytes + cold - j < 8 ? bytes + cold - j : 8);
		}
		bench_key(i, key);
		if (store_put(st, key, now + 86400, val, bytes, val + bytes,
		        cold) != STORE_OK)
			errx(1, "store_put failed at record %zu", i);
	}
	t0 = bench_now() - t0;
	free(val);
	return t0;
}

/* The fill's clock, kept beside the store for STORE_BENCH_REUSE. */
static void
bench_now_save(const char *dir, time_t now)
{
	char path[2048];
	FILE *f;

	snprintf(path, sizeof(path), "%s/now", dir);
	f = fopen(path, "w");
	if (f == NULL)
		err(1, "%s", path);
	fprintf(f, "%lld\n", (long long)now);
	fclose(f);
}

static int
bench_now_load(const char *dir, time_t *now)
{
	char path[2048];
	long long t;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "%s/now", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fscanf(f, "%lld", &t);
	fclose(f);
	if (n != 1)
		return -1;
	*now = (time_t)t;
	return 0;
}

/* With STORE_BENCH_ONLY set, skip every kind but that one. */
static int
bench_skip(const char *only, const char *kind)
{
	return only != NULL && strcmp(only, kind) != 0;
}

static int
bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), bench_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct gh_error e;
	struct store *st = NULL;
	struct store_reader *rd;
	struct session *s;
	struct bench_copy *bc;
	struct stat sb;
	unsigned char *keys[4];
	char *cookies[4], spath[2048], kpath[2048], dpath[4096];
	double get_ns[ROUNDS], load_ns[ROUNDS], cold_ns[ROUNDS],
	    claims_ns[ROUNDS], active_ns[ROUNDS], t0, fill_s, warm_s;
	size_t active, *act;
	size_t count, lookups, per, raw = 0, raw_cold = 0, i, j, hot_bytes,
	                            cold_bytes;
	char *end;
	size_t bad = 0;
	unsigned int sum = 0;
	uint64_t r = 12345;
	time_t now = time(NULL);
	const char *only = getenv("STORE_BENCH_ONLY");
	int k, round, reuse;

	if (argc == 6 && strcmp(argv[1], "--raw") == 0) {
		raw = strtoul(argv[2], &end, 10);
		if (*end == ':')
			raw_cold = strtoul(end + 1, NULL, 10);
		argv += 2;
		argc -= 2;
	}
	if (argc != 4)
		errx(2, "usage: store_bench [--raw BYTES] DIR COUNT LOOKUPS");
	count = strtoul(argv[2], NULL, 10);
	lookups = strtoul(argv[3], NULL, 10);
	per = lookups / ROUNDS;
	if (count == 0 || per == 0)
		errx(2, "COUNT and LOOKUPS must be positive");
	if (mkdir(argv[1], 0700) == -1 && errno != EEXIST)
		err(1, "%s", argv[1]);
	snprintf(spath, sizeof(spath), "%s/sessions", argv[1]);
	snprintf(kpath, sizeof(kpath), "%s/session.key", argv[1]);
	memset(&cfg, 0, sizeof(cfg));
	memset(&e, 0, sizeof(e));
	cfg.cf_session_store = spath;
	cfg.cf_session_key_file = kpath;
	cfg.cf_session_lifetime = 86400;
	cfg.cf_session_idle_timeout = 8 * 3600;
	/* Room for three pages a record, whatever the layout. */
	cfg.cf_session_map_size =
	    count * (raw + raw_cold + 3 * 4096) + ((size_t)64 << 20);
	reuse = getenv("STORE_BENCH_REUSE") != NULL &&
	    bench_now_load(argv[1], &now) == 0;
	if (!reuse)
		bench_now_save(argv[1], now);
	if (raw > 0) {
		st = store_open(NULL, spath, cfg.cf_session_map_size, &e);
		if (st == NULL)
			errx(1, "store_open: %s", e.ge_msg);
		fill_s =
		    reuse ? 0 : bench_fill_raw(st, count, raw, raw_cold, now);
		rd = store_reader_new(st, NULL);
	} else {
		if (session_init(&cfg, &e) == -1)
			errx(1, "session_init: %s", e.ge_msg);
		fill_s = reuse ? 0 : bench_fill_sessions(count, now, &cfg);
		rd = session_reader_new(NULL);
	}
	if (rd == NULL)
		errx(1, "no reader");
	bc = malloc(sizeof(*bc));
	if (bc == NULL)
		err(1, "malloc");

	/* Inputs of every timed lookup, random sessions, in order; the
	 * fourth set draws from the active sessions only. */
	active = getenv("STORE_BENCH_ACTIVE") != NULL
	    ? strtoul(getenv("STORE_BENCH_ACTIVE"), NULL, 10)
	    : 1000;
	if (active == 0 || active > count)
		active = count;
	act = malloc(active * sizeof(*act));
	if (act == NULL)
		err(1, "malloc");
	for (i = 0; i < active; i++) {
		r = bench_mix(r);
		act[i] = active == count ? i : r % count;
	}
	for (k = 0; k < 4; k++) {
		keys[k] = malloc(lookups * STORE_KEY_LEN);
		cookies[k] = malloc(lookups * COOKIE_LEN);
		if (keys[k] == NULL || cookies[k] == NULL)
			err(1, "malloc");
		for (i = 0; i < lookups; i++) {
			size_t n;

			r = bench_mix(r);
			n = k == 3 ? act[r % active] : r % count;
			bench_key(n, keys[k] + i * STORE_KEY_LEN);
			bench_cookie(n, cookies[k] + i * COOKIE_LEN);
		}
	}
	free(act);

	/* Fault every page in: both parts of every record, once. */
	t0 = bench_now();
	for (i = 0; i < count; i++) {
		unsigned char key[STORE_KEY_LEN];

		bench_key(i, key);
		if (store_reader_get(rd, key, now, STORE_COLD, bench_touch_cb,
		        &sum) != STORE_OK)
			bad++;
	}
	warm_s = bench_now() - t0;
	memset(bc, 0, sizeof(*bc));
	{
		unsigned char key[STORE_KEY_LEN];

		bench_key(0, key);
		if (store_reader_get(rd, key, now, STORE_COLD, bench_copy_cb,
		        bc) != STORE_OK)
			errx(1, "record 0 is missing");
	}
	/* The parts as the caller wrote them (the store adds its header). */
	hot_bytes = bc->bc_hot;
	cold_bytes = bc->bc_cold;

	memset(get_ns, 0, sizeof(get_ns));
	memset(load_ns, 0, sizeof(load_ns));
	memset(cold_ns, 0, sizeof(cold_ns));
	memset(claims_ns, 0, sizeof(claims_ns));
	memset(active_ns, 0, sizeof(active_ns));
	for (round = 0; round < ROUNDS; round++) {
		if (bench_skip(only, "get"))
			goto load;
		t0 = bench_now();
		for (i = round * per, j = i + per; i < j; i++)
			if (store_reader_get(rd, keys[0] + i * STORE_KEY_LEN,
			        now, 0, bench_copy_cb, bc) != STORE_OK)
				bad++;
		get_ns[round] = (bench_now() - t0) * 1e9 / (double)per;
	load:
		if (raw > 0)
			continue;
		if (bench_skip(only, "load"))
			goto cold;
		t0 = bench_now();
		for (i = round * per, j = i + per; i < j; i++) {
			if (session_load(rd, cookies[1] + i * COOKIE_LEN, now,
			        &cfg, &s) != SESSION_OK) {
				bad++;
				continue;
			}
			session_free(s);
		}
		load_ns[round] = (bench_now() - t0) * 1e9 / (double)per;
	cold:
		if (bench_skip(only, "cold"))
			goto claims;
		t0 = bench_now();
		for (i = round * per, j = i + per; i < j; i++)
			if (store_reader_get(rd, keys[2] + i * STORE_KEY_LEN,
			        now, STORE_COLD, bench_copy_cb, bc) != STORE_OK)
				bad++;
		cold_ns[round] = (bench_now() - t0) * 1e9 / (double)per;
	claims:
		if (bench_skip(only, "claims"))
			goto active;
		t0 = bench_now();
		for (i = round * per, j = i + per; i < j; i++) {
			if (session_load(rd, cookies[2] + i * COOKIE_LEN, now,
			        &cfg, &s) != SESSION_OK) {
				bad++;
				continue;
			}
			if (session_claims(s) == NULL)
				bad++;
			session_free(s);
		}
		claims_ns[round] = (bench_now() - t0) * 1e9 / (double)per;
	active:
		if (bench_skip(only, "active"))
			continue;
		t0 = bench_now();
		for (i = round * per, j = i + per; i < j; i++) {
			if (session_load(rd, cookies[3] + i * COOKIE_LEN, now,
			        &cfg, &s) != SESSION_OK) {
				bad++;
				continue;
			}
			session_free(s);
		}
		active_ns[round] = (bench_now() - t0) * 1e9 / (double)per;
	}

	store_reader_free(rd);
	if (raw > 0)
		store_close(st);
	else
		session_shutdown();
	snprintf(dpath, sizeof(dpath), "%s/data.mdb", spath);
	if (stat(dpath, &sb) == -1)
		err(1, "%s", dpath);
	printf("{\"mode\": \"%s\", \"count\": %zu, \"lookups\": %zu, "
	       "\"rounds\": %d, \"hot_bytes\": %zu, \"cold_bytes\": %zu, "
	       "\"fill_s\": %.3f, \"put_us\": %.2f, \"warm_ns\": %.1f, "
	       "\"get_ns\": %.1f",
	    raw > 0 ? "raw" : "sessions", count, per * ROUNDS, ROUNDS,
	    hot_bytes, cold_bytes, fill_s, fill_s * 1e6 / (double)count,
	    warm_s * 1e9 / (double)count, bench_median(get_ns, ROUNDS));
	if (raw == 0)
		printf(", \"load_ns\": %.1f, \"cold_get_ns\": %.1f, "
		       "\"claims_ns\": %.1f, \"active\": %zu, "
		       "\"active_ns\": %.1f",
		    bench_median(load_ns, ROUNDS),
		    bench_median(cold_ns, ROUNDS),
		    bench_median(claims_ns, ROUNDS), active,
		    bench_median(active_ns, ROUNDS));
	printf(", \"errors\": %zu, \"data_bytes\": %lld}\n", bad,
	    (long long)sb.st_blocks * 512);
	for (k = 0; k < 4; k++) {
		free(keys[k]);
		free(cookies[k]);
	}
	free(bc);
	(void)sum;
	return bad == 0 ? 0 : 1;
}
