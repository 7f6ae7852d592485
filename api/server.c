/* The dispatcher: every request enters here.  It bounds the URI and body,
 * routes by the generated table, checks Content-Type, parses and validates
 * JSON and parameters against the spec, calls the handler, writes the
 * response with one error shape, and logs one line per request. */
#include <civetweb.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../lib/idempotency.h"
#include "../lib/metrics.h"
#include "../lib/oh_json.h"
#include "../lib/oh_log.h"
#include "../lib/oh_schema.h"
#include "auth.h"
#include "body_stream.h"
#include "conn_gate.h"
#include "http.h"
#include "http_rules.h"
#include "options.h"
#include "portal.h"
#include "router.h"

#define API_MAX_JSON_DEPTH 32
#define API_MAX_HEADERS    64 /* civetweb's MG_MAX_HEADERS */
#define PING_PATH          "/api/octopusservernodes/ping"

/* What a request handler's callback data points at: the server, and
 * whether the request came to the health listener. */
typedef struct {
	api_server_t *srv;
	bool health;
} api_listener_t;

struct api_server {
	struct mg_context *ctx;        /* the API listener(s) */
	struct mg_context *health_ctx; /* ping and /metrics only, or NULL */
	api_config_t cfg;
	_Atomic uint64_t seq;
	_Atomic int in_flight; /* requests inside dispatch */
	oh_metrics_t *metrics; /* requests by route and status, latency */
	api_listener_t api_l, health_l;
};

#define HEALTH_THREADS    4
#define HEALTH_TIMEOUT_MS 2000

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *reason(int status)
{
	const char *r = mg_get_response_code_text(NULL, status);
	return r ? r : "";
}

/* Whether RESP tells the client the connection closes after it. */
static bool closes(const api_resp_t *resp)
{
	return strstr(resp->headers, "Connection: close\r\n") != NULL;
}

/* Writes RESP in full: status line, headers and body in as few writes as
 * possible (one for small bodies).  For HEAD (RFC 9110 §9.3.2) everything
 * but the body: the same status and headers, Content-Length included.  A
 * 204 carries no Content-Length (§8.6).  A response that says
 * "Connection: close" is the last on its connection: civetweb then reads
 * nothing more from it. */
static void write_response(struct mg_connection *conn, const char *rid, api_resp_t *resp, bool head)
{
	const char *body = resp->raw;
	size_t len = resp->raw_len;
	char *dumped = NULL;
	const char *ctype = resp->content_type ? resp->content_type : "application/json";
	if (resp->json) {
		dumped = oh_json_dump(resp->json);
		body = dumped;
		len = strlen(dumped);
		ctype = "application/json; charset=utf-8";
	} else if (resp->raw_owned) {
		body = resp->raw_owned;
	}
	if (!body)
		len = 0;
	if (resp->has_file) { /* a download: the file follows the headers */
		len = (size_t)resp->file_len;
		ctype = resp->content_type ? resp->content_type : "application/octet-stream";
	}
	bool no_content = resp->status == 204 || resp->status == 304;
	char head_buf[2048], framing[200] = "";
	if (!no_content)
		snprintf(framing, sizeof framing, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		         ctype, len);
	int hn = snprintf(head_buf, sizeof head_buf,
	                  "HTTP/1.1 %d %s\r\n"
	                  "%s"
	                  "Cache-Control: no-store\r\n"
	                  "X-Request-Id: %s\r\n"
	                  "%s\r\n",
	                  resp->status, reason(resp->status), framing, rid, resp->headers);
	if (hn < 0 || (size_t)hn >= sizeof head_buf)
		hn = 0;
	bool file = resp->has_file && !head && !no_content;
	if (head || no_content)
		len = 0;
	if (closes(resp))
		mg_disable_connection_keep_alive(conn);
	if (file) {
		if (mg_write(conn, head_buf, (size_t)hn) == hn && resp->file_len > 0)
			api_write_file(conn, resp->file_fd, resp->file_off, resp->file_len);
	} else if (len > 0 && (size_t)hn + len <= 4096) {
		char buf[4096];
		memcpy(buf, head_buf, (size_t)hn);
		memcpy(buf + hn, body, len);
		mg_write(conn, buf, (size_t)hn + len);
	} else {
		mg_write(conn, head_buf, (size_t)hn);
		if (len > 0)
			mg_write(conn, body, len);
	}
	free(dumped);
}

/* Makes RESP the last answer on its connection. */
static void close_after(api_resp_t *resp)
{
	if (!closes(resp))
		api_header(resp, "Connection", "close");
}

static bool is_type(const char *ct, const char *want)
{
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	size_t n = strlen(want);
	return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static bool is_json_type(const char *ct)
{
	return is_type(ct, "application/json");
}

static bool is_form_type(const char *ct)
{
	return is_type(ct, "application/x-www-form-urlencoded");
}

const char *api_header_in(const api_req_t *req, const char *name)
{
	return req->conn ? mg_get_header(req->conn, name) : NULL;
}

typedef enum { BODY_OK, BODY_OOM, BODY_TOO_BIG, BODY_CUT } body_read_t;

/* Reads the body up to MAX+1 bytes into *OUT (malloc'd, NUL terminated) and
 * its length into *LEN.  BODY_CUT when the body ended before its
 * Content-Length, or a chunked body broke off or was malformed (the client
 * closed its side, or stalled past the request timeout): such a body is
 * never handed on.  BODY_TOO_BIG when it exceeded MAX. */
static body_read_t read_body(struct mg_connection *conn, long long content_length, size_t max,
                             char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	*out = NULL;
	*len = 0;
	if (!buf)
		return BODY_OOM;
	body_read_t result = BODY_OK;
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > max + 1) {
				result = BODY_TOO_BIG;
				break;
			}
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return BODY_OOM;
			}
			buf = nb;
		}
		int r = mg_read(conn, buf + n, cap - n - 1);
		if (r < 0) {
			result = BODY_CUT;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			result = BODY_TOO_BIG;
			break;
		}
	}
	if (result == BODY_OK && content_length >= 0 &&
	    (unsigned long long)n != (unsigned long long)content_length)
		result = BODY_CUT;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return result;
}

/* Coerces a raw query value to the parameter schema's type. */
static json_t *coerce(const json_t *schema, const char *raw)
{
	const char *type = json_string_value(json_object_get(schema, "type"));
	if (type && strcmp(type, "integer") == 0) {
		char *end;
		errno = 0;
		long long v = strtoll(raw, &end, 10);
		if (*raw == '\0' || *end != '\0' || errno == ERANGE || raw[0] == ' ' ||
		    raw[0] == '+')
			return json_string(raw); /* fails the type check with a clear message */
		return json_integer(v);
	}
	if (type && strcmp(type, "boolean") == 0) {
		if (strcmp(raw, "true") == 0)
			return json_true();
		if (strcmp(raw, "false") == 0)
			return json_false();
	}
	return json_string(raw);
}

/* NULL when the LEN bytes at S are text a parameter may hold, else what is
 * wrong with them.  A decoded NUL would cut the value short for every C
 * string that follows, and bytes that are not UTF-8 cannot be validated (or
 * stored) as text: both are refused, never skipped. */
static const char *text_problem(const char *s, size_t len)
{
	if (memchr(s, '\0', len))
		return "must not contain NUL characters";
	if (!oh_utf8_valid(s, len))
		return "is not valid UTF-8 text";
	return NULL;
}

/* Fills RESP with the ValidationFailed error for parameter NAME. */
static void param_error(api_resp_t *resp, const char *name, const char *why)
{
	char msg[200];
	snprintf(msg, sizeof msg, "%s %s.", name, why);
	api_error(resp, OH_E_VALIDATION, msg, name);
}

/* Checks that every path parameter REQ's route filled is text (see
 * text_problem).  Runs before authentication, since a refused request's
 * audit record names the resource.  False with RESP filled if not. */
static bool check_path_text(const api_req_t *req, api_resp_t *resp)
{
	for (size_t i = 0; i < req->n_path; i++) {
		const char *why = text_problem(req->path_values[i], req->path_lens[i]);
		if (why) {
			param_error(resp, req->path_names[i], why);
			return false;
		}
	}
	return true;
}

/* Validates path and query parameters of route META.  Returns the typed
 * query object (owned) or NULL with RESP filled. */
static json_t *check_params(struct mg_connection *conn, const json_t *meta,
                            const struct mg_request_info *ri, api_req_t *req, api_resp_t *resp,
                            const char **idem_key)
{
	json_t *query = oh_json_check(json_object());
	const json_t *params = json_object_get(meta, "parameters");
	size_t i;
	const json_t *p;
	json_array_foreach(params, i, p)
	{
		const char *name = json_string_value(json_object_get(p, "name"));
		const char *in = json_string_value(json_object_get(p, "in"));
		const json_t *schema = json_object_get(p, "schema");
		if (!name || !in)
			continue;
		json_t *value = NULL;
		if (strcmp(in, "path") == 0) {
			size_t k = 0;
			while (k < req->n_path && strcmp(req->path_names[k], name) != 0)
				k++;
			if (k == req->n_path)
				continue; /* the template has no such parameter */
			/* check_path_text made sure it is text. */
			value = oh_json_check(json_stringn(req->path_values[k], req->path_lens[k]));
		} else if (strcmp(in, "header") == 0) {
			const char *h = mg_get_header(conn, name);
			if (!h)
				continue;
			value = json_string(h);
			if (!value) { /* not UTF-8 */
				api_error(resp, OH_E_VALIDATION, "The header is not valid UTF-8.",
				          name);
				json_decref(query);
				return NULL;
			}
		} else if (strcmp(in, "query") == 0) {
			/* As long as a URI may be: a list (ids=…) can be long. */
			char raw[API_MAX_URI + 1];
			int got = ri->query_string
			              ? mg_get_var(ri->query_string, strlen(ri->query_string), name,
			                           raw, sizeof raw)
			              : -1;
			if (got == -2) {
				api_error(resp, OH_E_VALIDATION, "The query parameter is too long.",
				          name);
				json_decref(query);
				return NULL;
			}
			const char *why = got >= 0 ? text_problem(raw, (size_t)got) : NULL;
			if (why) {
				param_error(resp, name, why);
				json_decref(query);
				return NULL;
			}
			if (got >= 0) {
				value = oh_json_check(coerce(schema, raw));
			} else if (json_object_get(schema, "default")) {
				value = json_deep_copy(json_object_get(schema, "default"));
			} else if (json_is_true(json_object_get(p, "required"))) {
				char msg[160];
				snprintf(msg, sizeof msg, "The query parameter %s is required.",
				         name);
				api_error(resp, OH_E_VALIDATION, msg, name);
				json_decref(query);
				return NULL;
			}
		} else {
			continue;
		}
		if (!value)
			continue; /* an optional query parameter that was not given */
		oh_schema_error_t err;
		if (!oh_schema_validate(schema, value, name, &err)) {
			json_decref(value);
			api_error(resp, OH_E_VALIDATION, err.message, err.field);
			json_decref(query);
			return NULL;
		}
		if (strcmp(in, "query") == 0)
			oh_json_set_new(query, name, value);
		else if (strcmp(in, "header") == 0 && strcasecmp(name, "Idempotency-Key") == 0) {
			*idem_key = mg_get_header(conn, name);
			json_decref(value);
		} else
			json_decref(value);
	}
	return query;
}

/* Parses and validates the request body.  Returns true to go on; *BODY is
 * the parsed body (owned) or NULL when there was none.  A form post to an
 * operation that declares one is not parsed: *RAW_OUT (owned) gets it. */
static bool check_body(struct mg_connection *conn, const struct mg_request_info *ri,
                       const api_config_t *cfg, const json_t *meta, json_t **body, char **raw_out,
                       size_t *raw_len, api_resp_t *resp)
{
	*body = NULL;
	*raw_out = NULL;
	*raw_len = 0;
	long long cl = ri->content_length;
	const char *te = mg_get_header(conn, "Transfer-Encoding");
	bool has_body = cl > 0 || (cl < 0 && te != NULL);
	const json_t *rb = json_object_get(meta, "requestBody");
	if (!has_body) {
		if (json_is_true(json_object_get(rb, "required"))) {
			api_error(resp, OH_E_VALIDATION, "A JSON request body is required.", NULL);
			return false;
		}
		return true;
	}
	if (cl > 0 && (unsigned long long)cl > cfg->max_body) {
		close_after(resp);
		api_error(resp, OH_E_PAYLOAD_TOO_LARGE, NULL, NULL);
		return false;
	}
	const char *ct = mg_get_header(conn, "Content-Type");
	bool form =
	    is_form_type(ct) && json_object_get(json_object_get(rb, "content"),
	                                        "application/x-www-form-urlencoded") != NULL;
	if (!is_json_type(ct) && !form) {
		api_error(resp, OH_E_UNSUPPORTED_MEDIA_TYPE, NULL, NULL);
		return false;
	}
	size_t len = 0;
	char *raw = NULL;
	switch (read_body(conn, te ? -1 : cl, cfg->max_body, &raw, &len)) {
	case BODY_OK: break;
	case BODY_OOM: api_error(resp, OH_E_INTERNAL, NULL, NULL); return false;
	case BODY_TOO_BIG:
		free(raw);
		close_after(resp);
		api_error(resp, OH_E_PAYLOAD_TOO_LARGE, NULL, NULL);
		return false;
	case BODY_CUT:
		free(raw);
		close_after(resp);
		api_error(resp, OH_E_BAD_REQUEST,
		          "The request body ended before its Content-Length (or its last chunk).",
		          NULL);
		return false;
	}
	if (form) { /* handed over as it came: its signature covers the bytes */
		*raw_out = raw;
		*raw_len = len;
		return true;
	}
	json_error_t je;
	json_t *j = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &je);
	free(raw);
	if (!j) {
		char msg[300];
		snprintf(msg, sizeof msg,
		         "The request body is not valid JSON: %s (line %d, column %d).", je.text,
		         je.line, je.column);
		api_error(resp, OH_E_INVALID_JSON, msg, NULL);
		return false;
	}
	if (oh_json_depth(j) > API_MAX_JSON_DEPTH) {
		json_decref(j);
		api_error(resp, OH_E_INVALID_JSON, "The request body nests too deeply.", NULL);
		return false;
	}
	const json_t *schema = json_object_get(
	    json_object_get(json_object_get(rb, "content"), "application/json"), "schema");
	oh_schema_error_t err;
	if (schema && !oh_schema_validate(schema, j, "", &err)) {
		json_decref(j);
		api_error(resp, OH_E_VALIDATION, err.message, err.field[0] ? err.field : NULL);
		return false;
	}
	*body = j;
	return true;
}

/* A change that was asked for and refused (bad input, a conflict) is
 * recorded too, so the audit log shows attempts as well as changes. */
static void record_failure(api_req_t *req, const api_resp_t *resp)
{
	const char *code = json_string_value(json_object_get(resp->json, "Code"));
	char msg[300];
	snprintf(msg, sizeof msg, "%s %s failed: %s", req->method, req->path,
	         code ? code : "error");
	oh_utf8_sanitize(msg); /* the path is as the client sent it */
	const char *id = api_path_param(req, "id");
	if (text_problem(id, strlen(id)) || strlen(id) > 200)
		id = ""; /* an id that was refused for what it is is not a resource */
	oh_event_spec_t ev = {.actor = &req->actor,
	                      .category = "RequestFailed",
	                      .operation = req->operation_id,
	                      .resource_id = *id ? id : NULL,
	                      .result = "Failed",
	                      .status = resp->status,
	                      .message = msg};
	db_status_t s = oh_event_record(req->cfg->pool, &ev);
	if (s != DB_OK)
		oh_log(OH_LOG_WARN, "failed request not recorded", "rid=%s db=%s", req->rid,
		       db_status_name(s));
}

/* RFC 9112 framing of the request REQ (see api_framing_check).  False with
 * RESP filled, and the connection to be closed, when it is refused. */
static bool check_framing(const struct mg_request_info *ri, size_t max_body, api_resp_t *resp)
{
	api_header_t h[API_MAX_HEADERS];
	size_t n = 0;
	for (int i = 0; i < ri->num_headers && n < API_MAX_HEADERS; i++)
		h[n++] = (api_header_t){ri->http_headers[i].name, ri->http_headers[i].value};
	const char *why = NULL;
	switch (api_framing_check(h, n, ri->http_version, max_body, &why)) {
	case API_FRAMING_OK: return true;
	case API_FRAMING_BAD:
		close_after(resp);
		api_error(resp, OH_E_BAD_REQUEST, why, NULL);
		return false;
	case API_FRAMING_TOO_LARGE:
		close_after(resp);
		api_error(resp, OH_E_PAYLOAD_TOO_LARGE, NULL, NULL);
		return false;
	}
	return true;
}

/* The paths the health listener serves: the ping, the metrics, and "/"
 * for a balancer's plain OPTIONS check. */
static bool health_path(const char *path)
{
	return strcmp(path, PING_PATH) == 0 || strcmp(path, "/metrics") == 0 ||
	       strcmp(path, "/") == 0;
}

static int dispatch_request(const api_listener_t *listener, struct mg_connection *conn);

/* Counts the requests in flight around the dispatcher proper, so a stop
 * can let them answer first. */
static int dispatch(struct mg_connection *conn, const api_listener_t *listener)
{
	api_server_t *srv = listener->srv;
	atomic_fetch_add(&srv->in_flight, 1);
	int status = dispatch_request(listener, conn);
	atomic_fetch_sub(&srv->in_flight, 1);
	return status;
}

static int dispatch_request(const api_listener_t *listener, struct mg_connection *conn)
{
	api_server_t *srv = listener->srv;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	int64_t t0 = now_us();
	char rid[48];
	snprintf(rid, sizeof rid, "%s-%llx", srv->cfg.instance_tag,
	         (unsigned long long)atomic_fetch_add(&srv->seq, 1));
	/* The path as sent (civetweb decodes nothing: decode_url is off), with
	 * dot segments removed; decoded segment by segment below. */
	const char *path = ri->local_uri ? ri->local_uri : "";
	api_req_t req = {.cfg = &srv->cfg,
	                 .method = ri->request_method,
	                 .path = path,
	                 .rid = rid,
	                 .remote_addr = ri->remote_addr,
	                 .conn = conn,
	                 .metrics = srv->metrics};
	req.content_type = mg_get_header(conn, "Content-Type");
	req.accept = mg_get_header(conn, "Accept");
	api_auth_actor(&srv->cfg, ri->remote_addr, mg_get_header(conn, "X-Forwarded-For"),
	               &req.actor);
	api_resp_t resp = {0};
	char allow[128] = ""; /* the path's methods, when the router matched it */
	json_t *body = NULL, *query = NULL;
	char *raw_body = NULL;
	size_t raw_len = 0;
	bool audit_failure = false;
	bool head = strcmp(ri->request_method, "HEAD") == 0;
	size_t route = 0, counted_route = OH_METRICS_UNMATCHED;
	api_path_t *segs = malloc(sizeof *segs);
	size_t urilen = strlen(ri->request_uri ? ri->request_uri : "") +
	                (ri->query_string ? strlen(ri->query_string) + 1 : 0);

	if (!segs) {
		api_error(&resp, OH_E_INTERNAL, NULL, NULL);
		goto respond;
	}
	if (urilen > API_MAX_URI || strlen(path) > API_MAX_URI) {
		api_error(&resp, OH_E_URI_TOO_LONG, NULL, NULL);
		goto respond;
	}
	/* A message that could be framed two ways, or a declared body over
	 * the limit, is refused before anything else, so no route, method or
	 * resource is looked at for it, and nothing more is read from its
	 * connection. */
	if (!check_framing(ri, SIZE_MAX, &resp))
		goto respond;
	if (listener->health && !health_path(path)) {
		api_error(
		    &resp, OH_E_NOT_FOUND,
		    "This port serves only the ping and /metrics; the API is on the main port.",
		    NULL);
		goto respond;
	}
	switch (api_path_decode(path, segs)) {
	case API_PATH_OK: break;
	case API_PATH_BAD_ESCAPE:
		api_error(&resp, OH_E_BAD_REQUEST,
		          "The path has a '%' that is not followed by two hex digits.", NULL);
		goto respond;
	case API_PATH_TOO_LONG: api_error(&resp, OH_E_URI_TOO_LONG, NULL, NULL); goto respond;
	case API_PATH_TOO_DEEP:
	case API_PATH_RELATIVE:
		api_error(&resp, OH_E_NOT_FOUND, "There is no resource at this path.", NULL);
		goto respond;
	}
	if (segs->n == 0 && strcmp(ri->request_method, "OPTIONS") == 0) {
		/* No resource lives at "/", but a load balancer's plain check
		 * (HAProxy's option httpchk) asks it whether the server is up. */
		api_options(&req, "OPTIONS", &resp);
		goto respond;
	}
	api_match_t match =
	    api_route_match(ri->request_method, segs, &route, &req, allow, sizeof allow);
	/* Only an operation that streams its body (an upload) takes one over
	 * the JSON limit: its handler reads the body itself. */
	bool streams = match == API_MATCH_OK && api_routes[route].stream_body;
	if (!streams && ri->content_length > 0 &&
	    (unsigned long long)ri->content_length > srv->cfg.max_body) {
		close_after(&resp);
		api_error(&resp, OH_E_PAYLOAD_TOO_LARGE, NULL, NULL);
		goto respond;
	}
	switch (match) {
	case API_MATCH_NO_PATH:
		api_error(&resp, OH_E_NOT_FOUND, "There is no resource at this path.", NULL);
		goto respond;
	case API_MATCH_NO_METHOD:
		api_header(&resp, "Allow", allow);
		api_error(&resp, OH_E_METHOD_NOT_ALLOWED, NULL, NULL);
		goto respond;
	case API_MATCH_OPTIONS: api_options(&req, allow, &resp); goto respond;
	case API_MATCH_OK: break;
	}
	counted_route = route;
	const json_t *meta = api_route_meta(route);
	req.operation_id = api_routes[route].operation_id;
	audit_failure = strcmp(api_routes[route].method, "GET") != 0;
	if (!check_path_text(&req, &resp))
		goto respond;
	/* A Slack slash command is signed instead of carrying a key; its
	 * handler checks the signature. */
	bool slack =
	    json_is_true(json_object_get(meta, "slackSigned")) && is_form_type(req.content_type);
	if (api_routes[route].role != OH_ROLE_NONE && !slack &&
	    !api_authenticate(&req, &resp, api_routes[route].role, ri->query_string)) {
		audit_failure = false; /* recorded as a refusal */
		goto respond;
	}
	api_body_stream_t stream;
	if (streams) {
		api_body_stream_init(&stream, conn);
		req.body_in = &stream.reader;
	} else if (!check_body(conn, ri, &srv->cfg, meta, &body, &raw_body, &raw_len, &resp)) {
		goto respond;
	}
	req.raw_body = raw_body;
	req.raw_body_len = raw_len;
	const char *idem_key = NULL;
	query = check_params(conn, meta, ri, &req, &resp, &idem_key);
	if (!query)
		goto respond;
	req.query = query;
	req.body = body;
	oh_idem_t idem;
	if (idem_key && api_idem_begin(&req, idem_key, &idem, &resp))
		goto respond; /* answered: a replay, or the key refused */
	api_routes[route].handler(&req, &resp);
	if (resp.status == 0)
		api_error(&resp, OH_E_INTERNAL, NULL, NULL);
	api_idem_end(&req, &resp);

respond:
	api_cors(&req, &resp, allow);
	/* Counted before the answer leaves, so a client that has its answer
	 * finds it counted in its next scrape. */
	oh_metrics_observe(srv->metrics, counted_route, resp.status, now_us() - t0);
	/* Recorded before the answer leaves, as refusals are: a client that
	 * has its answer finds the event, and a client sending one failing
	 * request after another waits for each record instead of leaving a
	 * growing queue of them behind its back. */
	if (audit_failure && resp.status >= 400 && resp.status < 500 && resp.status != 401 &&
	    resp.status != 403)
		record_failure(&req, &resp);
	if (resp.stream)
		api_stream_serve(&req, rid, &resp); /* until the client or the node goes */
	else
		write_response(conn, rid, &resp, head);
	bool is_ping = strcmp(path, PING_PATH) == 0;
	oh_log_level_t lvl = is_ping ? OH_LOG_DEBUG : OH_LOG_INFO;
	if (resp.status >= 500)
		lvl = OH_LOG_WARN;
	if (oh_log_enabled(lvl)) {
		double ms = (double)(now_us() - t0) / 1000.0;
		oh_log(lvl, "request", "rid=%s method=%s path=%s status=%d dur_ms=%.3f remote=%s%s",
		       rid, oh_q(ri->request_method), oh_q(path), resp.status, ms, ri->remote_addr,
		       listener->health ? " listener=health" : "");
	}
	int status = resp.status;
	json_decref(resp.json);
	free(resp.raw_owned);
	if (resp.has_file)
		close(resp.file_fd);
	json_decref(body);
	json_decref(query);
	free(raw_body);
	free(segs);
	return status;
}

/* Errors civetweb raises itself (malformed request line, oversized headers,
 * an HTTP version other than 1.0 and 1.1, a Content-Length that is not a
 * number) get the same body shape as ours.  civetweb closes the connection
 * after each. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
	(void)msg;
	oh_ec_t ec = OH_E_BAD_REQUEST;
	const char *text = NULL;
	if (status == 404)
		ec = OH_E_NOT_FOUND;
	else if (status == 405)
		ec = OH_E_METHOD_NOT_ALLOWED;
	else if (status == 413)
		ec = OH_E_PAYLOAD_TOO_LARGE;
	else if (status == 414 || status == 431)
		ec = OH_E_URI_TOO_LONG;
	else if (status == 505)
		ec = OH_E_HTTP_VERSION;
	else if (status == 411) {
		/* civetweb's answer to a negative or non-numeric Content-Length:
		 * the request is malformed, not missing a length. */
		status = 400;
		text = "Content-Length must be a decimal number of bytes.";
	} else if (status >= 500)
		ec = OH_E_INTERNAL;
	api_resp_t resp = {0};
	api_error(&resp, ec, text, NULL);
	resp.status = status;
	close_after(&resp);
	const struct mg_context *ctx = mg_get_context(conn);
	api_server_t *srv = ctx ? mg_get_user_data(ctx) : NULL;
	if (srv)
		oh_metrics_count(srv->metrics, OH_METRICS_UNMATCHED, status);
	const struct mg_request_info *ri = mg_get_request_info(conn);
	bool head = ri && ri->request_method && strcmp(ri->request_method, "HEAD") == 0;
	write_response(conn, "-", &resp, head);
	json_decref(resp.json);
	oh_log(OH_LOG_INFO, "request rejected by the HTTP layer", "status=%d", status);
	return 0;
}

/* Every request, from the first one a listener accepts: as a callback
 * given to mg_start2 (not a handler set after it, which left a moment when
 * a node just started answered civetweb's own 404).  Authentication is
 * octoha's own: civetweb's (.htpasswd) is never reached. */
static int begin_on(struct mg_connection *conn, bool health)
{
	const struct mg_context *ctx = mg_get_context(conn);
	api_server_t *srv = ctx ? mg_get_user_data(ctx) : NULL;
	if (!srv)
		return 0;
	int status = dispatch(conn, health ? &srv->health_l : &srv->api_l);
	return status > 0 ? status : 500;
}

static int on_begin_api(struct mg_connection *conn)
{
	return begin_on(conn, false);
}

static int on_begin_health(struct mg_connection *conn)
{
	return begin_on(conn, true);
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	oh_log(OH_LOG_WARN, "http server", "detail=%s", oh_q(message));
	return 1;
}

/* Sets up TLS ourselves: certificate chain and key from separate files,
 * TLS 1.2 as the floor, forward-secret AEAD ciphers only. */
static int on_init_ssl(void *ssl_ctx, void *user_data)
{
	api_server_t *srv = user_data;
	SSL_CTX *ctx = ssl_ctx;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1") !=
	        1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, srv->cfg.tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, srv->cfg.tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		oh_log(OH_LOG_ERROR, "TLS set-up failed", "cert=%s key=%s", oh_q(srv->cfg.tls_cert),
		       oh_q(srv->cfg.tls_key));
		return -1;
	}
	return 1;
}

/* Counters for every route of the table, named by operationId. */
static oh_metrics_t *new_metrics(void)
{
	const char **names = malloc((api_route_count ? api_route_count : 1) * sizeof *names);
	if (!names)
		return NULL;
	for (size_t i = 0; i < api_route_count; i++)
		names[i] = api_routes[i].operation_id;
	oh_metrics_t *m = oh_metrics_new(names, api_route_count);
	free(names);
	return m;
}

/* The port of a "host:port" listen address, or 0. */
static int port_of(const char *listen)
{
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	return colon ? atoi(colon + 1) : 0;
}

/* A connection to the API listener closed: its place in the gate is free. */
static void on_connection_close(const struct mg_connection *conn)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	api_gate_release(ri ? ri->remote_addr : NULL);
}

/* Starts the health listener: its own civetweb context and few threads, a
 * short request timeout, serving the ping and /metrics only.  NULL with
 * ERR set on failure. */
static struct mg_context *start_health(api_server_t *srv, bool tls, char *err, size_t errlen)
{
	const api_config_t *cfg = &srv->cfg;
	char ports[300], threads[16], timeout[16];
	snprintf(ports, sizeof ports, "%s%s", cfg->health_listen, tls ? "s" : "");
	snprintf(threads, sizeof threads, "%d", HEALTH_THREADS);
	int t = cfg->request_timeout_ms > 0 && cfg->request_timeout_ms < HEALTH_TIMEOUT_MS
	            ? cfg->request_timeout_ms
	            : HEALTH_TIMEOUT_MS;
	snprintf(timeout, sizeof timeout, "%d", t);
	const char *options[] = {"listening_ports",
	                         ports,
	                         "num_threads",
	                         threads,
	                         "enable_keep_alive",
	                         "yes",
	                         "keep_alive_timeout_ms",
	                         timeout,
	                         "request_timeout_ms",
	                         timeout,
	                         "tcp_nodelay",
	                         "1",
	                         "max_request_size",
	                         "16384",
	                         "enable_auth_domain_check",
	                         "no",
	                         "decode_url",
	                         "no",
	                         NULL};
	struct mg_callbacks cb = {0};
	cb.begin_request = on_begin_health;
	cb.http_error = on_http_error;
	cb.log_message = on_log_message;
	if (tls)
		cb.init_ssl = on_init_ssl;
	struct mg_init_data init = {
	    .callbacks = &cb, .user_data = srv, .configuration_options = options};
	char why[256] = "";
	struct mg_error_data ed = {.text = why, .text_buffer_size = sizeof why};
	struct mg_context *ctx = mg_start2(&init, &ed);
	if (!ctx) {
		snprintf(err, errlen, "health listener %s: %s", cfg->health_listen, why);
		return NULL;
	}
	return ctx;
}

api_server_t *api_server_start(const api_config_t *cfg, char *err, size_t errlen)
{
	api_server_t *srv = calloc(1, sizeof *srv);
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cfg = *cfg;
	srv->api_l = (api_listener_t){srv, false};
	srv->health_l = (api_listener_t){srv, true};
	srv->metrics = new_metrics();
	if (!srv->metrics) {
		snprintf(err, errlen, "out of memory");
		free(srv);
		return NULL;
	}
	srv->cfg.streams = NULL;
	bool cors_ok = api_cors_check(cfg->cors_origins, err, errlen);
	if (cors_ok && !(srv->cfg.streams = api_streams_new(&srv->cfg)))
		snprintf(err, errlen, "out of memory");
	if (!srv->cfg.streams) {
		oh_metrics_free(srv->metrics);
		free(srv);
		return NULL;
	}
	if (!api_router_init(err, errlen)) {
		api_streams_free(srv->cfg.streams);
		oh_metrics_free(srv->metrics);
		free(srv);
		return NULL;
	}
	bool tls = cfg->tls_cert && *cfg->tls_cert && cfg->tls_key && *cfg->tls_key;
	bool redirect = tls && cfg->redirect_listen && *cfg->redirect_listen;
	int nthreads = cfg->threads > 0 ? cfg->threads : 64;
	char ports[600], threads[16], timeout[16];
	/* civetweb answers the "r" port with a redirect to the first "s" one. */
	if (redirect)
		snprintf(ports, sizeof ports, "%ss,%sr", cfg->listen, cfg->redirect_listen);
	else
		snprintf(ports, sizeof ports, "%s%s", cfg->listen, tls ? "s" : "");
	snprintf(threads, sizeof threads, "%d", nthreads);
	/* How long a request's headers may take to arrive (civetweb counts
	 * from the request's first byte, so a client trickling them in is
	 * cut off too), and how long a body read or a write may stall. */
	snprintf(timeout, sizeof timeout, "%d",
	         cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 5000);
	const char *options[] = {"listening_ports", ports, "num_threads", threads,
	                         "enable_keep_alive", "yes", "keep_alive_timeout_ms", "30000",
	                         "request_timeout_ms", timeout, "tcp_nodelay", "1",
	                         "max_request_size", "16384", "enable_auth_domain_check", "no",
	                         /* The dispatcher decodes the path segment by
	                          * segment: decoded whole, a "%00" would cut it
	                          * and a "%2F" would move a route boundary. */
	                         "decode_url", "no",
	                         /* civetweb would answer every CORS preflight
	                          * itself, with "*": empty access_control_*
	                          * options leave that to api/cors.c. */
	                         "access_control_allow_origin", "", "access_control_allow_methods",
	                         "", "access_control_allow_headers", "", NULL};
	/* The per-client cap is in place before the first connection: each
	 * accepted one is counted until civetweb's close callback. */
	int gate_ports[2] = {port_of(cfg->listen), port_of(cfg->redirect_listen)};
	bool gate_tls[2] = {tls, false};
	if (!api_gate_open(gate_ports, gate_tls, redirect ? 2 : 1, cfg->max_conns_per_client,
	                   cfg->trusted_proxies, (size_t)nthreads + 64)) {
		snprintf(err, errlen, "out of memory");
		api_router_free();
		api_streams_free(srv->cfg.streams);
		oh_metrics_free(srv->metrics);
		free(srv);
		return NULL;
	}
	struct mg_callbacks cb = {0};
	cb.begin_request = on_begin_api;
	cb.http_error = on_http_error;
	cb.log_message = on_log_message;
	cb.connection_close = on_connection_close;
	if (tls)
		cb.init_ssl = on_init_ssl;
	struct mg_init_data init = {
	    .callbacks = &cb, .user_data = srv, .configuration_options = options};
	struct mg_error_data ed = {.text = err, .text_buffer_size = errlen};
	mg_init_library(tls ? MG_FEATURES_TLS : 0);
	srv->ctx = mg_start2(&init, &ed);
	if (srv->ctx && cfg->health_listen && *cfg->health_listen) {
		srv->health_ctx = start_health(srv, tls, err, errlen);
		if (!srv->health_ctx) {
			mg_stop(srv->ctx);
			srv->ctx = NULL;
		}
	}
	if (!srv->ctx) {
		api_gate_close();
		api_router_free();
		api_streams_free(srv->cfg.streams);
		oh_metrics_free(srv->metrics);
		free(srv);
		mg_exit_library();
		return NULL;
	}
	if (srv->health_ctx)
		oh_log(OH_LOG_INFO, "health listener ready", "health_listen=%s threads=%d",
		       oh_q(cfg->health_listen), HEALTH_THREADS);
	return srv;
}

void api_server_quiesce(api_server_t *srv, int64_t deadline_mono)
{
	if (!srv)
		return;
	api_streams_close(srv->cfg.streams); /* event streams never end by themselves */
	while (atomic_load(&srv->in_flight) > 0 && oh_mono_ms() < deadline_mono) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

void api_server_stop(api_server_t *srv)
{
	if (!srv)
		return;
	api_streams_close(srv->cfg.streams); /* streams end now: the stop never waits for one */
	if (srv->health_ctx)
		mg_stop(srv->health_ctx);
	mg_stop(srv->ctx);
	api_gate_close();
	api_streams_free(srv->cfg.streams);
	api_router_free();
	oh_metrics_free(srv->metrics);
	free(srv);
	mg_exit_library();
}
