/* SPDX-License-Identifier: ISC */
/*
 * session_config.h: the session module's configuration: its keys (the
 * store, LMDB's or Redis's, the key file, lifetimes), what --check says
 * about them, and the Redis password file.  Main thread, before the
 * workers start.
 */
#ifndef GATEHOUSE_SESSION_CONFIG_H
#define GATEHOUSE_SESSION_CONFIG_H

#include "core/config.h"

struct gh_error;
struct secret;

/* Its configuration keys (config_modules.c lists it). */
extern const struct config_module session_config_module;

/*
 * What session_init would refuse, found without creating or changing
 * anything (for --check): for LMDB a session_store whose directory is
 * missing and cannot be made, or cannot be written; for Redis a
 * redis_password_file or redis_sentinel_password_file that cannot be
 * read; and a session_key_file whose
 * directory cannot be made or written, or that is there but unusable
 * (its mode, its content).  0, or -1 with err set (never a password).
 * Blocking file system calls.
 */
int session_config_check(const struct config *cfg, struct gh_error *err);

/*
 * What --check should warn about without refusing, or NULL: a Redis store
 * (shared by replicas) with session_key_file left at its default, which
 * each replica would create for itself.  A static sentence.
 */
const char *session_config_warning(const struct config *cfg);

/*
 * Read a Redis password from `path`, the value of configuration key `key`
 * (redis_password_file, redis_sentinel_password_file), into out (its
 * first line, without the line end).  0, or -1 with err naming the key
 * and the file (never its content).
 */
int session_config_password_read(const char *key, const char *path,
    struct secret *out, struct gh_error *err);

#endif
