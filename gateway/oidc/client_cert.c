/* SPDX-License-Identifier: ISC */
/*
 * client_cert.c: the certificate credential: its PEM files read and
 * checked once, and a freshly signed client assertion (private_key_jwt)
 * for each token request.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/crypto.h"
#include "core/error.h"
#include "core/keyfile.h"
#include "oidc/client_cert.h"

/* A PEM private key is a few KiB; a certificate chain rarely more than a
 * few dozen.  Anything larger is not what the key names. */
#define CLIENT_CERT_KEY_MAX (64 * 1024)
#define CLIENT_CERT_CHAIN_MAX (1024 * 1024)

/* Entra and RFC 7518 3.3/3.5: RSA keys of at least 2048 bits. */
#define CLIENT_CERT_MIN_BITS 2048

struct client_cert {
	EVP_PKEY *cc_key;
	char cc_x5t_s256[CLIENT_CERT_X5T_MAX];
	char cc_x5t[CLIENT_CERT_X5T_MAX];
};

/* The first certificate in the file (a chain's leaf comes first). */
static X509 *
client_cert_parse_cert(const char *path, struct gh_error *err)
{
	char *text;
	size_t len = 0;
	BIO *bio;
	X509 *x = NULL;

	text = keyfile_read_pem(
	    "client_certificate", path, 0, CLIENT_CERT_CHAIN_MAX, &len, err);
	if (text == NULL)
		return NULL;
	bio = BIO_new_mem_buf(text, (int)len);
	if (bio != NULL)
		x = PEM_read_bio_X509(bio, NULL, keyfile_pem_no_pass, NULL);
	BIO_free(bio);
	free(text);
	ERR_clear_error();
	if (x == NULL)
		gh_error_set(err, "client_cert_parse",
		    "client_certificate: %s: no PEM certificate (-----BEGIN "
		    "CERTIFICATE-----) could be read from it",
		    path);
	return x;
}

/* The private key: PKCS #8 or traditional RSA PEM, not encrypted. */
static EVP_PKEY *
client_cert_parse_key(const char *path, struct gh_error *err)
{
	char *text;
	size_t len = 0;
	BIO *bio;
	EVP_PKEY *key = NULL;
	int asked = 0, encrypted;

	text = keyfile_read_pem(
	    "client_certificate_key", path, 1, CLIENT_CERT_KEY_MAX, &len, err);
	if (text == NULL)
		return NULL;
	bio = BIO_new_mem_buf(text, (int)len);
	if (bio != NULL)
		key = PEM_read_bio_PrivateKey(
		    bio, NULL, keyfile_pem_no_pass, &asked);
	BIO_free(bio);
	encrypted = asked ||
	    strstr((char *)text, "-----BEGIN ENCRYPTED PRIVATE KEY") != NULL ||
	    strstr((char *)text, "Proc-Type: 4,ENCRYPTED") != NULL;
	OPENSSL_cleanse(text, len);
	free(text);
	ERR_clear_error();
	if (key != NULL)
		return key;
	/* gatehouse starts unattended: there is nobody to type a pass
	 * phrase, and one kept beside the key would protect nothing. */
	if (encrypted)
		gh_error_set(err, "client_cert_encrypted",
		    "client_certificate_key: %s: the private key is encrypted "
		    "(gatehouse cannot ask for its pass phrase); write it out "
		    "unencrypted, mode 600, with: openssl pkey -in %s -out "
		    "NEW.pem",
		    path, path);
	else
		gh_error_set(err, "client_cert_parse",
		    "client_certificate_key: %s: no PEM private key "
		    "(-----BEGIN "
		    "PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----) "
		    "could "
		    "be read from it",
		    path);
	return NULL;
}

static int
client_cert_thumbprint(const X509 *x, const EVP_MD *md, char *out, size_t size)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (X509_digest(x, md, d, &n) != 1)
		return -1;
	return crypto_b64url_encode(d, n, out, size, NULL);
}

struct client_cert *
client_cert_load(
    const char *certpath, const char *keypath, struct gh_error *err)
{
	struct client_cert *cc = NULL;
	X509 *x;
	EVP_PKEY *key = NULL;
	int id;

	x = client_cert_parse_cert(certpath, err);
	if (x == NULL)
		return NULL;
	key = client_cert_parse_key(keypath, err);
	if (key == NULL)
		goto fail;
	id = EVP_PKEY_get_base_id(key);
	if (id != EVP_PKEY_RSA) {
		gh_error_set(err, "client_cert_key_type",
		    "client_certificate_key: %s: not an RSA key (%s); PS256 "
		    "and RS256 need an RSA key",
		    keypath, id == EVP_PKEY_EC ? "EC" : OBJ_nid2sn(id));
		goto fail;
	}
	if (EVP_PKEY_get_bits(key) < CLIENT_CERT_MIN_BITS) {
		gh_error_set(err, "client_cert_key_size",
		    "client_certificate_key: %s: a %d-bit RSA key; at least "
		    "%d bits are needed",
		    keypath, EVP_PKEY_get_bits(key), CLIENT_CERT_MIN_BITS);
		goto fail;
	}
	/* The provider checks the assertion with the certificate it was
	 * given: a key of another certificate fails every sign-in. */
	if (EVP_PKEY_eq(X509_get0_pubkey(x), key) != 1) {
		gh_error_set(err, "client_cert_mismatch",
		    "client_certificate_key: %s: not the private key of the "
		    "certificate in %s (their public keys differ)",
		    keypath, certpath);
		goto fail;
	}
	cc = calloc(1, sizeof(*cc));
	if (cc == NULL ||
	    client_cert_thumbprint(x, EVP_sha256(), cc->cc_x5t_s256,
	        sizeof(cc->cc_x5t_s256)) == -1 ||
	    client_cert_thumbprint(
	        x, EVP_sha1(), cc->cc_x5t, sizeof(cc->cc_x5t)) == -1) {
		gh_error_set(err, "client_cert_thumbprint",
		    "client_certificate: %s: cannot compute its thumbprint",
		    certpath);
		goto fail;
	}
	cc->cc_key = key;
	X509_free(x);
	ERR_clear_error();
	return cc;
fail:
	free(cc);
	EVP_PKEY_free(key);
	X509_free(x);
	ERR_clear_error();
	return NULL;
}

void
client_cert_free(struct client_cert *cc)
{
	if (cc == NULL)
		return;
	EVP_PKEY_free(cc->cc_key);
	free(cc);
}

const char *
client_cert_x5t_s256(const struct client_cert *cc)
{
	return cc->cc_x5t_s256;
}

const char *
client_cert_x5t(const struct client_cert *cc)
{
	return cc->cc_x5t;
}

/* Sign `in` with SHA-256: RSA-PSS with a salt as long as the digest and
 * MGF1 with SHA-256 (RFC 7518 3.5, PS256), or PKCS #1 v1.5 (RS256). */
static int
client_cert_sign(const struct client_cert *cc, int alg, const unsigned char *in,
    size_t len, unsigned char *sig, size_t *siglen)
{
	EVP_MD_CTX *md;
	EVP_PKEY_CTX *pctx = NULL;
	int rc = -1;

	md = EVP_MD_CTX_new();
	if (md == NULL)
		return -1;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, cc->cc_key) != 1)
		goto done;
	if (alg == CLIENT_CERT_PS256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	        EVP_PKEY_CTX_set_rsa_pss_saltlen(
	            pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto done;
	if (EVP_DigestSign(md, sig, siglen, in, len) != 1)
		goto done;
	rc = 0;
done:
	EVP_MD_CTX_free(md);
	if (rc == -1)
		ERR_clear_error();
	return rc;
}

/* Encode JSON text as base64url at out; the characters written. */
static size_t
client_cert_b64_json(json_t *v, char *out, size_t size)
{
	char *s = json_dumps(v, JSON_COMPACT);
	size_t n = 0;

	if (s == NULL ||
	    crypto_b64url_encode(s, strlen(s), out, size, &n) == -1)
		n = 0;
	free(s);
	return n;
}

char *
client_cert_assertion(const struct client_cert *cc, int alg,
    const char *client_id, const char *audience, time_t now,
    struct gh_error *err)
{
	unsigned char rnd[16], *sig = NULL;
	char jti[40], *out = NULL;
	json_t *hdr, *claims;
	size_t size, hl, cl, siglen;

	/* 128 bits from the CSPRNG, written like a GUID (as Entra's own
	 * libraries write jti) but without fixing version bits, so all 128
	 * stay random. */
	if (crypto_random(rnd, sizeof(rnd)) == -1) {
		gh_error_set(err, "client_assertion", "no random bytes");
		return NULL;
	}
	snprintf(jti, sizeof(jti),
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
	    rnd[8], rnd[9], rnd[10], rnd[11], rnd[12], rnd[13], rnd[14],
	    rnd[15]);
	hdr = json_pack("{s:s, s:s, s:s, s:s}", "alg",
	    alg == CLIENT_CERT_RS256 ? "RS256" : "PS256", "typ", "JWT", "x5t",
	    cc->cc_x5t, "x5t#S256", cc->cc_x5t_s256);
	claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud",
	    audience, "iss", client_id, "sub", client_id, "jti", jti, "iat",
	    (json_int_t)now, "nbf", (json_int_t)now, "exp",
	    (json_int_t)(now + CLIENT_CERT_LIFETIME));
	if (hdr == NULL || claims == NULL) {
		gh_error_set(err, "client_assertion",
		    "cannot build the client assertion (client_id or the token "
		    "endpoint is not UTF-8)");
		goto done;
	}
	siglen = (size_t)EVP_PKEY_get_size(cc->cc_key);
	/* JSON may escape a byte as six (\u00XX), base64url adds a third. */
	size = 4096 + 8 * (2 * strlen(client_id) + strlen(audience)) +
	    CRYPTO_B64URL_ENCLEN(siglen);
	out = malloc(size);
	sig = malloc(siglen);
	if (out == NULL || sig == NULL) {
		gh_error_set(err, "client_assertion", "out of memory");
		goto fail;
	}
	hl = client_cert_b64_json(hdr, out, size);
	if (hl == 0)
		goto bad;
	out[hl] = '.';
	cl = client_cert_b64_json(claims, out + hl + 1, size - hl - 1);
	if (cl == 0)
		goto bad;
	if (client_cert_sign(cc, alg, (unsigned char *)out, hl + 1 + cl, sig,
	        &siglen) == -1) {
		gh_error_set(err, "client_assertion",
		    "signing the client assertion failed");
		goto fail;
	}
	out[hl + 1 + cl] = '.';
	if (crypto_b64url_encode(
	        sig, siglen, out + hl + cl + 2, size - hl - cl - 2, NULL) == -1)
		goto bad;
	goto done;
bad:
	gh_error_set(err, "client_assertion", "client assertion too large");
fail:
	free(out);
	out = NULL;
done:
	free(sig);
	json_decref(hdr);
	json_decref(claims);
	return out;
}
