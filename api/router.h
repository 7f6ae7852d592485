/* The route table generated from openapi.yaml and the matcher over it. */
#ifndef API_ROUTER_H
#define API_ROUTER_H

#include <stddef.h>

#include "../lib/apikeys.h"
#include "http.h"
#include "http_rules.h"

typedef void (*api_handler_fn)(const api_req_t *req, api_resp_t *resp);

typedef struct {
	const char *method;
	const char *path; /* template, e.g. /api/octopusservernodes/{id} */
	const char *operation_id;
	api_handler_fn handler;
	const char *meta_json; /* {"parameters": [...], "requestBody": {...}}, refs resolved */
	oh_role_t role;        /* the least role allowed; OH_ROLE_NONE = no key needed */
	bool stream_body;      /* x-octoha-stream-body: the handler reads the body itself */
} api_route_t;

extern const api_route_t api_routes[];
extern const size_t api_route_count;
extern const unsigned char api_spec_yaml[];
extern const size_t api_spec_yaml_len;

/* Parses every route's metadata once at start.  Returns false (and names the
 * operation in ERR) when the generated metadata is not valid JSON. */
bool api_router_init(char *err, size_t errlen);
void api_router_free(void);

typedef enum {
	API_MATCH_OK = 0,
	API_MATCH_NO_PATH,
	API_MATCH_NO_METHOD,
	API_MATCH_OPTIONS, /* OPTIONS on a path that has a resource */
} api_match_t;

/* Finds the route for METHOD and the decoded PATH.  HEAD matches the GET
 * route of the path.  On API_MATCH_OK sets *ROUTE (index into api_routes)
 * and fills the path parameters of REQ (values and lengths point into
 * PATH, which must outlive REQ's use).  On API_MATCH_NO_METHOD and
 * API_MATCH_OPTIONS writes the methods the path accepts into ALLOW, e.g.
 * "GET, HEAD, DELETE, OPTIONS".  A path no template matches is
 * API_MATCH_NO_PATH whatever the method. */
api_match_t api_route_match(const char *method, const api_path_t *path, size_t *route,
                            api_req_t *req, char *allow, size_t allowlen);

/* The parsed metadata of route I (borrowed). */
const json_t *api_route_meta(size_t i);

#endif
