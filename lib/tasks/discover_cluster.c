/* DiscoverCluster: matches the configured nodes of a managed cluster to the
 * cluster's own node list (by name, or by the Id found before), records
 * each match's Octopus node Id, pings each configured node on its own URL,
 * and reports the configured nodes the cluster does not list (Missing) and
 * the nodes it lists that are not configured here (Unknown). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../oh_json.h"
#include "managed_common.h"

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	oh_mc_session_t s;
	if (!oh_mc_session_open(r, NULL, &s, out)) {
		oh_mc_session_close(&s);
		return;
	}
	oh_task_log(r, "Discovering %s through %s (%zu configured node(s))", s.m->name, s.m->lb_url,
	            s.m->n_nodes);
	oh_mc_topology_t t;
	oh_mc_topology_read(s.m, &s.o, 3000, &t);
	if (t.api != OH_OCTO_OK) {
		oh_mc_fail(out, t.api, t.api_http, "Reading the cluster's nodes");
		oh_mc_topology_free(&t);
		oh_mc_session_close(&s);
		return;
	}
	json_t *matched = oh_json_check(json_array());
	json_t *missing = oh_json_check(json_array());
	json_t *unknown = oh_json_check(json_array());
	db_status_t st = DB_OK;
	for (size_t i = 0; i < t.n && st == DB_OK; i++) {
		const oh_mc_topo_node_t *n = &t.nodes[i];
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Name", json_string(n->cfg->name));
		oh_json_set_new(o, "Ping", n->ping ? json_integer(n->ping) : json_null());
		oh_json_set_new(o, "State", json_string(n->state));
		if (n->listed) {
			oh_json_set_new(o, "OctopusNodeId", json_string(n->remote.id));
			oh_json_check_rc(json_array_append_new(matched, o));
			oh_task_log(r, "%s is %s in the cluster; its ping answers %ld",
			            n->cfg->name, n->remote.id, n->ping);
		} else {
			oh_json_check_rc(json_array_append_new(missing, o));
			oh_task_log(r, "%s is configured here but the cluster does not list it",
			            n->cfg->name);
		}
		st = oh_mc_set_octopus_id(r->pool, s.m->id, n->cfg->name,
		                          n->listed ? n->remote.id : "", i + 1 == t.n);
	}
	for (size_t i = 0; i < t.remote.n; i++) {
		const oh_octo_node_t *rn = &t.remote.v[i];
		bool known = false;
		for (size_t k = 0; k < t.n && !known; k++)
			known = t.nodes[k].listed && strcmp(t.nodes[k].remote.id, rn->id) == 0;
		if (known)
			continue;
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "OctopusNodeId", json_string(rn->id));
		oh_json_set_new(o, "Name", json_string(rn->name));
		oh_json_check_rc(json_array_append_new(unknown, o));
		oh_task_log(r, "The cluster lists %s (%s), which is not configured here", rn->name,
		            rn->id);
	}
	oh_mc_topology_free(&t);
	if (st != DB_OK) {
		json_decref(matched);
		json_decref(missing);
		json_decref(unknown);
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The findings cannot be recorded (%s).",
		         db_status_name(st));
		oh_mc_session_close(&s);
		return;
	}
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "ClusterId", json_string(s.m->id));
	oh_json_set_new(out->result, "Matched", matched);
	oh_json_set_new(out->result, "Missing", missing);
	oh_json_set_new(out->result, "Unknown", unknown);
	oh_mc_session_close(&s);
}

const oh_task_kind_t oh_task_kind_discover_cluster = {"DiscoverCluster", true, run, false};
