/* /api/octopusservernodes: the load-balancer ping (from memory) and the
 * node registry (from the database). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	long long pages = ((long long)l.n + take - 1) / take;
	if (pages < 1)
		pages = 1;
	char self[120];
	snprintf(self, sizeof self, NODES_BASE "?skip=%lld&take=%lld", skip, take);
	json_t *links = oh_json_check(json_object());
	oh_json_set_new(links, "Self", json_string(self));
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "ItemType", json_string("OctopusServerNode"));
	oh_json_set_new(o, "TotalResults", json_integer((json_int_t)l.n));
	oh_json_set_new(o, "ItemsPerPage", json_integer(take));
	oh_json_set_new(o, "NumberOfPages", json_integer(pages));
	oh_json_set_new(o, "LastPageNumber", json_integer(pages - 1));
	oh_json_set_new(o, "Items", items);
	oh_json_set_new(o, "Links", links);
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

void api_op_getNodesSummary(const api_req_t *req, api_resp_t *resp)
{
	oh_node_list_t l;
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &l);
	if (s != DB_OK) {
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
		/* No task queue exists yet, so no node runs a task. */
		oh_json_set_new(o, "RunningTaskCount", json_integer(0));
		oh_json_set_new(o, "Version", json_string(n->version));
		oh_json_check_rc(json_array_append_new(nodes, o));
	}
	oh_node_list_free(&l);
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
	db_status_t s = oh_nodes_delete_offline(req->cfg->pool, api_path_param(req, "id"),
	                                        req->cfg->offline_timeout_ms, &outcome);
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
