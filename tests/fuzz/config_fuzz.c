/* SPDX-License-Identifier: ISC */
/*
 * config_fuzz.c: fuzz target for the configuration file format
 * (gateway/core/config.c config_load, and through it every module's key
 * parsers and cross-key checks).  The input is written to a file in a
 * private temporary directory and loaded from there.
 *
 * config_load also reads a .env (beside the file, else in the working
 * directory) and GATEHOUSE_<KEY> variables.  So that a run depends on the
 * input alone, the target removes every GATEHOUSE_* variable, sets two
 * variables of its own for ${NAME} expansion, and writes a fixed .env
 * beside the file (which keeps the working directory's .env unread).
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "fuzz.h"

extern char **environ;

static char fuzz_dir[512], fuzz_conf[544], fuzz_env[544];
static FILE *fuzz_errf;
static pid_t fuzz_owner; /* the process that made the directory */

static void
fuzz_config_cleanup(void)
{
	/* A replay child exits through here too; the owner cleans up. */
	if (getpid() != fuzz_owner)
		return;
	unlink(fuzz_conf);
	unlink(fuzz_env);
	rmdir(fuzz_dir);
	if (fuzz_errf != NULL)
		fclose(fuzz_errf);
	fuzz_errf = NULL;
}

static void
fuzz_config_write(const char *path, const uint8_t *data, size_t size)
{
	FILE *f;

	f = fopen(path, "wb");
	if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) ||
	    fclose(f) != 0) {
		perror(path);
		abort();
	}
}

static void
fuzz_config_init(void)
{
	static const char dotenv[] = "# fixed .env of the config fuzzer\n"
	                             "GH_FUZZ_DOTENV=\"from-dotenv\"\n"
	                             "SCOPE=User.Read\n";
	const char *tmp;
	char name[128];
	size_t n;
	int i;

	/* A clean environment: no GATEHOUSE_* override may leak in. */
	for (i = 0; environ[i] != NULL;) {
		if (strncmp(environ[i], "GATEHOUSE_", 10) != 0) {
			i++;
			continue;
		}
		n = strcspn(environ[i], "=");
		if (n >= sizeof(name))
			abort();
		memcpy(name, environ[i], n);
		name[n] = '\0';
		unsetenv(name); /* environ shifts; look at i again */
	}
	setenv("GH_FUZZ_HOST", "127.0.0.1", 1);
	setenv("GH_FUZZ_SECRET", "s3cret", 1);

	/* libFuzzer may end without running atexit handlers: `make fuzz`
	 * points TMPDIR into build/ so that nothing is left in /tmp. */
	tmp = getenv("TMPDIR");
	if (tmp == NULL || *tmp == '\0' ||
	    strlen(tmp) + sizeof("/gh-config-fuzz.XXXXXX") > sizeof(fuzz_dir))
		tmp = "/tmp";
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/gh-config-fuzz.XXXXXX", tmp);
	if (mkdtemp(fuzz_dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	snprintf(fuzz_conf, sizeof(fuzz_conf), "%s/gateway.conf", fuzz_dir);
	snprintf(fuzz_env, sizeof(fuzz_env), "%s/.env", fuzz_dir);
	fuzz_config_write(
	    fuzz_env, (const uint8_t *)dotenv, sizeof(dotenv) - 1);
	fuzz_errf = fopen("/dev/null", "w");
	if (fuzz_errf == NULL)
		abort();
	fuzz_owner = getpid();
	atexit(fuzz_config_cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct config *cfg;

	if (!initialised) {
		fuzz_config_init();
		initialised = 1;
	}
	fuzz_config_write(fuzz_conf, data, size);
	cfg = config_load(fuzz_conf, fuzz_errf);
	config_free(cfg);
	return 0;
}
