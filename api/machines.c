/* GET /api/Spaces-1/machines: the registered Tentacles as Octopus's
 * MachineResource, the list a control plane reads to check a Tentacle's
 * registration when this cluster is managed from elsewhere. */
#include <stdio.h>
#include <string.h>

#include "../lib/oh_json.h"
#include "../lib/tentacles.h"
#include "api_handlers_gen.h"

/* Healthy: a polling Tentacle that polled every online node within the
 * window, or a listening one found Reachable; Unhealthy: evidence
 * otherwise; Unknown: no evidence yet. */
static const char *health_of(const oh_tentacle_t *t, const oh_node_list_t *nodes,
                             const oh_coverage_t *cov)
{
	if (!t->polling) {
		if (!t->health_status[0])
			return "Unknown";
		return strcmp(t->health_status, "Reachable") == 0 ? "Healthy" : "Unhealthy";
	}
	bool polled = false;
	for (size_t i = 0; i < cov->polls.n && !polled; i++)
		polled = strcmp(cov->polls.v[i].tentacle_id, t->id) == 0;
	if (!polled)
		return "Unknown";
	const char *missing[1];
	return oh_tentacle_missing_nodes(t, nodes, &cov->polls, cov->now,
	                                 cov->polling.poll_window_s, missing, 1) == 0
	           ? "Healthy"
	           : "Unhealthy";
}

void api_op_listSpaceMachines(const api_req_t *req, api_resp_t *resp)
{
	long long skip = api_query_int(req, "skip", 0);
	long long take = api_query_int(req, "take", 30);
	oh_node_list_t nodes = {0};
	oh_coverage_t cov = {0};
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &nodes);
	if (s == DB_OK)
		s = oh_coverage_load(req->cfg->pool, &cov);
	if (s != DB_OK) {
		oh_node_list_free(&nodes);
		api_db_error(resp, s);
		return;
	}
	const oh_tentacle_list_t *ts = &cov.tentacles;
	json_t *items = oh_json_check(json_array());
	for (size_t i = (size_t)skip; i < ts->n && (long long)json_array_size(items) < take; i++) {
		const oh_tentacle_t *t = &ts->v[i];
		json_t *ep = oh_json_check(json_object());
		oh_json_set_new(ep, "CommunicationStyle",
		                json_string(t->polling ? "TentacleActive" : "TentaclePassive"));
		oh_json_set_new(ep, "Thumbprint", json_string(t->thumbprint));
		oh_json_set_new(ep, "Uri", json_string(t->polling ? t->subscription_id : t->uri));
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Id", json_string(t->id));
		oh_json_set_new(o, "Name", json_string(t->name));
		oh_json_set_new(o, "Endpoint", ep);
		oh_json_set_new(o, "IsDisabled", json_false());
		oh_json_set_new(o, "HealthStatus", json_string(health_of(t, &nodes, &cov)));
		char self[120];
		snprintf(self, sizeof self, "/api/tentacles/%s", t->id);
		json_t *links = oh_json_check(json_object());
		oh_json_set_new(links, "Self", json_string(self));
		oh_json_set_new(o, "Links", links);
		oh_json_check_rc(json_array_append_new(items, o));
	}
	api_json(
	    resp, 200,
	    api_page("Machine", "/api/Spaces-1/machines", items, (long long)ts->n, skip, take));
	oh_coverage_free(&cov);
	oh_node_list_free(&nodes);
}
