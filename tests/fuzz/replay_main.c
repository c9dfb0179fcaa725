/* SPDX-License-Identifier: ISC */
/*
 * replay_main.c: a main() for the fuzz targets that replays every file of
 * the directories (or files) named on the command line through
 * LLVMFuzzerTestOneInput, printing TAP, so `make unit` runs each corpus as
 * a unit test under the normal build (and ASan/UBSan in `make asan`).
 * Each file runs in a child process, so a crash, a sanitizer report or a
 * leak (LeakSanitizer checks at the child's exit) is a "not ok" for that
 * file and the other files still run.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static int replay_n, replay_failed;

static void
replay_result(int good, const char *what, const char *why)
{
	replay_n++;
	printf("%s %d - %s%s%s\n", good ? "ok" : "not ok", replay_n, what,
	    why != NULL ? ": " : "", why != NULL ? why : "");
	fflush(stdout);
	if (!good)
		replay_failed++;
}

/* One input in a child; its exit status is the verdict. */
static void
replay_run(const char *path, const uint8_t *buf, size_t len)
{
	char why[64];
	pid_t pid;
	int status;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == -1) {
		replay_result(0, path, strerror(errno));
		return;
	}
	if (pid == 0) {
		LLVMFuzzerTestOneInput(buf, len);
		exit(0); /* atexit handlers and the leak check run here */
	}
	if (waitpid(pid, &status, 0) == -1) {
		replay_result(0, path, strerror(errno));
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		replay_result(1, path, NULL);
		return;
	}
	if (WIFSIGNALED(status))
		snprintf(
		    why, sizeof(why), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "exit status %d (sanitizer?)",
		    WEXITSTATUS(status));
	replay_result(0, path, why);
}

/* Read the whole file into an exact-size buffer, so that ASan sees a read
 * one byte past the input, as libFuzzer would. */
static void
replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf = NULL;
	FILE *f;
	size_t len;

	f = fopen(path, "rb");
	if (f == NULL || fstat(fileno(f), &st) == -1 || st.st_size < 0) {
		replay_result(0, path, strerror(errno));
		goto done;
	}
	len = (size_t)st.st_size;
	/* malloc(0) may return NULL; keep one byte then, but pass size 0. */
	buf = malloc(len > 0 ? len : 1);
	if (buf == NULL || fread(buf, 1, len, f) != len) {
		replay_result(0, path, "cannot read");
		goto done;
	}
	replay_run(path, buf, len);
done:
	free(buf);
	buf = NULL;
	if (f != NULL)
		fclose(f);
}

static int
replay_visible(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

static void
replay_dir(const char *dir)
{
	struct dirent **names = NULL;
	char path[4096];
	int i, n;

	n = scandir(dir, &names, replay_visible, alphasort);
	if (n <= 0) {
		replay_result(
		    0, dir, n == 0 ? "empty corpus" : strerror(errno));
		free(names);
		return;
	}
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		replay_file(path);
		free(names[i]);
	}
	free(names);
}

int
main(int argc, char **argv)
{
	struct stat st;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s corpus-dir-or-file ...\n", argv[0]);
		return 2;
	}
	/* An empty input first, in this process: targets set up what they
	 * keep (keys, temporary files) once, not once per child. */
	LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			replay_dir(argv[i]);
		else
			replay_file(argv[i]);
	}
	printf("1..%d\n", replay_n);
	return replay_failed != 0;
}
