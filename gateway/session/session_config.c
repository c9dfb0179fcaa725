/* SPDX-License-Identifier: ISC */
/*
 * session_config.c: the session module's configuration keys, what --check
 * finds wrong with them on this machine, and the Redis password file.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/keyfile.h"
#include "redis_url.h"
#include "session/session_config.h"

/* The smallest map worth opening: a few hundred sessions of a few KiB.
 * Below it a value like "64" (meant as 64M) would give a store that is
 * full before the first sign-in. */
#define SESSION_MAP_SIZE_MIN (1024 * 1024)
#define SESSION_PASSWORD_MAX 4096

static config_parse_fn session_parse_lifetime;
static config_parse_fn session_parse_map_size;
static config_parse_fn session_parse_store;
static config_parse_fn session_parse_key_file;
static config_parse_fn session_parse_timeout;
static config_parse_fn session_parse_off_duration;

/* Sorted by name: looked up with bsearch. */
static const struct config_key session_keys[] = {
    {"redis_password_file", config_parse_str,
        offsetof(struct config, cf_redis_password_file), NULL,
        "File holding the Redis password (its first line), for a "
        "redis:// or redis-sentinel:// session_store (the master's and "
        "replicas' requirepass); instead of a password in the URL.",
        0},
    {"redis_sentinel_password_file", config_parse_str,
        offsetof(struct config, cf_redis_sentinel_password_file), NULL,
        "File holding the sentinels' own password (their requirepass, "
        "its first line), for a redis-sentinel:// session_store whose "
        "sentinels ask for one; unset, they are asked without AUTH.",
        0},
    {"redis_timeout", session_parse_timeout,
        offsetof(struct config, cf_redis_timeout_ms), "1s",
        "Longest wait for Redis to answer one command (such as 500ms or "
        "2s); past it the connection is dropped and signed-in requests "
        "get 503 until it is back.",
        0},
    {"session_idle_timeout", session_parse_off_duration,
        offsetof(struct config, cf_session_idle_timeout), "8h",
        "A session unused this long ends (off: never).  Use is recorded "
        "at most once a minute (a quarter of the timeout when that is "
        "shorter), so a session ends between this long and a minute "
        "more after its last request, never earlier.",
        0},
    {"session_key_file", session_parse_key_file,
        offsetof(struct config, cf_session_key_file),
        "/var/lib/gatehouse/session.key",
        "Secret that seals cookies and encrypts tokens at rest; created "
        "(mode 0600) on first start when absent.  Every replica sharing a "
        "Redis store needs the same file.",
        0},
    {"session_lifetime", session_parse_lifetime,
        offsetof(struct config, cf_session_lifetime), "24h",
        "A session ends this long after sign-in, used or not.  id_token: "
        "as the MSAL sample's identity package, the session lasts while "
        "its ID token is valid, plus 210 s, and each refresh that brings "
        "a new ID token extends it.",
        0},
    {"session_map_size", session_parse_map_size,
        offsetof(struct config, cf_session_map_size), "1G",
        "Largest size of the session store (LMDB map size), at least 1M; "
        "when it is full, new sign-ins get 503 and existing sessions keep "
        "working.",
        0},
    {"session_revalidate", session_parse_off_duration,
        offsetof(struct config, cf_session_revalidate), "1h",
        "Ask the provider again, with the refresh token, whether a "
        "session still holds once this long has passed since its last "
        "sign-in or refresh (off: never): a disabled user, a reset "
        "password or revoked sessions end it (the browser signs in "
        "again, an API request gets 401); a provider that is down "
        "keeps it.",
        0},
    {"session_store", session_parse_store,
        offsetof(struct config, cf_session_store),
        "/var/lib/gatehouse/sessions",
        "Directory of the LMDB session store (created when absent), or "
        "redis://[user:password@]host:port[/db] for a Redis store that "
        "several replicas share, or "
        "redis-sentinel://host:port[,host:port...]/MASTERNAME[/db] to "
        "follow the master that Redis Sentinel names.",
        0},
};

static void session_config_free(struct config *cfg);

const struct config_module session_config_module = {"session", session_keys,
    sizeof(session_keys) / sizeof(session_keys[0]), NULL, session_config_free};

static void
session_config_free(struct config *cfg)
{
	if (cfg->cf_session_store != NULL)
		OPENSSL_cleanse(
		    cfg->cf_session_store, strlen(cfg->cf_session_store));
	free(cfg->cf_session_store);
	cfg->cf_session_store = NULL;
	free(cfg->cf_session_key_file);
	cfg->cf_session_key_file = NULL;
}

/* A duration, or id_token: the session follows its ID token's exp. */
static int
session_parse_lifetime(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	cfg->cf_session_id_token = strcmp(value, "id_token") == 0;
	if (cfg->cf_session_id_token)
		value = "24h"; /* the session cookie's Max-Age */
	return config_parse_duration(cfg, key, value, line, errstr);
}

static int
session_parse_map_size(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	if (config_parse_size(cfg, key, value, line, errstr) == -1)
		return -1;
	if (cfg->cf_session_map_size < SESSION_MAP_SIZE_MIN) {
		*errstr = "must be at least 1M";
		return -1;
	}
	return 0;
}

/* A path (LMDB) or a Redis URL, checked here so that a mistake names its
 * line; the message never quotes the value, which may hold a password. */
static int
session_parse_store(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	struct redis_url u;
	char *copy;

	(void)key;
	(void)line;
	if (redis_url_is(value)) {
		if (redis_url_parse(value, &u, errstr) == -1)
			return -1;
		redis_url_cleanup(&u);
	} else if (value[0] == '\0') {
		*errstr = "needs a directory or a redis:// URL";
		return -1;
	}
	copy = strdup(value);
	if (copy == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	if (cfg->cf_session_store != NULL)
		OPENSSL_cleanse(
		    cfg->cf_session_store, strlen(cfg->cf_session_store));
	free(cfg->cf_session_store);
	cfg->cf_session_store = copy;
	return 0;
}

static int
session_parse_key_file(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	char *copy;

	(void)line;
	copy = strdup(value);
	if (copy == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	free(cfg->cf_session_key_file);
	cfg->cf_session_key_file = copy;
	/* config.c parses a built-in default from the table's own text:
	 * any other pointer is a value someone gave. */
	cfg->cf_session_key_file_set = value != key->ck_default;
	return 0;
}

/* A duration, or off (0). */
static int
session_parse_off_duration(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	int *dst = (int *)((char *)cfg + key->ck_off);

	if (strcmp(value, "off") == 0) {
		*dst = 0;
		return 0;
	}
	if (config_parse_duration(cfg, key, value, line, errstr) == -1) {
		*errstr =
		    "expected off or a duration such as 30s, 5m, 2h or 1d";
		return -1;
	}
	return 0;
}

/* A duration in milliseconds: "500ms", or seconds as "2s" or "2";
 * from 10 ms to 60 s. */
static int
session_parse_timeout(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	int *dst = (int *)((char *)cfg + key->ck_off);
	char *end;
	long v;

	(void)line;
	errno = 0;
	if (!isdigit((unsigned char)value[0]))
		goto fail;
	v = strtol(value, &end, 10);
	if (errno != 0 || v > 60000)
		goto fail;
	if (strcmp(end, "ms") != 0) {
		if (strcmp(end, "s") != 0 && *end != '\0')
			goto fail;
		v *= 1000;
	}
	if (v < 10 || v > 60000)
		goto fail;
	*dst = (int)v;
	return 0;
fail:
	*errstr = "expected a duration from 10ms to 60s, such as 500ms or 2s";
	return -1;
}

int
session_config_password_read(
    const char *key, const char *path, struct secret *out, struct gh_error *err)
{
	char buf[SESSION_PASSWORD_MAX + 2];
	ssize_t n = 0;
	size_t len = 0, i;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		gh_error_set(
		    err, key, "%s: %s: %s", key, path, strerror(errno));
		return -1;
	}
	while (len < sizeof(buf) &&
	    (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	if (n == -1) {
		gh_error_set(
		    err, key, "%s: %s: %s", key, path, strerror(errno));
		goto done;
	}
	/* The first line is the password; what follows it is ignored. */
	for (i = 0; i < len && buf[i] != '\r' && buf[i] != '\n'; i++)
		;
	len = i;
	if (len > SESSION_PASSWORD_MAX || memchr(buf, '\0', len) != NULL) {
		gh_error_set(err, key,
		    "%s: %s: not a password (a line of at most %d bytes)", key,
		    path, SESSION_PASSWORD_MAX);
		goto done;
	}
	if (len == 0) {
		gh_error_set(err, key, "%s: %s is empty", key, path);
		goto done;
	}
	rc = crypto_secret_set(out, buf, len);
	if (rc == -1)
		gh_error_set(err, key, "out of memory");
done:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return rc;
}

/*
 * Whether directory `dir` (for key `key`) is there and writable, or could
 * be made: its nearest existing ancestor must be a directory this process
 * may write in.  Only looks (stat, access), as the store and the key file
 * make what is missing when they first open.
 */
static int
session_dir_check(const char *key, const char *dir, struct gh_error *err)
{
	struct stat sb;
	char *p, *slash;
	int rc = -1;

	p = strdup(dir[0] != '\0' ? dir : ".");
	if (p == NULL) {
		gh_error_set(err, "session_config_check", "out of memory");
		return -1;
	}
	for (;;) {
		if (stat(p, &sb) == 0) {
			if (!S_ISDIR(sb.st_mode)) {
				gh_error_set(err, "session_config_check",
				    "%s: %s cannot be made: %s is not a "
				    "directory",
				    key, dir, p);
				goto done;
			}
			if (access(p, W_OK | X_OK) == -1) {
				gh_error_set(err, "session_config_check",
				    "%s: %s: %s%s cannot be written: %s", key,
				    dir,
				    strcmp(p, dir) == 0 ? "" : "directory ",
				    strcmp(p, dir) == 0 ? "it" : p,
				    strerror(errno));
				goto done;
			}
			rc = 0;
			goto done;
		}
		if (errno != ENOENT && errno != ENOTDIR) {
			gh_error_set(err, "session_config_check", "%s: %s: %s",
			    key, p, strerror(errno));
			goto done;
		}
		/* Missing: one level up ("a/b" to "a", "/a" to "/", "a"
		 * to "."). */
		while (strlen(p) > 1 && p[strlen(p) - 1] == '/')
			p[strlen(p) - 1] = '\0';
		slash = strrchr(p, '/');
		if (slash == p)
			p[1] = '\0';
		else if (slash != NULL)
			*slash = '\0';
		else
			strcpy(p, ".");
	}
done:
	free(p);
	return rc;
}

/* The store's part of --check: its directory for LMDB; for Redis the
 * password file (the server itself is not asked: --check works offline,
 * and a Redis down at start is not a configuration error). */
static int
session_store_check(const struct config *cfg, struct gh_error *err)
{
	struct secret pw = {NULL, 0};
	int rc;

	if (!redis_url_is(cfg->cf_session_store))
		return session_dir_check(
		    "session_store", cfg->cf_session_store, err);
	if (cfg->cf_redis_password_file != NULL) {
		rc = session_config_password_read("redis_password_file",
		    cfg->cf_redis_password_file, &pw, err);
		crypto_secret_cleanup(&pw);
		if (rc == -1)
			return -1;
	}
	if (cfg->cf_redis_sentinel_password_file != NULL) {
		rc =
		    session_config_password_read("redis_sentinel_password_file",
		        cfg->cf_redis_sentinel_password_file, &pw, err);
		crypto_secret_cleanup(&pw);
		if (rc == -1)
			return -1;
	}
	return 0;
}

int
session_config_check(const struct config *cfg, struct gh_error *err)
{
	const char *kf = cfg->cf_session_key_file;
	struct secret master = {NULL, 0};
	struct stat sb;
	char *dir;
	const char *slash;
	int rc;

	if (session_store_check(cfg, err) == -1)
		return -1;
	if (lstat(kf, &sb) == 0) {
		/* There: read and check it as start-up will (it exists, so
		 * nothing is created). */
		rc = keyfile_load(kf, &master, err);
		crypto_secret_cleanup(&master);
		return rc;
	}
	slash = strrchr(kf, '/');
	if (slash == NULL)
		dir = strdup(".");
	else if (slash == kf)
		dir = strdup("/");
	else
		dir = strndup(kf, slash - kf);
	if (dir == NULL) {
		gh_error_set(err, "session_config_check", "out of memory");
		return -1;
	}
	rc = session_dir_check("session_key_file", dir, err);
	free(dir);
	return rc;
}

const char *
session_config_warning(const struct config *cfg)
{
	if (!redis_url_is(cfg->cf_session_store) ||
	    cfg->cf_session_key_file_set)
		return NULL;
	return "session_key_file is not set, and the Redis store is shared: "
	       "every replica must use the same key file (a secret mounted "
	       "at one path), or each creates its own and the others cannot "
	       "read the tokens of its sessions; set session_key_file to "
	       "that path";
}
