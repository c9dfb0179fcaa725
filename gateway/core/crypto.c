/* SPDX-License-Identifier: ISC */
/*
 * crypto.c: OpenSSL wrappers (random, hashing, HMAC, HKDF, AES-256-GCM,
 * base64url, constant-time compare, hex digits) and the secret type.
 * The master key file is keyfile.c's.
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "core/crypto.h"

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

/* AES-256-GCM fetched once, as SHA-256 above: EVP_aes_256_gcm() makes
 * every EVP_*Init_ex look the implementation up again (a sign-in seals and
 * opens three or four times). */
static pthread_once_t crypto_gcm_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *crypto_gcm_fetched;

static void
crypto_gcm_init(void)
{
	crypto_gcm_fetched = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *
crypto_gcm(void)
{
	pthread_once(&crypto_gcm_once, crypto_gcm_init);
	return crypto_gcm_fetched != NULL ? crypto_gcm_fetched
	                                  : EVP_aes_256_gcm();
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
	if (EVP_EncryptInit_ex(ctx, crypto_gcm(), NULL, NULL, NULL) != 1 ||
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
	if (EVP_DecryptInit_ex(ctx, crypto_gcm(), NULL, NULL, NULL) != 1 ||
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
