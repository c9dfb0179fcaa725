/* SPDX-License-Identifier: ISC */
/*
 * endpoints.h: /.auth/me, /.auth/refresh, /.auth/healthz and
 * /.auth/readyz, which the
 * router calls for those paths under the auth prefix.  Each sends the
 * reply (now or, for a refresh, later); rq is not to be touched afterwards.
 * Worker thread.
 */
#ifndef GATEHOUSE_ENDPOINTS_H
#define GATEHOUSE_ENDPOINTS_H

struct request_ctx;

/* GET /.auth/healthz: 200 {"status":"ok"} while the process serves
 * (liveness: nothing outside the process is asked). */
void endpoints_healthz(struct request_ctx *rq);

/* GET /.auth/readyz: readiness, 200 {"status":"ready"} when signing in
 * and signed-in requests can be served now: every worker holds the
 * provider's metadata and keys and the last fetch of them worked, and the
 * session store answers (every worker's Redis connection is up); else 503
 * naming which is not ("reason"). */
void endpoints_readyz(struct request_ctx *rq);

/* /.auth/me: the signed-in user's claims as JSON (and the access token
 * with me_includes_tokens), in Easy Auth's shape with me_format =
 * easyauth, or 401. */
void endpoints_me(struct request_ctx *rq);

/* POST /.auth/refresh (or GET from this site's own pages, as Easy Auth's
 * clients send it): refresh the session's tokens now; the new expiry as
 * JSON, or 401, 403 (a GET not from this site), 405 or 502. */
void endpoints_refresh(struct request_ctx *rq);

#endif
