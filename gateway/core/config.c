/* SPDX-License-Identifier: ISC */
/*
 * config.c: the configuration file format.  It knows key = value lines,
 * comments, ${NAME} expansion, the MSAL sample's .env and GATEHOUSE_<KEY>
 * overrides; it does not know the keys, which each module owns and
 * config_modules.c lists.
 */
#include <sys/socket.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

/* Keys of the MSAL sample's .env and the keys they fill. */
static const struct {
	const char *env;
	const char *key;
} config_dotenv_map[] = {
    {"AUTHORITY", "authority"},
    {"CLIENT_ID", "client_id"},
    {"CLIENT_SECRET", "client_secret"},
    {"OIDC_AUTHORITY", "oidc_issuer"},
    {"REDIRECT_URI", "redirect_uri"},
    {"SCOPE", "scopes"},
};

#define DOTENV_MAX 64

struct config_dotenv {
	char *name[DOTENV_MAX];
	char *value[DOTENV_MAX];
	int n;
};

/* Parse state: where we are and how many errors so far. */
struct config_parse {
	const char *cp_file;
	int cp_line;
	int cp_errors;
	FILE *cp_errf;
	struct config_dotenv cp_dotenv;
	/* line on which each key was set, to refuse duplicates; 0 = unset */
	const struct config_key *cp_seen_key[256];
	int cp_seen_line[256];
	int cp_nseen;
};

static void config_error(struct config_parse *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
config_error(struct config_parse *cp, const char *fmt, ...)
{
	va_list ap;

	if (cp->cp_line > 0)
		fprintf(cp->cp_errf, "%s:%d: ", cp->cp_file, cp->cp_line);
	else
		fprintf(cp->cp_errf, "%s: ", cp->cp_file);
	va_start(ap, fmt);
	vfprintf(cp->cp_errf, fmt, ap);
	va_end(ap);
	fputc('\n', cp->cp_errf);
	cp->cp_errors++;
}

static int
config_key_cmp(const void *a, const void *b)
{
	const char *name = a;
	const struct config_key *k = b;

	return strcmp(name, k->ck_name);
}

const struct config_key *
config_key_find(const char *name)
{
	const struct config_module *const *m;
	const struct config_key *k;

	for (m = config_modules_list; *m != NULL; m++) {
		/* Each module keeps its table sorted by name. */
		k = bsearch(name, (*m)->cm_keys, (*m)->cm_nkeys,
		    sizeof(struct config_key), config_key_cmp);
		if (k != NULL)
			return k;
	}
	return NULL;
}

void
config_key_foreach(void (*fn)(const struct config_key *, void *), void *arg)
{
	const struct config_module *const *m;
	size_t j;

	for (m = config_modules_list; *m != NULL; m++)
		for (j = 0; j < (*m)->cm_nkeys; j++)
			fn(&(*m)->cm_keys[j], arg);
}

static void
config_print_key(const struct config_key *k, void *arg)
{
	FILE *f = arg;

	fprintf(f, "  %-28s %s\n", k->ck_name, k->ck_help);
	if (k->ck_flags & CONFIG_REQUIRED)
		fprintf(f, "  %-28s (required)\n", "");
	else if (k->ck_default != NULL)
		fprintf(f, "  %-28s default: %s\n", "", k->ck_default);
}

void
config_print_keys(FILE *f)
{
	config_key_foreach(config_print_key, f);
}

/* --- generic value parsers ------------------------------------------- */

int
config_parse_str(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	char **dst = (char **)((char *)cfg + key->ck_off);
	char *p;

	(void)line;
	p = strdup(value);
	if (p == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	free(*dst);
	*dst = p;
	return 0;
}

int
config_parse_secret(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	struct secret *dst = (struct secret *)((char *)cfg + key->ck_off);

	(void)line;
	if (crypto_secret_set(dst, value, strlen(value)) == -1) {
		*errstr = "out of memory";
		return -1;
	}
	return 0;
}

static int
config_number(
    const char *value, long long max, long long *out, const char **end)
{
	char *ep;
	long long v;

	if (!isdigit((unsigned char)value[0]))
		return -1;
	errno = 0;
	v = strtoll(value, &ep, 10);
	if (errno != 0 || v < 0 || v > max)
		return -1;
	*out = v;
	*end = ep;
	return 0;
}

int
config_parse_int(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	int *dst = (int *)((char *)cfg + key->ck_off);
	const char *end;
	long long v;

	(void)line;
	if (config_number(value, INT_MAX, &v, &end) == -1 || *end != '\0') {
		*errstr = "expected a non-negative integer";
		return -1;
	}
	*dst = (int)v;
	return 0;
}

int
config_parse_bool(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	int *dst = (int *)((char *)cfg + key->ck_off);

	(void)line;
	if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0 ||
	    strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
		*dst = 1;
	else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0 ||
	    strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
		*dst = 0;
	else {
		*errstr = "expected on or off";
		return -1;
	}
	return 0;
}

int
config_parse_duration(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	int *dst = (int *)((char *)cfg + key->ck_off);
	const char *end;
	long long v, mul = 1;

	(void)line;
	if (config_number(value, INT_MAX, &v, &end) == -1)
		goto fail;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else if (strcmp(end, "d") == 0)
		mul = 86400;
	else
		goto fail;
	if (v > INT_MAX / mul)
		goto fail;
	*dst = (int)(v * mul);
	return 0;
fail:
	*errstr = "expected a duration such as 30s, 5m, 2h or 1d";
	return -1;
}

int
config_parse_size(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	size_t *dst = (size_t *)((char *)cfg + key->ck_off);
	const char *end;
	long long v, mul;

	(void)line;
	if (config_number(value, LLONG_MAX, &v, &end) == -1)
		goto fail;
	if (*end == '\0')
		mul = 1;
	else if ((end[0] == 'k' || end[0] == 'K') && end[1] == '\0')
		mul = 1024;
	else if (end[0] == 'M' && end[1] == '\0')
		mul = 1024 * 1024;
	else if (end[0] == 'G' && end[1] == '\0')
		mul = 1024LL * 1024 * 1024;
	else
		goto fail;
	if (v > (long long)(SIZE_MAX / 2) / mul)
		goto fail;
	*dst = (size_t)(v * mul);
	return 0;
fail:
	*errstr = "expected a size such as 512, 64k, 16M or 1G";
	return -1;
}

int
config_url_split(const char *url, int *https, char **host, int *port,
    char **path, const char **errstr)
{
	const char *p, *h, *he, *pe;
	int tls, prt;
	long v;
	char *ep;

	if (strncmp(url, "https://", 8) == 0) {
		tls = 1;
		p = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		tls = 0;
		p = url + 7;
	} else {
		*errstr = "expected an http:// or https:// URL";
		return -1;
	}
	for (h = url; *h != '\0'; h++) {
		if ((unsigned char)*h <= 0x20 || (unsigned char)*h >= 0x7f) {
			*errstr = "URL contains a space or control character";
			return -1;
		}
	}
	h = p;
	pe = p + strcspn(p, "/?#");
	if (memchr(h, '@', pe - h) != NULL) {
		*errstr = "URL must not contain user information";
		return -1;
	}
	if (*h == '[') {
		he = memchr(h, ']', pe - h);
		if (he == NULL) {
			*errstr = "URL has an unterminated IPv6 address";
			return -1;
		}
		h++;
		p = he + 1;
	} else {
		he = h + strcspn(h, ":/?#");
		p = he;
	}
	if (he == h) {
		*errstr = "URL has no host";
		return -1;
	}
	prt = tls ? 443 : 80;
	if (*p == ':') {
		errno = 0;
		v = strtol(p + 1, &ep, 10);
		if (ep == p + 1 || v < 1 || v > 65535 || ep != pe) {
			*errstr = "URL has a bad port";
			return -1;
		}
		prt = (int)v;
	} else if (p != pe) {
		*errstr = "URL has junk after the host";
		return -1;
	}
	if (strchr(pe, '#') != NULL) {
		*errstr = "URL must not contain a fragment";
		return -1;
	}
	if (https != NULL)
		*https = tls;
	if (port != NULL)
		*port = prt;
	if (host != NULL) {
		*host = strndup(h, he - h);
		if (*host == NULL)
			goto oom;
	}
	if (path != NULL) {
		*path = strdup(pe);
		if (*path == NULL) {
			if (host != NULL) {
				free(*host);
				*host = NULL;
			}
			goto oom;
		}
	}
	return 0;
oom:
	*errstr = "out of memory";
	return -1;
}

static int
config_cidr_parse(const char *s, struct config_cidr *c)
{
	char addr[64], *slash, *ep;
	long prefix;
	int max;

	if (strlen(s) >= sizeof(addr))
		return -1;
	strcpy(addr, s);
	slash = strchr(addr, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, c->cc_addr) == 1) {
		c->cc_family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->cc_addr) == 1) {
		c->cc_family = AF_INET6;
		max = 128;
	} else
		return -1;
	prefix = max;
	if (slash != NULL) {
		prefix = strtol(slash, &ep, 10);
		if (*slash == '\0' || *ep != '\0' || prefix < 0 || prefix > max)
			return -1;
	}
	c->cc_prefix = (int)prefix;
	return 0;
}

int
config_parse_cidrs(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	struct config_cidrs *dst =
	    (struct config_cidrs *)((char *)cfg + key->ck_off);
	char *copy, *tok, *save = NULL;
	int n = 0;

	(void)line;
	copy = strdup(value);
	if (copy == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	for (tok = strtok_r(copy, " ,\t", &save); tok != NULL;
	     tok = strtok_r(NULL, " ,\t", &save)) {
		if (n == CONFIG_MAX_CIDRS) {
			*errstr = "too many entries (at most 64)";
			goto fail;
		}
		if (config_cidr_parse(tok, &dst->cs_v[n]) == -1) {
			*errstr = "expected IP addresses or CIDR blocks such "
			          "as 10.0.0.0/8 or ::1";
			goto fail;
		}
		n++;
	}
	dst->cs_n = n;
	free(copy);
	return 0;
fail:
	free(copy);
	return -1;
}

int
config_cidrs_contains(const struct config_cidrs *list, const char *addr)
{
	unsigned char a[16];
	int family, i, bits, bytes;

	if (list == NULL || list->cs_n == 0 || addr == NULL)
		return 0;
	if (inet_pton(AF_INET, addr, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, addr, a) == 1)
		family = AF_INET6;
	else
		return 0;
	for (i = 0; i < list->cs_n; i++) {
		const struct config_cidr *c = &list->cs_v[i];

		if (c->cc_family != family)
			continue;
		bits = c->cc_prefix;
		bytes = bits / 8;
		if (memcmp(a, c->cc_addr, bytes) != 0)
			continue;
		if (bits % 8 != 0) {
			unsigned char mask =
			    (unsigned char)(0xff << (8 - bits % 8));

			if ((a[bytes] & mask) != (c->cc_addr[bytes] & mask))
				continue;
		}
		return 1;
	}
	return 0;
}

int
config_parse_url(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)line;
	if (config_url_split(value, NULL, NULL, NULL, NULL, errstr) == -1)
		return -1;
	return config_parse_str(cfg, key, value, line, errstr);
}

/* --- the file format ----------------------------------------------- */

static char *
config_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s &&
	    (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static const char *
config_lookup_var(struct config_parse *cp, const char *name)
{
	const char *v;
	int i;

	v = getenv(name);
	if (v != NULL)
		return v;
	for (i = 0; i < cp->cp_dotenv.n; i++)
		if (strcmp(cp->cp_dotenv.name[i], name) == 0)
			return cp->cp_dotenv.value[i];
	return NULL;
}

/* Expand ${NAME} from the environment, then .env; new string or NULL. */
static char *
config_expand(struct config_parse *cp, const char *in)
{
	char *out = NULL, name[128];
	size_t len = 0, cap = 0, n;
	const char *p = in, *e, *v, *chunk;
	size_t chunklen;

	while (*p != '\0') {
		if (p[0] == '$' && p[1] == '{') {
			e = strchr(p + 2, '}');
			n = e == NULL ? 0 : (size_t)(e - p - 2);
			if (e == NULL || n == 0 || n >= sizeof(name)) {
				config_error(
				    cp, "unterminated or empty ${...}");
				goto fail;
			}
			memcpy(name, p + 2, n);
			name[n] = '\0';
			v = config_lookup_var(cp, name);
			if (v == NULL) {
				char shown[64];

				config_error(cp, "${%s} is not set",
				    log_sanitize(shown, sizeof(shown), name));
				goto fail;
			}
			chunk = v;
			chunklen = strlen(v);
			p = e + 1;
		} else {
			chunk = p;
			chunklen = 1;
			p++;
		}
		if (len + chunklen + 1 > cap) {
			char *np;

			cap = (len + chunklen + 1) * 2;
			np = realloc(out, cap);
			if (np == NULL)
				goto fail;
			out = np;
		}
		memcpy(out + len, chunk, chunklen);
		len += chunklen;
	}
	if (out == NULL)
		return strdup("");
	out[len] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

static int
config_seen(struct config_parse *cp, const struct config_key *k)
{
	int i;

	for (i = 0; i < cp->cp_nseen; i++)
		if (cp->cp_seen_key[i] == k)
			return cp->cp_seen_line[i];
	return 0;
}

static void
config_mark_seen(struct config_parse *cp, const struct config_key *k, int line)
{
	if (config_seen(cp, k) != 0 ||
	    cp->cp_nseen >=
	        (int)(sizeof(cp->cp_seen_line) / sizeof(cp->cp_seen_line[0])))
		return;
	cp->cp_seen_key[cp->cp_nseen] = k;
	cp->cp_seen_line[cp->cp_nseen++] = line;
}

static void
config_set(struct config_parse *cp, struct config *cfg, const char *name,
    const char *value)
{
	const struct config_key *k;
	const char *errstr = NULL;
	int prev;

	k = config_key_find(name);
	if (k == NULL) {
		char shown[64];

		config_error(cp, "unknown key \"%s\"",
		    log_sanitize(shown, sizeof(shown), name));
		return;
	}
	prev = config_seen(cp, k);
	if (prev != 0 && !(k->ck_flags & CONFIG_MULTI)) {
		config_error(
		    cp, "\"%s\" is already set on line %d", name, prev);
		return;
	}
	if (*value == '\0' && (k->ck_flags & CONFIG_REQUIRED)) {
		config_error(cp, "\"%s\" needs a value", name);
		return;
	}
	if (k->ck_parse(cfg, k, value, cp->cp_line, &errstr) == -1) {
		/* Secrets are never echoed back, even when malformed, nor
		 * a value that may carry a password (user:pass@host). */
		if ((k->ck_flags & CONFIG_SECRET) || strchr(value, '@') != NULL)
			config_error(cp, "%s: %s", name, errstr);
		else {
			char shown[96];

			config_error(cp, "%s: %s (got \"%s\")", name, errstr,
			    log_sanitize(shown, sizeof(shown), value));
		}
		return;
	}
	config_mark_seen(cp, k, cp->cp_line);
}

static void
config_parse_line(struct config_parse *cp, struct config *cfg, char *line)
{
	char *s, *eq, *key, *value, *expanded, *hash;

	s = config_trim(line);
	if (*s == '\0' || *s == '#')
		return;
	/* A '#' after whitespace starts a comment; one inside a word (a
	 * URL fragment, a secret) does not. */
	for (hash = s; (hash = strchr(hash, '#')) != NULL; hash++) {
		if (hash[-1] == ' ' || hash[-1] == '\t') {
			*hash = '\0';
			s = config_trim(s);
			break;
		}
	}
	eq = strchr(s, '=');
	if (eq == NULL) {
		/* "route ..." lines have no '='; the first word is the key. */
		eq = s + strcspn(s, " \t");
		if (*eq == '\0') {
			config_error(cp, "expected \"key = value\"");
			return;
		}
	} else {
		char *sp = s + strcspn(s, " \t");

		/* "route /a=b ..." : a space before the '=' means no '='. */
		if (sp < eq && *config_trim(sp) != '=')
			eq = sp;
	}
	*eq = '\0';
	key = config_trim(s);
	value = config_trim(eq + 1);
	if (*value == '=')
		value = config_trim(value + 1);
	if (*key == '\0') {
		config_error(cp, "missing key before \"=\"");
		return;
	}
	expanded = config_expand(cp, value);
	if (expanded == NULL)
		return;
	config_set(cp, cfg, key, expanded);
	free(expanded);
}

static int
config_read_file(struct config_parse *cp, struct config *cfg, const char *path)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(cp->cp_errf, "%s: %s\n", path, strerror(errno));
		cp->cp_errors++;
		return -1;
	}
	cp->cp_line = 0;
	while ((n = getline(&line, &cap, f)) != -1) {
		cp->cp_line++;
		if (memchr(line, '\0', n) != NULL) {
			config_error(cp, "line contains a NUL byte");
			continue;
		}
		config_parse_line(cp, cfg, line);
	}
	free(line);
	fclose(f);
	cp->cp_line = 0;
	return 0;
}

/* Read the MSAL sample's .env: NAME=VALUE, optional quotes and "export". */
static void
config_read_dotenv(struct config_parse *cp, const char *path)
{
	FILE *f;
	char *line = NULL, *s, *eq, *v;
	size_t cap = 0, vl;

	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (getline(&line, &cap, f) != -1 && cp->cp_dotenv.n < DOTENV_MAX) {
		s = config_trim(line);
		if (*s == '#' || *s == '\0')
			continue;
		if (strncmp(s, "export ", 7) == 0)
			s = config_trim(s + 7);
		eq = strchr(s, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		v = config_trim(eq + 1);
		vl = strlen(v);
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') &&
		    v[vl - 1] == v[0]) {
			v[vl - 1] = '\0';
			v++;
		}
		cp->cp_dotenv.name[cp->cp_dotenv.n] = strdup(config_trim(s));
		cp->cp_dotenv.value[cp->cp_dotenv.n] = strdup(v);
		if (cp->cp_dotenv.name[cp->cp_dotenv.n] == NULL ||
		    cp->cp_dotenv.value[cp->cp_dotenv.n] == NULL)
			break;
		cp->cp_dotenv.n++;
	}
	free(line);
	fclose(f);
}

static void
config_apply_dotenv(struct config_parse *cp, struct config *cfg)
{
	const struct config_key *k;
	size_t i;
	int j;

	for (i = 0;
	     i < sizeof(config_dotenv_map) / sizeof(config_dotenv_map[0]);
	     i++) {
		k = config_key_find(config_dotenv_map[i].key);
		if (k == NULL || config_seen(cp, k) != 0)
			continue; /* the file wins over .env */
		for (j = 0; j < cp->cp_dotenv.n; j++)
			if (strcmp(cp->cp_dotenv.name[j],
			        config_dotenv_map[i].env) == 0 &&
			    cp->cp_dotenv.value[j][0] != '\0')
				config_set(cp, cfg, k->ck_name,
				    cp->cp_dotenv.value[j]);
	}
}

struct config_env_arg {
	struct config_parse *cp;
	struct config *cfg;
};

/* GATEHOUSE_<KEY> overrides whatever the file and .env said. */
static void
config_apply_env_key(const struct config_key *k, void *arg)
{
	struct config_env_arg *ea = arg;
	char name[96];
	const char *v;
	size_t i;
	int saved;

	snprintf(name, sizeof(name), "GATEHOUSE_%s", k->ck_name);
	for (i = 10; name[i] != '\0'; i++)
		name[i] = (char)toupper((unsigned char)name[i]);
	v = getenv(name);
	/* A repeatable key (route) cannot be overridden from one variable:
	 * appended after the file's lines it would sit behind a catch-all. */
	if (v == NULL || (k->ck_flags & CONFIG_MULTI))
		return;
	saved = config_seen(ea->cp, k);
	/* An override replaces, so the duplicate check does not apply. */
	if (saved != 0 && !(k->ck_flags & CONFIG_MULTI)) {
		int i2;

		for (i2 = 0; i2 < ea->cp->cp_nseen; i2++)
			if (ea->cp->cp_seen_key[i2] == k)
				ea->cp->cp_seen_key[i2] = NULL;
	}
	config_set(ea->cp, ea->cfg, k->ck_name, v);
}

static void
config_apply_default(const struct config_key *k, void *arg)
{
	struct config_env_arg *ea = arg;
	const char *errstr = NULL;

	if (k->ck_default == NULL)
		return;
	if (k->ck_parse(ea->cfg, k, k->ck_default, 0, &errstr) == -1)
		config_error(
		    ea->cp, "built-in default of %s: %s", k->ck_name, errstr);
}

static void
config_check_required(const struct config_key *k, void *arg)
{
	struct config_env_arg *ea = arg;

	if ((k->ck_flags & CONFIG_REQUIRED) && config_seen(ea->cp, k) == 0)
		config_error(ea->cp, "missing required key \"%s\"", k->ck_name);
}

static void
config_check_report(void *arg, int line, const char *msg)
{
	struct config_parse *cp = arg;

	cp->cp_line = line;
	config_error(cp, "%s", msg);
	cp->cp_line = 0;
}

static void
config_check_modules(struct config_parse *cp, struct config *cfg)
{
	const struct config_module *const *m;

	for (m = config_modules_list; *m != NULL; m++)
		if ((*m)->cm_check != NULL)
			(*m)->cm_check(cfg, config_check_report, cp);
}

static char *
config_dirname_join(const char *path, const char *name)
{
	const char *slash = strrchr(path, '/');
	char *out;

	if (slash == NULL)
		return strdup(name);
	if (asprintf(&out, "%.*s/%s", (int)(slash - path), path, name) == -1)
		return NULL;
	return out;
}

struct config *
config_load(const char *path, FILE *errf)
{
	struct config_parse cp;
	struct config_env_arg ea;
	struct config *cfg;
	char *dotenv;
	int i;

	memset(&cp, 0, sizeof(cp));
	cp.cp_file = path;
	cp.cp_errf = errf;
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return NULL;
	cfg->cf_file = strdup(path);
	ea.cp = &cp;
	ea.cfg = cfg;
	config_key_foreach(config_apply_default, &ea);

	/* The .env beside the config, else in the working directory. */
	dotenv = config_dirname_join(path, ".env");
	if (dotenv != NULL)
		config_read_dotenv(&cp, dotenv);
	if (cp.cp_dotenv.n == 0)
		config_read_dotenv(&cp, ".env");
	free(dotenv);

	if (config_read_file(&cp, cfg, path) == 0) {
		config_apply_dotenv(&cp, cfg);
		config_key_foreach(config_apply_env_key, &ea);
		config_key_foreach(config_check_required, &ea);
		/* Cross-key checks run even after errors, so one --check
		 * shows every problem. */
		config_check_modules(&cp, cfg);
	}
	for (i = 0; i < cp.cp_dotenv.n; i++) {
		free(cp.cp_dotenv.name[i]);
		free(cp.cp_dotenv.value[i]);
	}
	if (cp.cp_errors > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Release the field of one key filled by a generic parser; a module's own
 * parsers leave theirs to its cm_free. */
static void
config_key_free(const struct config_key *k, void *arg)
{
	struct config *cfg = arg;
	void *field = (char *)cfg + k->ck_off;

	if (k->ck_parse == config_parse_str ||
	    k->ck_parse == config_parse_url) {
		free(*(char **)field);
		*(char **)field = NULL;
	} else if (k->ck_parse == config_parse_secret)
		crypto_secret_cleanup((struct secret *)field);
}

void
config_free(struct config *cfg)
{
	const struct config_module *const *m;

	if (cfg == NULL)
		return;
	config_key_foreach(config_key_free, cfg);
	for (m = config_modules_list; *m != NULL; m++)
		if ((*m)->cm_free != NULL)
			(*m)->cm_free(cfg);
	free(cfg->cf_file);
	free(cfg);
}
