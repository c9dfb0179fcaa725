/* SPDX-License-Identifier: ISC */
/*
 * redis_sentinel_driver.c: storage/redis_sentinel.c on an event loop of
 * its own, for tests/integration/test_redis_sentinel.py, which runs it
 * against real sentinels (and hostile fake ones) and reads what it says.
 *
 *   redis_sentinel_driver [-d] [-x] [-t ms] [-u user] [-p password_file]
 *       MASTER HOST:PORT...
 *
 * stdout: "master HOST PORT SECONDS" each time the module names a master,
 * SECONDS being CLOCK_MONOTONIC (the clock of Python's time.monotonic).
 * stdin: "refresh" calls redis_sentinel_refresh; "quit" or the end of
 * input frees the watcher and exits 0.  The module's log lines go to
 * stderr (-d: with debug lines).  -x frees the watcher from inside its
 * first callback and exits (the free-inside-fn path).  Exit 2: bad
 * arguments or settings, said on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/error.h"
#include "core/log.h"
#include "redis_sentinel.h"

struct driver {
	struct event_base *base;
	struct event *input;
	struct redis_sentinel *rs;
	int free_in_fn;
	int quitting;
	char line[256];
	size_t len;
};

static void
driver_master_cb(void *arg, const char *host, int port)
{
	struct driver *d = arg;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("master %s %d %lld.%09ld\n", host, port, (long long)ts.tv_sec,
	    ts.tv_nsec);
	fflush(stdout);
	if (d->free_in_fn) {
		redis_sentinel_free(d->rs);
		d->rs = NULL;
		event_base_loopbreak(d->base);
	}
}

/* Leave the loop with the watcher still busy and free it afterwards, as
 * a worker's teardown does. */
static void
driver_quit(struct driver *d)
{
	d->quitting = 1;
	event_base_loopbreak(d->base);
}

static void
driver_command(struct driver *d, const char *cmd)
{
	if (strcmp(cmd, "refresh") == 0 && d->rs != NULL)
		redis_sentinel_refresh(d->rs);
	else if (strcmp(cmd, "quit") == 0)
		driver_quit(d);
	else
		fprintf(stderr, "driver: unknown command \"%s\"\n", cmd);
}

static void
driver_input_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;
	char buf[256];
	ssize_t n, i;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		driver_quit(d);
		return;
	}
	for (i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (d->len < sizeof(d->line) - 1)
				d->line[d->len++] = buf[i];
			continue;
		}
		d->line[d->len] = '\0';
		d->len = 0;
		driver_command(d, d->line);
		if (d->quitting)
			return;
	}
}

/* HOST:PORT or [IPv6]:PORT into a; 0 or -1. */
static int
driver_parse_addr(const char *s, struct redis_hostport *a)
{
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hl;
	char *end;
	long port;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(a->host))
		return -1;
	memcpy(a->host, h, hl);
	a->host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port < 0 || port > 1000000)
		return -1;
	a->port = (int)port; /* redis_sentinel_new checks the range */
	return 0;
}

/* The password: the file's first line. */
static char *
driver_read_password(const char *path)
{
	char buf[512], *p;
	FILE *f = fopen(path, "r");

	if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	p = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return p;
}

int
main(int argc, char **argv)
{
	struct redis_hostport addrs[REDIS_SENTINEL_MAX + 2];
	struct redis_sentinel_cfg cfg;
	struct gh_error err;
	struct driver d;
	char *password = NULL;
	int c, i, rc = 2;

	memset(&d, 0, sizeof(d));
	memset(&cfg, 0, sizeof(cfg));
	memset(&err, 0, sizeof(err));
	cfg.sc_timeout_ms = 1000;
	while ((c = getopt(argc, argv, "dxt:u:p:")) != -1) {
		switch (c) {
		case 'd':
			log_level = LOG_LEVEL_DEBUG;
			break;
		case 'x':
			d.free_in_fn = 1;
			break;
		case 't':
			cfg.sc_timeout_ms = atoi(optarg);
			break;
		case 'u':
			cfg.sc_user = optarg;
			break;
		case 'p':
			password = driver_read_password(optarg);
			if (password == NULL) {
				fprintf(
				    stderr, "driver: cannot read %s\n", optarg);
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (argc - optind < 2 || argc - optind - 1 > REDIS_SENTINEL_MAX + 2) {
		fprintf(stderr,
		    "usage: %s [-dx] [-t ms] [-u user] "
		    "[-p password_file] MASTER HOST:PORT...\n",
		    argv[0]);
		goto done;
	}
	cfg.sc_master_name = argv[optind];
	for (i = optind + 1; i < argc; i++)
		if (driver_parse_addr(argv[i], &addrs[i - optind - 1]) == -1) {
			fprintf(stderr, "driver: bad address %s\n", argv[i]);
			goto done;
		}
	cfg.sc_sentinels = addrs;
	cfg.sc_n = (size_t)(argc - optind - 1);
	cfg.sc_password = password;
	d.base = event_base_new();
	if (d.base == NULL)
		goto done;
	d.rs = redis_sentinel_new(d.base, &cfg, driver_master_cb, &d, &err);
	if (d.rs == NULL) {
		fprintf(stderr, "driver: %s\n", err.ge_msg);
		goto done;
	}
	d.input =
	    event_new(d.base, 0, EV_READ | EV_PERSIST, driver_input_cb, &d);
	if (d.input == NULL || event_add(d.input, NULL) == -1)
		goto done;
	event_base_dispatch(d.base);
	rc = 0;
done:
	redis_sentinel_free(d.rs);
	if (d.input != NULL)
		event_free(d.input);
	if (d.base != NULL)
		event_base_free(d.base);
	libevent_global_shutdown();
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	return rc;
}
