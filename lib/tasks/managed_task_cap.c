/* ManagedSetTaskCap: sets MaxConcurrentTasks of a node of a managed Octopus
 * cluster (GET, then PUT of the whole resource) and confirms it by reading
 * the node again.  A cap of 0 on the last node that takes work is refused
 * unless Force. */
#include <stdio.h>
#include <string.h>

#include "../oh_json.h"
#include "managed_common.h"

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	oh_mc_session_t s;
	if (!oh_mc_session_open(r, "Node", &s, out)) {
		oh_mc_session_close(&s);
		return;
	}
	const json_t *capj = json_object_get(r->args, "MaxConcurrentTasks");
	bool force = json_is_true(json_object_get(r->args, "Force"));
	oh_octo_node_t node;
	oh_octo_nodes_t all;
	if (!json_is_integer(capj)) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "The task names no MaxConcurrentTasks.");
		goto done;
	}
	json_int_t cap = json_integer_value(capj);
	if (!oh_mc_find_remote(r, &s, s.node, &node, &all, out))
		goto done;
	bool last = oh_mc_last_taking_work(&all, node.id);
	oh_octo_nodes_free(&all);
	if (cap == 0 && !force && !node.maintenance && node.max_tasks > 0 && last) {
		out->end = OH_END_FAILED;
		snprintf(
		    out->error, sizeof out->error,
		    "LastNodeTakingWork: %s is the last node of %s that takes work; a cap of 0 "
		    "would stop the cluster. Send Force to do it anyway.",
		    s.node->name, s.m->name);
		goto done;
	}
	oh_task_log(r, "Setting the task cap of %s (%s) from %d to %lld", s.node->name, node.id,
	            node.max_tasks, (long long)cap);
	if (!oh_mc_put_field(&s, node.id, "MaxConcurrentTasks", json_integer(cap), out))
		goto done;
	json_t *res = NULL;
	long http = 0;
	oh_octo_status_t st = oh_octo_get_node(&s.o, node.id, &res, &http);
	if (st != OH_OCTO_OK) {
		oh_mc_fail(out, st, http, "Reading the node back");
		goto done;
	}
	json_int_t now = json_integer_value(json_object_get(res, "MaxConcurrentTasks"));
	json_decref(res);
	if (now != cap) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error,
		         "The cluster took the change but reports MaxConcurrentTasks %lld.",
		         (long long)now);
		goto done;
	}
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "ClusterId", json_string(s.m->id));
	oh_json_set_new(out->result, "Node", json_string(s.node->name));
	oh_json_set_new(out->result, "OctopusNodeId", json_string(node.id));
	oh_json_set_new(out->result, "MaxConcurrentTasks", json_integer(cap));
done:
	oh_mc_session_close(&s);
}

const oh_task_kind_t oh_task_kind_managed_task_cap = {"ManagedSetTaskCap", true, run, false};
