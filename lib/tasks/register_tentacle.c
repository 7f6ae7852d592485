/* RegisterTentacle: records the new Tentacle's server entry for every node
 * (none for a listening Tentacle, which the nodes call instead). */
#include <stdio.h>

#include "../oh_json.h"
#include "../task_run.h"
#include "../tentacles.h"

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	const char *id = json_string_value(json_object_get(r->args, "TentacleId"));
	oh_tentacle_t t;
	db_status_t s = id ? oh_tentacle_get(r->pool, id, &t) : DB_NO_ROWS;
	if (s == DB_NO_ROWS) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "The Tentacle no longer exists.");
		return;
	}
	int64_t changed = 0;
	if (s == DB_OK)
		s = oh_tentacles_refresh(r->pool, id, &changed);
	oh_link_list_t servers = {0};
	if (s == DB_OK)
		s = oh_tentacle_servers(r->pool, id, &servers);
	if (s != DB_OK) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The database is unavailable (%s).",
		         db_status_name(s));
		return;
	}
	oh_task_log(r, "%s (%s): %zu server entr%s recorded", t.name,
	            t.polling ? "polling" : "listening", servers.n, servers.n == 1 ? "y" : "ies");
	for (size_t i = 0; i < servers.n; i++)
		oh_task_log(r, "  %s -> https://%s:%d", servers.v[i].node_id, servers.v[i].address,
		            servers.v[i].port);
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "TentacleId", json_string(id));
	oh_json_set_new(out->result, "ServerCount", json_integer((json_int_t)servers.n));
	oh_link_list_free(&servers);
}

const oh_task_kind_t oh_task_kind_register_tentacle = {"RegisterTentacle", true, run, false};
