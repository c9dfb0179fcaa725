/* SPDX-License-Identifier: ISC */
/*
 * oidc_flow.c: one sign-in in progress, between /.auth/login and the
 * callback.  Its state, nonce, PKCE verifier and return path travel in a
 * cookie of their own (so parallel tabs each complete), sealed with the
 * cookie key and bound to the state; the cap on pending flows per browser;
 * and the in-memory record of states already used.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/crypto.h"
#include "core/keyfile.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "session/cookie.h"

/* Seal / open a small value with the cookie key; aad binds it to a
 * context (the state).  New strings (base64url) or NULL. */
static char *
oidc_flow_seal_value(const char *aad, const void *pt, size_t len)
{
	unsigned char *sealed;
	char *out = NULL;
	size_t slen, olen, cap;

	sealed = malloc(len + CRYPTO_AEAD_OVERHEAD);
	if (sealed == NULL)
		return NULL;
	if (crypto_aead_seal(keyfile_cookie_key(), aad, strlen(aad), pt, len,
	        sealed, len + CRYPTO_AEAD_OVERHEAD, &slen) == 0) {
		cap = CRYPTO_B64URL_ENCLEN(slen) + 1;
		out = malloc(cap);
		if (out != NULL &&
		    crypto_b64url_encode(sealed, slen, out, cap, &olen) == -1) {
			free(out);
			out = NULL;
		}
	}
	free(sealed);
	return out;
}

static char *
oidc_flow_open_value(const char *aad, const char *b64, size_t *len)
{
	unsigned char *sealed = NULL, *pt = NULL;
	size_t blen = strlen(b64), slen, cap;

	cap = CRYPTO_B64URL_DECLEN(blen) + 1;
	sealed = malloc(cap);
	pt = malloc(cap + 1);
	if (sealed == NULL || pt == NULL ||
	    crypto_b64url_decode(b64, blen, sealed, cap, &slen) == -1 ||
	    crypto_aead_open(keyfile_cookie_key(), aad, strlen(aad), sealed,
	        slen, pt, cap, len) == -1) {
		free(sealed);
		free(pt);
		return NULL;
	}
	free(sealed);
	pt[*len] = '\0';
	return (char *)pt;
}

void
oidc_flow_free(struct oidc_flow *f)
{
	if (f == NULL)
		return;
	free(f->of_target);
	free(f->of_profile);
	OPENSSL_cleanse(f, sizeof(*f));
	free(f);
}

void
oidc_flow_cookie_name(const struct config *cfg, const char *state,
    time_t created, char *out, size_t size)
{
	unsigned char h[32];

	crypto_sha256(state, strlen(state), h);
	/* The time first, so names sort oldest first. */
	snprintf(out, size, "%s_flow_%08llx%02x%02x%02x%02x",
	    cfg->cf_cookie_name, (unsigned long long)created & 0xffffffffULL,
	    h[0], h[1], h[2], h[3]);
}

struct oidc_flow_search {
	const struct config *cfg;
	const char *state;
	struct oidc_flow *found;
	size_t prefix_len;
};

static void
oidc_flow_search_cb(const char *name, const char *value, void *arg)
{
	struct oidc_flow_search *fs = arg;
	struct oidc_flow *f;
	char want[96], aad[80], *pt;
	json_t *j;
	json_error_t jerr;
	size_t len;
	unsigned long long t;

	if (fs->found != NULL ||
	    sscanf(name + fs->prefix_len, "%8llx", &t) != 1)
		return;
	oidc_flow_cookie_name(
	    fs->cfg, fs->state, (time_t)t, want, sizeof(want));
	if (strcmp(want, name) != 0)
		return;
	snprintf(aad, sizeof(aad), "flow:%s", fs->state);
	pt = oidc_flow_open_value(aad, value, &len);
	if (pt == NULL)
		return;
	j = json_loadb(pt, len, 0, &jerr);
	OPENSSL_cleanse(pt, len);
	free(pt);
	f = calloc(1, sizeof(*f));
	if (j == NULL || f == NULL ||
	    !json_is_string(json_object_get(j, "n")) ||
	    !json_is_string(json_object_get(j, "v")) ||
	    !json_is_string(json_object_get(j, "r")) ||
	    !json_is_integer(json_object_get(j, "t"))) {
		json_decref(j);
		free(f);
		return;
	}
	snprintf(f->of_state, sizeof(f->of_state), "%s", fs->state);
	snprintf(f->of_nonce, sizeof(f->of_nonce), "%s",
	    json_string_value(json_object_get(j, "n")));
	snprintf(f->of_verifier, sizeof(f->of_verifier), "%s",
	    json_string_value(json_object_get(j, "v")));
	f->of_target = strdup(json_string_value(json_object_get(j, "r")));
	f->of_created = (time_t)json_integer_value(json_object_get(j, "t"));
	if (json_is_string(json_object_get(j, "p")))
		f->of_profile =
		    strdup(json_string_value(json_object_get(j, "p")));
	snprintf(f->of_cookie, sizeof(f->of_cookie), "%s", name);
	json_decref(j);
	if (f->of_target == NULL || f->of_created != (time_t)t ||
	    time(NULL) - f->of_created > OIDC_FLOW_TTL) {
		oidc_flow_free(f);
		return;
	}
	fs->found = f;
}

struct oidc_flow *
oidc_flow_find(struct request_ctx *rq, const char *state)
{
	const struct config *cfg = rq->rq_cfg;
	struct oidc_flow_search fs = {cfg, state, NULL, 0};
	char prefix[96];

	snprintf(prefix, sizeof(prefix), "%s_flow_", cfg->cf_cookie_name);
	fs.prefix_len = strlen(prefix);
	cookie_foreach(rq->rq_hreq, prefix, oidc_flow_search_cb, &fs);
	return fs.found;
}

/* Pending flows of this browser, oldest first, to keep within the cap. */
struct oidc_flow_list {
	char names[32][96];
	int n;
};

static void
oidc_flow_list_cb(const char *name, const char *value, void *arg)
{
	struct oidc_flow_list *fl = arg;

	(void)value;
	if (fl->n < 32)
		snprintf(fl->names[fl->n++], sizeof(fl->names[0]), "%s", name);
}

static int
oidc_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

void
oidc_flow_cap(struct request_ctx *rq, struct resp_hdrs *out)
{
	const struct config *cfg = rq->rq_cfg;
	struct oidc_flow_list fl;
	char prefix[96];
	int i, drop;

	fl.n = 0;
	snprintf(prefix, sizeof(prefix), "%s_flow_", cfg->cf_cookie_name);
	cookie_foreach(rq->rq_hreq, prefix, oidc_flow_list_cb, &fl);
	drop = fl.n - (cfg->cf_max_pending_logins - 1);
	if (drop <= 0)
		return;
	qsort(fl.names, fl.n, sizeof(fl.names[0]), oidc_name_cmp);
	for (i = 0; i < drop; i++)
		cookie_set(out, cfg, fl.names[i], "", 0,
		    cfg->cf_response_mode == OIDC_RESPONSE_FORM_POST
		        ? COOKIE_NONE
		        : COOKIE_LAX);
}

char *
oidc_flow_seal(const struct oidc_flow *f)
{
	char aad[80], *json, *sealed;
	json_t *j;

	j = json_pack("{s:s,s:s,s:s,s:I}", "n", f->of_nonce, "v",
	    f->of_verifier, "r", f->of_target, "t", (json_int_t)f->of_created);
	if (j == NULL)
		return NULL;
	if (f->of_profile != NULL &&
	    json_object_set_new(j, "p", json_string(f->of_profile)) == -1) {
		json_decref(j);
		return NULL;
	}
	json = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (json == NULL)
		return NULL;
	snprintf(aad, sizeof(aad), "flow:%s", f->of_state);
	sealed = oidc_flow_seal_value(aad, json, strlen(json));
	OPENSSL_cleanse(json, strlen(json));
	free(json);
	return sealed;
}

/*
 * Used sign-in states, in memory and shared by the workers.  A state is
 * single use: a second callback with it is refused.  This needs no disk
 * (it saved one fsync'd commit per sign-in): the window is the flow's ten
 * minutes, and a replay after a restart still fails at the provider, where
 * the code is single use too.  Full slots evict the entry nearest expiry.
 */
#define OIDC_FLOW_USED_SLOTS 65536
#define OIDC_FLOW_USED_PROBE 32
static pthread_mutex_t oidc_flow_used_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned char su_hash[16];
	time_t su_until;
} oidc_flow_used[OIDC_FLOW_USED_SLOTS];

int
oidc_flow_state_consume(const char *state, time_t now, time_t until)
{
	unsigned char h[32];
	size_t i, idx, victim;
	uint32_t start;
	int rc = 0;

	if (crypto_sha256(state, strlen(state), h) == -1)
		return -1;
	memcpy(&start, h, sizeof(start));
	pthread_mutex_lock(&oidc_flow_used_mu);
	victim = start % OIDC_FLOW_USED_SLOTS;
	for (i = 0; i < OIDC_FLOW_USED_PROBE; i++) {
		idx = (start + i) % OIDC_FLOW_USED_SLOTS;
		if (oidc_flow_used[idx].su_until > now &&
		    memcmp(oidc_flow_used[idx].su_hash, h, 16) == 0) {
			rc = 1;
			goto done;
		}
		if (oidc_flow_used[idx].su_until <
		    oidc_flow_used[victim].su_until)
			victim = idx;
	}
	memcpy(oidc_flow_used[victim].su_hash, h, 16);
	oidc_flow_used[victim].su_until = until;
done:
	pthread_mutex_unlock(&oidc_flow_used_mu);
	return rc;
}
