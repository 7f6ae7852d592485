/* CheckManagedTentacles: reads the managed cluster's machines
 * (GET /api/{SpaceId}/machines) and records, for each of its polling
 * Tentacles (or the one TentacleId names), whether the cluster has it
 * registered (a machine with its thumbprint, or its poll:// subscription)
 * and that machine's HealthStatus. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../oh_json.h"
#include "managed_common.h"

static const oh_octo_machine_t *find_machine(const oh_octo_machines_t *ms,
                                             const oh_mc_tentacle_t *t)
{
	for (size_t i = 0; i < ms->n; i++)
		if (strcasecmp(ms->v[i].thumbprint, t->thumbprint) == 0 ||
		    (ms->v[i].uri[0] && strcmp(ms->v[i].uri, t->subscription_id) == 0))
			return &ms->v[i];
	return NULL;
}

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	oh_mc_session_t s;
	if (!oh_mc_session_open(r, NULL, &s, out)) {
		oh_mc_session_close(&s);
		return;
	}
	const char *only = json_string_value(json_object_get(r->args, "TentacleId"));
	oh_mc_tentacle_list_t ts;
	db_status_t st = oh_mc_tentacles_list(r->pool, s.m->id, &ts);
	if (st != DB_OK) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The Tentacles cannot be read (%s).",
		         db_status_name(st));
		oh_mc_session_close(&s);
		return;
	}
	oh_octo_machines_t ms;
	long http = 0;
	oh_octo_status_t os = oh_octo_machines(&s.o, s.m->space_id, &ms, &http);
	if (os != OH_OCTO_OK) {
		oh_mc_fail(out, os, http, "Reading the cluster's machines");
		oh_mc_tentacle_list_free(&ts);
		oh_mc_session_close(&s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < ts.n; i++) {
		const oh_mc_tentacle_t *t = &ts.v[i];
		if (only && strcmp(only, t->id) != 0)
			continue;
		const oh_octo_machine_t *m = find_machine(&ms, t);
		char detail[400];
		if (m)
			snprintf(detail, sizeof detail, "registered as %s (%s)%s", m->name, m->id,
			         m->disabled ? ", disabled" : "");
		else
			snprintf(detail, sizeof detail, "not registered in %s", s.m->space_id);
		oh_task_log(r, "%s: %s; HealthStatus %s", t->name, detail,
		            m && m->health[0] ? m->health : "-");
		oh_mc_tentacle_set_check(
		    r->pool, t->id, m ? m->id : "",
		    m ? (m->health[0] ? m->health : "Unknown") : "NotRegistered", detail);
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "TentacleId", json_string(t->id));
		oh_json_set_new(o, "Name", json_string(t->name));
		oh_json_set_new(o, "Registered", json_boolean(m != NULL));
		oh_json_set_new(o, "MachineId", m ? json_string(m->id) : json_null());
		oh_json_set_new(o, "HealthStatus",
		                m && m->health[0] ? json_string(m->health) : json_null());
		oh_json_check_rc(json_array_append_new(items, o));
	}
	oh_octo_machines_free(&ms);
	oh_mc_tentacle_list_free(&ts);
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "ClusterId", json_string(s.m->id));
	oh_json_set_new(out->result, "Tentacles", items);
	oh_mc_session_close(&s);
}

const oh_task_kind_t oh_task_kind_check_managed_tentacles = {"CheckManagedTentacles", true, run,
                                                             false};
