/* /api/maintenance-runs: rolling maintenance of the local cluster or a
 * managed one (lib/maintenance.h): start (a task, with Idempotency-Key as
 * every task-creating operation), read, continue, pause, resume, abort. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/maintenance.h"
#include "../lib/managed_clusters.h"
#include "../lib/nodes.h"
#include "../lib/oh_json.h"
#include "../lib/oh_log.h"
#include "api_handlers_gen.h"
#include "maintenance_api.h"

#define RUNS_BASE "/api/maintenance-runs"

static json_t *time_or_null(int64_t t)
{
	return t > 0 ? oh_json_time(t) : json_null();
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

json_t *api_maintenance_json(const oh_mrun_t *r, const oh_mstep_t *steps, size_t n)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(r->id));
	oh_json_set_new(o, "ClusterId", json_string(r->cluster_id));
	oh_json_set_new(o, "TaskId", json_string(r->task_id));
	oh_json_set_new(o, "State", json_string(r->state));
	oh_json_set_new(o, "Reason", json_string(r->reason));
	oh_json_set_new(o, "MinOnlineNodes", json_integer(r->min_online));
	oh_json_set_new(o, "DrainDeadlineSeconds", json_integer(r->deadline_s));
	oh_json_set_new(o, "DeadlineAction", json_string(r->deadline_action));
	oh_json_set_new(o, "SettleSeconds", json_integer(r->settle_s));
	oh_json_set_new(o, "BalancerDelaySeconds", json_integer(r->balancer_delay_s));
	oh_json_set_new(o, "UndrainOnAbort", json_boolean(r->undrain_on_abort));
	oh_json_set_new(o, "AbortRequested", json_boolean(r->abort_requested));
	oh_json_set_new(o, "CurrentStep",
	                r->current_step >= 0 && (size_t)r->current_step < n
	                    ? json_integer(r->current_step)
	                    : json_null());
	oh_json_set_new(o, "RequestedBy", json_string(r->requested_by));
	oh_json_set_new(o, "CreatedAt", oh_json_time(r->created_at));
	oh_json_set_new(o, "StartedAt", time_or_null(r->started_at));
	oh_json_set_new(o, "EndedAt", time_or_null(r->ended_at));
	oh_json_set_new(o, "Message", str_or_null(r->message));
	json_t *list = oh_json_check(json_array());
	for (size_t i = 0; i < n; i++) {
		const oh_mstep_t *s = &steps[i];
		json_t *j = oh_json_check(json_object());
		oh_json_set_new(j, "Position", json_integer(s->position));
		oh_json_set_new(j, "Node", json_string(s->node_key));
		oh_json_set_new(j, "NodeName", json_string(s->node_name));
		oh_json_set_new(j, "State", json_string(s->state));
		oh_json_set_new(j, "DrainTaskId", str_or_null(s->drain_task));
		oh_json_set_new(j, "UndrainTaskId", str_or_null(s->undrain_task));
		oh_json_set_new(j, "PingLost", json_boolean(s->ping_lost));
		oh_json_set_new(j, "ContinueRequested", json_boolean(s->continue_requested));
		oh_json_set_new(j, "DrainRequestedAt", time_or_null(s->drain_requested_at));
		oh_json_set_new(j, "DrainedAt", time_or_null(s->drained_at));
		oh_json_set_new(j, "ReadyAt", time_or_null(s->ready_at));
		oh_json_set_new(j, "RestartedAt", time_or_null(s->restarted_at));
		oh_json_set_new(j, "UndrainRequestedAt", time_or_null(s->undrain_requested_at));
		oh_json_set_new(j, "OnlineAt", time_or_null(s->online_at));
		oh_json_set_new(j, "DoneAt", time_or_null(s->done_at));
		oh_json_set_new(j, "Message", str_or_null(s->message));
		oh_json_check_rc(json_array_append_new(list, j));
	}
	oh_json_set_new(o, "Steps", list);
	char self[120], task[120];
	snprintf(self, sizeof self, RUNS_BASE "/%s", r->id);
	snprintf(task, sizeof task, "/api/tasks/%s", r->task_id);
	json_t *links = oh_json_check(json_object());
	oh_json_set_new(links, "Self", json_string(self));
	oh_json_set_new(links, "Task", json_string(task));
	oh_json_set_new(o, "Links", links);
	return o;
}

/* The nodes of a run, in its order: each node's key and name. */
typedef struct {
	char keys[OH_MAINT_MAX_NODES][101];
	char names[OH_MAINT_MAX_NODES][101];
	size_t n;
} order_t;

/* Adds a node; false when it is there already or the list is full. */
/* BODY's integer NAME (the schema checked its type and range), or DEF when
 * it is absent. */
static int int_or(const json_t *body, const char *name, int def)
{
	const json_t *v = json_object_get(body, name);
	return v ? (int)json_integer_value(v) : def;
}

static bool add_node(order_t *o, const char *key, const char *name)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0)
			return false;
	if (o->n >= OH_MAINT_MAX_NODES)
		return false;
	snprintf(o->keys[o->n], sizeof o->keys[0], "%s", key);
	snprintf(o->names[o->n], sizeof o->names[0], "%s", name);
	o->n++;
	return true;
}

api_maint_start_t api_maintenance_start(const api_req_t *req, const json_t *body,
                                        const char *requested_by, oh_mrun_t *run, oh_task_t *task,
                                        db_status_t *db, char *detail, size_t detail_len)
{
	memset(task, 0, sizeof *task);
	*db = DB_OK;
	detail[0] = '\0';
	const char *cluster = json_string_value(json_object_get(body, "ClusterId"));
	if (!cluster)
		cluster = OH_MAINT_LOCAL;
	const json_t *order = json_object_get(body, "NodeOrder");
	int min_online = int_or(body, "MinOnlineNodes", 1);
	order_t *o = calloc(1, sizeof *o);
	if (!o)
		abort();
	api_maint_start_t rc = API_MAINT_STARTED;
	int serving = 0;
	bool managed = strcmp(cluster, OH_MAINT_LOCAL) != 0;
	oh_managed_cluster_t *m = NULL;
	oh_node_list_t nodes = {0};
	if (managed) {
		m = malloc(sizeof *m);
		if (!m)
			abort();
		db_status_t s = oh_mc_get(req->cfg->pool, cluster, m);
		if (s != DB_OK) {
			rc = s == DB_NO_ROWS ? API_MAINT_NO_CLUSTER : API_MAINT_DB;
			*db = s;
			goto out;
		}
	} else {
		db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &nodes);
		if (s != DB_OK) {
			rc = API_MAINT_DB;
			*db = s;
			goto out;
		}
	}
	/* A run in progress is the answer before any other check (capacity
	 * depends on it); oh_maint_start checks again under its lock. */
	char busy_now[51];
	db_status_t bs = oh_maint_active(req->cfg->pool, cluster, busy_now, sizeof busy_now);
	if (bs == DB_OK) {
		rc = API_MAINT_BUSY;
		snprintf(detail, detail_len, "Maintenance run %s of this cluster has not ended.",
		         busy_now);
		goto out;
	}
	if (bs != DB_NO_ROWS) {
		rc = API_MAINT_DB;
		*db = bs;
		goto out;
	}
	/* The order: as given, else every node by name. */
	if (order) {
		size_t i;
		const json_t *w;
		json_array_foreach(order, i, w)
		{
			const char *want = json_string_value(w);
			bool ok = false;
			if (managed) {
				const oh_mc_node_t *n = oh_mc_node_find(m, want);
				ok = n && add_node(o, n->name, n->name);
			} else {
				for (size_t k = 0; k < nodes.n && !ok; k++)
					if (strcasecmp(nodes.v[k].name, want) == 0 ||
					    strcmp(nodes.v[k].id, want) == 0)
						ok = add_node(o, nodes.v[k].id, nodes.v[k].name);
			}
			if (!ok) {
				rc = API_MAINT_BAD_NODE;
				snprintf(detail, detail_len,
				         "NodeOrder names %.100s, which is not a node of %.150s "
				         "(or names "
				         "it twice).",
				         want, managed ? m->name : "this cluster");
				goto out;
			}
		}
	} else if (managed) {
		for (size_t i = 0; i < m->n_nodes; i++)
			add_node(o, m->nodes[i].name, m->nodes[i].name);
	} else {
		for (size_t k = 0; k < nodes.n; k++)
			add_node(o, nodes.v[k].id, nodes.v[k].name);
	}
	/* Serving now: each node's own ping answering 200 (managed), or online,
	 * not draining and taking work (local: the nodes' own state). */
	if (managed) {
		oh_octo_t oc;
		char *key = NULL;
		if (oh_mc_client(m, req->cfg->secrets_key, req->cfg->outbound, &oc, &key)) {
			for (size_t i = 0; i < m->n_nodes; i++)
				serving += oh_octo_ping(&oc, m->nodes[i].url, 2000, NULL, 0) == 200;
		}
		oh_mc_key_free(key);
	} else {
		for (size_t k = 0; k < nodes.n; k++)
			serving += !nodes.v[k].offline && !nodes.v[k].maintenance &&
			           nodes.v[k].max_tasks > 0;
	}
	if (serving < min_online + 1) {
		rc = API_MAINT_CAPACITY;
		snprintf(detail, detail_len,
		         "%d node(s) serve now; taking one out needs MinOnlineNodes (%d) + 1.",
		         serving, min_online);
		goto out;
	}
	oh_maint_spec_t spec = {.cluster_id = cluster,
	                        .reason = json_string_value(json_object_get(body, "Reason")),
	                        .min_online = min_online,
	                        .deadline_s = int_or(body, "DrainDeadlineSeconds", 600),
	                        .settle_s = int_or(body, "SettleSeconds", 10),
	                        .balancer_delay_s = int_or(body, "BalancerDelaySeconds", 10),
	                        .undrain_on_abort =
	                            json_is_true(json_object_get(body, "UndrainOnAbort")),
	                        .n = o->n,
	                        .requested_by = requested_by,
	                        .idem = req->idem};
	const char *action = json_string_value(json_object_get(body, "DeadlineAction"));
	spec.cancel_at_deadline = action && strcmp(action, "Cancel") == 0;
	for (size_t i = 0; i < o->n; i++) {
		spec.node_keys[i] = o->keys[i];
		spec.node_names[i] = o->names[i];
	}
	oh_event_spec_t ev;
	json_t *details = NULL;
	if (req->body == body) {
		api_audit(req, &ev, "MaintenanceRunStarted", NULL, &details);
	} else {
		details = json_deep_copy(body);
		ev = (oh_event_spec_t){.actor = &req->actor,
		                       .operation = req->operation_id,
		                       .result = "Success",
		                       .details = details};
	}
	spec.audit = &ev;
	char busy[51] = "";
	db_status_t s = oh_maint_start(req->cfg->pool, &spec, run, task, busy);
	json_decref(details);
	if (s != DB_OK) {
		rc = API_MAINT_DB;
		*db = s;
		if (s == DB_ABORT && req->idem && req->idem->in_flight)
			rc = API_MAINT_IDEM_IN_FLIGHT;
		goto out;
	}
	if (busy[0]) {
		rc = API_MAINT_BUSY;
		snprintf(detail, detail_len, "Maintenance run %s of this cluster has not ended.",
		         busy);
		goto out;
	}
out:
	oh_node_list_free(&nodes);
	free(m);
	free(o);
	return rc;
}

void api_op_startMaintenanceRun(const api_req_t *req, api_resp_t *resp)
{
	json_t *empty = NULL;
	const json_t *body = req->body;
	if (!body)
		body = empty = oh_json_check(json_object());
	char who[200], detail[400];
	api_requester(req, who, sizeof who);
	oh_mrun_t run;
	oh_task_t task;
	db_status_t db = DB_OK;
	api_maint_start_t rc =
	    api_maintenance_start(req, body, who, &run, &task, &db, detail, sizeof detail);
	json_decref(empty);
	switch (rc) {
	case API_MAINT_STARTED: api_task_accepted(req, resp, &task); break;
	case API_MAINT_NO_CLUSTER:
		api_error(resp, OH_E_NOT_FOUND, "There is no managed cluster with this Id.",
		          "ClusterId");
		break;
	case API_MAINT_BAD_NODE: api_error(resp, OH_E_VALIDATION, detail, "NodeOrder"); break;
	case API_MAINT_CAPACITY:
		api_error(resp, OH_E_INSUFFICIENT_CAPACITY, detail, "MinOnlineNodes");
		break;
	case API_MAINT_BUSY: api_error(resp, OH_E_MAINT_IN_PROGRESS, detail, "ClusterId"); break;
	case API_MAINT_IDEM_IN_FLIGHT: break; /* api_idem_end answers */
	case API_MAINT_DB: api_db_error(resp, db); break;
	}
	oh_task_clear(&task);
}

void api_op_listMaintenanceRuns(const api_req_t *req, api_resp_t *resp)
{
	api_paging_t pg;
	if (!api_paging(req, resp, &pg))
		return;
	oh_maint_list_t l;
	db_status_t s = oh_maint_list(req->cfg->pool, pg.after, pg.skip, pg.take, &l);
	if (s == DB_NO_ROWS) {
		api_paging_unknown_after(resp, "maintenance run");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++)
		oh_json_check_rc(json_array_append_new(
		    items, api_maintenance_json(&l.v[i].run, l.v[i].steps, l.v[i].n)));
	json_t *o = api_page("MaintenanceRun", RUNS_BASE, items, l.total, pg.skip, pg.take);
	api_page_next(req, o, RUNS_BASE, l.n, &pg, l.n ? l.v[l.n - 1].run.id : NULL);
	api_json(resp, 200, o);
	oh_maint_list_free(&l);
}

void api_op_getMaintenanceRun(const api_req_t *req, api_resp_t *resp)
{
	oh_maint_view_t v;
	db_status_t s = oh_maint_get(req->cfg->pool, api_path_param(req, "id"), &v);
	if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no maintenance run with this Id.", "id");
	else if (s != DB_OK)
		api_db_error(resp, s);
	else
		api_json(resp, 200, api_maintenance_json(&v.run, v.steps, v.n));
	oh_maint_view_free(&v);
}

oh_mctl_outcome_t api_maintenance_control(const api_req_t *req, const char *id, oh_mctl_t ctl,
                                          int undrain, const json_t *details, db_status_t *st,
                                          oh_maint_view_t *out)
{
	oh_event_spec_t ev = {.actor = &req->actor,
	                      .operation = req->operation_id,
	                      .result = "Success",
	                      .details = details};
	const char *what[] = {"paused", "resumed", "asked to abort", "told to continue"};
	char msg[200];
	snprintf(msg, sizeof msg, "Maintenance run %s was %s.", id, what[ctl]);
	ev.message = msg;
	oh_mctl_outcome_t outcome = OH_MCTL_NOT_FOUND;
	*st = oh_maint_control(req->cfg->pool, id, ctl, undrain, &ev, &outcome, out);
	return outcome;
}

static void control(const api_req_t *req, api_resp_t *resp, oh_mctl_t ctl, int undrain)
{
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, NULL, NULL, &details);
	oh_maint_view_t v;
	db_status_t s;
	oh_mctl_outcome_t oc =
	    api_maintenance_control(req, api_path_param(req, "id"), ctl, undrain, details, &s, &v);
	json_decref(details);
	if (s != DB_OK)
		api_db_error(resp, s);
	else if (oc == OH_MCTL_NOT_FOUND)
		api_error(resp, OH_E_NOT_FOUND, "There is no maintenance run with this Id.", "id");
	else if (oc == OH_MCTL_WRONG_STATE) {
		char msg[300];
		snprintf(msg, sizeof msg, "The run is %s%s.", v.run.state,
		         ctl == OH_MCTL_CONTINUE ? " and no node waits for maintenance" : "");
		api_error(resp, OH_E_MAINT_WRONG_STATE, msg, "id");
	} else
		api_json(resp, 200, api_maintenance_json(&v.run, v.steps, v.n));
	oh_maint_view_free(&v);
}

void api_op_continueMaintenanceRun(const api_req_t *req, api_resp_t *resp)
{
	control(req, resp, OH_MCTL_CONTINUE, -1);
}

void api_op_pauseMaintenanceRun(const api_req_t *req, api_resp_t *resp)
{
	control(req, resp, OH_MCTL_PAUSE, -1);
}

void api_op_resumeMaintenanceRun(const api_req_t *req, api_resp_t *resp)
{
	control(req, resp, OH_MCTL_RESUME, -1);
}

void api_op_abortMaintenanceRun(const api_req_t *req, api_resp_t *resp)
{
	const json_t *u = json_object_get(req->body, "UndrainOnAbort");
	control(req, resp, OH_MCTL_ABORT, json_is_boolean(u) ? json_is_true(u) : -1);
}
