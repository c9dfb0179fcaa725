/* SPDX-License-Identifier: ISC */
/* oidc_login_test.c: return-URL validation, and the redirect corpus. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oidc.h"
#include "tap.h"

static void
test_table(void)
{
	static const char *const safe[] = {"/", "/a", "/a/b?c=d&e=%2F",
	    "/a%20b", "/%7Euser", "/x#frag", "/.well-known/x", "/a/.b",
	    "/a..b"};
	static const char *const unsafe[] = {"", "a", "//evil", "///evil",
	    "/\\evil", "\\\\evil", "https://evil/", "https:evil",
	    "javascript:alert(1)", "data:text/html,x", "/%2F/evil",
	    "/%2f%2fevil", "/%252F%252Fevil", "/%25252F%25252Fevil", "/%5Cevil",
	    "/%5cevil", "/\t/evil", "/%09/evil", "/a\r\nb", "/a%0d%0ab", " /a",
	    "/a b", "/%zz", "/%", "@evil", "/a/../b", "/./x", "/%2e%2e//evil",
	    "/a/..", "/%E2%80%AE" /* fine bytes: kept below */};
	size_t i;

	for (i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
		ok(oidc_redirect_safe(safe[i]), "safe: %s", safe[i]);
	/* The last one is a valid local path with an encoded code point;
	 * everything before it must be refused. */
	for (i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]) - 1; i++)
		ok(!oidc_redirect_safe(unsafe[i]), "refused: %s", unsafe[i]);
	ok(oidc_redirect_safe("/%E2%80%AE"), "encoded non-ASCII path kept");
	ok(!oidc_redirect_safe(NULL), "NULL refused");
}

/* Every file in tests/corpus/redirect is an attack: all must be refused. */
static void
test_corpus(void)
{
	const char *dir = "tests/corpus/redirect";
	struct dirent *de;
	char path[512], buf[4096];
	DIR *d;
	FILE *f;
	size_t n;
	int count = 0;

	d = opendir(dir);
	ok(d != NULL, "corpus directory %s", dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		if (f == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* An embedded NUL is itself hostile: the C string stops
		 * early, so compare lengths too. */
		ok(strlen(buf) != n || !oidc_redirect_safe(buf),
		    "corpus %s refused", de->d_name);
		count++;
	}
	closedir(d);
	ok(count >= 15, "corpus has %d files", count);
}

int
main(void)
{
	test_table();
	test_corpus();
	return done_testing();
}
