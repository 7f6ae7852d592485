/* The task resource in Octopus's ServerTask shape, and the 202 answer that
 * every cluster-changing operation gives. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/oh_json.h"
#include "http.h"

#define TASK_WAIT_POLL_MS 50

static json_t *text_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
	return ms > 0 ? oh_json_time(ms) : json_null();
}

static void duration_text(int64_t ms, char *buf, size_t size)
{
	int64_t s = ms / 1000;
	if (s < 60)
		snprintf(buf, size, "%lld second%s", (long long)s, s == 1 ? "" : "s");
	else if (s < 3600)
		snprintf(buf, size, "%lld minute%s", (long long)(s / 60), s / 60 == 1 ? "" : "s");
	else
		snprintf(buf, size, "%lld hour%s", (long long)(s / 3600), s / 3600 == 1 ? "" : "s");
}

json_t *api_task_json(const oh_task_t *t)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(t->id));
	oh_json_set_new(o, "Name", json_string(t->name));
	oh_json_set_new(o, "Description", json_string(t->description));
	json_t *args = t->arguments ? json_loads(t->arguments, 0, NULL) : NULL;
	oh_json_set_new(o, "Arguments", args ? args : json_object());
	oh_json_set_new(o, "State", json_string(oh_task_state_name(t->state)));
	oh_json_set_new(o, "QueueTime", oh_json_time(t->queue_time));
	oh_json_set_new(o, "StartTime", time_or_null(t->start_time));
	oh_json_set_new(o, "LastUpdatedTime", oh_json_time(t->last_updated));
	oh_json_set_new(o, "CompletedTime", time_or_null(t->completed_time));
	char dur[40];
	int64_t end = t->completed_time > 0 ? t->completed_time : t->last_updated;
	duration_text(t->start_time > 0 && end > t->start_time ? end - t->start_time : 0, dur,
	              sizeof dur);
	oh_json_set_new(o, "Duration", json_string(dur));
	oh_json_set_new(o, "ServerNode", text_or_null(t->server_node));
	oh_json_set_new(o, "TargetNode", text_or_null(t->target_node));
	oh_json_set_new(o, "ErrorMessage", text_or_null(t->error_message));
	bool done = oh_task_state_completed(t->state);
	oh_json_set_new(o, "IsCompleted", json_boolean(done));
	oh_json_set_new(o, "FinishedSuccessfully", json_boolean(t->state == OH_TS_SUCCESS));
	oh_json_set_new(o, "HasBeenPickedUpByProcessor", json_boolean(t->start_time > 0));
	oh_json_set_new(o, "Attempt", json_integer(t->attempt));
	oh_json_set_new(o, "MaxAttempts", json_integer(t->max_attempts));
	oh_json_set_new(o, "Progress", json_integer(t->progress));
	oh_json_set_new(o, "ProgressMessage", text_or_null(t->progress_message));
	json_t *result = t->result ? json_loads(t->result, 0, NULL) : NULL;
	oh_json_set_new(o, "Result", result ? result : json_null());
	oh_json_set_new(o, "RequestedBy", text_or_null(t->requested_by));
	/* Octopus's own fields: every task is in the one space. */
	oh_json_set_new(o, "SpaceId", json_string("Spaces-1"));
	oh_json_set_new(o, "HasPendingInterruptions", json_false());
	oh_json_set_new(o, "HasWarningsOrErrors",
	                json_boolean(t->state == OH_TS_FAILED || t->state == OH_TS_TIMED_OUT));
	char self[120], raw[130], details[130];
	snprintf(self, sizeof self, "/api/tasks/%s", t->id);
	snprintf(raw, sizeof raw, "/api/tasks/%s/raw", t->id);
	snprintf(details, sizeof details, "/api/tasks/%s/details", t->id);
	json_t *links = oh_json_check(json_object());
	oh_json_set_new(links, "Self", json_string(self));
	oh_json_set_new(links, "Raw", json_string(raw));
	oh_json_set_new(links, "Details", json_string(details));
	oh_json_set_new(o, "Links", links);
	return o;
}

db_status_t api_task_wait(const api_req_t *req, oh_task_t *task, long long seconds)
{
	if (seconds <= 0 || oh_task_state_completed(task->state))
		return DB_OK;
	int64_t deadline = oh_mono_ms() + seconds * 1000;
	for (;;) {
		struct timespec ts = {0, TASK_WAIT_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
		/* A stopping node answers at once with the task as it is: a wait
		 * must never hold the node's exit. */
		oh_node_snapshot_t snap;
		oh_node_state_read(req->cfg->state, &snap);
		if (snap.shutting_down)
			return DB_OK;
		oh_task_t fresh;
		db_status_t s = oh_tasks_get(req->cfg->pool, task->id, &fresh);
		if (s != DB_OK)
			return s;
		oh_task_clear(task);
		*task = fresh;
		if (oh_task_state_completed(task->state) || oh_mono_ms() >= deadline)
			return DB_OK;
	}
}

void api_task_accepted(const api_req_t *req, api_resp_t *resp, oh_task_t *task)
{
	if (req->cfg->on_task_queued)
		req->cfg->on_task_queued(req->cfg->notify_ctx);
	api_task_wait(req, task, api_query_int(req, "waitSeconds", 0));
	char loc[120];
	snprintf(loc, sizeof loc, "/api/tasks/%s", task->id);
	api_header(resp, "Location", loc);
	api_json(resp, 202, api_task_json(task));
}

void api_create_task(const api_req_t *req, api_resp_t *resp, const oh_task_spec_t *spec)
{
	oh_task_t t;
	bool existed = false;
	db_status_t s = oh_tasks_create(req->cfg->pool, spec, &t, &existed);
	if (s == DB_OK)
		api_task_accepted(req, resp, &t);
	else
		api_db_error(resp, s);
	oh_task_clear(&t);
}

void api_queue_task(const api_req_t *req, api_resp_t *resp, oh_task_spec_t spec,
                    const char *message)
{
	char who[200];
	api_requester(req, who, sizeof who);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "TaskQueued", message, &details);
	spec.requested_by = who;
	spec.idem = req->idem;
	spec.audit = &ev;
	api_create_task(req, resp, &spec);
	json_decref(details);
}
