/* RefreshTentacleServers: after nodes joined or left, or the polling mode
 * changed, brings every polling Tentacle's server list in line and marks
 * the Tentacles whose list changed for re-registration. */
#include <stdio.h>

#include "../oh_json.h"
#include "../task_run.h"
#include "../tentacles.h"

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	int64_t changed = 0;
	db_status_t s = oh_tentacles_refresh(r->pool, NULL, &changed);
	if (s != DB_OK) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The database is unavailable (%s).",
		         db_status_name(s));
		return;
	}
	oh_task_log(r, "%lld polling Tentacle(s) got a new server list", (long long)changed);
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "TentaclesChanged", json_integer(changed));
}

const oh_task_kind_t oh_task_kind_refresh_tentacle_servers = {"RefreshTentacleServers", true, run,
                                                              false};
