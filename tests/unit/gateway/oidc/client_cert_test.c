/* SPDX-License-Identifier: ISC */
/*
 * client_cert_test.c: gateway/oidc/client_cert.c: the certificate and key
 * files (accepted, refused with a message naming the key and the file) and
 * the client assertion (header, claims, thumbprints; its signature checked
 * here with OpenSSL, independently of the code under test).
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/crypto.h"
#include "core/error.h"
#include "oidc/client_cert.h"
#include "tap.h"
#include "tmpdir.h"

static char dir[256];

static X509 *
make_cert(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (x == NULL)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(
	    name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (X509_sign(x, key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Write the memory BIO (freed) to dir/name with `mode`; the path stays
 * valid for the next 63 calls. */
static const char *
put(const char *name, BIO *mem, mode_t mode)
{
	static char path[64][384];
	static int next;
	char *p = path[next++ % 64], *data;
	long len;
	int fd;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	len = BIO_get_mem_data(mem, &data);
	(void)unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd == -1 || write(fd, data, (size_t)len) != len) {
		printf("# cannot write %s\n", p);
		exit(1);
	}
	close(fd);
	chmod(p, mode);
	BIO_free(mem);
	return p;
}

static const char *
put_key(const char *name, EVP_PKEY *key, int traditional, mode_t mode)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (traditional)
		PEM_write_bio_PrivateKey_traditional(
		    b, key, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	return put(name, b, mode);
}

static const char *
put_certs(const char *name, X509 *a, X509 *b)
{
	BIO *m = BIO_new(BIO_s_mem());

	PEM_write_bio_X509(m, a);
	if (b != NULL)
		PEM_write_bio_X509(m, b);
	return put(name, m, 0644);
}

static void
thumb(X509 *x, const EVP_MD *md, char *out, size_t size)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	X509_digest(x, md, d, &n);
	crypto_b64url_encode(d, n, out, size, NULL);
}

static void
expect_refused(const char *cert, const char *key, const char *name,
    const char *path, const char *why, const char *what)
{
	struct gh_error err;
	struct client_cert *cc;

	memset(&err, 0, sizeof(err));
	cc = client_cert_load(cert, key, &err);
	ok(cc == NULL, "refused: %s", what);
	ok(strncmp(err.ge_msg, name, strlen(name)) == 0 &&
	        strstr(err.ge_msg, path) != NULL &&
	        strstr(err.ge_msg, why) != NULL,
	    "%s: the message names %s, the file and \"%s\": %s", what, name,
	    why, err.ge_msg);
	client_cert_free(cc);
}

/* Decode one base64url part of a compact JWS as JSON. */
static json_t *
part_json(const char *s, size_t len)
{
	unsigned char buf[4096];
	size_t n = 0;

	if (crypto_b64url_decode(s, len, buf, sizeof(buf), &n) == -1)
		return NULL;
	return json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
}

/* Verify the JWS signature with OpenSSL: PS256 with the salt as long as
 * the digest (exactly, not "any"), or RS256. */
static int
verify(const char *jws, EVP_PKEY *pub, int pss)
{
	const char *dot2 = strrchr(jws, '.');
	unsigned char sig[1024];
	size_t slen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int rc = 0;

	if (dot2 == NULL ||
	    crypto_b64url_decode(
	        dot2 + 1, strlen(dot2 + 1), sig, sizeof(sig), &slen) == -1)
		goto done;
	if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub) != 1)
		goto done;
	if (pss &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 ||
	        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
		goto done;
	rc = EVP_DigestVerify(md, sig, slen, (const unsigned char *)jws,
	         (size_t)(dot2 - jws)) == 1;
done:
	EVP_MD_CTX_free(md);
	return rc;
}

static int
guid_shaped(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23)
		        ? s[i] != '-'
		        : strchr("0123456789abcdef", s[i]) == NULL)
			return 0;
	return 1;
}

static void
test_assertion(struct client_cert *cc, X509 *x, EVP_PKEY *pub, int alg)
{
	const char *name = alg == CLIENT_CERT_PS256 ? "PS256" : "RS256";
	const char *aud = "https://login.example/tid/oauth2/v2.0/token";
	const char *cid = "app \"id\" \xc3\xa9";
	char s256[64], s1[64], jti[64], *a, *b, *dot1, *dot2;
	struct gh_error err;
	json_t *hdr, *cl;
	time_t now = 1700000000;

	thumb(x, EVP_sha256(), s256, sizeof(s256));
	thumb(x, EVP_sha1(), s1, sizeof(s1));
	a = client_cert_assertion(cc, alg, cid, aud, now, &err);
	b = client_cert_assertion(cc, alg, cid, aud, now, &err);
	ok(a != NULL && b != NULL, "%s: assertions built", name);
	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return;
	}
	dot1 = strchr(a, '.');
	dot2 = strrchr(a, '.');
	ok(dot1 != NULL && dot2 != dot1 && strchr(dot1 + 1, '.') == dot2,
	    "%s: three parts", name);
	hdr = part_json(a, (size_t)(dot1 - a));
	cl = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	ok(hdr != NULL && cl != NULL, "%s: header and claims are JSON", name);
	is_str(json_string_value(json_object_get(hdr, "alg")), name,
	    "%s: header alg", name);
	is_str(json_string_value(json_object_get(hdr, "typ")), "JWT",
	    "%s: header typ", name);
	is_str(json_string_value(json_object_get(hdr, "x5t#S256")), s256,
	    "%s: x5t#S256 is the SHA-256 of the certificate's DER", name);
	is_str(json_string_value(json_object_get(hdr, "x5t")), s1,
	    "%s: x5t is the SHA-1 of the certificate's DER", name);
	is_int(
	    json_object_size(hdr), 4, "%s: nothing else in the header", name);
	is_str(json_string_value(json_object_get(cl, "iss")), cid,
	    "%s: iss is the client id (JSON-escaped and back)", name);
	is_str(json_string_value(json_object_get(cl, "sub")), cid,
	    "%s: sub is the client id", name);
	is_str(json_string_value(json_object_get(cl, "aud")), aud,
	    "%s: aud is the token endpoint", name);
	ok(guid_shaped(json_string_value(json_object_get(cl, "jti"))),
	    "%s: jti is 128 bits written as a GUID: %s", name,
	    json_string_value(json_object_get(cl, "jti")));
	is_int(json_integer_value(json_object_get(cl, "iat")), now,
	    "%s: iat now", name);
	is_int(json_integer_value(json_object_get(cl, "nbf")), now,
	    "%s: nbf now", name);
	is_int(json_integer_value(json_object_get(cl, "exp")),
	    now + CLIENT_CERT_LIFETIME, "%s: exp 5 minutes on", name);
	ok(CLIENT_CERT_LIFETIME <= 600, "lifetime within 10 minutes");
	is_int(json_object_size(cl), 7, "%s: seven claims", name);
	snprintf(jti, sizeof(jti), "%s",
	    json_string_value(json_object_get(cl, "jti")));
	json_decref(cl);
	cl = part_json(
	    strchr(b, '.') + 1, (size_t)(strrchr(b, '.') - strchr(b, '.') - 1));
	ok(cl != NULL &&
	        strcmp(json_string_value(json_object_get(cl, "jti")), jti) != 0,
	    "%s: a second assertion has another jti", name);
	ok(verify(a, pub, alg == CLIENT_CERT_PS256),
	    "%s: the signature verifies with the certificate's key", name);
	ok(!verify(a, pub, alg != CLIENT_CERT_PS256),
	    "%s: and not as the other algorithm", name);
	a[dot1 - a + 3] ^= 0x01;
	ok(!verify(a, pub, alg == CLIENT_CERT_PS256),
	    "%s: a changed claim breaks the signature", name);
	json_decref(hdr);
	json_decref(cl);
	free(a);
	free(b);
}

int
main(void)
{
	EVP_PKEY *k1, *k2, *small, *ec;
	X509 *x1, *x2;
	struct client_cert *cc;
	struct gh_error err;
	const char *cert, *key, *p;
	char s256[64];
	BIO *b;

	if (test_tmpdir(dir, sizeof(dir), "client_cert_test") == -1) {
		printf("Bail out! no temporary directory\n");
		return 1;
	}
	k1 = EVP_RSA_gen(2048);
	k2 = EVP_RSA_gen(2048);
	small = EVP_RSA_gen(1024);
	ec = EVP_EC_gen("P-256");
	x1 = make_cert(k1, "gatehouse");
	x2 = make_cert(k2, "another");
	if (k1 == NULL || k2 == NULL || small == NULL || ec == NULL ||
	    x1 == NULL || x2 == NULL) {
		printf("Bail out! cannot make test keys\n");
		return 1;
	}

	/* A chain: the first certificate is the client's. */
	cert = put_certs("chain.pem", x1, x2);
	X509_free(x2);
	key = put_key("key.pem", k1, 0, 0600);
	memset(&err, 0, sizeof(err));
	cc = client_cert_load(cert, key, &err);
	ok(cc != NULL, "a chain and its leaf's PKCS #8 key load: %s",
	    err.ge_msg);
	if (cc != NULL) {
		thumb(x1, EVP_sha256(), s256, sizeof(s256));
		is_str(client_cert_x5t_s256(cc), s256,
		    "the thumbprint is the first certificate's");
		test_assertion(cc, x1, k1, CLIENT_CERT_PS256);
		test_assertion(cc, x1, k1, CLIENT_CERT_RS256);
	}
	client_cert_free(cc);
	client_cert_free(NULL);

	key = put_key("rsa.pem", k1, 1, 0400);
	cc = client_cert_load(cert, key, &err);
	ok(cc != NULL, "a traditional RSA key (mode 0400) loads: %s",
	    err.ge_msg);
	client_cert_free(cc);

	/* One file with both, in either order. */
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k1, NULL, NULL, 0, NULL, NULL);
	PEM_write_bio_X509(b, x1);
	p = put("both.pem", b, 0600);
	cc = client_cert_load(p, p, &err);
	ok(cc != NULL, "one file holding the key and the certificate: %s",
	    err.ge_msg);
	client_cert_free(cc);

	/* Refused, each naming the key and the file. */
	expect_refused(cert, put_key("other.pem", k2, 0, 0600),
	    "client_certificate_key", "other.pem", "not the private key of",
	    "a key of another certificate");
	expect_refused(cert, put_key("loose.pem", k1, 0, 0644),
	    "client_certificate_key", "loose.pem", "chmod 600",
	    "a key others can read");
	expect_refused(cert, put_key("group.pem", k1, 0, 0640),
	    "client_certificate_key", "group.pem", "mode 0640",
	    "a key the group can read");
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PKCS8PrivateKey(
	    b, k1, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)"pass");
	expect_refused(cert, put("enc.pem", b, 0600), "client_certificate_key",
	    "enc.pem", "encrypted", "an encrypted PKCS #8 key");
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey_traditional(
	    b, k1, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"pass");
	expect_refused(cert, put("enc2.pem", b, 0600), "client_certificate_key",
	    "enc2.pem", "encrypted", "an encrypted traditional key");
	expect_refused(cert, put_key("ec.pem", ec, 0, 0600),
	    "client_certificate_key", "ec.pem", "not an RSA key (EC)",
	    "an EC key");
	x2 = make_cert(small, "small");
	expect_refused(put_certs("small.crt", x2, NULL),
	    put_key("small.pem", small, 0, 0600), "client_certificate_key",
	    "small.pem", "1024-bit", "a 1024-bit key");
	X509_free(x2);
	expect_refused(cert, "/nonexistent/gh.key", "client_certificate_key",
	    "/nonexistent/gh.key", "No such file", "a missing key file");
	expect_refused("/nonexistent/gh.crt", key, "client_certificate",
	    "/nonexistent/gh.crt", "No such file", "a missing certificate");
	expect_refused(cert, cert, "client_certificate_key", "chain.pem",
	    "mode 0644", "the certificate named as the key");
	b = BIO_new(BIO_s_mem());
	BIO_puts(b, "not a key\n");
	expect_refused(cert, put("junk.pem", b, 0600), "client_certificate_key",
	    "junk.pem", "no PEM private key", "a key file without a key");
	expect_refused(key, key, "client_certificate", "rsa.pem",
	    "no PEM certificate", "a certificate file without a certificate");
	expect_refused(cert, dir, "client_certificate_key", dir,
	    "not a regular file", "a directory as the key");
	p = put_key("target.pem", k1, 0, 0600);
	{
		char link[400];

		snprintf(link, sizeof(link), "%s/dangling.pem", dir);
		unlink(p);
		if (symlink(p, link) == 0)
			expect_refused(cert, link, "client_certificate_key",
			    "dangling.pem", "symbolic link to a missing",
			    "a dangling symlink");
	}

	X509_free(x1);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(small);
	EVP_PKEY_free(ec);
	test_rmtree(dir);
	return done_testing();
}
