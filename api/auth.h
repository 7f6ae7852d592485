/* Authentication and the audit trail of the HTTP face.  A request names its
 * key in X-Octopus-ApiKey or Authorization: Bearer; the key is checked
 * against the database at most once a second per node (a small cache of
 * hashes), so a revoked key stops working everywhere within about a
 * second.  A bearer JWT (three base64url parts, where a key is API-…) is
 * an access token of the configured OIDC issuer instead: its subject and
 * name become the actor, its mapped role the role.  Refusals are recorded
 * in the audit log without the key or token. */
#ifndef API_AUTH_H
#define API_AUTH_H

#include "http.h"

/* Fills REQ's actor addresses (the peer, and X-Forwarded-For only when the
 * peer is one of CFG's trusted proxies). */
void api_auth_actor(const api_config_t *cfg, const char *remote, const char *xff,
                    oh_actor_t *actor);

/* Checks REQ's key against NEED.  Returns true when the request may go on
 * (REQ's actor and role set); false with RESP filled (400, 401, 403 or
 * 503) and the refusal recorded.  QUERY is the raw query string or NULL. */
bool api_authenticate(api_req_t *req, api_resp_t *resp, oh_role_t need, const char *query);

/* Checks a Slack request signature (v0, HMAC-SHA-256 of "v0:TS:BODY" under
 * SECRET) and its age (five minutes at most, either way).  NOW is the Unix
 * time in seconds. */
bool api_slack_signature_ok(const char *secret, const char *ts, const char *sig, const char *body,
                            size_t len, long long now);

/* Empties the key cache (tests, shutdown). */
void api_auth_cache_clear(void);

#endif
