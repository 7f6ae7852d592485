/* /api/apikeys: create (the key shown once), list (never the key), revoke. */
#include <stdio.h>
#include <string.h>

#include "../lib/apikeys.h"
#include "../lib/oh_json.h"
#include "api_handlers_gen.h"
#include "auth.h"

static json_t *key_json(const oh_apikey_t *k)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(k->id));
	oh_json_set_new(o, "Name", json_string(k->name));
	oh_json_set_new(o, "Role", json_string(oh_role_name(k->role)));
	oh_json_set_new(o, "Prefix", json_string(k->prefix));
	oh_json_set_new(o, "CreatedBy", json_string(k->created_by));
	oh_json_set_new(o, "CreatedAt", oh_json_time(k->created_at));
	oh_json_set_new(o, "LastUsedAt",
	                k->last_used_at ? oh_json_time(k->last_used_at) : json_null());
	return o;
}

void api_op_listApiKeys(const api_req_t *req, api_resp_t *resp)
{
	oh_apikey_list_t l;
	db_status_t s = oh_apikeys_list(req->cfg->pool, &l);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++)
		oh_json_check_rc(json_array_append_new(items, key_json(&l.v[i])));
	oh_apikey_list_free(&l);
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Items", items);
	api_json(resp, 200, o);
}

void api_op_createApiKey(const api_req_t *req, api_resp_t *resp)
{
	const char *name = json_string_value(json_object_get(req->body, "Name"));
	oh_role_t role;
	if (!oh_role_parse(json_string_value(json_object_get(req->body, "Role")), &role)) {
		api_error(resp, OH_E_VALIDATION, "Role must be Reader, Operator or Admin.", "Role");
		return;
	}
	char who[200];
	api_requester(req, who, sizeof who);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "ApiKeyCreated", "An API key was created.", &details);
	oh_apikey_t k;
	char key[OH_APIKEY_LEN + 1];
	db_status_t s = oh_apikeys_create(req->cfg->pool, name, role, who, &ev, &k, key);
	json_decref(details);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *o = key_json(&k);
	oh_json_set_new(o, "ApiKey", json_string(key));
	memset(key, 0, sizeof key);
	char loc[120];
	snprintf(loc, sizeof loc, "/api/apikeys/%s", k.id);
	api_header(resp, "Location", loc);
	api_json(resp, 201, o);
}

void api_op_revokeApiKey(const api_req_t *req, api_resp_t *resp)
{
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "ApiKeyRevoked", "An API key was revoked.", &details);
	db_status_t s = oh_apikeys_revoke(req->cfg->pool, api_path_param(req, "id"), &ev);
	json_decref(details);
	if (s == DB_NO_ROWS) {
		api_error(resp, OH_E_NOT_FOUND, "There is no API key with this Id.", "id");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	api_auth_cache_clear(); /* this node at once; others within their cache time */
	resp->status = 204;
}
