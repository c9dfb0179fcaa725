/* SPDX-License-Identifier: ISC */
/*
 * keyfile.c: the master key file (load, create atomically, refuse a mode
 * that lets others near it) and the subkeys the process derives from it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/crypto.h"
#include "core/error.h"
#include "core/keyfile.h"
#include "core/log.h"

/* Process-wide and read-only once the workers run. */
static struct secret keyfile_cookie;
static struct secret keyfile_token;

/* The key file's text form: 64 hex characters and a newline. */
#define KEYFILE_HEXLEN (2 * CRYPTO_KEY_LEN)

static int
keyfile_parse(const char *path, const unsigned char *text, size_t len,
    unsigned char key[CRYPTO_KEY_LEN], struct gh_error *err)
{
	size_t i;
	int hi, lo;

	if (len == KEYFILE_HEXLEN + 1 && text[KEYFILE_HEXLEN] == '\n')
		len--;
	if (len != KEYFILE_HEXLEN)
		goto bad;
	for (i = 0; i < CRYPTO_KEY_LEN; i++) {
		hi = crypto_hex_value(text[2 * i]);
		lo = crypto_hex_value(text[2 * i + 1]);
		if (hi == -1 || lo == -1)
			goto bad;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
bad:
	/* The content itself is never echoed: it is (meant to be) a key. */
	gh_error_set(err, "key_file_content",
	    "%s: not a key file: want exactly %d hex characters and an "
	    "optional newline (remove the file to have a new key made, which "
	    "ends every session)",
	    path, KEYFILE_HEXLEN);
	return -1;
}

/* Write all of buf to fd; 0 or -1 with errno set. */
static int
keyfile_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Create `path` with a new random key, atomically: temp file, fsync, then
 * link(2), which fails with EEXIST rather than replacing a key that another
 * process created meanwhile.  Returns 1 when created, 0 when somebody else
 * won the race (the caller then loads their file), -1 on error.
 */
static int
keyfile_create(const char *path, struct gh_error *err)
{
	static const char hexdigits[] = "0123456789abcdef";
	unsigned char key[CRYPTO_KEY_LEN], suffix[8];
	char text[KEYFILE_HEXLEN + 1], *tmp = NULL, *dir = NULL, *slash;
	size_t i;
	int fd = -1, dfd = -1, rc = -1, linked = 0;

	if (crypto_random(key, sizeof(key)) == -1 ||
	    crypto_random(suffix, sizeof(suffix)) == -1) {
		gh_error_set(err, "key_file_random",
		    "%s: no random bytes for a new key", path);
		goto fail;
	}
	for (i = 0; i < CRYPTO_KEY_LEN; i++) {
		text[2 * i] = hexdigits[key[i] >> 4];
		text[2 * i + 1] = hexdigits[key[i] & 0xf];
	}
	text[KEYFILE_HEXLEN] = '\n';
	if (asprintf(&tmp, "%s.tmp.%02x%02x%02x%02x%02x%02x%02x%02x", path,
	        suffix[0], suffix[1], suffix[2], suffix[3], suffix[4],
	        suffix[5], suffix[6], suffix[7]) == -1) {
		tmp = NULL;
		gh_error_set(err, "key_file_create", "%s: out of memory", path);
		goto fail;
	}
	/* Security: 0600 from the first byte, never a window in which the
	 * key is readable by others (the umask can only narrow it). */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    S_IRUSR | S_IWUSR);
	if (fd == -1) {
		gh_error_set(err, "key_file_create",
		    "%s: cannot create a new key file: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (keyfile_write_all(fd, text, sizeof(text)) == -1 ||
	    fsync(fd) == -1) {
		gh_error_set(err, "key_file_create", "%s: cannot write: %s",
		    tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		gh_error_set(err, "key_file_create", "%s: cannot write: %s",
		    tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (link(tmp, path) == -1) {
		if (errno == EEXIST) {
			rc = 0;
			goto fail;
		}
		gh_error_set(err, "key_file_create", "%s: cannot create: %s",
		    path, strerror(errno));
		goto fail;
	}
	linked = 1;
	/* Make the new name durable too. */
	dir = strdup(path);
	if (dir != NULL) {
		slash = strrchr(dir, '/');
		if (slash == NULL)
			strcpy(dir, ".");
		else if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd != -1)
			(void)fsync(dfd);
	}
	rc = 1;
fail:
	if (fd != -1)
		close(fd);
	if (dfd != -1)
		close(dfd);
	if (tmp != NULL)
		(void)unlink(tmp);
	if (rc == -1 && linked)
		(void)unlink(path);
	free(tmp);
	tmp = NULL;
	free(dir);
	dir = NULL;
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

/* Open and check an existing key file; 0 or -1 with err set (ENOENT is
 * reported through *absent instead). */
static int
keyfile_read(
    const char *path, struct secret *out, int *absent, struct gh_error *err)
{
	unsigned char text[KEYFILE_HEXLEN + 2], key[CRYPTO_KEY_LEN];
	struct stat sb;
	size_t len = 0;
	ssize_t n;
	int fd, rc = -1;

	*absent = 0;
	/* Symlinks are followed (a Kubernetes secret volume is made of
	 * them); the mode checked below is the target's. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1) {
		/* A dangling symlink is a key that was meant to be there (a
		 * secret volume not mounted): never a reason to create one. */
		if (errno == ENOENT && lstat(path, &sb) == 0 &&
		    S_ISLNK(sb.st_mode)) {
			gh_error_set(err, "key_file_read",
			    "%s: cannot open: a symbolic link to a missing "
			    "file",
			    path);
			return -1;
		}
		if (errno == ENOENT) {
			*absent = 1;
			return -1;
		}
		gh_error_set(err, "key_file_read", "%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		gh_error_set(err, "key_file_read", "%s: cannot stat: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		gh_error_set(err, "key_file_read",
		    "%s: cannot read the key: not a regular file", path);
		goto fail;
	}
	/* Security: a key others can read lets them forge sessions; one
	 * others can write lets them choose it. */
	if ((sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		gh_error_set(err, "key_file_mode",
		    "%s: mode %04o lets group or others read or write the key; "
		    "fix it with: chmod 600 %s",
		    path, (unsigned)(sb.st_mode & 07777), path);
		goto fail;
	}
	while (len < sizeof(text)) {
		n = read(fd, text + len, sizeof(text) - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			gh_error_set(err, "key_file_read",
			    "%s: cannot read: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (keyfile_parse(path, text, len, key, err) == -1)
		goto fail;
	if (crypto_secret_set(out, key, sizeof(key)) == -1) {
		gh_error_set(err, "key_file_read", "%s: out of memory", path);
		goto fail;
	}
	rc = 0;
fail:
	close(fd);
	OPENSSL_cleanse(text, sizeof(text));
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int
keyfile_load(const char *path, struct secret *out, struct gh_error *err)
{
	int absent, tries, created;

	/* If another process creates the file between our ENOENT and our
	 * link(2), load theirs. */
	for (tries = 0;; tries++) {
		if (keyfile_read(path, out, &absent, err) == 0)
			return 0;
		if (!absent)
			return -1;
		if (tries == 2) {
			gh_error_set(err, "key_file_read",
			    "%s: the key file keeps vanishing", path);
			return -1;
		}
		created = keyfile_create(path, err);
		if (created == -1)
			return -1;
		if (created == 1)
			log_info("created a new session key file %s", path);
	}
}

/* Create the key file's directory (0700) when missing, like the store's:
 * a first start needs no preparation. */
static void
keyfile_mkdir_parent(const char *path)
{
	char buf[4096], *p;

	if (strlen(path) >= sizeof(buf))
		return;
	strcpy(buf, path);
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(buf, 0700);
		*p = '/';
	}
}

int
keyfile_init(const char *path, struct gh_error *err)
{
	struct secret master = {NULL, 0};
	int rc = -1;

	keyfile_mkdir_parent(path);
	if (keyfile_load(path, &master, err) == -1)
		return -1;
	if (crypto_secret_derive(
	        &master, CRYPTO_INFO_COOKIE, &keyfile_cookie) == -1 ||
	    crypto_secret_derive(&master, CRYPTO_INFO_TOKEN, &keyfile_token) ==
	        -1) {
		gh_error_set(err, "key_derive", "cannot derive session keys");
		goto done;
	}
	rc = 0;
done:
	crypto_secret_cleanup(&master);
	return rc;
}

void
keyfile_shutdown(void)
{
	crypto_secret_cleanup(&keyfile_cookie);
	crypto_secret_cleanup(&keyfile_token);
}

const struct secret *
keyfile_cookie_key(void)
{
	return &keyfile_cookie;
}

const struct secret *
keyfile_token_key(void)
{
	return &keyfile_token;
}

/*
 * Read the whole file into a new buffer (NUL-terminated; *len without
 * it).  `what` is the configuration key, for the messages.  For a private
 * key the rules of session_key_file apply: a regular file (symlinks are
 * followed, as a Kubernetes secret volume is made of them) that neither
 * group nor others can read or write.
 */
char *
keyfile_read_pem(const char *what, const char *path, int private, size_t max,
    size_t *len, struct gh_error *err)
{
	char *buf = NULL;
	struct stat sb;
	size_t have = 0;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO named by mistake must not hang the start. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT && lstat(path, &sb) == 0 &&
		    S_ISLNK(sb.st_mode))
			gh_error_set(err, "keyfile_read",
			    "%s: %s: cannot open: a symbolic link to a missing "
			    "file",
			    what, path);
		else
			gh_error_set(err, "keyfile_read",
			    "%s: %s: cannot open: %s", what, path,
			    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		gh_error_set(err, "keyfile_read", "%s: %s: not a regular file",
		    what, path);
		goto fail;
	}
	/* Security: a private key others can read lets them act as this
	 * site (to its users, or as the client at the provider); one others
	 * can write lets them swap in their own. */
	if (private && (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		gh_error_set(err, "keyfile_mode",
		    "%s: %s: mode %04o lets group or others read or write the "
		    "private key; fix it with: chmod 600 %s",
		    what, path, (unsigned)(sb.st_mode & 07777), path);
		goto fail;
	}
	if ((size_t)sb.st_size > max) {
		gh_error_set(err, "keyfile_read",
		    "%s: %s: larger than %zu bytes, not a PEM file of this "
		    "kind",
		    what, path, max);
		goto fail;
	}
	buf = malloc(max + 1);
	if (buf == NULL) {
		gh_error_set(
		    err, "keyfile_read", "%s: %s: out of memory", what, path);
		goto fail;
	}
	while (have < max) {
		n = read(fd, buf + have, max - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			gh_error_set(err, "keyfile_read",
			    "%s: %s: cannot read: %s", what, path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	buf[have] = '\0';
	*len = have;
	close(fd);
	return buf;
fail:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, max + 1);
		free(buf);
	}
	close(fd);
	return NULL;
}

/* The PEM pass phrase callback: there is nobody to ask, so an encrypted
 * key fails to load, and *u records that it was encrypted. */
int
keyfile_pem_no_pass(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	if (u != NULL)
		*(int *)u = 1;
	return 0;
}
