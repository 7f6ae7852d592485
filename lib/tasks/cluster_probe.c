/* ClusterProbe: the executing node calls every registered node's ping over
 * HTTP(S) and records the status code and latency of each, finding nodes
 * alive in the database but unreachable over the network. */
#include <stdio.h>

#include "../http_client.h"
#include "../nodes.h"
#include "../oh_json.h"
#include "../task_run.h"

#define PROBE_TIMEOUT_MS 3000

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	oh_node_list_t nodes;
	db_status_t s = oh_nodes_list(r->pool, r->offline_timeout_ms, &nodes);
	if (s != DB_OK) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "Cannot list the nodes (%s).",
		         db_status_name(s));
		return;
	}
	json_t *items = oh_json_check(json_array());
	int reachable = 0, alive_unreachable = 0;
	for (size_t i = 0; i < nodes.n && !oh_task_should_stop(r); i++) {
		const oh_node_t *n = &nodes.v[i];
		char url[512];
		snprintf(url, sizeof url, "%s/api/octopusservernodes/ping", n->public_url);
		oh_http_result_t res;
		/* The cluster's own nodes, at the addresses they registered: not
		 * under the outbound policy (they are inner addresses by nature). */
		bool answered = oh_http_get(url, PROBE_TIMEOUT_MS, NULL, &res);
		reachable += answered;
		if (!answered && !n->offline)
			alive_unreachable++;
		oh_task_log(r, "%s %s: %s%ld in %ld ms%s%s", n->name, url,
		            answered ? "" : "no answer ", res.status, res.duration_ms,
		            res.error[0] ? ": " : "", res.error);
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "NodeId", json_string(n->id));
		oh_json_set_new(o, "NodeName", json_string(n->name));
		oh_json_set_new(o, "Url", json_string(url));
		oh_json_set_new(o, "IsOffline", json_boolean(n->offline));
		oh_json_set_new(o, "Reachable", json_boolean(answered));
		oh_json_set_new(o, "StatusCode", answered ? json_integer(res.status) : json_null());
		oh_json_set_new(o, "LatencyMs", json_integer(res.duration_ms));
		oh_json_set_new(o, "Error", res.error[0] ? json_string(res.error) : json_null());
		oh_json_check_rc(json_array_append_new(items, o));
	}
	oh_node_list_free(&nodes);
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "Nodes", items);
	oh_json_set_new(out->result, "Reachable", json_integer(reachable));
	oh_json_set_new(out->result, "AliveButUnreachable", json_integer(alive_unreachable));
}

const oh_task_kind_t oh_task_kind_cluster_probe = {"ClusterProbe", true, run, false};
