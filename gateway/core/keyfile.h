/* SPDX-License-Identifier: ISC */
/*
 * keyfile.h: the master key file (session_key_file) and the process's
 * subkeys derived from it: one seals the sign-in flow cookies, the other
 * the tokens at rest in the session store.
 *
 * Threads: keyfile_init and keyfile_shutdown on the main thread, before
 * the workers start and after they end; the keys are read-only between
 * them, so any thread may use them then.
 */
#ifndef GATEHOUSE_KEYFILE_H
#define GATEHOUSE_KEYFILE_H

#include "core/crypto.h"

struct gh_error;

/*
 * Load the 32-byte master key from `path` into out (new content; the
 * caller calls crypto_secret_cleanup).
 *
 * If the file does not exist it is created atomically: 32 random bytes as
 * 64 lower-case hex characters and a newline go to a mode-0600 temporary
 * file in the same directory (O_CREAT|O_EXCL), which is fsync'd and then
 * linked to `path` (so a concurrent starter never sees a half-written key
 * and both end up with the same one).  The directory must exist.
 *
 * An existing file is refused when it is not a regular file, when it is
 * accessible by group or others (mode & 077; the message names the path,
 * the mode and the fix "chmod 600"), when it cannot be read, or when its
 * content is not exactly 64 hex characters optionally followed by one
 * newline.  Returns 0, or -1 with err set.  Call before the event loop
 * (blocking I/O).
 */
int keyfile_load(const char *path, struct secret *out, struct gh_error *err);

/*
 * The process's keys: create the key file's directory (0700) when missing,
 * load the master key (keyfile_load) and derive the cookie and token
 * subkeys from it; the master itself is not kept.  0, or -1 with err set.
 */
int keyfile_init(const char *path, struct gh_error *err);
void keyfile_shutdown(void);

/* The subkeys (borrowed; empty before keyfile_init). */
const struct secret *keyfile_cookie_key(void);
const struct secret *keyfile_token_key(void);

/*
 * The whole of a PEM file (a certificate, a chain or a private key) into a
 * new NUL-terminated buffer (*len without the NUL; the caller cleanses and
 * frees it), at most max bytes.  `what` is the configuration key, for the
 * messages.  A private key gets session_key_file's rules: a regular file
 * (symlinks followed, as a Kubernetes secret volume is made of them) that
 * neither group nor others may read or write.  NULL with err set.
 */
char *keyfile_read_pem(const char *what, const char *path, int private,
    size_t max, size_t *len, struct gh_error *err);

/* OpenSSL's pem_password_cb for an unattended start: nobody can type a
 * pass phrase, so an encrypted key fails to load; *(int *)u, when u is
 * not NULL, records that one was asked for. */
int keyfile_pem_no_pass(char *buf, int size, int rwflag, void *u);

#endif
