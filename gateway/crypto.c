/* SPDX-License-Identifier: ISC */
/*
 * crypto.c: OpenSSL wrappers (random, hashing, HMAC, HKDF, AES-256-GCM,
 * base64url, constant-time compare), the secret type (S15) and the master
 * key file.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "crypto.h"
#include "error.h"
#include "log.h"

int
crypto_secret_set(struct secret *s, const void *buf, size_t len)
{
	unsigned char *p;

	/* One extra NUL so that text secrets (client_secret) can be passed
	 * to APIs that want a C string. */
	p = malloc(len + 1);
	if (p == NULL)
		return -1;
	if (len > 0)
		memcpy(p, buf, len);
	p[len] = '\0';
	crypto_secret_cleanup(s);
	s->buf = p;
	s->len = len;
	return 0;
}

void
crypto_secret_cleanup(struct secret *s)
{
	if (s->buf != NULL) {
		OPENSSL_cleanse(s->buf, s->len);
		free(s->buf);
	}
	s->buf = NULL;
	s->len = 0;
}

int
crypto_random(void *buf, size_t len)
{
	unsigned char *p = buf;
	int n;

	/* RAND_bytes takes an int; feed large requests in pieces. */
	while (len > 0) {
		n = len > INT_MAX ? INT_MAX : (int)len;
		if (RAND_bytes(p, n) != 1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * SHA-256 is on every signed-in request's path (the store key of the
 * session id).  With OpenSSL 3, EVP_Digest() with EVP_sha256() looks the
 * implementation up and allocates a context on every call: about 790 ns
 * for 32 bytes on the bench machine, against about 150 ns with the
 * implementation fetched once and one context kept per thread (freed when
 * the thread exits).
 */
static pthread_once_t crypto_sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *crypto_sha256_md;
static pthread_key_t crypto_sha256_key;
static int crypto_sha256_have_key;

static void
crypto_sha256_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void
crypto_sha256_init(void)
{
	crypto_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	crypto_sha256_have_key =
	    pthread_key_create(&crypto_sha256_key, crypto_sha256_ctx_free) == 0;
}

/* This thread's digest context, or NULL. */
static EVP_MD_CTX *
crypto_sha256_ctx(void)
{
	EVP_MD_CTX *ctx;

	if (!crypto_sha256_have_key)
		return NULL;
	ctx = pthread_getspecific(crypto_sha256_key);
	if (ctx != NULL)
		return ctx;
	ctx = EVP_MD_CTX_new();
	if (ctx != NULL && pthread_setspecific(crypto_sha256_key, ctx) != 0) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

int
crypto_sha256(
    const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
	EVP_MD_CTX *ctx;
	unsigned int n = 0;

	pthread_once(&crypto_sha256_once, crypto_sha256_init);
	ctx = crypto_sha256_md != NULL ? crypto_sha256_ctx() : NULL;
	if (ctx == NULL) {
		if (EVP_Digest(data, len, out, &n,
		        crypto_sha256_md != NULL ? crypto_sha256_md
		                                 : EVP_sha256(),
		        NULL) != 1 ||
		    n != CRYPTO_SHA256_LEN)
			return -1;
		return 0;
	}
	if (EVP_DigestInit_ex2(ctx, crypto_sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != CRYPTO_SHA256_LEN)
		return -1;
	return 0;
}

int
crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
    unsigned char out[CRYPTO_SHA256_LEN])
{
	unsigned int n = 0;

	if (keylen > INT_MAX)
		return -1;
	if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n) == NULL ||
	    n != CRYPTO_SHA256_LEN)
		return -1;
	return 0;
}

int
crypto_hkdf_sha256(const void *ikm, size_t ikmlen, const void *salt,
    size_t saltlen, const void *info, size_t infolen, unsigned char *out,
    size_t outlen)
{
	EVP_PKEY_CTX *pctx = NULL;
	size_t n = outlen;
	int rc = -1;

	if (outlen == 0 || outlen > 255 * CRYPTO_SHA256_LEN ||
	    ikmlen > INT_MAX || saltlen > INT_MAX || infolen > 1024)
		return -1;
	pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	if (pctx == NULL)
		goto fail;
	if (EVP_PKEY_derive_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set1_hkdf_key(pctx, ikm, (int)ikmlen) != 1)
		goto fail;
	if (saltlen > 0 &&
	    EVP_PKEY_CTX_set1_hkdf_salt(pctx, salt, (int)saltlen) != 1)
		goto fail;
	if (infolen > 0 &&
	    EVP_PKEY_CTX_add1_hkdf_info(pctx, info, (int)infolen) != 1)
		goto fail;
	if (EVP_PKEY_derive(pctx, out, &n) != 1 || n != outlen)
		goto fail;
	rc = 0;
fail:
	if (rc == -1)
		OPENSSL_cleanse(out, outlen);
	EVP_PKEY_CTX_free(pctx);
	return rc;
}

int
crypto_secret_derive(
    const struct secret *master, const char *info, struct secret *out)
{
	unsigned char key[CRYPTO_KEY_LEN];
	int rc = -1;

	if (master == NULL || master->buf == NULL || master->len == 0 ||
	    info == NULL)
		return -1;
	if (crypto_hkdf_sha256(master->buf, master->len, NULL, 0, info,
	        strlen(info), key, sizeof(key)) == -1)
		goto fail;
	if (crypto_secret_set(out, key, sizeof(key)) == -1)
		goto fail;
	rc = 0;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int
crypto_aead_seal(const struct secret *key, const void *aad, size_t aadlen,
    const void *pt, size_t len, unsigned char *out, size_t outsize,
    size_t *outlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *nonce, *ct, *tag;
	int n, rc = -1;

	if (key == NULL || key->buf == NULL || key->len != CRYPTO_KEY_LEN)
		return -1;
	if (len > INT_MAX - CRYPTO_AEAD_OVERHEAD || aadlen > INT_MAX ||
	    outsize < len + CRYPTO_AEAD_OVERHEAD)
		return -1;
	nonce = out;
	ct = out + CRYPTO_AEAD_NONCE_LEN;
	tag = ct + len;
	/* A fresh random nonce for every message: the key is long-lived and
	 * a repeated (key, nonce) pair would break GCM outright. */
	if (crypto_random(nonce, CRYPTO_AEAD_NONCE_LEN) == -1)
		goto fail;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto fail;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
	        CRYPTO_AEAD_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key->buf, nonce) != 1)
		goto fail;
	if (aadlen > 0 &&
	    EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
		goto fail;
	if (len > 0 && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)len) != 1)
		goto fail;
	if (EVP_EncryptFinal_ex(ctx, ct + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(
	        ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_AEAD_TAG_LEN, tag) != 1)
		goto fail;
	*outlen = len + CRYPTO_AEAD_OVERHEAD;
	rc = 0;
fail:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int
crypto_aead_open(const struct secret *key, const void *aad, size_t aadlen,
    const unsigned char *in, size_t inlen, unsigned char *out, size_t outsize,
    size_t *outlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	const unsigned char *nonce, *ct, *tag;
	size_t len;
	int n, rc = -1;

	if (key == NULL || key->buf == NULL || key->len != CRYPTO_KEY_LEN)
		return -1;
	if (inlen < CRYPTO_AEAD_OVERHEAD || inlen > INT_MAX || aadlen > INT_MAX)
		return -1;
	len = inlen - CRYPTO_AEAD_OVERHEAD;
	if (outsize < len)
		return -1;
	nonce = in;
	ct = in + CRYPTO_AEAD_NONCE_LEN;
	tag = ct + len;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto fail;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
	        CRYPTO_AEAD_NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key->buf, nonce) != 1)
		goto fail;
	if (aadlen > 0 &&
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
		goto fail;
	if (len > 0 && EVP_DecryptUpdate(ctx, out, &n, ct, (int)len) != 1)
		goto fail;
	/* OpenSSL's API wants a non-const tag pointer; it only reads it. */
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_AEAD_TAG_LEN,
	        (void *)(uintptr_t)tag) != 1)
		goto fail;
	/* Authentication happens here; until it succeeds, what sits in out
	 * is unauthenticated and is wiped on failure. */
	if (EVP_DecryptFinal_ex(ctx, out + len, &n) != 1)
		goto fail;
	*outlen = len;
	rc = 0;
fail:
	if (rc == -1 && outsize > 0)
		OPENSSL_cleanse(out, len < outsize ? len : outsize);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
crypto_b64url_encode(
    const void *in, size_t len, char *out, size_t outsize, size_t *outlen)
{
	const unsigned char *p = in;
	size_t i, o = 0;
	unsigned long v;

	if (len > (SIZE_MAX - 4) / 4 * 3 ||
	    outsize < CRYPTO_B64URL_ENCLEN(len) + 1)
		return -1;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 |
		    p[i + 2];
		out[o++] = b64url_alphabet[(v >> 18) & 63];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (unsigned long)p[i] << 16;
		out[o++] = b64url_alphabet[(v >> 18) & 63];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8;
		out[o++] = b64url_alphabet[(v >> 18) & 63];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return 0;
}

/*
 * Each character's value, -1 if it is not a base64url digit.  A table, not
 * a chain of range tests: on random input (every session cookie) those
 * branches mispredict on almost every character, which cost about 300 ns
 * per 43-character id, more than the SHA-256 that follows.
 */
static const signed char b64url_values[128] = {-1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62,
    -1, -1, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    21, 22, 23, 24, 25, -1, -1, -1, -1, 63, -1, 26, 27, 28, 29, 30, 31, 32, 33,
    34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1,
    -1, -1, -1, -1};

static int
b64url_value(unsigned char c)
{
	return c < 128 ? b64url_values[c] : -1;
}

int
crypto_b64url_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outsize, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i, o = 0, rem = inlen % 4;
	unsigned long v = 0;
	int a, b, c, d, k;

	if (rem == 1 || outsize < CRYPTO_B64URL_DECLEN(inlen))
		return -1;
	/* Whole quads first: four lookups, one test, three bytes. */
	for (i = 0; i + 4 <= inlen; i += 4) {
		a = b64url_value(p[i]);
		b = b64url_value(p[i + 1]);
		c = b64url_value(p[i + 2]);
		d = b64url_value(p[i + 3]);
		if ((a | b | c | d) < 0)
			return -1;
		v = (unsigned long)a << 18 | (unsigned long)b << 12 |
		    (unsigned long)c << 6 | (unsigned long)d;
		out[o++] = (v >> 16) & 0xff;
		out[o++] = (v >> 8) & 0xff;
		out[o++] = v & 0xff;
	}
	v = 0;
	for (; i < inlen; i++) {
		c = b64url_value(p[i]);
		if (c == -1)
			return -1;
		v = v << 6 | (unsigned long)c;
	}
	if (rem == 2) {
		/* 12 bits carry 8: the low 4 must be zero. */
		if ((v & 0xf) != 0)
			return -1;
		out[o++] = (v >> 4) & 0xff;
	} else if (rem == 3) {
		/* 18 bits carry 16: the low 2 must be zero. */
		if ((v & 0x3) != 0)
			return -1;
		for (k = 1; k >= 0; k--)
			out[o++] = (v >> (2 + 8 * k)) & 0xff;
	}
	*outlen = o;
	return 0;
}

int
crypto_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* The key file's text form: 64 hex characters and a newline. */
#define KEY_FILE_HEXLEN (2 * CRYPTO_KEY_LEN)

int
crypto_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
key_file_parse(const char *path, const unsigned char *text, size_t len,
    unsigned char key[CRYPTO_KEY_LEN], struct gh_error *err)
{
	size_t i;
	int hi, lo;

	if (len == KEY_FILE_HEXLEN + 1 && text[KEY_FILE_HEXLEN] == '\n')
		len--;
	if (len != KEY_FILE_HEXLEN)
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
	    path, KEY_FILE_HEXLEN);
	return -1;
}

/* Write all of buf to fd; 0 or -1 with errno set. */
static int
write_all(int fd, const void *buf, size_t len)
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
key_file_create(const char *path, struct gh_error *err)
{
	static const char hexdigits[] = "0123456789abcdef";
	unsigned char key[CRYPTO_KEY_LEN], suffix[8];
	char text[KEY_FILE_HEXLEN + 1], *tmp = NULL, *dir = NULL, *slash;
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
	text[KEY_FILE_HEXLEN] = '\n';
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
	if (write_all(fd, text, sizeof(text)) == -1 || fsync(fd) == -1) {
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
key_file_read(
    const char *path, struct secret *out, int *absent, struct gh_error *err)
{
	unsigned char text[KEY_FILE_HEXLEN + 2], key[CRYPTO_KEY_LEN];
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
	if (key_file_parse(path, text, len, key, err) == -1)
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
crypto_key_file_load(const char *path, struct secret *out, struct gh_error *err)
{
	int absent, tries, created;

	/* If another process creates the file between our ENOENT and our
	 * link(2), load theirs. */
	for (tries = 0;; tries++) {
		if (key_file_read(path, out, &absent, err) == 0)
			return 0;
		if (!absent)
			return -1;
		if (tries == 2) {
			gh_error_set(err, "key_file_read",
			    "%s: the key file keeps vanishing", path);
			return -1;
		}
		created = key_file_create(path, err);
		if (created == -1)
			return -1;
		if (created == 1)
			log_info("created a new session key file %s", path);
	}
}
