/* CORS for portals that call the API from a page of another origin.  Only
 * the origins an operator lists are answered; credentials are headers
 * (X-Octopus-ApiKey, Authorization), never cookies, so no
 * Access-Control-Allow-Credentials is sent. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/oh_list.h"
#include "portal.h"
#include "router.h"

#define MAX_ORIGIN 200

/* What a portal's requests carry beyond the CORS-safelisted headers:
 * keys, tokens, JSON bodies, idempotency keys, and a stream's resume
 * position. */
#define ALLOW_HEADERS                                                                              \
	"X-Octopus-ApiKey, Authorization, Content-Type, Idempotency-Key, Last-Event-ID"
#define EXPOSE_HEADERS "Location, Retry-After, ETag, X-Request-Id"
#define MAX_AGE        "600"

/* True when [S, S+N) is scheme://host[:port] with nothing after; the host
 * a name, an IPv4 address or a bracketed IPv6 address. */
static bool origin_form_ok(const char *s, size_t n)
{
	size_t i;
	if (n > 7 && strncasecmp(s, "http://", 7) == 0)
		i = 7;
	else if (n > 8 && strncasecmp(s, "https://", 8) == 0)
		i = 8;
	else
		return false;
	if (n > MAX_ORIGIN)
		return false;
	size_t host = i;
	if (s[i] == '[') { /* [v6 address] */
		for (i++; i < n && (isxdigit((unsigned char)s[i]) || s[i] == ':' || s[i] == '.');
		     i++)
			;
		if (i == n || s[i] != ']' || i == host + 1)
			return false;
		i++;
	} else {
		for (; i < n && (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'); i++)
			;
		if (i == host)
			return false;
	}
	if (i == n)
		return true;
	if (s[i] != ':' || i + 1 == n)
		return false; /* a path, query, user info or space, or an empty port */
	for (i++; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool api_cors_check(const char *origins, char *err, size_t errlen)
{
	const char *p = origins ? origins : "";
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',' && *end != ' ')
			end++;
		if (end > p && !origin_form_ok(p, (size_t)(end - p))) {
			snprintf(
			    err, errlen,
			    "cors-origins: '%.*s' is not an origin (scheme://host[:port], http or "
			    "https, no path and no trailing slash; '*' is not accepted)",
			    (int)(end - p > MAX_ORIGIN ? MAX_ORIGIN : end - p), p);
			return false;
		}
		p = end;
	}
	return true;
}

void api_cors(const api_req_t *req, api_resp_t *resp, const char *allow)
{
	const char *list = req->cfg->cors_origins;
	if (!list || !*list)
		return;
	api_header(resp, "Vary", "Origin");
	const char *origin = api_header_in(req, "Origin");
	if (!origin || !oh_list_has(list, origin, true))
		return;
	api_header(resp, "Access-Control-Allow-Origin", origin);
	bool preflight = strcmp(req->method, "OPTIONS") == 0 &&
	                 api_header_in(req, "Access-Control-Request-Method") != NULL;
	if (!preflight) {
		api_header(resp, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
		return;
	}
	/* The methods are the path's own, from the route table (ALLOW, which
	 * the router filled when it answered the OPTIONS): a path no route
	 * has keeps the 404 it is. */
	if (!allow || !*allow || resp->status != 204)
		return;
	json_decref(resp->json);
	resp->json = NULL;
	free(resp->raw_owned);
	resp->raw_owned = NULL;
	resp->raw = NULL;
	resp->raw_len = 0;
	resp->status = 204;
	/* The route's own methods: HEAD is safelisted and a preflight is
	 * never for OPTIONS, so neither is named. */
	char methods[128] = "";
	size_t o = 0;
	for (const char *p = allow; *p;) {
		size_t n = strcspn(p, ", ");
		bool skip = (n == 4 && strncmp(p, "HEAD", 4) == 0) ||
		            (n == 7 && strncmp(p, "OPTIONS", 7) == 0);
		if (n && !skip && o + n + 3 < sizeof methods)
			o += (size_t)snprintf(methods + o, sizeof methods - o, "%s%.*s",
			                      o ? ", " : "", (int)n, p);
		p += n;
		p += strspn(p, ", ");
	}
	api_header(resp, "Access-Control-Allow-Methods", methods);
	api_header(resp, "Access-Control-Allow-Headers", ALLOW_HEADERS);
	api_header(resp, "Access-Control-Max-Age", MAX_AGE);
}
