/* SPDX-License-Identifier: ISC */
/*
 * oidc_revoke.c: on sign-out, revoke the session's refresh token at the
 * provider's revocation_endpoint (RFC 7009) in the background, so that
 * a copy of it (a backup of the store, a replica's memory) is worth
 * nothing.  The sign-out never waits for it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/magic.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/http_client.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"

#define OIDC_REVOKE_MAGIC 0x52564b45u /* "RVKE" */

/* One revocation under way, on its worker's list. */
struct oidc_revoke {
	uint32_t or_magic;
	struct worker *or_worker;
	struct worker_gen *or_gen; /* keeps its configuration alive */
	struct httpc_xfer *or_xfer;
	char or_rid[33]; /* the sign-out's request id, for the log */
	struct oidc_revoke *or_next;
};

static struct oidc_revoke *
oidc_revoke_cast(void *arg)
{
	return MAGIC_CAST(struct oidc_revoke, or_magic, OIDC_REVOKE_MAGIC, arg);
}

static void
oidc_revoke_free(struct oidc_revoke *r)
{
	struct oidc_revoke **pp;

	for (pp = &r->or_worker->w_revokes; *pp != NULL; pp = &(*pp)->or_next)
		if (*pp == r) {
			*pp = r->or_next;
			break;
		}
	worker_gen_release(r->or_gen);
	r->or_gen = NULL;
	r->or_magic = 0;
	free(r);
}

/* The provider's answer: 200 is done (RFC 7009 2.2: also for a token it
 * did not know); anything else is logged, with the provider's error code
 * when it gave one (never the request, which held the token). */
static void
oidc_revoke_done_cb(const struct httpc_result *res, void *arg)
{
	struct oidc_revoke *r = oidc_revoke_cast(arg);
	json_t *doc = NULL;
	char code[80] = "";

	r->or_xfer = NULL;
	if (res->hr_status == HTTPC_OK && res->hr_code == 200) {
		log_info("revoke id=%s result=ok", r->or_rid);
		goto done;
	}
	if (res->hr_status != HTTPC_OK) {
		log_warnx("revoke id=%s result=failed reason=\"%s\"", r->or_rid,
		    httpc_status_str(res->hr_status));
		goto done;
	}
	doc = json_loadb(res->hr_body, res->hr_len, 0, NULL);
	log_sanitize(code, sizeof(code),
	    json_string_value(json_object_get(doc, "error")));
	log_warnx("revoke id=%s result=failed reason=\"revocation endpoint "
	          "answered %ld%s%s\"",
	    r->or_rid, res->hr_code, code[0] != '\0' ? " " : "", code);
done:
	json_decref(doc);
	oidc_revoke_free(r);
}

void
oidc_revoke_start(struct request_ctx *rq, const struct secret *token)
{
	const struct oidc_meta *m = oidc_provider_meta(rq->rq_gen->wg_provider);
	struct worker *w = rq->rq_worker;
	struct oidc_revoke *r;
	struct evbuffer *form;
	struct gh_error err;

	if (m == NULL || m->om_revocation_endpoint == NULL || token == NULL ||
	    token->len == 0)
		return;
	r = calloc(1, sizeof(*r));
	form = evbuffer_new();
	if (r == NULL || form == NULL) {
		log_warnx("revoke id=%s result=failed reason=\"out of memory\"",
		    rq->rq_id);
		free(r);
		if (form != NULL)
			evbuffer_free(form);
		return;
	}
	r->or_magic = OIDC_REVOKE_MAGIC;
	r->or_worker = w;
	r->or_gen = worker_gen_hold(rq->rq_gen);
	snprintf(r->or_rid, sizeof(r->or_rid), "%s", rq->rq_id);
	r->or_next = w->w_revokes;
	w->w_revokes = r;
	httpc_form_add(form, "token", (const char *)token->buf);
	httpc_form_add(form, "token_type_hint", "refresh_token");
	/* The client authenticates as at the token endpoint (RFC 7009 2.1):
	 * its secret, or a client assertion signed with its certificate. */
	r->or_xfer = oidc_client_post(rq->rq_cfg, m, w->w_httpc,
	    m->om_revocation_endpoint, form, oidc_revoke_done_cb, r, &err);
	evbuffer_free(form);
	if (r->or_xfer == NULL) {
		log_warnx("revoke id=%s result=failed reason=\"%s\"", rq->rq_id,
		    err.ge_msg);
		oidc_revoke_free(r);
		return;
	}
	log_info("revoke id=%s started", rq->rq_id);
}

void
oidc_revoke_shutdown_worker(struct worker *w)
{
	struct oidc_revoke *r;

	while ((r = w->w_revokes) != NULL) {
		log_info("revoke id=%s result=dropped reason=\"gatehouse "
		         "stopped before the provider answered\"",
		    r->or_rid);
		httpc_cancel(r->or_xfer);
		r->or_xfer = NULL;
		oidc_revoke_free(r);
	}
}
