/* SPDX-License-Identifier: ISC */
/* config_test.c: the file format, through config_load(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "tap.h"
#include "tmpdir.h"

static char dir[128];

static struct config *
load(const char *text, char *errs, size_t errsize)
{
	char path[256];
	FILE *f, *ef;
	struct config *cfg;

	snprintf(path, sizeof(path), "%s/t.conf", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	ef = fmemopen(errs, errsize, "w");
	cfg = config_load(path, ef);
	fclose(ef);
	return cfg;
}

int
main(void)
{
	struct config *cfg;
	char errs[4096];
	const struct config_key *k;

	if (test_tmpdir(dir, sizeof(dir), "config_test") == -1)
		return 1;
	unsetenv("GATEHOUSE_WORKERS");

	cfg =
	    load("upstream = http://127.0.0.1:3000/app/\n", errs, sizeof(errs));
	ok(cfg != NULL, "minimal file loads");
	is_str(cfg->cf_listen_host, "127.0.0.1", "listen default host");
	is_int(cfg->cf_listen_port, 8080, "listen default port");
	is_int(cfg->cf_max_request_body, 16 * 1024 * 1024, "16M default");
	is_int(cfg->cf_upstream_timeout, 60, "60s default");
	is_str(cfg->cf_upstream.cu_prefix, "/app", "prefix without slash");
	is_str(cfg->cf_upstream.cu_hostport, "127.0.0.1:3000", "host:port");
	ok(cfg->cf_workers >= 1, "auto workers resolved");
	config_free(cfg);

	cfg = load("upstream = http://[::1]:81\nlisten = [::]:9000\n"
	           "max_request_body = 1G\nidle_timeout = 2m\nworkers = 3\n",
	    errs, sizeof(errs));
	ok(cfg != NULL, "v6, sizes, durations");
	is_str(cfg->cf_upstream.cu_hostport, "[::1]:81", "v6 host:port");
	is_str(cfg->cf_listen_host, "::", "v6 listen");
	is_int(cfg->cf_max_request_body, 1024LL * 1024 * 1024, "1G");
	is_int(cfg->cf_idle_timeout, 120, "2m");
	is_int(cfg->cf_workers, 3, "workers");
	config_free(cfg);

	setenv("GH_TEST_PORT", "4242", 1);
	cfg = load("upstream = unix:/run/app.sock:/p\nlisten = "
	           "127.0.0.1:${GH_TEST_PORT}\n",
	    errs, sizeof(errs));
	ok(cfg != NULL, "unix upstream and ${}");
	is_str(cfg->cf_upstream.cu_unix, "/run/app.sock", "socket path");
	is_str(cfg->cf_upstream.cu_prefix, "/p", "socket prefix");
	is_int(cfg->cf_listen_port, 4242, "expanded port");
	config_free(cfg);

	memset(errs, 0, sizeof(errs));
	cfg = load("bogus = 1\nupstream = http://x:1\nupstream = http://y:1\n"
	           "workers = -1\n",
	    errs, sizeof(errs));
	ok(cfg == NULL, "errors fail the load");
	ok(strstr(errs, "t.conf:1: unknown key \"bogus\"") != NULL,
	    "unknown key with line");
	ok(strstr(errs, "t.conf:3: \"upstream\" is already set on line 2") !=
	        NULL,
	    "duplicate with both lines");
	ok(strstr(errs, "t.conf:4: workers:") != NULL, "bad value with line");

	/* upstream.NAME: a family of keys, each its own upstream. */
	memset(errs, 0, sizeof(errs));
	cfg = load("upstream = http://x:1\nupstream.api = http://y:2/v1/\n"
	           "upstream.s_2 = unix:/run/s.sock\n",
	    errs, sizeof(errs));
	ok(cfg != NULL, "named upstreams load");
	if (cfg != NULL) {
		is_int((int)cfg->cf_nupstreams, 2, "two named");
		is_str(cfg->cf_upstreams[0].cu_name, "api", "first name");
		is_str(cfg->cf_upstreams[0].cu_hostport, "y:2", "its host");
		is_str(cfg->cf_upstreams[0].cu_prefix, "/v1", "its prefix");
		is_int(cfg->cf_upstreams[0].cu_line, 2, "its line");
		is_str(cfg->cf_upstreams[1].cu_unix, "/run/s.sock", "socket");
		is_str(cfg->cf_upstream.cu_hostport, "x:1", "default stays");
	}
	config_free(cfg);
	memset(errs, 0, sizeof(errs));
	cfg = load("upstream = http://x:1\nupstream.a = http://y:2\n"
	           "upstream.a = http://y:3\nupstream.b = https://z\n"
	           "upstream.c!d = http://y:2\nupstream.e = http://y:2?q\n",
	    errs, sizeof(errs));
	ok(cfg == NULL, "bad named upstreams fail the load");
	ok(strstr(errs, "t.conf:3: upstream.a: already set on line 2") != NULL,
	    "duplicate name with both lines");
	ok(strstr(errs, "t.conf:4: upstream.b: https upstreams") != NULL,
	    "bad URL with its line and key");
	ok(strstr(errs,
	       "t.conf:5: \"upstream.c!d\": the name after \"upstream.\"") !=
	        NULL,
	    "bad name with its line");
	ok(strstr(errs, "t.conf:6: upstream.e: the upstream URL must not") !=
	        NULL,
	    "query refused");
	k = config_key_find("upstream.web");
	ok(k != NULL && (k->ck_flags & CONFIG_PREFIX), "family lookup");
	ok(config_key_find("upstreamx.web") == NULL, "no family");

	k = config_key_find("upstream");
	ok(k != NULL && (k->ck_flags & CONFIG_REQUIRED), "upstream required");
	ok(config_key_find("nope") == NULL, "unknown lookup");
	(void)test_rmtree(dir);
	return done_testing();
}
