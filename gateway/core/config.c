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
	char *path; /* as it was opened, for messages */
	char *name[DOTENV_MAX];
	char *value[DOTENV_MAX];
	int line[DOTENV_MAX];
	int n;
};

/* Where the value being read comes from: its errors name that place, not
 * a line of the file it never was on. */
enum config_src { CONFIG_SRC_FILE, CONFIG_SRC_DOTENV, CONFIG_SRC_ENV };

#define CONFIG_MAX_SEEN 256

/* Parse state: where we are and how many errors so far. */
struct config_parse {
	const char *cp_file;
	int cp_line; /* of the file, or of the .env for CONFIG_SRC_DOTENV */
	enum config_src cp_src;
	const char *cp_var; /* the .env or environment variable's name */
	int cp_errors;
	FILE *cp_errf;
	struct config_dotenv cp_dotenv;
	/* Each key given a value so far, from wherever, and the file's line
	 * that set it (0 when it came from .env or the environment), to
	 * refuse duplicates and to know which required keys are missing. */
	const struct config_key *cp_seen_key[CONFIG_MAX_SEEN];
	int cp_seen_line[CONFIG_MAX_SEEN];
	int cp_nseen;
	/* Keys whose value was refused: the checks that would only repeat
	 * the same mistake in other words ("missing", "neither ... is set")
	 * are not run for them. */
	const struct config_key *cp_failed[CONFIG_MAX_SEEN];
	int cp_nfailed;
};

static void config_error(struct config_parse *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
config_error(struct config_parse *cp, const char *fmt, ...)
{
	va_list ap;

	if (cp->cp_src == CONFIG_SRC_ENV)
		fprintf(cp->cp_errf, "%s (environment): ", cp->cp_var);
	else if (cp->cp_src == CONFIG_SRC_DOTENV)
		fprintf(cp->cp_errf, "%s:%d %s: ", cp->cp_dotenv.path,
		    cp->cp_line, cp->cp_var);
	else if (cp->cp_line > 0)
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

static const struct config_key *
config_key_lookup(const char *name)
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

const struct config_key *
config_key_find(const char *name)
{
	const struct config_key *k;
	const char *dot;
	char head[64];

	k = config_key_lookup(name);
	if (k != NULL)
		return k;
	/* "token.graph": the family "token." */
	dot = strchr(name, '.');
	if (dot == NULL || (size_t)(dot - name) + 2 > sizeof(head))
		return NULL;
	memcpy(head, name, (size_t)(dot - name) + 1);
	head[dot - name + 1] = '\0';
	k = config_key_lookup(head);
	return k != NULL && (k->ck_flags & CONFIG_PREFIX) ? k : NULL;
}

/* The SUFFIX of a CONFIG_PREFIX key's "NAME.SUFFIX" when it is well
 * formed, else NULL. */
static const char *
config_key_suffix(const char *name)
{
	const char *s = strchr(name, '.');
	size_t n;

	if (s == NULL)
		return NULL;
	s++;
	n = strspn(s,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
	if (n == 0 || n > CONFIG_SUFFIX_MAX || s[n] != '\0')
		return NULL;
	return s;
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

	char name[64];

	snprintf(name, sizeof(name), "%s%s", k->ck_name,
	    (k->ck_flags & CONFIG_PREFIX) ? "NAME" : "");
	fprintf(f, "  %-28s %s\n", name, k->ck_help);
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

/* The index + 1 of k among the keys set so far, or 0 when it is unset. */
static int
config_seen(struct config_parse *cp, const struct config_key *k)
{
	int i;

	for (i = 0; i < cp->cp_nseen; i++)
		if (cp->cp_seen_key[i] == k)
			return i + 1;
	return 0;
}

static void
config_mark_seen(struct config_parse *cp, const struct config_key *k, int line)
{
	if (config_seen(cp, k) != 0 || cp->cp_nseen >= CONFIG_MAX_SEEN)
		return;
	cp->cp_seen_key[cp->cp_nseen] = k;
	cp->cp_seen_line[cp->cp_nseen++] = line;
}

static int
config_failed(struct config_parse *cp, const struct config_key *k)
{
	int i;

	for (i = 0; i < cp->cp_nfailed; i++)
		if (cp->cp_failed[i] == k)
			return 1;
	return 0;
}

static void
config_mark_failed(struct config_parse *cp, const struct config_key *k)
{
	if (config_failed(cp, k) || cp->cp_nfailed >= CONFIG_MAX_SEEN)
		return;
	cp->cp_failed[cp->cp_nfailed++] = k;
}

/*
 * Whether a value is still the placeholder of a sample: "<client id>" as
 * in the MSAL sample's .env, or "Enter_the_Application_Id_Here" as in its
 * Node.js sibling.  Such a value often parses (a client id is any text),
 * so without this the mistake shows only at the provider, at sign-in.
 */
static int
config_placeholder(const char *v)
{
	const char *lt, *p;

	if (strstr(v, "Enter_the_") != NULL && strstr(v, "_Here") != NULL)
		return 1;
	for (lt = strchr(v, '<'); lt != NULL; lt = strchr(lt + 1, '<')) {
		p = lt + 1;
		if (!isalpha((unsigned char)*p))
			continue;
		while (isalnum((unsigned char)*p) || *p == ' ' || *p == '_' ||
		    *p == '-' || *p == '.')
			p++;
		if (*p == '>')
			return 1;
	}
	return 0;
}

/* A line of a family of keys (CONFIG_PREFIX): its parser gets "SUFFIX
 * VALUE".  A refused value is never echoed: the parser's message names
 * what is wrong. */
static void
config_set_family(struct config_parse *cp, struct config *cfg,
    const struct config_key *k, const char *name, const char *value)
{
	const char *suffix = config_key_suffix(name), *errstr = NULL;
	char shown[96], *arg;

	if (suffix == NULL) {
		config_error(cp,
		    "\"%s\": the name after \"%s\" must be 1 to %d "
		    "letters, digits, '_' or '-'",
		    log_sanitize(shown, sizeof(shown), name), k->ck_name,
		    CONFIG_SUFFIX_MAX);
		return;
	}
	if (asprintf(&arg, "%s %s", suffix, value) == -1) {
		config_error(cp, "out of memory");
		return;
	}
	if (k->ck_parse(cfg, k, arg, cp->cp_line, &errstr) == -1)
		config_error(cp, "%s: %s", name, errstr);
	else
		config_mark_seen(
		    cp, k, cp->cp_src == CONFIG_SRC_FILE ? cp->cp_line : 0);
	free(arg);
}

/* Give key `name` its value.  `replace`: an environment override, which
 * takes the place of whatever the file or .env said. */
static void
config_set(struct config_parse *cp, struct config *cfg, const char *name,
    const char *value, int replace)
{
	const struct config_key *k;
	const char *errstr = NULL;
	/* The file names the key itself; .env and the environment are named
	 * by their variable in the message's prefix already. */
	const char *label = cp->cp_src == CONFIG_SRC_FILE ? name : NULL;
	int prev;

	k = config_key_find(name);
	if (k == NULL) {
		char shown[64];

		config_error(cp, "unknown key \"%s\"",
		    log_sanitize(shown, sizeof(shown), name));
		return;
	}
	prev = config_seen(cp, k);
	if (prev != 0 && !replace && !(k->ck_flags & CONFIG_MULTI)) {
		config_error(cp, "\"%s\" is already set on line %d", name,
		    cp->cp_seen_line[prev - 1]);
		return;
	}
	if (*value == '\0' && (k->ck_flags & CONFIG_REQUIRED)) {
		config_mark_failed(cp, k);
		config_error(cp, "\"%s\" needs a value", name);
		return;
	}
	if (!(k->ck_flags & CONFIG_TEXT) && config_placeholder(value)) {
		config_mark_failed(cp, k);
		if (k->ck_flags & CONFIG_SECRET)
			config_error(cp,
			    "%s%sthe value is a placeholder from a sample; put "
			    "the real one here",
			    label != NULL ? label : "",
			    label != NULL ? ": " : "");
		else {
			char shown[96];

			config_error(cp,
			    "%s%s\"%s\" is a placeholder from a sample; put "
			    "the "
			    "real value here",
			    label != NULL ? label : "",
			    label != NULL ? ": " : "",
			    log_sanitize(shown, sizeof(shown), value));
		}
		return;
	}
	if (k->ck_flags & CONFIG_PREFIX) {
		config_set_family(cp, cfg, k, name, value);
		return;
	}
	if (k->ck_parse(cfg, k, value, cp->cp_line, &errstr) == -1) {
		config_mark_failed(cp, k);
		/* Secrets are never echoed back, even when malformed, nor
		 * a value that may carry a password (user:pass@host). */
		if ((k->ck_flags & CONFIG_SECRET) || strchr(value, '@') != NULL)
			config_error(cp, "%s%s%s", label != NULL ? label : "",
			    label != NULL ? ": " : "", errstr);
		else {
			char shown[96];

			config_error(cp, "%s%s%s (got \"%s\")",
			    label != NULL ? label : "",
			    label != NULL ? ": " : "", errstr,
			    log_sanitize(shown, sizeof(shown), value));
		}
		return;
	}
	config_mark_seen(
	    cp, k, cp->cp_src == CONFIG_SRC_FILE ? cp->cp_line : 0);
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
	if (expanded == NULL) {
		const struct config_key *k = config_key_find(key);

		if (k != NULL)
			config_mark_failed(cp, k);
		return;
	}
	config_set(cp, cfg, key, expanded, 0);
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
	struct config_dotenv *de = &cp->cp_dotenv;
	FILE *f;
	char *line = NULL, *s, *eq, *v;
	size_t cap = 0, vl;
	int lineno = 0;

	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (getline(&line, &cap, f) != -1 && de->n < DOTENV_MAX) {
		lineno++;
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
		de->name[de->n] = strdup(config_trim(s));
		de->value[de->n] = strdup(v);
		de->line[de->n] = lineno;
		if (de->name[de->n] == NULL || de->value[de->n] == NULL) {
			free(de->name[de->n]);
			free(de->value[de->n]);
			break;
		}
		de->n++;
	}
	free(line);
	fclose(f);
	if (de->n > 0 && de->path == NULL)
		de->path = strdup(path);
}

static void
config_apply_dotenv(struct config_parse *cp, struct config *cfg)
{
	const struct config_dotenv *de = &cp->cp_dotenv;
	const struct config_key *k;
	size_t i;
	int j, last;

	for (i = 0;
	     i < sizeof(config_dotenv_map) / sizeof(config_dotenv_map[0]);
	     i++) {
		k = config_key_find(config_dotenv_map[i].key);
		if (k == NULL || config_seen(cp, k) != 0)
			continue; /* the file wins over .env */
		/* A name given twice: the last one counts, as in a shell. */
		last = -1;
		for (j = 0; j < de->n; j++)
			if (strcmp(de->name[j], config_dotenv_map[i].env) == 0)
				last = j;
		if (last == -1 || de->value[last][0] == '\0')
			continue;
		cp->cp_src = CONFIG_SRC_DOTENV;
		cp->cp_var = de->name[last];
		cp->cp_line = de->line[last];
		config_set(cp, cfg, k->ck_name, de->value[last], 0);
		cfg->cf_from_dotenv = 1;
	}
	cp->cp_src = CONFIG_SRC_FILE;
	cp->cp_var = NULL;
	cp->cp_line = 0;
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
	struct config_parse *cp = ea->cp;
	char name[96];
	const char *v;
	size_t i;

	snprintf(name, sizeof(name), "GATEHOUSE_%s", k->ck_name);
	for (i = 10; name[i] != '\0'; i++)
		name[i] = (char)toupper((unsigned char)name[i]);
	v = getenv(name);
	if (v == NULL || (k->ck_flags & CONFIG_PREFIX))
		return;
	cp->cp_src = CONFIG_SRC_ENV;
	cp->cp_var = name;
	cp->cp_line = 0;
	/* A repeatable key (route) cannot be overridden from one variable:
	 * appended after the file's lines it would sit behind a catch-all.
	 * Said aloud, so the variable is not silently without effect. */
	if (k->ck_flags & CONFIG_MULTI)
		config_error(cp,
		    "%s lines are read from the file only (their order "
		    "matters), not from the environment",
		    k->ck_name);
	else
		config_set(cp, ea->cfg, k->ck_name, v, 1);
	cp->cp_src = CONFIG_SRC_FILE;
	cp->cp_var = NULL;
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

	if ((k->ck_flags & CONFIG_REQUIRED) && config_seen(ea->cp, k) == 0 &&
	    !config_failed(ea->cp, k))
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

/* Whether one of module m's keys had its value refused and so was left
 * unset (a repeatable key keeps its other lines, a checkable whole). */
static int
config_module_failed(struct config_parse *cp, const struct config_module *m)
{
	const struct config_key *k;
	int i;

	for (i = 0; i < cp->cp_nfailed; i++) {
		k = cp->cp_failed[i];
		if (k >= m->cm_keys && k < m->cm_keys + m->cm_nkeys &&
		    !(k->ck_flags & CONFIG_MULTI) && config_seen(cp, k) == 0)
			return 1;
	}
	return 0;
}

static void
config_check_modules(struct config_parse *cp, struct config *cfg)
{
	const struct config_module *const *m;

	/* A module whose own key was refused, and so is unset, is not
	 * checked further: its checks would blame that key's absence, a
	 * second and misleading error for the one mistake already said. */
	for (m = config_modules_list; *m != NULL; m++)
		if ((*m)->cm_check != NULL && !config_module_failed(cp, *m))
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
	free(cp.cp_dotenv.path);
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
