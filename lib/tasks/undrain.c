/* Undrain: the node left maintenance mode when the request was accepted;
 * this task records it and confirms the node takes work again. */
#include <stdio.h>

#include "../events.h"
#include "../nodes.h"
#include "../oh_json.h"
#include "../task_run.h"

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	const char *node_id = json_string_value(json_object_get(r->args, "NodeId"));
	oh_node_t node;
	db_status_t s =
	    node_id ? oh_nodes_get(r->pool, node_id, r->offline_timeout_ms, &node) : DB_NO_ROWS;
	if (s == DB_NO_ROWS) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "The node to undrain does not exist.");
		return;
	}
	if (s != DB_OK) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The database was unavailable.");
		return;
	}
	oh_task_log(r, "%s is %s; maintenance mode is %s", node.name,
	            node.offline ? "offline" : "online", node.maintenance ? "on" : "off");
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "NodeId", json_string(node_id));
	oh_json_set_new(out->result, "IsInMaintenanceMode", json_boolean(node.maintenance));
	char msg[200];
	snprintf(msg, sizeof msg, "%s takes work again.", node_id);
	oh_event_spec_t ev = {.category = "NodeUndrained",
	                      .operation = "Undrain",
	                      .resource_id = node_id,
	                      .result = "Success",
	                      .message = msg};
	oh_event_record(r->pool, &ev);
}

const oh_task_kind_t oh_task_kind_undrain = {"Undrain", true, run, false};
