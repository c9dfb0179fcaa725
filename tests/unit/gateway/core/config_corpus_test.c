/* SPDX-License-Identifier: ISC */
/*
 * config_corpus_test.c: the defined outcome of every file in
 * tests/corpus/config: loaded with config_load the way
 * tests/fuzz/config_fuzz.c does (from a private directory holding a fixed
 * .env, no GATEHOUSE_* variables, GH_FUZZ_HOST and GH_FUZZ_SECRET set), each
 * must be accepted or refused as the table says.  A refused file must name
 * a line or the file in its message.  A corpus file without a row fails.
 * Run from the repository root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "corpus.h"
#include "tap.h"
#include "tmpdir.h"

#define CORPUS "tests/corpus/config"

extern char **environ;

/* accept: 1 when config_load must return a config, 0 when it must refuse. */
static const struct {
	const char *file;
	int accept;
} expect[] = {
    /* auth_prefix must be a normalised path. */
    {"auth-prefix-dotdot", 0},
    {"baseline-full", 1},
    {"baseline-minimal", 1},
    {"baseline-oidc", 1},
    {"bool-garbage", 0},
    {"cidr-prefix-too-long", 0},
    {"cidr-too-many", 0},
    {"comment-after-value", 1},
    {"control-char-in-value", 0},
    {"cookie-domain-injection", 0},
    {"cookie-name-injection", 0},
    {"cr-only-line-ends", 0},
    {"crlf-line-ends", 1},
    {"double-equals", 1},
    {"duplicate-key", 0},
    {"duration-bad-unit", 0},
    {"duration-overflow", 0},
    {"empty-expansion", 0},
    {"empty-file", 0},
    {"empty-key", 0},
    {"escape-in-key", 0},
    {"expansion-dollar-only", 1},
    {"expansion-from-dotenv", 1},
    {"expansion-name-too-long", 0},
    {"hash-in-secret", 1},
    {"huge-key", 0},
    {"huge-line", 1},
    {"int-overflow", 0},
    {"key-only", 0},
    {"key-upper-case", 0},
    {"latin1-bytes", 1},
    {"listen-ipv6-unterminated", 0},
    /* Any key may be written "key value", as route lines are. */
    {"missing-equals", 1},
    {"negative-size", 0},
    {"nested-expansion", 0},
    {"no-trailing-newline", 1},
    {"nul-byte", 0},
    {"nul-in-key", 0},
    {"port-overflow", 0},
    {"port-zero", 0},
    {"provider-both", 0},
    {"provider-without-secret", 0},
    {"route-equals-in-pattern", 1},
    {"route-overlap", 0},
    {"route-overlap-prefix", 0},
    {"route-too-many-words", 0},
    {"route-unknown-action", 0},
    {"secret-with-at-sign", 1},
    {"size-overflow", 0},
    {"unknown-key", 0},
    {"unset-variable", 0},
    {"unterminated-expansion", 0},
    {"url-no-host", 0},
    {"url-scheme-javascript", 0},
    {"url-userinfo", 0},
    /* A byte-order mark is part of the first key: refused. */
    {"utf8-bom", 0},
    {"whitespace-only", 0},
};

static char dir[128], conf[256], dotenv[256];

/* Write len bytes of text to path (created or emptied).  0 or -1. */
static int
write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (f == NULL)
		return -1;
	if (fwrite(text, 1, len, f) != len)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

static int
setup(void)
{
	char name[128];
	FILE *f;
	size_t n;
	int i;

	for (i = 0; environ[i] != NULL;) {
		n = strcspn(environ[i], "=");
		if (strncmp(environ[i], "GATEHOUSE_", 10) != 0 ||
		    n >= sizeof(name)) {
			i++;
			continue;
		}
		memcpy(name, environ[i], n);
		name[n] = '\0';
		unsetenv(name);
	}
	setenv("GH_FUZZ_HOST", "127.0.0.1", 1);
	setenv("GH_FUZZ_SECRET", "s3cret", 1);
	if (test_tmpdir(dir, sizeof(dir), "config_corpus_test") == -1)
		return -1;
	snprintf(conf, sizeof(conf), "%s/gateway.conf", dir);
	snprintf(dotenv, sizeof(dotenv), "%s/.env", dir);
	f = fopen(dotenv, "w");
	if (f == NULL)
		return -1;
	fputs("# fixed .env of the config fuzzer\n"
	      "GH_FUZZ_DOTENV=\"from-dotenv\"\n"
	      "SCOPE=User.Read\n",
	    f);
	return fclose(f) == 0 ? 0 : -1;
}

/* One corpus file: copied to gateway.conf in the private directory, then
 * loaded from there. */
static void
check_file(const char *name, char *text, size_t len, void *arg)
{
	char path[512], msg[4096];
	struct config *cfg;
	size_t i, rows = sizeof(expect) / sizeof(expect[0]);
	FILE *errf;

	(void)arg;
	i = TEST_CORPUS_ROW(expect, name);
	if (!ok(i < rows, "%s has an expected outcome", name))
		return;
	snprintf(path, sizeof(path), "%s/%s", CORPUS, name);
	if (!ok(write_file(conf, text, len) == 0, "copy %s", path))
		return;
	memset(msg, 0, sizeof(msg));
	errf = fmemopen(msg, sizeof(msg) - 1, "w");
	cfg = config_load(conf, errf != NULL ? errf : stderr);
	if (errf != NULL)
		fclose(errf);
	ok((cfg != NULL) == expect[i].accept, "%s: %s", name,
	    expect[i].accept ? "accepted" : "refused");
	if (!expect[i].accept)
		ok(strncmp(msg, conf, strlen(conf)) == 0,
		    "%s: the message names the file", name);
	config_free(cfg);
}

int
main(void)
{
	if (ok(setup() == 0, "temporary directory"))
		test_corpus_table(CORPUS, check_file, NULL,
		    sizeof(expect) / sizeof(expect[0]));
	if (dir[0] != '\0')
		(void)test_rmtree(dir);
	return done_testing();
}
