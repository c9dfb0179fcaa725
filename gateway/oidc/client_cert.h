/* SPDX-License-Identifier: ISC */
/*
 * client_cert.h: the client's certificate credential (client_certificate,
 * client_certificate_key).  The PEM files are read and checked once, with
 * the configuration; each token request then gets a fresh client assertion
 * signed with the key (RFC 7523, OpenID Connect Core 9: private_key_jwt).
 *
 * Threads: client_cert_load and client_cert_free on the main thread (the
 * configuration's check and free); between them the credential is
 * read-only, and client_cert_assertion may run on any worker at once.
 */
#ifndef GATEHOUSE_CLIENT_CERT_H
#define GATEHOUSE_CLIENT_CERT_H

#include <stddef.h>
#include <time.h>

struct gh_error;
struct client_cert;

/* client_assertion_alg: RSA-PSS or PKCS #1 v1.5, both with SHA-256. */
#define CLIENT_CERT_PS256 0
#define CLIENT_CERT_RS256 1

/* Seconds from an assertion's iat (= nbf) to its exp. */
#define CLIENT_CERT_LIFETIME 300

/* The form value of client_assertion_type (RFC 7523 2.2). */
#define CLIENT_CERT_ASSERTION_TYPE                                             \
	"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* Room for a base64url SHA-256 (43) or SHA-1 (27) thumbprint and NUL. */
#define CLIENT_CERT_X5T_MAX 44

/*
 * Read the certificate (the first PEM certificate in certpath; the rest of
 * a chain is not used) and its private key (the PEM key in keypath), and
 * check them: the key file is a regular file that neither group nor others
 * may read or write (as session_key_file), the key is not encrypted, is
 * RSA of at least 2048 bits and is the certificate's own key.  Returns a
 * new credential (client_cert_free), or NULL with err set: its message
 * names the key ("client_certificate" or "client_certificate_key"), the
 * file and what is wrong, never any key material.  Blocking file I/O.
 */
struct client_cert *client_cert_load(
    const char *certpath, const char *keypath, struct gh_error *err);

/* Free a credential (the key is cleansed by OpenSSL); NULL is a no-op. */
void client_cert_free(struct client_cert *cc);

/* The certificate's thumbprints, base64url without padding, as the
 * assertion's header carries them: SHA-256 (x5t#S256) and SHA-1 (x5t) of
 * its DER encoding.  Borrowed from cc. */
const char *client_cert_x5t_s256(const struct client_cert *cc);
const char *client_cert_x5t(const struct client_cert *cc);

/*
 * A new client assertion for one token request: a compact JWS whose header
 * is {"alg": PS256 or RS256 (alg, CLIENT_CERT_*), "typ": "JWT", "x5t",
 * "x5t#S256"} and whose claims are iss = sub = client_id, aud = audience
 * (the token endpoint URL), a jti of 128 random bits, iat = nbf = now and
 * exp = now + CLIENT_CERT_LIFETIME.  The caller frees it (and should
 * cleanse it: it is a credential until it expires).  NULL with err set
 * when randomness or signing fails.
 */
char *client_cert_assertion(const struct client_cert *cc, int alg,
    const char *client_id, const char *audience, time_t now,
    struct gh_error *err);

#endif
