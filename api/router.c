#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/oh_schema.h"

static json_t **metas;

/* Every schema a request of META is checked against uses only what the
 * validator implements: a spec that says more than the server checks is
 * refused at start rather than half-enforced. */
static bool schemas_implemented(const json_t *meta, const char *op, char *err, size_t errlen)
{
	char where[300];
	size_t i;
	const json_t *p;
	json_array_foreach(json_object_get(meta, "parameters"), i, p)
	{
		const json_t *s = json_object_get(p, "schema");
		if (s && !oh_schema_check(s, where, sizeof where)) {
			snprintf(err, errlen, "%s: parameter %s: %s", op,
			         json_string_value(json_object_get(p, "name")), where);
			return false;
		}
	}
	const char *media;
	const json_t *c;
	json_object_foreach(json_object_get(json_object_get(meta, "requestBody"), "content"), media,
	                    c)
	{
		const json_t *s = json_object_get(c, "schema");
		if (s && !oh_schema_check(s, where, sizeof where)) {
			snprintf(err, errlen, "%s: %s body: %s", op, media, where);
			return false;
		}
	}
	return true;
}

bool api_router_init(char *err, size_t errlen)
{
	metas = calloc(api_route_count, sizeof *metas);
	if (!metas) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < api_route_count; i++) {
		json_error_t je;
		metas[i] = json_loads(api_routes[i].meta_json, 0, &je);
		if (!metas[i]) {
			snprintf(err, errlen, "route metadata of %s: %s",
			         api_routes[i].operation_id, je.text);
			return false;
		}
		if (!schemas_implemented(metas[i], api_routes[i].operation_id, err, errlen))
			return false;
	}
	return true;
}

void api_router_free(void)
{
	if (!metas)
		return;
	for (size_t i = 0; i < api_route_count; i++)
		json_decref(metas[i]);
	free(metas);
	metas = NULL;
}

const json_t *api_route_meta(size_t i)
{
	return metas[i];
}

#define SPACE_PARAM  "spaceId"
#define SPACE_PREFIX "Spaces-"

/* Matches the decoded PATH against TEMPLATE segment by segment.  Returns -1
 * when they differ, else the number of literal segments (more literal = more
 * specific).  The segment index of each parameter goes to IDX[] and its name
 * (in TMPL) to NAMES/NAME_LENS; *N is their number. */
static int match_template(const char *tmpl, const api_path_t *path, size_t *n, size_t idx[],
                          const char *names[], size_t name_lens[])
{
	int literal = 0;
	size_t k = 0;
	const char *t = tmpl;
	*n = 0;
	while (*t) {
		if (*t != '/' || k == path->n)
			return -1;
		t++;
		const char *te = strchr(t, '/');
		size_t tl = te ? (size_t)(te - t) : strlen(t);
		if (tl >= 2 && t[0] == '{' && t[tl - 1] == '}') {
			if (path->len[k] == 0 || *n == API_MAX_PATH_PARAMS)
				return -1;
			/* `/api/{spaceId}` would otherwise claim every top-level
			 * path (`POST /api/drain` answered 405): a space segment
			 * names a space. */
			if (tl - 2 == strlen(SPACE_PARAM) &&
			    memcmp(t + 1, SPACE_PARAM, tl - 2) == 0 &&
			    (path->len[k] < strlen(SPACE_PREFIX) ||
			     memcmp(path->seg[k], SPACE_PREFIX, strlen(SPACE_PREFIX)) != 0))
				return -1;
			names[*n] = t + 1;
			name_lens[*n] = tl - 2;
			idx[*n] = k;
			(*n)++;
		} else {
			if (tl != path->len[k] || memcmp(t, path->seg[k], tl) != 0)
				return -1;
			literal++;
		}
		t += tl;
		k++;
	}
	return k == path->n ? literal : -1;
}

/* Parameter names live in the templates; hand out NUL-terminated copies. */
static const char *param_name(const char *start, size_t len)
{
	static _Thread_local char names[API_MAX_PATH_PARAMS][32];
	static _Thread_local unsigned next;
	char *slot = names[next++ % API_MAX_PATH_PARAMS];
	snprintf(slot, sizeof names[0], "%.*s", (int)len, start);
	return slot;
}

/* Writes the methods of the templates that match PATH with SCORE literal
 * segments into ALLOW: each in the table's order, HEAD after GET, OPTIONS
 * last. */
static void list_allowed(const api_path_t *path, int score, char *allow, size_t allowlen)
{
	size_t o = 0, n, idx[API_MAX_PATH_PARAMS], nlens[API_MAX_PATH_PARAMS];
	const char *names[API_MAX_PATH_PARAMS];
	allow[0] = '\0';
	for (size_t i = 0; i < api_route_count; i++) {
		if (match_template(api_routes[i].path, path, &n, idx, names, nlens) != score ||
		    o >= allowlen)
			continue;
		bool get = strcmp(api_routes[i].method, "GET") == 0;
		o += (size_t)snprintf(allow + o, allowlen - o, "%s%s%s", o ? ", " : "",
		                      api_routes[i].method, get ? ", HEAD" : "");
	}
	if (o < allowlen)
		snprintf(allow + o, allowlen - o, "%sOPTIONS", o ? ", " : "");
}

api_match_t api_route_match(const char *method, const api_path_t *path, size_t *route,
                            api_req_t *req, char *allow, size_t allowlen)
{
	int best = -1, best_any = -1;
	size_t best_i = 0;
	size_t idx[API_MAX_PATH_PARAMS], nlens[API_MAX_PATH_PARAMS];
	const char *names[API_MAX_PATH_PARAMS];
	size_t best_n = 0, best_idx[API_MAX_PATH_PARAMS], best_nlens[API_MAX_PATH_PARAMS];
	const char *best_names[API_MAX_PATH_PARAMS];
	/* HEAD is GET without the body (RFC 9110 §9.3.2). */
	const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;

	/* The most specific template that matches the path decides which
	 * resource this is; then the method must be one of that template's. */
	for (size_t i = 0; i < api_route_count; i++) {
		size_t n;
		int score = match_template(api_routes[i].path, path, &n, idx, names, nlens);
		if (score > best_any)
			best_any = score;
		if (score < 0 || strcmp(api_routes[i].method, want) != 0 || score <= best)
			continue;
		best = score;
		best_i = i;
		best_n = n;
		memcpy(best_idx, idx, sizeof idx);
		memcpy(best_nlens, nlens, sizeof nlens);
		memcpy(best_names, names, sizeof names);
	}
	if (best_any < 0)
		return API_MATCH_NO_PATH;
	if (strcmp(method, "OPTIONS") == 0) {
		list_allowed(path, best_any, allow, allowlen);
		return API_MATCH_OPTIONS;
	}
	if (best < best_any) {
		/* The most specific resource does not take this method. */
		list_allowed(path, best_any, allow, allowlen);
		return API_MATCH_NO_METHOD;
	}
	*route = best_i;
	req->n_path = best_n;
	for (size_t k = 0; k < best_n; k++) {
		req->path_names[k] = param_name(best_names[k], best_nlens[k]);
		req->path_values[k] = path->seg[best_idx[k]];
		req->path_lens[k] = path->len[best_idx[k]];
	}
	return API_MATCH_OK;
}
