/* SPDX-License-Identifier: ISC */
/* groups.c: group ids from Microsoft Graph when the token has overage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/config.h"
#include "core/log.h"
#include "http/request.h"
#include "http/worker.h"
#include "oidc/groups.h"
#include "oidc/http_client.h"
#include "session/session.h"

static int groups_parse_overage(struct config *, const struct config_key *,
    const char *, int, const char **);

/* Sorted by name: looked up with bsearch. */
static const struct config_key groups_keys[] = {
    {"graph_endpoint", config_parse_url,
        offsetof(struct config, cf_graph_endpoint),
        "https://graph.microsoft.com/v1.0",
        "Microsoft Graph's base URL (for groups_overage = graph).", 0},
    {"groups_overage", groups_parse_overage, 0, "off",
        "When a token lists no groups but points to them (Entra group "
        "overage): off denies group: routes with a log line; graph reads "
        "the ids from Graph (needs a scope such as GroupMember.Read.All).",
        0},
};
const struct config_module groups_config_module = {"groups", groups_keys,
    sizeof(groups_keys) / sizeof(groups_keys[0]), NULL, NULL};

static int
groups_parse_overage(struct config *cfg, const struct config_key *key,
    const char *value, int line, const char **errstr)
{
	(void)key;
	(void)line;
	if (strcmp(value, "off") == 0)
		cfg->cf_groups_overage = GROUPS_OVERAGE_OFF;
	else if (strcmp(value, "graph") == 0)
		cfg->cf_groups_overage = GROUPS_OVERAGE_GRAPH;
	else {
		*errstr = "expected off or graph";
		return -1;
	}
	return 0;
}

static void
groups_stored(struct request_ctx *rq, enum session_result r, size_t count)
{
	void (*resume)(struct request_ctx *) = rq->rq_resume;

	rq->rq_resume = NULL;
	if (r != SESSION_OK)
		log_warnx("groups id=%s result=not_stored", rq->rq_id);
	else
		log_info("groups id=%s result=ok count=%zu", rq->rq_id, count);
	resume(rq);
}

static void
groups_stored_cb(void *arg, enum session_result r)
{
	struct request_ctx *rq = request_cast(arg);

	rq->rq_store_op = NULL;
	groups_stored(rq, r,
	    json_array_size(
	        json_object_get(session_claims(rq->rq_session), "groups")));
}

/* Keep the ids in the session's claims as "groups", so the next request
 * needs no Graph call and the app sees them too; resume rq once they are
 * stored (or could not be). */
static void
groups_store(struct request_ctx *rq, json_t *ids)
{
	struct session *s = rq->rq_session;
	enum session_result r = SESSION_ERR;
	json_t *claims;
	char *text = NULL;

	claims = json_deep_copy(session_claims(s));
	if (claims != NULL) {
		json_object_set(claims, "groups", ids);
		json_object_del(claims, "hasgroups");
		text = json_dumps(claims, JSON_COMPACT);
		json_decref(claims);
	}
	if (text != NULL && session_set_claims(s, text) == 0) {
		/* The session's own cleanup (it was loaded for this request)
		 * cancels the save if the request goes away meanwhile. */
		r = session_save_start(rq->rq_worker->w_reader, s,
		    groups_stored_cb, rq, &rq->rq_store_op);
		if (r == SESSION_PENDING) {
			free(text);
			rq->rq_state = RQ_STORE;
			return;
		}
	}
	free(text);
	groups_stored(rq, r, json_array_size(ids));
}

/* The request's cleanup for its groups call in flight. */
static void
groups_xfer_cleanup(void *arg)
{
	struct request_ctx *rq = request_cast(arg);

	httpc_cancel(rq->rq_xfer);
	rq->rq_xfer = NULL;
}

static void
groups_done_cb(const struct httpc_result *res, void *arg)
{
	struct request_ctx *rq = request_cast(arg);
	void (*resume)(struct request_ctx *) = rq->rq_resume;
	json_error_t jerr;
	json_t *doc = NULL, *ids;
	size_t i;
	json_t *v;

	rq->rq_xfer = NULL;
	rq->rq_resume = NULL;
	if (res->hr_status == HTTPC_OK && res->hr_code == 200)
		doc = json_loadb(res->hr_body, res->hr_len, 0, &jerr);
	ids = json_object_get(doc, "value");
	if (!json_is_array(ids)) {
		log_warnx("groups id=%s result=failed status=%ld reason=\"%s\"",
		    rq->rq_id, res->hr_code,
		    res->hr_status != HTTPC_OK
		        ? httpc_status_str(res->hr_status)
		        : "no value array from Graph");
		json_decref(doc);
		resume(rq);
		return;
	}
	json_array_foreach(ids, i, v)
	{
		if (!json_is_string(v)) {
			json_decref(doc);
			resume(rq);
			return;
		}
	}
	rq->rq_resume = resume;
	groups_store(rq, ids);
	json_decref(doc);
}

enum step
groups_fetch(struct request_ctx *rq, void (*resume)(struct request_ctx *rq))
{
	const struct config *cfg = rq->rq_cfg;
	struct session *s = rq->rq_session;
	static const char body[] = "{\"securityEnabledOnly\":false}";
	const char *hdrs[4] = {"Content-Type: application/json",
	    "Accept: application/json", NULL, NULL};
	struct httpc_req req;
	struct gh_error err;
	char *auth = NULL, *url = NULL;

	if (cfg->cf_groups_overage != GROUPS_OVERAGE_GRAPH ||
	    session_open_tokens(s) == -1 || s->se_access.len == 0 ||
	    (s->se_at_expires != 0 && s->se_at_expires <= time(NULL)))
		return STEP_DECLINED;
	if (asprintf(&auth, "Authorization: Bearer %s",
	        (const char *)s->se_access.buf) == -1 ||
	    asprintf(&url, "%s/me/getMemberGroups", cfg->cf_graph_endpoint) ==
	        -1) {
		free(auth);
		return STEP_DECLINED;
	}
	hdrs[2] = auth;
	memset(&req, 0, sizeof(req));
	req.hq_method = "POST";
	req.hq_url = url;
	req.hq_body = body;
	req.hq_body_len = sizeof(body) - 1;
	req.hq_headers = hdrs;
	rq->rq_resume = resume;
	rq->rq_state = RQ_PROVIDER;
	request_cleanup_add(rq, groups_xfer_cleanup, rq);
	rq->rq_xfer = httpc_request(
	    rq->rq_worker->w_httpc, &req, groups_done_cb, rq, &err);
	OPENSSL_cleanse(auth, strlen(auth));
	free(auth);
	free(url);
	if (rq->rq_xfer == NULL) {
		rq->rq_resume = NULL;
		return STEP_DECLINED;
	}
	return STEP_AGAIN;
}
