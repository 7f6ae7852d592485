/* Response helpers shared by every handler. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/http_client.h"
#include "../lib/oh_json.h"
#include "http.h"

const char *api_path_param(const api_req_t *req, const char *name)
{
	for (size_t i = 0; i < req->n_path; i++)
		if (strcmp(req->path_names[i], name) == 0)
			return req->path_values[i];
	return "";
}

long long api_query_int(const api_req_t *req, const char *name, long long def)
{
	const json_t *v = req->query ? json_object_get(req->query, name) : NULL;
	return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

void api_json(api_resp_t *resp, int status, json_t *body)
{
	json_decref(resp->json);
	resp->status = status;
	resp->json = oh_json_check(body);
}

void api_error(api_resp_t *resp, oh_ec_t ec, const char *message, const char *field)
{
	api_json(resp, oh_error_def(ec)->status, oh_error_body(ec, message, field));
}

void api_db_error(api_resp_t *resp, db_status_t status)
{
	if (status == DB_CONN_LOST || status == DB_TRANSIENT || status == DB_BUSY) {
		api_header(resp, "Retry-After", status == DB_BUSY ? "1" : "2");
		api_error(resp, OH_E_DB_UNAVAILABLE, NULL, NULL);
	} else if (status == DB_UNKNOWN) {
		api_header(resp, "Retry-After", "2");
		api_error(resp, OH_E_OUTCOME_UNKNOWN, NULL, NULL);
	} else {
		api_error(resp, OH_E_INTERNAL, NULL, NULL);
	}
}

void api_header(api_resp_t *resp, const char *name, const char *value)
{
	size_t used = strlen(resp->headers);
	int n =
	    snprintf(resp->headers + used, sizeof resp->headers - used, "%s: %s\r\n", name, value);
	if (n < 0 || (size_t)n >= sizeof resp->headers - used)
		resp->headers[used] = '\0'; /* a header cut short would break the answer: drop it */
}

json_t *api_page(const char *item_type, const char *base, json_t *items, long long total,
                 long long skip, long long take)
{
	long long pages = take > 0 ? (total + take - 1) / take : 1;
	if (pages < 1)
		pages = 1;
	char self[200];
	snprintf(self, sizeof self, "%s?skip=%lld&take=%lld", base, skip, take);
	json_t *links = oh_json_check(json_object());
	oh_json_set_new(links, "Self", json_string(self));
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "ItemType", json_string(item_type));
	oh_json_set_new(o, "TotalResults", json_integer(total));
	oh_json_set_new(o, "ItemsPerPage", json_integer(take));
	oh_json_set_new(o, "NumberOfPages", json_integer(pages));
	oh_json_set_new(o, "LastPageNumber", json_integer(pages - 1));
	oh_json_set_new(o, "Items", items);
	oh_json_set_new(o, "Links", links);
	return o;
}

void api_requester(const api_req_t *req, char *buf, size_t size)
{
	if (req->actor.key_id[0])
		snprintf(buf, size, "%s (%s)", req->actor.key_name, req->actor.key_id);
	else if (req->actor.key_name[0])
		snprintf(buf, size, "%s", req->actor.key_name);
	else
		snprintf(buf, size, "remote %s", req->remote_addr ? req->remote_addr : "?");
}

/* True for member names that hold a URL ("Url", "ResponseUrl", …). */
static bool is_url_member(const char *k)
{
	size_t n = strlen(k);
	return n >= 3 && strcasecmp(k + n - 3, "Url") == 0;
}

/* Replaces every "Secret" member (at any depth) with a mask, and every URL
 * member with its origin: a webhook's or a chat reply's path and query are
 * often its credential, and Readers read the audit log. */
static void mask_secrets(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
		{
			if (strcasecmp(k, "Secret") == 0 || strcasecmp(k, "SigningSecret") == 0 ||
			    strcasecmp(k, "ApiKey") == 0) {
				oh_json_check_rc(
				    json_object_set_new(j, k, json_string("********")));
			} else if (is_url_member(k) && json_is_string(v)) {
				char origin[300], masked[320];
				oh_url_origin(json_string_value(v), origin, sizeof origin);
				snprintf(masked, sizeof masked, "%s/********",
				         origin[0] ? origin : "(not a URL)");
				oh_json_check_rc(json_object_set_new(j, k, json_string(masked)));
			} else {
				mask_secrets(v);
			}
		}
	} else if (json_is_array(j)) {
		for (i = 0; i < json_array_size(j); i++)
			mask_secrets(json_array_get(j, i));
	}
}

void api_audit(const api_req_t *req, oh_event_spec_t *ev, const char *category, const char *message,
               json_t **details_out)
{
	json_t *d = req->body ? json_deep_copy(req->body) : NULL;
	if (d)
		mask_secrets(d);
	const char *id = api_path_param(req, "id");
	*ev = (oh_event_spec_t){.actor = &req->actor,
	                        .category = category,
	                        .operation = req->operation_id,
	                        .resource_id = *id ? id : NULL,
	                        .result = "Success",
	                        .status = 0,
	                        .message = message,
	                        .details = d};
	*details_out = d;
}
