/* SPDX-License-Identifier: ISC */
/* keyfile_test.c: the master key file (created, reloaded, refused). */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/error.h"
#include "core/keyfile.h"
#include "hex.h"
#include "tap.h"
#include "tmpdir.h"

static int
write_file(const char *path, const char *text, mode_t mode)
{
	int fd;
	ssize_t n;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd == -1)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	if (n != (ssize_t)strlen(text) || chmod(path, mode) == -1)
		return -1;
	return 0;
}

static int
count_entries(const char *dir)
{
	DIR *d;
	struct dirent *de;
	int n = 0;

	d = opendir(dir);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
expect_refused(
    const char *path, const char *want1, const char *want2, const char *what)
{
	struct secret s = {NULL, 0};
	struct gh_error err;

	memset(&err, 0, sizeof(err));
	ok(keyfile_load(path, &s, &err) == -1 && s.buf == NULL,
	    "key file refused: %s", what);
	ok(strstr(err.ge_msg, path) != NULL &&
	        (want1 == NULL || strstr(err.ge_msg, want1) != NULL) &&
	        (want2 == NULL || strstr(err.ge_msg, want2) != NULL),
	    "message for %s names the path%s%s: %s", what,
	    want1 != NULL ? " and " : "", want1 != NULL ? want1 : "",
	    err.ge_msg);
	crypto_secret_cleanup(&s);
}

static void
test_key_file(void)
{
	char dir[128], path[256], sub[384];
	char text[128], hex[2 * CRYPTO_KEY_LEN + 1];
	struct secret k1 = {NULL, 0}, k2 = {NULL, 0};
	struct gh_error err;
	struct stat sb;
	ssize_t n;
	int fd;

	if (test_tmpdir(dir, sizeof(dir), "keyfile_test") == -1) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/session.key", dir);
	memset(&err, 0, sizeof(err));

	/* Absent: created, 0600, 64 hex + newline, no temp file left. */
	umask(022);
	ok(keyfile_load(path, &k1, &err) == 0, "key file created: %s",
	    err.ge_msg);
	is_int(k1.len, CRYPTO_KEY_LEN, "key is 32 bytes");
	ok(stat(path, &sb) == 0 && S_ISREG(sb.st_mode), "key file exists");
	is_int(sb.st_mode & 07777, 0600, "key file mode is 0600");
	fd = open(path, O_RDONLY);
	n = fd == -1 ? -1 : read(fd, text, sizeof(text) - 1);
	if (fd != -1)
		close(fd);
	text[n > 0 ? n : 0] = '\0';
	is_int(n, 65, "key file holds 65 bytes");
	if (k1.buf != NULL)
		hex_encode(k1.buf, k1.len, hex);
	else
		hex[0] = '\0';
	ok(n == 65 && strncmp(text, hex, 64) == 0 && text[64] == '\n',
	    "key file is the key in hex and a newline");
	is_int(count_entries(dir), 1, "no temporary file left behind");

	/* Present: reloaded identical. */
	ok(keyfile_load(path, &k2, &err) == 0, "key file reloaded");
	ok(k1.len == k2.len && k1.buf != NULL && k2.buf != NULL &&
	        memcmp(k1.buf, k2.buf, k1.len) == 0,
	    "reloaded key is identical");
	crypto_secret_cleanup(&k2);

	/* Permissions. */
	chmod(path, 0644);
	expect_refused(path, "0644", "chmod 600", "world-readable");
	chmod(path, 0640);
	expect_refused(path, "0640", "chmod 600", "group-readable");
	chmod(path, 0620);
	expect_refused(path, "0620", "chmod 600", "group-writable");
	chmod(path, 0602);
	expect_refused(path, "0602", "chmod 600", "world-writable");
	chmod(path, 0400);
	ok(keyfile_load(path, &k2, &err) == 0 &&
	        memcmp(k1.buf, k2.buf, k1.len) == 0,
	    "mode 0400 is accepted");
	crypto_secret_cleanup(&k2);

	/* Content. */
	write_file(path,
	    "0123456789abcdef0123456789abcdef"
	    "0123456789ABCDEF0123456789abcdef",
	    0600);
	ok(keyfile_load(path, &k2, &err) == 0 && k2.len == 32 &&
	        k2.buf[0] == 0x01 && k2.buf[31] == 0xef,
	    "64 hex characters without a newline are accepted");
	crypto_secret_cleanup(&k2);
	write_file(path,
	    "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdeg\n",
	    0600);
	expect_refused(path, "hex", NULL, "a non-hex character");
	write_file(path, "0123456789abcdef0123456789abcdef\n", 0600);
	expect_refused(path, "hex", NULL, "too short");
	write_file(path,
	    "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0\n",
	    0600);
	expect_refused(path, "hex", NULL, "too long");
	write_file(path,
	    "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef\n\n",
	    0600);
	expect_refused(path, "hex", NULL, "two newlines");
	write_file(path, "", 0600);
	expect_refused(path, "hex", NULL, "empty file");

	/* Unreadable (we may be root, so use paths that really fail). */
	snprintf(sub, sizeof(sub), "%s/keydir", dir);
	mkdir(sub, 0700);
	expect_refused(sub, "regular file", NULL, "a directory");
	snprintf(sub, sizeof(sub), "%s/x", path);
	expect_refused(sub, "cannot open", NULL, "a path under a file");
	snprintf(sub, sizeof(sub), "%s/link.key", dir);
	write_file(path,
	    "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef\n",
	    0600);
	ok(symlink("session.key", sub) == 0 &&
	        keyfile_load(sub, &k2, &err) == 0 && k2.len == 32 &&
	        k2.buf[1] == 0x23,
	    "a symlink to a good key file is followed");
	crypto_secret_cleanup(&k2);
	chmod(path, 0644);
	expect_refused(
	    sub, "0644", "chmod 600", "a symlink to a world-readable file");
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/nodir/session.key", dir);
	expect_refused(sub, "cannot create", NULL, "a missing directory");

	/* A relative path: the temp file goes next to it, in ".". */
	if (chdir(dir) == 0) {
		ok(keyfile_load("rel.key", &k2, &err) == 0 &&
		        k2.len == CRYPTO_KEY_LEN && stat("rel.key", &sb) == 0 &&
		        (sb.st_mode & 07777) == 0600,
		    "relative key path created");
		crypto_secret_cleanup(&k2);
		unlink("rel.key");
		ok(chdir("/") == 0, "chdir back");
	} else {
		ok(0, "chdir");
	}

	crypto_secret_cleanup(&k1);
	unlink(path);
	snprintf(sub, sizeof(sub), "%s/keydir", dir);
	rmdir(sub);
	ok(rmdir(dir) == 0, "temp dir clean");
}

int
main(void)
{
	test_key_file();
	return done_testing();
}
