/* /api/subscriptions: webhooks that receive events, and their deliveries. */
#include <stdio.h>
#include <string.h>

#include "../lib/oh_json.h"
#include "../lib/subscriptions.h"
#include "api_handlers_gen.h"

static json_t *sub_json(const oh_subscription_t *s)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(s->id));
	oh_json_set_new(o, "Name", json_string(s->name));
	oh_json_set_new(o, "Url", json_string(s->url));
	json_t *types = oh_json_check(json_array());
	const char *p = s->event_types;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		oh_json_check_rc(json_array_append_new(types, oh_json_check(json_stringn(p, n))));
		if (!end)
			break;
		p = end + 1;
	}
	oh_json_set_new(o, "EventTypes", types);
	oh_json_set_new(o, "CreatedBy", json_string(s->created_by));
	oh_json_set_new(o, "CreatedAt", oh_json_time(s->created_at));
	return o;
}

void api_op_createSubscription(const api_req_t *req, api_resp_t *resp)
{
	const json_t *b = req->body;
	char types[1001] = "";
	size_t i;
	const json_t *t;
	json_array_foreach(json_object_get(b, "EventTypes"), i, t)
	{
		/* The validator checked every item against the spec's oneOf; a
		 * shape it let through that is not a string is still refused
		 * here rather than trusted. */
		const char *v = json_string_value(t);
		if (!v || !*v) {
			char field[40];
			snprintf(field, sizeof field, "EventTypes[%zu]", i);
			api_error(resp, OH_E_VALIDATION, "An event type must be a category name.",
			          field);
			return;
		}
		if (strlen(types) + strlen(v) + 2 > sizeof types) {
			api_error(resp, OH_E_VALIDATION, "Too many event types.", "EventTypes");
			return;
		}
		if (types[0])
			strcat(types, ",");
		strcat(types, v);
	}
	char who[200];
	api_requester(req, who, sizeof who);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "SubscriptionCreated", "A webhook subscription was created.", &details);
	oh_subscription_t s;
	db_status_t st = oh_subscriptions_create(
	    req->cfg->pool, req->cfg->secrets_key, json_string_value(json_object_get(b, "Name")),
	    json_string_value(json_object_get(b, "Url")), types,
	    json_string_value(json_object_get(b, "Secret")), who, &ev, &s);
	json_decref(details);
	if (st != DB_OK) {
		api_db_error(resp, st);
		return;
	}
	char loc[120];
	snprintf(loc, sizeof loc, "/api/subscriptions/%s", s.id);
	api_header(resp, "Location", loc);
	api_json(resp, 201, sub_json(&s));
}

void api_op_listSubscriptions(const api_req_t *req, api_resp_t *resp)
{
	oh_subscription_list_t l;
	db_status_t s = oh_subscriptions_list(req->cfg->pool, &l);
	if (s != DB_OK) {
		oh_subscription_list_free(&l);
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++)
		oh_json_check_rc(json_array_append_new(items, sub_json(&l.v[i])));
	oh_subscription_list_free(&l);
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Items", items);
	api_json(resp, 200, o);
}

void api_op_getSubscription(const api_req_t *req, api_resp_t *resp)
{
	oh_subscription_t s;
	db_status_t st = oh_subscriptions_get(req->cfg->pool, api_path_param(req, "id"), &s);
	if (st == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no subscription with this Id.", "id");
	else if (st != DB_OK)
		api_db_error(resp, st);
	else
		api_json(resp, 200, sub_json(&s));
}

void api_op_deleteSubscription(const api_req_t *req, api_resp_t *resp)
{
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "SubscriptionDeleted", "A webhook subscription was deleted.", &details);
	db_status_t st = oh_subscriptions_delete(req->cfg->pool, api_path_param(req, "id"), &ev);
	json_decref(details);
	if (st == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no subscription with this Id.", "id");
	else if (st != DB_OK)
		api_db_error(resp, st);
	else
		resp->status = 204;
}

void api_op_listSubscriptionDeliveries(const api_req_t *req, api_resp_t *resp)
{
	const char *id = api_path_param(req, "id");
	oh_subscription_t s;
	db_status_t st = oh_subscriptions_get(req->cfg->pool, id, &s);
	if (st == DB_NO_ROWS) {
		api_error(resp, OH_E_NOT_FOUND, "There is no subscription with this Id.", "id");
		return;
	}
	oh_delivery_list_t l = {0};
	if (st == DB_OK)
		st =
		    oh_deliveries_list(req->cfg->pool, id, api_query_int(req, "take", 30),
		                       json_string_value(json_object_get(req->query, "after")), &l);
	if (st == DB_NO_ROWS) {
		oh_delivery_list_free(&l);
		api_paging_unknown_after(resp, "delivery");
		return;
	}
	if (st != DB_OK) {
		oh_delivery_list_free(&l);
		api_db_error(resp, st);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++) {
		const oh_delivery_t *d = &l.v[i];
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Id", json_string(d->id));
		oh_json_set_new(o, "EventId", json_string(d->event_id));
		oh_json_set_new(o, "TaskId", json_string(d->task_id));
		oh_json_set_new(o, "Attempt", json_integer(d->attempt));
		oh_json_set_new(o, "DeliveredAt", oh_json_time(d->delivered_at));
		oh_json_set_new(o, "StatusCode",
		                d->status_code ? json_integer(d->status_code) : json_null());
		oh_json_set_new(o, "Succeeded", json_boolean(d->succeeded));
		oh_json_set_new(o, "DurationMs", json_integer(d->duration_ms));
		oh_json_set_new(o, "Error", d->error[0] ? json_string(d->error) : json_null());
		oh_json_check_rc(json_array_append_new(items, o));
	}
	oh_delivery_list_free(&l);
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Items", items);
	api_json(resp, 200, o);
}
