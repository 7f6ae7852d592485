/* GET /api/tasks/{id}/details: Octopus's TaskDetailsResource, the task with
 * its activity read from the task log, one activity per attempt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/oh_json.h"
#include "../lib/task_log.h"
#include "../lib/task_run.h"
#include "api_handlers_gen.h"

typedef struct {
	const oh_task_t *task;
	json_t *activities; /* array */
	json_t *current;    /* the attempt being filled (borrowed from ACTIVITIES) */
	json_t *lines;      /* its LogElements (borrowed) */
	int64_t last_at;
	int count;
} build_t;

static const char *category(const char *level)
{
	if (strcmp(level, "WARN") == 0)
		return "Warning";
	if (strcmp(level, "ERROR") == 0)
		return "Error";
	if (strcmp(level, "FATAL") == 0)
		return "Fatal";
	if (strcmp(level, "DEBUG") == 0)
		return "Verbose";
	return "Info";
}

/* Closes the attempt being filled: its end, and Failed unless it is the
 * task's last attempt (which takes the task's own state). */
static void close_attempt(build_t *b, bool last)
{
	if (!b->current)
		return;
	const oh_task_t *t = b->task;
	const char *status = "Failed";
	bool ended = true;
	if (last) {
		switch (t->state) {
		case OH_TS_QUEUED: status = "Pending"; break;
		case OH_TS_EXECUTING:
		case OH_TS_CANCELLING:
			status = "Running";
			ended = false;
			break;
		case OH_TS_SUCCESS: status = "Success"; break;
		case OH_TS_CANCELED: status = "Canceled"; break;
		default: status = "Failed"; break;
		}
	}
	oh_json_set_new(b->current, "Status", json_string(status));
	oh_json_set_new(b->current, "Ended",
	                ended && b->last_at > 0 ? oh_json_time(b->last_at) : json_null());
	if (last) {
		oh_json_set_new(b->current, "ProgressPercentage",
		                json_integer(t->state == OH_TS_SUCCESS ? 100 : t->progress));
		oh_json_set_new(b->current, "ProgressMessage", json_string(t->progress_message));
	}
}

static void on_line(void *ctx, const oh_log_line_t *l)
{
	build_t *b = ctx;
	if (l->attempt_start || !b->current) {
		close_attempt(b, false);
		json_t *a = oh_json_check(json_object());
		char id[96], name[300];
		snprintf(id, sizeof id, "%s_attempt%d", b->task->id, ++b->count);
		snprintf(name, sizeof name, "%.*s", (int)(l->len < 200 ? l->len : 200), l->text);
		oh_json_set_new(a, "Id", json_string(id));
		oh_json_set_new(a, "Name",
		                json_string(l->attempt_start ? name : b->task->description));
		oh_json_set_new(a, "Started",
		                oh_json_time(l->at > 0 ? l->at : b->task->queue_time));
		oh_json_set_new(a, "Ended", json_null());
		oh_json_set_new(a, "Status", json_string("Running"));
		oh_json_set_new(a, "Children", json_array());
		oh_json_set_new(a, "ShowAtSummaryLevel", json_true());
		b->lines = oh_json_check(json_array());
		oh_json_set_new(a, "LogElements", b->lines);
		oh_json_set_new(a, "ProgressPercentage", json_integer(0));
		oh_json_set_new(a, "ProgressMessage", json_string(""));
		oh_json_check_rc(json_array_append_new(b->activities, a));
		b->current = a;
	}
	json_t *e = oh_json_check(json_object());
	oh_json_set_new(e, "Category", json_string(category(l->level)));
	oh_json_set_new(e, "OccurredAt", oh_json_time(l->at > 0 ? l->at : b->last_at));
	json_t *text = json_stringn(l->text, l->len);
	oh_json_set_new(e, "MessageText", text ? text : json_string("(not UTF-8)"));
	oh_json_check_rc(json_array_append_new(b->lines, e));
	if (l->at > 0)
		b->last_at = l->at;
}

/* Keeps the last TAIL elements of every attempt's LogElements. */
static void keep_tail(json_t *activities, long long tail)
{
	size_t i;
	json_t *a;
	json_array_foreach(activities, i, a)
	{
		json_t *lines = json_object_get(a, "LogElements");
		while ((long long)json_array_size(lines) > tail)
			json_array_remove(lines, 0);
	}
}

void api_op_getTaskDetails(const api_req_t *req, api_resp_t *resp)
{
	const char *id = api_path_param(req, "id");
	oh_task_t t;
	db_status_t s = oh_tasks_get(req->cfg->pool, id, &t);
	if (s == DB_NO_ROWS) {
		api_error(resp, OH_E_NOT_FOUND, "There is no task with this Id.", "id");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	oh_storage_used_t used;
	oh_storage_paths_used(req->cfg->storage, OH_FOLDER_TASKLOGS, &used);
	size_t len = 0;
	bool found = false;
	char *text = oh_task_log_read(used.v, used.n, id, &len, &found);
	if (!text) {
		oh_task_clear(&t);
		api_error(resp, OH_E_INTERNAL,
		          "The task log cannot be read from the TaskLogs folder.", NULL);
		return;
	}
	build_t b = {.task = &t, .activities = oh_json_check(json_array())};
	oh_task_log_lines(text, len, on_line, &b);
	close_attempt(&b, true);
	free(text);
	const json_t *tail = json_object_get(req->query, "tail");
	if (json_is_integer(tail))
		keep_tail(b.activities, (long long)json_integer_value(tail));
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Task", api_task_json(&t));
	oh_json_set_new(o, "ActivityLogs", b.activities);
	json_t *progress = oh_json_check(json_object());
	oh_json_set_new(progress, "ProgressPercentage",
	                json_integer(t.state == OH_TS_SUCCESS ? 100 : t.progress));
	oh_json_set_new(progress, "EstimatedTimeRemaining", json_string(""));
	oh_json_set_new(o, "Progress", progress);
	oh_json_set_new(o, "PhysicalLogSize", json_integer((json_int_t)len));
	json_t *links = oh_json_check(json_object());
	char self[130];
	snprintf(self, sizeof self, "/api/tasks/%s/details", t.id);
	oh_json_set_new(links, "Self", json_string(self));
	oh_json_set_new(o, "Links", links);
	oh_task_clear(&t);
	api_json(resp, 200, o);
}

void api_op_getSpaceTaskDetails(const api_req_t *req, api_resp_t *resp)
{
	if (api_space_check(req, resp))
		api_op_getTaskDetails(req, resp);
}
