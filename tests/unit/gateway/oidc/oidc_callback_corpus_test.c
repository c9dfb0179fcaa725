/* SPDX-License-Identifier: ISC */
/*
 * oidc_callback_corpus_test.c: the defined outcome of every file in
 * tests/corpus/callback: each is a callback query string or
 * form_post body, parsed with oidc_params_parse and the callback's
 * must-be-unique names, as tests/fuzz/callback_fuzz.c does.  A corpus file
 * without a row fails.  Run from the repository root.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "corpus.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"
#include "tap.h"

#define CORPUS "tests/corpus/callback"

/* The same list as oidc_callback.c's oidc_callback_unique. */
static const char *const unique[] = {
    "state", "code", "error", "error_description", "iss", NULL};

/*
 * rc: oidc_params_parse's result; when 0, the decoded value of `name`
 * (NULL: the name must be absent).  The file is read up to its first NUL
 * byte, as the gateway reads a query.
 */
static const struct {
	const char *file;
	int rc;
	const char *name;
	const char *value;
} expect[] = {{"bad-escape", 0, "code", "%zz%4"},
    {"baseline-error", 0, "error_description",
        "AADSTS50105: user not assigned"},
    {"baseline-query", 0, "code", "0.AbC-def"},
    {"crlf-in-value", 0, "code", "a\r\nSet-Cookie: x=1"},
    {"empty-pairs", -1, NULL, NULL}, {"empty-value", 0, "code", ""},
    {"encoded-ampersand", 0, "code", "a&state=evil"},
    {"encoded-equals", 0, "code", "a=b"}, {"encoded-plus", 0, "code", "a+b"},
    {"error-html", 0, "error_description", "<script>alert(1)</script>"},
    {"form-post-id-token", 0, "state", "b"},
    {"fragment", 0, "state", "b#state=c"}, {"huge-value", 0, "state", "good"},
    {"iss-other", 0, "iss", "https://evil.example/v2.0"},
    {"leading-question-mark", 0, "code", NULL}, {"many-params", 0, "code", "a"},
    {"missing-code", 0, "code", NULL}, {"missing-state", 0, "state", NULL},
    {"no-equals", -1, NULL, NULL},
    /* %00 would end the decoded value early: refused. */
    {"nul-in-value", -1, NULL, NULL},
    {"plus-as-space", 0, "error_description", "Sign in was cancelled"},
    {"post-login-redirect-auth-prefix", 0, "post_login_redirect_uri",
        "/.auth/logout"},
    {"post-login-redirect-auth-prefix-double-encoded", 0,
        "post_login_redirect_uri", "/%252Eauth/logout"},
    {"post-login-redirect-nul", 0, "post_login_redirect_uri",
        "/%00%2F%2Fevil.example"},
    {"post-login-redirect-protocol-relative", 0, "post_login_redirect_uri",
        "//evil.example"},
    {"raw-nul", 0, "state", NULL}, {"repeated-code", -1, NULL, NULL},
    {"repeated-error", -1, NULL, NULL}, {"repeated-iss", -1, NULL, NULL},
    {"repeated-state", -1, NULL, NULL},
    /* Names are not percent-decoded: "sta%74e" is another name. */
    {"repeated-state-encoded-name", 0, "state", "two"},
    {"semicolon-separator", 0, "code", "a;state=b"},
    {"state-case-variant", 0, "state", "one"},
    {"unicode-name", 0, "c%C3%B6de", "x"}};

/* One corpus file, read up to its first NUL as the gateway reads a query. */
static void
check_file(const char *name, char *buf, size_t len, void *arg)
{
	size_t i, rows = sizeof(expect) / sizeof(expect[0]);
	struct evkeyvalq q;
	int rc;

	(void)len;
	(void)arg;
	i = TEST_CORPUS_ROW(expect, name);
	if (!ok(i < rows, "%s has an expected outcome", name))
		return;
	rc = oidc_params_parse(buf, &q, unique);
	is_int(rc, expect[i].rc, "%s: parse", name);
	if (rc == 0 && expect[i].name != NULL)
		is_str(evhttp_find_header(&q, expect[i].name), expect[i].value,
		    "%s: %s", name, expect[i].name);
	evhttp_clear_headers(&q);
}

int
main(void)
{
	test_corpus_table(
	    CORPUS, check_file, NULL, sizeof(expect) / sizeof(expect[0]));
	return done_testing();
}
