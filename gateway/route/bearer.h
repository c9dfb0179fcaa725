/* SPDX-License-Identifier: ISC */
/*
 * bearer.h: API routes (`route ... bearer CRITERIA`): the identity comes
 * from an `Authorization: Bearer <JWT>` access token issued for this API by
 * the same provider, never from a cookie, and failures are RFC 6750
 * answers, never redirects.
 */
#ifndef GATEHOUSE_BEARER_H
#define GATEHOUSE_BEARER_H

struct request_ctx;

/*
 * Check rq's bearer token against its route (rq_route): signature by kid
 * from the JWKS, iss, aud in api_audience, exp/nbf with skew, that it is
 * an access token and no other kind of JWT (jose_access_token_check), then
 * the route's criteria.  401 (WWW-Authenticate: Bearer error="invalid_token")
 * for a missing or bad token, 403 (error="insufficient_scope") when the
 * criteria fail; otherwise the identity headers are filled from the token's
 * claims and the request goes on.  Worker thread; may park on a JWKS
 * refetch.
 */
void bearer_check(struct request_ctx *rq);

#endif
