/* SPDX-License-Identifier: ISC */
/*
 * crypto.h: OpenSSL wrappers and the secret type.  Key material and
 * tokens live in struct secret, never in a char *, so that a "%s" in a log
 * call cannot compile against them.
 *
 * Threads: every function here is reentrant and may be called from any
 * thread at any time (OpenSSL 3 needs no locking set-up); none keeps state.
 */
#ifndef GATEHOUSE_CRYPTO_H
#define GATEHOUSE_CRYPTO_H

#include <stddef.h>

struct secret {
	unsigned char *buf;
	size_t len;
};

/* Copy len bytes into s (replacing and cleansing what it held).  0 or -1. */
int crypto_secret_set(struct secret *s, const void *buf, size_t len);

/* Cleanse and free the secret's buffer; the struct itself is not freed. */
void crypto_secret_cleanup(struct secret *s);

#define CRYPTO_KEY_LEN 32    /* master key, AEAD keys, derived subkeys */
#define CRYPTO_SHA256_LEN 32 /* SHA-256 and HMAC-SHA-256 output */

/* Fill buf with len bytes from the OpenSSL CSPRNG.  0, or -1 on failure
 * (then buf must not be used). */
int crypto_random(void *buf, size_t len);

/* out = SHA-256(data).  0 or -1. */
int crypto_sha256(
    const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN]);

/* out = HMAC-SHA-256(key, data).  0 or -1. */
int crypto_hmac_sha256(const void *key, size_t keylen, const void *data,
    size_t len, unsigned char out[CRYPTO_SHA256_LEN]);

/*
 * HKDF-SHA-256 (RFC 5869, extract then expand): write outlen bytes
 * (1..8160) derived from ikm, salt (may be NULL/0) and info into out.
 * 0 or -1.
 */
int crypto_hkdf_sha256(const void *ikm, size_t ikmlen, const void *salt,
    size_t saltlen, const void *info, size_t infolen, unsigned char *out,
    size_t outlen);

/* Info strings for the subkeys of the master key; a new format gets a new
 * version so old and new keys never coincide. */
#define CRYPTO_INFO_COOKIE "gatehouse cookie v1"
#define CRYPTO_INFO_TOKEN "gatehouse token v1"

/*
 * Derive a CRYPTO_KEY_LEN-byte subkey from master for purpose `info` (one
 * of CRYPTO_INFO_*) with HKDF-SHA-256 and no salt, into out (new content;
 * the caller calls crypto_secret_cleanup).  0 or -1.
 */
int crypto_secret_derive(
    const struct secret *master, const char *info, struct secret *out);

/*
 * AEAD: AES-256-GCM with a fresh random 96-bit nonce per message.
 *
 * Sealed layout (binary, CRYPTO_AEAD_OVERHEAD = 28 bytes longer than the
 * plaintext):
 *
 *	nonce (12) || ciphertext (same length as the plaintext) || tag (16)
 *
 * The associated data (aad) is authenticated but not stored: the opener
 * must pass the same bytes (e.g. the cookie name), or opening fails.
 * Random nonces are safe for up to 2^32 messages per key.
 */
#define CRYPTO_AEAD_NONCE_LEN 12
#define CRYPTO_AEAD_TAG_LEN 16
#define CRYPTO_AEAD_OVERHEAD (CRYPTO_AEAD_NONCE_LEN + CRYPTO_AEAD_TAG_LEN)

/*
 * Seal len bytes of pt with key (key->len must be CRYPTO_KEY_LEN) and aad
 * (aad may be NULL when aadlen is 0) into out, which the caller owns and
 * which must hold outsize >= len + CRYPTO_AEAD_OVERHEAD bytes; out must not
 * overlap pt.  On success *outlen = len + CRYPTO_AEAD_OVERHEAD and 0 is
 * returned; -1 on a bad key, a short buffer or an OpenSSL failure.
 */
int crypto_aead_seal(const struct secret *key, const void *aad, size_t aadlen,
    const void *pt, size_t len, unsigned char *out, size_t outsize,
    size_t *outlen);

/*
 * Open inlen bytes of sealed input with key and aad into out (caller-owned,
 * outsize >= inlen - CRYPTO_AEAD_OVERHEAD, must not overlap in).  On
 * success *outlen is the plaintext length and 0 is returned.  Returns -1
 * when the input is shorter than the overhead, the key or aad is wrong, or
 * any byte of nonce, ciphertext or tag was changed; then out has been
 * wiped, so no unauthenticated plaintext is ever handed out.
 */
int crypto_aead_open(const struct secret *key, const void *aad, size_t aadlen,
    const unsigned char *in, size_t inlen, unsigned char *out, size_t outsize,
    size_t *outlen);

/*
 * base64url (RFC 4648 section 5) without padding.
 *
 * CRYPTO_B64URL_ENCLEN(n): characters that encoding n bytes produces (the
 * NUL terminator not counted).  CRYPTO_B64URL_DECLEN(n): an upper bound on
 * the bytes decoding n characters produces.
 */
#define CRYPTO_B64URL_ENCLEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))
#define CRYPTO_B64URL_DECLEN(n) (((n) / 4) * 3 + ((n) % 4 ? (n) % 4 - 1 : 0))

/*
 * Encode len bytes of in as unpadded base64url into out (caller-owned,
 * outsize >= CRYPTO_B64URL_ENCLEN(len) + 1), NUL-terminated.  Sets *outlen
 * (may be NULL) to the string length.  0, or -1 when out is too small.
 */
int crypto_b64url_encode(
    const void *in, size_t len, char *out, size_t outsize, size_t *outlen);

/*
 * Decode inlen characters of strict unpadded base64url into out
 * (caller-owned, outsize >= CRYPTO_B64URL_DECLEN(inlen)).  Sets *outlen.
 * Returns -1, with out's content unspecified, on any character outside
 * [A-Za-z0-9_-] (so '=', '+', '/', whitespace and NUL are refused), on an
 * impossible length (inlen % 4 == 1), on non-zero unused trailing bits (so
 * each byte string has exactly one encoding), or when out is too small.
 * An empty input decodes to zero bytes.
 */
int crypto_b64url_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outsize, size_t *outlen);

/* 1 when the len bytes at a and b are equal, else 0, in time that depends
 * only on len (CRYPTO_memcmp).  For MACs, state values and tokens. */
int crypto_ct_equal(const void *a, const void *b, size_t len);

/* The value of one hex digit (either case), or -1. */
int crypto_hex_value(int c);

#endif
