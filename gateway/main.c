/* SPDX-License-Identifier: ISC */
/* main.c: the command line, then the server. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/tls.h"
#include "oidc/http_client.h"
#include "oidc/oidc.h"
#include "route/upstream_named.h"
#include "server.h"
#include "session/session.h"
#include "session/session_config.h"
#include "sessions_admin.h"

static void
main_usage(FILE *f)
{
	fprintf(f, "usage: gatehouse -c FILE [--check [--online]]\n");
	sessions_admin_usage(f);
	fprintf(f,
	    "       gatehouse --version | --help\n"
	    "\n"
	    "  -c, --config FILE  the configuration file\n"
	    "  -t, --check        check the configuration, print every "
	    "error, exit\n"
	    "      --online       with --check: also fetch the provider's "
	    "discovery\n"
	    "                     document and keys once, and say what is "
	    "wrong\n"
	    "  -v, --version      print the version\n"
	    "  -h, --help         this text and every configuration key\n"
	    "\n"
	    "  sessions list      one line per signed-in session: id, sub, "
	    "name, created,\n"
	    "                     last seen, expiry (--json: a JSON array "
	    "with the sid);\n"
	    "                     --sub SUB lists that user's only.  Never "
	    "a token.\n"
	    "  sessions revoke    end the sessions of a user (--sub), of a "
	    "provider session\n"
	    "                     (--sid), one session (--id, a prefix of "
	    "its id that names\n"
	    "                     one), or every one (--all); also while "
	    "gatehouse runs\n"
	    "\n"
	    "Configuration: one \"key = value\" per line, # comments, "
	    "${NAME} expands an\n"
	    "environment variable, GATEHOUSE_<KEY> overrides a key, and a "
	    ".env beside the\n"
	    "file (or in the working directory) supplies CLIENT_ID, "
	    "CLIENT_SECRET,\n"
	    "AUTHORITY and REDIRECT_URI.  Keys:\n\n");
	config_print_keys(f);
}

/*
 * What --check adds to the file's own checks: what start-up would refuse
 * on this machine, and with --online what the provider says.  Exit code.
 */
static int
main_check(const char *file, const struct config *cfg, int online)
{
	struct gh_error err;
	char summary[512];
	const char *warning;
	int rc, bad = 0;

	/* Not an error: it costs nothing, and a route for it may come. */
	upstream_named_warn_unused(cfg, stderr);
	/* The certificate was read and matched with its key by the file's
	 * checks; one that has expired (or is not valid yet) still loads,
	 * as a renewal may be on its way, but browsers refuse it. */
	if (tls_check_summary(cfg, summary, sizeof(summary), &bad) != NULL) {
		if (bad)
			fprintf(stderr,
			    "%s: warning: tls_certificate: %s: browsers "
			    "will refuse it\n",
			    file, summary);
		else
			printf("%s: tls: %s\n", file, summary);
	}
	if (!oidc_configured(cfg)) {
		printf("%s: configuration OK (listen %s:%d, %d workers); "
		       "sign-in is off: neither authority nor oidc_issuer is "
		       "set, so only \"allow anonymous\" routes let anyone "
		       "in\n",
		    file, cfg->cf_listen_host, cfg->cf_listen_port,
		    cfg->cf_workers);
		return 0;
	}
	if (session_config_check(cfg, &err) == -1) {
		fprintf(stderr, "%s: %s\n", file, err.ge_msg);
		fprintf(stderr, "%s: configuration has errors\n", file);
		return 1;
	}
	/* A warning, not an error: the default path may be the shared one
	 * (a secret mounted there on every replica), so refusing would stop
	 * a deployment that works; the operator is told and decides. */
	warning = session_config_warning(cfg);
	if (warning != NULL)
		fprintf(stderr, "%s: warning: %s\n", file, warning);
	printf("%s: configuration OK (listen %s:%d, %d workers, provider "
	       "%s)\n",
	    file, cfg->cf_listen_host, cfg->cf_listen_port, cfg->cf_workers,
	    cfg->cf_discovery_url);
	if (!online)
		return 0;
	if (httpc_global_init() == -1) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", file);
		return 1;
	}
	rc = oidc_probe(cfg, summary, sizeof(summary), &err);

	httpc_global_cleanup();
	if (rc == -1) {
		fprintf(stderr, "%s: provider: %s\n", file, err.ge_msg);
		fprintf(stderr, "%s: the provider is not usable\n", file);
		return 1;
	}
	printf("%s: provider OK: %s\n", file, summary);
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 't'},
	    {"online", no_argument, NULL, 'o'},
	    {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct config *cfg;
	struct gh_error err;
	const char *file = NULL;
	int ch, check = 0, online = 0, admin, rc;

	/* "+": stop at the first word that is no option (`sessions`), so
	 * the command's own options are left to it. */
	while ((ch = getopt_long(argc, argv, "+c:tvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'o':
			online = 1;
			break;
		case 'v':
			printf("gatehouse %s\n", GATEHOUSE_VERSION);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	admin = optind < argc && strcmp(argv[optind], "sessions") == 0;
	if (file == NULL || (optind != argc && !admin) || (online && !check) ||
	    (admin && check)) {
		main_usage(stderr);
		return 2;
	}
	cfg = config_load(file, stderr);
	if (cfg == NULL) {
		fprintf(stderr, "%s: configuration has errors\n", file);
		return 1;
	}
	if (admin) {
		rc = sessions_admin_main(
		    file, cfg, argc - optind, argv + optind);
		config_free(cfg);
		return rc;
	}
	if (check) {
		rc = main_check(file, cfg, online);
		config_free(cfg);
		return rc;
	}
	log_level = cfg->cf_log_level;
	log_format = cfg->cf_log_format;
	if (httpc_global_init() == -1)
		fatalx("cannot initialise libcurl");
	if (oidc_configured(cfg) && session_init(cfg, &err) == -1) {
		/* Before any thread runs: a clear message and exit 1. */
		fprintf(stderr, "gatehouse: %s\n", err.ge_msg);
		config_free(cfg);
		return 1;
	}
	/* It takes cfg: a reload may replace it, and it is freed once no
	 * request uses it. */
	rc = server_run(cfg);
	cfg = NULL;
	metrics_cleanup();
	session_shutdown();
	httpc_global_cleanup();
	return rc == 0 ? 0 : 1;
}
