/* SPDX-License-Identifier: ISC */
/*
 * tls.c: the listener's TLS context.  Built from tls_certificate (PEM,
 * the server's certificate first, then its chain) and tls_certificate_key
 * (PEM, unencrypted, readable by the owner only) with Mozilla's
 * "intermediate" settings; one context is in force for new connections
 * and SIGHUP replaces it when the new files are good.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/config.h"
#include "core/error.h"
#include "core/keyfile.h"
#include "core/log.h"
#include "http/tls.h"

/* A PEM key is a few KiB, a chain rarely more than a few dozen. */
#define TLS_KEY_MAX (64 * 1024)
#define TLS_CHAIN_MAX (1024 * 1024)
#define TLS_CHAIN_CERTS 16 /* certificates after the server's, at most */

/*
 * Mozilla's "intermediate" configuration: TLS 1.2 with forward-secret
 * AEAD suites only (ECDHE with AES-GCM or ChaCha20-Poly1305; the DHE
 * suites are left out, as they need a parameter file and every client
 * that has them has ECDHE), TLS 1.3 with its three suites.  The client
 * chooses among them (no server preference): every one is strong, and a
 * phone without AES instructions picks ChaCha20.
 */
#define TLS_CIPHERS_12                                                         \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_CIPHERS_13                                                         \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"                       \
	"TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:prime256v1:secp384r1"

/* Sessions resumed from the server's cache (see tls_ctx_settings). */
#define TLS_SESSION_CACHE 10240
#define TLS_SESSION_TIMEOUT 86400 /* Mozilla's one day */

#define TLS_LOG_EVERY 10 /* seconds between failure lines, per thread */

static int tls_parse_file(struct config *, const struct config_key *,
    const char *, int, const char **);

/* Sorted by name: looked up with bsearch. */
static const struct config_key tls_keys[] = {
    {"tls_certificate", tls_parse_file,
        offsetof(struct config, cf_tls_certificate), NULL,
        "With listen = host:port tls: the PEM file of the server's "
        "certificate, followed by its chain (intermediates); read again on "
        "SIGHUP.",
        0},
    {"tls_certificate_key", tls_parse_file,
        offsetof(struct config, cf_tls_certificate_key), NULL,
        "The PEM file of tls_certificate's private key: unencrypted, "
        "mode 600 (refused when group or others may read it); read again "
        "on SIGHUP.",
        0},
};

/* A path, and the line it was set on (for the check's errors). */
static int
tls_parse_file(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	char **slot = (char **)((char *)cfg + key->ck_off);

	if (value[0] == '\0') {
		*errstr = "expected the path of a PEM file";
		return -1;
	}
	free(*slot);
	*slot = strdup(value);
	if (*slot == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	if (key->ck_off == offsetof(struct config, cf_tls_certificate))
		cfg->cf_tls_certificate_line = line;
	else
		cfg->cf_tls_certificate_key_line = line;
	return 0;
}

/* The certificate, then every one after it as the chain. */
static int
tls_ctx_use_chain(SSL_CTX *ctx, const char *path, struct gh_error *err)
{
	char *text;
	size_t len = 0;
	BIO *bio = NULL;
	X509 *x;
	int n = 0, rc = -1;

	text = keyfile_read_pem(
	    "tls_certificate", path, 0, TLS_CHAIN_MAX, &len, err);
	if (text == NULL)
		return -1;
	bio = BIO_new_mem_buf(text, (int)len);
	x = bio != NULL
	    ? PEM_read_bio_X509(bio, NULL, keyfile_pem_no_pass, NULL)
	    : NULL;
	if (x == NULL) {
		gh_error_set(err, "tls_cert",
		    "tls_certificate: %s: no PEM certificate (-----BEGIN "
		    "CERTIFICATE-----) could be read from it",
		    path);
		goto done;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		gh_error_set(err, "tls_cert",
		    "tls_certificate: %s: the certificate is refused: %s", path,
		    ERR_reason_error_string(ERR_peek_last_error()));
		X509_free(x);
		goto done;
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(bio, NULL, keyfile_pem_no_pass, NULL)) !=
	    NULL) {
		/* add0: the context takes x. */
		if (++n > TLS_CHAIN_CERTS ||
		    SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			gh_error_set(err, "tls_cert",
			    "tls_certificate: %s: more than %d certificates in "
			    "the chain, or one the library refuses",
			    path, TLS_CHAIN_CERTS);
			X509_free(x);
			goto done;
		}
	}
	rc = 0;
done:
	ERR_clear_error();
	BIO_free(bio);
	free(text);
	return rc;
}

static int
tls_ctx_use_key(SSL_CTX *ctx, const char *path, struct gh_error *err)
{
	char *text;
	size_t len = 0;
	BIO *bio;
	EVP_PKEY *key = NULL;
	int asked = 0, encrypted, rc = -1;

	text = keyfile_read_pem(
	    "tls_certificate_key", path, 1, TLS_KEY_MAX, &len, err);
	if (text == NULL)
		return -1;
	bio = BIO_new_mem_buf(text, (int)len);
	if (bio != NULL)
		key = PEM_read_bio_PrivateKey(
		    bio, NULL, keyfile_pem_no_pass, &asked);
	BIO_free(bio);
	encrypted = asked ||
	    strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY") != NULL ||
	    strstr(text, "Proc-Type: 4,ENCRYPTED") != NULL;
	OPENSSL_cleanse(text, len);
	free(text);
	if (key == NULL) {
		if (encrypted)
			gh_error_set(err, "tls_key",
			    "tls_certificate_key: %s: the private key is "
			    "encrypted (gatehouse cannot ask for its pass "
			    "phrase); write it out unencrypted, mode 600, "
			    "with: openssl pkey -in %s -out NEW.pem",
			    path, path);
		else
			gh_error_set(err, "tls_key",
			    "tls_certificate_key: %s: no PEM private key "
			    "(-----BEGIN PRIVATE KEY-----, or RSA or EC "
			    "PRIVATE KEY) could be read from it",
			    path);
		goto done;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		gh_error_set(err, "tls_key_mismatch",
		    "tls_certificate_key: %s: not the private key of "
		    "tls_certificate's certificate",
		    path);
		goto done;
	}
	rc = 0;
done:
	ERR_clear_error();
	EVP_PKEY_free(key);
	return rc;
}

/* ALPN: HTTP/1.1 is all gatehouse speaks.  A client that offers only
 * something else (h2 alone) goes on without ALPN, as nginx lets it, and
 * finds out from the answer. */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h11[] = "\x08http/1.1";
	unsigned char *sel = NULL;
	unsigned char sellen = 0;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, &sellen, h11, sizeof(h11) - 1, in,
	        inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	*outlen = sellen;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Protocol settings.  Session tickets are off: OpenSSL's ticket key would
 * live as long as the context, unrotated, so one key stolen from memory
 * would open every recorded session since the start; resumption uses the
 * server's own session cache instead (bounded, per context, so it is
 * emptied by each reload).  Renegotiation (a client's way to make the
 * server work again and again on one connection) and compression (CRIME)
 * are off.
 */
static int
tls_ctx_settings(SSL_CTX *ctx)
{
	static const unsigned char sid[] = "gatehouse";

	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERS_13) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1)
		return -1;
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* 10,000 idle connections must not hold 2 x 16 KiB of record
	 * buffers each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE);
	SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT);
	if (SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1) != 1)
		return -1;
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
	return 0;
}

/* A new context from the two files, or NULL with err set. */
static SSL_CTX *
tls_ctx_build(const char *cert, const char *key, struct gh_error *err)
{
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || tls_ctx_settings(ctx) == -1) {
		gh_error_set(err, "tls_ctx", "cannot set up TLS: %s",
		    ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (tls_ctx_use_chain(ctx, cert, err) == -1 ||
	    tls_ctx_use_key(ctx, key, err) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int
tls_config_check(struct config *cfg, config_report_fn *report, void *arg)
{
	struct gh_error err;
	int line;

	if (!cfg->cf_listen_tls) {
		if (cfg->cf_tls_certificate != NULL ||
		    cfg->cf_tls_certificate_key != NULL) {
			report(arg,
			    cfg->cf_tls_certificate != NULL
			        ? cfg->cf_tls_certificate_line
			        : cfg->cf_tls_certificate_key_line,
			    "tls_certificate and tls_certificate_key serve "
			    "only a TLS listener: add tls to the listen line "
			    "(listen = 0.0.0.0:8443 tls)");
			return 1;
		}
		return 0;
	}
	if (cfg->cf_tls_certificate == NULL ||
	    cfg->cf_tls_certificate_key == NULL) {
		report(arg, 0,
		    "listen has tls, so tls_certificate and "
		    "tls_certificate_key (PEM files) are required");
		return 1;
	}
	/* A browser that came over TLS must be sent back to an https
	 * callback, and its cookies must be Secure. */
	if (cfg->cf_redirect_uri != NULL &&
	    strncmp(cfg->cf_redirect_uri, "http://", 7) == 0) {
		report(arg, 0,
		    "listen has tls, so redirect_uri must be an https:// "
		    "URL");
		return 1;
	}
	SSL_CTX_free(cfg->cf_tls_ctx);
	cfg->cf_tls_ctx = tls_ctx_build(
	    cfg->cf_tls_certificate, cfg->cf_tls_certificate_key, &err);
	if (cfg->cf_tls_ctx == NULL) {
		line = strncmp(err.ge_msg, "tls_certificate_key", 19) == 0
		    ? cfg->cf_tls_certificate_key_line
		    : cfg->cf_tls_certificate_line;
		report(arg, line, err.ge_msg);
		return 1;
	}
	return 0;
}

static void
tls_config_free(struct config *cfg)
{
	free(cfg->cf_tls_certificate);
	free(cfg->cf_tls_certificate_key);
	SSL_CTX_free(cfg->cf_tls_ctx);
	cfg->cf_tls_ctx = NULL;
}

const struct config_module tls_config_module = {"tls", tls_keys,
    sizeof(tls_keys) / sizeof(tls_keys[0]), tls_config_check, tls_config_free};

/* --- the context in force -------------------------------------------- */

/*
 * Taken once per accepted connection (never per request) and by the
 * swap: a TLS handshake costs thousands of times more than the lock, and
 * a reader could otherwise see a context the swap is freeing.  Sessions
 * made from a context hold a reference to it, so the old one lives on
 * for the connections that use it.
 */
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *tls_ctx;

/* The certificate's validity in words into buf; 1 when it is not valid
 * now (expired, or not yet). */
static int
tls_validity(SSL_CTX *ctx, char *buf, size_t size)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	char subj[256], until[64];
	BIO *b;
	int n, bad = 0;

	if (x == NULL) {
		snprintf(buf, size, "no certificate");
		return 1;
	}
	X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
	until[0] = '\0';
	b = BIO_new(BIO_s_mem());
	if (b != NULL && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
		n = BIO_read(b, until, sizeof(until) - 1);
		until[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		snprintf(
		    buf, size, "certificate %s expired on %s", subj, until);
		bad = 1;
	} else if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
		snprintf(buf, size, "certificate %s is not valid yet", subj);
		bad = 1;
	} else
		snprintf(
		    buf, size, "certificate %s valid until %s", subj, until);
	return bad;
}

/* Make ctx (a reference taken) the one in force, and say so. */
static void
tls_install(SSL_CTX *ctx, const char *what)
{
	SSL_CTX *old;
	char words[512];

	SSL_CTX_up_ref(ctx);
	pthread_mutex_lock(&tls_lock);
	old = tls_ctx;
	tls_ctx = ctx;
	pthread_mutex_unlock(&tls_lock);
	SSL_CTX_free(old);
	if (tls_validity(ctx, words, sizeof(words)))
		log_warnx("%s: %s: browsers will refuse it", what, words);
	else
		log_info("%s: %s", what, words);
}

void
tls_start(const struct config *cfg)
{
	if (cfg->cf_listen_tls && cfg->cf_tls_ctx != NULL)
		tls_install(cfg->cf_tls_ctx, "tls");
}

void
tls_stop(void)
{
	pthread_mutex_lock(&tls_lock);
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	pthread_mutex_unlock(&tls_lock);
}

void
tls_reload(const struct config *cfg)
{
	struct gh_error err;
	SSL_CTX *ctx;

	if (!cfg->cf_listen_tls)
		return;
	ctx = tls_ctx_build(
	    cfg->cf_tls_certificate, cfg->cf_tls_certificate_key, &err);
	if (ctx == NULL) {
		log_warnx(
		    "tls reload: %s; the certificate in use stays", err.ge_msg);
		return;
	}
	tls_install(ctx, "tls reload");
	SSL_CTX_free(ctx);
}

SSL *
tls_ssl_new(void)
{
	SSL *ssl = NULL;

	pthread_mutex_lock(&tls_lock);
	if (tls_ctx != NULL)
		ssl = SSL_new(tls_ctx);
	pthread_mutex_unlock(&tls_lock);
	return ssl;
}

void
tls_log_failure(const char *peer, unsigned long err)
{
	static __thread struct log_limit limit;
	const char *why = err != 0 ? ERR_reason_error_string(err) : NULL;
	unsigned missed;

	/* Scanners and clients with old protocols fail by the thousand:
	 * worth a line for whoever debugs one, never a flood. */
	if (log_level >= LOG_LEVEL_DEBUG &&
	    log_limit_pass(&limit, TLS_LOG_EVERY, &missed))
		log_debug("tls_failed client=%s reason=\"%s\" suppressed=%u",
		    peer, why != NULL ? why : "connection closed", missed);
	ERR_clear_error();
}

const char *
tls_check_summary(
    const struct config *cfg, char *buf, size_t size, int *warning)
{
	if (!cfg->cf_listen_tls || cfg->cf_tls_ctx == NULL)
		return NULL;
	*warning = tls_validity(cfg->cf_tls_ctx, buf, size);
	return buf;
}
