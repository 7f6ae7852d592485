/* ManagedUndrain: takes a node of a managed Octopus cluster out of
 * maintenance mode (GET, then PUT of the whole resource with
 * IsInMaintenanceMode off) and ends once the node's own ping answers 200.
 * A node whose ping stays unanswered for UnreachableSeconds fails it. */
#include <stdio.h>
#include <string.h>

#include "../node_state.h"
#include "../oh_json.h"
#include "managed_common.h"

#define POLL_MS             300
#define DEFAULT_UNREACHABLE 300

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	oh_mc_session_t s;
	if (!oh_mc_session_open(r, "Node", &s, out)) {
		oh_mc_session_close(&s);
		return;
	}
	json_int_t unreachable_s =
	    json_integer_value(json_object_get(r->args, "UnreachableSeconds"));
	if (unreachable_s <= 0)
		unreachable_s = DEFAULT_UNREACHABLE;
	oh_octo_node_t node;
	if (!oh_mc_find_remote(r, &s, s.node, &node, NULL, out))
		goto done;
	oh_task_log(r, "Undraining %s (%s) of %s", s.node->name, node.id, s.m->name);
	if (node.maintenance &&
	    !oh_mc_put_field(&s, node.id, "IsInMaintenanceMode", json_false(), out))
		goto done;
	int64_t t0 = oh_mono_ms();
	long last = -1;
	for (;;) {
		char why[120];
		long ping = oh_octo_ping(&s.o, s.node->url, 2000, why, sizeof why);
		if (ping != last) {
			oh_task_log(r, "%s: its ping answers %s%ld%s%s", s.node->name,
			            ping ? "" : "nothing ", ping, ping ? "" : ": ", why);
			last = ping;
		}
		if (ping == 200) {
			out->end = OH_END_SUCCESS;
			out->result = oh_json_check(json_object());
			oh_json_set_new(out->result, "ClusterId", json_string(s.m->id));
			oh_json_set_new(out->result, "Node", json_string(s.node->name));
			oh_json_set_new(out->result, "OctopusNodeId", json_string(node.id));
			oh_json_set_new(out->result, "IsInMaintenanceMode", json_false());
			goto done;
		}
		if (oh_mono_ms() - t0 >= unreachable_s * 1000) {
			out->end = OH_END_FAILED;
			snprintf(out->error, sizeof out->error,
			         "%s is out of maintenance mode but its ping has not answered 200 "
			         "within "
			         "%lld s (last: %ld).",
			         s.node->name, (long long)unreachable_s, ping);
			goto done;
		}
		if (!oh_task_sleep(r, POLL_MS)) {
			out->end = OH_END_RETRY;
			snprintf(out->error, sizeof out->error, "The undrain task was stopped.");
			goto done;
		}
	}
done:
	oh_mc_session_close(&s);
}

const oh_task_kind_t oh_task_kind_managed_undrain = {"ManagedUndrain", true, run, false};
