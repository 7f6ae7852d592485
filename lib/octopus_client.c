#include "octopus_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_ANSWER (8u * 1024 * 1024)
#define PAGE_SIZE  100
#define MAX_PAGES  100
#define KEY_HEADER "X-Octopus-ApiKey: "
#define PING_PATH  "/api/octopusservernodes/ping"
#define NODES_PATH "/api/octopusservernodes"

const char *oh_octo_describe(oh_octo_status_t s, long http_status, char *buf, size_t size)
{
	switch (s) {
	case OH_OCTO_OK: snprintf(buf, size, "ok"); break;
	case OH_OCTO_UNREACHABLE: snprintf(buf, size, "unreachable"); break;
	case OH_OCTO_REFUSED:
		snprintf(buf, size,
		         "refused before any request was sent (outbound policy or "
		         "pinned certificate)");
		break;
	case OH_OCTO_AUTH:
		snprintf(buf, size, "the cluster refused the API key (HTTP %ld)", http_status);
		break;
	case OH_OCTO_NOT_FOUND: snprintf(buf, size, "not found (HTTP 404)"); break;
	case OH_OCTO_HTTP: snprintf(buf, size, "the cluster answered HTTP %ld", http_status); break;
	case OH_OCTO_BAD_ANSWER:
		snprintf(buf, size, "the cluster's answer is not the resource Octopus documents");
		break;
	}
	return buf;
}

static void logf_(const oh_octo_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const oh_octo_t *o, const char *fmt, ...)
{
	if (!o->log)
		return;
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	o->log(o->log_ctx, line);
}

static bool stopping(const oh_octo_t *o)
{
	return o->stop && o->stop(o->stop_ctx);
}

/* Sleeps MS in short steps; false when asked to stop meanwhile. */
static bool nap(const oh_octo_t *o, long ms)
{
	while (ms > 0) {
		if (stopping(o))
			return false;
		long step = ms < 50 ? ms : 50;
		struct timespec ts = {0, step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return !stopping(o);
}

/* BASE without a trailing slash, then PATH. */
static void join_url(const char *base, const char *path, char *out, size_t size)
{
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	snprintf(out, size, "%.*s%s", (int)bl, base, path);
}

/* PATH up to its query, for the log: a query may carry anything. */
static void path_only(const char *path, char *out, size_t size)
{
	size_t n = strcspn(path, "?");
	snprintf(out, size, "%.*s", (int)n, path);
}

/* One documented call with retries.  BODY (borrowed) is sent as JSON when
 * given; a 2xx answer's JSON goes to *OUT (owned) when OUT is given. */
static oh_octo_status_t call(const oh_octo_t *o, const char *method, const char *path,
                             const json_t *body, json_t **out, long *http_status)
{
	if (out)
		*out = NULL;
	long dummy;
	if (!http_status)
		http_status = &dummy;
	*http_status = 0;
	char url[1200], origin[300], logpath[300];
	join_url(o->base_url, path, url, sizeof url);
	oh_url_origin(url, origin, sizeof origin);
	path_only(path, logpath, sizeof logpath);
	char key_header[300];
	snprintf(key_header, sizeof key_header, KEY_HEADER "%s", o->api_key ? o->api_key : "");
	const char *headers[] = {key_header, "Accept: application/json", NULL};
	char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int attempts = o->attempts > 0 ? o->attempts : 1;
	long backoff = o->backoff_ms > 0 ? o->backoff_ms : 500;
	oh_octo_status_t st = OH_OCTO_UNREACHABLE;
	for (int a = 1; a <= attempts; a++) {
		oh_http_req_t rq = {.method = method,
		                    .url = url,
		                    .headers = headers,
		                    .body = payload,
		                    .body_len = payload ? strlen(payload) : 0,
		                    .content_type = "application/json",
		                    .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000,
		                    .policy = o->policy,
		                    .ca_file = o->ca_file,
		                    .pin = o->pin,
		                    .insecure = o->insecure,
		                    .max_response = out ? MAX_ANSWER : 0};
		oh_http_result_t res;
		oh_http_body_t ans;
		bool answered = oh_http_request(&rq, &res, out ? &ans : NULL);
		char tries[40] = "";
		if (attempts > 1 && (a > 1 || !answered || res.status >= 500))
			snprintf(tries, sizeof tries, " (attempt %d of %d)", a, attempts);
		if (!answered) {
			bool refused = res.refused || res.pin == OH_PIN_MISMATCH;
			logf_(o, "%s %s at %s: %s in %ld ms%s", method, logpath, origin,
			      refused ? (res.refused ? "refused by policy"
			                             : "refused: certificate thumbprint mismatch")
			              : "no answer",
			      res.duration_ms, tries);
			if (refused) {
				st = OH_OCTO_REFUSED;
				break;
			}
			st = OH_OCTO_UNREACHABLE;
		} else {
			*http_status = res.status;
			logf_(o, "%s %s at %s: %ld in %ld ms%s", method, logpath, origin,
			      res.status, res.duration_ms, tries);
			if (res.status >= 200 && res.status < 300) {
				st = OH_OCTO_OK;
				if (out) {
					json_error_t je;
					*out = ans.data && !ans.truncated
					           ? json_loadb(ans.data, ans.len, 0, &je)
					           : NULL;
					if (!*out)
						st = OH_OCTO_BAD_ANSWER;
				}
			} else if (res.status == 401 || res.status == 403) {
				st = OH_OCTO_AUTH;
			} else if (res.status == 404) {
				st = OH_OCTO_NOT_FOUND;
			} else {
				st = OH_OCTO_HTTP;
			}
			if (out)
				free(ans.data);
			if (res.status < 500)
				break;
		}
		if (a < attempts && !nap(o, backoff))
			break;
		backoff *= 2;
	}
	free(payload);
	return st;
}

/* ---- reading the contract's fields ------------------------------------- */

static void copy_str(const json_t *o, const char *k, char *dst, size_t size)
{
	const char *v = json_string_value(json_object_get(o, k));
	snprintf(dst, size, "%s", v ? v : "");
}

static bool get_bool(const json_t *o, const char *k, bool def)
{
	const json_t *v = json_object_get(o, k);
	return json_is_boolean(v) ? json_is_true(v) : def;
}

static long long get_int(const json_t *o, const char *k, long long def)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

void oh_octo_nodes_free(oh_octo_nodes_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void oh_octo_machines_free(oh_octo_machines_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

long oh_octo_ping(const oh_octo_t *o, const char *node_url, long timeout_ms, char *why,
                  size_t why_size)
{
	char url[600], origin[300];
	join_url(node_url, PING_PATH, url, sizeof url);
	oh_url_origin(url, origin, sizeof origin);
	oh_http_req_t rq = {.method = "GET",
	                    .url = url,
	                    .timeout_ms = timeout_ms,
	                    .policy = o->policy,
	                    .ca_file = o->ca_file,
	                    .pin = o->pin,
	                    .insecure = o->insecure};
	oh_http_result_t res;
	bool answered = oh_http_request(&rq, &res, NULL);
	if (why && why_size)
		snprintf(why, why_size, "%s",
		         answered                     ? ""
		         : res.pin == OH_PIN_MISMATCH ? "refused: certificate thumbprint mismatch"
		                                      : oh_http_public_error(&res));
	return answered ? res.status : 0;
}

/* Appends the node list page ITEMS to OUT. */
static bool add_nodes(const json_t *items, oh_octo_nodes_t *out)
{
	size_t i;
	const json_t *it;
	json_array_foreach(items, i, it)
	{
		const char *id = json_string_value(json_object_get(it, "Id"));
		if (!id)
			return false;
		oh_octo_node_t *nv = realloc(out->v, (out->n + 1) * sizeof *nv);
		if (!nv)
			abort();
		out->v = nv;
		oh_octo_node_t *n = &out->v[out->n++];
		memset(n, 0, sizeof *n);
		copy_str(it, "Id", n->id, sizeof n->id);
		copy_str(it, "Name", n->name, sizeof n->name);
		n->max_tasks = (int)get_int(it, "MaxConcurrentTasks", 0);
		n->maintenance = get_bool(it, "IsInMaintenanceMode", false);
		n->running = -1;
	}
	return true;
}

oh_octo_status_t oh_octo_list_nodes(const oh_octo_t *o, oh_octo_nodes_t *out, long *http_status)
{
	memset(out, 0, sizeof *out);
	oh_octo_status_t st = OH_OCTO_OK;
	for (int page = 0; page < MAX_PAGES; page++) {
		char path[200];
		snprintf(path, sizeof path, NODES_PATH "?skip=%zu&take=%d", out->n, PAGE_SIZE);
		json_t *j = NULL;
		st = call(o, "GET", path, NULL, &j, http_status);
		if (st != OH_OCTO_OK)
			break;
		const json_t *items = json_object_get(j, "Items");
		if (!json_is_array(items) || !add_nodes(items, out)) {
			json_decref(j);
			st = OH_OCTO_BAD_ANSWER;
			break;
		}
		long long total = get_int(j, "TotalResults", (long long)out->n);
		size_t got = json_array_size(items);
		json_decref(j);
		if (got == 0 || (long long)out->n >= total)
			break;
	}
	if (st != OH_OCTO_OK) {
		oh_octo_nodes_free(out);
		return st;
	}
	json_t *sum = NULL;
	st = call(o, "GET", NODES_PATH "/summary", NULL, &sum, http_status);
	if (st == OH_OCTO_OK) {
		const json_t *nodes = json_object_get(sum, "Nodes");
		size_t i;
		const json_t *it;
		if (!json_is_array(nodes))
			st = OH_OCTO_BAD_ANSWER;
		json_array_foreach(nodes, i, it)
		{
			const char *id = json_string_value(json_object_get(it, "Id"));
			for (size_t k = 0; id && k < out->n; k++) {
				oh_octo_node_t *n = &out->v[k];
				if (strcmp(n->id, id) != 0)
					continue;
				n->in_summary = true;
				n->offline = get_bool(it, "IsOffline", false);
				n->running = (int)get_int(it, "RunningTaskCount", -1);
				n->maintenance =
				    get_bool(it, "IsInMaintenanceMode", n->maintenance);
				n->max_tasks = (int)get_int(it, "MaxConcurrentTasks", n->max_tasks);
			}
		}
	}
	json_decref(sum);
	if (st != OH_OCTO_OK)
		oh_octo_nodes_free(out);
	return st;
}

/* NODES_PATH/{id} with ID escaped. */
static bool node_path(const char *id, const char *suffix, char *out, size_t size)
{
	char *esc = curl_easy_escape(NULL, id, 0);
	if (!esc)
		return false;
	snprintf(out, size, NODES_PATH "/%s%s", esc, suffix);
	curl_free(esc);
	return true;
}

oh_octo_status_t oh_octo_get_node(const oh_octo_t *o, const char *id, json_t **out,
                                  long *http_status)
{
	char path[300];
	*out = NULL;
	if (!node_path(id, "", path, sizeof path))
		return OH_OCTO_BAD_ANSWER;
	oh_octo_status_t st = call(o, "GET", path, NULL, out, http_status);
	if (st == OH_OCTO_OK &&
	    (!json_is_object(*out) || !json_is_string(json_object_get(*out, "Id")))) {
		json_decref(*out);
		*out = NULL;
		st = OH_OCTO_BAD_ANSWER;
	}
	return st;
}

oh_octo_status_t oh_octo_put_node(const oh_octo_t *o, const char *id, const json_t *resource,
                                  long *http_status)
{
	char path[300];
	if (!node_path(id, "", path, sizeof path))
		return OH_OCTO_BAD_ANSWER;
	return call(o, "PUT", path, resource, NULL, http_status);
}

oh_octo_status_t oh_octo_running_tasks(const oh_octo_t *o, const char *node_id,
                                       const char *node_name, char (*ids)[64], size_t cap,
                                       size_t *n, long *http_status)
{
	*n = 0;
	char *esc = curl_easy_escape(NULL, node_id, 0);
	if (!esc)
		return OH_OCTO_BAD_ANSWER;
	char path[400];
	snprintf(path, sizeof path, "/api/tasks?node=%s&states=Executing,Cancelling&take=%d", esc,
	         PAGE_SIZE);
	curl_free(esc);
	json_t *j = NULL;
	oh_octo_status_t st = call(o, "GET", path, NULL, &j, http_status);
	if (st != OH_OCTO_OK)
		return st;
	const json_t *items = json_object_get(j, "Items");
	if (!json_is_array(items)) {
		json_decref(j);
		return OH_OCTO_BAD_ANSWER;
	}
	size_t i;
	const json_t *it;
	json_array_foreach(items, i, it)
	{
		const char *id = json_string_value(json_object_get(it, "Id"));
		const char *state = json_string_value(json_object_get(it, "State"));
		const char *on = json_string_value(json_object_get(it, "ServerNode"));
		/* The filter is the server's; this keeps only what is certain. */
		bool here = on && (strcmp(on, node_id) == 0 || strcasecmp(on, node_name) == 0);
		bool running =
		    state && (strcmp(state, "Executing") == 0 || strcmp(state, "Cancelling") == 0);
		if (id && here && running && *n < cap)
			snprintf(ids[(*n)++], 64, "%s", id);
	}
	json_decref(j);
	return OH_OCTO_OK;
}

oh_octo_status_t oh_octo_cancel_task(const oh_octo_t *o, const char *task_id, long *http_status)
{
	char *esc = curl_easy_escape(NULL, task_id, 0);
	if (!esc)
		return OH_OCTO_BAD_ANSWER;
	char path[200];
	snprintf(path, sizeof path, "/api/tasks/%s/cancel", esc);
	curl_free(esc);
	return call(o, "POST", path, NULL, NULL, http_status);
}

oh_octo_status_t oh_octo_machines(const oh_octo_t *o, const char *space_id, oh_octo_machines_t *out,
                                  long *http_status)
{
	memset(out, 0, sizeof *out);
	char *esc = curl_easy_escape(NULL, space_id, 0);
	if (!esc)
		return OH_OCTO_BAD_ANSWER;
	oh_octo_status_t st = OH_OCTO_OK;
	for (int page = 0; page < MAX_PAGES; page++) {
		char path[300];
		snprintf(path, sizeof path, "/api/%s/machines?skip=%zu&take=%d", esc, out->n,
		         PAGE_SIZE);
		json_t *j = NULL;
		st = call(o, "GET", path, NULL, &j, http_status);
		if (st != OH_OCTO_OK)
			break;
		const json_t *items = json_object_get(j, "Items");
		if (!json_is_array(items)) {
			json_decref(j);
			st = OH_OCTO_BAD_ANSWER;
			break;
		}
		size_t i;
		const json_t *it;
		json_array_foreach(items, i, it)
		{
			if (!json_is_string(json_object_get(it, "Id")))
				continue;
			oh_octo_machine_t *nv = realloc(out->v, (out->n + 1) * sizeof *nv);
			if (!nv)
				abort();
			out->v = nv;
			oh_octo_machine_t *m = &out->v[out->n++];
			memset(m, 0, sizeof *m);
			copy_str(it, "Id", m->id, sizeof m->id);
			copy_str(it, "Name", m->name, sizeof m->name);
			copy_str(it, "HealthStatus", m->health, sizeof m->health);
			m->disabled = get_bool(it, "IsDisabled", false);
			const json_t *ep = json_object_get(it, "Endpoint");
			copy_str(ep, "Thumbprint", m->thumbprint, sizeof m->thumbprint);
			for (char *p = m->thumbprint; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			copy_str(ep, "Uri", m->uri, sizeof m->uri);
			copy_str(ep, "CommunicationStyle", m->style, sizeof m->style);
		}
		long long total = get_int(j, "TotalResults", (long long)out->n);
		size_t got = json_array_size(items);
		json_decref(j);
		if (got == 0 || (long long)out->n >= total)
			break;
	}
	curl_free(esc);
	if (st != OH_OCTO_OK)
		oh_octo_machines_free(out);
	return st;
}
