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

#include "../lib/metrics.h"
#include "../lib/oh_json.h"
#include "../lib/oh_log.h"
#include "../lib/oh_schema.h"
#include "auth.h"
#include "http.h"
#include "portal.h"
#include "router.h"

#define API_MAX_URI        8192
#define API_MAX_JSON_DEPTH 32
#define PING_PATH          "/api/octopusservernodes/ping"

struct api_server {
	struct mg_context *ctx;
	api_config_t cfg;
	_Atomic uint64_t seq;
	oh_metrics_t *metrics; /* requests by route and status, latency */
};

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

/* Writes RESP in full: status line, headers and body in as few writes as
 * possible (one for small bodies). */
static void write_response(struct mg_connection *conn, const char *rid, api_resp_t *resp)
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
	char head[2048];
	int hn = snprintf(head, sizeof head,
	                  "HTTP/1.1 %d %s\r\n"
	                  "Content-Type: %s\r\n"
	                  "Content-Length: %zu\r\n"
	                  "Cache-Control: no-store\r\n"
	                  "X-Request-Id: %s\r\n"
	                  "%s\r\n",
	                  resp->status, reason(resp->status), ctype, len, rid, resp->headers);
	if (hn < 0 || (size_t)hn >= sizeof head)
		hn = 0;
	if (len > 0 && (size_t)hn + len <= 4096) {
		char buf[4096];
		memcpy(buf, head, (size_t)hn);
		memcpy(buf + hn, body, len);
		mg_write(conn, buf, (size_t)hn + len);
	} else {
		mg_write(conn, head, (size_t)hn);
		if (len > 0)
			mg_write(conn, body, len);
	}
	free(dumped);
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

/* Reads the body up to MAX+1 bytes.  Returns the malloc'd body (NUL
 * terminated) and its length in *LEN, or NULL on OOM; *TOO_BIG when it
 * exceeded MAX. */
static char *read_body(struct mg_connection *conn, size_t max, size_t *len, bool *too_big)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	*too_big = false;
	if (!buf)
		return NULL;
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > max + 1) {
				*too_big = true;
				break;
			}
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
		}
		int r = mg_read(conn, buf + n, cap - n - 1);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n > max) {
			*too_big = true;
			break;
		}
	}
	buf[n] = '\0';
	*len = n;
	return buf;
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

/* Validates path and query parameters of route META.  Returns the typed
 * query object (owned) or NULL with RESP filled. */
static json_t *check_params(struct mg_connection *conn, const json_t *meta,
                            const struct mg_request_info *ri, api_req_t *req, api_resp_t *resp)
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
			value = json_string(api_path_param(req, name));
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
			char raw[1024];
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
			if (got >= 0) {
				value = coerce(schema, raw);
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
			continue;
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
			req->idempotency_key = mg_get_header(conn, name);
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
		api_header(resp, "Connection", "close");
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
	bool too_big = false;
	char *raw = read_body(conn, cfg->max_body, &len, &too_big);
	if (!raw) {
		api_error(resp, OH_E_INTERNAL, NULL, NULL);
		return false;
	}
	if (too_big) {
		free(raw);
		api_header(resp, "Connection", "close");
		api_error(resp, OH_E_PAYLOAD_TOO_LARGE, NULL, NULL);
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
	const char *id = api_path_param(req, "id");
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

static int dispatch(struct mg_connection *conn, void *cbdata)
{
	api_server_t *srv = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	int64_t t0 = now_us();
	char rid[48];
	snprintf(rid, sizeof rid, "%s-%llx", srv->cfg.instance_tag,
	         (unsigned long long)atomic_fetch_add(&srv->seq, 1));
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
	json_t *body = NULL, *query = NULL;
	char *raw_body = NULL;
	size_t raw_len = 0;
	bool audit_failure = false;
	size_t route = 0, counted_route = OH_METRICS_UNMATCHED;
	char pathbuf[API_MAX_URI + 1];
	size_t urilen = strlen(ri->request_uri ? ri->request_uri : "") +
	                (ri->query_string ? strlen(ri->query_string) + 1 : 0);

	if (urilen > API_MAX_URI || strlen(path) > API_MAX_URI) {
		api_error(&resp, OH_E_URI_TOO_LONG, NULL, NULL);
		goto respond;
	}
	/* A declared body over the limit is refused before anything else, so
	 * no route, method or resource is looked at for it. */
	if (ri->content_length > 0 && (unsigned long long)ri->content_length > srv->cfg.max_body) {
		api_header(&resp, "Connection", "close");
		api_error(&resp, OH_E_PAYLOAD_TOO_LARGE, NULL, NULL);
		goto respond;
	}
	memcpy(pathbuf, path, strlen(path) + 1);
	char allow[128];
	switch (api_route_match(ri->request_method, pathbuf, &route, &req, allow, sizeof allow)) {
	case API_MATCH_NO_PATH:
		api_error(&resp, OH_E_NOT_FOUND, "There is no resource at this path.", NULL);
		goto respond;
	case API_MATCH_NO_METHOD:
		api_header(&resp, "Allow", allow);
		api_error(&resp, OH_E_METHOD_NOT_ALLOWED, NULL, NULL);
		goto respond;
	case API_MATCH_OK: break;
	}
	counted_route = route;
	const json_t *meta = api_route_meta(route);
	req.operation_id = api_routes[route].operation_id;
	audit_failure = strcmp(ri->request_method, "GET") != 0;
	/* A Slack slash command is signed instead of carrying a key; its
	 * handler checks the signature. */
	bool slack =
	    json_is_true(json_object_get(meta, "slackSigned")) && is_form_type(req.content_type);
	if (api_routes[route].role != OH_ROLE_NONE && !slack &&
	    !api_authenticate(&req, &resp, api_routes[route].role, ri->query_string)) {
		audit_failure = false; /* recorded as a refusal */
		goto respond;
	}
	if (!check_body(conn, ri, &srv->cfg, meta, &body, &raw_body, &raw_len, &resp))
		goto respond;
	req.raw_body = raw_body;
	req.raw_body_len = raw_len;
	query = check_params(conn, meta, ri, &req, &resp);
	if (!query)
		goto respond;
	req.query = query;
	req.body = body;
	api_routes[route].handler(&req, &resp);
	if (resp.status == 0)
		api_error(&resp, OH_E_INTERNAL, NULL, NULL);

respond:
	api_cors(&req, &resp);
	/* Counted before the answer leaves, so a client that has its answer
	 * finds it counted in its next scrape. */
	oh_metrics_observe(srv->metrics, counted_route, resp.status, now_us() - t0);
	if (resp.stream)
		api_stream_serve(&req, rid, &resp); /* until the client or the node goes */
	else
		write_response(conn, rid, &resp);
	if (audit_failure && resp.status >= 400 && resp.status < 500 && resp.status != 401 &&
	    resp.status != 403)
		record_failure(&req, &resp);
	bool is_ping = strcmp(path, PING_PATH) == 0;
	oh_log_level_t lvl = is_ping ? OH_LOG_DEBUG : OH_LOG_INFO;
	if (resp.status >= 500)
		lvl = OH_LOG_WARN;
	if (oh_log_enabled(lvl)) {
		double ms = (double)(now_us() - t0) / 1000.0;
		oh_log(lvl, "request", "rid=%s method=%s path=%s status=%d dur_ms=%.3f remote=%s",
		       rid, oh_q(ri->request_method), oh_q(path), resp.status, ms, ri->remote_addr);
	}
	int status = resp.status;
	json_decref(resp.json);
	free(resp.raw_owned);
	json_decref(body);
	json_decref(query);
	free(raw_body);
	return status;
}

/* Errors civetweb raises itself (malformed request line, oversized headers)
 * get the same body shape as ours. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
	(void)msg;
	oh_ec_t ec = OH_E_BAD_REQUEST;
	if (status == 404)
		ec = OH_E_NOT_FOUND;
	else if (status == 405)
		ec = OH_E_METHOD_NOT_ALLOWED;
	else if (status == 413)
		ec = OH_E_PAYLOAD_TOO_LARGE;
	else if (status == 414 || status == 431)
		ec = OH_E_URI_TOO_LONG;
	else if (status >= 500)
		ec = OH_E_INTERNAL;
	api_resp_t resp = {0};
	api_error(&resp, ec, NULL, NULL);
	resp.status = status;
	api_header(&resp, "Connection", "close");
	const struct mg_context *ctx = mg_get_context(conn);
	api_server_t *srv = ctx ? mg_get_user_data(ctx) : NULL;
	if (srv)
		oh_metrics_count(srv->metrics, OH_METRICS_UNMATCHED, status);
	write_response(conn, "-", &resp);
	json_decref(resp.json);
	oh_log(OH_LOG_INFO, "request rejected by the HTTP layer", "status=%d", status);
	return 0;
}

static int allow_all(struct mg_connection *conn, void *cbdata)
{
	(void)conn;
	(void)cbdata;
	return 1;
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

api_server_t *api_server_start(const api_config_t *cfg, char *err, size_t errlen)
{
	api_server_t *srv = calloc(1, sizeof *srv);
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cfg = *cfg;
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
	char ports[600], threads[16];
	/* civetweb answers the "r" port with a redirect to the first "s" one. */
	if (tls && cfg->redirect_listen && *cfg->redirect_listen)
		snprintf(ports, sizeof ports, "%ss,%sr", cfg->listen, cfg->redirect_listen);
	else
		snprintf(ports, sizeof ports, "%s%s", cfg->listen, tls ? "s" : "");
	snprintf(threads, sizeof threads, "%d", cfg->threads > 0 ? cfg->threads : 64);
	/* civetweb would answer every CORS preflight itself, with "*": the
	 * empty access_control_* options leave that to api/cors.c. */
	const char *options[] = {"listening_ports",
	                         ports,
	                         "num_threads",
	                         threads,
	                         "enable_keep_alive",
	                         "yes",
	                         "keep_alive_timeout_ms",
	                         "30000",
	                         "request_timeout_ms",
	                         "30000",
	                         "tcp_nodelay",
	                         "1",
	                         "max_request_size",
	                         "16384",
	                         "enable_auth_domain_check",
	                         "no",
	                         "access_control_allow_origin",
	                         "",
	                         "access_control_allow_methods",
	                         "",
	                         "access_control_allow_headers",
	                         "",
	                         NULL};
	struct mg_callbacks cb = {0};
	cb.http_error = on_http_error;
	cb.log_message = on_log_message;
	if (tls)
		cb.init_ssl = on_init_ssl;
	struct mg_init_data init = {
	    .callbacks = &cb, .user_data = srv, .configuration_options = options};
	struct mg_error_data ed = {.text = err, .text_buffer_size = errlen};
	mg_init_library(tls ? MG_FEATURES_TLS : 0);
	srv->ctx = mg_start2(&init, &ed);
	if (!srv->ctx) {
		api_router_free();
		api_streams_free(srv->cfg.streams);
		oh_metrics_free(srv->metrics);
		free(srv);
		return NULL;
	}
	mg_set_request_handler(srv->ctx, "/", dispatch, srv);
	/* Authentication is octoha's own; without this civetweb would look for
	 * an .htpasswd file on every request. */
	mg_set_auth_handler(srv->ctx, "/", allow_all, NULL);
	return srv;
}

void api_server_stop(api_server_t *srv)
{
	if (!srv)
		return;
	api_streams_close(srv->cfg.streams); /* streams end now: the stop never waits for one */
	mg_stop(srv->ctx);
	api_streams_free(srv->cfg.streams);
	api_router_free();
	oh_metrics_free(srv->metrics);
	free(srv);
	mg_exit_library();
}
