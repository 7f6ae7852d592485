/* OPTIONS on any path that has a resource (RFC 9110 §9.3.7): 204 with the
 * methods the path accepts.  One small function, so that headers every
 * OPTIONS answer should carry (CORS preflight answers, for one) are added in
 * one place. */
#ifndef API_OPTIONS_H
#define API_OPTIONS_H

#include "http.h"

/* Answers the OPTIONS request REQ for a path that accepts ALLOW (e.g.
 * "GET, HEAD, DELETE, OPTIONS"): 204, no body, an Allow header. */
void api_options(const api_req_t *req, const char *allow, api_resp_t *resp);

#endif
