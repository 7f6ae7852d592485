/* TentacleHealthCheck: connects to each listening Tentacle over HTTPS,
 * trusting only the certificate with its registered thumbprint, and
 * records Reachable, Unreachable or ThumbprintMismatch on the Tentacle. */
#include <stdio.h>
#include <string.h>

#include "../http_client.h"
#include "../oh_json.h"
#include "../oh_log.h"
#include "../task_run.h"
#include "../tentacles.h"

static bool wanted(const json_t *ids, const char *id)
{
	if (!json_is_array(ids))
		return true;
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
			return true;
	}
	return false;
}

/* Listening Tentacles read per transaction: the pass holds one batch. */
#define HEALTH_BATCH 100

static void check_batch(oh_task_run_t *r, const oh_tentacle_list_t *ts, const json_t *ids,
                        json_t *items);

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	const json_t *ids = json_object_get(r->args, "TentacleIds");
	json_t *items = oh_json_check(json_array());
	char after[51] = "";
	db_status_t s = DB_OK;
	for (bool more = true; more && !oh_task_should_stop(r);) {
		oh_tentacle_list_t ts;
		s = oh_tentacles_listening(r->pool, after, HEALTH_BATCH, &ts);
		if (s != DB_OK)
			break;
		more = ts.n == HEALTH_BATCH;
		if (ts.n)
			snprintf(after, sizeof after, "%s", ts.v[ts.n - 1].id);
		check_batch(r, &ts, ids, items);
		oh_tentacle_list_free(&ts);
	}
	if (s != DB_OK) {
		json_decref(items);
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The database is unavailable (%s).",
		         db_status_name(s));
		return;
	}
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "Tentacles", items);
}

static void check_batch(oh_task_run_t *r, const oh_tentacle_list_t *ts, const json_t *ids,
                        json_t *items)
{
	for (size_t i = 0; i < ts->n && !oh_task_should_stop(r); i++) {
		const oh_tentacle_t *t = &ts->v[i];
		if (t->polling || !wanted(ids, t->id))
			continue;
		oh_http_result_t res;
		oh_pin_t pin;
		char seen[41];
		long timeout = r->env->http_timeout_ms > 0 ? r->env->http_timeout_ms : 10000;
		oh_http_get_pinned(t->uri, t->thumbprint, timeout, r->env->outbound, &res, &pin,
		                   seen);
		const char *status = pin == OH_PIN_MATCH      ? "Reachable"
		                     : pin == OH_PIN_MISMATCH ? "ThumbprintMismatch"
		                                              : "Unreachable";
		/* What Readers see says only whether the registered Tentacle
		 * answered: not what else listens there (a closed port, a plain
		 * service, another certificate), which would make the check a
		 * probe of the node's network.  The node's log has the rest. */
		char detail[400];
		if (pin == OH_PIN_MATCH)
			snprintf(detail, sizeof detail,
			         "TLS handshake with the registered certificate%s",
			         res.status ? "" : " (the request then failed)");
		else if (pin == OH_PIN_MISMATCH)
			snprintf(detail, sizeof detail,
			         "the certificate presented is not the registered one");
		else
			snprintf(detail, sizeof detail, "%s", oh_http_public_error(&res));
		oh_log(OH_LOG_INFO, "Tentacle health check",
		       "tentacle=%s status=%s seen=%s error=%s", t->id, status,
		       seen[0] ? seen : "-", oh_q(res.error));
		char origin[300];
		oh_url_origin(t->uri, origin, sizeof origin);
		oh_task_log(r, "%s %s: %s (%s)", t->name, origin, status, detail);
		db_status_t s = oh_tentacle_set_health(r->pool, t->id, status, detail);
		if (s != DB_OK)
			oh_task_log(r, "Cannot record the result of %s (%s)", t->name,
			            db_status_name(s));
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "TentacleId", json_string(t->id));
		oh_json_set_new(o, "Name", json_string(t->name));
		oh_json_set_new(o, "Status", json_string(status));
		oh_json_set_new(o, "Detail", json_string(detail));
		oh_json_set_new(o, "LatencyMs", json_integer(res.duration_ms));
		oh_json_check_rc(json_array_append_new(items, o));
	}
}

const oh_task_kind_t oh_task_kind_tentacle_health = {"TentacleHealthCheck", true, run, false};
