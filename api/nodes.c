/* /api/octopusservernodes: the load-balancer ping (from memory) and the
 * node registry (from the database). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/drain.h"
#include "../lib/nodes.h"
#include "../lib/oh_json.h"
#include "api_handlers_gen.h"

#define NODES_BASE "/api/octopusservernodes"

void api_op_getNodePing(const api_req_t *req, api_resp_t *resp)
{
	oh_node_snapshot_t s;
	oh_node_state_read(req->cfg->state, &s);
	bool stale = oh_mono_ms() - s.last_ok_mono > req->cfg->offline_timeout_ms;
	bool offline = s.shutting_down || !s.registered || !s.db_ok || stale;
	resp->status = offline ? 503 : s.maintenance ? req->cfg->draining_status : 200;
	char seen[40];
	oh_format_time(s.last_seen, seen, sizeof seen);
	/* Formatted directly: the ping path does no allocation beyond this. */
	char *body = resp->raw_owned = malloc(512);
	if (!body) {
		api_error(resp, OH_E_INTERNAL, NULL, NULL);
		return;
	}
	int n = snprintf(body, 512,
	                 "{\"Id\":\"%s\",\"Name\":\"%s\",\"IsInMaintenanceMode\":%s,"
	                 "\"IsOffline\":%s,\"LastSeen\":\"%s\",\"MaxConcurrentTasks\":%d,"
	                 "\"Version\":\"%s\"}",
	                 s.id, s.name, s.maintenance ? "true" : "false", offline ? "true" : "false",
	                 seen, s.max_tasks, s.version);
	resp->raw_len = n > 0 && n < 512 ? (size_t)n : 0;
	resp->content_type = "application/json; charset=utf-8";
	if (s.shutting_down)
		api_header(resp, "Connection", "close");
}

static json_t *self_link(const char *id)
{
	char self[200];
	snprintf(self, sizeof self, NODES_BASE "/%s", id);
	json_t *links = oh_json_check(json_object());
	oh_json_set_new(links, "Self", json_string(self));
	return links;
}

/* Returns the Octopus-shaped node resource (new reference). */
static json_t *node_json(const oh_node_t *n)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(n->id));
	oh_json_set_new(o, "Name", json_string(n->name));
	oh_json_set_new(o, "PublicUrl", json_string(n->public_url));
	oh_json_set_new(o, "CommunicationsAddress", json_string(n->comms_address));
	oh_json_set_new(o, "CommunicationsPort", json_integer(n->comms_port));
	oh_json_set_new(o, "MaxConcurrentTasks", json_integer(n->max_tasks));
	oh_json_set_new(o, "Platform", json_string(n->platform));
	oh_json_set_new(o, "Version", json_string(n->version));
	oh_json_set_new(o, "IsInMaintenanceMode", json_boolean(n->maintenance));
	oh_json_set_new(o, "IsOffline", json_boolean(n->offline));
	oh_json_set_new(o, "LastSeen", oh_json_time(n->last_seen));
	oh_json_set_new(o, "StartedAt", oh_json_time(n->started_at));
	oh_json_set_new(o, "DrainReason",
	                n->drain_reason[0] ? json_string(n->drain_reason) : json_null());
	oh_json_set_new(o, "DrainRequestedBy",
	                n->drain_requested_by[0] ? json_string(n->drain_requested_by)
	                                         : json_null());
	oh_json_set_new(o, "DrainRequestedAt",
	                n->drain_requested_at > 0 ? oh_json_time(n->drain_requested_at)
	                                          : json_null());
	oh_json_set_new(o, "Links", self_link(n->id));
	return o;
}

void api_op_listNodes(const api_req_t *req, api_resp_t *resp)
{
	long long skip = api_query_int(req, "skip", 0);
	long long take = api_query_int(req, "take", 30);
	oh_node_list_t l;
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &l);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = (size_t)skip; i < l.n && (long long)json_array_size(items) < take; i++)
		oh_json_check_rc(json_array_append_new(items, node_json(&l.v[i])));
	json_t *o = api_page("OctopusServerNode", NODES_BASE, items, (long long)l.n, skip, take);
	oh_node_list_free(&l);
	api_json(resp, 200, o);
}

void api_op_listAllNodes(const api_req_t *req, api_resp_t *resp)
{
	oh_node_list_t l;
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &l);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++)
		oh_json_check_rc(json_array_append_new(items, node_json(&l.v[i])));
	oh_node_list_free(&l);
	api_json(resp, 200, items);
}

typedef struct {
	json_t *counts; /* node id -> running task count */
} running_ctx_t;

static void count_running(void *ctx, const char *node, int64_t n)
{
	running_ctx_t *x = ctx;
	oh_json_set_new(x->counts, node, json_integer(n));
}

void api_op_getNodesSummary(const api_req_t *req, api_resp_t *resp)
{
	oh_node_list_t l;
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &l);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	running_ctx_t rc = {oh_json_check(json_object())};
	s = oh_tasks_running_by_node(req->cfg->pool, count_running, &rc);
	if (s != DB_OK) {
		json_decref(rc.counts);
		oh_node_list_free(&l);
		api_db_error(resp, s);
		return;
	}
	json_t *nodes = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++) {
		const oh_node_t *n = &l.v[i];
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Id", json_string(n->id));
		oh_json_set_new(o, "Name", json_string(n->name));
		oh_json_set_new(o, "MaxConcurrentTasks", json_integer(n->max_tasks));
		oh_json_set_new(o, "IsInMaintenanceMode", json_boolean(n->maintenance));
		oh_json_set_new(o, "LastSeen", oh_json_time(n->last_seen));
		oh_json_set_new(o, "IsOffline", json_boolean(n->offline));
		oh_json_set_new(
		    o, "RunningTaskCount",
		    json_integer(json_integer_value(json_object_get(rc.counts, n->id))));
		oh_json_set_new(o, "Version", json_string(n->version));
		oh_json_check_rc(json_array_append_new(nodes, o));
	}
	oh_node_list_free(&l);
	json_decref(rc.counts);
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Nodes", nodes);
	api_json(resp, 200, o);
}

void api_op_getNode(const api_req_t *req, api_resp_t *resp)
{
	oh_node_t n;
	db_status_t s = oh_nodes_get(req->cfg->pool, api_path_param(req, "id"),
	                             req->cfg->offline_timeout_ms, &n);
	if (s == DB_NO_ROWS) {
		api_error(resp, OH_E_NOT_FOUND, "There is no node with this Id.", "id");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	api_json(resp, 200, node_json(&n));
}

void api_op_deleteNode(const api_req_t *req, api_resp_t *resp)
{
	oh_del_outcome_t outcome = OH_DEL_NOT_FOUND;
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "NodeDeleted", "An offline node was deleted.", &details);
	db_status_t s = oh_nodes_delete_offline(req->cfg->pool, api_path_param(req, "id"),
	                                        req->cfg->offline_timeout_ms, &outcome, &ev);
	json_decref(details);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	switch (outcome) {
	case OH_DEL_DELETED: resp->status = 204; break;
	case OH_DEL_ONLINE: api_error(resp, OH_E_NODE_IS_ONLINE, NULL, "id"); break;
	case OH_DEL_NOT_FOUND:
		api_error(resp, OH_E_NOT_FOUND, "There is no node with this Id.", "id");
		break;
	}
}

db_status_t api_node_change(const api_req_t *req, const char *node_id, const oh_drain_request_t *r,
                            const json_t *details, oh_drain_outcome_t *outcome, oh_task_t *task)
{
	char who[200];
	api_requester(req, who, sizeof who);
	oh_event_spec_t ev = {.actor = &req->actor,
	                      .operation = req->operation_id,
	                      .result = "Success",
	                      .details = details};
	oh_drain_request_t full = *r;
	full.node_id = node_id;
	full.requested_by = who;
	full.idem = req->idem;
	full.offline_timeout_ms = req->cfg->offline_timeout_ms;
	full.audit = &ev;
	db_status_t s = oh_drain_request(req->cfg->pool, &full, outcome, task);
	/* This node's own ping follows at once; other nodes read their row
	 * within a heartbeat. */
	if (s == DB_OK && (*outcome == OH_DRAIN_QUEUED || *outcome == OH_DRAIN_ALREADY) &&
	    r->drain >= 0 && req->cfg->self_node_id && strcmp(req->cfg->self_node_id, node_id) == 0)
		oh_node_state_set_maintenance(req->cfg->state, r->drain == 1);
	return s;
}

/* Carries out a drain, undrain or cap change and answers for it. */
static void node_change(const api_req_t *req, api_resp_t *resp, const oh_drain_request_t *r)
{
	const char *node_id = api_path_param(req, "id");
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, NULL, NULL, &details);
	oh_drain_outcome_t outcome;
	oh_task_t task;
	db_status_t s = api_node_change(req, node_id, r, details, &outcome, &task);
	json_decref(details);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	switch (outcome) {
	case OH_DRAIN_NOT_FOUND:
		api_error(resp, OH_E_NOT_FOUND, "There is no node with this Id.", "id");
		break;
	case OH_DRAIN_LAST_NODE: api_error(resp, OH_E_LAST_NODE, NULL, "id"); break;
	case OH_DRAIN_UNCHANGED: {
		oh_node_t n;
		s = oh_nodes_get(req->cfg->pool, node_id, req->cfg->offline_timeout_ms, &n);
		if (s == DB_OK)
			api_json(resp, 200, node_json(&n));
		else
			api_db_error(resp, s);
		break;
	}
	case OH_DRAIN_QUEUED:
	case OH_DRAIN_ALREADY: api_task_accepted(req, resp, &task); break;
	}
	oh_task_clear(&task);
}

void api_op_updateNode(const api_req_t *req, api_resp_t *resp)
{
	const json_t *m = json_object_get(req->body, "IsInMaintenanceMode");
	const json_t *cap = json_object_get(req->body, "MaxConcurrentTasks");
	oh_drain_request_t r = {.drain = json_is_boolean(m) ? json_is_true(m) : -1,
	                        .task_cap =
	                            json_is_integer(cap) ? (int)json_integer_value(cap) : -1,
	                        .reason = "Maintenance mode set through PUT",
	                        .force = json_is_true(json_object_get(req->body, "Force"))};
	node_change(req, resp, &r);
}

void api_op_drainNode(const api_req_t *req, api_resp_t *resp)
{
	const json_t *b = req->body;
	const char *action = json_string_value(json_object_get(b, "DeadlineAction"));
	oh_drain_request_t r = {
	    .drain = 1,
	    .task_cap = -1,
	    .reason = json_string_value(json_object_get(b, "Reason")),
	    .deadline_seconds = (int)json_integer_value(json_object_get(b, "DeadlineSeconds")),
	    .cancel_at_deadline = action && strcmp(action, "Cancel") == 0,
	    .force = json_is_true(json_object_get(b, "Force")),
	};
	node_change(req, resp, &r);
}

void api_op_undrainNode(const api_req_t *req, api_resp_t *resp)
{
	oh_drain_request_t r = {.drain = 0, .task_cap = -1};
	node_change(req, resp, &r);
}
