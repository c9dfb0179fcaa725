/* SPDX-License-Identifier: ISC */
/*
 * path_test.c: policies/path.c, table-driven, plus the hostile-input corpus
 * in tests/corpus/path/: each file holds a raw path on its first line
 * and the expected outcome on the second, "refuse" or "= /normalised".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "path.h"
#include "tap.h"

#define CORPUS_DIR "tests/corpus/path"

/* want NULL: refused. */
static const struct {
	const char *raw;
	const char *want;
} cases[] = {
    /* plain paths */
    {"/", "/"},
    {"/a", "/a"},
    {"/a/b/c", "/a/b/c"},
    {"/a/b/", "/a/b/"},
    {"/admin", "/admin"},
    {"/ADMIN", "/ADMIN"},
    {"/a-b_c.d~e", "/a-b_c.d~e"},
    {"/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b"},
    /* percent-decoding of unreserved characters only */
    {"/%61dmin", "/admin"},
    {"/%41DMIN", "/ADMIN"},
    {"/%7e%2D%5f%2e", "/~-_."},
    {"/a%20b", "/a%20b"},
    {"/a%3bb", "/a%3Bb"},
    {"/a%3fb", "/a%3Fb"},
    {"/a%25b", "/a%25b"},
    {"/%e2%82%ac", "/%E2%82%AC"},
    {"/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9"},
    {"/%F0%9F%98%80", "/%F0%9F%98%80"},
    {"/%ef%bf%bd", "/%EF%BF%BD"},
    {"/%30%39", "/09"},
    /* duplicate slashes */
    {"//admin", "/admin"},
    {"///admin//x", "/admin/x"},
    {"/admin//", "/admin/"},
    {"//", "/"},
    /* dot segments */
    {"/./admin", "/admin"},
    {"/admin/.", "/admin/"},
    {"/admin/./x", "/admin/x"},
    {"/admin/../admin", "/admin"},
    {"/a/b/../c", "/a/c"},
    {"/a/b/..", "/a/"},
    {"/a/..", "/"},
    {"/a/../", "/"},
    {"/a/b/../../c", "/c"},
    {"/a/./b/./", "/a/b/"},
    {"/public/%2e%2e/admin", "/admin"},
    {"/public/%2E%2E/admin", "/admin"},
    {"/public/.%2e/admin", "/admin"},
    {"/public/%2e./admin", "/admin"},
    {"/a/%2e/b", "/a/b"},
    {"/a/...", "/a/..."},
    {"/a/.../b", "/a/.../b"},
    {"/a/..b", "/a/..b"},
    {"/a/b..", "/a/b.."},
    {"/.well-known/x", "/.well-known/x"},
    {"/a/.hidden", "/a/.hidden"},
    /* ';' parameters */
    {"/admin;x", "/admin;x"},
    {"/admin;x/y", "/admin;x/y"},
    {"/a;b;c/d", "/a;b;c/d"},
    {"/admin/..;/secret", NULL},
    {"/admin/.;x/secret", NULL},
    {"/admin/..;x", NULL},
    {"/;x/admin", NULL},
    {"/admin/;", NULL},
    {"/admin/%2e%2e;/secret", NULL},
    /* above the root */
    {"/..", NULL},
    {"/../admin", NULL},
    {"/a/../..", NULL},
    {"/a/b/../../..", NULL},
    {"/%2e%2e/admin", NULL},
    {"/%2E%2E", NULL},
    {"/./../a", NULL},
    /* encoded separators */
    {"/public/..%2fadmin", NULL},
    {"/a%2fb", NULL},
    {"/a%2Fb", NULL},
    {"/a%5cb", NULL},
    {"/a%5Cb", NULL},
    {"/a\\b", NULL},
    {"/..\\admin", NULL},
    {"/\\", NULL},
    /* NUL and control characters */
    {"/admin%00", NULL},
    {"/admin%00.html", NULL},
    {"/a\tb", NULL},
    {"/a\rb", NULL},
    {"/a\nb", NULL},
    {"/a%09b", NULL},
    {"/a%0d%0aSet-Cookie:x", NULL},
    {"/a%0A", NULL},
    {"/a%1f", NULL},
    {"/a%7f", NULL},
    {"/a\x7f", NULL},
    {"/a\x01", NULL},
    /* bad escapes */
    {"/a%", NULL},
    {"/a%4", NULL},
    {"/a%zz", NULL},
    {"/a%G1", NULL},
    {"/a%1G", NULL},
    {"/%%32%65", NULL},
    /* raw non-ASCII and bad characters */
    {"/caf\xc3\xa9", NULL},
    {"/\xff", NULL},
    {"/a b", NULL},
    {"/a?b", NULL},
    {"/a#b", NULL},
    /* overlong and ill-formed UTF-8 in escapes */
    {"/%c0%af", NULL},
    {"/%C0%AE%C0%AE/admin", NULL},
    {"/%c1%9c", NULL},
    {"/%e0%80%af", NULL},
    {"/%f0%80%80%af", NULL},
    {"/%ed%a0%80", NULL},
    {"/%f4%90%80%80", NULL},
    {"/%f5%80%80%80", NULL},
    {"/%80", NULL},
    {"/%c3", NULL},
    {"/%c3/x", NULL},
    {"/%c3a", NULL},
    {"/%e2%82", NULL},
    {"/%e2%82%41", NULL},
    {"/%ff", NULL},
    /* not a path */
    {"", NULL},
    {"admin", NULL},
    {"*", NULL},
    {"http://x/admin", NULL},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* A printable copy of s for a test name (control bytes as \xNN). */
static const char *
esc(const char *s)
{
	static char buf[4][128];
	static int k;
	char *b = buf[k++ & 3];
	size_t n = 0;

	for (; *s != '\0' && n + 5 < sizeof(buf[0]); s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			n += (size_t)snprintf(b + n, 5, "\\x%02x", c);
		else
			b[n++] = (char)c;
	}
	b[n] = '\0';
	return b;
}

static void
test_table(void)
{
	struct gh_error err;
	char out[256];
	size_t i;
	int rc;

	for (i = 0; i < NCASES; i++) {
		memset(&err, 0, sizeof(err));
		rc = path_normalise(cases[i].raw, 0, out, sizeof(out), &err);
		if (cases[i].want == NULL) {
			if (!ok(rc == -1, "refuse \"%s\"", esc(cases[i].raw)))
				printf("#   got \"%s\"\n", esc(out));
			else if (err.ge_msg[0] == '\0')
				ok(0, "refusal of \"%s\" has a message",
				    esc(cases[i].raw));
		} else {
			if (rc == -1)
				printf("#   error: %s\n", err.ge_msg);
			is_str(rc == 0 ? out : NULL, cases[i].want,
			    "\"%s\" = \"%s\"", esc(cases[i].raw),
			    cases[i].want);
		}
	}
}

static void
test_idempotent(void)
{
	char a[256], b[256];
	size_t i;
	int bad = 0;

	/* Normalising a normalised path changes nothing. */
	for (i = 0; i < NCASES; i++) {
		if (cases[i].want == NULL)
			continue;
		if (path_normalise(cases[i].want, 0, a, sizeof(a), NULL) ==
		        -1 ||
		    strcmp(a, cases[i].want) != 0)
			bad++;
		if (path_normalise(a, 0, b, sizeof(b), NULL) == -1 ||
		    strcmp(a, b) != 0)
			bad++;
	}
	is_int(bad, 0, "normalisation is idempotent");
}

static void
test_misc(void)
{
	struct gh_error err;
	char out[64], small[4];
	char *s;

	is_int(path_normalise(
	           "/ADMIN/%c3%a9/X", PATH_FOLD_CASE, out, sizeof(out), NULL),
	    0, "fold case");
	is_str(out, "/admin/%C3%A9/x", "fold keeps escapes upper case");
	is_int(path_normalise("/abcd", 0, small, sizeof(small), &err), -1,
	    "too long for the buffer");
	is_str(small, "", "buffer emptied on error");
	is_int(path_normalise("/abc", 0, small, sizeof(small), &err), -1,
	    "needs room for the NUL");
	is_int(path_normalise(NULL, 0, out, sizeof(out), &err), -1, "NULL");
	s = path_normalise_dup("/a//b/../c", 0, &err);
	is_str(s, "/a/c", "dup variant");
	free(s);
	s = path_normalise_dup("/a%2fb", 0, &err);
	ok(s == NULL, "dup variant refuses");
	is_str(err.ge_code, "path_encoded_slash", "error code names it");
	free(s);
	s = path_normalise_dup("/..", 0, &err);
	ok(s == NULL && strcmp(err.ge_code, "path_above_root") == 0,
	    "above root code");
	free(s);
}

/* The next line of *text (its newline dropped), or NULL at the end. */
static char *
corpus_line(char **text)
{
	char *line = *text, *nl;

	if (line == NULL || line[0] == '\0')
		return NULL;
	nl = strchr(line, '\n');
	if (nl != NULL)
		*nl++ = '\0';
	*text = nl;
	return line;
}

static void
check_file(const char *name, char *buf, size_t len, void *arg)
{
	char *raw, *want, *rest = buf, out[1024];
	int *n = arg, rc;

	(void)len;
	raw = corpus_line(&rest);
	want = corpus_line(&rest);
	if (!ok(raw != NULL && want != NULL, "%s has two lines", name))
		return;
	(*n)++;
	rc = path_normalise(raw, 0, out, sizeof(out), NULL);
	if (strcmp(want, "refuse") == 0)
		ok(rc == -1, "corpus %s: refused", name);
	else if (!ok(strncmp(want, "= ", 2) == 0,
	             "corpus %s: outcome is \"refuse\" or \"= PATH\"", name))
		return;
	else
		is_str(rc == 0 ? out : NULL, want + 2, "corpus %s", name);
}

static void
test_corpus(void)
{
	int n = 0;

	if (!ok(test_corpus_walk(CORPUS_DIR, check_file, &n) != -1,
	        "open %s (run from the repository root)", CORPUS_DIR))
		return;
	ok(n >= 10, "corpus has at least 10 files (%d)", n);
}

int
main(void)
{
	test_table();
	test_idempotent();
	test_misc();
	test_corpus();
	return done_testing();
}
