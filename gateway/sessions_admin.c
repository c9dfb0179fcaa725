/* SPDX-License-Identifier: ISC */
/*
 * sessions_admin.c: `gatehouse -c FILE sessions list|revoke ...`: the
 * sessions of the store the configuration names, listed (never a token,
 * never the cookie) or ended.  It reaches the records only through the
 * session module's walk (session_scan over store_scan), so it works with
 * every store, beside a running gatehouse: every request reads its
 * session from the store, so a deleted one is signed out at its next
 * request.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/config.h"
#include "core/error.h"
#include "session/identity.h"
#include "session/session.h"
#include "sessions_admin.h"
#include "store.h"

#define ADMIN_ID_SHOWN 12 /* hex digits of the key shown, at least */
#define ADMIN_ID_MIN 4    /* hex digits --id must give */
#define ADMIN_ID_HEX (2 * SESSION_STORE_KEY_LEN)

/* What selects sessions: list's --sub, or one of revoke's selectors. */
enum admin_sel { SEL_ALL, SEL_SUB, SEL_SID, SEL_ID };

/* One session to list, copied out of the walk. */
struct admin_row {
	char ar_hex[ADMIN_ID_HEX + 1];
	char *ar_sub;
	char *ar_name;
	char *ar_sid; /* NULL when the claims have none */
	int64_t ar_created;
	int64_t ar_last_seen;
	int64_t ar_expires;
};

struct admin_ctx {
	enum admin_sel ac_sel;
	const char *ac_value; /* --sub, --sid, or --id in lower case */
	int ac_delete;        /* revoke: delete what matches */
	size_t ac_matched;
	struct admin_row *ac_rows; /* list */
	size_t ac_n, ac_cap;
};

void
sessions_admin_usage(FILE *f)
{
	fprintf(f,
	    "       gatehouse -c FILE sessions list [--sub SUB] [--json]\n"
	    "       gatehouse -c FILE sessions revoke --sub SUB | --sid SID | "
	    "--id ID | --all\n");
}

static void
admin_key_hex(const unsigned char *key, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < SESSION_STORE_KEY_LEN; i++) {
		out[2 * i] = hex[key[i] >> 4];
		out[2 * i + 1] = hex[key[i] & 0xf];
	}
	out[ADMIN_ID_HEX] = '\0';
}

/* Whether si is one the selector names.  Only live sessions count: an
 * ended one is no session to gatehouse, and the sweep removes it. */
static int
admin_match(
    const struct admin_ctx *ac, const struct session_info *si, const char *hex)
{
	if (!si->si_live)
		return 0;
	switch (ac->ac_sel) {
	case SEL_ALL:
		return 1;
	case SEL_SUB:
		return strcmp(si->si_sub, ac->ac_value) == 0;
	case SEL_SID:
		return si->si_sid != NULL &&
		    strcmp(si->si_sid, ac->ac_value) == 0;
	case SEL_ID:
		return strncmp(hex, ac->ac_value, strlen(ac->ac_value)) == 0;
	}
	return 0;
}

static int
admin_row_add(
    struct admin_ctx *ac, const struct session_info *si, const char *hex)
{
	struct admin_row *rows, *r;
	size_t cap;

	if (ac->ac_n == ac->ac_cap) {
		cap = ac->ac_cap == 0 ? 32 : 2 * ac->ac_cap;
		rows = reallocarray(ac->ac_rows, cap, sizeof(*rows));
		if (rows == NULL)
			return -1;
		ac->ac_rows = rows;
		ac->ac_cap = cap;
	}
	r = &ac->ac_rows[ac->ac_n];
	memset(r, 0, sizeof(*r));
	memcpy(r->ar_hex, hex, sizeof(r->ar_hex));
	r->ar_sub = strdup(si->si_sub);
	r->ar_name = strdup(si->si_name);
	r->ar_sid = si->si_sid != NULL ? strdup(si->si_sid) : NULL;
	r->ar_created = si->si_created;
	r->ar_last_seen = si->si_last_seen;
	r->ar_expires = si->si_expires;
	ac->ac_n++;
	if (r->ar_sub == NULL || r->ar_name == NULL ||
	    (si->si_sid != NULL && r->ar_sid == NULL))
		return -1;
	return 0;
}

static int
admin_scan_cb(void *arg, const struct session_info *si)
{
	struct admin_ctx *ac = arg;
	char hex[ADMIN_ID_HEX + 1];

	admin_key_hex(si->si_key, hex);
	if (!admin_match(ac, si, hex))
		return SESSION_SCAN_KEEP;
	ac->ac_matched++;
	if (ac->ac_delete)
		return SESSION_SCAN_DELETE;
	if (admin_row_add(ac, si, hex) == -1)
		return -1;
	return SESSION_SCAN_KEEP;
}

static void
admin_rows_free(struct admin_ctx *ac)
{
	size_t i;

	for (i = 0; i < ac->ac_n; i++) {
		free(ac->ac_rows[i].ar_sub);
		free(ac->ac_rows[i].ar_name);
		free(ac->ac_rows[i].ar_sid);
	}
	free(ac->ac_rows);
	ac->ac_rows = NULL;
	ac->ac_n = ac->ac_cap = 0;
}

static int
admin_row_cmp(const void *a, const void *b)
{
	const struct admin_row *x = a, *y = b;

	if (x->ar_created != y->ar_created)
		return x->ar_created < y->ar_created ? -1 : 1;
	return strcmp(x->ar_hex, y->ar_hex);
}

/* How many hex digits keep every listed id apart: ADMIN_ID_SHOWN, or
 * more when two keys share that many (rows sorted by key). */
static size_t
admin_id_width(struct admin_row *rows, size_t n)
{
	size_t i, k, w = ADMIN_ID_SHOWN;

	for (i = 1; i < n; i++) {
		for (k = 0; k < ADMIN_ID_HEX &&
		     rows[i].ar_hex[k] == rows[i - 1].ar_hex[k];
		     k++)
			;
		if (k + 1 > w)
			w = k + 1 < ADMIN_ID_HEX ? k + 1 : ADMIN_ID_HEX;
	}
	return w;
}

static int
admin_hex_cmp(const void *a, const void *b)
{
	return strcmp(((const struct admin_row *)a)->ar_hex,
	    ((const struct admin_row *)b)->ar_hex);
}

/* A claim's text for a tab-separated line: control characters (C0, DEL
 * and C1, which a terminal may act on) and tabs become '?'.  The claims
 * are the provider's and the user's words: they must not move the
 * columns or drive the terminal. */
static void
admin_put_text(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0') {
		fputc('-', f);
		return;
	}
	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			fputc('?', f);
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fputc('?', f);
			p++;
		} else
			fputc(*p, f);
	}
}

static int
admin_print_text(struct admin_row *rows, size_t n, size_t w)
{
	char c[32], l[32], e[32];
	size_t i;

	for (i = 0; i < n; i++) {
		identity_iso_time(rows[i].ar_created, c, sizeof(c));
		identity_iso_time(rows[i].ar_last_seen, l, sizeof(l));
		identity_iso_time(rows[i].ar_expires, e, sizeof(e));
		printf("%.*s\t", (int)w, rows[i].ar_hex);
		admin_put_text(stdout, rows[i].ar_sub);
		fputc('\t', stdout);
		admin_put_text(stdout, rows[i].ar_name);
		printf("\t%s\t%s\t%s\n", c, l, e);
	}
	return fflush(stdout) == 0 ? 0 : -1;
}

static int
admin_print_json(struct admin_row *rows, size_t n, size_t w)
{
	json_t *arr, *o;
	char c[32], l[32], e[32];
	char *text;
	size_t i;
	int rc = -1;

	arr = json_array();
	if (arr == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		identity_iso_time(rows[i].ar_created, c, sizeof(c));
		identity_iso_time(rows[i].ar_last_seen, l, sizeof(l));
		identity_iso_time(rows[i].ar_expires, e, sizeof(e));
		o = json_pack("{s:s#,s:s,s:s,s:o,s:s,s:s,s:s}", "id",
		    rows[i].ar_hex, (int)w, "sub", rows[i].ar_sub, "name",
		    rows[i].ar_name, "sid",
		    rows[i].ar_sid != NULL ? json_string(rows[i].ar_sid)
		                           : json_null(),
		    "created", c, "last_seen", l, "expires", e);
		if (o == NULL || json_array_append_new(arr, o) == -1)
			goto done;
	}
	text = json_dumps(arr, JSON_INDENT(2));
	if (text == NULL)
		goto done;
	printf("%s\n", text);
	free(text);
	rc = fflush(stdout) == 0 ? 0 : -1;
done:
	json_decref(arr);
	return rc;
}

/*
 * An LMDB store that is not there is a wrong path, not an empty store:
 * say so, rather than create one (opening it would).  0, or -1 said.
 */
static int
admin_store_exists(const char *file, const struct config *cfg)
{
	char path[4096];
	struct stat st;

	if (strcmp(store_backend_for(cfg->cf_session_store), "lmdb") != 0)
		return 0;
	if (stat(cfg->cf_session_store, &st) == -1 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: session_store %s: no such directory\n",
		    file, cfg->cf_session_store);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/data.mdb", cfg->cf_session_store);
	if (stat(path, &st) == -1) {
		fprintf(stderr,
		    "%s: session_store %s: no session store there (%s)\n", file,
		    cfg->cf_session_store, strerror(errno));
		return -1;
	}
	return 0;
}

/* Walk the store with ac; 0, or 1 said on stderr. */
static int
admin_walk(const char *file, const struct config *cfg, struct admin_ctx *ac,
    size_t *deleted)
{
	struct gh_error err;
	enum session_result r;

	memset(&err, 0, sizeof(err));
	r = session_scan(cfg, time(NULL), admin_scan_cb, ac, deleted, &err);
	if (r == SESSION_OK)
		return 0;
	fprintf(stderr, "%s: session_store: %s\n", file,
	    err.ge_msg[0] != '\0' ? err.ge_msg : "out of memory");
	return 1;
}

static int
admin_list(
    const char *file, const struct config *cfg, struct admin_ctx *ac, int json)
{
	size_t deleted, w;
	int rc;

	rc = admin_walk(file, cfg, ac, &deleted);
	if (rc != 0)
		return rc;
	w = ADMIN_ID_SHOWN;
	if (ac->ac_n > 0) { /* no rows: no array, which qsort may not get */
		qsort(
		    ac->ac_rows, ac->ac_n, sizeof(*ac->ac_rows), admin_hex_cmp);
		w = admin_id_width(ac->ac_rows, ac->ac_n);
		qsort(
		    ac->ac_rows, ac->ac_n, sizeof(*ac->ac_rows), admin_row_cmp);
	}
	rc = json ? admin_print_json(ac->ac_rows, ac->ac_n, w)
	          : admin_print_text(ac->ac_rows, ac->ac_n, w);
	if (rc == -1) {
		fprintf(stderr, "%s: cannot write the list\n", file);
		return 1;
	}
	return 0;
}

/*
 * revoke.  An --id prefix that names several sessions ends none: the
 * command refuses and says how many it matched (a longer prefix picks
 * one), since ending the wrong person's session cannot be undone; so the
 * walk first counts, then deletes.
 */
static int
admin_revoke(const char *file, const struct config *cfg, struct admin_ctx *ac)
{
	size_t deleted = 0;
	int rc;

	if (ac->ac_sel == SEL_ID) {
		rc = admin_walk(file, cfg, ac, &deleted);
		if (rc != 0)
			return rc;
		if (ac->ac_matched == 0) {
			fprintf(stderr, "%s: no session has the id %s\n", file,
			    ac->ac_value);
			return 1;
		}
		if (ac->ac_matched > 1) {
			fprintf(stderr,
			    "%s: the id %s matches %zu sessions; none was "
			    "ended: give more of the id\n",
			    file, ac->ac_value, ac->ac_matched);
			return 1;
		}
		admin_rows_free(ac);
		ac->ac_matched = 0;
	}
	ac->ac_delete = 1;
	rc = admin_walk(file, cfg, ac, &deleted);
	/* Said even after a failure: those were ended all the same. */
	if (rc == 0 || deleted > 0)
		printf(
		    "%zu session%s ended\n", deleted, deleted == 1 ? "" : "s");
	return rc;
}

/* Check --id's value and keep it in lower case (ids are shown so). 0 or
 * -1 said. */
static int
admin_id_check(const char *file, char *v)
{
	size_t i, n = strlen(v);

	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)v[i]))
			break;
		v[i] = (char)tolower((unsigned char)v[i]);
	}
	if (i < n || n < ADMIN_ID_MIN || n > ADMIN_ID_HEX) {
		fprintf(stderr,
		    "%s: --id: an id is %d to %d hex digits, as `sessions "
		    "list` shows it\n",
		    file, ADMIN_ID_MIN, ADMIN_ID_HEX);
		return -1;
	}
	return 0;
}

int
sessions_admin_main(
    const char *file, const struct config *cfg, int argc, char *argv[])
{
	struct admin_ctx ac;
	struct gh_error err;
	char *idv = NULL;
	int i, list, json = 0, nsel = 0, rc = 2;

	memset(&ac, 0, sizeof(ac));
	if (argc < 2)
		goto usage;
	list = strcmp(argv[1], "list") == 0;
	if (!list && strcmp(argv[1], "revoke") != 0)
		goto usage;
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && list) {
			json = 1;
			continue;
		}
		if (strcmp(argv[i], "--all") == 0 && !list) {
			ac.ac_sel = SEL_ALL;
			nsel++;
			continue;
		}
		if (i + 1 >= argc || argv[i + 1][0] == '\0')
			goto usage;
		if (strcmp(argv[i], "--sub") == 0)
			ac.ac_sel = SEL_SUB;
		else if (strcmp(argv[i], "--sid") == 0 && !list)
			ac.ac_sel = SEL_SID;
		else if (strcmp(argv[i], "--id") == 0 && !list)
			ac.ac_sel = SEL_ID;
		else
			goto usage;
		ac.ac_value = argv[++i];
		nsel++;
	}
	/* revoke names exactly one selector: never everything by default. */
	if (nsel > 1 || (!list && nsel == 0))
		goto usage;
	if (ac.ac_sel == SEL_ID) {
		idv = strdup(ac.ac_value);
		if (idv == NULL || admin_id_check(file, idv) == -1) {
			rc = 1;
			goto done;
		}
		ac.ac_value = idv;
	}
	rc = 1;
	if (admin_store_exists(file, cfg) == -1)
		goto done;
	memset(&err, 0, sizeof(err));
	if (session_store_open(cfg, &err) == -1) {
		fprintf(stderr, "%s: %s\n", file, err.ge_msg);
		goto done;
	}
	rc = list ? admin_list(file, cfg, &ac, json)
	          : admin_revoke(file, cfg, &ac);
	session_shutdown();
	goto done;
usage:
	fprintf(stderr, "usage:\n");
	sessions_admin_usage(stderr);
done:
	admin_rows_free(&ac);
	free(idv);
	return rc;
}
