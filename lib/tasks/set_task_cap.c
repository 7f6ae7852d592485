/* SetTaskCap: the cap changed when the request was accepted (the node
 * applies it without a restart at its next read, well under a second); this
 * task records the change: the cap that request set, which is what its
 * result reports even when a later change has moved it since. */
#include <stdio.h>

#include "../nodes.h"
#include "../oh_json.h"
#include "../task_run.h"

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	const char *node_id = json_string_value(json_object_get(r->args, "NodeId"));
	const json_t *cap = json_object_get(r->args, "MaxConcurrentTasks");
	oh_node_t node;
	db_status_t s =
	    node_id ? oh_nodes_get(r->pool, node_id, r->offline_timeout_ms, &node) : DB_NO_ROWS;
	if (s != DB_OK) {
		out->end = s == DB_NO_ROWS ? OH_END_FAILED : OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "Cannot read the node.");
		return;
	}
	json_int_t set = json_is_integer(cap) ? json_integer_value(cap) : node.max_tasks;
	oh_task_log(r, "The task cap of %s was set to %lld", node.name, (long long)set);
	if (set != node.max_tasks)
		oh_task_log(r, "It has been changed to %d since", node.max_tasks);
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "NodeId", json_string(node_id));
	oh_json_set_new(out->result, "MaxConcurrentTasks", json_integer(set));
}

const oh_task_kind_t oh_task_kind_set_task_cap = {"SetTaskCap", true, run, false};
